"""Sensitive periods (敏感时期): what a declaration says and where it is read from.

A declaration must reach every station below the declaring office, and only
``policy`` and ``trust`` records travel down the tree (``core.scope``: the
rule reads the entity name alone, so a relay without this plugin routes
alike). So a declaration *is* policy: one ``policy.set`` of the key
``zero_report.periods`` at the declaring office's area, whose value maps
each period id to its name, dates, frequency and covered areas. Policy
already gives what a declaration needs: it is signed, travels down, is
written by the root or where the root delegates the key (``policy.delegated``),
is judged on arrival by the fold (``core.policy._authorised``), and a change
re-folds the filings that read it (``EntityType.policy``).

Policy in force is normally the most specific value set; periods are not
overridden that way: a township the key is delegated to adds periods for its
subtree, and a station sees the periods of every enclosing office
(``periods_at``). On an id declared at two enclosing areas the wider office's
declaration stands.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Iterable

import attrs

from xinfang.core import areas
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, Message

KEY = "zero_report.periods"
#: days after a report's due day still counted on time (0: by 24:00 of the due day)
GRACE = "zero_report.grace_days"
#: a period id: letters, digits, no dash (entity ids are ``<area>-<id>-<date>``)
ID = re.compile(r"^[A-Za-z0-9]{1,24}$")
MAX_DAYS = 366
MAX_NAME = 100
MAX_AREAS = 500
FIELDS = {"name", "from", "to", "every", "areas"}


@attrs.frozen
class Period:
    id: str
    name: str
    start: dt.date
    end: dt.date
    #: days per report: 1 daily, 7 weekly, or any N
    every: int
    #: the covered area prefixes (each inside ``area``)
    covers: tuple[str, ...]
    #: the declaring office's area
    area: str

    def days(self) -> list[dt.date]:
        """The report days: the first day of each cycle of ``every`` days."""
        count = (self.end - self.start).days // self.every + 1
        return [self.start + dt.timedelta(days=i * self.every) for i in range(count)]

    def is_day(self, day: dt.date) -> bool:
        offset = (day - self.start).days
        return 0 <= offset and day <= self.end and offset % self.every == 0

    def day_of(self, date: dt.date) -> dt.date | None:
        """The report day of the cycle holding ``date``, or None outside the period."""
        if not self.start <= date <= self.end:
            return None
        return self.start + dt.timedelta(days=(date - self.start).days // self.every * self.every)

    def due(self, day: dt.date) -> dt.date:
        """The last day of the cycle starting on ``day`` (the day itself when daily)."""
        return min(self.end, day + dt.timedelta(days=self.every - 1))

    def covers_area(self, area: str) -> bool:
        """Is ``area`` a station of this period: below the declarer, in a covered area."""
        return area != self.area and any(area.startswith(c) for c in self.covers)

    def to_value(self) -> dict[str, Any]:
        return {"name": self.name, "from": self.start.isoformat(), "to": self.end.isoformat(),
                "every": self.every, "areas": list(self.covers)}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "area": self.area, **self.to_value()}


def problem(pid: Any, value: Any, area: str) -> Message | None:
    """What is wrong with one period of a declaration at ``area``, or None (pure)."""
    if not isinstance(pid, str) or not ID.match(pid):
        return Message(N_("a period id is 1 to 24 letters or digits, got {id}"), id=str(pid))
    if not isinstance(value, dict) or set(value) != FIELDS:
        return Message(N_("period {id} must hold exactly the keys {keys}"),
                       id=pid, keys=", ".join(sorted(FIELDS)))
    name = value["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME \
            or name != name.strip() or any(c in name for c in "\r\n\t"):
        return Message(N_("period {id} needs a one-line name of at most {max} characters"),
                       id=pid, max=MAX_NAME)
    try:
        start, end = (dt.date.fromisoformat(value[k]) for k in ("from", "to"))
    except (TypeError, ValueError):
        return Message(N_("period {id}: from and to must be dates as YYYY-MM-DD"), id=pid)
    if value["from"] != start.isoformat() or value["to"] != end.isoformat():
        return Message(N_("period {id}: from and to must be dates as YYYY-MM-DD"), id=pid)
    if end < start or (end - start).days >= MAX_DAYS:
        return Message(N_("period {id} must end on or after its start and last at most {max} "
                          "days"), id=pid, max=MAX_DAYS)
    every = value["every"]
    if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= MAX_DAYS:
        return Message(N_("period {id}: every must be a number of days from 1 to {max}"),
                       id=pid, max=MAX_DAYS)
    covers = value["areas"]
    if not isinstance(covers, list) or not 1 <= len(covers) <= MAX_AREAS \
            or covers != sorted(set(covers)) or not all(isinstance(c, str) for c in covers):
        return Message(N_("period {id}: areas must be a sorted list of distinct area codes"),
                       id=pid)
    for code in covers:
        if code not in _valid_codes(code) or not code.startswith(area):
            return Message(N_("period {id}: area {code} is not an area code inside {area}"),
                           id=pid, code=code, area=area)
    return None


def _valid_codes(code: str) -> tuple[str, ...]:
    try:
        return (areas.check_code(code),)
    except InvalidInput:
        return ()


def from_value(pid: str, value: dict[str, Any], area: str) -> Period:
    return Period(pid, value["name"], dt.date.fromisoformat(value["from"]),
                  dt.date.fromisoformat(value["to"]), value["every"], tuple(value["areas"]), area)


def declared(db, area: str | None = None) -> Iterable[tuple[str, dict[str, Any]]]:
    """(declaring area, value) of each declaration in force, widest area first;
    with ``area``, only those of offices enclosing it (or at it)."""
    if area is None:
        rows = db.execute("select area, value from policy_values where key = ? "
                          "order by length(area), area", [KEY])
    else:
        rows = db.execute("select area, value from policy_values where key = ? and ? like "
                          "area || '%' order by length(area), area", [KEY, area])
    for where, value in rows:
        yield where, json.loads(value)


def _collect(found: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Period]:
    periods: dict[str, Period] = {}
    for where, value in found:
        if not isinstance(value, dict):
            continue
        for pid, body in value.items():
            if pid not in periods and problem(pid, body, where) is None:
                periods[pid] = from_value(pid, body, where)
    return periods


def periods_at(db, area: str) -> dict[str, Period]:
    """The periods a station at ``area`` sees: declared by an office enclosing it."""
    return _collect(declared(db, area))


def all_periods(db) -> dict[str, Period]:
    """Every period this node holds a declaration of (a county sees its townships')."""
    return _collect(declared(db))


def frequency(text: str | int | None) -> int:
    """``daily`` (default), ``weekly``, or a number of days."""
    if text is None or text in ("daily", "每日", "每天", 1):  # i18n: identifier
        return 1
    if text in ("weekly", "每周"):  # i18n: identifier
        return 7
    try:
        every = int(text)
    except (TypeError, ValueError):
        raise InvalidInput(N_("frequency must be {words} or a number of days, got {value}"),
                           words="daily / weekly", value=str(text)) from None
    if not 1 <= every <= MAX_DAYS:
        raise InvalidInput(N_("frequency must be a number of days from 1 to {max}, got "
                              "{value}"), max=MAX_DAYS, value=str(text))
    return every
