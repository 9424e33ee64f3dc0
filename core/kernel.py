"""The entity kernel: lifecycle entities folded, read and moved alike.

A plugin that declares an entity type with a table, a creation step, states
and steps (see ``EntityType``) gets, without writing any of it: the fold
(creation, steps checked against the state and the guards, ``facts``), the
history, conflicts, rebuild and sync; ``core.records`` is the API over it, on
which the generated ``xinfang <entity> …`` commands stand.

The kernel fills these columns of the plugin's table when it has them:
``id``, ``area``, ``status``, ``author``, ``created_key`` (the order key of
the creation), ``facts`` (JSON: the last values of each step, by step name),
``fields`` (JSON: the fields other plugins add), ``updated`` (the date of the
last step) and one column per creation field.

Event bodies: the creation is ``{<field>: value, …, "fields": {…}, "by": …}``,
a step ``{"values": {<field>: value, …}, "by": …}``; dates are strings.

A record's events of a page fold in memory, by this same code: where it reads
and writes a record, ``record_fold`` says whether in memory or in the tables.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import record_fold
from .entities import Author, EntityType, Field, convert_field, require
from .errors import Hold, InvalidEvent, StepRefused, XinfangError
from .i18n import N_, Message

#: body keys the kernel itself writes; no field may take these names
RESERVED = frozenset({"by", "fields", "values", "id", "area", "status", "author", "facts",
                      "updated", "created_key"})
#: each epoch of a node numbers its records in a range of its own (``records.next_id``)
EPOCH_SERIALS = 100_000
_NUMBER = re.compile(r"(?P<area>[0-9]+)-(?P<year>[0-9]{4})-(?P<serial>[0-9]+)")


#: one encoder for every view column (building one per call costs more than encoding)
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Deterministic JSON for view columns: values already passed the event codec."""
    return _ENCODER.encode(value)


def date_field(entity_type: EntityType) -> Field | None:
    return next((f for f in entity_type.create.fields if f.kind == "date"), None)


# -- folding -------------------------------------------------------------------


def load(db, entity_type: EntityType, entity_id: str) -> dict[str, Any] | None:
    cursor = db.execute(f"select * from [{entity_type.table}] where id = ?", [entity_id])
    row = cursor.fetchone()
    if row is None:
        return None
    record = dict(zip(next(zip(*cursor.description)), row))
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
    """What a lifecycle guard sees: the row, its facts, and what the plugin adds.

    Where a step of the lifecycle has an ``authority`` rule, ``taken_by``
    holds the certified office (area, level) that took each step last, from
    the history and the certificates: 复查 goes to the level above the office
    that answered, whoever folds it and whenever its certificate arrived.
    """
    view = record_fold.view_of(ctx, entity_type, entity_id)
    if view is not None and _has_authority(ctx.registry, entity_type.name):
        view["taken_by"] = record_fold.taken_by(ctx, entity_type.name, entity_id)
    if view is not None and entity_type.guard_view is not None:
        entity_type.guard_view(ctx, view)
    return view


def _has_authority(registry, entity: str) -> bool:
    cache = registry.extras.setdefault("core.authority", {})
    if entity not in cache:
        cache[entity] = any(step.authority is not None
                            for step in registry.lifecycle(entity).steps.values())
    return cache[entity]


def author_of(db, key: str) -> Author | None:
    """The office behind ``key`` as the certificate this node holds says, or None.

    Only certificates whose chain this node has checked are kept (``certs``),
    and every node that admitted an event of ``key`` holds its certificate,
    so this is the same on every node that judges the event.
    """
    row = db.execute("select area, level from certs where subject = ?", [key]).fetchone()
    return Author(key, row[0], row[1]) if row else None


def taken_by(db, entity: str, entity_id: str) -> dict[str, dict[str, str]]:
    """Step name -> the certified office (area, level) of its latest taker."""
    return {step: {"area": area, "level": level} for step, area, level in db.execute(
        "select h.step, c.area, c.level from entity_history h join certs c on c.subject = "
        "h.author where h.entity = ? and h.entity_id = ? order by h.ord", [entity, entity_id])}


def apply(ctx, entity_type: EntityType, event) -> None:
    step_name = event.type.removeprefix(f"{entity_type.name}.")
    if step_name == entity_type.create.name:
        _create(ctx, entity_type, event)
    else:
        _step(ctx, entity_type, event, step_name)


def _codes(registry, vocabulary: str) -> frozenset[str]:
    cache = registry.extras.setdefault("core.codes", {})
    if vocabulary not in cache:
        cache[vocabulary] = frozenset(c.code for c in registry.vocabulary(vocabulary))
    return cache[vocabulary]


def _known_choices(ctx, fields, values: dict[str, Any]) -> None:
    """A code from a vocabulary this node lacks is not a misfit but a missing plugin."""
    for field in fields:
        value = values.get(field.name)
        if field.choices and value is not None and value not in _codes(ctx.registry,
                                                                       field.choices):
            raise Hold(N_("the code “{code}” of “{field}” is not in this node's list "
                          "{vocabulary}; install the plugin that adds it"),
                       code=value, field=field.label, vocabulary=field.choices)


def _create(ctx, entity_type: EntityType, event) -> None:
    body = event.body
    exists = record_fold.row_exists(ctx, entity_type, event.entity_id)
    require(not exists,
            Message(N_("{entity} {id} is already registered; the second registration is kept "
                       "as a conflict"), entity=entity_type.label, id=event.entity_id))
    create = entity_type.create
    _known_choices(ctx, create.fields, body)
    _known_choices(ctx, ctx.registry.fields(entity_type.name), body.get("fields", {}))
    date = date_field(entity_type)
    row: dict[str, Any] = {f.name: body.get(f.name) for f in create.fields}
    row.update(id=event.entity_id, area=event.area, status=create.target, author=event.author,
               created_key=event.order_key, facts=dumps({}), fields=dumps(body.get("fields", {})),
               updated=body.get(date.name) if date else "")
    if entity_type.on_create is not None:
        record_fold.plugin_runs(ctx)
        entity_type.on_create(ctx, event, row)
    columns = [c for c in ctx.columns(entity_type.table) if c in row]
    record_fold.insert_row(ctx, entity_type, event.entity_id,
                           {c: column(row[c]) for c in columns})
    _record(ctx, entity_type, event, create.name, create.label, row["updated"] or "",
            create.target, {})
    if entity_type.after is not None:
        record_fold.plugin_runs(ctx)
        entity_type.after(ctx, event, {**row, "facts": {}, "fields": body.get("fields", {})})


def column(value: Any) -> Any:
    kind = type(value)
    if kind is dict or kind is list:
        return dumps(value)
    if kind is bool:
        return int(value)
    return value


def reach(ctx, entity_type: EntityType, event, view: dict[str, Any] | None = None
          ) -> tuple[dict[str, Any], Author | None]:
    """The record a step names, and its author, if the step may touch it at all; else
    ``StepRefused`` (a conflict): the record is registered here, the step claims its
    area and the author's certified area contains it.

    The fold asks this of a step no plugin here can fold too (a step of a newer
    release), before holding the record for it: a step that cannot reach a record
    must not take it out of the views, or a stolen key could hide any record whose
    number it knows by naming it in a made-up step.
    """
    step_name = event.type.removeprefix(f"{entity_type.name}.")
    if view is None:
        view = load(ctx.db, entity_type, event.entity_id)
    if view is None:
        known = ctx.registry.lifecycle(entity_type.name).steps.get(step_name)
        raise StepRefused(N_("{entity} {id} is not registered on this node, so it cannot "
                             "{step}"), entity=entity_type.label, id=event.entity_id,
                          step=known.label if known else step_name)
    # the entity's area decides, not the area the event claims: an author whose scope
    # holds its own area only cannot reach a sibling's record by naming its own area
    if event.area != view["area"]:
        raise StepRefused(N_("the step claims area {claimed}, not the area {area} of the "
                             "{entity}; it is not taken"), claimed=event.area,
                          area=view["area"], entity=entity_type.label)
    author = ctx.author_of(event.author)
    if author is not None and not view["area"].startswith(author.area):
        raise StepRefused(N_("the {entity} lies in area {area}, outside the area {scope} its "
                             "author is certified for; the step is not taken"),
                          entity=entity_type.label, area=view["area"], scope=author.area)
    return view, author


def _step(ctx, entity_type: EntityType, event, step_name: str) -> None:
    view = guard_view(ctx, entity_type, event.entity_id)
    lifecycle = ctx.registry.lifecycle(entity_type.name)
    view, author = reach(ctx, entity_type, event, view)
    values = dict(event.body.get("values", {}))
    step = lifecycle.check(view, step_name, values, author)
    note = step.note
    _known_choices(ctx, step.fields, values)
    status = view["status"] if note else step.target_for(view["status"], values)
    changes: dict[str, Any] = {"status": status}
    if values.get("date") and not note:
        changes["updated"] = values["date"]
    if entity_type.on_step is not None:
        record_fold.plugin_runs(ctx)
        entity_type.on_step(ctx, event, view, step, values, changes)
    facts = view["facts"]
    if not note:
        facts[step_name] = values
    changes["facts"] = dumps(facts)
    known = ctx.columns(entity_type.table)
    record_fold.update_row(ctx, entity_type, event.entity_id,
                           {c: column(changes[c]) for c in changes if c in known})
    if not note:
        _record(ctx, entity_type, event, step_name, step.label, values.get("date", ""), status,
                values)
    if entity_type.after is not None:
        record_fold.plugin_runs(ctx)
        entity_type.after(ctx, event, {**view, **changes, "facts": facts})


def _record(ctx, entity_type: EntityType, event, step: str, label: str, date: str, status: str,
            details: dict[str, Any]) -> None:
    record_fold.add_history(ctx, entity_type, event.entity_id, [
        event.order_key, event.id, step, label, date, event.author,
        str(event.body.get("by", "")), status, dumps(details)])


def reset(ctx, entity_type: EntityType, entity_id: str) -> None:
    ctx.db.conn.execute(f"delete from [{entity_type.table}] where id = ?", [entity_id])
    ctx.db.conn.execute("delete from entity_history where entity = ? and entity_id = ?",
                        [entity_type.name, entity_id])


# -- checking bodies, on creation and on arrival -------------------------------


def validate(registry, event, db=None) -> None:
    """The shape of a lifecycle entity's event body; raises ``InvalidEvent``.

    Only shape: whether a step fits the state is decided by the fold, which
    keeps a misfit as a conflict rather than refusing the event; a code from
    a vocabulary this node lacks is held by the fold, not refused here. With
    ``db`` (this node's trust data) a creation's number is checked against its
    author's certificate and epoch too (``check_number``).
    """
    entity_type = registry.entity_type(event.entity)
    step_name = event.type.removeprefix(f"{event.entity}.")
    body = event.body
    try:
        if step_name == entity_type.create.name:
            fields = _fields_by_name(registry, event.entity, "", entity_type.create.fields)
            allowed = set(fields) | {"fields", "by"} | set(entity_type.body_keys)
            extra = set(body) - allowed
            missing = {n for n, f in fields.items() if f.required} - set(body)
            if extra or missing:
                raise InvalidEvent(N_("{type} body: missing {missing}, unknown {unknown}"),
                                   type=event.type, missing=str(sorted(missing)),
                                   unknown=str(sorted(extra)))
            _canonical(registry, event.type, fields, {k: body[k] for k in fields if k in body})
            if not isinstance(body.get("fields", {}), dict):
                raise InvalidEvent(N_("{type} fields must be a map"), type=event.type)
            _canonical(registry, event.type,
                       _fields_by_name(registry, event.entity, "*", registry.fields(event.entity)),
                       body.get("fields", {}), unknown_ok=True)
            if entity_type.identify is not None:
                check_identity(entity_type, event)
            elif db is not None:
                check_number(db, entity_type, event)
            return
        step = registry.lifecycle(event.entity).steps[step_name]
        values = body.get("values")
        fields = _fields_by_name(registry, event.entity, step_name, step.fields)
        dated = "date" in fields
        if not isinstance(values, dict) or (dated and "date" not in values) \
                or set(body) - {"values", "by"}:
            raise InvalidEvent(N_("{type} needs a values map with a date") if dated
                               else N_("{type} needs a values map"), type=event.type)
        _canonical(registry, event.type, fields, values)
    except InvalidEvent:
        raise
    except XinfangError as exc:
        raise InvalidEvent(N_("{type}: {error}"), type=event.type, error=exc.message) from None


def _fields_by_name(registry, entity: str, step: str, fields) -> dict[str, Field]:
    """A step's fields by name, built once per registry (steps are fixed once collected)."""
    cache = registry.extras.setdefault("core.fields", {})
    key = (entity, step)
    if key not in cache:
        cache[key] = {f.name: f for f in fields}
    return cache[key]


def _canonical(registry, event_type: str, fields: dict[str, Field], values: dict[str, Any],
               unknown_ok: bool = False) -> None:
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            if unknown_ok:
                continue  # a field of a plugin this node lacks
            raise InvalidEvent(N_("{type} has an unknown value “{name}”"), type=event_type,
                               name=name)
        if field.choices:
            if not isinstance(value, str):
                raise InvalidEvent(N_("{type} value “{name}” must be a code"), type=event_type,
                                   name=name)
            continue  # unknown codes are held by the fold
        if convert_field(field, value) != value:
            raise InvalidEvent(N_("{type} value “{name}” is not in canonical form"),
                               type=event_type, name=name)


# -- record numbers ------------------------------------------------------------


def check_identity(entity_type: EntityType, event) -> None:
    """A record identified by what it is carries the id its values give; raises
    ``InvalidEvent`` (a pure function of the event, so refused on arrival)."""
    body = {k: v for k, v in event.body.items() if k not in ("fields", "by")}
    try:
        expected = entity_type.identify(body, event.area)
    except (KeyError, TypeError, ValueError):
        expected = None
    if event.entity_id != expected:
        raise InvalidEvent(N_("{type}: the id {id} is not the one its values give ({expected})"),
                           type=event.type, id=event.entity_id, expected=expected or "—")


def serial_range(epoch: int) -> tuple[int, int, int]:
    """The first and last serial of an epoch's range, and the digits they are written in."""
    first = epoch * EPOCH_SERIALS + 1
    return first, first + EPOCH_SERIALS - 2, len(f"{first:05d}")


def check_number(db, entity_type: EntityType, event) -> None:
    """A creation's number is its author's: ``AREA-YEAR-SERIAL`` with the area of the
    author's certificate, the year of the record's date and a serial in the range of
    the event's epoch; raises ``InvalidEvent``.

    A pure function of the event and its author's certificate, so a number is
    refused on arrival, never kept as a conflict: a stolen key cannot take a
    number of another node's area (its next registration would become a
    conflict) nor one of a later epoch (kept for the node after a restore). A
    draft is this node's own (its key and epoch in ``meta``); a key without a
    certificate here is not judged (see ``author_of``).
    """
    key = getattr(event, "author", None) or _meta(db, "author")
    author = author_of(db, key)
    if author is None:
        return
    epoch = event.epoch if hasattr(event, "epoch") else int(_meta(db, "epoch"))
    date = date_field(entity_type)
    dated = event.body.get(date.name) if date else None
    problem = number_problem(event.entity_id, author.area, epoch,
                             dated[:4] if isinstance(dated, str) else None)
    if problem is not None:
        raise InvalidEvent(N_("{type}: the number {id} {problem}"), type=event.type,
                           id=event.entity_id, problem=problem)


def number_problem(entity_id: str, area: str, epoch: int, year: str | None) -> Message | None:
    """What is wrong with ``entity_id`` as a number of ``area`` in ``epoch``, or None."""
    first, last, width = serial_range(epoch)
    found = _NUMBER.fullmatch(entity_id)
    if found is None:
        return Message(N_("is not written AREA-YEAR-SERIAL, as {example}"),
                       example=f"{area}-{year or 2026}-{first:0{width}d}")
    if found["area"] != area:
        return Message(N_("begins with area {given}, but its author is certified for area "
                          "{area}: a node numbers only under its own area"),
                       given=found["area"], area=area)
    if year is not None and found["year"] != year:
        return Message(N_("names the year {given}, but the record is dated in {year}"),
                       given=found["year"], year=year)
    serial = found["serial"]
    if len(serial) != width or not first <= int(serial) <= last:
        return Message(N_("has the serial {serial}, outside the range of its author's epoch "
                          "{epoch} ({first} to {last})"), serial=serial, epoch=epoch,
                       first=f"{first:0{width}d}", last=f"{last:0{width}d}")
    return None


def _meta(db, key: str) -> str | None:
    row = db.execute("select value from meta where key = ?", [key]).fetchone()
    return row[0] if row else None
