"""Pages and frontiers as they travel between nodes, and the limits on a page.

Both ends of a sync speak these forms, so they live apart from the code
that builds pages (``send``) and the code that checks them (``receive``).

A frontier maps each feed (author, epoch) to the highest sequence number a
node holds of it, within its scope. A page carries events, the secrets and
certificates they need, fork evidence, and for feeds the receiver sees
through a filter the ``ranges`` it completes: "every in-scope event of this
feed with from < seq <= to is in this page". Events and certificates travel
in the one wire form of a signed document (see ``core.signed``); fork
evidence is a pair of event wire forms.
"""

from __future__ import annotations

from typing import Any

import attrs

from xinfang.core.certs import Certificate
from xinfang.core.errors import InvalidEvent, InvalidInput, XinfangError
from xinfang.core.event import Event
from xinfang.core.i18n import N_
from xinfang.core.sealing import Secret

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
        return {
            "events": [e.to_wire() for e in self.events],
            "secrets": [[s.digest, s.salt, s.value] for s in self.secrets],
            "certs": [c.to_wire() for c in self.certs],
            "ranges": [list(r) for r in self.ranges],
            "forks": [[a.to_wire(), b.to_wire()] for a, b in self.forks],
        }

    @classmethod
    def from_wire(cls, data: Any) -> "Page":
        """Parse a page; any event that does not parse refuses the whole page."""
        try:
            if len(data["events"]) > MAX_PAGE_EVENTS:
                raise PageError(N_("page has {count} events; the limit is {limit}"),
                                count=len(data["events"]), limit=MAX_PAGE_EVENTS)
            encoded = sum(len(e[0]) for e in data["events"]  # malformed entries: see below
                          if isinstance(e, (list, tuple)) and e and isinstance(e[0], str))
            if encoded * 3 // 4 > MAX_PAGE_BYTES:
                raise PageError(N_("page holds about {size} bytes of events; the limit is "
                                   "{limit}"), size=encoded * 3 // 4, limit=MAX_PAGE_BYTES)
            events = [Event.from_wire(e) for e in data["events"]]
            forks = [(Event.from_wire(a), Event.from_wire(b)) for a, b in data.get("forks", [])]
            secrets = [Secret(d, s, v) for d, s, v in data["secrets"]]
            certs = [Certificate.from_wire(c) for c in data["certs"]]
            ranges = [(str(a), int(e), int(f), int(t)) for a, e, f, t in data["ranges"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise PageError(N_("malformed page ({kind}: {error})"), kind=type(exc).__name__,
                            error=str(exc)) from None
        except InvalidEvent as exc:
            raise PageError(N_("page holds a malformed event: {error}"),
                            error=exc.message) from None
        except InvalidInput as exc:
            raise PageError(N_("page holds a malformed certificate: {error}"),
                            error=exc.message) from None
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
        raise PageError(N_("malformed frontier ({error})"), error=str(exc)) from None
