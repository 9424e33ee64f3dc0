"""The case plugin's own small report: open work by status and category.

The offices' statistics (月报表, indicators) are the reports plugin's; this
one shows a county what its desk holds now, and is the worked example of the
report hook for a plugin that owns an entity type.
"""

from __future__ import annotations

from xinfang.core import areas
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
    "case.status", "信访事项状态统计",
    (Column("status", "状态"), Column("category", "问题类别"), Column("cases", "件数"),
     Column("people", "人次")),
    _status_counts, (Param("area", "区划", convert=_area),),
    description="本节点所持信访事项按状态和问题类别计数：件数为事项数，人次为登记人数之和。")
