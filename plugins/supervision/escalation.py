"""Escalation: an overdue case or order rises one level per span of days overdue.

The fold keeps one row per obligation an office owes (``supervision_items``):
a case's deadlines as the case plugin stores them (``case_deadlines``, the
office's duties only), and each order's 回复. Every row carries its due
date, the day it was met, the area that owes it and the span ``every`` of
the policy ``supervision.escalate_days`` in force there: all from events
and synced policy, so every node holds the same rows. The clock enters only
when the list is read: as of a day, an obligation unmet ``d`` days past due
has risen ``d // every`` levels, and it is on the list of every office from
the one that owes it up that many levels. So a township's case 5 days
overdue (with the default 5) is on the county's list too, and a village's
case reaches the county after 10.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable

import attrs

from xinfang.core import areas
from xinfang.core.i18n import N_, _
from xinfang.core.policy import PolicyKey

TABLE = "supervision_items"
KEY = "supervision.escalate_days"
POLICY = PolicyKey(
    KEY, N_("days overdue after which a case or order rises one level (督办升级)"), 5,
    kind="int", minimum=1,
    help=N_("an obligation unmet this many days past its due date rises to the parent "
            "office's supervision list, and one level further for each such span"),
    entities=("case",))


@attrs.frozen
class Obligation:
    """One duty an office owes, as the fold stores it."""

    ref: str
    obligation: str
    kind: str  # "case" | "order"
    area: str
    label: str
    due: str
    met_on: str | None


def store(ctx, obligations: Iterable[Obligation]) -> None:
    obligations = list(obligations)
    for item in obligations:
        ctx.db.conn.execute(
            f"insert or replace into {TABLE} (entity_id, obligation, entity, area, label, due, "
            "met_on, every) values (?,?,?,?,?,?,?,?)",
            [item.ref, item.obligation, item.kind, item.area, item.label, item.due,
             item.met_on, int(ctx.policy(KEY, item.area))])


def forget(ctx, kind: str, ref: str) -> None:
    ctx.db.conn.execute(f"delete from {TABLE} where entity = ? and entity_id = ?", [kind, ref])


def store_case(ctx, case_id: str) -> None:
    """The case's obligations as its deadlines now stand (the case plugin's view)."""
    forget(ctx, "case", case_id)
    store(ctx, [Obligation(case_id, kind, "case", area, label, due, met_on)
                for kind, label, due, met_on, area in ctx.db.conn.execute(
                    "select d.kind, d.label, d.due, d.met_on, c.area from case_deadlines d "
                    "join cases c on c.id = d.case_id where d.case_id = ? and d.obligation = 1",
                    [case_id])])


# -- reading the list ------------------------------------------------------------------


@attrs.frozen
class Item:
    """One line of an office's supervision list, as of a day."""

    kind: str
    ref: str
    obligation: str
    label: str
    area: str
    due: str
    met_on: str | None
    days_overdue: int
    #: the levels it has risen, and the area of the highest office it has reached
    risen: int
    reached: str
    status: str
    #: for a case its 包案领导; for an order the cases it names and what it requires
    leader: str = ""
    cases: tuple[str, ...] = ()
    required: str = ""
    issuer_area: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def depth(area: str) -> int:
    return areas.VALID_LENGTHS.index(len(area))


def days_overdue(due: str, met_on: str | None, as_of: dt.date) -> int:
    """Days past ``due`` an obligation is still unmet on ``as_of`` (0: not overdue)."""
    day = as_of.isoformat()
    if due >= day or (met_on is not None and met_on <= day):
        return 0
    return (as_of - dt.date.fromisoformat(due)).days


def reached_area(area: str, risen: int, top: str) -> str:
    """The area ``risen`` levels above ``area``, no higher than ``top``."""
    level = max(depth(area) - risen, depth(top))
    return area[:areas.VALID_LENGTHS[level]]


def items(node, as_of: dt.date, area: str, everything: bool = False) -> list[Item]:
    """The supervision list of the office of ``area`` on ``as_of``.

    On it: the overdue obligations of its own area, and those of areas below
    that have risen far enough to reach it; the open orders addressed to it
    or issued by it. ``everything`` lists every overdue obligation and open
    order below, risen or not.
    """
    top = node.info.area
    found = []
    for row in node.db.query(
            "select i.*, o.status as order_status, o.cases, o.required, o.issuer_area, "
            "c.status as case_status, c.leader from supervision_items i "
            "left join supervision_orders o on i.entity = 'order' and o.id = i.entity_id "
            "left join cases c on i.entity = 'case' and c.id = i.entity_id "
            "where i.area like ? || '%' order by i.due, i.entity_id, i.obligation", [area]):
        item = _item(node, row, as_of, top)
        if item is None:
            continue
        distance = depth(item.area) - depth(area)
        own_order = item.kind == "order" and (distance == 0 or item.issuer_area == area)
        if everything or distance <= item.risen or own_order:
            found.append(item)
    found.sort(key=lambda i: (-i.days_overdue, i.due, i.kind, i.ref))
    return found


def _item(node, row: dict[str, Any], as_of: dt.date, top: str) -> Item | None:
    days = days_overdue(row["due"], row["met_on"], as_of)
    if row["entity"] == "order":
        status = row["order_status"]
        if status is None or status == "closed":
            return None
        label = node.registry.lifecycle("order").label(status)
    else:
        status = row["case_status"]
        states = node.registry.lifecycle("case").states
        if status is None or days == 0 or not states[status].open:
            return None
        label = states[status].label
    risen = days // row["every"]
    # the view keeps a deadline's label as its msgid: shown in the reader's language
    return Item(row["entity"], row["entity_id"], row["obligation"], _(row["label"]), row["area"],
                row["due"], row["met_on"], days, risen, reached_area(row["area"], risen, top),
                label, row.get("leader") or "", tuple(json.loads(row["cases"] or "[]")),
                row.get("required") or "", row.get("issuer_area") or "")
