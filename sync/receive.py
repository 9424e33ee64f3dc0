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
"""

from __future__ import annotations

import attrs

from xinfang.core import i18n, store
from xinfang.core.admission import DUPLICATE, Admission, frontier_of
from xinfang.core.event import EventReason
from xinfang.core.admission import now as peers_now

from .trust import admit
from .wire import Page

__all__ = ["PageResult", "Refusal", "apply_page", "frontier_of"]


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
    the same checks a local write and a bundle pass.
    """
    db = node.db
    applied = duplicates = 0
    refused: list[Refusal] = []
    with db.atomic():
        admit(db, page.certs)
        admission = Admission(node, peer=peer)
        own_scope = admission.own_scope
        for first, second in page.forks:
            admission.take_fork_evidence(first, second)
        for secret in page.secrets:
            if secret.holds():
                db.execute("insert or ignore into secrets (digest, salt, value) values (?,?,?)",
                           [secret.digest, secret.salt, secret.value])
        ranges = {(a, e): (f, t) for a, e, f, t in page.ranges}
        for event in sorted(page.events, key=lambda e: (e.author, e.epoch, e.seq)):
            reason = admission.admit(event, ranges.get((event.author, event.epoch)))
            if reason == DUPLICATE:
                duplicates += 1
            elif reason:
                refused.append(Refusal(event.id, event.author, event.epoch, event.seq,
                                       i18n.stored(reason)))
            else:
                applied += 1
        blocked = {(r.author, r.epoch) for r in refused}
        for (author, epoch), (begin, end) in ranges.items():
            cert = admission.authority.scope(author)
            if (author, epoch) in blocked or cert is None or cert.area.startswith(own_scope):
                continue  # whole feeds are complete by their chain, never by a claim
            if begin <= frontier_of(db, author, epoch):
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
