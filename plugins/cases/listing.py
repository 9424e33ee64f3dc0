"""Reading cases: the ``Case`` value and the list ``xinfang case list``, the web's case
list and its dashboard select by filters, counted and paged in SQL.

Apart from ``api`` (registering, steps, one case in full): a list reads the
``cases`` view alone and never a petitioner. ``api`` builds on this module
(``get_case`` fills in the same ``Case``; registering reads the case type's
fields through ``_field`` and ``_choice``) and re-exports the listing, never the
other way round, so neither needs to import the other lazily.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from xinfang.core import areas, clock
from xinfang.core.entities import Field, convert_field
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _
from xinfang.core.node import Node

from . import views
from .views import ENTITY


@attrs.frozen
class Petitioner:
    name: str | None
    id_number: str | None
    phone: str | None
    address: str | None
    representative: bool


@attrs.frozen
class Case:
    id: str
    area: str
    status: str
    status_label: str
    channel: str
    headcount: int
    category: str
    kind: str
    request: str
    received: str
    collective: bool
    repeat_of: str | None
    first_petition: bool
    unit: str | None
    leader: str | None
    handler: str | None
    forwarded_to: str | None
    rating: str | None
    fields: dict[str, Any]
    updated: str
    #: 走访层级 (label), 越级 against the level of the case's area (None: not recorded)
    went_to: str | None = None
    skipped_level: bool | None = None
    #: 来源, 抄送 units, 终结方式 (labels)
    source: str | None = None
    copied: str | None = None
    ending: str | None = None
    #: the latest 回访: date, result, ceased (是否息访)
    follow_up: dict[str, Any] | None = None
    #: the counting unit: a visit is 1 批次 ("batch") of its headcount in 人次, else 1 件 ("case")
    counted_in: str = "case"
    batches: int = 0
    person_visits: int = 0
    petitioners: tuple[Petitioner, ...] = ()
    deadlines: tuple[dict[str, Any], ...] = ()
    history: tuple[dict[str, Any], ...] = ()
    conflicts: tuple[dict[str, Any], ...] = ()
    #: obligations past due: label, due date and days overdue (for 督查督办)
    overdue: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _today(today: dt.date | None) -> dt.date:
    return today or clock.today()


def _field(node: Node, step: str | None, name: str) -> Field:
    """A field of the creation step (``step`` None) or of a lifecycle step, with its label."""
    entity_type = node.registry.entity_type(ENTITY)
    fields = (entity_type.create if step is None
              else node.registry.lifecycle(ENTITY).steps[step]).fields
    return next(f for f in fields if f.name == name)


def _choice(node: Node, name: str, raw: str) -> str:
    """``raw`` (a code or a label) as a code of the creation field ``name``."""
    field = attrs.evolve(_field(node, None, name), required=True)
    return convert_field(field, raw, node.registry.vocabulary(field.choices))


def _row_to_case(node: Node, row: dict[str, Any]) -> Case:
    lifecycle = node.registry.lifecycle(ENTITY)
    label = node.registry.label
    return Case(
        id=row["id"], area=row["area"], status=row["status"],
        status_label=lifecycle.label(row["status"]),
        channel=label("case.channel", row["channel"]),
        headcount=row["headcount"], category=label("case.category", row["category"]),
        kind=label("case.kind", row["kind"]), request=row["request"], received=row["received"],
        collective=bool(row["collective"]), repeat_of=row["repeat_of"],
        first_petition=bool(row["first_petition"]), unit=row["unit"], leader=row["leader"],
        handler=row["handler"], forwarded_to=row["forwarded_to"],
        rating=label("case.rating", row["rating"]) if row["rating"] else None,
        fields=row["fields"] if isinstance(row["fields"], dict) else json.loads(row["fields"]),
        updated=row["updated"], **views.row_additions(node.registry, row))


def _deadline_label(label: str) -> str:
    """A deadline's label as the view keeps it (a msgid), in the reader's language."""
    return _(label) if label else label


def _open_states(node: Node) -> list[str]:
    return [s.name for s in node.registry.lifecycle(ENTITY).states.values() if s.open]


def _overdue(deadline: dict[str, Any], status: str, node: Node, today: dt.date | None = None) -> bool:
    return bool(deadline["obligation"] and deadline["met_on"] is None
                and deadline["due"] < _today(today).isoformat() and status in _open_states(node))


@attrs.frozen
class CaseFilter:
    status: str | None = None
    category: str | None = None
    area: str | None = None
    channel: str | None = None
    overdue: bool = False
    due_within: int | None = None
    repeat: bool | None = None
    collective: bool | None = None
    #: received (登记日期) on or after / on or before, YYYY-MM-DD
    received_from: str | dt.date | None = None
    received_to: str | dt.date | None = None
    #: handler (办理人) or unit (责任单位) containing this text
    handler: str | None = None
    unit: str | None = None
    #: the request (诉求) containing this text
    text: str | None = None


def _date_filter(value: str | dt.date | None, option: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidInput(N_("{option} “{value}” is not a date: write it as YYYY-MM-DD, "
                              "e.g. 2026-03-01"), option=option, value=value) from None


def _where(node: Node, filters: CaseFilter, today: dt.date) -> tuple[str, list[Any]]:
    """The SQL condition on ``cases`` the filters make, and its parameters (bad input:
    ``InvalidInput``, the same messages whether listed, counted or paged)."""
    where, params = ["1 = 1"], []
    lifecycle = node.registry.lifecycle(ENTITY)
    if filters.status:
        names = {s.name: s.name for s in lifecycle.states.values()}
        names.update({s.label: s.name for s in lifecycle.states.values()})
        if filters.status not in names:
            raise InvalidInput(N_("unknown status “{status}”; statuses: {statuses}"),
                               status=filters.status, statuses=_(", ").join(
                                   f"{s.label}({s.name})" for s in lifecycle.states.values()))
        where.append("status = ?")
        params.append(names[filters.status])
    for name in ("category", "channel"):
        value = getattr(filters, name)
        if value:
            where.append(f"{name} = ?")
            params.append(_choice(node, name, value))
    if filters.area:
        areas.check_code(filters.area)
        where.append("area like ?")
        params.append(filters.area + "%")
    since = _date_filter(filters.received_from, "--from")
    until = _date_filter(filters.received_to, "--to")
    if since and until and since > until:
        raise InvalidInput(N_("--from {since} is later than --to {until}: the start date cannot "
                              "be after the end date"), since=since, until=until)
    if since:
        where.append("received >= ?")
        params.append(since)
    if until:
        where.append("received <= ?")
        params.append(until)
    for name in ("handler", "unit"):
        value = getattr(filters, name)
        if value is not None:
            if not value.strip():
                raise InvalidInput(N_("--{option} is empty: write the {label} to look for"),
                                   option=name, label=_field(node, "accept", name).label)
            where.append(f"instr({name}, ?) > 0")
            params.append(value.strip())
    if filters.text is not None and filters.text.strip():
        where.append("instr(request, ?) > 0")
        params.append(filters.text.strip())
    if filters.repeat is not None:
        where.append("repeat_of is not null" if filters.repeat else "repeat_of is null")
    if filters.collective is not None:
        where.append("collective = ?")
        params.append(int(filters.collective))
    open_states = _open_states(node)
    marks = ",".join("?" * len(open_states))
    if filters.overdue:
        where.append(f"status in ({marks}) and id in (select case_id "  # i18n: identifier
                     "from case_deadlines where obligation = 1 and met_on is null and due < ?)")
        params.extend([*open_states, today.isoformat()])
    if filters.due_within is not None:
        if filters.due_within < 0:
            raise InvalidInput(N_("--due-within takes a number of days, 0 or more"))
        until = (today + dt.timedelta(days=filters.due_within)).isoformat()
        where.append(f"status in ({marks}) and id in (select case_id "  # i18n: identifier
                     "from case_deadlines where obligation = 1 and met_on is null "
                     "and due >= ? and due <= ?)")
        params.extend([*open_states, today.isoformat(), until])
    return " and ".join(where), params


def list_cases(node: Node, filters: CaseFilter = CaseFilter(),
               today: dt.date | None = None, limit: int | None = None, offset: int = 0,
               newest_first: bool = False) -> list[Case]:
    """The cases the filters select, oldest first (``newest_first``: the latest received
    first); ``limit`` and ``offset`` page them in SQL, so a page of a county's tens of
    thousands of cases reads only that page's rows."""
    today = _today(today)
    where, params = _where(node, filters, today)
    order = "received desc, id desc" if newest_first else "received, id"
    if limit is None:
        rows = list(node.db.query(f"select * from cases where {where} order by {order}",
                                  params))
    else:  # sort the numbers alone, then read the page's rows: a far smaller sort
        ids = [row[0] for row in node.db.execute(
            f"select id from cases where {where} order by {order} limit ? offset ?",
            [*params, max(0, int(limit)), max(0, int(offset))])]
        found = {row["id"]: row for row in node.db.query(
            f"select * from cases where id in ({','.join('?' * len(ids))})", ids)}
        rows = [found[case_id] for case_id in ids]
    late = _overdue_by_case(node, today, None if limit is None else [r["id"] for r in rows])
    return [attrs.evolve(_row_to_case(node, row), overdue=late.get(row["id"], ()))
            for row in rows]


def count_cases(node: Node, filters: CaseFilter = CaseFilter(),
                today: dt.date | None = None) -> int:
    """How many cases ``list_cases`` would list with these filters (one SQL count)."""
    where, params = _where(node, filters, _today(today))
    return node.db.execute(f"select count(*) from cases where {where}", params).fetchone()[0]


def repeats_of(node: Node, case_id: str) -> list[str]:
    """The later cases that repeat ``case_id`` (重复访: their ``repeat_of`` is this case),
    in the order they were received; the case's own ``repeat_of`` names the one it
    repeats."""
    return [row[0] for row in node.db.execute(
        "select id from cases where repeat_of = ? order by received, id", [case_id])]


def _overdue_by_case(node: Node, today: dt.date, ids: list[str] | None = None
                     ) -> dict[str, tuple[dict[str, Any], ...]]:
    """The overdue obligations of every open case, or of the cases ``ids`` only."""
    open_states = _open_states(node)
    marks = ",".join("?" * len(open_states))
    only, chosen = "", []
    if ids is not None:
        if not ids:
            return {}
        only = f" and d.case_id in ({','.join('?' * len(ids))})"
        chosen = list(ids)
    found: dict[str, list[dict[str, Any]]] = {}
    for case_id, kind, label, due in node.db.execute(
            "select d.case_id, d.kind, d.label, d.due from case_deadlines d join cases c "
            f"on c.id = d.case_id where c.status in ({marks}) and d.obligation = 1 and "
            f"d.met_on is null and d.due < ?{only} order by d.due",
            [*open_states, today.isoformat(), *chosen]):
        days = (today - dt.date.fromisoformat(due)).days
        found.setdefault(case_id, []).append({"kind": kind, "label": _deadline_label(label), "due": due,
                                              "days": days})
    return {k: tuple(v) for k, v in found.items()}
