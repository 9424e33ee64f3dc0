"""The 督办单 in the web view: its generic record pages (``xinfang.web.records``) issue
one through ``api.issue``, as ``xinfang ducha issue`` does: the cases it names are
typed on the form (one a line, or separated by commas) and its area is theirs.

Registered through the plugin's ``xinfang_routes``: the form needs no page of its own.
"""

from __future__ import annotations

from typing import Any

from xinfang.core import kernel
from xinfang.core.entities import Field
from xinfang.core.i18n import N_
from xinfang.web.records import Creation, add_creation

from . import api
from .orders import ENTITY

CASE = "case"
ORDER_CASES = Field("cases", "信访事项编号", required=True,
                    help=N_("the numbers of the cases the order supervises"))


def _issue_order(node, given: dict[str, Any], area: str | None,
                 lists: dict[str, list[str]]) -> str:
    return api.issue(node, lists["cases"], given["due"], given["required"], given.get("kind"),
                     given.get("date"))


def _order_areas(node, given: dict[str, Any], lists: dict[str, list[str]]) -> list[str]:
    """The areas of the named cases held here (those not held are refused by ``issue``)."""
    case_type = node.registry.entity_type(CASE)
    found = [kernel.load(node.db, case_type, n) for n in lists["cases"]] if case_type else []
    return [row["area"] for row in found if row]


add_creation(ENTITY, Creation(_issue_order, (ORDER_CASES,), asks_area=False,
                              areas=_order_areas))
