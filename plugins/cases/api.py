"""The case API: what the CLI calls, and what a plugin author calls directly."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import attrs

from xinfang.core import areas, sealing
from xinfang.core.entities import convert_field, Field
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.node import Draft, Node
from xinfang.core.sealing import Secret

from . import idnumber, views
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


def _choice(node: Node, vocabulary: str, label: str, raw: str) -> str:
    field = Field(vocabulary.split(".")[-1], label, kind="choice", required=True,
                  choices=vocabulary)
    return convert_field(field, raw, node.registry.vocabulary(vocabulary))


def _petitioner(node: Node, person: PetitionerInput, secrets: list[Secret],
                today: dt.date) -> dict[str, Any]:
    if not person.name or not person.name.strip():
        raise InvalidInput("every petitioner (信访人) needs a name")
    sealed: dict[str, Any] = {"representative": bool(person.representative)}
    values = {"name": person.name.strip()}
    if person.id_number:
        values["id_number"] = idnumber.normalise(person.id_number, today=today)
        sealed["id_tag"] = sealing.match_tag(node.match_key, values["id_number"])
    if person.phone:
        if not _PHONE.match(person.phone.strip()):
            raise InvalidInput(f"phone {person.phone!r} is not a phone number (digits, 7-20)")
        values["phone"] = person.phone.strip()
    if person.address and person.address.strip():
        values["address"] = person.address.strip()
    for key, value in values.items():
        secret = sealing.seal(value)
        secrets.append(secret)
        sealed[key] = secret.digest
    return sealed


EPOCH_SERIALS = 100_000


def next_case_id(node: Node, year: int) -> str:
    """案号: the registering node's area code, the year and a serial.

    Each epoch numbers in its own range (epoch 1 from 100001): a node
    restored from a backup cannot know which numbers it gave out after the
    backup, and must never give one out twice.
    """
    info = node.info
    prefix = f"{info.area}-{year}-"
    low = info.epoch * EPOCH_SERIALS
    row = node.db.execute(
        "select max(cast(substr(entity_id, ?) as integer)) from events where entity = ? "
        "and entity_id like ? and cast(substr(entity_id, ?) as integer) between ? and ?",
        [len(prefix) + 1, ENTITY, prefix + "%", len(prefix) + 1, low + 1,
         low + EPOCH_SERIALS - 1]).fetchone()
    serial = (row[0] if row and row[0] else low) + 1
    return f"{prefix}{serial:05d}"


def register_case(node: Node, data: CaseInput, today: dt.date | None = None) -> str:
    """Register a 信访事项 and return its number. Nothing is written on bad input."""
    today = _today(today)
    if not data.petitioners:
        raise InvalidInput("a case needs at least one petitioner (信访人)")
    representatives = sum(1 for p in data.petitioners if p.representative)
    if representatives > MAX_REPRESENTATIVES:
        raise InvalidInput(f"{representatives} representatives named; a group chooses at most "
                           f"{MAX_REPRESENTATIVES}")
    if not data.request or not data.request.strip():
        raise InvalidInput("the request (诉求) is empty; say what the petitioner asks for")
    received = convert_field(Field("received", "登记日期", kind="date"),
                             data.received or today, today=today)
    area = data.area or node.info.area
    areas.check_code(area)
    if not node.in_jurisdiction(area):
        raise InvalidInput(f"问题属地 {area} is outside this node's jurisdiction "
                           f"{node.info.area} ({node.info.name})")
    headcount = data.headcount if data.headcount is not None else len(data.petitioners)
    if not isinstance(headcount, int) or headcount < len(data.petitioners):
        raise InvalidInput(f"headcount (人数) {headcount} is less than the "
                           f"{len(data.petitioners)} petitioners named")
    secrets: list[Secret] = []
    body = {
        "channel": _choice(node, "case.channel", "信访形式", data.channel),
        "category": _choice(node, "case.category", "问题类别", data.category),
        "kind": _choice(node, "case.kind", "诉求类型", data.kind),
        "request": data.request.strip(),
        "received": received,
        "headcount": headcount,
        "petitioners": [_petitioner(node, p, secrets, today) for p in data.petitioners],
        "fields": _extra_fields(node, data.fields, today),
        "by": node.operator,
    }
    case_id = next_case_id(node, int(received[:4]))
    node.append(Draft("case.register", ENTITY, case_id, area, body, secrets))
    return case_id


def _extra_fields(node: Node, given: dict[str, Any], today: dt.date) -> dict[str, Any]:
    fields = {f.name: f for f in node.registry.fields(ENTITY)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        known = ", ".join(fields) or "none are registered"
        raise InvalidInput(f"unknown case field(s) {', '.join(unknown)}; fields: {known}")
    values = {}
    for name, field in fields.items():
        choices = node.registry.vocabulary(field.choices) if field.choices else None
        value = convert_field(field, given.get(name), choices, today=today)
        if value is not None:
            values[name] = value
    return values


def take_step(node: Node, case_id: str, step_name: str, given: dict[str, Any] | None = None,
              today: dt.date | None = None) -> str:
    """Take a lifecycle step; refused with the current state and the steps allowed."""
    today = _today(today)
    view = views.guard_view(node.db, node.registry, case_id)
    if view is None:
        raise NotFound(f"no case {case_id} on this node; `xinfang case list` shows the cases")
    lifecycle = node.registry.lifecycle(ENTITY)
    step = lifecycle.steps.get(step_name)
    if step is None:
        lifecycle.check(view, step_name, {})  # raises, naming the allowed steps
    if view["status"] not in step.sources:
        lifecycle.check(view, step_name, {})  # the state, before asking for values
    given = dict(given or {})
    given.setdefault("date", today.isoformat())
    unknown = sorted(set(given) - {f.name for f in step.fields})
    if unknown:
        raise InvalidInput(f"{step.label} ({step.name}) takes no {', '.join(unknown)}")
    values = {}
    for field in step.fields:
        choices = node.registry.vocabulary(field.choices) if field.choices else None
        value = convert_field(field, given.get(field.name), choices, today=today)
        if value is not None:
            values[field.name] = value
    if values.get("to_area"):
        areas.check_code(values["to_area"])
        own = node.info.area
        if not node.in_jurisdiction(values["to_area"]):
            raise InvalidInput(f"交办至区划 {values['to_area']} is outside this node's "
                               f"jurisdiction {own}")
        if len(values["to_area"]) <= len(own):
            raise InvalidInput(f"交办至区划 {values['to_area']} is this node's own area; assign "
                               "to an area below it, or to a unit with --unit")
    lifecycle.check(view, step_name, values)
    event = node.append(Draft(f"case.{step_name}", ENTITY, case_id, view["area"],
                              {"values": values, "by": node.operator}))
    return event.id


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
        updated=row["updated"])


def get_case(node: Node, case_id: str, reveal: bool = True) -> Case:
    """The case with petitioners, deadlines, history and conflicts.

    Revealing petitioners is logged in the node's access log (who read whom).
    """
    row = views.load(node.db, case_id)
    if row is None:
        raise NotFound(f"no case {case_id} on this node; `xinfang case list` shows the cases")
    case = _row_to_case(node, row)
    db = node.db
    lifecycle = node.registry.lifecycle(ENTITY)
    people = []
    for p in db.query("select * from case_petitioners where case_id = ? order by ord", [case_id]):
        value = (lambda d: node.context.secret(d) if reveal else None)
        people.append(Petitioner(value(p["name_seal"]), value(p["id_seal"]),
                                 value(p["phone_seal"]), value(p["address_seal"]),
                                 bool(p["representative"])))
    if reveal:
        node.log_access(ENTITY, case_id, "read petitioners")
    deadlines = tuple(dict(r, overdue=_overdue(r, row["status"], node)) for r in db.query(
        "select kind, label, start, due, met_on, obligation from case_deadlines "
        "where case_id = ? order by start, kind", [case_id]))
    history = tuple(
        {**{k: h[k] for k in ("step", "label", "date", "operator", "status")},
         "status_label": lifecycle.label(h["status"]),
         "node": node.author_name(h["author"]), "details": json.loads(h["details"]),
         "summary": _summary_text(node, lifecycle.steps.get(h["step"]), json.loads(h["details"]))}
        for h in db.query("select * from case_history where case_id = ? order by ord", [case_id]))
    conflicts = tuple(db.query("select event_id, type, reason from conflicts where entity = ? and "
                               "entity_id = ? order by order_key", [ENTITY, case_id]))
    return attrs.evolve(case, petitioners=tuple(people), deadlines=deadlines, history=history,
                        conflicts=conflicts)


def _summary_text(node: Node, step, details: dict[str, Any]) -> str:
    """A step's values in the users' words: labels, not codes."""
    fields = {f.name: f for f in step.fields} if step else {}
    parts = []
    for name, value in details.items():
        field = fields.get(name)
        if name == "date" or field is None:
            continue
        if field.choices:
            value = node.registry.label(field.choices, value)
        elif field.kind == "bool":
            value = "是" if value else "否"
        parts.append(f"{field.label}：{value}")
    return "；".join(parts)


def fields_text(node: Node, values: dict[str, Any]) -> dict[str, Any]:
    """Plugin case fields by label, with yes/no and vocabulary labels."""
    result = {}
    for field in node.registry.fields(ENTITY):
        if field.name in values:
            value = values[field.name]
            if field.choices:
                value = node.registry.label(field.choices, value)
            elif field.kind == "bool":
                value = "是" if value else "否"
            result[field.label] = value
    return result


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


def list_cases(node: Node, filters: CaseFilter = CaseFilter(),
               today: dt.date | None = None) -> list[Case]:
    today = _today(today)
    where, params = ["1 = 1"], []
    lifecycle = node.registry.lifecycle(ENTITY)
    if filters.status:
        names = {s.name: s.name for s in lifecycle.states.values()}
        names.update({s.label: s.name for s in lifecycle.states.values()})
        if filters.status not in names:
            raise InvalidInput(f"unknown status {filters.status!r}; statuses: " + "、".join(
                f"{s.label}({s.name})" for s in lifecycle.states.values()))
        where.append("status = ?")
        params.append(names[filters.status])
    for name, vocabulary, label in (("category", "case.category", "问题类别"),
                                    ("channel", "case.channel", "信访形式")):
        value = getattr(filters, name)
        if value:
            where.append(f"{name} = ?")
            params.append(_choice(node, vocabulary, label, value))
    if filters.area:
        areas.check_code(filters.area)
        where.append("area like ?")
        params.append(filters.area + "%")
    if filters.repeat is not None:
        where.append("repeat_of is not null" if filters.repeat else "repeat_of is null")
    if filters.collective is not None:
        where.append("collective = ?")
        params.append(int(filters.collective))
    open_states = _open_states(node)
    marks = ",".join("?" * len(open_states))
    if filters.overdue:
        where.append(f"status in ({marks}) and id in (select case_id from case_deadlines where "
                     "obligation = 1 and met_on is null and due < ?)")
        params.extend([*open_states, today.isoformat()])
    if filters.due_within is not None:
        if filters.due_within < 0:
            raise InvalidInput("--due-within takes a number of days, 0 or more")
        until = (today + dt.timedelta(days=filters.due_within)).isoformat()
        where.append(f"status in ({marks}) and id in (select case_id from case_deadlines where "
                     "obligation = 1 and met_on is null and due >= ? and due <= ?)")
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
        found.setdefault(case_id, []).append({"kind": kind, "label": label, "due": due,
                                              "days": days})
    return {k: tuple(v) for k, v in found.items()}

