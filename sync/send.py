"""What a node sends a peer: pages of the events it lacks, within its scope.

The sender pages through, feed by feed, the events above the receiver's
frontier that fall in the receiver's scope, with the certificates and
sealed boxes of clear values they need and the fork evidence the receiver should see. Feeds of
authors inside the receiver's scope go whole; feeds of authors above it
(decisions flowing down) go filtered by scope, each page saying in its
``ranges`` up to which sequence number it completes them.

A peer whose certificate carries a department filter (``scope.Filter``)
gets only the events it passes (``scope.Judge``), every feed as ranges; a
node with a filter holds others' feeds only through it, so it completes
for its parent nothing but its own feed, and for a child no wider than
itself what it holds.
"""

from __future__ import annotations

from typing import Any, Iterable

from xinfang.core.certs import Certificate
from xinfang.core.event import Event

from xinfang.core import scope as scopes
from xinfang.core.scope import Filter, Judge
from . import wire
from .boxes import Release
from .trust import Authority, chain_of
from .wire import Frontier, Page


class Route:
    """Where pages go: the peer's scope, and its filter and key if known."""

    def __init__(self, node, scope: str, peer: Certificate | None = None):
        self.scope = scope
        self.subject = peer.subject if peer is not None else None
        self.only: Filter | None = peer.only if peer is not None else None
        self.judge = Judge(node.db, self.only) if self.only is not None else None
        own = node.certificate
        self.own_only = own.only if own is not None and own.subject == node.info.author else None

    def passes(self, entity: str, entity_id: str) -> bool:
        return self.judge is None or self.judge.passes(entity, entity_id)


def _route(node, peer_scope, release, peer) -> Route:
    if isinstance(peer_scope, Route):
        return peer_scope
    if peer is None and isinstance(getattr(release, "peer", None), Certificate):
        peer = release.peer  # the boxes go to this peer: so do the events
    return Route(node, peer_scope, peer)


def _feeds_to_send(node, route: Route, peer_frontier: Frontier):
    """(author, epoch, from, to) for each feed this node can complete for the peer.

    A peer that says it holds more of a feed seen through its filter than
    this node, which completes that feed for it, holds itself was told so
    falsely (by a stolen key above it, or by a copy of this node since
    lost): the feed goes again from its start, which the peer takes as
    the end of the false claim (``receive._reopen``). A whole feed the peer
    holds more of is its own business: its chain shows what it holds.

    Only the feeds that may hold something of the peer's are read
    (``_candidate_feeds``), so a village's request costs the same at a township
    of 3 villages or of 3,000.
    """
    db = node.db
    own_scope, me = node.info.area, node.info.author
    authority = Authority(db)
    scope_of = authority.index().valid.get
    peer_scope = route.scope
    for author, epoch, top in _candidate_feeds(db, authority, peer_scope):
        start = peer_frontier.get((author, epoch), 0)
        if top == start or not _complete_for(scope_of, author, me, own_scope, route):
            continue
        cert = scope_of(author)
        if cert is not None and not (cert.area.startswith(peer_scope)
                                     or peer_scope.startswith(cert.area)):
            continue  # an author writes only inside its own area: nothing here is the peer's
        if top > start:
            yield author, epoch, start, top
        elif top > 0 and cert is not None and (not cert.area.startswith(peer_scope) or (
                route.only is not None and author != route.subject)):
            yield author, epoch, 0, top


#: up to this many authors, their feeds are looked up one by one; more, one pass reads them
FEED_LOOKUPS = 64


def _candidate_feeds(db, authority: Authority, peer_scope: str) -> list[tuple[str, int, int]]:
    """(author, epoch, top) of every feed ``_feeds_to_send`` would not skip for its
    author's area, in (author, epoch) order: those of authors whose scope lies inside
    ``peer_scope`` or contains it, and those of authors with no scope here (whose
    events the scope query judges one by one). Every other feed is skipped there
    whatever the frontiers, so leaving it unread changes nothing sent.
    """
    authors = authority.index().overlapping(peer_scope) | authority.unscoped()
    if len(authors) > FEED_LOOKUPS:
        return [row for row in db.execute("select author, epoch, max(seq, covered) from feeds "
                                          "order by author, epoch") if row[0] in authors]
    rows = []
    for author in sorted(authors):
        rows += db.execute("select author, epoch, max(seq, covered) from feeds where "
                           "author = ? order by epoch", [author]).fetchall()
    return rows


def pages_for(node, peer_scope: str, peer_frontier: Frontier,
              release: Any = None, peer: Certificate | None = None) -> Iterable[Page]:
    """Pages of the events in ``peer_scope`` above ``peer_frontier``, feed by feed.

    ``peer`` (by default the one ``release`` seals boxes to) is the peer's
    certificate: with a department filter, only the events it passes go.
    Rows are read a page at a time, so a first sync of a large store needs
    the memory of one page, and the cost of a sync follows the number of
    feeds and new events, not the size of the log.
    """
    db = node.db
    route = _route(node, peer_scope, release, peer)
    events: list[Event] = []
    size = 0
    ranges: list[tuple[str, int, int, int]] = []
    for author, epoch, start, top in list(_feeds_to_send(node, route, peer_frontier)):
        begin = last = after = start
        while True:
            rows = db.execute(
                f"select raw, sig, seq, entity, entity_id from events where author = :author "
                f"and epoch = :epoch and seq > :after and {scopes.SQL} order by seq "
                f"limit {wire.MAX_PAGE_EVENTS}",
                {"author": author, "epoch": epoch, "after": after, "scope": route.scope}
            ).fetchall()
            for raw, sig, seq, entity, entity_id in rows:
                after = seq
                if not route.passes(entity, entity_id):
                    continue  # outside the peer's filter: the range covers it unsent
                if len(events) >= wire.MAX_PAGE_EVENTS or size + len(raw) > wire.MAX_PAGE_BYTES:
                    if last > begin:  # a range claims something, or is not sent
                        ranges.append((author, epoch, begin, last))
                    yield _page(node, events, ranges, release, route)
                    events, size, ranges, begin = [], 0, [], last
                events.append(Event.parse(raw, sig))
                size += len(raw)
                last = seq
            if len(rows) < wire.MAX_PAGE_EVENTS:
                break
        if top > begin:
            ranges.append((author, epoch, begin, top))
    if events or ranges:
        yield _page(node, events, ranges, release, route)
    elif fork_evidence(node.db, route):
        yield _page(node, [], [], release, route)


def count_missing(node, peer_scope: str, peer_frontier: Frontier,
                  peer: Certificate | None = None) -> int:
    """How many events ``pages_for`` would send, by counting, not reading them."""
    route = _route(node, peer_scope, None, peer)
    total = 0
    for author, epoch, start, _ in _feeds_to_send(node, route, peer_frontier):
        where = (f"from events where author = :author and epoch = :epoch and seq > :after "
                 f"and {scopes.SQL}")
        values = {"author": author, "epoch": epoch, "after": start, "scope": route.scope}
        if route.judge is None:
            total += node.db.execute(f"select count(*) {where}", values).fetchone()[0]
        else:
            total += sum(route.passes(entity, entity_id) for entity, entity_id in
                         node.db.execute(f"select entity, entity_id {where}", values))
    return total


def _complete_for(scope_of, author: str, me: str, own_scope: str, route: Route) -> bool:
    """Whether this node holds every event of ``author`` that the peer needs.

    True for feeds it holds whole (its own, and authors inside its scope),
    and for any feed when the peer lies inside its scope. A feed seen through
    a filter is never passed upward: its author's own line delivers it. A
    node with a department filter holds only its own feed whole: it completes
    others' only for a peer inside its scope whose filter is no wider.
    ``scope_of`` gives an author's certificate as ``Authority.scope`` does.
    """
    if author == me:
        return True
    if route.own_only is not None:
        return (route.only is not None and route.only.within(route.own_only)
                and route.scope.startswith(own_scope))
    if route.scope.startswith(own_scope):
        return True
    cert = scope_of(author)
    return cert is not None and cert.area.startswith(own_scope)


def fork_evidence(db, route: Route) -> list[tuple[Event, Event]]:
    """The signed pairs that prove each frozen feed forked, within the peer's scope
    and passing its filter."""
    pairs = []
    for author, epoch, seq in db.execute("select author, epoch, seq from frozen_feeds"):
        rows = db.execute(
            "select raw, sig from (select event_id as id, raw, sig from quarantine where "
            "author = :a and epoch = :e and seq = :s union select id, raw, sig from events where "
            "author = :a and epoch = :e and seq = :s) order by id limit 2",
            {"a": author, "e": epoch, "s": seq}).fetchall()
        if len(rows) == 2:
            pair = (Event.parse(*rows[0]), Event.parse(*rows[1]))
            if all(scopes.in_scope(e.entity, e.area, route.scope)
                   and route.passes(e.entity, e.entity_id) for e in pair):
                pairs.append(pair)
    return pairs


def _page(node, events: list[Event], ranges, release, route: Route) -> Page:
    db = node.db
    forks = fork_evidence(db, route)
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
