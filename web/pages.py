"""The case pages: the case list, a case with its steps, and 登记.

Cases have pages of their own rather than the generic record pages
(``records.py``): a case's petitioners are sealed and every showing of them is
logged, and its list pages a county's tens of thousands of cases in SQL, which
``plugins/cases/api.py`` does and ``core.records`` does not. Every page calls
the same APIs as the CLI, so its validation and messages are the CLI's. Roles: a list or a case
outside the user's area is refused (403) unless the role sees everything
(``view_all``); 登记 needs ``register``; a step the action
``users.step_action`` names (包案 is the leaders', ``supervise``; the rest
``take_steps``), so a user sees only the step forms their role may send.
Petitioners are shown only on asking (``?reveal=1``) to a user who may see
the case, and each showing is written to the access log under the user
(``get_case`` with ``reveal``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from xinfang.core import clock
from xinfang.core.entities import parse_date
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _, ngettext
from xinfang.core.routes import Response, Route
from xinfang.plugins.cases import api
from xinfang.plugins.cases.commands import _flags_text
from xinfang.plugins.cases.views import ENTITY

from . import users
from .app import Page, add_labels, page, redirect, typed

CASE_ID = "{id:[0-9]+-[0-9]+-[0-9]+}"
#: cases per page of the list
PAGE_SIZE = 50
#: petitioner rows of the 登记 form: shown at first, and at most (the first row's
#: fields are ``p.name`` …, the others ``p1.name`` …)
PETITIONER_ROWS, MAX_PETITIONER_ROWS = 3, 50
PETITIONER_FIELDS = ("name", "id_number", "phone", "address", "rep")

add_labels({
    "list_due_within": N_("Deadline within (days)"), "list_repeat": N_("Repeat petitions"),
    "list_collective": N_("Collective visits"), "list_from": N_("Received from"),
    "list_to": N_("Received to"), "list_handler": N_("Handler"),
    "list_unit": N_("Responsible unit"), "list_previous": N_("Previous page"),
    "list_next": N_("Next page"), "list_only": N_("only these"), "list_not": N_("none of these"),
    "case_repeats": N_("Repeat petitions"), "case_leader": N_("Leader in charge"),
    "case_forwarded_to": N_("Forwarded to"),
    "case_repeats_of": N_("This case repeats"),
    "case_repeated_by": N_("Later cases repeating this one"),
    "case_no_repeats": N_("No earlier or later case of the same petitioner and problem."),
    "new_petitioner_n": N_("Petitioner"), "new_more": N_("Add a petitioner row"),
    "new_rep": N_("Representative"),
    "new_rows_hint": N_("Fill in one row per petitioner; empty rows are left out."),
    "went_to": N_("Level gone to"), "source": N_("Source"),
})


# -- the case list and a case -----------------------------------------------------------


def _yes_no(text: str | None) -> bool | None:
    return {"1": True, "0": False}.get((text or "").strip())


def _whole_number(text: str | None, label: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(N_("{field} “{value}” is not a whole number"), field=label,
                           value=text) from None


def _filters(context: Page, area: str) -> api.CaseFilter:
    """The list's filters from the query: the CLI's ``case list`` options and a search."""
    query = context.request.query

    def text(name: str) -> str | None:
        return (query.get(name) or "").strip() or None

    return api.CaseFilter(
        status=text("status"), category=text("category"), area=area, channel=text("channel"),
        overdue=query.get("overdue") == "1",
        due_within=_whole_number(query.get("due_within"), _("Deadline within (days)")),
        repeat=_yes_no(query.get("repeat")), collective=_yes_no(query.get("collective")),
        received_from=_date(text("from"), N_("Received from")),
        received_to=_date(text("to"), N_("Received to")), handler=text("handler"),
        unit=text("unit"), text=text("q"))


def _date(text: str | None, label: str) -> dt.date | None:
    """A date of the form, refused with the form's own label (the API names the CLI's
    options)."""
    return parse_date(text, label) if text else None


def _page_number(context: Page) -> int:
    number = _whole_number(context.request.query.get("page"), _("Page"))
    return max(number or 1, 1)


def _page_link(query: dict[str, str], number: int) -> str:
    kept = {k: v for k, v in query.items() if v and k != "page"}
    return "/cases?" + urlencode({**kept, "page": number})


@page
def case_list(context: Page) -> Response:
    context.require_sight()
    node, query = context.node, context.request.query
    area = context.asked_area()
    filters = _filters(context, area)
    today = clock.today()
    total = api.count_cases(node, filters, today=today)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    number = min(_page_number(context), pages)
    cases = api.list_cases(node, filters, today=today, limit=PAGE_SIZE,
                           offset=(number - 1) * PAGE_SIZE, newest_first=True)
    lifecycle = node.registry.lifecycle(ENTITY)
    rows = [{"id": c.id, "status": c.status_label, "channel": c.channel,
             "category": c.category, "headcount": c.headcount, "received": c.received,
             "area": c.area, "request": c.request,
             "flags": _flags_text(c.to_dict())} for c in cases]
    first = (number - 1) * PAGE_SIZE + 1
    shown = _("cases {first}–{last}, page {page} of {pages}").format(
        first=first, last=first + len(rows) - 1, page=number, pages=pages) if rows else ""
    return context.render(
        "cases.html", rows=rows, query=query, area=area, count=total,
        statuses=[(s.name, s.label) for s in lifecycle.states.values()],
        categories=[(c.code, c.label) for c in node.registry.vocabulary("case.category")],
        channels=[(c.code, c.label) for c in node.registry.vocabulary("case.channel")],
        total=ngettext("{count} case in all", "{count} cases in all", total).format(
            count=total), shown=shown,
        previous=_page_link(query, number - 1) if number > 1 else None,
        next=_page_link(query, number + 1) if number < pages else None)


def _visible_case(context: Page, case_id: str) -> api.Case:
    """The case without its petitioners, if the user may see it (else 403, naming the
    role; a number this node holds no case of: 404)."""
    context.require_sight()
    case = api.get_case(context.node, case_id, reveal=False)
    context.require(context.user.may_see(case.area))
    return case


def _step_forms(context: Page, case: api.Case) -> list[dict[str, Any]]:
    """The steps the case may take now that the user's role may take."""
    node = context.node
    lifecycle = node.registry.lifecycle(ENTITY)
    forms = []
    for step in lifecycle.allowed(case.status):
        if not context.user.may_take(ENTITY, step.name):
            continue
        fields = []
        for field in step.fields:
            choices = ([(c.code, c.label) for c in node.registry.vocabulary(field.choices)]
                       if field.choices else None)
            fields.append({"name": field.name, "label": field.label, "kind": field.kind,
                           "required": field.required, "choices": choices,
                           "help": _(field.help) if field.help else ""})
        forms.append({"name": step.name, "label": step.label, "fields": fields})
    return forms


def _may_step(context: Page, steps: list[dict[str, Any]]) -> bool:
    return bool(steps) or context.user.may(users.TAKE_STEPS)


def _repeats(context: Page, case: api.Case) -> dict[str, Any]:
    """The case this one repeats and the later ones repeating it, each linked where the
    user may open it."""
    def linked(case_id: str) -> dict[str, Any]:
        found = context.node.db.execute("select area from cases where id = ?",
                                        [case_id]).fetchone()
        return {"id": case_id, "link": bool(found) and context.user.may_see(found[0])}

    later = api.repeats_of(context.node, case.id)
    return {"of": linked(case.repeat_of) if case.repeat_of else None,
            "by": [linked(other) for other in later]}


def _case_page(context: Page, case: api.Case, status: int = 200, reveal: bool = False,
               **values) -> Response:
    steps = _step_forms(context, case)
    return context.render(
        "case.html", status=status, case=case, reveal=reveal,
        flags=_flags_text(case.to_dict()), steps=steps, may_step=_may_step(context, steps),
        repeats=_repeats(context, case), **{"message": None, "error": None, "failed": None,
                                            **values})


@page
def case_page(context: Page) -> Response:
    case_id = context.request.params["id"]
    case = _visible_case(context, case_id)
    reveal = context.request.query.get("reveal") == "1"
    if reveal:
        case = api.get_case(context.node, case_id, reveal=True)  # logged under the user
    return _case_page(context, case, reveal=reveal, message=context.request.query.get("done"))


@page
def take_step(context: Page) -> Response:
    case_id = context.request.params["id"]
    case = _visible_case(context, case_id)
    step = context.form.get("step", "")
    context.require(context.user.may_take(ENTITY, step))
    try:
        api.take_step(context.node, case_id, step, typed(context.form, "f."))
    except InvalidInput as exc:
        return _case_page(context, case, status=400, error=str(exc), failed=step)
    return redirect(f"/cases/{case_id}")


# -- 登记 ------------------------------------------------------------------------------


def _creation_fields(node) -> list[dict[str, Any]]:
    entity_type = node.registry.entity_type(ENTITY)
    wanted = ("channel", "category", "kind", "request", "received", "headcount", "went_to",
              "source")
    found = []
    for field in entity_type.create.fields:
        if field.name not in wanted:
            continue
        choices = ([(c.code, c.label) for c in node.registry.vocabulary(field.choices)]
                   if field.choices else None)
        found.append({"name": field.name, "label": field.label, "kind": field.kind,
                      "required": field.name in ("channel", "category", "request"),
                      "optional_choice": field.name in ("went_to", "source"),
                      "choices": choices})
    return found


def _row_prefix(index: int) -> str:
    """The form names of petitioner row ``index``: ``p.name`` for the first, then
    ``p1.name``, ``p2.name`` …"""
    return "p" if index == 0 else f"p{index}"


def _petitioner_rows(form: dict[str, str]) -> list[dict[str, str]]:
    """Every row of the form up to the last one with something in it (at most
    ``MAX_PETITIONER_ROWS``), as {field: value}."""
    rows = [{field: form.get(f"{_row_prefix(i)}.{field}", "").strip()
             for field in PETITIONER_FIELDS} for i in range(MAX_PETITIONER_ROWS)]
    filled = [i for i, row in enumerate(rows) if any(row.values())]
    return rows[:filled[-1] + 1] if filled else []


def _petitioners(form: dict[str, str]) -> list[api.PetitionerInput]:
    """The petitioners of the rows that hold anything; a row without a name is the
    API's to refuse, with its message."""
    return [api.PetitionerInput(name=row["name"], id_number=row["id_number"] or None,
                                phone=row["phone"] or None, address=row["address"] or None,
                                representative=bool(row["rep"]))
            for row in _petitioner_rows(form) if any(row.values())]


def _form_rows(form: dict[str, str], extra: int = 0) -> list[dict[str, Any]]:
    """The petitioner rows to show: what was sent (at least ``PETITIONER_ROWS``) and
    ``extra`` empty ones, each with its field names."""
    count = min(max(len(_petitioner_rows(form)), PETITIONER_ROWS) + extra, MAX_PETITIONER_ROWS)
    return [{"prefix": _row_prefix(i), "number": i + 1, "first": i == 0,
             "values": {field: form.get(f"{_row_prefix(i)}.{field}", "")
                        for field in PETITIONER_FIELDS}} for i in range(count)]


def _new_case_form(context: Page, status: int = 200, values: dict[str, str] | None = None,
                   error: str | None = None, area: str | None = None,
                   extra: int = 0) -> Response:
    values = values or {}
    return context.render("new_case.html", status=status, fields=_creation_fields(context.node),
                          values=values, error=error, area=area or context.home_area,
                          rows=_form_rows(values, extra),
                          more=len(_form_rows(values, extra)) < MAX_PETITIONER_ROWS)


@page
def new_case(context: Page) -> Response:
    context.require(context.user.may_take(ENTITY))
    node = context.node
    if context.request.method == "GET":
        return _new_case_form(context)
    form = context.form
    area = form.get("area", "").strip() or context.home_area
    if form.get("more"):  # another petitioner row, without a script; nothing is stored
        return _new_case_form(context, values=form, area=area, extra=1)
    try:
        if not context.user.may_see(area):
            raise InvalidInput(N_("the case's area {area} is outside your area {own}"),
                               area=area, own=context.user.area)
        count = _whole_number(form.get("headcount"), _("Headcount"))
        data = api.CaseInput(
            petitioners=_petitioners(form), channel=form.get("channel", ""),
            category=form.get("category", ""), kind=form.get("kind", "") or "appeal",
            request=form.get("request", ""), received=form.get("received", "").strip() or None,
            headcount=count, area=area, went_to=form.get("went_to", "").strip() or None,
            source=form.get("source", "").strip() or None)
        case_id = api.register_case(node, data)
    except InvalidInput as exc:
        return _new_case_form(context, status=400, values=form, error=str(exc), area=area)
    return redirect(f"/cases/{case_id}")


def routes() -> list[Route]:
    return [
        Route("web.cases", "/cases", case_list, label=N_("Cases"), page=True),
        Route("web.case_new", "/cases/new", new_case, ("GET", "POST"),
              N_("Register a case"), page=True),
        Route("web.case", f"/cases/{CASE_ID}", case_page, label=N_("Case"), page=True),
        Route("web.case_step", f"/cases/{CASE_ID}/step", take_step, ("POST",),
              N_("Take a step"), page=True),
    ]
