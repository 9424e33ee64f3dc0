"""The report ``zero.rates`` (零报告报送率): rates per station, through the renderers."""

from __future__ import annotations

import datetime as dt

from xinfang.core.entities import parse_date
from xinfang.core.i18n import N_, _
from xinfang.core.reports import Column, Definition, Output, Param, Ratio, Report

from . import api


def _date(text: str) -> dt.date:
    return parse_date(text, N_("as-of date"))


COLUMNS = (
    Column("area", N_("Area code")), Column("name", N_("Station")),
    Column("expected", N_("Reports expected"), "count"),
    Column("filed", N_("Reports received"), "count"),
    Column("on_time", N_("Received on time"), "count"),
    Column("late", N_("Received late"), "count"),
    Column("reporting_rate", N_("Reporting rate"), "ratio"),
    Column("on_time_rate", N_("On-time rate"), "ratio"),
)


def _row(tally: dict) -> dict:
    return {**{k: tally[k] for k in ("expected", "filed", "on_time", "late")},
            "reporting_rate": Ratio(tally["filed"], tally["expected"]),
            "on_time_rate": Ratio(tally["on_time"], tally["expected"])}


def rates(node, period: str | None = None, as_of: dt.date | None = None) -> Output:
    found = api.status(node, period, as_of)
    info = found["period"]
    rows = [{"area": s["area"], "name": s["name"], **_row(s)} for s in found["stations"]]
    total = {"area": _("Total"), "name": "", **_row(found["total"])}
    silent = [f"{d['day']}: {', '.join(d['missing'])}" for d in found["days"] if d["missing"]]
    return Output(rows, total, title=_("零报告 reporting rates: {name}").format(
                      name=info["name"]),
                  header=((_("Period"), f"{info['from']} — {info['to']}"),
                          (_("As of"), found["as_of"])),
                  notes=[_("Silent stations by day: {days}").format(
                      days="; ".join(silent) or "—")])


REPORTS = [Report(
    "zero.rates", N_("零报告 reporting rates"), COLUMNS, rates,
    params=(Param("period", N_("Period id [default: the one running, or the latest]")),
            Param("as_of", N_("Figures as of (YYYY-MM-DD) [default: today]"), convert=_date)),
    description=N_("Per station and in total, over the report days begun by the as-of date: "
                   "reports expected, received, received on time and late."),
    definitions=(
        Definition("reporting_rate", N_("Reporting rate"),
                   N_("reports received (a signed 无情况 counts) / reports expected; a station "
                      "is expected from its certification day")),
        Definition("on_time_rate", N_("On-time rate"),
                   N_("reports filed by the due day plus zero_report.grace_days / reports "
                      "expected; the filing's own date decides, never the clock")),
    ))]
