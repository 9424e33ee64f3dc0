"""The case API: what the CLI calls, and what a plugin author calls directly."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import attrs

from xinfang.core import areas, kernel, records, sealing
from xinfang.core.entities import Field, convert_field
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_, Message, _
from xinfang.core.node import Node
from xinfang.core.sealing import Secret

from . import idnumber
from . import views
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


@attrs.frozen
class Petitioner:
    name: str | None
    id_number: str | None
    phone: str | None
    address: str | None
    representative: bool


@attrs.frozen
class Case:
    id: str
    area: str
    status: str
    status_label: str
    channel: str
    headcount: int
    category: str
    kind: str
    request: str
    received: str
    collective: bool
    repeat_of: str | None
    first_petition: bool
    unit: str | None
    leader: str | None
    handler: str | None
    forwarded_to: str | None
    rating: str | None
    fields: dict[str, Any]
    updated: str
    #: 走访层级 (label), 越级 against the level of the case's area (None: not recorded)
    went_to: str | None = None
    skipped_level: bool | None = None
    #: 来源, 抄送 units, 终结方式 (labels)
    source: str | None = None
    copied: str | None = None
    ending: str | None = None
    #: the latest 回访: date, result, ceased (是否息访)
    follow_up: dict[str, Any] | None = None
    #: the counting unit: a visit is 1 批次 ("batch") of its headcount in 人次, else 1 件 ("case")
    counted_in: str = "case"
    batches: int = 0
    person_visits: int = 0
    petitioners: tuple[Petitioner, ...] = ()
    deadlines: tuple[dict[str, Any], ...] = ()
    history: tuple[dict[str, Any], ...] = ()
    conflicts: tuple[dict[str, Any], ...] = ()
    #: obligations past due: label, due date and days overdue (for 督查督办)
    overdue: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _today(today: dt.date | None) -> dt.date:
    return today or dt.date.today()


def _field(node: Node, step: str | None, name: str) -> Field:
    """A field of the creation step (``step`` None) or of a lifecycle step, with its label."""
    entity_type = node.registry.entity_type(ENTITY)
    fields = (entity_type.create if step is None
              else node.registry.lifecycle(ENTITY).steps[step]).fields
    return next(f for f in fields if f.name == name)


def _choice(node: Node, name: str, raw: str) -> str:
    """``raw`` (a code or a label) as a code of the creation field ``name``."""
    field = attrs.evolve(_field(node, None, name), required=True)
    return convert_field(field, raw, node.registry.vocabulary(field.choices))


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


def _row_to_case(node: Node, row: dict[str, Any]) -> Case:
    lifecycle = node.registry.lifecycle(ENTITY)
    label = node.registry.label
    return Case(
        id=row["id"], area=row["area"], status=row["status"],
        status_label=lifecycle.label(row["status"]),
        channel=label("case.channel", row["channel"]),
        headcount=row["headcount"], category=label("case.category", row["category"]),
        kind=label("case.kind", row["kind"]), request=row["request"], received=row["received"],
        collective=bool(row["collective"]), repeat_of=row["repeat_of"],
        first_petition=bool(row["first_petition"]), unit=row["unit"], leader=row["leader"],
        handler=row["handler"], forwarded_to=row["forwarded_to"],
        rating=label("case.rating", row["rating"]) if row["rating"] else None,
        fields=row["fields"] if isinstance(row["fields"], dict) else json.loads(row["fields"]),
        updated=row["updated"], **views.row_additions(node.registry, row))


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


def _deadline_label(label: str) -> str:
    """A deadline's label as the view keeps it (a msgid), in the reader's language."""
    return _(label) if label else label


def fields_text(node: Node, values: dict[str, Any]) -> dict[str, Any]:
    """Plugin case fields by label, with yes/no and vocabulary labels."""
    return {field.label: records.value_text(node, field, values[field.name])
            for field in node.registry.fields(ENTITY) if field.name in values}


def _open_states(node: Node) -> list[str]:
    return [s.name for s in node.registry.lifecycle(ENTITY).states.values() if s.open]


def _overdue(deadline: dict[str, Any], status: str, node: Node, today: dt.date | None = None) -> bool:
    return bool(deadline["obligation"] and deadline["met_on"] is None
                and deadline["due"] < _today(today).isoformat() and status in _open_states(node))


@attrs.frozen
class CaseFilter:
    status: str | None = None
    category: str | None = None
    area: str | None = None
    channel: str | None = None
    overdue: bool = False
    due_within: int | None = None
    repeat: bool | None = None
    collective: bool | None = None
    #: received (登记日期) on or after / on or before, YYYY-MM-DD
    received_from: str | dt.date | None = None
    received_to: str | dt.date | None = None
    #: handler (办理人) or unit (责任单位) containing this text
    handler: str | None = None
    unit: str | None = None


def _date_filter(value: str | dt.date | None, option: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidInput(N_("{option} “{value}” is not a date: write it as YYYY-MM-DD, "
                              "e.g. 2026-03-01"), option=option, value=value) from None


def list_cases(node: Node, filters: CaseFilter = CaseFilter(),
               today: dt.date | None = None) -> list[Case]:
    today = _today(today)
    where, params = ["1 = 1"], []
    lifecycle = node.registry.lifecycle(ENTITY)
    if filters.status:
        names = {s.name: s.name for s in lifecycle.states.values()}
        names.update({s.label: s.name for s in lifecycle.states.values()})
        if filters.status not in names:
            raise InvalidInput(N_("unknown status “{status}”; statuses: {statuses}"),
                               status=filters.status, statuses=_(", ").join(
                                   f"{s.label}({s.name})" for s in lifecycle.states.values()))
        where.append("status = ?")
        params.append(names[filters.status])
    for name in ("category", "channel"):
        value = getattr(filters, name)
        if value:
            where.append(f"{name} = ?")
            params.append(_choice(node, name, value))
    if filters.area:
        areas.check_code(filters.area)
        where.append("area like ?")
        params.append(filters.area + "%")
    since = _date_filter(filters.received_from, "--from")
    until = _date_filter(filters.received_to, "--to")
    if since and until and since > until:
        raise InvalidInput(N_("--from {since} is later than --to {until}: the start date cannot "
                              "be after the end date"), since=since, until=until)
    if since:
        where.append("received >= ?")
        params.append(since)
    if until:
        where.append("received <= ?")
        params.append(until)
    for name in ("handler", "unit"):
        value = getattr(filters, name)
        if value is not None:
            if not value.strip():
                raise InvalidInput(N_("--{option} is empty: write the {label} to look for"),
                                   option=name, label=_field(node, "accept", name).label)
            where.append(f"instr({name}, ?) > 0")
            params.append(value.strip())
    if filters.repeat is not None:
        where.append("repeat_of is not null" if filters.repeat else "repeat_of is null")
    if filters.collective is not None:
        where.append("collective = ?")
        params.append(int(filters.collective))
    open_states = _open_states(node)
    marks = ",".join("?" * len(open_states))
    if filters.overdue:
        where.append(f"status in ({marks}) and id in (select case_id "  # i18n: identifier
                     "from case_deadlines where obligation = 1 and met_on is null and due < ?)")
        params.extend([*open_states, today.isoformat()])
    if filters.due_within is not None:
        if filters.due_within < 0:
            raise InvalidInput(N_("--due-within takes a number of days, 0 or more"))
        until = (today + dt.timedelta(days=filters.due_within)).isoformat()
        where.append(f"status in ({marks}) and id in (select case_id "  # i18n: identifier
                     "from case_deadlines where obligation = 1 and met_on is null "
                     "and due >= ? and due <= ?)")
        params.extend([*open_states, today.isoformat(), until])
    rows = node.db.query(f"select * from cases where {' and '.join(where)} "
                         "order by received, id", params)
    late = _overdue_by_case(node, today)
    return [attrs.evolve(_row_to_case(node, row), overdue=late.get(row["id"], ()))
            for row in rows]


def _overdue_by_case(node: Node, today: dt.date) -> dict[str, tuple[dict[str, Any], ...]]:
    open_states = _open_states(node)
    marks = ",".join("?" * len(open_states))
    found: dict[str, list[dict[str, Any]]] = {}
    for case_id, kind, label, due in node.db.execute(
            "select d.case_id, d.kind, d.label, d.due from case_deadlines d join cases c "
            f"on c.id = d.case_id where c.status in ({marks}) and d.obligation = 1 and "
            "d.met_on is null and d.due < ? order by d.due",
            [*open_states, today.isoformat()]):
        days = (today - dt.date.fromisoformat(due)).days
        found.setdefault(case_id, []).append({"kind": kind, "label": _deadline_label(label), "due": due,
                                              "days": days})
    return {k: tuple(v) for k, v in found.items()}

