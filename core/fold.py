"""Folding events into views.

Views are a deterministic function of the *set* of events: each entity's
events are applied in the total order (hybrid clock, author, epoch, sequence).
An event that arrives after a later one of the same entity has been applied
triggers a re-fold of that entity alone, so any arrival order, with any
duplicates, gives the same views byte for byte. An event the entity's state
cannot accept is kept in the log and listed in ``conflicts``, never dropped.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

import attrs
import sqlite_utils

from . import codec, store
from .errors import StepRefused
from .event import Event
from .plugins import Registry


@attrs.define
class FoldContext:
    """What fold code may use: the views, the registry and the node's secrets."""

    db: sqlite_utils.Database
    registry: Registry

    def secret(self, digest: str | None) -> str | None:
        """The clear value behind a sealed digest, where this node holds it."""
        if not digest:
            return None
        row = self.db.conn.execute("select value from secrets where digest = ?", [digest]).fetchone()
        return row[0] if row else None


def apply(ctx: FoldContext, event: Event) -> None:
    """Fold an event just added to the log."""
    head = ctx.db.conn.execute(
        "select order_key from entity_heads where entity = ? and entity_id = ?",
        [event.entity, event.entity_id]).fetchone()
    if head is None or event.order_key > head[0]:
        _apply_one(ctx, event)
    else:
        refold(ctx, event.entity, event.entity_id)


def refold(ctx: FoldContext, entity: str, entity_id: str) -> None:
    entity_type = ctx.registry.entity_type(entity)
    if entity_type is not None:
        entity_type.reset(ctx, entity_id)
    ctx.registry.pm.hook.xinfang_entity_reset(context=ctx, entity=entity, entity_id=entity_id)
    ctx.db.conn.execute("delete from conflicts where entity = ? and entity_id = ?", [entity, entity_id])
    ctx.db.conn.execute("delete from entity_heads where entity = ? and entity_id = ?", [entity, entity_id])
    for event in list(store.events_of(ctx.db, entity, entity_id)):
        _apply_one(ctx, event)


def _apply_one(ctx: FoldContext, event: Event) -> None:
    conn = ctx.db.conn
    conn.execute("savepoint fold_event")
    try:
        entity_type = ctx.registry.entity_type(event.entity)
        if entity_type is None:
            raise StepRefused(f"no installed plugin handles entity type {event.entity!r}")
        entity_type.apply(ctx, event)
        ctx.registry.pm.hook.xinfang_event_applied(context=ctx, event=event)
    except StepRefused as exc:
        conn.execute("rollback to savepoint fold_event")
        conn.execute(
            "insert or replace into conflicts (event_id, entity, entity_id, order_key, type, reason)"
            " values (?,?,?,?,?,?)",
            [event.id, event.entity, event.entity_id, event.order_key, event.type, str(exc)])
    conn.execute("release savepoint fold_event")
    conn.execute(
        "insert into entity_heads (entity, entity_id, order_key) values (?,?,?) "
        "on conflict (entity, entity_id) do update set order_key = excluded.order_key",
        [event.entity, event.entity_id, event.order_key])


def view_tables(registry: Registry) -> list[str]:
    tables = list(store.CORE_VIEW_TABLES)
    for entity_type in registry.entity_types.values():
        tables.extend(entity_type.view_tables)
    return tables


def refold_all(ctx: FoldContext, events: Iterable[Event]) -> int:
    """Empty every view and fold ``events`` (which must be in total order)."""
    for table in view_tables(ctx.registry):
        ctx.db.conn.execute(f"delete from [{table}]")
    count = 0
    for event in events:
        _apply_one(ctx, event)
        count += 1
    return count


def dump_views(db: sqlite_utils.Database, registry: Registry) -> dict[str, list[tuple[Any, ...]]]:
    """Every view row, sorted, so two stores can be compared exactly."""
    dump = {}
    for table in view_tables(registry):
        columns = [c.name for c in db[table].columns]
        order = ", ".join(f"[{c}]" for c in columns)
        dump[table] = [tuple(row) for row in db.conn.execute(
            f"select {order} from [{table}] order by {order}")]
    return dump


def views_digest(db: sqlite_utils.Database, registry: Registry) -> str:
    """One SHA-256 over every view row: equal digests mean identical views."""
    digest = hashlib.sha256()
    for table, rows in sorted(dump_views(db, registry).items()):
        digest.update(codec.encode([table, [[_plain(v) for v in row] for row in rows]]))
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    return value
