"""The event: the unit of the log, signed once by its author.

The author encodes the event into canonical bytes and signs them as a
signed document of kind "event" (see ``signed``: ``EVENT_DOMAIN + bytes``
with Ed25519); from then on every node keeps and forwards those bytes with
the signature. The id is the SHA-256 of the bytes.
Each event names its author (the Ed25519 public key), the author's epoch and
sequence number in that epoch, and the id of the author's previous event in
the epoch, so a log is a hash chain per (author, epoch).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import attrs

from . import keys, signed
from .errors import InvalidEvent
from .hlc import MAX_COUNTER, MAX_WALL_MS, Timestamp
from .i18n import N_, Message

KIND = "event"
EVENT_DOMAIN = signed.KINDS[KIND].domain
FORMAT_VERSION = 1
MAX_EVENT_BYTES = signed.KINDS[KIND].max_bytes
FIELDS = ("area", "author", "body", "entity", "epoch", "hlc", "id", "prev", "seq", "type", "v")

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_NAME = re.compile(r"\A[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")


def event_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


#: wall times below this take 15 digits in an order key, as every key stored so far does
_FAR = 10**15


def order_key(ts: Timestamp, author: str, epoch: int, seq: int) -> str:
    """A string whose sort order is the total order of events.

    A wall time from the year 33658 on (10**15 ms and more, up to
    ``MAX_WALL_MS``) is written as ``:`` and 16 digits: ``:`` sorts after
    every digit, so such keys sort after all 15-digit ones and among
    themselves by value, and the keys already stored keep their form.
    """
    return f"{_stamp(ts)}.{author}.{epoch:010d}.{seq:012d}"


def _stamp(ts: Timestamp) -> str:
    wall = f"{ts.wall_ms:015d}" if ts.wall_ms < _FAR else f":{ts.wall_ms:016d}"
    return f"{wall}.{ts.counter:010d}"


def timestamp_of(key: str) -> Timestamp:
    """The timestamp an order key begins with."""
    wall, counter = key.split(".")[:2]
    return Timestamp(int(wall.lstrip(":")), int(counter))


def order_key_ceiling(ts: Timestamp) -> str:
    """A string sorting after the order key of every event stamped at ``ts`` or before,
    and before that of every event stamped later."""
    return f"{_stamp(ts)}.~"  # "~" sorts after the hex digits of every author


@attrs.frozen
class Event:
    """A verified-shape event; ``raw`` and ``signature`` are what travels."""

    raw: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    id: str
    author: str
    epoch: int
    seq: int
    prev: str | None
    hlc: Timestamp
    type: str
    entity: str
    entity_id: str
    area: str
    body: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def order_key(self) -> str:
        return order_key(self.hlc, self.author, self.epoch, self.seq)

    def signature_valid(self) -> bool:
        return signed.signature_valid(KIND, self.author, self.raw, self.signature)

    def to_wire(self) -> list[str]:
        """The one wire form of a signed document (see ``signed``)."""
        return signed.to_wire(self.raw, self.signature)

    @classmethod
    def from_wire(cls, data: Any) -> "Event":
        """Read the wire form; checks shape, not the signature."""
        try:
            document = signed.from_wire(KIND, data)
        except signed.SignedError as exc:
            raise InvalidEvent(exc.message) from None
        return cls.from_document(document)

    @classmethod
    def create(cls, signer: keys.NodeKeys, *, epoch: int, seq: int, prev: str | None,
               hlc: Timestamp, type: str, entity: str, entity_id: str, area: str,
               body: dict[str, Any]) -> "Event":
        """Encode and sign a new event; the only place event bytes are made."""
        content = {
            "v": FORMAT_VERSION, "author": signer.author, "epoch": epoch, "seq": seq,
            "prev": prev, "hlc": hlc.to_list(), "type": type, "entity": entity,
            "id": entity_id, "area": area, "body": body,
        }
        _check_content(content)
        try:
            document = signed.sign(signer, KIND, content)
        except signed.SignedError as exc:
            raise InvalidEvent(exc.message) from None
        return cls.from_content(document.raw, document.signature, content)

    @classmethod
    def parse(cls, raw: bytes, signature: bytes) -> "Event":
        """Decode stored or received bytes; checks shape, not the signature."""
        try:
            document = signed.parse(KIND, raw, signature)
        except signed.SignedError as exc:
            raise InvalidEvent(exc.message) from None
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: signed.Signed) -> "Event":
        _check_content(document.content)
        return cls.from_content(document.raw, document.signature, document.content)

    @classmethod
    def from_content(cls, raw: bytes, signature: bytes, content: dict[str, Any]) -> "Event":
        return cls(
            raw=raw, signature=signature, id=event_id(raw), author=content["author"],
            epoch=content["epoch"], seq=content["seq"], prev=content["prev"],
            hlc=Timestamp.from_list(content["hlc"]), type=content["type"],
            entity=content["entity"], entity_id=content["id"], area=content["area"],
            body=content["body"],
        )


def _check_content(content: Any) -> None:
    def bad(why: str, **values) -> InvalidEvent:
        return InvalidEvent(N_("malformed event: {why}"), why=Message(why, **values))

    if not isinstance(content, dict) or tuple(sorted(content)) != FIELDS:
        got = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise bad(N_("fields must be exactly {fields}; got {got}"), fields=", ".join(FIELDS),
                  got=str(got))
    if content["v"] != FORMAT_VERSION:
        raise bad(N_("format version {version}; this node reads version {supported}"),
                  version=repr(content["v"]), supported=FORMAT_VERSION)
    if not isinstance(content["author"], str) or not _HEX64.match(content["author"]):
        raise bad(N_("author must be 64 lower-case hex digits (an Ed25519 public key)"))
    for name in ("epoch", "seq"):
        value = content[name]
        if type(value) is not int or value < (0 if name == "epoch" else 1):
            raise bad(N_("{name} must be a non-negative integer") if name == "epoch"
                      else N_("{name} must be a positive integer"), name=name)
    prev = content["prev"]
    if content["seq"] == 1:
        if prev is not None:
            raise bad(N_("the first event of an epoch (seq 1) must have prev null"))
    elif not isinstance(prev, str) or not _HEX64.match(prev):
        raise bad(N_("prev must be the 64-hex id of the author's previous event"))
    hlc = content["hlc"]
    if (not isinstance(hlc, list) or len(hlc) != 2 or any(type(x) is not int for x in hlc)
            or hlc[0] < 0 or not 0 <= hlc[1] <= MAX_COUNTER):
        raise bad(N_("hlc must be [wall milliseconds, counter] with non-negative integers"))
    if hlc[0] > MAX_WALL_MS:
        raise bad(N_("hlc wall time {wall} leaves no later timestamp within the encoding's "
                     "integers; the latest an event may carry is {limit}"),
                  wall=hlc[0], limit=MAX_WALL_MS)
    for name in ("type", "entity"):
        if not isinstance(content[name], str) or not _NAME.match(content[name]):
            raise bad(N_("{name} must be a dotted lower-case name, got {value}"), name=name,
                      value=repr(content[name]))
    entity_id = content["id"]
    if not isinstance(entity_id, str) or not 0 < len(entity_id) <= 128:
        raise bad(N_("id must be a string of 1 to 128 characters"))
    area = content["area"]
    if not isinstance(area, str) or not area.isascii() or not area.isdigit() or len(area) > 12:
        raise bad(N_("area must be an area code of at most 12 digits"))
    if not isinstance(content["body"], dict):
        raise bad(N_("body must be a map"))


@attrs.frozen
class EventReason:
    """An event named by its place in its author's feed, and why it was set apart
    (refused on arrival, or excluded from the views)."""

    event_id: str
    author: str
    epoch: int
    seq: int
    reason: str
