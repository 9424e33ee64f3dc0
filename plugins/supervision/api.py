"""督查督办 API: issue and answer orders, read the supervision list.

What the ``ducha`` and ``baoan`` commands call, and what a plugin or a
script calls directly. "Today" is always a parameter; the views never hold
it (``escalation``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from xinfang.core import areas, clock, records
from xinfang.core.entities import parse_date
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_

from . import escalation, orders


def issue(node, cases: Iterable[str], due: str, required: str, kind: str | None = None,
          date: str | None = None, today: dt.date | None = None) -> str:
    """Issue a 督办单 on ``cases`` to the office one level below holding them all; its
    number."""
    numbers = sorted({c.strip() for c in cases if c and c.strip()})
    if not numbers:
        raise InvalidInput(N_("name the cases the order supervises (--case, repeated)"))
    if len(numbers) > orders.MAX_CASES:
        raise InvalidInput(N_("an order names at most {max} cases; {count} were given"),
                           max=orders.MAX_CASES, count=len(numbers))
    found = dict(node.db.execute(
        f"select id, area from cases where id in ({', '.join('?' * len(numbers))})",
        numbers).fetchall())
    missing = [n for n in numbers if n not in found]
    if missing:
        raise NotFound(N_("no case numbered {ids} is held here; `xinfang case list` lists "
                          "them"), ids=", ".join(missing))
    to = orders.addressee(list(found.values()), node.info.area)
    if to is None:
        raise InvalidInput(N_("an order goes to one office one level below this one, and these "
                              "cases lie in areas {areas}: name cases of one such office only, "
                              "none of this office's own"),
                           areas=", ".join(sorted(set(found.values()))))
    issued_on = parse_date(date, N_("the order's date (--date)")) if date else (
        today or clock.today())
    if parse_date(due, N_("the due date (--due)")) < issued_on:
        raise InvalidInput(N_("the due date {due} is before the order's date {date}; give a "
                              "later --due"), due=due, date=issued_on.isoformat())
    given: dict[str, Any] = {"due": due, "required": required}
    if kind:
        given["kind"] = kind
    if date:
        given["date"] = date
    return records.create(node, orders.ENTITY, given, area=to, body={"cases": numbers},
                          today=today)


def step(node, order_id: str, name: str, given: dict[str, Any],
         today: dt.date | None = None) -> str:
    """回复 (``respond``), 销号 (``close``) or 重办 (``redo``) an order; the event id."""
    return records.take_step(node, orders.ENTITY, order_id, name, given, today=today)


def supervision_list(node, as_of: dt.date | str | None = None, area: str | None = None,
                     everything: bool = False) -> list[escalation.Item]:
    """The office's supervision list on ``as_of`` (default today): see ``escalation.items``."""
    area = areas.check_code(area) if area else node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is outside this node's jurisdiction {scope}"),
                           area=area, scope=node.info.area)
    if isinstance(as_of, str):
        as_of = parse_date(as_of, N_("the day (--as-of)"))
    return escalation.items(node, as_of or clock.today(), area, everything)


def office_names(node) -> dict[str, str]:
    """Area -> the name its certificate gives, for the offices this node knows."""
    return dict(node.db.execute("select area, name from certs order by area").fetchall())
