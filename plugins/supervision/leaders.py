"""领导包案: a named leader owns a hard case until it is resolved.

包案 is a step of the case (``baoan``), added to the case lifecycle through
``xinfang_lifecycle`` exactly as a third party would add one: taken in any
open state, it keeps the state and names the leader. The case plugin keeps
the leader a step names and the date they took the case (``leader_since``),
whichever step named them (受理 names one too), so 包案 counts read the
case view alone. 包案息访率 is in the 月报表 (``stats``): of the cases a
leader took in the period, those whose latest 回访 found petitioning ceased.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from xinfang.core import areas
from xinfang.core.entities import ANY_OPEN, Field, Step
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_
from xinfang.plugins.cases import api as cases

STEP = Step("baoan", "领导包案", {ANY_OPEN}, None, (
    Field("date", "包案日期", kind="date"),
    Field("leader", "包案领导", required=True, help=N_("the leader who owns the case")),
    Field("duty", "包案内容", help=N_("what the leader takes on, e.g. 包调处、包化解"))))


def assign(node, case_id: str, leader: str, duty: str | None = None,
           date: str | None = None, today: dt.date | None = None) -> str:
    """Name the leader who owns ``case_id``; the event id."""
    if not leader or not leader.strip():
        raise InvalidInput(N_("name the leader who takes the case (--leader)"))
    given: dict[str, Any] = {"leader": leader}
    if duty:
        given["duty"] = duty
    if date:
        given["date"] = date
    return cases.take_step(node, case_id, STEP.name, given, today=today)


@attrs.frozen
class Assignment:
    case_id: str
    area: str
    leader: str
    since: str | None
    status: str
    status_label: str
    #: the case is no longer open (办结, 终结, 撤回 …)
    resolved: bool
    #: the latest 回访 found petitioning ceased
    ceased: bool

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def assignments(node, area: str | None = None, leader: str | None = None,
                open_only: bool = False) -> list[Assignment]:
    """The cases a leader owns in ``area`` (default this node's), oldest first."""
    area = areas.check_code(area) if area else node.info.area
    lifecycle = node.registry.lifecycle("case")
    sql = ("select id, area, leader, leader_since, status, follow_up_ceased from cases "
           "where leader is not null and area like ? || '%'")
    params: list[Any] = [area]
    if leader:
        sql += " and leader = ?"
        params.append(leader.strip())
    found = []
    for case_id, case_area, name, since, status, ceased in node.db.execute(
            sql + " order by leader_since, id", params).fetchall():
        state = lifecycle.states.get(status)
        resolved = state is not None and not state.open
        if open_only and resolved:
            continue
        found.append(Assignment(case_id, case_area, name, since, status,
                                lifecycle.label(status), resolved, bool(ceased)))
    return found
