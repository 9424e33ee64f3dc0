"""Reading the quarantine: events refused on arrival, kept with why, for a person to see.

``Admission.quarantine`` keeps a refused event's exact bytes and its reason
(language-independent); an event admitted later (its gap filled, say) leaves
the quarantine again. This module is the one reader, for ``xinfang
quarantine list`` and the web view's ``/quarantine`` page. Nothing here
releases or drops an event: what arrives good is admitted by sync itself.
"""

from __future__ import annotations

import attrs

from .errors import XinfangError
from .event import Event
from .i18n import show


@attrs.frozen
class Quarantined:
    """A refused event: its place in its author's feed, what it was, why, from whom."""

    event_id: str
    author: str
    #: the author's office as this node's certificates name it (else the key's fingerprint)
    author_name: str
    epoch: int
    seq: int
    #: the event's type, record type and record (None if its bytes do not parse)
    type: str | None
    entity: str | None
    entity_id: str | None
    #: in the reader's language
    reason: str
    #: the peer it came from (its key), None if it was written or imported here
    peer: str | None
    at: str


def _content(raw: bytes, sig: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        event = Event.parse(raw, sig)
    except (XinfangError, ValueError, TypeError):  # bytes kept as they came
        return None, None, None
    return event.type, event.entity, event.entity_id


def quarantined(node) -> list[Quarantined]:
    """Every quarantined event, oldest refusal first."""
    rows = node.db.execute("select event_id, author, epoch, seq, raw, sig, reason, peer, at "
                           "from quarantine order by at, author, epoch, seq").fetchall()
    return [Quarantined(event_id, author, node.author_name(author), epoch, seq,
                        *_content(raw, sig), show(reason), peer, at)
            for event_id, author, epoch, seq, raw, sig, reason, peer, at in rows]


def count(node) -> int:
    return node.db.execute("select count(*) from quarantine").fetchone()[0]
