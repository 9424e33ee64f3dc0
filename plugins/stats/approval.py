"""The ``report`` record: a signed submission and its approval, up and down the tree.

DHIS2's data approval is the anchor: a township's 月报表 (or any report a plugin
declares ``submittable``, e.g. the ledger's ``ledger.disputes``) for a period is
上报 (submitted) to the office one level up, which 审核 (approves: the
figures are then locked) or 退回 (sends it back, with a reason); a returned
report is submitted again into the same record. 草稿 is the state of a report
not yet submitted (no record exists).

The record's id is what it reports, ``<area>-<period>-<report>`` (e.g.
``431202101-2026-11-stats.monthly``), so each area has one record per period
and report; a second submission is the ``resubmit`` step, never a second
record. That name is not the kernel's ``AREA-YEAR-SERIAL`` number, so the
entity is folded here (``_apply``) rather than by the kernel, with the
kernel's ``Lifecycle`` and ``Step(authority=…)`` deciding each step.

Who may take a step is checked on arrival, by every node folding it, from
the certificate it holds for the author: submit and resubmit only the
submitting area's own office; approve and return only the office of the
parent area (the township's county). A step that fails is kept as a
conflict, as the kernel keeps any step an office may not take; an event a
key may not sign at all (outside its area) is refused by admission.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlite_utils.migrations import Migrations

from xinfang.core import areas
from xinfang.core.entities import Author, EntityType, Field, State, Step, require
from xinfang.core.errors import InvalidEvent
from xinfang.core.i18n import N_, Message
from xinfang.core.kernel import author_of, dumps

ENTITY = "report"
TABLE = "stats_reports"
HISTORY = "stats_report_history"
#: a report's name as ``xinfang_reports`` registers it: ``plugin.report`` (stats.monthly,
#: ledger.disputes). A record may name any report of this form: a node without the
#: report's plugin holds and forwards it, and says so when asked to verify it.
REPORT_NAME = re.compile(r"\A[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
SUBMITTING = ("submit", "resubmit")
DECIDING = ("approve", "return")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
MIGRATIONS = Migrations("stats.report")


@MIGRATIONS(name="0001_report_records")
def _schema(db) -> None:
    db.executescript(f"""
    create table {TABLE} (
        id text primary key, area text not null, report text not null, period text not null,
        status text not null, submission text not null, submitted_by text not null,
        as_of text not null, figures text not null, frontier text not null,
        policy_version text not null, amendments text not null, round integer not null,
        reason text, evidence text, decided_by text, decision text
    );
    create table {HISTORY} (
        id text not null, ord integer not null, event_id text not null, step text not null,
        author text not null, operator text not null, status text not null,
        reason text, primary key (id, ord)
    );
    """)


def parent_area(area: str) -> str | None:
    """The area one level up (a township's county), or None above a province."""
    shorter = [n for n in areas.VALID_LENGTHS if n < len(area)]
    return area[:shorter[-1]] if shorter else None


def _own_office(view: dict[str, Any], author: Author) -> Any:
    if author.area != view["area"]:
        return Message(N_("only the office of area {area} itself submits its report"),
                       area=view["area"])
    return None


def _parent_office(view: dict[str, Any], author: Author) -> Any:
    parent = parent_area(view["area"])
    if author.area != parent:
        return Message(N_("only the office one level up (area {parent}) reviews the report "
                          "of area {area}"), parent=parent or "—", area=view["area"])
    return None


def _reason_given(view: dict[str, Any], values: dict[str, Any]) -> Any:
    reason = values.get("reason")
    return None if isinstance(reason, str) and reason.strip() else Message(
        N_("a report is sent back with a reason"))


REASON = Field("reason", "退回理由", required=True)
STATES = (State("draft", "草稿"), State("submitted", "已上报"),
          State("approved", "已审核", open=False), State("returned", "已退回"))
STEPS = (Step("submit", "上报", {"draft"}, "submitted", authority=_own_office),
         Step("approve", "审核通过", {"submitted"}, "approved", authority=_parent_office),
         Step("return", "退回", {"submitted"}, "returned", (REASON,), guard=_reason_given,
              authority=_parent_office),
         Step("resubmit", "重新上报", {"returned"}, "submitted", authority=_own_office))


# -- the fold --------------------------------------------------------------------


def load(db, record_id: str) -> dict[str, Any] | None:
    cursor = db.execute(f"select * from {TABLE} where id = ?", [record_id])
    row = cursor.fetchone()
    if row is None:
        return None
    record = dict(zip([c[0] for c in cursor.description], row))
    for name in ("figures", "frontier", "amendments", "evidence"):
        if record.get(name) is not None:
            record[name] = json.loads(record[name])
    return record


def _apply(ctx, event) -> None:
    db = ctx.db.conn
    step_name = event.type.removeprefix(f"{ENTITY}.")
    body = event.body
    view = load(db, event.entity_id)
    if view is None:
        view = {"id": event.entity_id, "area": event.area, "status": "draft"}
    require(event.area == view["area"],
            Message(N_("the step claims area {claimed}, not the area {area} of the report; "
                       "it is not taken"), claimed=event.area, area=view["area"]))
    lifecycle = ctx.registry.lifecycle(ENTITY)
    step = lifecycle.check(view, step_name, body, author_of(db, event.author))
    if step_name in DECIDING:
        require(body["submission"] == view["submission"],
                Message(N_("the decision names submission {named}…, but the report's current "
                           "submission is {current}…"), named=body["submission"][:16],
                        current=view["submission"][:16]))
    if step_name == "submit":
        db.execute(
            f"insert into {TABLE} (id, area, report, period, status, submission, submitted_by, "
            "as_of, figures, frontier, policy_version, amendments, round) values "
            "(?,?,?,?,?,?,?,?,?,?,?,?,1)",
            [event.entity_id, event.area, body["report"], body["period"], step.target,
             event.id, event.author, *_submitted(body)])
    elif step_name == "resubmit":
        db.execute(
            f"update {TABLE} set status = ?, submission = ?, submitted_by = ?, as_of = ?, "
            "figures = ?, frontier = ?, policy_version = ?, amendments = ?, "
            "round = round + 1, reason = null, evidence = null, decided_by = null, "
            "decision = null where id = ?",
            [step.target, event.id, event.author, *_submitted(body), event.entity_id])
    else:
        db.execute(f"update {TABLE} set status = ?, reason = ?, evidence = ?, decided_by = ?, "
                   "decision = ? where id = ?",
                   [step.target, body.get("reason"),
                    dumps(body["evidence"]) if "evidence" in body else None, event.author,
                    event.id, event.entity_id])
    (count,) = db.execute(f"select count(*) from {HISTORY} where id = ?",
                          [event.entity_id]).fetchone()
    db.execute(f"insert into {HISTORY} (id, ord, event_id, step, author, operator, status, "
               "reason) values (?,?,?,?,?,?,?,?)",
               [event.entity_id, count, event.id, step_name, event.author,
                str(body.get("by", "")), step.target, body.get("reason")])


def _submitted(body: dict[str, Any]) -> list[Any]:
    return [body["as_of"], dumps(body["figures"]), dumps(body["frontier"]),
            body["policy_version"], dumps(body.get("amendments", []))]


def _reset(ctx, record_id: str) -> None:
    ctx.db.conn.execute(f"delete from {TABLE} where id = ?", [record_id])
    ctx.db.conn.execute(f"delete from {HISTORY} where id = ?", [record_id])


REPORT_TYPE = EntityType(ENTITY, "统计报表", (TABLE, HISTORY), MIGRATIONS, apply=_apply,
                         reset=_reset, states=STATES, steps=STEPS)


# -- the shape of a report event, checked when authored and on arrival --------------

_BODY_KEYS = {
    "submit": ({"report", "period", "as_of", "figures", "frontier", "policy_version"},
               {"amendments", "by"}),
    "resubmit": ({"as_of", "figures", "frontier", "policy_version"}, {"amendments", "by"}),
    "approve": ({"submission"}, {"check", "by"}),
    "return": ({"submission", "reason"}, {"evidence", "by"}),
}


def record_id(area: str, period: str, report: str) -> str:
    return f"{area}-{period}-{report}"


def validate(event) -> None:
    """Refuse a ``report`` event that is malformed; ``InvalidEvent`` names what."""
    step = event.type.removeprefix(f"{ENTITY}.")
    if not event.type.startswith(f"{ENTITY}.") or step not in _BODY_KEYS:
        raise InvalidEvent(N_("a report record's event is report.submit, report.approve, "
                              "report.return or report.resubmit, not {type}"), type=event.type)
    body = event.body
    required, optional = _BODY_KEYS[step]
    if not isinstance(body, dict) or required - set(body) or set(body) - required - optional:
        raise InvalidEvent(N_("{type} needs exactly {keys}"), type=event.type,
                           keys=", ".join(sorted(required)))
    problem = _problem(step, event, body)
    if problem is not None:
        raise InvalidEvent(N_("{type} {id}: {problem}"), type=event.type, id=event.entity_id,
                           problem=problem)


def _problem(step: str, event, body: dict[str, Any]) -> Message | None:
    if step in DECIDING:
        if not isinstance(body["submission"], str) or not _HEX64.match(body["submission"]):
            return Message(N_("the submission it decides is named by its event id"))
        if step == "return" and not (isinstance(body["reason"], str) and body["reason"].strip()):
            return Message(N_("a report is sent back with a reason"))
        return None
    if step == "submit":
        if not (isinstance(body["report"], str) and REPORT_NAME.match(body["report"])
                and isinstance(body["period"], str)):
            return Message(N_("names no report (a report is named plugin.report, as "
                              "stats.monthly)"))
        if event.entity_id != record_id(event.area, body["period"], body["report"]):
            return Message(N_("a report record is named AREA-PERIOD-REPORT, as {example}"),
                           example=record_id(event.area, body["period"], body["report"]))
    try:
        dt.date.fromisoformat(body["as_of"])
    except (TypeError, ValueError):
        return Message(N_("its as-of date is not YYYY-MM-DD"))
    if not isinstance(body["policy_version"], str) or not _figures_ok(body["figures"]):
        return Message(N_("its figures are not rows and a total of counts and "
                          "numerator/denominator pairs"))
    frontier = body["frontier"]
    if not isinstance(frontier, list) or not all(
            isinstance(f, list) and len(f) == 3 and isinstance(f[0], str) and _HEX64.match(f[0])
            and all(type(n) is int and n >= 0 for n in f[1:]) for f in frontier):
        return Message(N_("its frontier is not a list of [author, epoch, seq]"))
    return None


def _figures_ok(figures: Any) -> bool:
    def value_ok(value: Any) -> bool:
        if type(value) is int or isinstance(value, str):
            return True
        return (isinstance(value, dict) and set(value) == {"numerator", "denominator"}
                and all(type(v) is int for v in value.values()))

    def row_ok(row: Any) -> bool:
        return isinstance(row, dict) and all(value_ok(v) for v in row.values())

    return (isinstance(figures, dict) and set(figures) == {"rows", "total"}
            and isinstance(figures["rows"], list) and all(map(row_ok, figures["rows"]))
            and row_ok(figures["total"]))


# -- the commands: ``xinfang report submit / approve / return / status`` ------------------


def add_commands(cli) -> None:
    """Add the submission commands to the kernel's ``report`` group (when it exists)."""
    group = cli.commands.get("report") if hasattr(cli, "commands") else None
    if group is None:
        return
    from .report_commands import COMMANDS

    for command in COMMANDS:
        group.add_command(command)
