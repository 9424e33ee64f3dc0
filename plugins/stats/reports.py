"""The offices' named reports: the 月报表 and the 超期 / 督办 list.

Both read the views once (``indicators.load_cases``) and compute everything
else in Python: the period, the one before it (环比), the same one a year
earlier (同比), the twelve months of the trend and every breakdown row come
from the same pass, so a report costs one read whatever it shows.

A period's figures are seen as of its last day (or today, while it is still
running, or the ``as_of`` given): a report filed for November shows the same
figures when it is run again in March.

The 月报表 run as a report (``monthly_report``) also carries the 补报 of the
area's earlier approved periods as notes: the approved figures stand, and
each later change shows on the next report, one line per period.
``monthly`` itself (what a submission records and a recomputation compares)
has no such line.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import attrs

from xinfang.core import areas, clock
from xinfang.core.entities import parse_date
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _
from xinfang.core.reports import Change, Column, Definition, Output, Param, Report, Table
from xinfang.plugins.cases.deadlines import LABELS as DEADLINE_LABELS

from . import approval as ap
from . import indicators as ind
from xinfang.core import periods
from .tally import Tally

BREAKDOWNS: dict[str, str] = {
    "area": N_("Area"), "channel": N_("Channel"), "category": N_("Problem category"),
    "kind": N_("Kind of request"),
}
VOCABULARIES = {"channel": "case.channel", "category": "case.category", "kind": "case.kind"}


def _area(text: str) -> str:
    return areas.check_code(text.strip())


def _breakdown(text: str) -> str:
    text = text.strip()
    if text not in BREAKDOWNS:
        raise InvalidInput(N_("a breakdown is by one of {names}, not “{text}”"),
                           names=", ".join(BREAKDOWNS), text=text)
    return text


def _date(text: str) -> dt.date:
    return parse_date(text, N_("as-of date"))


PERIOD = Param("period", N_("Period (2026-11, 2026-Q4, 2026, 2026-03-01..2026-05-31)"),
               convert=periods.parse)
AREA = Param("area", N_("Area [default: this node's area]"), convert=_area)
AS_OF = Param("as_of", N_("Figures as of (YYYY-MM-DD) [default: the period's last day, or "
                          "today]"), convert=_date)
BY = Param("by", N_("Breakdown [area|channel|category|kind]: the next level down, channel, "
                    "category or kind"),
           default="area", convert=_breakdown)


def scope(node, area: str | None) -> str:
    area = area or node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is outside this node's jurisdiction {own}; a "
                              "report covers this node's area or an area below it"),
                           area=area, own=node.info.area)
    return area


def seen_as_of(period: periods.Period, as_of: dt.date | None) -> str:
    return min(period.end, as_of or clock.today()).isoformat()


def child_level(area: str) -> int | None:
    longer = [n for n in areas.VALID_LENGTHS if n > len(area)]
    return longer[0] if longer else None


def grouping(node, area: str, by: str) -> tuple[Callable[[ind.CaseRecord], str],
                                                Callable[[str], str]]:
    """The key of a case's breakdown row, and the label of a key."""
    if by == "area":
        digits = child_level(area) or len(area)
        return (lambda case: case.area[:digits]), (lambda key: key)
    vocabulary = VOCABULARIES[by]
    return ((lambda case: getattr(case, by)),
            (lambda key: node.registry.label(vocabulary, key) or key))


def _excluded_notes(tally: Tally, indicators: list[ind.Indicator], period: str) -> list[str]:
    counts = [(i, tally.left_out(i, period)) for i in indicators]
    cases = next((n for i, n in counts if i.name == "cases"), 0)
    parts = ", ".join(f"{_(i.label)} {n}" for i, n in counts if n and i.name != "cases")
    return [_("涉法涉诉 cases are left out of every figure (routed to the legal channel, not "
              "counted or assessed): {cases} registered in the period; left out of the "
              "figures: {parts}").format(cases=cases, parts=parts or "—")]


def _tally(indicators: list[ind.Indicator], spans: dict[str, periods.Period],
           as_of: dt.date | None, key=None) -> Tally:
    return Tally(indicators, {name: (p.start.isoformat(), p.end.isoformat())
                              for name, p in spans.items()},
                 {name: seen_as_of(p, as_of) for name, p in spans.items()}, key)


def monthly(node, period: periods.Period | None = None, area: str | None = None,
            by: str = "area", as_of: dt.date | None = None) -> Output:
    period = period or periods.current_month()
    area = scope(node, area)
    chosen = ind.by_name()
    compared = {"current": period, "previous": period.previous(), "year_ago": period.year_ago()}
    months = period.months(12)
    trend_spans = {f"month:{m.code}": m for m in months}
    key, label = grouping(node, area, by)
    # every figure, by group, for the three compared periods; the trend's few figures, in
    # all, for its twelve months: one pass over the cases each, not every figure fifteen
    # times over
    tally = _tally(chosen, compared, as_of, key)
    trend_tally = _tally(ind.by_name(ind.TREND), trend_spans, as_of)
    since = min(p.start for p in (*compared.values(), *months)).isoformat()
    cases = ind.load_cases(node, area, since)
    tally.add(cases)
    trend_tally.add(cases)

    rows = [{"group": label(group), **tally.row("current", group)}
            for group in sorted(tally.groups)]
    total = {"group": _("Total"), **tally.row("current")}
    columns = (Column("group", BREAKDOWNS[by]),
               *(Column(i.name, i.label, i.kind) for i in chosen))

    comparison = []
    for indicator in chosen:
        current, previous, last_year = (tally.value(indicator, p) for p in compared)
        comparison.append({"indicator": _(indicator.label), "current": current,
                           "previous": previous, "mom": Change.between(current, previous),
                           "last_year": last_year, "yoy": Change.between(current, last_year)})
    trend_indicators = ind.by_name(ind.TREND)
    trend = Table("trend", N_("Monthly trend (12 months)"),
                  (Column("month", N_("Month")),
                   *(Column(i.name, i.label, i.kind) for i in trend_indicators)),
                  [{"month": m.code, **{i.name: trend_tally.value(i, f"month:{m.code}")
                                        for i in trend_indicators}} for m in months])
    header = ((_("Reporting unit"), node.info.name),
              (_("Period"), _("{period} ({start} to {end})").format(
                  period=period.label, start=period.start.isoformat(),
                  end=period.end.isoformat())),
              (_("Area"), area),
              (_("Figures as of"), seen_as_of(period, as_of)))
    notes = [*_excluded_notes(tally, chosen, "current"),
             _("Previous period (环比): {previous}; same period last year (同比): "
               "{year_ago}.").format(previous=compared["previous"].code,
                                     year_ago=compared["year_ago"].code),
             _("The definitions of the figures: xinfang report describe stats.monthly")]
    return Output(rows, total=total,
                  title=_("{unit} {period} monthly petition work report").format(
                      unit=node.info.name, period=period.label),
                  header=header, notes=notes, columns=columns,
                  tables=(Table("comparison", N_("Compared with the previous period and the "
                                                 "same period last year"), COMPARISON,
                                comparison),),
                  trend=trend)


def difference_text(group: str | None, figure: str, part: str, approved: int,
                    now: int) -> str:
    """One changed figure of an approved report: 合计 案件数：审核数 4，现核算 5（+1）."""
    return _("{group} {figure} {part}: approved {submitted}, now {recomputed} ({change})").format(
        group=group or _("Total"), figure=figure_label(figure), part=part_label(part),
        submitted=approved, recomputed=now, change=f"{now - approved:+d}")


def part_label(part: str) -> str:
    """Which part of a figure changed: a count, or a rate's numerator or denominator."""
    return {"count": "", "numerator": _("numerator"), "denominator": _("denominator")}[part]


def figure_label(name: str) -> str:
    """An indicator's label in the reader's language (its machine name if unknown)."""
    found = next((i for i in ind.INDICATORS if i.name == name), None)
    return _(found.label) if found else name


def amendment_notes(node, period: periods.Period, area: str,
                    report: str = "stats.monthly") -> list[str]:
    """补报: per earlier approved period of ``area``'s ``report`` this node holds whose
    figures a recomputation now (``submission.amendments``) changes, one line naming
    the period, the record and each changed figure, approved and now."""
    from . import submission  # it computes its figures with ``monthly``

    notes = []
    for (record_id,) in node.db.execute(
            f"select id from {ap.TABLE} where area = ? and report = ? and status = 'approved' "
            "order by period, id", [area, report]).fetchall():
        record = ap.load(node.db, record_id)
        if periods.parse(record["period"]).end >= period.start:
            continue
        changed = submission.amendments(node, record)
        if changed:
            notes.append(_("补报 (amendment) for {period}, approved report {record}: {changes}")
                         .format(period=record["period"], record=record_id, changes="; ".join(
                             difference_text(d.group, d.figure, d.part, d.submitted,
                                             d.recomputed) for d in changed)))
    return notes


def monthly_report(node, period: periods.Period | None = None, area: str | None = None,
                   by: str = "area", as_of: dt.date | None = None) -> Output:
    """The 月报表 as ``report run`` shows it: ``monthly`` with the 补报 lines of the
    area's earlier approved periods after its notes."""
    period = period or periods.current_month()
    area = scope(node, area)
    output = monthly(node, period, area, by, as_of)
    return attrs.evolve(output, notes=(*output.notes, *amendment_notes(node, period, area)))


COMPARISON = (Column("indicator", N_("Figure")), Column("current", N_("This period")),
              Column("previous", N_("Previous period")),
              Column("mom", N_("Change on previous period (环比)"), "change"),
              Column("last_year", N_("Same period last year")),
              Column("yoy", N_("Change on last year (同比)"), "change"))

MONTHLY = Report(
    "stats.monthly", N_("Monthly petition work report (月报表)"),
    (Column("group", N_("Breakdown")),
     *(Column(i.name, i.label, i.kind) for i in ind.INDICATORS)),
    monthly_report, (PERIOD, AREA, BY, AS_OF),
    description=N_("The counts (cases, visits, person-visits, collective and repeat visits) "
                   "and the rates of an area for a period, a row per area one level down (or "
                   "per channel, category or kind) and a total row, with 环比, 同比 and the "
                   "twelve-month trend."),
    definitions=[Definition(i.name, i.label, i.definition) for i in ind.INDICATORS],
    submittable=True)


# -- 超期 / 督办 ---------------------------------------------------------------------


def overdue(node, period: periods.Period | None = None, area: str | None = None,
            as_of: dt.date | None = None) -> Output:
    period = period or periods.current_month()
    area = scope(node, area)
    day = seen_as_of(period, as_of)
    open_states = {s.name for s in node.registry.lifecycle("case").states.values() if s.open}
    rows: list[dict[str, Any]] = []
    excluded = 0
    for case in ind.load_cases(node, area):
        late = [d for d in case.deadlines.values() if d.obligation and d.due < day
                and d.start <= day and (d.met_on is None and case.status in open_states
                                        or d.met_on is not None and d.met_on > day)]
        if late and case.category in ind.EXCLUDED:
            excluded += 1
            continue
        for deadline in late:
            days = (dt.date.fromisoformat(day) - dt.date.fromisoformat(deadline.due)).days
            rows.append({
                "case_id": case.id, "area": case.area,
                "category": node.registry.label("case.category", case.category),
                "deadline": _(DEADLINE_LABELS.get(deadline.kind, deadline.kind)),
                "due": deadline.due, "days_overdue": days, "unit": case.unit or "",
                "leader": case.leader or "",
                "status": node.registry.lifecycle("case").label(case.status)})
    rows.sort(key=lambda r: (-r["days_overdue"], r["case_id"], r["due"]))
    cases = len({r["case_id"] for r in rows})
    total = {"case_id": _("Total"), "area": _("{cases} cases, {deadlines} deadlines").format(
        cases=cases, deadlines=len(rows))}
    notes = [_("涉法涉诉 cases are left out of supervision lists (routed to the legal channel): "
               "{count} with a deadline passed").format(count=excluded),
             _("Overdue: an obligation of the office (not a petitioner's window) whose "
               "deadline passed before {day} and that was still unmet on that day.").format(
                 day=day)]
    return Output(rows, total=total,
                  title=_("{unit} overdue cases as of {day} (督办)").format(
                      unit=node.info.name, day=day),
                  header=((_("Reporting unit"), node.info.name), (_("Area"), area),
                          (_("Figures as of"), day)),
                  notes=notes)


OVERDUE = Report(
    "stats.overdue", N_("Overdue cases for supervision (超期督办)"),
    (Column("case_id", N_("Case number")), Column("area", N_("Area")),
     Column("category", N_("Problem category")), Column("deadline", N_("Deadline")),
     Column("due", N_("Due"), "date"), Column("days_overdue", N_("Days overdue"), "count"),
     Column("unit", N_("Responsible unit")), Column("leader", N_("Leader in charge")),
     Column("status", N_("Status"))),
    overdue, (PERIOD, AREA, AS_OF),
    description=N_("Cases past a deadline of the office as of the period's last day (or "
                   "today), with the days overdue, the responsible unit and the leader in "
                   "charge (包案领导), the longest overdue first."),
    definitions=[Definition("days_overdue", N_("Days overdue"), N_(
        "Calendar days from the deadline (an extension included) to the day the list is "
        "seen as of; a deadline met after that day still counts as overdue on it."))])

REPORTS = [MONTHLY, OVERDUE]
