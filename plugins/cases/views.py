"""The case views folded from ``case.*`` events.

Views hold sealed digests, never clear petitioner data, so two nodes that
hold the same events hold identical views whether or not the clear values
were released to them; the API resolves digests when a person reads a case.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from xinfang.core.entities import require
from xinfang.core.migrations import Migration

ENTITY = "case"
VIEW_TABLES = ("cases", "case_petitioners", "case_history", "case_deadlines")


def _schema(db) -> None:
    db.executescript("""
    create table cases (
        id text primary key, area text not null, status text not null,
        channel text not null, headcount integer not null, category text not null,
        kind text not null, request text not null, received text not null,
        author text not null, registered_key text not null,
        collective integer not null, repeat_of text, first_petition integer not null,
        unit text, leader text, handler text, forwarded_to text, rating text,
        fields text not null, facts text not null, updated text not null
    );
    create index cases_status on cases (status);
    create index cases_area on cases (area);
    create table case_petitioners (
        case_id text not null, ord integer not null,
        name_seal text, id_seal text, phone_seal text, address_seal text,
        id_tag text, representative integer not null,
        primary key (case_id, ord)
    );
    create index case_petitioners_tag on case_petitioners (id_tag);
    create table case_history (
        case_id text not null, ord integer not null, order_key text not null,
        event_id text not null, step text not null, label text not null, date text not null,
        author text not null, operator text not null, status text not null, details text not null,
        primary key (case_id, ord)
    );
    create table case_deadlines (
        case_id text not null, kind text not null, label text not null, start text not null,
        due text not null, met_on text, obligation integer not null,
        primary key (case_id, kind)
    );
    create index case_deadlines_due on case_deadlines (due);
    """)


MIGRATIONS = (Migration("0001_case_views", _schema),)


def _json(value: Any) -> str:
    """Deterministic JSON for view columns: values already passed the event codec."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def load(db, case_id: str) -> dict[str, Any] | None:
    cursor = db.execute("select * from cases where id = ?", [case_id])
    row = cursor.fetchone()
    if row is None:
        return None
    case = dict(zip([d[0] for d in cursor.description], row))
    case["facts"] = json.loads(case["facts"])
    case["fields"] = json.loads(case["fields"])
    return case


def history(db, case_id: str) -> list[dict[str, Any]]:
    rows = db.execute("select step, date, details from case_history where case_id = ? "
                      "order by ord", [case_id]).fetchall()
    return [{**json.loads(details), "step": step, "date": date} for step, date, details in rows]


def guard_view(db, registry, case_id: str) -> dict[str, Any] | None:
    """What a lifecycle guard sees: the case, its facts and its deadlines."""
    case = load(db, case_id)
    if case is None:
        return None
    policy = registry.deadline_policy(ENTITY)
    deadlines = policy.deadlines({**case, "history": history(db, case_id)})
    case["deadlines"] = {kind: {"start": d.start, "due": d.due, "met_on": d.met_on}
                         for kind, d in deadlines.items()}
    case["max_extension"] = policy.max_extension
    return case


def apply(ctx, event) -> None:
    if event.type == "case.register":
        _register(ctx, event)
    else:
        _step(ctx, event, event.type.removeprefix("case."))


def reset(ctx, case_id: str) -> None:
    tags = [r[0] for r in ctx.db.conn.execute(
        "select distinct id_tag from case_petitioners where case_id = ? and id_tag is not null",
        [case_id])]
    for table in VIEW_TABLES:
        key = "id" if table == "cases" else "case_id"
        ctx.db.conn.execute(f"delete from {table} where {key} = ?", [case_id])
    if tags:  # cases linked through the cleared petitioners are relinked without them
        marks = ",".join("?" * len(tags))
        for (other,) in ctx.db.conn.execute(
                f"select distinct case_id from case_petitioners where id_tag in ({marks})",
                tags).fetchall():
            update_repeat_flags(ctx, other)


def _register(ctx, event) -> None:
    db, body = ctx.db.conn, event.body
    require(db.execute("select 1 from cases where id = ?", [event.entity_id]).fetchone() is None,
            f"case {event.entity_id} is already registered; a second registration is kept "
            "as a conflict")
    threshold = ctx.registry.setting("case.collective_threshold", 5)
    collective_channels = ctx.registry.setting("case.collective_channels", ("visit",))
    db.execute(
        "insert into cases (id, area, status, channel, headcount, category, kind, request, "
        "received, author, registered_key, collective, repeat_of, first_petition, fields, facts, "
        "updated) values (?,?,?,?,?,?,?,?,?,?,?,?,null,1,?,?,?)",
        [event.entity_id, event.area, "registered", body["channel"], body["headcount"],
         body["category"], body["kind"], body["request"], body["received"], event.author,
         event.order_key,
         int(body["channel"] in collective_channels and body["headcount"] >= threshold),
         _json(body.get("fields", {})),
         _json({}), body["received"]])
    for ord_, person in enumerate(body["petitioners"]):
        db.execute(
            "insert into case_petitioners (case_id, ord, name_seal, id_seal, phone_seal, "
            "address_seal, id_tag, representative) values (?,?,?,?,?,?,?,?)",
            [event.entity_id, ord_, person.get("name"), person.get("id_number"),
             person.get("phone"), person.get("address"), person.get("id_tag"),
             int(bool(person.get("representative")))])
    _record(ctx, event, "register", "登记", body["received"], "registered",
            {"by": body.get("by", "")})


def _step(ctx, event, step_name: str) -> None:
    view = guard_view(ctx.db, ctx.registry, event.entity_id)
    require(view is not None, f"step {step_name} for case {event.entity_id}, which this node "
                              "has no registration for")
    lifecycle = ctx.registry.lifecycle(ENTITY)
    values = dict(event.body.get("values", {}))
    step = lifecycle.check(view, step_name, values)
    status = step.target_for(view["status"], values)
    facts = view["facts"]
    if status == "accepted" and view["status"] != "accepted" and step_name != "accept":
        # 责令重新办理 opens a new round of handling: its extension and rating start afresh
        for earlier in ("extend", "answer", "close", "rate"):
            facts.pop(earlier, None)
    facts[step_name] = values
    columns = {"status": status, "facts": _json(facts), "updated": values["date"]}
    if step_name == "accept":
        columns.update({k: values.get(k) for k in ("unit", "leader", "handler") if values.get(k)})
    elif step_name == "forward":
        columns["forwarded_to"] = values.get("to_area") or values.get("unit")
        if values.get("unit"):
            columns["unit"] = values["unit"]
    elif step_name == "rate":
        columns["rating"] = values["rating"]
    assignments = ", ".join(f"{name} = ?" for name in columns)
    ctx.db.conn.execute(f"update cases set {assignments} where id = ?",
                        [*columns.values(), event.entity_id])
    _record(ctx, event, step_name, step.label, values["date"], status,
            {**values, "by": event.body.get("by", "")})


def _record(ctx, event, step: str, label: str, date: str, status: str, details: dict) -> None:
    db = ctx.db.conn
    (count,) = db.execute("select count(*) from case_history where case_id = ?",
                          [event.entity_id]).fetchone()
    db.execute(
        "insert into case_history (case_id, ord, order_key, event_id, step, label, date, author, "
        "operator, status, details) values (?,?,?,?,?,?,?,?,?,?,?)",
        [event.entity_id, count, event.order_key, event.id, step, label, date, event.author,
         details.pop("by", ""), status, _json(details)])
    _store_deadlines(ctx, event.entity_id)


def _store_deadlines(ctx, case_id: str) -> None:
    case = load(ctx.db, case_id)
    policy = ctx.registry.deadline_policy(ENTITY)
    deadlines = policy.deadlines({**case, "history": history(ctx.db, case_id)})
    db = ctx.db.conn
    db.execute("delete from case_deadlines where case_id = ?", [case_id])
    for d in deadlines.values():
        db.execute("insert into case_deadlines (case_id, kind, label, start, due, met_on, "
                   "obligation) values (?,?,?,?,?,?,?)",
                   [case_id, d.kind, d.label, d.start, d.due, d.met_on, int(d.obligation)])


def update_repeat_flags(ctx, case_id: str) -> None:
    """重复访 / 初信初访 for ``case_id`` and every case sharing a petitioner with it.

    A case repeats the most recent earlier case (by received date, then id)
    with a common ID-number tag and the same category within the window. It is
    recomputed for the whole group because an earlier case may arrive later.
    """
    db = ctx.db.conn
    window = int(ctx.registry.setting("case.repeat_window_days", 365))
    related = {case_id} | {row[0] for row in db.execute(
        "select distinct p2.case_id from case_petitioners p1 join case_petitioners p2 "
        "on p1.id_tag = p2.id_tag where p1.case_id = ? and p1.id_tag is not null", [case_id])}
    for current in sorted(related):
        row = db.execute("select category, received from cases where id = ?", [current]).fetchone()
        if row is None:
            continue
        category, received = row
        earliest = (dt.date.fromisoformat(received) - dt.timedelta(days=window)).isoformat()
        earlier = db.execute(
            "select distinct c.id from case_petitioners p1 join case_petitioners p2 "
            "on p1.id_tag = p2.id_tag and p2.case_id != p1.case_id "
            "join cases c on c.id = p2.case_id "
            "where p1.case_id = ? and p1.id_tag is not null and c.category = ? "
            "and (c.received < ? or (c.received = ? and c.id < ?)) and c.received >= ? "
            "order by c.received desc, c.id desc limit 1",
            [current, category, received, received, current, earliest]).fetchone()
        repeat_of = earlier[0] if earlier else None
        db.execute("update cases set repeat_of = ?, first_petition = ? where id = ?",
                   [repeat_of, int(repeat_of is None), current])
