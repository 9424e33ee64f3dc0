"""``ledger.targets``: the yearly 考核 of the 目标责任状.

Per township with a 目标责任状 for the year, each target signed (as last
revised) beside the year's outcome, and whether it was met:

- 不发生群体事件: the disputes marked 群体性事件 found (排查日期) in the year — met
  when there are none;
- 越级访上限: the 越级访 of the township's 库区移民 cases registered in the year (as
  the 移民信访维稳月报 counts them) — met when not above the limit;
- 化解率不低于: the year's resolution rate (``ledger.disputes`` for the year) — met
  when not below it; a year with nothing screened has no rate and is not met.
"""

from __future__ import annotations

import datetime as dt

from xinfang.core.i18n import N_, _
from xinfang.core.reports import Column, Definition, Output, Param, Report

from .reports import (AREA, AS_OF, levels, load_disputes, ledger_ids, parse_period, scope, seen,
                      tally)


def _year(text: str) -> int:
    year = int(str(text).strip())
    if not 2000 <= year <= 2100:
        raise ValueError(_("a year such as 2026"))
    return year


YEAR = Param("year", N_("Year (2026)"), required=True, convert=_year)


def outcomes(node, township: str, year: int, today: dt.date | None = None):
    """The year's 群体事件, 越级访 (None without the statistics plugin) and 化解率."""
    period = parse_period(str(year))
    day = seen(period, today)
    disputes = load_disputes(node, township)
    figures = tally(disputes, ledger_ids(node, period, township, day), period, day)
    found = levels(node, period, township, day)
    return figures["mass"], None if found is None else found["skipped_level"], \
        figures["resolution"]


def targets_report(node, year: int, area: str | None = None,
                   as_of: dt.date | None = None) -> Output:
    area = scope(node, area)
    rows = []
    met_count = judged = 0
    for township, no_mass, max_skipped, min_resolution in node.db.execute(
            "select area, no_mass, max_skipped, min_resolution from ledger_targets where "
            "year = ? and area like ? || '%' order by area", [year, area]).fetchall():
        mass, skipped, rate = outcomes(node, township, year, as_of)
        items = []
        if no_mass:
            items.append((_("No mass incident (不发生群体事件)"), _("none"),
                          _("{count} mass incidents").format(count=mass), mass == 0))
        if max_skipped is not None:
            items.append((_("Level-skipping at most (越级访上限)"), str(max_skipped),
                          "—" if skipped is None else str(skipped),
                          None if skipped is None else skipped <= max_skipped))
        if min_resolution is not None:
            items.append((_("Resolution rate at least (化解率不低于)"), f"{min_resolution}%",
                          str(rate), rate.value is not None
                          and 100 * rate.numerator >= min_resolution * rate.denominator))
        for target, required, outcome, met in items:
            judged += met is not None
            met_count += bool(met)
            rows.append({"township": township, "target": target, "required": required,
                         "outcome": outcome,
                         "met": "—" if met is None else _("met") if met else _("not met")})
    total = {"township": _("Total"), "met": _("{met} of {count} targets met").format(
        met=met_count, count=judged)}
    return Output(rows, total=total,
                  title=_("{unit} {year} 目标责任状考核").format(unit=node.info.name, year=year),
                  header=((_("Reporting unit"), node.info.name), (_("Year"), str(year)),
                          (_("Area"), area)),
                  notes=(_("The definitions: xinfang report describe ledger.targets"),))


TARGETS = Report(
    "ledger.targets", N_("Yearly target assessment (目标责任状考核)"),
    (Column("township", N_("Township")), Column("target", N_("Target")),
     Column("required", N_("Required")), Column("outcome", N_("Outcome")),
     Column("met", N_("Met"))),
    targets_report, (YEAR, AREA, AS_OF),
    description=N_("Each township's 目标责任状 of a year, target by target, beside the "
                   "year's outcome: met or not met."),
    definitions=(Definition("met", N_("Met"), N_(
        "群体事件: none found (排查日期) in the year; 越级访: the 越级访 of the township's "
        "库区移民 cases registered in the year not above the limit; 化解率: the year's "
        "disputes resolved / screened (as ledger.disputes counts them) not below the "
        "minimum, and not met when nothing was screened. A target whose outcome cannot be "
        "computed here (越级访 without the statistics plugin) is shown — and not judged.")),))
