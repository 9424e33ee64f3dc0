"""The web view's pages: 工作台, the case list, a case, 登记 and the steps.

Every page goes through ``app.page`` (session, CSRF, operator) and calls the
same APIs as the CLI (``plugins/cases/api.py``, ``core/reports.py``), so its
validation and messages are the CLI's. Roles: a list or a case outside the
user's area is refused (403) unless the role sees everything (``view_all``);
登记 needs ``register``, a step ``take_steps``. Petitioners are shown only on
asking (``?reveal=1``) to a user who may see the case, and each showing is
written to the access log under the user (``get_case`` with ``reveal``).
"""

from __future__ import annotations

from typing import Any

from xinfang.core import held as held_mod
from xinfang.core import periods
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _, ngettext
from xinfang.core.reports import cell_text, run_report
from xinfang.core.routes import Response, Route
from xinfang.plugins import settlements
from xinfang.plugins.cases import api
from xinfang.plugins.cases.commands import _flags_text
from xinfang.plugins.cases.views import ENTITY

from . import users
from .app import Page, page, redirect

#: the figures the dashboard shows from the 月报表's total row, in order
DASHBOARD_FIGURES = ("cases", "batches", "person_visits", "collective", "repeat",
                     "timely_acceptance", "on_time_closure", "satisfaction")
CASE_ID = "{id:[0-9]+-[0-9]+-[0-9]+}"


def _area(context: Page) -> str:
    """The area a user works for, within this node's jurisdiction."""
    area = context.user.area
    return area if context.node.in_jurisdiction(area) else context.node.info.area


def _sees_cases(context: Page) -> bool:
    return context.user.may(users.VIEW_AREA) or context.user.may(users.VIEW_ALL)


# -- 工作台 -----------------------------------------------------------------------------


@page
def dashboard(context: Page) -> Response:
    node = context.node
    area = _area(context)
    month = context.request.query.get("period") or periods.current_month().code
    result = run_report(node, "stats.monthly", {"period": month, "area": area})
    columns = {c.name: c for c in result.columns}
    figures = [(_(columns[name].label), cell_text(result.total.get(name)), name)
               for name in DASHBOARD_FIGURES if name in columns and result.total]
    trend = result.trend
    series = [(row["month"], int(row.get("cases") or 0)) for row in trend.rows] if trend else []
    overdue = len(api.list_cases(node, api.CaseFilter(overdue=True, area=area)))
    counts = [(_("Overdue cases"), overdue, "overdue"),
              (_("Open conflicts"), len(settlements.list_conflicts(node)), "conflicts"),
              (_("Quarantined events"),
               node.db.execute("select count(*) from quarantine").fetchone()[0], "quarantine"),
              (_("Held records"), len(held_mod.held(node)), "held")]
    return context.render("dashboard.html", title=result.heading, area=area, month=month,
                          figures=figures, counts=counts, chart=_chart(series),
                          series=series)


def _chart(series: list[tuple[str, int]]) -> dict[str, Any]:
    """Bars of an inline SVG (no script, nothing fetched): x, height and label per month."""
    top = max([n for _m, n in series] + [1])
    width, height, gap = 36, 120, 6
    bars = [{"x": i * (width + gap), "h": round(height * n / top), "y": height - round(
        height * n / top), "month": month[-2:], "n": n} for i, (month, n) in enumerate(series)]
    return {"bars": bars, "width": len(series) * (width + gap), "height": height,
            "bar": width}


# -- the case list and a case -----------------------------------------------------------


@page
def case_list(context: Page) -> Response:
    context.require(_sees_cases(context))
    node, query = context.node, context.request.query
    area = query.get("area") or _area(context)
    if not context.user.may_see(area):
        context.require(False)
    filters = api.CaseFilter(status=query.get("status") or None,
                             category=query.get("category") or None, area=area,
                             channel=query.get("channel") or None,
                             overdue=query.get("overdue") == "1")
    cases = api.list_cases(node, filters)
    text = (query.get("q") or "").strip()
    if text:
        cases = [c for c in cases if text in c.request]
    lifecycle = node.registry.lifecycle(ENTITY)
    rows = [{"id": c.id, "status": c.status_label, "channel": c.channel,
             "category": c.category, "headcount": c.headcount, "received": c.received,
             "area": c.area, "request": c.request,
             "flags": _flags_text(c.to_dict())} for c in cases]
    return context.render(
        "cases.html", rows=rows, query=query, area=area,
        statuses=[(s.name, s.label) for s in lifecycle.states.values()],
        categories=[(c.code, c.label) for c in node.registry.vocabulary("case.category")],
        channels=[(c.code, c.label) for c in node.registry.vocabulary("case.channel")],
        total=ngettext("{count} case in all", "{count} cases in all",
                                len(rows)).format(count=len(rows)))


def _visible_case(context: Page, case_id: str) -> api.Case:
    """The case without its petitioners, if the user may see it (else 403)."""
    context.require(_sees_cases(context))
    case = api.get_case(context.node, case_id, reveal=False)
    context.require(context.user.may_see(case.area))
    return case


def _step_forms(node, case: api.Case) -> list[dict[str, Any]]:
    lifecycle = node.registry.lifecycle(ENTITY)
    forms = []
    for step in lifecycle.allowed(case.status):
        fields = []
        for field in step.fields:
            choices = ([(c.code, c.label) for c in node.registry.vocabulary(field.choices)]
                       if field.choices else None)
            fields.append({"name": field.name, "label": field.label, "kind": field.kind,
                           "required": field.required, "choices": choices,
                           "help": _(field.help) if field.help else ""})
        forms.append({"name": step.name, "label": step.label, "fields": fields})
    return forms


@page
def case_page(context: Page) -> Response:
    case_id = context.request.params["id"]
    case = _visible_case(context, case_id)
    reveal = context.request.query.get("reveal") == "1"
    if reveal:
        case = api.get_case(context.node, case_id, reveal=True)  # logged under the user
    may_step = context.user.may(users.TAKE_STEPS)
    return context.render(
        "case.html", case=case, reveal=reveal, flags=_flags_text(case.to_dict()),
        steps=_step_forms(context.node, case) if may_step else [],
        may_step=may_step, message=context.request.query.get("done"))


def _step_values(form: dict[str, str]) -> dict[str, str]:
    return {k[len("f."):]: v.strip() for k, v in form.items()
            if k.startswith("f.") and v.strip()}


@page
def take_step(context: Page) -> Response:
    case_id = context.request.params["id"]
    case = _visible_case(context, case_id)
    context.require(context.user.may(users.TAKE_STEPS))
    step = context.form.get("step", "")
    try:
        api.take_step(context.node, case_id, step, _step_values(context.form))
    except InvalidInput as exc:
        return context.render("case.html", status=400, case=case, reveal=False,
                              flags=_flags_text(case.to_dict()),
                              steps=_step_forms(context.node, case), may_step=True,
                              message=None, error=str(exc), failed=step)
    return redirect(f"/cases/{case_id}")


# -- 登记 ------------------------------------------------------------------------------


def _creation_fields(node) -> list[dict[str, Any]]:
    entity_type = node.registry.entity_type(ENTITY)
    wanted = ("channel", "category", "kind", "request", "received", "headcount")
    found = []
    for field in entity_type.create.fields:
        if field.name not in wanted:
            continue
        choices = ([(c.code, c.label) for c in node.registry.vocabulary(field.choices)]
                   if field.choices else None)
        found.append({"name": field.name, "label": field.label, "kind": field.kind,
                      "required": field.required or field.name in ("channel", "category",
                                                                   "request"),
                      "choices": choices})
    return found


@page
def new_case(context: Page) -> Response:
    context.require(context.user.may(users.REGISTER))
    node = context.node
    if context.request.method == "GET":
        return context.render("new_case.html", fields=_creation_fields(node), values={},
                              error=None, area=_area(context))
    form = context.form
    area = form.get("area", "").strip() or _area(context)
    try:
        if not context.user.may_see(area):
            raise InvalidInput(N_("the case's area {area} is outside your area {own}"),
                               area=area, own=context.user.area)
        headcount = form.get("headcount", "").strip()
        try:
            count = int(headcount) if headcount else None
        except ValueError:
            raise InvalidInput(N_("the headcount “{value}” is not a whole number"),
                               value=headcount) from None
        person = api.PetitionerInput(
            name=form.get("p.name", ""), id_number=form.get("p.id_number", "").strip() or None,
            phone=form.get("p.phone", "").strip() or None,
            address=form.get("p.address", "").strip() or None)
        data = api.CaseInput(
            petitioners=[person], channel=form.get("channel", ""),
            category=form.get("category", ""), kind=form.get("kind", "") or "appeal",
            request=form.get("request", ""), received=form.get("received", "").strip() or None,
            headcount=count, area=area)
        case_id = api.register_case(node, data)
    except InvalidInput as exc:
        return context.render("new_case.html", status=400, fields=_creation_fields(node),
                              values=form, error=str(exc), area=area)
    return redirect(f"/cases/{case_id}")


def routes() -> list[Route]:
    return [
        Route("web.dashboard", "/", dashboard, label=N_("Dashboard"), page=True),
        Route("web.cases", "/cases", case_list, label=N_("Cases"), page=True),
        Route("web.case_new", "/cases/new", new_case, ("GET", "POST"),
              N_("Register a case"), page=True),
        Route("web.case", f"/cases/{CASE_ID}", case_page, label=N_("Case"), page=True),
        Route("web.case_step", f"/cases/{CASE_ID}/step", take_step, ("POST",),
              N_("Take a step"), page=True),
    ]

