"""A plugin that owns an entity type and writes nothing but its declaration.

安全检查 (an inspection of a site): three states, two steps, one field and
a table of its own with a migration. The kernel gives it history, the
``xinfang inspection …`` commands, conflicts, sync and rebuild; this module
holds no fold, command or sync code.
"""

from __future__ import annotations

from sqlite_utils.migrations import Migrations

from xinfang import hookimpl
from xinfang.core.entities import EntityType, Field, State, Step

ENTITY = "inspection"
MIGRATIONS = Migrations("inspection")


@MIGRATIONS(name="0001_inspections")
def _schema(db) -> None:
    db.execute("create table inspections (id text primary key, area text not null, "
               "status text not null, topic text not null, author text not null, "
               "created_key text not null, facts text not null, fields text not null, "
               "updated text not null)")


DATE = Field("date", "日期", kind="date")
INSPECTION = EntityType(
    ENTITY, "安全检查", ("inspections",), MIGRATIONS, table="inspections",
    create=Step("plan", "计划检查", (), "planned", (Field("topic", "检查事项", required=True),)),
    states=(State("planned", "待检查"), State("inspected", "已检查"),
            State("closed", "已整改", open=False)),
    steps=(Step("inspect", "检查", {"planned"}, "inspected", (DATE,)),
           Step("close", "整改完毕", {"inspected"}, "closed", (DATE,))),
    command="inspection")


@hookimpl
def xinfang_entity_types():
    return [INSPECTION]
