"""The ledger's reports, registered through the kernel's ``xinfang_reports``.

- ``ledger.disputes``: the 矛盾纠纷排查化解月报表 of a period (month, quarter, year),
  a row per area one level down and a total, with tables by type and by risk;
- ``ledger.monthly``: the 移民信访维稳月报 of a month: 来访批次/人数 and 来信件数 of
  the 库区移民 cases, their 越级访, 进京 and 赴省, the disputes and 群体事件, and
  the progress of the projects;
- ``ledger.targets``: the yearly 考核, each township's 目标责任状 beside the outcome.

The first two are ``submittable``: a township submits them upward and the
county recomputes and approves them like the 月报表. Everything is read
through the kernel: the ledger's own views, the kernel's ``entity_history``,
cases as the kernel's record ``case`` (``core.records``) and the 越级访 of
cases through the registered report ``stats.monthly`` (``core.reports``).
A period is seen as of its last day (or the ``as_of`` given, or today while
it runs): a step dated later does not count.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from xinfang.core import areas, clock, periods, records
from xinfang.core.periods import Period
from xinfang.core.entities import parse_date
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_, _
from xinfang.core.reports import (Column, Definition, Output, Param, Ratio, Report, Table,
                                  run_report)

from . import api
from .entities import DISPUTE_STEPS

#: the steps that close a dispute (已化解, 已转信访)
CLOSING = {s.name for s in DISPUTE_STEPS if s.target in ("resolved", "to_petition")}
RESETTLEMENT = "resettlement"


# -- periods ------------------------------------------------------------------------


def parse_period(text: str) -> Period:
    """A month, a quarter or a year (``core.periods``): a ledger is kept by month, so a
    range of days, which would cut a month's ledger, is refused."""
    period = periods.parse(text)
    if period.kind == "range":
        raise InvalidInput(N_("period “{text}” is not a month 2026-11, a quarter 2026-Q4 or a "
                              "year 2026"), text=str(text))
    return period


def parse_month(text: str) -> Period:
    period = parse_period(text)
    if period.start.month != period.end.month:
        raise InvalidInput(N_("the 移民信访维稳月报 is of one month, such as 2026-11, not "
                              "{text}"), text=str(text))
    return period


def _area(text: str) -> str:
    return areas.check_code(text.strip())


def _date(text: str) -> dt.date:
    return parse_date(text, N_("as-of date"))


PERIOD = Param("period", N_("Period (2026-11, 2026-Q4, 2026)"), required=True,
               convert=parse_period)
MONTH = Param("period", N_("Month (2026-11)"), required=True, convert=parse_month)
AREA = Param("area", N_("Area [default: this node's area]"), convert=_area)
AS_OF = Param("as_of", N_("Figures as of (YYYY-MM-DD) [default: the period's last day, or "
                          "today]"), convert=_date)


def scope(node, area: str | None) -> str:
    area = area or node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is outside this node's jurisdiction {own}"),
                           area=area, own=node.info.area)
    return area


def seen(period: Period, as_of: dt.date | None) -> str:
    return min(period.end, as_of or clock.today()).isoformat()


def child_of(area: str, code: str) -> str:
    """The row a record of area ``code`` counts in: its area one level below ``area``."""
    longer = [n for n in areas.VALID_LENGTHS if n > len(area)]
    return code[:longer[0]] if longer else code


def _header(node, period: Period, area: str, day: str) -> tuple[tuple[str, str], ...]:
    return ((_("Reporting unit"), node.info.name),
            (_("Period"), f"{period.code} ({period.label})"), (_("Area"), area),
            (_("Figures as of"), day))


# -- the disputes of a period ----------------------------------------------------------


@attrs.frozen
class Dispute:
    id: str
    area: str
    kind: str
    risk: str
    date: str
    due: str | None
    mass: bool
    steps: tuple[tuple[str, str], ...]  # (step, date), in order

    def dated(self, names, first: str, last: str) -> bool:
        return any(step in names and first <= date <= last for step, date in self.steps)

    def open_on(self, day: str) -> bool:
        return self.date <= day and not self.dated(CLOSING, "", day)


def load_disputes(node, area: str) -> list[Dispute]:
    """Every dispute in ``area`` with its steps and their dates: one read of each view."""
    steps: dict[str, list[tuple[str, str]]] = {}
    for entity_id, step, date in node.db.execute(
            "select h.entity_id, h.step, h.date from entity_history h join ledger_disputes d "
            "on d.id = h.entity_id where h.entity = 'dispute' and d.area like ? || '%' "
            "order by h.entity_id, h.ord", [area]):
        steps.setdefault(entity_id, []).append((step, date))
    return [Dispute(i, a, k, r, d or "", due, bool(m), tuple(steps.get(i, ())))
            for i, a, k, r, d, due, m in node.db.execute(
                "select id, area, kind, risk, date, due, mass from ledger_disputes where "
                "area like ? || '%' order by id", [area])]


def ledger_ids(node, period: Period, area: str, day: str) -> set[str]:
    """The disputes of the period's ledgers (``api.month_ledger`` of each month: added or
    re-screened in it), as far as they were screened by ``day``."""
    found = set()
    for month in period.month_codes():
        for row in api.month_ledger(node, month, area):
            if f"{month}-01" <= (row["date"] or "") <= day or (row["rescreened"] or "9") <= day:
                found.add(row["id"])
    return found


def tally(disputes: list[Dispute], ids: set[str], period: Period, day: str) -> dict[str, Any]:
    first = period.start.isoformat()
    screened = [d for d in disputes if d.id in ids]
    resolved = sum(d.dated({"resolve"}, first, day) for d in screened)
    return {"screened": len(screened), "resolved": resolved,
            "resolution": Ratio(resolved, len(screened)),
            "to_petition": sum(d.dated({"to_petition"}, first, day) for d in disputes),
            "overdue": sum(d.open_on(day) and bool(d.due) and d.due < day for d in disputes),
            "mass": sum(d.mass and first <= d.date <= day for d in disputes)}


FIGURES = (Column("screened", N_("Disputes screened (排查, 起)"), "count"),
           Column("resolved", N_("Resolved (化解, 起)"), "count"),
           Column("resolution", N_("Resolution rate (化解率)"), "ratio"),
           Column("to_petition", N_("Transferred to 信访 (转信访)"), "count"),
           Column("overdue", N_("Overdue (超时限未化解)"), "count"),
           Column("mass", N_("Mass incidents (群体性事件)"), "count"))
DISPUTE_DEFINITIONS = (
    Definition("screened", N_("Disputes screened"), N_(
        "Disputes in the ledgers of the period's months: added (排查日期) or re-screened "
        "(月度排查) in one of them, by the day the report is seen as of; a dispute carried "
        "through several months of a quarter or year counts once.")),
    Definition("resolved", N_("Resolved"), N_(
        "Of the disputes screened, those whose 化解 step is dated in the period, by the day "
        "the report is seen as of; so the resolved are never more than the screened.")),
    Definition("resolution", N_("Resolution rate"), N_(
        "Resolved / screened, as the bureau writes it (排查87起，化解82起，化解率为94.2%); no "
        "rate where nothing was screened.")),
    Definition("to_petition", N_("Transferred to 信访"), N_(
        "Disputes whose 转信访 step is dated in the period.")),
    Definition("overdue", N_("Overdue"), N_(
        "Disputes screened by the day the report is seen as of, neither resolved nor "
        "transferred by that day, whose 化解时限 is before it; whatever month's ledger they "
        "are in.")),
    Definition("mass", N_("Mass incidents"), N_(
        "Disputes marked 群体性事件 whose 排查日期 lies in the period (counted once, in the "
        "period they were found).")),
)


def breakdown(node, disputes, ids, period, day, attribute: str, vocabulary: str,
              name: str, label: str) -> Table:
    order = {c.code: i for i, c in enumerate(node.registry.vocabulary(vocabulary))}
    codes = sorted({getattr(d, attribute) for d in disputes if d.id in ids},
                   key=lambda code: (order.get(code, len(order)), code))
    rows = [{"group": node.registry.label(vocabulary, code) or code,
             **tally([d for d in disputes if getattr(d, attribute) == code], ids, period, day)}
            for code in codes]
    return Table(name, label, (Column("group", label), *FIGURES[:3]), rows)


def disputes_report(node, period: Period, area: str | None = None,
                    as_of: dt.date | None = None) -> Output:
    area = scope(node, area)
    day = seen(period, as_of)
    disputes = load_disputes(node, area)
    ids = ledger_ids(node, period, area, day)
    groups = sorted({child_of(area, d.area) for d in disputes})
    rows = [{"area": g, **tally([d for d in disputes if child_of(area, d.area) == g], ids,
                                period, day)} for g in groups]
    total = {"area": _("Total"), **tally(disputes, ids, period, day)}
    r = total["resolution"]
    return Output(
        rows, total=total, header=_header(node, period, area, day),
        title=_("{unit} {period} 矛盾纠纷排查化解月报表").format(unit=node.info.name,
                                                         period=period.code),
        preamble=(_("In the period {screened} disputes were screened and {resolved} resolved, "
                    "a resolution rate of {rate}.").format(screened=r.denominator,
                                                         resolved=r.numerator,
                                                         rate=r.percent()),),
        tables=(breakdown(node, disputes, ids, period, day, "kind", "ledger.dispute_kind",
                          "by_kind", N_("By type of dispute (矛盾类型)")),
                breakdown(node, disputes, ids, period, day, "risk", "ledger.risk", "by_risk",
                          N_("By risk (风险等级)"))),
        notes=(_("The definitions of the figures: xinfang report describe ledger.disputes"),))


DISPUTES = Report(
    "ledger.disputes", N_("Dispute screening and resolution report (矛盾纠纷排查化解月报表)"),
    (Column("area", N_("Area")), *FIGURES), disputes_report, (PERIOD, AREA, AS_OF),
    description=N_("The disputes screened and resolved in a period, the resolution rate, "
                   "those transferred to 信访, overdue and mass incidents: a row per area one "
                   "level down and a total, with tables by type and by risk."),
    definitions=DISPUTE_DEFINITIONS, submittable=True)


# -- 移民信访维稳月报 -----------------------------------------------------------------


def cases(node, period: Period, area: str, day: str) -> list[records.Record]:
    """The 库区移民 cases registered in the period (by 登记日期, up to ``day``)."""
    if node.registry.entity_type("case") is None:
        return []
    return records.list_records(node, "case", records.RecordFilter(
        area=area, since=period.start.isoformat(), until=day,
        values={"category": RESETTLEMENT}))


LEVEL_FIGURES = ("skipped_level", "to_capital", "to_province")


def levels(node, period: Period, area: str, day: str) -> dict[str, int] | None:
    """越级访, 进京 and 赴省 of the area's 库区移民 cases, from the registered report
    ``stats.monthly`` broken down by category (the case plugin derives 越级 and the
    kernel's record does not show it); None where that report is not installed."""
    try:
        result = run_report(node, "stats.monthly", {"period": period.code, "area": area,
                                             "by": "category", "as_of": day})
    except NotFound:
        return None
    label = node.registry.label("case.category", RESETTLEMENT)
    row = next((r for r in result.rows if r.get("group") == label), {})
    return {name: int(row.get(name) or 0) for name in LEVEL_FIGURES}


MONTHLY_COLUMNS = (
    Column("area", N_("Area")), Column("visits", N_("Visits (来访批次)"), "count"),
    Column("visit_people", N_("Visitors (来访人数)"), "count"),
    Column("letters", N_("Letters (来信件数)"), "count"),
    Column("skipped_level", N_("Level-skipping (越级访)"), "count"),
    Column("to_capital", N_("To Beijing (进京)"), "count"),
    Column("to_province", N_("To the province (赴省)"), "count"),
    *(c for c in FIGURES if c.name in ("screened", "resolved", "mass")))


def _counts(found: list[records.Record]) -> dict[str, int]:
    visits = [c for c in found if c.values.get("channel") == "visit"]
    return {"visits": len(visits),
            "visit_people": sum(int(c.values.get("headcount") or 0) for c in visits),
            "letters": sum(c.values.get("channel") == "letter" for c in found)}


def monthly_report(node, period: Period, area: str | None = None,
                   as_of: dt.date | None = None) -> Output:
    area = scope(node, area)
    day = seen(period, as_of)
    found = cases(node, period, area, day)
    disputes = load_disputes(node, area)
    ids = ledger_ids(node, period, area, day)
    groups = sorted({child_of(area, c.area) for c in found}
                    | {child_of(area, d.area) for d in disputes})
    total_levels = levels(node, period, area, day)

    def row(key, cases_, disputes_, level):
        figures = tally(disputes_, ids, period, day)
        return {"area": key, **_counts(cases_), **(level or {}),
                **{k: figures[k] for k in ("screened", "resolved", "mass")}}

    rows = []
    for g in groups:
        level = None
        if total_levels is not None and g != area:
            level = levels(node, period, g, day)
        rows.append(row(g, [c for c in found if child_of(area, c.area) == g],
                        [d for d in disputes if child_of(area, d.area) == g], level))
    if total_levels is not None and area in groups:  # the office's own cases
        own = next(r for r in rows if r["area"] == area)
        own.update({k: total_levels[k] - sum(r.get(k, 0) for r in rows if r is not own)
                    for k in LEVEL_FIGURES})
    total = {**row(_("Total"), found, disputes, total_levels), "area": _("Total")}
    columns = tuple(c for c in MONTHLY_COLUMNS
                    if total_levels is not None or c.name not in LEVEL_FIGURES)
    notes = [_("Cases of category 库区移民 registered in the month; a visit is one batch of its "
               "headcount, a letter one item.")]
    if total_levels is None:
        notes.append(_("越级访, 进京 and 赴省 are not shown: the statistics plugin (report "
                       "stats.monthly) is not installed here."))
    return Output(rows, total=total, columns=columns, header=_header(node, period, area, day),
                  title=_("{unit} {period} 移民信访维稳月报").format(unit=node.info.name,
                                                              period=period.code),
                  tables=(projects_table(node, period, area),), notes=notes)


PROJECT_COLUMNS = (Column("id", N_("Project")), Column("area", N_("Area")),
                   Column("kind", N_("Kind")), Column("name", N_("Name")),
                   Column("planned", N_("Planned"), "count"), Column("unit", N_("Unit")),
                   Column("done", N_("Done so far"), "count"),
                   Column("percent", N_("Percent done"), "ratio"))


def project_progress(node, area: str, end: str) -> list[dict[str, Any]]:
    """Each project registered by ``end``: planned, done so far as its latest 进度 dated
    on or before ``end`` says (0 before any), and the percent."""
    done: dict[str, int] = {}
    for entity_id, details in node.db.execute(
            "select h.entity_id, h.details from entity_history h join ledger_projects p on "
            "p.id = h.entity_id where h.entity = 'project' and h.step = 'progress' and "
            "h.date <= ? and p.area like ? || '%' order by h.entity_id, h.date, h.ord",
            [end, area]):
        done[entity_id] = int(json.loads(details).get("done", 0))
    return [{"id": i, "area": a, "kind": node.registry.label("ledger.project_kind", k) or k,
             "name": n, "planned": p, "unit": u or "", "done": done.get(i, 0),
             "percent": Ratio(done.get(i, 0), p)}
            for i, a, k, n, p, u in node.db.execute(
                "select id, area, kind, name, planned, unit from ledger_projects where "
                "area like ? || '%' and coalesce(date, '') <= ? order by id", [area, end])]


def projects_table(node, period: Period, area: str) -> Table:
    return Table("projects", N_("Resettlement-village projects (移民新村项目进度)"),
                 PROJECT_COLUMNS, project_progress(node, area, period.end.isoformat()))


MONTHLY = Report(
    "ledger.monthly", N_("Resettlement petition and stability monthly report (移民信访维稳月报)"),
    MONTHLY_COLUMNS, monthly_report, (MONTH, AREA, AS_OF),
    description=N_("For a month: visits (批次, 人数) and letters of the 库区移民 cases, their "
                   "越级访, 进京 and 赴省, the disputes screened and resolved, mass incidents, "
                   "and each project's progress; a row per area one level down and a total."),
    definitions=(
        Definition("visits", N_("Visits"), N_(
            "Cases of category 库区移民 registered (登记日期) in the month by visit (来访): one "
            "batch each; 来访人数 the sum of their headcounts; 来信件数 those by letter.")),
        Definition("skipped_level", N_("越级访, 进京, 赴省"), N_(
            "As the 月报表 (stats.monthly) counts them, for the 库区移民 cases only.")),
        *(d for d in DISPUTE_DEFINITIONS if d.name in ("screened", "resolved", "mass")),
        Definition("percent", N_("Project progress"), N_(
            "Done so far as the project's latest 进度 dated on or before the month's last day "
            "says, over the planned households or units."))),
    submittable=True)

from .target_report import TARGETS  # noqa: E402  (it reads the figures above)

REPORTS = [DISPUTES, MONTHLY, TARGETS]
