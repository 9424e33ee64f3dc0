"""The 工作台 (``/``): the month's figures for an area, what waits to be looked at, and
charts that lead into the case list.

The figures are the 月报表's (one run of ``stats.monthly``, its total, its rows
by area and its trend; the same months a year earlier and the cases by
category are counted by the 月报表's rule for 件 in SQL), so the dashboard
never shows a number the report would not. At a county of 20,000 cases that
run takes most of a second, so the result is kept per node until the log
grows (every view is a fold of it), another process writes to the database,
the day changes, or another month, area or language is asked for
(``_summary``). The charts are inline SVG drawn on the server: no script,
nothing fetched, and a table on the page carries the same numbers.
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any
from urllib.parse import urlencode

import attrs

from xinfang.core import areas, clock, i18n, periods
from xinfang.core.i18n import N_, _
from xinfang.core.reports import cell_text, run_report
from xinfang.core.routes import Response, Route, find_route
from xinfang.plugins import settlements
from xinfang.plugins.cases import api

from .app import Page, add_labels, page

#: the figures the dashboard shows from the 月报表's total row, in order
DASHBOARD_FIGURES = ("cases", "batches", "person_visits", "collective", "repeat",
                     "timely_acceptance", "on_time_closure", "satisfaction")

add_labels({
    "dash_counts": N_("To look at"), "dash_silent": N_("Silent stations (零报告)"),
    "dash_no_period": N_("No 零报告 period is running today."),
    "dash_none_silent": N_("Every station has reported today."),
    "dash_by_category": N_("Cases of the month by problem category"),
    "dash_by_area": N_("Cases of the month by area"),
    "dash_this_year": N_("This year"), "dash_year_ago": N_("Same month a year earlier"),
    "dash_yoy": N_("Change on last year (同比)"),
    "dash_mom": N_("Change on previous period (环比)"),
    "dash_cases": N_("Cases (件)"), "dash_no_cases": N_("No cases this month."),
})


def _has_page(node, path: str) -> bool:
    """Whether this node serves a page at ``path`` (another plugin's, or not installed)."""
    route, _params = find_route(node.registry.routes.values(), path.split("?")[0])
    return route is not None and route.page


@attrs.frozen
class Summary:
    """What the dashboard shows of one month and area, computed from the views."""

    heading: str
    #: (label, text, column name, 环比 text, 同比 text)
    figures: tuple[tuple[str, str, str, str, str], ...]
    #: (month code, cases, the month a year earlier, its cases)
    trend: tuple[tuple[str, int, str, int], ...]
    #: (category code, label, cases), most first
    by_category: tuple[tuple[str, str, int], ...]
    #: (area code, name, cases), most first
    by_area: tuple[tuple[str, str, int], ...]
    overdue: int
    #: the 零报告 periods running today (id, name; None: none) and their silent stations
    #: (area, name)
    zero_periods: tuple[tuple[str, str], ...] | None
    silent: tuple[tuple[str, str], ...]


#: per open database: (log position, data version, day, area, period, language) -> Summary
_SUMMARIES: "weakref.WeakKeyDictionary[Any, dict[tuple, Summary]]" = weakref.WeakKeyDictionary()
_KEPT = 8


def _summary(node, area: str, period: periods.Period, today: dt.date) -> Summary:
    """The month's summary, computed again only when the log has grown (every view is a
    fold of it), another process has written to the database (a ``rebuild``), the day
    has changed, or for another area, period or language."""
    (position,) = node.db.execute("select coalesce(max(pos), 0) from events").fetchone()
    (written,) = node.db.execute("pragma data_version").fetchone()
    key = (position, written, today, area, period.code, i18n.language())
    kept = _SUMMARIES.setdefault(node.db, {})
    if key not in kept:
        if len(kept) >= _KEPT:
            kept.clear()
        kept[key] = _compute_summary(node, area, period, today)
    return kept[key]


def _compute_summary(node, area: str, period: periods.Period, today: dt.date) -> Summary:
    result = run_report(node, "stats.monthly", {"period": period.code, "area": area})
    columns = {c.name: c for c in result.columns}
    compared = {row["indicator"]: row for table in result.tables
                if table.name == "comparison" for row in table.rows}
    figures = []
    for name in DASHBOARD_FIGURES:
        if name not in columns or not result.total:
            continue
        label = _(columns[name].label)
        change = compared.get(label, {})
        figures.append((label, cell_text(result.total.get(name)), name,
                        cell_text(change["mom"]) if "mom" in change else "",
                        cell_text(change["yoy"]) if "yoy" in change else ""))
    rows = result.trend.rows if result.trend else ()
    ago = [periods.parse(row["month"]).year_ago() for row in rows]
    earlier = _cases_by_month(node, area, ago, today)
    trend = tuple((row["month"], int(row.get("cases") or 0), month.code, earlier[month.code])
                  for row, month in zip(rows, ago))
    names = _area_names(node)
    by_area = sorted(((row["group"], names.get(row["group"], ""), int(row.get("cases") or 0))
                      for row in result.rows if row.get("cases")),
                     key=lambda r: (-r[2], r[0]))
    if [r[0] for r in by_area] == [area]:  # a village: no area below it
        by_area = []
    zero_periods, silent = _silent_stations(node, area, today)
    overdue = api.count_cases(node, api.CaseFilter(overdue=True, area=area), today=today)
    return Summary(result.heading, tuple(figures), trend,
                   tuple(_cases_by_category(node, area, period, today)), tuple(by_area),
                   overdue, zero_periods, tuple(silent))


def _counted() -> tuple[str, list[str]]:
    """The 月报表's rule for 件 (the ``cases`` indicator): a case counts in the period it
    was received in, seen as of the period's last day (or today), 涉法涉诉 left out;
    as SQL over ``cases`` for the breakdowns the report's one run does not give."""
    from xinfang.plugins.stats import indicators

    (cases,) = indicators.by_name(["cases"])
    left_out = sorted(cases.excludes)
    return f"category not in ({','.join('?' * len(left_out))})", left_out  # i18n: identifier


def _cases_by_month(node, area: str, months: list[periods.Period],
                    today: dt.date) -> dict[str, int]:
    """Cases (件) of each month of ``months``, as the 月报表 counts them."""
    found = {m.code: 0 for m in months}
    if not months:
        return found
    rule, left_out = _counted()
    last = min(months[-1].end, today).isoformat()
    for month, count in node.db.execute(
            f"select substr(received, 1, 7), count(*) from cases where area like ? || '%' "
            f"and received >= ? and received <= ? and {rule} group by 1",
            [area, months[0].start.isoformat(), last, *left_out]):
        if month in found:
            found[month] = count
    return found


def _cases_by_category(node, area: str, period: periods.Period,
                       today: dt.date) -> list[tuple[str, str, int]]:
    """Cases (件) of the period per 问题类别, as the 月报表 by category counts them."""
    rule, left_out = _counted()
    rows = node.db.execute(
        f"select category, count(*) from cases where area like ? || '%' and received >= ? "
        f"and received <= ? and {rule} group by category",
        [area, period.start.isoformat(), min(period.end, today).isoformat(),
         *left_out]).fetchall()
    return sorted(((code, node.registry.label("case.category", code) or code, count)
                   for code, count in rows), key=lambda r: (-r[2], r[0]))


def _area_names(node) -> dict[str, str]:
    """The offices' names by area, from the certificates this node holds."""
    return {area: name for area, name in node.db.execute(
        "select area, name from certs order by area")}


def _silent_stations(node, area: str, today: dt.date
                     ) -> tuple[tuple[tuple[str, str], ...] | None, list[tuple[str, str]]]:
    """The 零报告 periods running today and the stations in ``area`` silent on today's
    report day (``zero_report.api.day_report``, as ``xinfang zero-report missing``); no
    periods: (None, [])."""
    from xinfang.plugins.zero_report import api as zero

    if "zero_filing" not in node.registry.entity_types:
        return None, []
    running = [p for p in zero.list_periods(node) if p.start <= today <= p.end]
    if not running:
        return None, []
    silent: dict[str, str] = {}
    for found in running:
        report = zero.day_report(node, found, found.day_of(today), as_of=today)
        for station in report["missing"]:
            if areas.contains(area, station["area"]):
                silent.setdefault(station["area"], station["name"])
    return tuple((p.id, p.name) for p in running), sorted(silent.items())


def _counts(context: Page, summary: Summary, area: str) -> list[dict[str, Any]]:
    """The numbers to look at, each with the page that lists it where there is one."""
    node = context.node
    overdue_link = "/cases?" + urlencode({"overdue": "1", **(
        {"area": area} if area != context.home_area else {})})
    (quarantined,) = node.db.execute("select count(*) from quarantine").fetchone()
    # the records ``core.held`` groups by reason (its grouped read costs a pass over the log)
    (held,) = node.db.execute("select count(*) from held_entities").fetchone()
    silent_link = None
    if summary.zero_periods:
        silent_link = "/reports/zero.rates?" + urlencode(
            {"run": "1", **({"period": summary.zero_periods[0][0]}
                            if len(summary.zero_periods) == 1 else {})})
    counts = [(_("Overdue cases"), summary.overdue, "overdue", overdue_link),
              (_("Silent stations (零报告)"), len(summary.silent) if summary.zero_periods
               else "—", "silent", silent_link),
              (_("Open conflicts"), len(settlements.list_conflicts(node)), "conflicts",
               "/conflicts"),
              (_("Quarantined events"), quarantined, "quarantine", "/quarantine"),
              (_("Held records"), held, "held", "/held")]
    return [{"label": label, "value": value, "name": name,
             "href": href if href and _has_page(node, href) else None}
            for label, value, name, href in counts]


@page
def dashboard(context: Page) -> Response:
    node = context.node
    area = context.asked_area()
    period = periods.parse(context.request.query.get("period") or
                           periods.current_month().code)
    summary = _summary(node, area, period, clock.today())
    category_link = {code: "/cases?" + urlencode({"category": code, "from": period.start,
                                                  "to": period.end, "area": area})
                     for code, _label, _n in summary.by_category}
    return context.render(
        "dashboard.html", title=summary.heading, area=area, month=period.code,
        figures=summary.figures, counts=_counts(context, summary, area), summary=summary,
        trend_chart=_trend_chart(summary.trend),
        category_chart=_bars([(code, label, n, category_link[code])
                              for code, label, n in summary.by_category]),
        area_chart=_bars([(code, f"{name} {code}".strip(), n, "/cases?" + urlencode(
            {"area": code, "from": period.start, "to": period.end}))
            for code, name, n in summary.by_area]))


def _trend_chart(trend) -> dict[str, Any]:
    """Paired bars per month (the month, and the same month a year earlier) of an inline
    SVG: no script, nothing fetched; the table below it carries the same numbers."""
    top = max([n for _m, n, _a, _e in trend] + [e for _m, _n, _a, e in trend] + [1])
    bar, gap, height, top_margin = 16, 12, 120, 16
    groups = []
    for i, (month, n, ago, earlier) in enumerate(trend):
        x = i * (2 * bar + gap)
        groups.append({"month": month, "ago": ago, "label": month[-2:], "x": x,
                       "bars": [_bar_geometry(x, bar, earlier, top, height, top_margin, "ago"),
                                _bar_geometry(x + bar, bar, n, top, height, top_margin, "now")]})
    return {"groups": groups, "width": max(len(trend) * (2 * bar + gap), 1),
            "height": height + top_margin + 18, "base": height + top_margin, "bar": bar}


def _bar_geometry(x: int, width: int, n: int, top: int, height: int, margin: int,
                  kind: str) -> dict[str, Any]:
    h = round(height * n / top)
    return {"x": x, "y": margin + height - h, "h": h, "w": width, "n": n, "kind": kind}


def _bars(rows: list[tuple[str, str, int, str]]) -> dict[str, Any]:
    """Horizontal bars (label, bar, number) of an inline SVG, one row per item."""
    top = max([n for _c, _l, n, _h in rows] + [1])
    label_width, length, row = 220, 320, 22
    return {"rows": [{"code": code, "label": label, "n": n, "href": href, "y": i * row,
                      "w": max(round(length * n / top), 1), "x": label_width}
                     for i, (code, label, n, href) in enumerate(rows)],
            "width": label_width + length + 50, "height": max(len(rows) * row, row),
            "row": row}


def routes() -> list[Route]:
    return [Route("web.dashboard", "/", dashboard, label=N_("Dashboard"), page=True)]
