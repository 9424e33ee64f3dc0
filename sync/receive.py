"""What a node accepts: checking each event of a page and applying the good ones.

The receiver checks every event, applies the good ones and moves its
frontier in one transaction per page, and quarantines the rest with a
reason. Applying a page twice changes nothing; a cut-off sync resumes from
the receiver's frontier, which the receiver owns and reports when asked.

Feeds of authors inside the receiver's scope arrive whole and their hash
chain is checked link by link: a gap or a fork is refused. Feeds of authors
above it (decisions flowing down) arrive filtered by scope; for them the
page says up to which sequence number the receiver now holds everything in
its scope (``ranges``: "every in-scope event of this feed with
from < seq <= to is in this page"); a receiver takes a range only if it
continues what it already holds, so pages lost or reordered on the way can
never make it skip an event.

A range is a claim no signature backs, so who may make it is bounded by
what the sender can know (``vouched_ranges``): a node's own feed, the feeds
of nodes below it, and, from a node at or above the receiver, any feed. An
honest sender claims nothing else (``send._complete_for``), and a page that
does is refused whole. A claim from above that runs past the feed's real
end (a stolen parent key) is undone by the next honest sender, which
re-sends such a feed from its start (``send._feeds_to_send``): a range from
seq 0 that ends below what this node was told before puts the feed back on
the events it holds (``_reopen``).

A department's node (a certificate with a filter, ``scope.Filter``) holds
every feed but its own through its filter, so it takes ranges of them all;
and it holds nobody's feed whole but its own, so it may vouch for nothing
else, except to a node below it whose filter is no wider: a filtered
sender's claim about the feed of a village in its area is refused whole.
"""

from __future__ import annotations

import attrs

from xinfang.core import i18n, store
from xinfang.core.admission import DUPLICATE, Admission, frontier_of
from xinfang.core.event import EventReason
from xinfang.core.admission import now as peers_now
from xinfang.core.i18n import N_

from . import boxes
from .trust import admit
from .wire import Page, PageError

__all__ = ["PageResult", "Refusal", "apply_page", "frontier_of", "vouched_ranges"]


#: an event a receiver refused, and why: its ``reason`` is the language-independent
#: text the quarantine keeps (``i18n.stored``), which crosses to the sender as it is
#: and is shown with ``i18n.show``
Refusal = EventReason


@attrs.frozen
class PageResult:
    applied: int
    duplicates: int
    refused: tuple[Refusal, ...]


def apply_page(node, page: Page, peer: str | None = None) -> PageResult:
    """Check and apply one page in one transaction, with the frontier it moves.

    Every event passes the node's one admission path (``core.admission``):
    the same checks a local write and a bundle pass. ``peer`` is the node
    that sent the page; without one the caller vouches for the page itself
    (a reference fold, a test), and its ranges are taken as a parent's are.
    """
    db = node.db
    applied = duplicates = 0
    refused: list[Refusal] = []
    with db.atomic():  # a PageError below rolls back the certificates too
        admit(db, page.certs)
        admission = Admission(node, peer=peer)
        ranges = vouched_ranges(admission, page, peer)
        for first, second in page.forks:
            admission.take_fork_evidence(first, second)
        _reopen(db, ranges)
        admission.verify_ahead(page.events)
        with admission.batch():  # folded a page at a time on leaving
            for event in sorted(page.events, key=lambda e: (e.author, e.epoch, e.seq)):
                reason = admission.admit(event, ranges.get((event.author, event.epoch)))
                if reason == DUPLICATE:
                    duplicates += 1
                elif reason:
                    refused.append(Refusal(event.id, event.author, event.epoch, event.seq,
                                           i18n.stored(reason)))
                else:
                    applied += 1
        kept = {r.event_id for r in refused}
        boxes.take(node, page.boxes, [e for e in page.events if e.id not in kept], peer)
        blocked = {(r.author, r.epoch) for r in refused}
        for (author, epoch), (begin, end) in ranges.items():
            if (author, epoch) not in blocked and begin <= frontier_of(db, author, epoch):
                head = store.feed_head(db, author, epoch)
                db.execute(
                    "insert into feeds (author, epoch, seq, head, covered) values (?,?,?,?,?) "
                    "on conflict (author, epoch) do update set "
                    "covered = max(covered, excluded.covered)",
                    [author, epoch, head[0], head[1] or "", end])
        if peer:
            db.execute("insert into peers (author, received, last_sync) values (?,?,?) "
                       "on conflict (author) do update set received = received + excluded.received, "
                       "last_sync = excluded.last_sync", [peer, applied, peers_now()])
    return PageResult(applied, duplicates, tuple(refused))


def vouched_ranges(admission: Admission, page: Page,
                   peer: str | None) -> dict[tuple[str, int], tuple[int, int]]:
    """The page's ranges of feeds this node sees through its scope filter.

    Ranges of whole feeds are dropped (their chain completes them, never a
    claim), and so are those of authors with no certificate chain here
    (their events are refused anyway). A range ``peer`` cannot know to be
    complete refuses the page (``PageError``): its sender is lying, or is
    not the node it claims to relay for.
    """
    own_scope, own_only = admission.own_scope, admission.own_only
    sender = None if peer is None else admission.authority.scope(peer)
    taken = {}
    for author, epoch, begin, end in page.ranges:
        cert = admission.authority.scope(author)
        if cert is None:
            continue
        if peer is not None and not _can_vouch(peer, sender, author, cert.area, own_scope,
                                               own_only):
            raise PageError(
                N_("refused page: {sender} declares the feed of {author} (epoch {epoch}) "
                   "complete up to seq {end}, which it cannot know: a node vouches only for "
                   "its own feed and those of nodes below it, and only a node at or above "
                   "this one for any other; nothing of the page was applied"),
                sender=sender.name if sender else peer[:16], author=cert.name, epoch=epoch,
                end=end)
        if not cert.area.startswith(own_scope) or (own_only is not None
                                                   and author != admission.me):
            taken[(author, epoch)] = (begin, end)
    return taken


def _can_vouch(peer: str, sender, author: str, area: str, own_scope: str,
               own_only=None) -> bool:
    """Whether ``peer`` can hold every event of ``author`` (certified for ``area``) that
    this node's scope takes: the mirror of ``send._complete_for``."""
    if author == peer:
        return True
    if sender is None:
        return False
    if sender.only is not None:  # a department holds only its own feed whole
        return (own_only is not None and own_only.within(sender.only)
                and own_scope.startswith(sender.area))
    return own_scope.startswith(sender.area) or area.startswith(sender.area)


def _reopen(db, ranges: dict[tuple[str, int], tuple[int, int]]) -> None:
    """Forget how far a filtered feed was said to be complete, where a page re-sends it
    from its start and ends below that.

    The earlier claim then went past what this sender holds: it was false (a
    stolen key above this node), or came from a copy of the sender since
    lost, or this page is an old one delivered late. Lowering is safe in
    every case: the feed falls back to the events held, each signed by its
    author, and this page completes it from there; at worst a later sync
    sends again what is held. So a false claim never keeps a feed's later
    events away for longer than one honest sync.
    """
    for (author, epoch), (begin, end) in ranges.items():
        if begin == 0:
            db.execute("update feeds set covered = 0 where author = ? and epoch = ? and "
                       "covered > ?", [author, epoch, end])
