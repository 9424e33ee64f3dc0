"""The entity kernel: lifecycle entities folded, read and moved alike.

A plugin that declares an entity type with a table, a creation step, states
and steps (see ``EntityType``) gets, without writing any of it: the fold
(creation, steps checked against the state and the guards, ``facts``), the
history, conflicts, rebuild, sync, and the API below, on which the generated
``xinfang <entity> …`` commands stand.

The kernel fills these columns of the plugin's table when it has them:
``id``, ``area``, ``status``, ``author``, ``created_key`` (the order key of
the creation), ``facts`` (JSON: the last values of each step, by step name),
``fields`` (JSON: the fields other plugins add), ``updated`` (the date of the
last step) and one column per creation field.

Event bodies: the creation is ``{<field>: value, …, "fields": {…}, "by": …}``,
a step ``{"values": {<field>: value, …}, "by": …}``; dates are strings.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from . import areas
from .entities import EntityType, Field, Step, convert_field, require
from .errors import Hold, InvalidEvent, InvalidInput, NotFound, XinfangError

EPOCH_SERIALS = 100_000
#: body keys the kernel itself writes; no field may take these names
RESERVED = frozenset({"by", "fields", "values", "id", "area", "status", "author", "facts",
                      "updated", "created_key"})


def dumps(value: Any) -> str:
    """Deterministic JSON for view columns: values already passed the event codec."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def date_field(entity_type: EntityType) -> Field | None:
    return next((f for f in entity_type.create.fields if f.kind == "date"), None)


# -- folding -------------------------------------------------------------------


def load(db, entity_type: EntityType, entity_id: str) -> dict[str, Any] | None:
    cursor = db.execute(f"select * from [{entity_type.table}] where id = ?", [entity_id])
    row = cursor.fetchone()
    if row is None:
        return None
    record = dict(zip([d[0] for d in cursor.description], row))
    for name in ("facts", "fields"):
        if isinstance(record.get(name), str):
            record[name] = json.loads(record[name])
    return record


def history_details(db, entity: str, entity_id: str) -> list[dict[str, Any]]:
    """The steps taken so far, oldest first, as guards and deadline rules read them."""
    rows = db.execute("select step, date, details from entity_history where entity = ? and "
                      "entity_id = ? order by ord", [entity, entity_id]).fetchall()
    return [{**json.loads(details), "step": step, "date": date} for step, date, details in rows]


def guard_view(ctx, entity_type: EntityType, entity_id: str) -> dict[str, Any] | None:
    """What a lifecycle guard sees: the row, its facts, and what the plugin adds."""
    view = load(ctx.db, entity_type, entity_id)
    if view is not None and entity_type.guard_view is not None:
        entity_type.guard_view(ctx, view)
    return view


def apply(ctx, entity_type: EntityType, event) -> None:
    step_name = event.type.removeprefix(f"{entity_type.name}.")
    if step_name == entity_type.create.name:
        _create(ctx, entity_type, event)
    else:
        _step(ctx, entity_type, event, step_name)


def _known_choices(ctx, fields, values: dict[str, Any]) -> None:
    """A code from a vocabulary this node lacks is not a misfit but a missing plugin."""
    for field in fields:
        value = values.get(field.name)
        if field.choices and value is not None and value not in {
                c.code for c in ctx.registry.vocabulary(field.choices)}:
            raise Hold(f"“{field.label}”的代码 {value!r} 不在本节点的列表 {field.choices} 中；"
                       "请安装增加该代码的插件 (vocabulary code from a plugin not installed)")


def _create(ctx, entity_type: EntityType, event) -> None:
    body = event.body
    require(load(ctx.db, entity_type, event.entity_id) is None,
            f"{entity_type.label} {event.entity_id} 已登记；重复的登记作为冲突保留 "
            "(already created; the second creation is kept as a conflict)")
    create = entity_type.create
    _known_choices(ctx, create.fields, body)
    _known_choices(ctx, ctx.registry.fields(entity_type.name), body.get("fields", {}))
    date = date_field(entity_type)
    row: dict[str, Any] = {f.name: body.get(f.name) for f in create.fields}
    row.update(id=event.entity_id, area=event.area, status=create.target, author=event.author,
               created_key=event.order_key, facts=dumps({}), fields=dumps(body.get("fields", {})),
               updated=body.get(date.name) if date else "")
    if entity_type.on_create is not None:
        entity_type.on_create(ctx, event, row)
    columns = [c for c in ctx.columns(entity_type.table) if c in row]
    ctx.db.conn.execute(
        f"insert into [{entity_type.table}] ({', '.join(f'[{c}]' for c in columns)}) "
        f"values ({', '.join('?' * len(columns))})", [_column(row[c]) for c in columns])
    _record(ctx, entity_type, event, create.name, create.label, row["updated"] or "",
            create.target, {})


def _column(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _step(ctx, entity_type: EntityType, event, step_name: str) -> None:
    view = guard_view(ctx, entity_type, event.entity_id)
    require(view is not None, f"{entity_type.label} {event.entity_id} 在本节点尚无登记，无法"
                              f"{step_name} (no creation held for this step)")
    lifecycle = ctx.registry.lifecycle(entity_type.name)
    values = dict(event.body.get("values", {}))
    step = lifecycle.check(view, step_name, values)
    _known_choices(ctx, step.fields, values)
    status = step.target_for(view["status"], values)
    changes: dict[str, Any] = {"status": status}
    if values.get("date"):
        changes["updated"] = values["date"]
    if entity_type.on_step is not None:
        entity_type.on_step(ctx, event, view, step, values, changes)
    facts = view["facts"]
    facts[step_name] = values
    changes["facts"] = dumps(facts)
    columns = [c for c in changes if c in ctx.columns(entity_type.table)]
    ctx.db.conn.execute(
        f"update [{entity_type.table}] set {', '.join(f'[{c}] = ?' for c in columns)} "
        "where id = ?", [*(_column(changes[c]) for c in columns), event.entity_id])
    _record(ctx, entity_type, event, step_name, step.label, values.get("date", ""), status,
            values)


def _record(ctx, entity_type: EntityType, event, step: str, label: str, date: str, status: str,
            details: dict[str, Any]) -> None:
    db = ctx.db.conn
    (count,) = db.execute("select count(*) from entity_history where entity = ? and entity_id = ?",
                          [entity_type.name, event.entity_id]).fetchone()
    db.execute(
        "insert into entity_history (entity, entity_id, ord, order_key, event_id, step, label, "
        "date, author, operator, status, details) values (?,?,?,?,?,?,?,?,?,?,?,?)",
        [entity_type.name, event.entity_id, count, event.order_key, event.id, step, label, date,
         event.author, str(event.body.get("by", "")), status, dumps(details)])
    if entity_type.after is not None:
        entity_type.after(ctx, event, event.entity_id)


def reset(ctx, entity_type: EntityType, entity_id: str) -> None:
    ctx.db.conn.execute(f"delete from [{entity_type.table}] where id = ?", [entity_id])
    ctx.db.conn.execute("delete from entity_history where entity = ? and entity_id = ?",
                        [entity_type.name, entity_id])


# -- checking bodies, on creation and on arrival -------------------------------


def validate(registry, event) -> None:
    """The shape of a lifecycle entity's event body; raises ``InvalidEvent``.

    Only shape: whether a step fits the state is decided by the fold, which
    keeps a misfit as a conflict rather than refusing the event; a code from
    a vocabulary this node lacks is held by the fold, not refused here.
    """
    entity_type = registry.entity_type(event.entity)
    step_name = event.type.removeprefix(f"{event.entity}.")
    body = event.body
    try:
        if step_name == entity_type.create.name:
            fields = {f.name: f for f in entity_type.create.fields}
            allowed = set(fields) | {"fields", "by"} | set(entity_type.body_keys)
            extra = set(body) - allowed
            missing = {n for n, f in fields.items() if f.required} - set(body)
            if extra or missing:
                raise InvalidEvent(f"{event.type} body: missing {sorted(missing)}, "
                                   f"unknown {sorted(extra)}")
            _canonical(registry, event.type, fields, {k: body[k] for k in fields if k in body})
            if not isinstance(body.get("fields", {}), dict):
                raise InvalidEvent(f"{event.type} fields must be a map")
            _canonical(registry, event.type, {f.name: f for f in registry.fields(event.entity)},
                       body.get("fields", {}), unknown_ok=True)
            return
        step = registry.lifecycle(event.entity).steps[step_name]
        values = body.get("values")
        dated = any(f.name == "date" for f in step.fields)
        if not isinstance(values, dict) or (dated and "date" not in values) \
                or set(body) - {"values", "by"}:
            raise InvalidEvent(f"{event.type} needs a values map" + (" with a date" if dated else ""))
        _canonical(registry, event.type, {f.name: f for f in step.fields}, values)
    except InvalidEvent:
        raise
    except XinfangError as exc:
        raise InvalidEvent(f"{event.type}: {exc}") from None


def _canonical(registry, event_type: str, fields: dict[str, Field], values: dict[str, Any],
               unknown_ok: bool = False) -> None:
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            if unknown_ok:
                continue  # a field of a plugin this node lacks
            raise InvalidEvent(f"{event_type} has unknown value {name!r}")
        if field.choices:
            if not isinstance(value, str):
                raise InvalidEvent(f"{event_type} value {name!r} must be a code")
            continue  # unknown codes are held by the fold
        if convert_field(field, value) != value:
            raise InvalidEvent(f"{event_type} value {name!r} is not in canonical form")


# -- the API: what the CLI, the web and plugin authors call --------------------


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
        raise NotFound(f"没有名为 {entity!r} 的记录类型 (no lifecycle entity type {entity!r})")
    return entity_type


def convert_values(node, fields, given: dict[str, Any], today: dt.date,
                   what: str) -> dict[str, Any]:
    """User input for ``fields`` as canonical values; unknown names are refused."""
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise InvalidInput(f"{what} 没有这些项：{', '.join(unknown)}；可填：" +
                           ("、".join(f"{f.label}({f.name})" for f in fields) or "无"))
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
    """
    info = node.info
    prefix = f"{info.area}-{year}-"
    low = info.epoch * EPOCH_SERIALS
    width = len(f"{low + 1:05d}")
    row = node.db.execute(
        "select max(entity_id) from events where entity = ? and entity_id >= ? and entity_id <= ? "
        "and length(entity_id) = ?",
        [entity, f"{prefix}{low + 1:0{width}d}", f"{prefix}{low + EPOCH_SERIALS - 1:0{width}d}",
         len(prefix) + width]).fetchone()
    serial = int(row[0][len(prefix):]) if row and row[0] else low
    if serial + 1 >= low + EPOCH_SERIALS:
        raise InvalidInput(f"本纪元的编号已用尽（{prefix}…）；请运行 `xinfang node new-epoch` 后再登记")
    return f"{prefix}{serial + 1:0{width}d}"


def create(node, entity: str, given: dict[str, Any], *, area: str | None = None,
           fields: dict[str, Any] | None = None, today: dt.date | None = None,
           body: dict[str, Any] | None = None, secrets=()) -> str:
    """Create an entity and return its id. Nothing is written on bad input.

    ``body`` adds keys the plugin builds itself (``EntityType.body_keys``).
    """
    from .node import Draft

    today = today or dt.date.today()
    entity_type = entity_type_of(node, entity)
    given = dict(given)
    date = date_field(entity_type)
    if date is not None:
        given.setdefault(date.name, today.isoformat())
    values = convert_values(node, entity_type.create.fields, given, today,
                            f"{entity_type.label}{entity_type.create.label}")
    extra = convert_values(node, node.registry.fields(entity), fields or {}, today,
                           f"{entity_type.label}的扩展字段")
    area = area or node.info.area
    areas.check_code(area)
    if not node.in_jurisdiction(area):
        raise InvalidInput(f"区划 {area} 不在本节点辖区 {node.info.area}（{node.info.name}）内")
    created_on = values.get(date.name) if date else None
    year = int((created_on or today.isoformat())[:4])
    entity_id = next_id(node, entity, year)
    node.append(Draft(f"{entity}.{entity_type.create.name}", entity, entity_id, area,
                      {**values, **(body or {}), "fields": extra, "by": node.operator}, secrets))
    return entity_id


def take_step(node, entity: str, entity_id: str, step_name: str,
              given: dict[str, Any] | None = None, today: dt.date | None = None) -> str:
    """Take a lifecycle step; refused with the current state and the steps allowed."""
    from .node import Draft

    today = today or dt.date.today()
    entity_type = entity_type_of(node, entity)
    view = guard_view(node.context, entity_type, entity_id)
    if view is None:
        raise NotFound(f"本节点没有{entity_type.label} {entity_id}；"
                       f"`xinfang {entity_type.command or entity} list` 列出全部")
    lifecycle = node.registry.lifecycle(entity)
    step: Step | None = lifecycle.steps.get(step_name)
    if step is None or view["status"] not in step.sources:
        lifecycle.check(view, step_name, {})  # raises, naming the state and allowed steps
    given = dict(given or {})
    if any(f.name == "date" for f in step.fields):
        given.setdefault("date", today.isoformat())
    values = convert_values(node, step.fields, given, today, f"{step.label}({step.name})")
    lifecycle.check(view, step_name, values)
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
    return tuple(node.db.query("select event_id, type, reason from conflicts where entity = ? "
                               "and entity_id = ? order by order_key", [entity, entity_id]))


def summary_text(node, step: Step | None, details: dict[str, Any]) -> str:
    """A step's values in the users' words: labels, not codes."""
    fields = {f.name: f for f in step.fields} if step else {}
    parts = []
    for name, value in details.items():
        field = fields.get(name)
        if name == "date" or field is None:
            continue
        parts.append(f"{field.label}：{value_text(node, field, value)}")
    return "；".join(parts)


def value_text(node, field: Field, value: Any) -> Any:
    if field.choices:
        return node.registry.label(field.choices, value)
    if field.kind == "bool":
        return "是" if value else "否"
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
        raise NotFound(f"本节点没有{entity_type.label} {entity_id}；"
                       f"`xinfang {entity_type.command or entity} list` 列出全部")
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
        raise InvalidInput(f"没有状态 {given!r}；可选：" + "、".join(
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
                raise InvalidInput(f"{entity_type.label}没有日期，不能按日期筛选")
            value = convert_field(Field(date.name, date.label, kind="date"), bound)
            where.append(f"[{date.name}] {op} ?")
            params.append(value)
    fields = {f.name: f for f in entity_type.create.fields}
    for name, raw in filters.values.items():
        field = fields.get(name)
        if field is None:
            raise InvalidInput(f"{entity_type.label}没有可筛选的项 {name!r}")
        choices = node.registry.vocabulary(field.choices) if field.choices else None
        where.append(f"[{name}] = ?")
        params.append(_column(convert_field(field, raw, choices)))
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
