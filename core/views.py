"""The view tables of a registry, and exact comparison of two stores' views.

Two nodes holding the same events must hold the same views (convergence);
``views_digest`` is how tests, ``xinfang rebuild --check`` and the sync
agreement check say so, and ``dump_views`` what they show when not.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlite_utils

from . import codec, store
from .plugins import Registry


def view_tables(registry: Registry) -> list[str]:
    tables = [*store.CORE_VIEW_TABLES, *store.LOCAL_VIEW_TABLES]
    for entity_type in registry.entity_types.values():
        tables.extend(entity_type.tables)
    return tables



def dump_views(db: sqlite_utils.Database, registry: Registry,
               local: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every view row, sorted, so two stores can be compared exactly."""
    dump = {}
    for table in view_tables(registry):
        if not local and table in store.LOCAL_VIEW_TABLES:
            continue
        columns = [c.name for c in db[table].columns]
        order = ", ".join(f"[{c}]" for c in columns)
        dump[table] = [tuple(row) for row in db.conn.execute(
            f"select {order} from [{table}] order by {order}")]
    return dump


def views_digest(db: sqlite_utils.Database, registry: Registry) -> str:
    """One SHA-256 over every view row: equal digests mean identical views.

    Empty tables and the node-local ``held_entities`` are left out, so a node
    with an extra plugin that nothing uses, or one that holds what another
    folded but has the same rows otherwise, compares by content alone.
    """
    digest = hashlib.sha256()
    for table, rows in sorted(dump_views(db, registry, local=False).items()):
        if rows:
            digest.update(codec.encode([table, [[plain_value(v) for v in row] for row in rows]]))
    return digest.hexdigest()


def plain_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    return value
