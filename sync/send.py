"""What a node sends a peer: pages of the events it lacks, within its scope.

The sender pages through, feed by feed, the events above the receiver's
frontier that fall in the receiver's scope, with the certificates and
sealed boxes of clear values they need and the fork evidence the receiver should see. Feeds of
authors inside the receiver's scope go whole; feeds of authors above it
(decisions flowing down) go filtered by scope, each page saying in its
``ranges`` up to which sequence number it completes them.
"""

from __future__ import annotations

from typing import Any, Iterable

from xinfang.core.certs import Certificate
from xinfang.core.event import Event

from xinfang.core import scope as scopes
from . import wire
from .boxes import Release
from .trust import Authority, chain_of
from .wire import Frontier, Page


def _feeds_to_send(node, peer_scope: str, peer_frontier: Frontier):
    """(author, epoch, from, to) for each feed this node can complete for the peer.

    A peer that says it holds more of a feed seen through its filter than
    this node, which completes that feed for it, holds itself was told so
    falsely (by a stolen key above it, or by a copy of this node since
    lost): the feed goes again from its start, which the peer takes as
    the end of the false claim (``receive._reopen``). A whole feed the peer
    holds more of is its own business: its chain shows what it holds.
    """
    db = node.db
    own_scope, me = node.info.area, node.info.author
    authority = Authority(db)
    for author, epoch, top in db.execute("select author, epoch, max(seq, covered) from feeds "
                                         "order by author, epoch").fetchall():
        start = peer_frontier.get((author, epoch), 0)
        if top == start or not _complete_for(authority, author, me, own_scope, peer_scope):
            continue
        cert = authority.scope(author)
        if cert is not None and not (cert.area.startswith(peer_scope)
                                     or peer_scope.startswith(cert.area)):
            continue  # an author writes only inside its own area: nothing here is the peer's
        if top > start:
            yield author, epoch, start, top
        elif top > 0 and cert is not None and not cert.area.startswith(peer_scope):
            yield author, epoch, 0, top


def pages_for(node, peer_scope: str, peer_frontier: Frontier,
              release: Any = None) -> Iterable[Page]:
    """Pages of the events in ``peer_scope`` above ``peer_frontier``, feed by feed.

    Rows are read a page at a time, so a first sync of a large store needs
    the memory of one page, and the cost of a sync follows the number of
    feeds and new events, not the size of the log.
    """
    db = node.db
    events: list[Event] = []
    size = 0
    ranges: list[tuple[str, int, int, int]] = []
    for author, epoch, start, top in list(_feeds_to_send(node, peer_scope, peer_frontier)):
        begin = last = start
        while True:
            rows = db.execute(
                f"select raw, sig, seq from events where author = :author and epoch = :epoch "
                f"and seq > :after and {scopes.SQL} order by seq limit {wire.MAX_PAGE_EVENTS}",
                {"author": author, "epoch": epoch, "after": last, "scope": peer_scope}).fetchall()
            for raw, sig, seq in rows:
                if len(events) >= wire.MAX_PAGE_EVENTS or size + len(raw) > wire.MAX_PAGE_BYTES:
                    if last > begin:  # a range claims something, or is not sent
                        ranges.append((author, epoch, begin, last))
                    yield _page(node, events, ranges, release, peer_scope)
                    events, size, ranges, begin = [], 0, [], last
                events.append(Event.parse(raw, sig))
                size += len(raw)
                last = seq
            if len(rows) < wire.MAX_PAGE_EVENTS:
                break
        if top > begin:
            ranges.append((author, epoch, begin, top))
    if events or ranges:
        yield _page(node, events, ranges, release, peer_scope)
    elif fork_evidence(node.db, peer_scope):
        yield _page(node, [], [], release, peer_scope)


def count_missing(node, peer_scope: str, peer_frontier: Frontier) -> int:
    """How many events ``pages_for`` would send, by counting, not reading them."""
    total = 0
    for author, epoch, start, _ in _feeds_to_send(node, peer_scope, peer_frontier):
        total += node.db.execute(
            f"select count(*) from events where author = :author and epoch = :epoch "
            f"and seq > :after and {scopes.SQL}",
            {"author": author, "epoch": epoch, "after": start, "scope": peer_scope}).fetchone()[0]
    return total


def _complete_for(authority: Authority, author: str, me: str, own_scope: str,
                  peer_scope: str) -> bool:
    """Whether this node holds every event of ``author`` that ``peer_scope`` needs.

    True for feeds it holds whole (its own, and authors inside its scope),
    and for any feed when the peer lies inside its scope. A feed seen through
    a filter is never passed upward: its author's own line delivers it.
    """
    if author == me or peer_scope.startswith(own_scope):
        return True
    cert = authority.scope(author)
    return cert is not None and cert.area.startswith(own_scope)


def fork_evidence(db, peer_scope: str) -> list[tuple[Event, Event]]:
    """The signed pairs that prove each frozen feed forked, within ``peer_scope``."""
    pairs = []
    for author, epoch, seq in db.execute("select author, epoch, seq from frozen_feeds"):
        rows = db.execute(
            "select raw, sig from (select event_id as id, raw, sig from quarantine where "
            "author = :a and epoch = :e and seq = :s union select id, raw, sig from events where "
            "author = :a and epoch = :e and seq = :s) order by id limit 2",
            {"a": author, "e": epoch, "s": seq}).fetchall()
        if len(rows) == 2:
            pair = (Event.parse(*rows[0]), Event.parse(*rows[1]))
            if all(scopes.in_scope(e.entity, e.area, peer_scope) for e in pair):
                pairs.append(pair)
    return pairs


def _page(node, events: list[Event], ranges, release, peer_scope: str) -> Page:
    db = node.db
    forks = fork_evidence(db, peer_scope)
    authors = sorted({e.author for e in events} | {a.author for a, _ in forks})
    certs: dict[str, Certificate] = {}
    subjects = authors + [e.entity_id for e in events if e.entity == scopes.TRUST_ENTITY]
    for subject in subjects:
        for cert in chain_of(db, subject):
            certs[cert.subject] = cert
    boxes = release.boxes(events) if release is not None else []
    return Page(events, boxes, certs.values(), ranges, forks)


def outgoing_rule(node, peer: Certificate) -> Release:
    """The clear values that go to ``peer`` with a page: sealed to each office reached
    through it that plugins let read them (``xinfang_outgoing``), and the boxes
    this node holds for those offices (see ``sync.boxes``)."""
    return Release(node, peer)
