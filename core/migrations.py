"""Schema migrations: ``sqlite_utils``' own migration sets, one per owner.

The core, the sync layer and every entity type keep a
``sqlite_utils.migrations.Migrations`` set; a node applies what it has not
applied yet when it opens, each migration in one transaction with the row
that records it. Release 0.1.0 kept its own bookkeeping table
(``_migrations``); ``adopt_legacy_records`` carries its rows over once, so a
node made by that release opens and migrates like any other.
"""

from __future__ import annotations

import datetime as dt

import sqlite_utils
from sqlite_utils.migrations import Migrations

#: 0.1.0's owner names, as the migration sets that now own those migrations.
_LEGACY_SETS = {"core": "xinfang.core"}


def adopt_legacy_records(db: sqlite_utils.Database) -> None:
    """Move 0.1.0's ``_migrations`` rows into ``_sqlite_migrations``, once."""
    if not db["_migrations"].exists():
        return
    rows = db.execute("select owner, name from _migrations").fetchall()
    with db.atomic():
        Migrations("xinfang.core").ensure_migrations_table(db)
        now = str(dt.datetime.now(dt.timezone.utc))
        for owner, name in rows:
            db.execute("insert or ignore into _sqlite_migrations (migration_set, name, applied_at) "
                       "values (?, ?, ?)", [_LEGACY_SETS.get(owner, owner), name, now])
        db.execute("drop table _migrations")


def apply(db: sqlite_utils.Database, migrations: Migrations | None) -> None:
    if migrations is not None:
        migrations.apply(db)
