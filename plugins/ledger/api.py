"""The ledger's API: record disputes, projects and targets, carry the month, read the 台账.

What the ``ledger`` commands call, and what the Excel import and export, the
reports and a script call directly. It reads and writes through the kernel
only (``xinfang.core.records``; a 信访事项 is read as the kernel's record
``case``, never through the case plugin). "Today" is always a parameter.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from typing import Any

from xinfang.core import areas, clock, records
from xinfang.core.entities import Field, parse_date
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_
from xinfang.core.kernel import author_of, guard_view
from xinfang.core.node import Draft

from .entities import DISPUTE, PROJECT, TARGET

CASE = "case"
_MONTH = re.compile(r"\A([0-9]{4})-([0-9]{2})\Z")
#: the 台账's columns, in the office's order: the row key (``name``) and its header
#: (``label``); the kinds say what the row holds (a choice as its label, text)
LEDGER_COLUMNS = (
    Field("no", "序号", kind="int"), Field("date", "排查日期", kind="date"),
    Field("area", "所属乡镇/村"), Field("kind", "矛盾类型"), Field("summary", "基本情况"),
    Field("people", "涉及人数", kind="int"), Field("risk", "风险等级"),
    Field("measures", "化解措施"), Field("mediation", "化解方式"), Field("leader", "责任领导"),
    Field("person", "责任人"), Field("due", "化解时限", kind="date"), Field("progress", "进展"),
    Field("resolved", "是否化解", kind="bool"), Field("case", "关联信访事项"),
    Field("note", "备注"))


# -- records --------------------------------------------------------------------------


def add_dispute(node, values: dict[str, Any], area: str | None = None,
                today: dt.date | None = None) -> str:
    """排查登记: a dispute found in a township or village; its number."""
    return records.create(node, DISPUTE, values, area=area, today=today)


def add_project(node, values: dict[str, Any], area: str | None = None,
                today: dt.date | None = None) -> str:
    """项目登记: a resettlement-village project (its area a village); its number."""
    return records.create(node, PROJECT, values, area=area, today=today)


def set_target(node, township: str, values: dict[str, Any],
               today: dt.date | None = None) -> str:
    """签订: the county's 目标责任状 with a township for a year; its id
    ``<township>-<year>-target``. A second one for the same township and year is
    refused: revise the first."""
    return records.create(node, TARGET, values, area=areas.check_code(township), today=today)


def step(node, entity: str, record_id: str, name: str, given: dict[str, Any] | None = None,
         today: dt.date | None = None) -> str:
    """Take a step on a ledger record; the event id. 转信访 (``to_petition``) links a
    信访事项 this node holds: one it does not hold cannot be linked."""
    given = dict(given or {})
    if entity == DISPUTE and name == "to_petition" and given.get("case"):
        given["case"] = held_case(node, str(given["case"]).strip())
    return records.take_step(node, entity, record_id, name, given, today=today)


def held_case(node, number: str) -> str:
    """``number`` if this node holds that 信访事项 (the kernel's record ``case``)."""
    if node.registry.entity_type(CASE) is None:
        raise InvalidInput(N_("no plugin here keeps 信访事项, so a dispute cannot be linked "
                              "to one on this node"))
    try:
        records.get(node, CASE, number)
    except NotFound:
        raise InvalidInput(N_("this node holds no 信访事项 numbered {id}; register it first, "
                              "or give the number of one held here"), id=number) from None
    return number


def take(entity: str):
    """What the generated step commands call for ``entity`` (``build_entity_group``)."""
    return lambda n, record_id, name, values: step(n, entity, record_id, name, values)


# -- months -----------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[str, str]:
    """The first and last day of ``YYYY-MM``."""
    found = _MONTH.match(str(month).strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise InvalidInput(N_("the month must be written YYYY-MM, such as 2026-11, not "
                              "{value}"), value=str(month))
    year, number = int(found.group(1)), int(found.group(2))
    last = calendar.monthrange(year, number)[1]
    return f"{year:04d}-{number:02d}-01", f"{year:04d}-{number:02d}-{last:02d}"


def _scope(node, area: str | None) -> str:
    area = areas.check_code(area) if area else node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is outside this node's jurisdiction {scope}"),
                           area=area, scope=node.info.area)
    return area


def _in_month() -> str:
    """SQL: the dispute ``d`` is in the month's ledger (added or re-screened in it),
    between the parameters ``:first`` and ``:last``."""
    return ("((d.date between :first and :last) or exists (select 1 from entity_history h "
            "where h.entity = 'dispute' and h.entity_id = d.id and h.step = 'rescreen' "
            "and h.date between :first and :last))")


def carry(node, month: str, area: str | None = None, date: str | None = None,
          today: dt.date | None = None) -> list[str]:
    """月度排查: take the ``rescreen`` step on every open dispute in ``area`` (default this
    node's) that is not yet in ``month``'s ledger, dated the month's first day (or
    ``date``, within the month); the numbers carried, in order. Carrying again takes no
    second step. All the steps are written in one transaction, or none."""
    first, last = month_bounds(month)
    day = parse_date(date, N_("the day of the screening (--date)")).isoformat() if date \
        else first
    if not first <= day <= last:
        raise InvalidInput(N_("the screening day {date} is not in the month {month}"),
                           date=day, month=month)
    today = today or clock.today()
    if day > today.isoformat():
        raise InvalidInput(N_("the screening day {date} is in the future (today is {today})"),
                           date=day, today=today.isoformat())
    scope = _scope(node, area)
    open_states = [s.name for s in node.registry.lifecycle(DISPUTE).states.values() if s.open]
    states = {f"s{i}": name for i, name in enumerate(open_states)}
    rows = node.db.execute(
        f"select d.id from ledger_disputes d where d.area like :scope || '%' and d.date <= :day "
        f"and d.status in ({', '.join(':' + k for k in states)}) "
        f"and not {_in_month()} order by d.date, d.id",
        {"scope": scope, "day": day, "first": first, "last": last, **states}).fetchall()
    entity_type = node.registry.entity_type(DISPUTE)
    lifecycle = node.registry.lifecycle(DISPUTE)
    rescreen = lifecycle.steps["rescreen"]
    author = author_of(node.db, node.info.author)
    drafts = []
    for (record_id,) in rows:
        view = guard_view(node.context, entity_type, record_id)
        if not node.in_jurisdiction(view["area"]):
            continue
        values = records.convert_values(node, rescreen.fields, {"date": day}, today,
                                        rescreen.label)
        lifecycle.check(view, rescreen.name, values, author)
        drafts.append(Draft(f"{DISPUTE}.{rescreen.name}", DISPUTE, record_id, view["area"],
                            {"values": values, "by": node.operator}))
    node.append_many(drafts)
    return [d.entity_id for d in drafts]


def month_ledger(node, month: str, area: str | None = None) -> list[dict[str, Any]]:
    """The month's 矛盾纠纷排查化解台账: the one definition the Excel export and the
    reports use.

    A month's ledger holds every dispute in ``area`` (default this node's) added
    (排查日期) or re-screened (``rescreen``, see ``carry``) in that month, ordered by
    排查日期 and number and numbered from 1 (序号). Its row has the 台账's columns
    (``LEDGER_COLUMNS``: choice values as their labels, 关联信访事项 the linked case's
    number) and, besides, ``id``, ``status``, the codes (``kind_code``, ``risk_code``,
    ``mediation_code``), ``project``, ``mass``, ``resolved_on`` and ``rescreened`` (the
    day of the month's re-screening, or None). 是否化解 is as the month ended: the
    dispute was resolved (化解) on or before its last day, so a later month's work does
    not change an earlier month's ledger.
    """
    first, last = month_bounds(month)
    scope = _scope(node, area)
    registry = node.registry
    found = node.db.execute(
        "select d.*, (select max(h.date) from entity_history h where h.entity = 'dispute' and "
        "h.entity_id = d.id and h.step = 'rescreen' and h.date between :first and :last) "
        f"as rescreened from ledger_disputes d where d.area like :scope || '%' and "
        f"{_in_month()} order by d.date, d.id",
        {"scope": scope, "first": first, "last": last})
    names = [c[0] for c in found.description]
    rows = []
    for number, raw in enumerate(found.fetchall(), start=1):
        d = dict(zip(names, raw))
        resolved = d["status"] == "resolved" and (d["resolved_on"] or "") <= last
        rows.append({
            "no": number, "date": d["date"], "area": d["area"],
            "kind": registry.label("ledger.dispute_kind", d["kind"]) if d["kind"] else None,
            "summary": d["summary"], "people": d["people"],
            "risk": registry.label("ledger.risk", d["risk"]) if d["risk"] else None,
            "measures": d["measures"],
            "mediation": registry.label("ledger.mediation", d["mediation"])
            if d["mediation"] else None,
            "leader": d["leader"], "person": d["person"], "due": d["due"],
            "progress": d["progress"], "resolved": resolved, "case": d["case_id"],
            "note": d["note"], "id": d["id"], "status": d["status"], "kind_code": d["kind"],
            "risk_code": d["risk"], "mediation_code": d["mediation"], "project": d["project"],
            "mass": bool(d["mass"]), "resolved_on": d["resolved_on"],
            "rescreened": d["rescreened"]})
    return rows


# -- lists ------------------------------------------------------------------------------


def overdue(node, as_of: dt.date | str, area: str | None = None) -> list[records.Record]:
    """Open disputes whose 化解时限 lies before ``as_of``."""
    day = parse_date(as_of, N_("the day (--as-of)")).isoformat()
    return disputes(node, area=area, overdue_on=day)


def disputes(node, status: str | None = None, area: str | None = None,
             since: str | None = None, until: str | None = None,
             where: dict[str, Any] | None = None,
             overdue_on: str | None = None) -> list[records.Record]:
    """The disputes held here, filtered as ``records.list_records`` filters; with
    ``overdue_on``, only the open ones due before that day."""
    found = records.list_records(node, DISPUTE, records.RecordFilter(
        status=status, area=area, since=since, until=until, values=dict(where or {})))
    if overdue_on is None:
        return found
    lifecycle = node.registry.lifecycle(DISPUTE)
    return [r for r in found if lifecycle.states[r.status].open
            and r.values.get("due") and r.values["due"] < overdue_on]


def project_done(node, project_id: str) -> int:
    """累计完成 of a project as its latest 进度 says."""
    row = node.db.execute("select done from ledger_projects where id = ?",
                          [project_id]).fetchone()
    if row is None:
        raise records.not_found(node.registry.entity_type(PROJECT), project_id)
    return row[0]


def ledger_row(record: records.Record) -> dict[str, Any]:
    """A record as ``--json`` prints it (no history)."""
    data = record.to_dict()
    data.pop("history", None)
    data.pop("conflicts", None)
    return json.loads(json.dumps(data, ensure_ascii=False))
