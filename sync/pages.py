"""Pages and frontiers: sending only what the other side lacks, applying it safely.

A frontier maps each feed (author, epoch) to the highest sequence number a
node holds of it, within its scope. The sender pages through, feed by feed,
the events above the receiver's frontier that fall in the receiver's scope.
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

import base64
import datetime as dt
from typing import Any, Iterable

import attrs

from xinfang.core import fold, store
from xinfang.core.certs import Certificate
from xinfang.core.errors import InvalidEvent, InvalidInput, XinfangError
from xinfang.core.event import Event
from xinfang.core.sealing import Secret

from . import scope as scopes
from .trust import Authority, admit, chain_of

MAX_PAGE_EVENTS = 500
MAX_PAGE_BYTES = 4 * 1024 * 1024

Frontier = dict[tuple[str, int], int]


class PageError(XinfangError):
    """A page that is malformed as a whole (not one bad event in it)."""


@attrs.frozen
class Page:
    events: tuple[Event, ...] = attrs.field(converter=tuple)
    secrets: tuple[Secret, ...] = attrs.field(converter=tuple, default=())
    certs: tuple[Certificate, ...] = attrs.field(converter=tuple, default=())
    ranges: tuple[tuple[str, int, int, int], ...] = attrs.field(converter=tuple, default=())
    #: fork evidence: pairs of events one author signed with the same epoch and seq
    forks: tuple[tuple[Event, Event], ...] = attrs.field(converter=tuple, default=())

    def to_wire(self) -> dict[str, Any]:
        b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
        return {
            "events": [[b64(e.raw), b64(e.signature)] for e in self.events],
            "secrets": [[s.digest, s.salt, s.value] for s in self.secrets],
            "certs": [[b64(c.raw), b64(c.signature)] for c in self.certs],
            "ranges": [list(r) for r in self.ranges],
            "forks": [[b64(a.raw), b64(a.signature), b64(b.raw), b64(b.signature)]
                      for a, b in self.forks],
        }

    @classmethod
    def from_wire(cls, data: Any) -> "Page":
        """Parse a page; any event that does not parse refuses the whole page."""
        try:
            if len(data["events"]) > MAX_PAGE_EVENTS:
                raise PageError(f"page has {len(data['events'])} events; the limit is "
                                f"{MAX_PAGE_EVENTS}")
            encoded = sum(len(r) for r, _ in data["events"])
            if encoded * 3 // 4 > MAX_PAGE_BYTES:
                raise PageError(f"page holds about {encoded * 3 // 4} bytes of events; the limit "
                                f"is {MAX_PAGE_BYTES}")
            decode = lambda t: base64.b64decode(t, validate=True)  # noqa: E731
            events = [Event.parse(decode(r), decode(s)) for r, s in data["events"]]
            forks = [(Event.parse(decode(a), decode(b)), Event.parse(decode(c), decode(d)))
                     for a, b, c, d in data.get("forks", [])]
            secrets = [Secret(d, s, v) for d, s, v in data["secrets"]]
            certs = [Certificate.parse(base64.b64decode(r, validate=True),
                                       base64.b64decode(s, validate=True))
                     for r, s in data["certs"]]
            ranges = [(str(a), int(e), int(f), int(t)) for a, e, f, t in data["ranges"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise PageError(f"malformed page ({type(exc).__name__}: {exc})") from None
        except (InvalidEvent, InvalidInput) as exc:
            raise PageError(f"page holds a malformed event: {exc}") from None
        return cls(events, secrets, certs, ranges, forks)


def frontier(db) -> Frontier:
    return {(a, e): max(seq, covered) for a, e, seq, covered in
            db.execute("select author, epoch, seq, covered from feeds")}


def frontier_to_wire(value: Frontier) -> list[list[Any]]:
    return [[a, e, s] for (a, e), s in sorted(value.items())]


def frontier_from_wire(data: Any) -> Frontier:
    try:
        return {(str(a), int(e)): int(s) for a, e, s in data}
    except (TypeError, ValueError) as exc:
        raise PageError(f"malformed frontier ({exc})") from None


# -- sending -------------------------------------------------------------------


def _feeds_to_send(node, peer_scope: str, peer_frontier: Frontier):
    """(author, epoch, from, to) for each feed this node can complete for the peer."""
    db = node.db
    own_scope, me = node.info.area, node.info.author
    authority = Authority(db)
    for author, epoch, top in db.execute("select author, epoch, max(seq, covered) from feeds "
                                         "order by author, epoch").fetchall():
        start = peer_frontier.get((author, epoch), 0)
        if top <= start or not _complete_for(authority, author, me, own_scope, peer_scope):
            continue
        cert = authority.scope(author)
        if cert is not None and not (cert.area.startswith(peer_scope)
                                     or peer_scope.startswith(cert.area)):
            continue  # an author writes only inside its own area: nothing here is the peer's
        yield author, epoch, start, top


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
                f"and seq > :after and {scopes.SQL} order by seq limit {MAX_PAGE_EVENTS}",
                {"author": author, "epoch": epoch, "after": last, "scope": peer_scope}).fetchall()
            for raw, sig, seq in rows:
                if len(events) >= MAX_PAGE_EVENTS or size + len(raw) > MAX_PAGE_BYTES:
                    ranges.append((author, epoch, begin, last))
                    yield _page(node, events, ranges, release, peer_scope)
                    events, size, ranges, begin = [], 0, [], last
                events.append(Event.parse(raw, sig))
                size += len(raw)
                last = seq
            if len(rows) < MAX_PAGE_EVENTS:
                break
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
        rows = db.execute("select raw, sig from quarantine where author = ? and epoch = ? "
                          "and seq = ? order by event_id limit 2", [author, epoch, seq]).fetchall()
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
    secrets = []
    for event in events:
        if release is None or release(event):
            secrets.extend(_secrets_of(db, event))
    return Page(events, secrets, certs.values(), ranges, forks)


def _secrets_of(db, event: Event) -> list[Secret]:
    digests = _digests(event.body)
    if not digests:
        return []
    marks = ",".join("?" * len(digests))
    return [Secret(d, s, v) for d, s, v in db.execute(
        f"select digest, salt, value from secrets where digest in ({marks})", sorted(digests))]


def _digests(value: Any) -> set[str]:
    """Every 64-hex string in a body: candidates for sealed values."""
    found: set[str] = set()
    if isinstance(value, dict):
        for item in value.values():
            found |= _digests(item)
    elif isinstance(value, list):
        for item in value:
            found |= _digests(item)
    elif isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        found.add(value)
    return found


# -- receiving -----------------------------------------------------------------


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
            _take_fork_evidence(node, authority, first, second, now)
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
                _quarantine(db, event, reason, peer, now)
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
        _freeze(node, event, cert.name)
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


def _quarantine(db, event: Event, reason: str, peer: str | None, now: str) -> None:
    db.execute(
        "insert into quarantine (event_id, author, epoch, seq, raw, sig, reason, peer, at) "
        "values (?,?,?,?,?,?,?,?,?) on conflict (event_id) do update set "
        "reason = excluded.reason, peer = excluded.peer, at = excluded.at",
        [event.id, event.author, event.epoch, event.seq, event.raw, event.signature,
         reason, peer, now])


def _take_fork_evidence(node, authority: Authority, first: Event, second: Event,
                        now: str) -> None:
    """Freeze a feed on proof from elsewhere: two valid signatures on one position."""
    same_place = (first.author, first.epoch, first.seq) == (second.author, second.epoch, second.seq)
    cert = authority.scope(first.author)
    if (not same_place or first.id == second.id or cert is None
            or not first.signature_valid() or not second.signature_valid()):
        return  # not evidence of anything: ignored, as a forged claim must be
    if node.db.execute("select 1 from frozen_feeds where author = ? and epoch = ?",
                       [first.author, first.epoch]).fetchone():
        return
    for event in (first, second):
        _quarantine(node.db, event, f"fork: {cert.name} signed two different events as epoch "
                                    f"{event.epoch} seq {event.seq}", None, now)
    _freeze(node, first, cert.name)


def _freeze(node, event: Event, name: str) -> None:
    """Freeze a forked feed from the fork point: later events leave the views.

    Which of two forked events arrived first differs between nodes; taking
    both branches out from the fork point on makes every node that has seen
    the fork hold the same state.
    """
    db = node.db
    now = dt.datetime.now().isoformat(timespec="seconds")
    db.execute("insert or ignore into frozen_feeds (author, epoch, seq, reason) values (?,?,?,?)",
               [event.author, event.epoch, event.seq, f"fork at seq {event.seq}"])
    if event.author == node.info.author:
        # This node forked itself (it was restored from a copy). Its own log stays;
        # it writes on in a new epoch, which no one holds a frozen feed for.
        if node.info.epoch == event.epoch:
            node.new_epoch()
        return
    remove_from_log(node.context, "author = ? and epoch = ? and seq >= ?",
                    [event.author, event.epoch, event.seq], f"frozen feed: {name} forked", now)


def remove_from_log(ctx: fold.FoldContext, where: str, params: list[Any], reason: str,
                    now: str) -> int:
    """Move events that turned out invalid into quarantine and re-fold what they touched."""
    db = ctx.db
    rows = db.execute(f"select id, author, epoch, seq, raw, sig, entity, entity_id from events "
                      f"where {where}", params).fetchall()
    touched = set()
    for event_id, author, epoch, seq, raw, sig, entity, entity_id in rows:
        db.execute("insert into quarantine (event_id, author, epoch, seq, raw, sig, reason, peer, "
                   "at) values (?,?,?,?,?,?,?,?,?) on conflict (event_id) do update set "
                   "reason = excluded.reason, at = excluded.at",
                   [event_id, author, epoch, seq, raw, sig, reason, None, now])
        db.execute("delete from events where id = ?", [event_id])
        touched.add((entity, entity_id))
    for author, epoch in {(r[1], r[2]) for r in rows}:
        last = db.execute("select seq, id from events where author = ? and epoch = ? "
                          "order by seq desc limit 1", [author, epoch]).fetchone()
        if last:
            db.execute("update feeds set seq = ?, head = ? where author = ? and epoch = ?",
                       [last[0], last[1], author, epoch])
        else:
            db.execute("delete from feeds where author = ? and epoch = ?", [author, epoch])
    for entity, entity_id in sorted(touched):
        fold.refold(ctx, entity, entity_id)
    return len(rows)
