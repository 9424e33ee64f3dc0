"""Records: the API over the kernel that the CLI, the web and plugin authors call.

Create an entity, take a step, read one with its history and conflicts, list
them with filters. Every function checks and converts what a person typed,
refuses bad input with a clear ``XinfangError`` and writes nothing then; the
events it writes are folded by ``core.kernel`` like any that arrive.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from . import areas, clock
from .entities import EntityType, Field, Step, convert_field, listing
from .errors import InvalidInput, NotFound
from .event import Event
from .i18n import N_, Message, _, show
# numbering lives in the kernel, which checks it on arrival; EPOCH_SERIALS is kept here too
from .kernel import (EPOCH_SERIALS, author_of, column, date_field, guard_view,  # noqa: F401
                     load, serial_range)


@attrs.frozen
class Record:
    """One entity as a person reads it: state, values, history and conflicts."""

    entity: str
    id: str
    area: str
    status: str
    status_label: str
    values: dict[str, Any]
    fields: dict[str, Any]
    updated: str
    history: tuple[dict[str, Any], ...] = ()
    conflicts: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def entity_type_of(node, entity: str) -> EntityType:
    entity_type = node.registry.entity_type(entity)
    if entity_type is None or not entity_type.lifecycle_entity:
        raise NotFound(N_("there is no record type named “{entity}”"), entity=entity)
    return entity_type


def convert_values(node, fields, given: dict[str, Any], today: dt.date,
                   what: str | Message) -> dict[str, Any]:
    """User input for ``fields`` as canonical values; unknown names are refused."""
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise InvalidInput(N_("{what} has no items {unknown}; you can fill in: {allowed}"),
                           what=what, unknown=", ".join(unknown),
                           allowed=listing(f"{f.label}({f.name})" for f in fields))
    values = {}
    for field in fields:
        choices = node.registry.vocabulary(field.choices) if field.choices else None
        value = convert_field(field, given.get(field.name), choices, today=today)
        if value is not None:
            values[field.name] = value
    return values


def next_id(node, entity: str, year: int) -> str:
    """编号: the creating node's area code, the year and a serial.

    Each epoch numbers in its own range (epoch 1 from 100001): a node
    restored from a backup cannot know which numbers it gave out after the
    backup, and must never give one out twice. Within a range the serials
    have one width, so the largest is found by an index range query.

    Only this node's own numbers count (``own_keys``: its key and the keys it
    had before a rotation, up to where they were revoked or retired): another
    key certified for the same area, a stolen one or one a stolen parent key
    certified, cannot make this node's numbering jump to the end of its range
    by registering a high serial. Every node refuses on arrival a number
    outside its author's area and epoch range (``kernel.check_number``).
    """
    info = node.info
    prefix = f"{info.area}-{year}-"
    first, last, width = serial_range(info.epoch)
    keys = own_keys(node)
    row = node.db.execute(
        "select entity_id from events e where entity = ? and entity_id >= ? and entity_id <= ? "
        f"and length(entity_id) = ? and author in ({', '.join('?' * len(keys))}) "
        "and not exists (select 1 from exclusions x where x.author = e.author and "
        "(e.epoch > x.epoch or (e.epoch = x.epoch and e.seq > x.seq))) "
        "order by entity_id desc limit 1",
        [entity, f"{prefix}{first:0{width}d}", f"{prefix}{last:0{width}d}",
         len(prefix) + width, *keys]).fetchone()
    serial = int(row[0][len(prefix):]) if row else first - 1
    if serial >= last:
        raise InvalidInput(N_("this epoch's numbers are used up ({prefix}…); run "
                              "`xinfang node new-epoch`, then register again"), prefix=prefix)
    return f"{prefix}{serial + 1:0{width}d}"


def own_keys(node) -> list[str]:
    """This node's key and the keys it rotated away from, newest first.

    A rotation leaves the old key in ``meta.previous_author`` and, unless it
    was revoked, a ``trust.retire`` it signed naming its successor; following
    both back gives every key whose numbers this node gave out.
    """
    retired: dict[str, str] = {}
    for raw, sig in node.db.execute("select raw, sig from events where entity = 'trust' and "
                                    "type = 'trust.retire' and author = entity_id"):
        event = Event.parse(raw, sig)
        successor = event.body.get("successor")
        if isinstance(successor, str):
            retired.setdefault(successor, event.author)
    keys = [node.info.author]
    previous = node.db.execute("select value from meta where key = 'previous_author'").fetchone()
    if previous and previous[0] not in keys:
        retired.setdefault(keys[0], previous[0])
    while keys[-1] in retired and retired[keys[-1]] not in keys:
        keys.append(retired[keys[-1]])
    return keys


def create(node, entity: str, given: dict[str, Any], *, area: str | None = None,
           fields: dict[str, Any] | None = None, today: dt.date | None = None,
           body: dict[str, Any] | None = None, secrets=()) -> str:
    """Create an entity and return its id. Nothing is written on bad input.

    ``body`` adds keys the plugin builds itself (``EntityType.body_keys``).
    """
    from .node import Draft

    today = today or clock.today()
    entity_type = entity_type_of(node, entity)
    given = dict(given)
    date = date_field(entity_type)
    if date is not None:
        given.setdefault(date.name, today.isoformat())
    values = convert_values(node, entity_type.create.fields, given, today,
                            f"{entity_type.label}{entity_type.create.label}")
    extra = convert_values(node, node.registry.fields(entity), fields or {}, today,
                           Message(N_("the extension fields of {entity}"),
                                   entity=entity_type.label))
    area = area or node.info.area
    areas.check_code(area)
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is outside this node's jurisdiction {scope} ({name})"),
                           area=area, scope=node.info.area, name=node.info.name)
    if entity_type.identify is not None:
        entity_id = entity_type.identify({**values, **(body or {})}, area)
        if load(node.db, entity_type, entity_id) is not None:
            raise InvalidInput(N_("{entity} {id} exists already; take a step on it instead"),
                               entity=entity_type.label, id=entity_id)
    else:
        created_on = values.get(date.name) if date else None
        entity_id = next_id(node, entity, int((created_on or today.isoformat())[:4]))
    node.append(Draft(f"{entity}.{entity_type.create.name}", entity, entity_id, area,
                      {**values, **(body or {}), "fields": extra, "by": node.operator}, secrets))
    return entity_id


def not_found(entity_type: EntityType, entity_id: str) -> NotFound:
    return NotFound(N_("this node has no {entity} {id}; `xinfang {command} list` lists them all"),
                    entity=entity_type.label, id=entity_id,
                    command=entity_type.command or entity_type.name)


def take_step(node, entity: str, entity_id: str, step_name: str,
              given: dict[str, Any] | None = None, today: dt.date | None = None) -> str:
    """Take a lifecycle step; refused with the current state and the steps allowed."""
    from .node import Draft

    today = today or clock.today()
    entity_type = entity_type_of(node, entity)
    view = guard_view(node.context, entity_type, entity_id)
    if view is None:
        raise not_found(entity_type, entity_id)
    lifecycle = node.registry.lifecycle(entity)
    step: Step | None = lifecycle.steps.get(step_name)
    if step is None or view["status"] not in step.sources:
        lifecycle.check(view, step_name, {})  # raises, naming the state and allowed steps
    given = dict(given or {})
    if any(f.name == "date" for f in step.fields):
        given.setdefault("date", today.isoformat())
    values = convert_values(node, step.fields, given, today, f"{step.label}({step.name})")
    lifecycle.check(view, step_name, values, author_of(node.db, node.info.author))
    event = node.append(Draft(f"{entity}.{step_name}", entity, entity_id, view["area"],
                              {"values": values, "by": node.operator}))
    return event.id


def history(node, entity: str, entity_id: str) -> tuple[dict[str, Any], ...]:
    lifecycle = node.registry.lifecycle(entity)
    return tuple(
        {**{k: h[k] for k in ("step", "label", "date", "operator", "status")},
         "status_label": lifecycle.label(h["status"]), "node": node.author_name(h["author"]),
         "details": json.loads(h["details"]),
         "summary": summary_text(node, lifecycle.steps.get(h["step"]), json.loads(h["details"]))}
        for h in node.db.query("select * from entity_history where entity = ? and entity_id = ? "
                               "order by ord", [entity, entity_id]))


def conflicts(node, entity: str, entity_id: str) -> tuple[dict[str, Any], ...]:
    """The events the entity's state could not accept, with why in the reader's language."""
    return tuple({**row, "reason": show(row["reason"])} for row in node.db.query(
        "select event_id, type, reason from conflicts where entity = ? and entity_id = ? "
        "order by order_key", [entity, entity_id]))


def summary_text(node, step: Step | None, details: dict[str, Any]) -> str:
    """A step's values in the users' words: labels, not codes."""
    fields = {f.name: f for f in step.fields} if step else {}
    parts = []
    for name, value in details.items():
        field = fields.get(name)
        if name == "date" or field is None:
            continue
        parts.append(_("{label}: {value}").format(label=field.label,
                                                  value=value_text(node, field, value)))
    return _("; ").join(parts)


def value_text(node, field: Field, value: Any) -> Any:
    if field.choices:
        return node.registry.label(field.choices, value)
    if field.kind == "bool":
        return _("yes") if value else _("no")
    return value


def _record_of(node, entity_type: EntityType, row: dict[str, Any], full: bool) -> Record:
    lifecycle = node.registry.lifecycle(entity_type.name)
    values = {f.name: row.get(f.name) for f in entity_type.create.fields}
    fields = row.get("fields") or {}
    return Record(entity_type.name, row["id"], row["area"], row["status"],
                  lifecycle.label(row["status"]), values,
                  fields if isinstance(fields, dict) else json.loads(fields), row.get("updated", ""),
                  history(node, entity_type.name, row["id"]) if full else (),
                  conflicts(node, entity_type.name, row["id"]) if full else ())


def get(node, entity: str, entity_id: str) -> Record:
    entity_type = entity_type_of(node, entity)
    row = load(node.db, entity_type, entity_id)
    if row is None:
        raise not_found(entity_type, entity_id)
    return _record_of(node, entity_type, row, full=True)


@attrs.frozen
class RecordFilter:
    """What ``list`` narrows by; every filter is optional."""

    status: str | None = None
    area: str | None = None
    since: str | None = None
    until: str | None = None
    values: dict[str, Any] = attrs.Factory(dict)


def status_name(node, entity: str, given: str) -> str:
    lifecycle = node.registry.lifecycle(entity)
    names = {s.name: s.name for s in lifecycle.states.values()}
    names.update({s.label: s.name for s in lifecycle.states.values()})
    if given not in names:
        raise InvalidInput(N_("there is no state “{given}”; choose one of: {states}"),
                           given=given, states=listing(
                               f"{s.label}({s.name})" for s in lifecycle.states.values()))
    return names[given]


def where_clause(node, entity_type: EntityType, filters: RecordFilter) -> tuple[list[str], list]:
    """SQL conditions for ``filters``, checked and converted as the user wrote them."""
    where: list[str] = []
    params: list[Any] = []
    if filters.status:
        where.append("status = ?")
        params.append(status_name(node, entity_type.name, filters.status))
    if filters.area:
        areas.check_code(filters.area)
        where.append("area like ?")
        params.append(filters.area + "%")
    date = date_field(entity_type)
    for bound, op in ((filters.since, ">="), (filters.until, "<=")):
        if bound:
            if date is None:
                raise InvalidInput(N_("{entity} has no date, so it cannot be filtered by date"),
                                   entity=entity_type.label)
            value = convert_field(Field(date.name, date.label, kind="date"), bound)
            where.append(f"[{date.name}] {op} ?")
            params.append(value)
    fields = {f.name: f for f in entity_type.create.fields}
    for name, raw in filters.values.items():
        field = fields.get(name)
        if field is None:
            raise InvalidInput(N_("{entity} has no item “{name}” to filter by"),
                               entity=entity_type.label, name=name)
        choices = node.registry.vocabulary(field.choices) if field.choices else None
        where.append(f"[{name}] = ?")
        params.append(column(convert_field(field, raw, choices)))
    return where, params


def list_records(node, entity: str, filters: RecordFilter = RecordFilter()) -> list[Record]:
    entity_type = entity_type_of(node, entity)
    where, params = where_clause(node, entity_type, filters)
    date = date_field(entity_type)
    order = f"[{date.name}], id" if date else "id"
    sql = f"select * from [{entity_type.table}]"
    if where:
        sql += " where " + " and ".join(where)
    return [_record_of(node, entity_type, row, full=False)
            for row in node.db.query(sql + f" order by {order}", params)]
