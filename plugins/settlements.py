"""Settling conflicts: a person's explicit decision, recorded as an event.

The fold keeps every event that a lifecycle could not accept in
``conflicts``; nothing is dropped. A settlement is an event of its own, so
the decision syncs like anything else and every node lists the same open
conflicts. What to do about the case itself (take another step, reopen) is
an ordinary lifecycle step; the settlement records that a person looked.
"""

from __future__ import annotations

import attrs

from xinfang import hookimpl
from xinfang.core.entities import EntityType, require
from xinfang.core import i18n
from xinfang.core.errors import InvalidEvent, InvalidInput, NotFound
from xinfang.core.i18n import Message, N_
from sqlite_utils.migrations import Migrations
from xinfang.core.node import Draft

ENTITY = "settlement"


MIGRATIONS = Migrations("settlement")


@MIGRATIONS(name="0001_settlements")
def _schema(db) -> None:
    db.executescript("""
    create table settlements (
        event_id text primary key, note text not null, author text not null,
        operator text not null, order_key text not null
    );
    """)


def _apply(ctx, event) -> None:
    exists = ctx.db.conn.execute("select 1 from settlements where event_id = ?",
                                 [event.entity_id]).fetchone()
    require(exists is None, Message(N_("conflict {id}… is already settled"),
                                    id=event.entity_id[:16]))
    ctx.db.conn.execute(
        "insert into settlements (event_id, note, author, operator, order_key) values (?,?,?,?,?)",
        [event.entity_id, event.body["note"], event.author, event.body.get("by", ""),
         event.order_key])


def _reset(ctx, event_id: str) -> None:
    ctx.db.conn.execute("delete from settlements where event_id = ?", [event_id])


@hookimpl
def xinfang_entity_types():
    return [EntityType(ENTITY, "冲突处理", ("settlements",), MIGRATIONS, apply=_apply,
                       reset=_reset)]


@hookimpl
def xinfang_validate_event(event, node):
    if event.entity == ENTITY and (event.type != "settlement.settle"
                                   or not isinstance(event.body.get("note"), str)):
        raise InvalidEvent(N_("a settlement is settlement.settle with a note"))


@attrs.frozen
class Conflict:
    event_id: str
    entity: str
    entity_id: str
    type: str
    reason: str
    settled: bool
    note: str | None


def list_conflicts(node, include_settled: bool = False) -> list[Conflict]:
    rows = node.db.execute(
        "select c.event_id, c.entity, c.entity_id, c.type, c.reason, s.note is not null, s.note "
        "from conflicts c left join settlements s on s.event_id = c.event_id "
        "where c.entity != ? order by c.order_key", [ENTITY]).fetchall()
    # the reason is stored language-independent; callers read it in their language
    found = [Conflict(*row[:4], i18n.show(row[4]), bool(row[5]), row[6]) for row in rows]
    return found if include_settled else [c for c in found if not c.settled]


def settle(node, event_id: str, note: str) -> None:
    if not note or not note.strip():
        raise InvalidInput(N_("say how the conflict was settled (--note)"))
    matches = node.db.execute("select c.event_id, e.area from conflicts c join events e "
                              "on e.id = c.event_id where c.event_id like ?",
                              [event_id + "%"]).fetchall()
    if len(matches) != 1:
        raise NotFound(N_("no conflict matches “{id}”; `xinfang conflicts` lists them")
                       if not matches else
                       N_("more than one conflict matches “{id}”; `xinfang conflicts` lists "
                          "them"), id=event_id)
    full_id, area = matches[0]
    node.append(Draft("settlement.settle", ENTITY, full_id, area,
                      {"note": note.strip(), "by": node.operator}))
