"""Pages and frontiers as they travel between nodes, and the limits on a page.

Both ends of a sync speak these forms, so they live apart from the code
that builds pages (``send``) and the code that checks them (``receive``).

A frontier maps each feed (author, epoch) to the highest sequence number a
node holds of it, within its scope. A page carries events, the sealed boxes
of clear values that ride with them (``boxes``), the certificates they need, fork evidence, and for feeds the receiver sees
through a filter the ``ranges`` it completes: "every in-scope event of this
feed with from < seq <= to is in this page". Events and certificates travel
in the one wire form of a signed document (see ``core.signed``); fork
evidence is a pair of event wire forms.

Every part of a page and a frontier is type-checked here, so that what a
peer sends is either a ``Page`` of well-formed values or a ``PageError``
naming the part that is wrong; nothing further on meets a value of the
wrong type. A sequence number is at most ``MAX_SEQ``, the largest integer
the canonical encoding holds, since no event can carry a larger one; a
range is never empty (an honest sender has nothing to say of a feed it
sends nothing of) and names its feed once.

The protocol's version (``PROTOCOL``) is 2. A request that says ``"v": 2`` is
answered with frontiers cut to what the caller can use: a ``hello`` carries the
server's frontier over the feeds the caller's own frontier names
(``frontier_over``), or nothing but its digest (``summary``) when the caller
already holds that much from its last sync; a ``push`` is answered with the
server's frontier over the feeds of the page just taken. Nothing else of the
server's frontier is ever read by a caller (it pushes only feeds it holds), so
what it sends and acknowledges is the same. A request without ``"v"`` (release
1, which ignores the field in answers as an older server ignores it in
requests) is answered with the whole frontier, as before, so either side may be
upgraded first.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable

import attrs

from xinfang.core import codec
from xinfang.core.certs import Certificate
from xinfang.core.codec import MAX_SAFE_INT
from xinfang.core.errors import InvalidEvent, InvalidInput, XinfangError
from xinfang.core.event import Event
from xinfang.core.i18n import N_, Message

from .boxes import Box, box_from_wire

#: the sync protocol's version; see the module text for what 2 changed
PROTOCOL = 2
MAX_PAGE_EVENTS = 500
MAX_PAGE_BYTES = 4 * 1024 * 1024
#: the largest sequence number (and epoch) anything may name: the encoding's largest integer
MAX_SEQ = MAX_SAFE_INT
#: the most boxes of clear values one page carries
MAX_PAGE_BOXES = 4 * MAX_PAGE_EVENTS

Frontier = dict[tuple[str, int], int]

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


class PageError(XinfangError):
    """A page that is malformed as a whole (not one bad event in it)."""


@attrs.frozen
class Page:
    events: tuple[Event, ...] = attrs.field(converter=tuple)
    boxes: tuple[Box, ...] = attrs.field(converter=tuple, default=())
    certs: tuple[Certificate, ...] = attrs.field(converter=tuple, default=())
    ranges: tuple[tuple[str, int, int, int], ...] = attrs.field(converter=tuple, default=())
    #: fork evidence: pairs of events one author signed with the same epoch and seq
    forks: tuple[tuple[Event, Event], ...] = attrs.field(converter=tuple, default=())

    def to_wire(self) -> dict[str, Any]:
        return {
            "events": [e.to_wire() for e in self.events],
            "boxes": [b.to_wire() for b in self.boxes],
            "certs": [c.to_wire() for c in self.certs],
            "ranges": [list(r) for r in self.ranges],
            "forks": [[a.to_wire(), b.to_wire()] for a, b in self.forks],
        }

    @classmethod
    def from_wire(cls, data: Any) -> "Page":
        """Parse a page; any part that does not parse refuses the whole page."""
        if not isinstance(data, dict):
            raise _malformed(N_("a page is a map of events, boxes, certs, ranges and "
                                "forks, not {got}"), got=type(data).__name__)
        events, boxes, certs, ranges = (_list(data, name) for name in
                                        ("events", "boxes", "certs", "ranges"))
        forks = _list(data, "forks") if "forks" in data else []
        if len(events) > MAX_PAGE_EVENTS:
            raise PageError(N_("page has {count} events; the limit is {limit}"),
                            count=len(events), limit=MAX_PAGE_EVENTS)
        encoded = sum(len(e[0]) for e in events  # malformed entries: Event.from_wire below
                      if isinstance(e, (list, tuple)) and e and isinstance(e[0], str))
        if encoded * 3 // 4 > MAX_PAGE_BYTES:
            raise PageError(N_("page holds about {size} bytes of events; the limit is "
                               "{limit}"), size=encoded * 3 // 4, limit=MAX_PAGE_BYTES)
        try:
            parsed_events = [Event.from_wire(e) for e in events]
            parsed_forks = [_fork(number, pair) for number, pair in enumerate(forks, 1)]
        except InvalidEvent as exc:
            raise PageError(N_("page holds a malformed event: {error}"),
                            error=exc.message) from None
        try:
            parsed_certs = [Certificate.from_wire(c) for c in certs]
        except InvalidInput as exc:
            raise PageError(N_("page holds a malformed certificate: {error}"),
                            error=exc.message) from None
        if len(boxes) > MAX_PAGE_BOXES:
            raise PageError(N_("page has {count} sealed boxes; the limit is {limit}"),
                            count=len(boxes), limit=MAX_PAGE_BOXES)
        return cls(parsed_events, [_box(n, b) for n, b in enumerate(boxes, 1)],
                   parsed_certs, _ranges(ranges), parsed_forks)


def _malformed(why: str, **values) -> PageError:
    return PageError(N_("malformed page: {why}"), why=Message(why, **values))


def _list(data: dict, name: str) -> list:
    if name not in data:
        raise _malformed(N_("it has no “{part}”"), part=name)
    if not isinstance(data[name], (list, tuple)):
        raise _malformed(N_("its “{part}” is not a list but {got}"), part=name,
                         got=type(data[name]).__name__)
    return data[name]


def _fork(number: int, pair: Any) -> tuple[Event, Event]:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise _malformed(N_("fork evidence {number} is not a pair of events"), number=number)
    return Event.from_wire(pair[0]), Event.from_wire(pair[1])


def _box(number: int, item: Any) -> Box:
    found = box_from_wire(item)
    if isinstance(found, Message):
        raise _malformed(N_("sealed box {number}: {problem}"), number=number, problem=found)
    return found


def _count(value: Any, least: int) -> bool:
    """An integer (not a boolean) from ``least`` to ``MAX_SEQ``."""
    return type(value) is int and least <= value <= MAX_SEQ


def _ranges(items: list) -> list[tuple[str, int, int, int]]:
    """Each range as [author, epoch, from, to] with 0 <= from < to <= MAX_SEQ, once per feed.

    A range beyond the largest sequence number an event can carry claims
    events that cannot exist, and an empty one claims nothing; both come only
    from a sender that is broken or lying, so the page is refused.
    """
    ranges, seen = [], set()
    for number, item in enumerate(items, 1):
        if (not isinstance(item, (list, tuple)) or len(item) != 4 or not isinstance(item[0], str)
                or not _HEX64.match(item[0]) or not all(_count(v, 0) for v in item[1:])):
            raise _malformed(N_("range {number} is not [author, epoch, from, to] with a 64-hex "
                                "author and whole numbers from 0 to {limit}"),
                             number=number, limit=MAX_SEQ)
        author, epoch, begin, end = item
        if begin >= end:
            raise _malformed(N_("range {number} of the feed of {author}… claims nothing: "
                                "from {begin} is not below to {end}"), number=number,
                             author=author[:16], begin=begin, end=end)
        if (author, epoch) in seen:
            raise _malformed(N_("range {number} names the feed of {author}…, epoch {epoch} a "
                                "second time"), number=number, author=author[:16], epoch=epoch)
        seen.add((author, epoch))
        ranges.append((author, epoch, begin, end))
    return ranges


def frontier(db) -> Frontier:
    return {(a, e): max(seq, covered) for a, e, seq, covered in
            db.execute("select author, epoch, seq, covered from feeds")}


def frontier_over(db, feeds: Iterable[tuple[str, int]]) -> Frontier:
    """This node's frontier over ``feeds`` only: those of them it holds anything of."""
    found: Frontier = {}
    for author, epoch in feeds:
        row = db.execute("select max(seq, covered) from feeds where author = ? and epoch = ?",
                         [author, epoch]).fetchone()
        if row is not None:
            found[(author, epoch)] = row[0]
    return found


def summary(value: Frontier) -> str:
    """A digest of a frontier, for saying "as you last told me" in 64 characters: the
    SHA-256 of its canonical bytes, so equal digests are equal frontiers."""
    return hashlib.sha256(codec.encode(frontier_to_wire(value))).hexdigest()


def is_summary(value: Any) -> bool:
    return isinstance(value, str) and _HEX64.match(value) is not None


def frontier_to_wire(value: Frontier) -> list[list[Any]]:
    return [[a, e, s] for (a, e), s in sorted(value.items())]


def frontier_from_wire(data: Any) -> Frontier:
    """Read a frontier: [author, epoch, seq] per feed, each feed once."""
    if data == {}:  # what the peers table keeps for a peer not yet heard from
        return {}
    if not isinstance(data, (list, tuple)):
        raise PageError(N_("malformed frontier ({error})"),
                        error=Message(N_("a frontier is a list, not {got}"),
                                      got=type(data).__name__))
    found: Frontier = {}
    for number, item in enumerate(data, 1):
        if (not isinstance(item, (list, tuple)) or len(item) != 3 or not isinstance(item[0], str)
                or not _HEX64.match(item[0]) or not _count(item[1], 0)
                or not _count(item[2], 0) or (item[0], item[1]) in found):
            raise PageError(N_("malformed frontier ({error})"), error=Message(
                N_("entry {number} is not [author, epoch, seq] of a 64-hex author and whole "
                   "numbers from 0 to {limit}, each feed once"), number=number, limit=MAX_SEQ))
        found[(item[0], item[1])] = item[2]
    return found


def speaks_compact(payload: dict[str, Any]) -> bool:
    """Whether the caller reads protocol 2's frontiers (``wire``): its request says
    ``"v"`` of 2 or more. Release 1 sends no ``"v"`` and is answered as before."""
    version = payload.get("v")
    return type(version) is int and version >= PROTOCOL


def hello_frontier(db, theirs: Frontier, heard: Any, compact: bool) -> dict[str, Any]:
    """The frontier part of a hello's answer.

    Protocol 2: this node's frontier over the feeds the caller holds (all it
    pushes from), and only its digest when the caller's summary (``heard``) of what it
    last heard of them is that digest already. Release 1: the whole frontier.
    """
    if not compact:
        return {"frontier": frontier_to_wire(frontier(db))}
    mine = frontier_over(db, theirs)
    digest = summary(mine)
    return {"v": PROTOCOL, "summary": digest,
            "frontier": [] if heard == digest else frontier_to_wire(mine)}


def feeds_of(page: Page) -> list[tuple[str, int]]:
    """The feeds a page moves: those of its events and of its ranges."""
    return sorted({(e.author, e.epoch) for e in page.events}
                  | {(author, epoch) for author, epoch, _, _ in page.ranges})
