"""The case views: what the kernel's fold of ``case.*`` events adds for cases.

The kernel (``xinfang.core.kernel``) creates the ``cases`` row, checks each
step, keeps facts, history and conflicts. This module adds what only the
case plugin knows: sealed petitioners, 集体访, 重复访 / 初信初访, the columns
steps set (unit, leader, rating …) and the deadlines of the policy in force.

Views hold sealed digests, never clear petitioner data, so two nodes that
hold the same events hold identical views whether or not the clear values
were released to them; the API resolves digests when a person reads a case.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlite_utils.migrations import Migrations

from xinfang.core import areas, record_fold
from xinfang.core.errors import Hold, PluginError, StepRefused
from xinfang.core.i18n import N_

from .deadlines import SEPARATOR, copied_units
from .vocab import WENT_TO_ORDER

ENTITY = "case"
VIEW_TABLES = ("cases", "case_petitioners", "case_deadlines", "case_tags")
MIGRATIONS = Migrations("case")
#: the policy keys the case fold reads; a change re-folds the cases under it
POLICY_KEYS = ("case.collective_threshold", "case.collective_channels",
               "case.repeat_window_days", "case.deadline_policy", "case.holidays",
               "case.extra_workdays", "case.copied_days")


@MIGRATIONS(name="0001_case_views")
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




@MIGRATIONS(name="0002_kernel_history")
def _kernel_history(db) -> None:
    """History moved to the kernel's ``entity_history``; the kernel names its columns."""
    db.execute("drop table case_history")
    db.execute("alter table cases rename column registered_key to created_key")


@MIGRATIONS(name="0003_case_tags")
def _case_tags(db) -> None:
    """Every 同人 tag of a petitioner: its registration's own ``id_tag`` and the
    jurisdiction tags the root adds (``case.tag``); 重复访 matches on any of them.

    Filled here from the registrations already folded (a log of an earlier
    release holds no ``case.tag``), so the views stay what a rebuild gives.
    """
    db.executescript("""
    create table case_tags (
        case_id text not null, ord integer not null, kind text not null, tag text not null,
        primary key (case_id, ord, kind, tag)
    );
    create index case_tags_tag on case_tags (tag);
    insert into case_tags (case_id, ord, kind, tag)
        select case_id, ord, 'own', id_tag from case_petitioners where id_tag is not null;
    """)


@MIGRATIONS(name="0004_case_model_additions")
def _model_additions(db) -> None:
    """越级访 (``went_to``, ``skipped_level``), 来源 (``source``), 抄送 (``copied``),
    终结方式 (``ending``) and the latest 回访 (``follow_up_*``).

    Cases registered before have none of them (the columns stay empty, as a
    rebuild leaves them); the node re-folds once all migrations are in, so the
    deadlines the new rules add (the objection window of a forwarded case)
    are what a rebuild gives.
    """
    for column, kind in (("went_to", "text"), ("skipped_level", "integer"), ("source", "text"),
                         ("copied", "text"), ("ending", "text"), ("follow_up_date", "text"),
                         ("follow_up_result", "text"), ("follow_up_ceased", "integer")):
        db.execute(f"alter table cases add column {column} {kind}")
    db.execute("insert into meta (key, value) values ('refold_needed', '1') "
               "on conflict (key) do update set value = excluded.value")


@MIGRATIONS(name="0005_leader_since")
def _leader_since(db) -> None:
    """The date the 包案领导 took the case, for 包案 counts by period."""
    db.execute("alter table cases add column leader_since text")
    db.execute("insert into meta (key, value) values ('refold_needed', '1') "
               "on conflict (key) do update set value = excluded.value")


#: ``case_tags.kind``: the registering node's own tag, or one the root added
OWN, JURISDICTION = "own", "jurisdiction"


def deadline_policy(ctx, area: str):
    """The deadline policy code in force at ``area``, or hold: never fold differently."""
    code = ctx.policy("case.deadline_policy", area)
    policies = ctx.registry.extras.get("case.deadline_policies")
    if policies is None:
        policies = {}
        for found in ctx.registry.pm.hook.xinfang_deadline_policies():
            for offered in found or ():
                if offered.code in policies:
                    raise PluginError(N_("deadline policy code “{code}” is offered twice; "
                                         "give each rule a code of its own"), code=offered.code)
                policies[offered.code] = offered
        ctx.registry.extras["case.deadline_policies"] = policies
    policy = policies.get(code)
    if policy is None:
        raise Hold(N_("deadline policy {code} is not installed on this node; install the plugin "
                      "that offers it, then open the node again"), code=code)
    return policy


def _deadlines(ctx, case: dict[str, Any]):
    area = case["area"]
    policy = deadline_policy(ctx, area)
    history = record_fold.history_of(ctx, ENTITY, case["id"])
    calendar = {"holidays": ctx.policy("case.holidays", area),
                "workdays": ctx.policy("case.extra_workdays", area)}
    return policy, policy.deadlines({**case, "history": history, "calendar": calendar,
                                     "copied_days": ctx.policy("case.copied_days", area)})


def _deadlines_now(ctx, case: dict[str, Any]):
    """The deadlines of the case as it stands: while a page folds, those ``after``
    computed for the step that brought it here (once per step), else computed."""
    found = ctx.recall(("case.deadlines", case["id"]))
    return found if found is not None else _deadlines(ctx, case)


def skipped_level(area: str, went_to: str | None) -> int | None:
    """越级: the petitioner went two or more levels above the level of the case's area
    (问题属地), skipping both its own level and the one above; None when not recorded."""
    if went_to not in WENT_TO_ORDER:
        return None
    own = next(level.name for level in areas.LEVELS.values() if level.digits == len(area))
    return int(WENT_TO_ORDER.index(went_to) - WENT_TO_ORDER.index(own) >= 2)


def guard_view(ctx, view: dict[str, Any]) -> None:
    """Guards see the deadlines (by kind) and the longest extension allowed."""
    policy, deadlines = _deadlines_now(ctx, view)
    view["deadlines"] = {kind: {"start": d.start, "due": d.due, "met_on": d.met_on}
                         for kind, d in deadlines.items()}
    view["max_extension"] = policy.max_extension


def on_create(ctx, event, row: dict[str, Any]) -> None:
    body = event.body
    threshold = ctx.policy("case.collective_threshold", event.area)
    channels = ctx.policy("case.collective_channels", event.area)
    row.update(collective=int(body["channel"] in channels and body["headcount"] >= threshold),
               repeat_of=None, first_petition=1,
               skipped_level=skipped_level(event.area, body.get("went_to")))
    for ord_, person in enumerate(body["petitioners"]):
        ctx.db.conn.execute(
            "insert into case_petitioners (case_id, ord, name_seal, id_seal, phone_seal, "
            "address_seal, id_tag, representative) values (?,?,?,?,?,?,?,?)",
            [event.entity_id, ord_, person.get("name"), person.get("id_number"),
             person.get("phone"), person.get("address"), person.get("id_tag"),
             int(bool(person.get("representative")))])
        if person.get("id_tag"):
            ctx.db.conn.execute("insert or ignore into case_tags (case_id, ord, kind, tag) "
                                "values (?,?,?,?)", [event.entity_id, ord_, OWN, person["id_tag"]])


def on_step(ctx, event, view, step, values: dict[str, Any], changes: dict[str, Any]) -> None:
    facts = view["facts"]
    if changes["status"] == "accepted" and view["status"] != "accepted" and step.name != "accept":
        # 责令重新办理 opens a new round of handling: its extension and rating start afresh
        for earlier in ("extend", "answer", "close", "rate"):
            facts.pop(earlier, None)
    if values.get("leader") and values["leader"] != view.get("leader"):
        # 包案: a leader named by any step (受理, or a plugin's own step) owns the case
        # from that step's date; naming the same leader again keeps the first date
        changes.update(leader=values["leader"], leader_since=values.get("date"))
    if step.name == "accept":
        changes.update({k: values[k] for k in ("unit", "handler") if values.get(k)})
    elif step.name == "forward":
        changes["forwarded_to"] = values.get("to_area") or values.get("unit")
        changes["copied"] = SEPARATOR.join(copied_units(values.get("copied"))) or None
        if values.get("unit"):
            changes["unit"] = values["unit"]
    elif step.name == "object":  # 退回: back to the forwarding office, the forward void
        changes.update(forwarded_to=None, copied=None)
        facts.pop("forward", None)
    elif step.name in ("close", "finalize") and values.get("ending"):
        changes["ending"] = values["ending"]
    elif step.name == "follow_up":
        changes.update(follow_up_date=values["date"], follow_up_result=values["result"],
                       follow_up_ceased=int(values["ceased"]))
    elif step.name == "rate":
        changes["rating"] = values["rating"]
    elif step.name == "tag":
        add_jurisdiction_tags(ctx, event.entity_id, values["tags"])


def add_jurisdiction_tags(ctx, case_id: str, text: str) -> None:
    """Fold a ``case.tag``: the root's tags of petitioners the registration lists."""
    from .tags import TAG, decode

    db = ctx.db.conn
    (count,) = db.execute("select count(*) from case_petitioners where case_id = ?",
                          [case_id]).fetchone()
    pairs = decode(text) or []
    beyond = [ord_ for ord_, _ in pairs if ord_ >= count]
    if beyond:  # a conflict, kept: the root tagged by a registration this log does not hold
        raise StepRefused(N_("{step} names petitioner {number}, but the registration lists "
                             "{count}"), step=TAG.label, number=beyond[0] + 1, count=count)
    db.executemany("insert or ignore into case_tags (case_id, ord, kind, tag) values (?,?,?,?)",
                   [[case_id, ord_, JURISDICTION, tag] for ord_, tag in pairs])


def after(ctx, event, case: dict[str, Any]) -> None:
    """Store the deadlines the policy in force gives the case as it now stands: once
    for a case's events of a page (``FoldContext.defer``), and kept for the guards of
    its next step (``FoldContext.remember``)."""
    case_id = case["id"]
    found = _deadlines(ctx, case)
    ctx.remember(("case.deadlines", case_id), found)
    ctx.defer(("case_deadlines", case_id), lambda: _store_deadlines(ctx, case_id, found[1]))


def _store_deadlines(ctx, case_id: str, deadlines) -> None:
    db = ctx.db.conn
    db.execute("delete from case_deadlines where case_id = ?", [case_id])
    db.executemany("insert into case_deadlines (case_id, kind, label, start, due, met_on, "
                   "obligation) values (?,?,?,?,?,?,?)",
                   [[case_id, d.kind, d.label, d.start, d.due, d.met_on, int(d.obligation)]
                    for d in deadlines.values()])


def reset(ctx, case_id: str) -> None:
    """The kernel removed the case row and history; remove the rest, relink repeats."""
    tags = [r[0] for r in ctx.db.conn.execute(
        "select distinct tag from case_tags where case_id = ?", [case_id])]
    for table in ("case_petitioners", "case_deadlines", "case_tags"):
        ctx.db.conn.execute(f"delete from {table} where case_id = ?", [case_id])
    if tags:  # cases linked through the cleared petitioners are relinked without them
        marks = ",".join("?" * len(tags))
        for (other,) in ctx.db.conn.execute(
                f"select distinct case_id from case_tags where tag in ({marks})",
                tags).fetchall():
            update_repeat_flags(ctx, other)


def update_repeat_flags(ctx, case_id: str) -> None:
    """重复访 / 初信初访 for ``case_id`` and every case sharing a petitioner with it.

    A case repeats the most recent earlier case (by received date, then id)
    with a common ID-number tag (``case_tags``: the registering node's own, or a
    jurisdiction tag of the root) and the same category within the window. It
    is recomputed for the whole group because an earlier case, or a tag that
    links one, may arrive later.
    """
    db = ctx.db.conn
    related = {case_id} | {row[0] for row in db.execute(
        "select distinct t2.case_id from case_tags t1 join case_tags t2 "
        "on t1.tag = t2.tag where t1.case_id = ?", [case_id])}
    for current in sorted(related):
        row = db.execute("select category, received, area, repeat_of, first_petition from cases "
                         "where id = ?", [current]).fetchone()
        if row is None:
            continue
        category, received, area, was, first = row
        window = int(ctx.policy("case.repeat_window_days", area))
        earliest = (dt.date.fromisoformat(received) - dt.timedelta(days=window)).isoformat()
        earlier = db.execute(
            "select distinct c.id from case_tags t1 join case_tags t2 "
            "on t1.tag = t2.tag and t2.case_id != t1.case_id "
            "join cases c on c.id = t2.case_id "
            "where t1.case_id = ? and c.category = ? "
            "and (c.received < ? or (c.received = ? and c.id < ?)) and c.received >= ? "
            "order by c.received desc, c.id desc limit 1",
            [current, category, received, received, current, earliest]).fetchone()
        repeat_of = earlier[0] if earlier else None
        if (was, first) != (repeat_of, int(repeat_of is None)):  # most often nothing moves
            db.execute("update cases set repeat_of = ?, first_petition = ? where id = ?",
                       [repeat_of, int(repeat_of is None), current])


def row_additions(registry, row: dict[str, Any]) -> dict[str, Any]:
    """越级访, 来源, 抄送, 终结方式, 回访 and the counting unit of a case row, for reading."""
    label = registry.label
    visit = row["channel"] == "visit"
    skipped = row.get("skipped_level")
    follow_up = None
    if row.get("follow_up_date"):
        follow_up = {"date": row["follow_up_date"], "result": row["follow_up_result"],
                     "ceased": bool(row["follow_up_ceased"])}
    return dict(
        went_to=label("case.went_to", row["went_to"]) if row.get("went_to") else None,
        skipped_level=None if skipped is None else bool(skipped),
        source=label("case.source", row["source"]) if row.get("source") else None,
        copied=row.get("copied"),
        ending=label("case.ending", row["ending"]) if row.get("ending") else None,
        follow_up=follow_up, counted_in="batch" if visit else "case", batches=int(visit),
        person_visits=row["headcount"] if visit else 0)
