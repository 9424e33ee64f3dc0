"""The case plugin's own small report: open work by status and category.

The offices' statistics (月报表, indicators) are the stats plugin's (`xinfang.plugins.stats`); this
one shows a county what its desk holds now, and is the worked example of the
report hook for a plugin that owns an entity type.
"""

from __future__ import annotations

from xinfang.core import areas
from xinfang.core.i18n import N_
from xinfang.core.reports import Column, Param, Report


def _area(text: str) -> str:
    return areas.check_code(text.strip())


def _status_counts(node, area: str | None = None) -> list[dict]:
    area = area or node.info.area
    lifecycle = node.registry.lifecycle("case")
    rows = node.db.execute(
        "select status, category, count(*), sum(headcount) from cases where area like ? || '%' "
        "group by status, category order by status, category", [area]).fetchall()
    return [{"status": lifecycle.label(status),
             "category": node.registry.label("case.category", category),
             "cases": count, "people": people} for status, category, count, people in rows]


STATUS_COUNTS = Report(
    "case.status", N_("Cases by status"),
    (Column("status", N_("Status")), Column("category", N_("Problem category")),
     Column("cases", N_("Cases")), Column("people", N_("Person-visits"))),
    _status_counts, (Param("area", N_("Area"), convert=_area),),
    description=N_("Counts the cases this node holds by status and problem category: cases is "
                   "the number of cases, person-visits the sum of their headcounts."))
