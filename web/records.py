"""Pages for every record type a plugin registers: a list, a record with its steps,
and the creation form, made from the declaration alone.

The web's counterpart of the CLI's generated record commands (``cli/entities.py``):
``/records/{entity}`` lists a type's records with ``records.RecordFilter``'s filters,
``/records/{entity}/{id}`` shows one (values in the users' words, history, conflicts)
with a form per step its state allows, ``/records/{entity}/new`` creates one. Every
form calls ``core.records`` (or what the plugin's CLI calls instead: ``Creation``,
``add_step_taker``), so the validation and the messages are the CLI's.

Roles: seeing needs ``view_area`` (the user's area) or ``view_all``; creating
or taking a step needs what ``User.may_take`` says for it. Cases have their
own pages (``pages.py``): ``/records/case…`` sends the browser there.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import attrs

from xinfang.core import areas, clock, kernel, records
from xinfang.core.entities import EntityType, Field, convert_field
from xinfang.core.errors import XinfangError
from xinfang.core.i18n import N_, _, ngettext
from xinfang.core.routes import Response, Route

from . import users
from .app import Forbidden, Page, add_labels, add_menu, page, redirect, typed

CASE = "case"
ENTITY = "{entity:[a-z][a-z0-9_]*}"
RECORD_ID = "{id:[A-Za-z0-9][A-Za-z0-9._-]*}"
#: a record number as the kernel gives them (``AREA-YEAR-SERIAL``): what may name a case
NUMBER = re.compile(r"\A[0-9]{2,12}-[0-9]{4}-[0-9]{5,7}\Z")
#: how several values are written in one box: one a line, or separated by commas
SEPARATORS = re.compile(r"[\s,，、;；]+")  # i18n: identifier

add_labels({
    "rec_records": N_("Records"), "rec_type": N_("Record type"),
    "rec_in_area": N_("In your area"),
    "rec_new": N_("New record"), "rec_number": N_("Number"), "rec_from": N_("From"),
    "rec_to": N_("To"), "rec_none": N_("No record matches."),
    "rec_values": N_("Particulars"), "rec_cases": N_("Cases it names"),
    "rec_office": N_("Office"), "rec_take": N_("Take this step"),
    "rec_all": N_("All records of this type"), "rec_several": N_("one a line, or separated "
                                                                 "by commas"),
    "rec_no_types": N_("This node keeps no record types besides cases."),
})
add_menu("/records", N_("Records"), users.VIEW_AREA, 30)

#: ``(node, entity_id, step_name, values) -> event id``, as ``cli.entities.TakeStep``
TakeStep = Callable[[Any, str, str, dict[str, Any]], str]


@attrs.frozen
class Creation:
    """How the form creates a record of a type whose plugin builds part of it itself (a
    body key such as the cases a 督办单 names, an area derived from them), calling what
    the plugin's own CLI command calls."""

    #: ``(node, values, area, lists) -> id``: ``values`` the creation fields as typed,
    #: ``lists`` each of ``lists``' fields as the values given
    create: Callable[[Any, dict[str, Any], str | None, dict[str, list[str]]], str]
    #: fields beyond the creation step's, each taking several values
    lists: tuple[Field, ...] = attrs.field(default=(), converter=tuple)
    #: whether the form asks for the area (False: the plugin derives it)
    asks_area: bool = True
    #: ``(node, values, lists) -> areas``: where the record will lie, for the check that
    #: the user may see it, when the form does not ask for the area
    areas: Callable[[Any, dict[str, Any], dict[str, list[str]]], list[str]] | None = \
        attrs.field(default=None, eq=False)


CREATIONS: dict[str, Creation] = {}
STEP_TAKERS: dict[str, TakeStep] = {}


def add_creation(entity: str, creation: Creation) -> None:
    """Create records of ``entity`` through ``creation`` rather than ``records.create``."""
    CREATIONS[entity] = creation


def add_step_taker(entity: str, take: TakeStep) -> None:
    """Take the steps of ``entity`` through ``take`` (what its CLI's step commands call,
    e.g. one that checks a linked case) rather than ``records.take_step``."""
    STEP_TAKERS[entity] = take


def several(text: str) -> list[str]:
    """The values of a box holding several: one a line or separated by commas."""
    return [part for part in SEPARATORS.split(text or "") if part]


# -- finding what a page shows ------------------------------------------------------------


def entity_type(context: Page) -> EntityType:
    """The page's record type (a lifecycle one, not the case); an unknown one is a
    ``NotFound``, which ``page`` answers with a 404 page."""
    return records.entity_type_of(context.node, context.request.params["entity"])


def record_of(context: Page, kind: EntityType) -> records.Record:
    """The page's record (unknown: ``NotFound``, a 404 page), if the user may see it."""
    found = records.get(context.node, kind.name, context.request.params["id"])
    context.require_sight(found.area)
    return found


def entity_types(node) -> list[EntityType]:
    """The record types these pages serve on ``node``: every lifecycle type but cases."""
    return [t for t in node.registry.entity_types.values()
            if t.lifecycle_entity and t.name != CASE]


# -- form fields ----------------------------------------------------------------------------


def form_field(node, field: Field, prefix: str = "f.", several_values: bool = False
               ) -> dict[str, Any]:
    """What a template needs to draw an input for ``field``."""
    choices = ([(c.code, c.label) for c in node.registry.vocabulary(field.choices)]
               if field.choices else None)
    return {"name": prefix + field.name, "label": field.label, "kind": field.kind,
            "required": field.required, "choices": choices, "several": several_values,
            "help": _(field.help) if field.help else "", "minimum": field.minimum,
            "maximum": field.maximum,  # a date may lie ahead only if the field says so
            "latest": None if field.future else clock.today().isoformat()}


# -- the index and the list ---------------------------------------------------------------


@page
def index(context: Page) -> Response:
    context.require_sight()
    node, area = context.node, context.home_area
    rows = [{"name": t.name, "label": t.label,
             "count": len(records.list_records(node, t.name, records.RecordFilter(area=area))),
             "may_create": context.user.may_take(t.name)} for t in entity_types(node)]
    return context.render("records.html", title=_("Records"), kinds=rows, area=area,
                          kind=None)


def list_columns(kind: EntityType) -> list[Field]:
    """The creation fields a list shows: as the CLI's list, all but free text, and besides
    the first required text (what the record is about: a dispute's 基本情况, a project's
    name), in the declared order."""
    texts = [f for f in kind.create.fields if f.kind == "text" and f.required]
    return [f for f in kind.create.fields if f.kind != "text" or f in texts[:1]]


@page
def record_list(context: Page) -> Response:
    if context.request.params["entity"] == CASE:
        return redirect("/cases")
    kind = entity_type(context)
    node, query = context.node, context.request.query
    area = areas.check_code(query.get("area") or context.home_area)
    context.require_sight(area)
    choices = [f for f in kind.create.fields if f.choices]
    filters = records.RecordFilter(
        status=query.get("status") or None, area=area, since=query.get("since") or None,
        until=query.get("until") or None,
        values={f.name: query[f"v.{f.name}"] for f in choices if query.get(f"v.{f.name}")})
    found = records.list_records(node, kind.name, filters)
    columns = list_columns(kind)
    rows = [{"id": r.id, "status": r.status_label, "area": r.area,
             "cells": [shown(node, f, r.values.get(f.name)) for f in columns]} for r in found]
    return context.render(
        "records.html", title=kind.label, kind=kind, rows=rows, query=query, area=area,
        columns=[f.label for f in columns], dated=kernel.date_field(kind) is not None,
        statuses=[(s.name, s.label) for s in node.registry.lifecycle(kind.name).states.values()],
        choices=[form_field(node, f, "v.") for f in choices],
        may_create=context.user.may_take(kind.name),
        total=ngettext("{count} record in all", "{count} records in all",
                       len(rows)).format(count=len(rows)))


def shown(node, field: Field, value: Any) -> str:
    """A value in the users' words (``records.value_text``); "—" for none."""
    if value is None or value == "":
        return "—"
    return str(records.value_text(node, field, value))


# -- one record ---------------------------------------------------------------------------


def step_forms(context: Page, kind: EntityType, record: records.Record, failed: str = "",
               given: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A form for each step the record's state allows and the user's role may take; the
    one that ``failed`` keeps what was ``given``."""
    lifecycle = context.node.registry.lifecycle(kind.name)
    return [{"name": step.name, "label": step.label,
             "fields": [form_field(context.node, f) for f in step.fields],
             "given": (given or {}) if step.name == failed else {}}
            for step in lifecycle.allowed(record.status)
            if context.user.may_take(kind.name, step.name)]


def named_cases(node, kind: EntityType, record: records.Record) -> list[str]:
    """The cases held here that the record names: in a body key the plugin keeps (the
    cases of a 督办单), a value, or a step's values (a dispute's 转信访)."""
    case_type = node.registry.entity_type(CASE)
    if case_type is None:
        return []
    row = kernel.load(node.db, kind, record.id) or {}
    found: list[Any] = []
    for key in kind.body_keys:
        value = row.get(key)
        if isinstance(value, str) and value.startswith("["):
            value = json.loads(value)
        found.extend(value if isinstance(value, list) else [value])
    found.extend(record.values.values())
    found.extend(record.fields.values())
    for entry in record.history:
        found.extend(entry["details"].values())
    numbers = dict.fromkeys(v for v in found if isinstance(v, str) and NUMBER.match(v))
    return [n for n in numbers if kernel.load(node.db, case_type, n)]


def record_values(node, kind: EntityType, record: records.Record,
                  cases: list[str]) -> list[dict[str, Any]]:
    """The creation fields, then the extension fields: label, value, a case link."""
    extension = {f.name: f for f in node.registry.fields(kind.name)}
    pairs = [(f, record.values.get(f.name)) for f in kind.create.fields]
    pairs += [(extension.get(name) or Field(name, name), value)
              for name, value in record.fields.items()]
    return [{"label": f.label, "value": shown(node, f, value),
             "case": value if value in cases else None} for f, value in pairs]


def render_record(context: Page, kind: EntityType, record: records.Record,
                  status: int = 200, error_text: str | None = None, failed: str = "",
                  values: dict[str, str] | None = None) -> Response:
    node = context.node
    cases = named_cases(node, kind, record)
    return context.render(
        "record.html", status=status, title=f"{kind.label} {record.id}", kind=kind,
        record=record, values=record_values(node, kind, record, cases), cases=cases,
        steps=step_forms(context, kind, record, failed, values), error=error_text)


@page
def record_page(context: Page) -> Response:
    params = context.request.params
    if params["entity"] == CASE:
        return redirect(f"/cases/{params['id']}")
    kind = entity_type(context)
    return render_record(context, kind, record_of(context, kind))


@page
def take_step(context: Page) -> Response:
    kind = entity_type(context)
    record = record_of(context, kind)
    step = context.form.get("step", "")
    context.require(context.user.may_take(kind.name, step))
    take = STEP_TAKERS.get(kind.name) or (
        lambda node, *args: records.take_step(node, kind.name, *args))
    try:
        take(context.node, record.id, step, typed(context.form, "f."))
    except XinfangError as exc:
        return render_record(context, kind, record, 400, str(exc), step, context.form)
    return redirect(f"/records/{kind.name}/{record.id}")


# -- creating -------------------------------------------------------------------------------


def creation_fields(node, kind: EntityType) -> list[dict[str, Any]]:
    lists = CREATIONS[kind.name].lists if kind.name in CREATIONS else ()
    return ([form_field(node, f) for f in kind.create.fields]
            + [form_field(node, f, several_values=True) for f in lists])


def render_new(context: Page, kind: EntityType, status: int = 200,
               error_text: str | None = None, values: dict[str, str] | None = None) -> Response:
    node = context.node
    creation = CREATIONS.get(kind.name)
    return context.render(
        "record_new.html", status=status, title=f"{kind.label} · {kind.create.label}",
        kind=kind, fields=creation_fields(node, kind),
        extension=[form_field(node, f, "x.") for f in node.registry.fields(kind.name)],
        asks_area=creation is None or creation.asks_area, area=context.home_area,
        error=error_text, given=values or {})


@page
def new_record(context: Page) -> Response:
    kind = entity_type(context)
    context.require_sight()
    context.require(context.user.may_take(kind.name))
    if context.request.method == "GET":
        return render_new(context, kind)
    form = context.form
    try:
        record_id = create(context, kind, form)
    except Forbidden:  # outside the user's areas: a 403 page
        raise
    except XinfangError as exc:
        return render_new(context, kind, 400, str(exc), form)
    return redirect(f"/records/{kind.name}/{record_id}")


def create(context: Page, kind: EntityType, form: dict[str, str]) -> str:
    """Create the record the form describes, as the CLI's create command would; its id.
    Nothing is written if anything given is refused, or if it would lie outside the
    user's areas (``Forbidden``)."""
    node = context.node
    creation = CREATIONS.get(kind.name)
    given, extension = typed(form, "f."), typed(form, "x.")
    area = (form.get("area") or "").strip() or context.home_area
    if creation is None:
        context.require_sight(areas.check_code(area))
        return records.create(node, kind.name, given, area=area, fields=extension)
    lists = {}
    for field in creation.lists:
        convert_field(field, given.get(field.name))  # a required one given empty: refused
        lists[field.name] = several(given.pop(field.name, ""))
    records.convert_values(node, kind.create.fields, given, clock.today(),
                           f"{kind.label}{kind.create.label}")
    if creation.asks_area:
        context.require_sight(areas.check_code(area))
    elif creation.areas is not None:
        for lies_in in creation.areas(node, given, lists):
            context.require_sight(lies_in)
    return creation.create(node, given, area if creation.asks_area else None, lists)


def routes() -> list[Route]:
    return [
        Route("web.records", "/records", index, label=N_("Records"), page=True),
        Route("web.record_list", f"/records/{ENTITY}", record_list, label=N_("Records"),
              page=True),
        Route("web.record_new", f"/records/{ENTITY}/new", new_record, ("GET", "POST"),
              N_("New record"), page=True),
        Route("web.record", f"/records/{ENTITY}/{RECORD_ID}", record_page,
              label=N_("A record"), page=True),
        Route("web.record_step", f"/records/{ENTITY}/{RECORD_ID}/step", take_step,
              ("POST",), N_("Take a step"), page=True),
    ]
