"""Named schema migrations, each applied once with its bookkeeping row.

The core and every plugin list their migrations under an owner name; a node
applies whatever it has not applied yet, each one in its own transaction with
the row that records it, so a crash leaves a migration either done or not.
"""

from __future__ import annotations

from typing import Callable, Iterable

import attrs
import sqlite_utils


@attrs.frozen
class Migration:
    name: str
    apply: Callable[[sqlite_utils.Database], None] = attrs.field(eq=False)


def pending(db: sqlite_utils.Database, owner: str, migrations: Iterable[Migration]) -> list[Migration]:
    _ensure_table(db)
    done = {row["name"] for row in db.query(
        "select name from _migrations where owner = ?", [owner])}
    return [m for m in migrations if m.name not in done]


def apply_all(db: sqlite_utils.Database, owner: str, migrations: Iterable[Migration]) -> list[str]:
    applied = []
    for migration in pending(db, owner, migrations):
        with db.atomic():
            migration.apply(db)
            db.execute("insert into _migrations (owner, name) values (?, ?)",
                       [owner, migration.name])
        applied.append(migration.name)
    return applied


def _ensure_table(db: sqlite_utils.Database) -> None:
    db.execute("create table if not exists _migrations "
               "(owner text not null, name text not null, primary key (owner, name))")
