"""The case API: what the CLI calls, and what a plugin author calls directly."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import attrs

from xinfang.core import areas, kernel, records, sealing
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_, Message
from xinfang.core.node import Node
from xinfang.core.sealing import Secret

from . import idnumber
from .listing import (Case, Petitioner, _choice, _deadline_label, _field, _overdue, _row_to_case,
                      _today)
# the listing lives in ``listing``; callers (the CLI, the web, plugins) keep asking ``api``
from .listing import CaseFilter, count_cases, list_cases, repeats_of  # noqa: F401
from .views import ENTITY

MAX_REPRESENTATIVES = 5
_PHONE = re.compile(r"\A\+?[0-9][0-9 -]{5,18}[0-9]\Z")


@attrs.frozen
class PetitionerInput:
    name: str
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    representative: bool = False


@attrs.frozen
class CaseInput:
    petitioners: tuple[PetitionerInput, ...] = attrs.field(converter=tuple)
    channel: str
    category: str
    kind: str
    request: str
    received: str | dt.date | None = None
    headcount: int | None = None
    area: str | None = None
    fields: dict[str, Any] = attrs.Factory(dict)
    #: 走访层级 (a code or label of ``case.went_to``) [default: this node's level]
    went_to: str | None = None
    #: 来源 (``case.source``) [default: 上级交办 for 上级转交办, else 群众自行]
    source: str | None = None


def _petitioner(node: Node, person: PetitionerInput, secrets: list[Secret],
                today: dt.date) -> dict[str, Any]:
    if not person.name or not person.name.strip():
        raise InvalidInput(N_("every petitioner needs a name"))
    sealed: dict[str, Any] = {"representative": bool(person.representative)}
    values = {"name": person.name.strip()}
    if person.id_number:
        values["id_number"] = idnumber.normalise(person.id_number, today=today)
        sealed["id_tag"] = sealing.match_tag(node.match_key, values["id_number"])
    if person.phone:
        if not _PHONE.match(person.phone.strip()):
            raise InvalidInput(N_("phone “{phone}” is not a phone number (7 to 20 digits)"),
                               phone=person.phone)
        values["phone"] = person.phone.strip()
    if person.address and person.address.strip():
        values["address"] = person.address.strip()
    for key, value in values.items():
        secret = sealing.seal(value)
        secrets.append(secret)
        sealed[key] = secret.digest
    return sealed


def _one_person_per_id_number(people, today: dt.date) -> None:
    """An ID number names one person: two petitioners with one number is a typing error."""
    seen: dict[str, str] = {}
    for person in people:
        if not person.id_number:
            continue
        number = idnumber.normalise(person.id_number, today=today)
        name = (person.name or "").strip()
        if number in seen and seen[number] != name:
            raise InvalidInput(N_("petitioners {first} and {second} were given the same ID "
                                  "number {number}: an ID number belongs to one person only; "
                                  "check them and register again"),
                               first=seen[number], second=name, number=number)
        if number in seen:
            raise InvalidInput(N_("petitioner {name} is listed twice (ID number {number}); "
                                  "list each person once"), name=name, number=number)
        seen[number] = name


def next_case_id(node: Node, year: int) -> str:
    """案号: the kernel's numbering (area, year, a serial in the epoch's range)."""
    return records.next_id(node, ENTITY, year)


def register_case(node: Node, data: CaseInput, today: dt.date | None = None) -> str:
    """Register a 信访事项 and return its number. Nothing is written on bad input."""
    today = _today(today)
    if not data.petitioners:
        raise InvalidInput(N_("a case needs at least one petitioner"))
    representatives = sum(1 for p in data.petitioners if p.representative)
    if representatives > MAX_REPRESENTATIVES:
        raise InvalidInput(N_("{count} representatives were named; a collective visit chooses "
                              "at most {limit} representatives"),
                           count=representatives, limit=MAX_REPRESENTATIVES)
    if not data.request or not data.request.strip():
        raise InvalidInput(N_("the request is empty: write what the petitioners ask for"))
    headcount = data.headcount if data.headcount is not None else len(data.petitioners)
    if not isinstance(headcount, int) or headcount < len(data.petitioners):
        raise InvalidInput(N_("the headcount {headcount} is less than the {listed} petitioners "
                              "listed"), headcount=headcount, listed=len(data.petitioners))
    area = data.area or node.info.area
    areas.check_code(area)
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("the case's area {area} is outside this node's jurisdiction "
                              "{own} ({name})"), area=area, own=node.info.area,
                           name=node.info.name)
    _one_person_per_id_number(data.petitioners, today)
    secrets: list[Secret] = []
    people = [_petitioner(node, p, secrets, today) for p in data.petitioners]
    channel = _choice(node, "channel", data.channel)
    given = {"channel": channel, "category": data.category, "kind": data.kind,
             "request": data.request, "received": data.received or today,
             "headcount": headcount, "went_to": data.went_to or node.info.level,
             "source": data.source or ("higher" if channel == "referred" else "self")}
    return records.create(node, ENTITY, given, area=area, fields=data.fields, today=today,
                         body={"petitioners": people}, secrets=secrets)


def take_step(node: Node, case_id: str, step_name: str, given: dict[str, Any] | None = None,
              today: dt.date | None = None) -> str:
    """Take a lifecycle step; refused with the current state and the steps allowed."""
    given = dict(given or {})
    to_area = given.get("to_area")
    if to_area:
        areas.check_code(to_area)
        own = node.info.area
        field = _field(node, "forward", "to_area").label
        if not node.in_jurisdiction(to_area):
            raise InvalidInput(N_("{field} {area} is outside this node's jurisdiction {own}"),
                               field=field, area=to_area, own=own)
        if len(to_area) <= len(own):
            raise InvalidInput(N_("{field} {area} is this node's own area; assign the case to an "
                                  "area below it, or give it to a unit with --unit"),
                               field=field, area=to_area)
    return records.take_step(node, ENTITY, case_id, step_name, given, today)


def guard_view(node: Node, case_id: str) -> dict[str, Any] | None:
    """What the lifecycle's guards see of a case (state, facts, deadlines)."""
    return kernel.guard_view(node.context, node.registry.entity_type(ENTITY), case_id)


def get_case(node: Node, case_id: str, reveal: bool = True) -> Case:
    """The case with petitioners, deadlines, history and conflicts.

    Revealing petitioners is logged in the node's access log (who read whom).
    """
    row = kernel.load(node.db, node.registry.entity_type(ENTITY), case_id)
    if row is None:
        raise NotFound(N_("this node holds no case {id}; `xinfang case list` lists them all"),
                       id=case_id)
    case = _row_to_case(node, row)
    db = node.db
    people = []
    for p in db.query("select * from case_petitioners where case_id = ? order by ord", [case_id]):
        value = (lambda d: node.reveal(d, case_id) if reveal else None)
        people.append(Petitioner(value(p["name_seal"]), value(p["id_seal"]),
                                 value(p["phone_seal"]), value(p["address_seal"]),
                                 bool(p["representative"])))
    if reveal:
        node.log_access(ENTITY, case_id, Message(N_("read the petitioners")).stored())
    stored = db.query("select kind, label, start, due, met_on, obligation from case_deadlines "
                      "where case_id = ? order by start, kind", [case_id])
    deadlines = tuple(dict(r, label=_deadline_label(r["label"]),
                           overdue=_overdue(r, row["status"], node)) for r in stored)
    return attrs.evolve(case, petitioners=tuple(people), deadlines=deadlines,
                        history=records.history(node, ENTITY, case_id),
                        conflicts=records.conflicts(node, ENTITY, case_id))


def fields_text(node: Node, values: dict[str, Any]) -> dict[str, Any]:
    """Plugin case fields by label, with yes/no and vocabulary labels."""
    return {field.label: records.value_text(node, field, values[field.name])
            for field in node.registry.fields(ENTITY) if field.name in values}


