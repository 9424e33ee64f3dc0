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

import datetime as dt

import attrs

from xinfang.core import fold, store
from xinfang.core.errors import InvalidEvent
from xinfang.core.event import Event

from . import scope as scopes
from .quarantine import freeze, quarantine, take_fork_evidence
from .trust import Authority, admit
from .wire import Page


@attrs.frozen
class Refusal:
    event_id: str
    author: str
    epoch: int
    seq: int
    reason: str


@attrs.frozen
class PageResult:
    applied: int
    duplicates: int
    refused: tuple[Refusal, ...]


def apply_page(node, page: Page, peer: str | None = None) -> PageResult:
    """Check and apply one page in one transaction, with the frontier it moves."""
    db = node.db
    now = dt.datetime.now().isoformat(timespec="seconds")
    applied = duplicates = 0
    refused: list[Refusal] = []
    with db.atomic():
        admit(db, page.certs)
        authority = Authority(db)
        own_scope = node.info.area
        for first, second in page.forks:
            take_fork_evidence(node, authority, first, second, now)
        for secret in page.secrets:
            if secret.holds():
                db.execute("insert or ignore into secrets (digest, salt, value) values (?,?,?)",
                           [secret.digest, secret.salt, secret.value])
        ranges = {(a, e): (f, t) for a, e, f, t in page.ranges}
        for event in sorted(page.events, key=lambda e: (e.author, e.epoch, e.seq)):
            reason = check_event(node, authority, own_scope, event,
                                 ranges.get((event.author, event.epoch)))
            if reason == "duplicate":
                duplicates += 1
                continue
            if reason:
                refused.append(Refusal(event.id, event.author, event.epoch, event.seq, reason))
                quarantine(db, event, reason, peer, now)
                continue
            store.insert_event(db, event)
            node.clock.observe(event.hlc)
            fold.apply(node.context, event)
            db.execute("delete from quarantine where event_id = ?", [event.id])
            applied += 1
        blocked = {(r.author, r.epoch) for r in refused}
        for (author, epoch), (begin, end) in ranges.items():
            cert = authority.scope(author)
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
                       "last_sync = excluded.last_sync", [peer, applied, now])
    return PageResult(applied, duplicates, tuple(refused))


def frontier_of(db, author: str, epoch: int) -> int:
    row = db.execute("select max(seq, covered) from feeds where author = ? and epoch = ?",
                     [author, epoch]).fetchone()
    return row[0] if row else 0


def check_event(node, authority: Authority, own_scope: str, event: Event,
                declared: tuple[int, int] | None = None) -> str | None:
    """Why ``event`` may not be applied here, 'duplicate', or None.

    A pure function of the event, its author's chain and the trust data held,
    never of this machine's clock.
    """
    db = node.db
    stored = db.execute("select id from events where author = ? and epoch = ? and seq = ?",
                        [event.author, event.epoch, event.seq]).fetchone()
    if stored and stored[0] == event.id:
        return "duplicate"
    if not event.signature_valid():
        return "bad signature: the event's signature does not verify against its author's key"
    cert = authority.scope(event.author)
    if cert is None:
        return "unknown author: no certificate chain from this author to the trusted root"
    if not event.area.startswith(cert.area):
        return (f"outside jurisdiction: area {event.area} is not inside its author's scope "
                f"{cert.area} ({cert.name})")
    if not scopes.in_scope(event.entity, event.area, own_scope):
        return f"not for this node: area {event.area} is outside this node's scope {own_scope}"
    revoked = db.execute("select epoch, seq from revocations where subject = ?",
                         [event.author]).fetchone()
    if revoked and (event.epoch, event.seq) > tuple(revoked):
        return (f"revoked key: {cert.name}'s key was revoked after epoch {revoked[0]} "
                f"seq {revoked[1]}")
    frozen = db.execute("select seq from frozen_feeds where author = ? and epoch = ?",
                        [event.author, event.epoch]).fetchone()
    if frozen and event.seq >= frozen[0]:
        return f"frozen feed: {cert.name}'s feed forked at seq {frozen[0]}; an administrator must act"
    if stored:
        freeze(node, event, cert.name)
        return (f"fork: {cert.name} signed two different events as epoch {event.epoch} "
                f"seq {event.seq}; both are kept as evidence and the feed is frozen")
    if node.registry.entity_type(event.entity) is None:
        return f"unknown entity type {event.entity!r}: no installed plugin handles it"
    try:
        node.pm.hook.xinfang_validate_event(event=event, node=node)
    except InvalidEvent as exc:
        return f"invalid: {exc}"
    whole = cert.area.startswith(own_scope)
    seq, head = store.feed_head(db, event.author, event.epoch)
    if whole:
        if event.seq != seq + 1:
            return f"gap: expected seq {seq + 1} of {cert.name}'s feed, got seq {event.seq}"
        if event.prev != head:
            return f"broken chain: prev of seq {event.seq} is not the id of seq {seq}"
    else:
        held = frontier_of(db, event.author, event.epoch)
        if declared is None or not declared[0] < event.seq <= declared[1]:
            return f"undeclared: seq {event.seq} of {cert.name}'s feed is outside the page's ranges"
        if declared[0] > held:
            return (f"gap: the page continues {cert.name}'s feed from seq {declared[0]}, but this "
                    f"node holds it only up to seq {held}")
        if event.seq <= held:
            return f"out of order: seq {event.seq} of {cert.name}'s feed is below what is held"
        before = db.execute("select id from events where author = ? and epoch = ? and seq = ?",
                            [event.author, event.epoch, event.seq - 1]).fetchone()
        if before and event.prev != before[0]:
            return f"broken chain: prev of seq {event.seq} is not the id of seq {event.seq - 1}"
    return None
