"""Clear values on the move: sealed to the office that reads them, held by relays.

A released petitioner value never crosses a hop in clear. The node that
holds it seals it to the reading office's X25519 key (``sealing.seal_to``)
as a ``Box`` bound to the digest, the record (entity id) it belongs to and
the reader; the box rides in the page that carries the record's event, and
every relay on the way keeps it in ``held_boxes`` and forwards it with the
same event, able neither to open it nor to move it to another record.

Two rules keep identity with its own record:

* a sender seals only the values its vault keeps *for that record*
  (``Vault.of_entity``), so a digest copied into another record's event
  releases nothing;
* a receiver takes a box only beside an event of the record it names that
  carries its digest, so boxes cannot be slipped in on their own.

Who may read which values is the plugins' decision (``xinfang_outgoing``),
asked once per reading office, not per hop.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Iterable

import attrs

from xinfang.core import codec, sealing
from xinfang.core.authority import Authority
from xinfang.core.certs import Certificate
from xinfang.core.event import Event
from xinfang.core.i18n import N_, Message

#: the longest clear value a box may carry (names, ID numbers, phones, addresses)
MAX_SECRET_CHARS = 4096
#: a box holds a salt and a value of at most ``MAX_SECRET_CHARS`` characters
MAX_BOX_BYTES = 20_000
MAX_ENTITY_ID = 200
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


@attrs.frozen
class Box:
    digest: str
    entity_id: str
    recipient: str
    data: bytes = attrs.field(repr=False)

    def binding(self) -> bytes:
        return codec.encode([self.digest, self.entity_id, self.recipient])

    def to_wire(self) -> list[str]:
        return [self.digest, self.entity_id, self.recipient,
                base64.b64encode(self.data).decode("ascii")]


def box_from_wire(item: Any) -> Box | Message:
    """A box as [digest, entity id, recipient, base64 data], or what is wrong with it."""
    if (not isinstance(item, (list, tuple)) or len(item) != 4
            or not all(isinstance(part, str) for part in item)):
        return Message(N_("it is not [digest, record, recipient, data] as four strings"))
    digest, entity_id, recipient, text = item
    if not (_HEX64.match(digest) and _HEX64.match(recipient)):
        return Message(N_("its digest and recipient are not 64 lower-case hex digits"))
    if not entity_id or len(entity_id) > MAX_ENTITY_ID:
        return Message(N_("its record id is empty or longer than {limit} characters"),
                       limit=MAX_ENTITY_ID)
    if len(text) > MAX_BOX_BYTES * 4 // 3 + 4:
        return Message(N_("it is longer than {limit} bytes"), limit=MAX_BOX_BYTES)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Message(N_("its data is not standard base64"))
    if len(data) < sealing.BOX_OVERHEAD:
        return Message(N_("its data is too short to be a sealed box"))
    return Box(digest, entity_id, recipient, data)


def routes_via(own_area: str, peer_area: str, recipient_area: str) -> bool:
    """Whether a box for an office in ``recipient_area`` goes on through ``peer``.

    Down to a child when the recipient lies in the child's subtree; up to a
    parent when it lies outside this node's own.
    """
    if peer_area.startswith(own_area) and peer_area != own_area:
        return recipient_area.startswith(peer_area)
    return not recipient_area.startswith(own_area)


@attrs.define
class Release:
    """The boxes that go to one peer with the events of a page."""

    node: Any
    peer: Certificate
    _authority: Authority | None = None

    def boxes(self, events: Iterable[Event]) -> list[Box]:
        found: dict[tuple[str, str], Box] = {}
        for event in events:
            digests = sealing.digests_in(event.body)
            if not digests:
                continue
            for box in self._held(event, digests):
                found.setdefault((box.digest, box.recipient), box)
            for reader in self._readers(event):
                for secret in self._released(event, digests, reader):
                    found.setdefault((secret.digest, reader.subject),
                                     seal(secret, event.entity_id, reader))
        return list(found.values())

    def _readers(self, event: Event) -> list[Certificate]:
        """Certified, unrevoked offices that receive ``event`` and are reached through
        the peer: the record's own office and the offices above it."""
        info = self.node.info
        authority = self._authority or Authority(self.node.db)
        self._authority = authority
        readers = []
        for (subject,) in self.node.db.execute(
                "select subject from certs where ? like area || '%' and subject != ?",
                [event.area, info.author]):
            cert = authority.scope(subject)
            if cert is not None and routes_via(info.area, self.peer.area, cert.area):
                readers.append(cert)
        return readers

    def _released(self, event: Event, digests: set[str], reader: Certificate):
        answer = self.node.pm.hook.xinfang_outgoing(event=event, destination=reader,
                                                   node=self.node)
        if isinstance(answer, (set, frozenset, list, tuple)):
            digests = digests & set(answer)
        elif not answer:
            return []
        return self.node.vault.of_entity(event.entity_id, digests)

    def _held(self, event: Event, digests: set[str]) -> list[Box]:
        marks = ",".join("?" * len(digests))
        rows = self.node.db.execute(
            "select h.digest, h.recipient, h.box, c.area from held_boxes h join certs c on "
            f"c.subject = h.recipient where h.entity_id = ? and h.digest in ({marks})",
            [event.entity_id, *sorted(digests)]).fetchall()
        own = self.node.info.area
        return [Box(digest, event.entity_id, recipient, bytes(data))
                for digest, recipient, data, area in rows
                if routes_via(own, self.peer.area, area)]


def seal(secret: sealing.Secret, entity_id: str, reader: Certificate) -> Box:
    unsealed = Box(secret.digest, entity_id, reader.subject, b"")
    plain = json.dumps([secret.salt, secret.value], ensure_ascii=False).encode("utf-8")
    return attrs.evolve(unsealed, data=sealing.seal_to(reader.encryption, plain,
                                                       unsealed.binding()))


def take(node, boxes: Iterable[Box], events: Iterable[Event], sender: str | None) -> int:
    """Keep the boxes of a page: open those for this node into its vault, hold those
    for offices reached through it; return how many values this node can now read.

    A box counts only beside an event of its own record that carries its
    digest; one that fails to open is dropped (its sender sealed it wrongly,
    and the value is still where it was).
    """
    carried: dict[str, set[str]] = {}
    for event in events:
        carried.setdefault(event.entity_id, set()).update(sealing.digests_in(event.body))
    me = node.info.author
    opened = 0
    for box in boxes:
        if box.digest not in carried.get(box.entity_id, ()):
            continue
        if box.recipient == me:
            secret = _open(node, box)
            if secret is not None and node.vault.keep(secret, box.entity_id):
                opened += 1
        elif box.recipient != sender and node.db.execute(
                "select 1 from certs where subject = ?", [box.recipient]).fetchone():
            node.db.execute("insert or ignore into held_boxes (digest, entity_id, recipient, box) "
                            "values (?,?,?,?)", [box.digest, box.entity_id, box.recipient,
                                                 box.data])
    return opened


def _open(node, box: Box) -> sealing.Secret | None:
    try:
        salt, value = json.loads(sealing.open_box(node.keys.encryption, box.data,
                                                  box.binding()))
    except (sealing.BoxError, ValueError, TypeError):
        return None
    if not (isinstance(salt, str) and isinstance(value, str)) or len(value) > MAX_SECRET_CHARS:
        return None
    try:
        secret = sealing.Secret(box.digest, salt, value)
        return secret if secret.holds() else None
    except ValueError:  # a salt that is not hex
        return None
