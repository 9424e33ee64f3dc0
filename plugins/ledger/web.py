"""The ledger's page in the web view: the month's 台账 for the user's area, what is
overdue, links to the records and the reports, and 结转 (月度排查).

Registered through the plugin's own ``xinfang_routes``, so only a node with the
ledger plugin has the page and its menu entry. Its disputes, projects and
targets need no page code here: the web's generic record pages serve them
(``xinfang.web.records``); this module only tells those pages to take the
ledger's steps through ``api.step``, as the CLI's generated commands do, so a
转信访 checks the case it links.
"""

from __future__ import annotations

from pathlib import Path

from xinfang.core import areas, clock, periods
from xinfang.core.errors import XinfangError
from xinfang.core.i18n import N_, _
from xinfang.core.routes import Response, Route
from xinfang.web import records as web_records
from xinfang.web import users
from xinfang.web.app import Page, add_labels, add_menu, add_templates, page, redirect

from . import api
from .entities import DISPUTE, ENTITY_TYPES
from .reports import REPORTS

add_templates(Path(__file__).resolve().parent / "templates")
add_labels({
    "ldg_title": N_("Dispute ledger"), "ldg_month": N_("Month"),
    "ldg_show": N_("Show"), "ldg_overdue": N_("Open disputes past their due date"),
    "ldg_records": N_("Ledger records"), "ldg_reports": N_("Ledger reports"),
    "ldg_carry": N_("Carry open disputes into the month (月度排查)"),
    "ldg_carry_do": N_("Carry open disputes into the month"),
    "ldg_carry_day": N_("Day of the screening (default: the month's first day)"),
    "ldg_none": N_("No dispute is in this month's ledger."),
    "ldg_no_overdue": N_("No open dispute is past its due date."),
})
add_menu("/ledger", N_("Dispute ledger"), users.VIEW_AREA, 31)
for _entity in ENTITY_TYPES:
    web_records.add_step_taker(_entity.name, api.take(_entity.name))


def _month(context: Page) -> str:
    """The month asked for (``?month=YYYY-MM``), else this one."""
    month = (context.request.query.get("month") or periods.current_month().code).strip()
    api.month_bounds(month)  # a bad month: the API's message
    return month


def _valid_month(month: str) -> bool:
    try:
        api.month_bounds(month)
    except XinfangError:
        return False
    return True


def _area(context: Page) -> str:
    """The area asked for (in the query, or the 结转 form), else the user's; 403 unless
    the user may see its records."""
    given = (context.request.query.get("area") or context.form.get("area") or "").strip()
    area = areas.check_code(given) if given else context.home_area
    context.require_sight(area)
    return area


def _render(context: Page, month: str, area: str, status: int = 200,
            error_text: str | None = None, done: str | None = None) -> Response:
    node = context.node
    rows = api.month_ledger(node, month, area)
    late = api.overdue(node, clock.today(), area)
    lifecycle = node.registry.lifecycle(DISPUTE)
    return context.render(
        "ledger.html", status=status, title=_("Dispute ledger"), month=month, area=area,
        columns=[(f.name, f.label, f.kind) for f in api.LEDGER_COLUMNS], rows=rows,
        heads={f.name: f.label for f in api.LEDGER_COLUMNS},
        overdue=[{"id": r.id, "area": r.area, "status": lifecycle.label(r.status),
                  "due": r.values.get("due"), "summary": r.values.get("summary")}
                 for r in late],
        kinds=[(t.name, t.label) for t in ENTITY_TYPES],
        reports=[(r.name, _(r.label)) for r in REPORTS],
        may_carry=context.user.may(users.TAKE_STEPS), error=error_text, done=done,
        given=context.form if status != 200 else {})


@page
def ledger(context: Page) -> Response:
    context.require_sight()
    month, area = _month(context), _area(context)
    carried = context.request.query.get("carried")
    done = (_("{count} open disputes carried into {month}").format(count=carried, month=month)
            if carried and carried.isdigit() else None)
    return _render(context, month, area, done=done)


@page
def carry(context: Page) -> Response:
    """结转, as ``xinfang ledger dispute carry``: a bad month or day is the page again (400)
    with the API's message, and nothing is carried."""
    context.require_sight()
    context.require(context.user.may(users.TAKE_STEPS))
    area = _area(context)
    month = (context.form.get("month") or "").strip()
    day = (context.form.get("date") or "").strip() or None
    try:
        carried = api.carry(context.node, month, area, day)
    except XinfangError as exc:
        shown = month if _valid_month(month) else periods.current_month().code
        return _render(context, shown, area, 400, str(exc))
    return redirect(f"/ledger?month={month}&area={area}&carried={len(carried)}")


def routes() -> list[Route]:
    return [Route("ledger.page", "/ledger", ledger, label=N_("Dispute ledger"), page=True),
            Route("ledger.carry", "/ledger/carry", carry, ("POST",),
                  N_("Carry open disputes into the month"), page=True)]
