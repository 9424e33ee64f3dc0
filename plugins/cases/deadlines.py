"""Statutory deadlines of a 信访事项 (《信访工作条例》2022), as a policy.

A deadline policy is code a plugin offers through the case plugin's own hook
``xinfang_deadline_policies``, under a ``code`` (``name@version``); which code
governs the cases of an area is synced policy (``case.deadline_policy``). A
local rule (一般案件一个月, 大案两个月) subclasses ``StatutoryPolicy``,
overrides ``days`` or ``days_for`` and takes a code of its own; the county
then sets it in force for its area.
Days are calendar days: the law does not settle this (docs/domain.md), so a
policy that counts working days overrides ``add_days``. The one deadline the
law gives in working days, the receiving body's 5 working days to object that
a forwarded matter is not its own (退回), is counted by ``add_working_days``
over the working-day calendar of synced policy (``case.holidays``,
``case.extra_workdays``; weekends only by default), which the fold hands in
with the case (``case["calendar"]``), never from a clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Mapping

import attrs

from xinfang.core.i18n import N_

#: msgids: the view keeps them as they are (views do not depend on the language)
#: and the case API shows them translated
LABELS = {
    "dispatch": N_("deadline to transfer or assign"),
    "decide": N_("deadline to decide on acceptance"),
    "answer": N_("deadline to handle and answer"),
    "review_window": N_("window to request a review"),
    "review": N_("deadline to answer the review"),
    "rereview_window": N_("window to request a re-review"),
    "rereview": N_("deadline to answer the re-review"),
    "objection_window": N_("window for the receiving body to object (退回)"),
    "copied": N_("deadline of a copied unit (抄送)"),
}
#: windows bound the petitioner or open a right, not an office's duty: never overdue.
WINDOWS = frozenset({"review_window", "rereview_window", "objection_window"})
#: a copied unit's deadline is kept under ``copied:<unit>``, one per unit
COPIED = "copied"
#: working days the receiving body has to object (《信访工作条例》)
OBJECTION_WORKING_DAYS = 5
#: default days a copied unit (抄送) has to send its part to the lead unit (policy)
COPIED_DAYS = 30


#: how the copied units of a forward are written and kept: 单位甲、单位乙 (commas too)
SEPARATOR = "、"  # i18n: identifier
_MARKS = ("，", ",", ";", "；")  # i18n: identifier


def copied_units(text: str | None) -> list[str]:
    """The copied units of a forward, in the order given, each once."""
    text = text or ""
    for mark in _MARKS:
        text = text.replace(mark, SEPARATOR)
    return list(dict.fromkeys(u.strip() for u in text.split(SEPARATOR) if u.strip()))


def working_day(day: dt.date, calendar: Mapping[str, Any] | None) -> bool:
    """Monday to Friday unless a holiday of the calendar; a weekend day the calendar
    names as an extra working day (调休) is one."""
    iso = day.isoformat()
    calendar = calendar or {}
    if iso in (calendar.get("workdays") or ()):
        return True
    return day.weekday() < 5 and iso not in (calendar.get("holidays") or ())


def add_working_days(start: str, days: int, calendar: Mapping[str, Any] | None) -> str:
    """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
    day = dt.date.fromisoformat(start)
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if working_day(day, calendar):
            left -= 1
    return day.isoformat()


@functools.lru_cache(maxsize=8192)
def calendar_days_after(start: str, days: int) -> str:
    """The day ``days`` calendar days after ``start`` (the fold asks the same few
    dates over and over: every step of every case recomputes its deadlines)."""
    return (dt.date.fromisoformat(start) + dt.timedelta(days=days)).isoformat()


STATUTORY_CODE = "statutory@1"
STATUTORY_DAYS = {
    "dispatch": 15, "decide": 15, "answer": 60, "review_window": 30, "review": 30,
    "rereview_window": 30, "rereview": 30,
}


@attrs.frozen
class Deadline:
    kind: str
    label: str
    start: str
    due: str
    met_on: str | None = None

    @property
    def obligation(self) -> bool:
        return self.kind not in WINDOWS


@attrs.frozen
class StatutoryPolicy:
    code: str = STATUTORY_CODE
    name: str = N_("Regulations on Petition Work (2022)")
    days: Mapping[str, int] = attrs.field(factory=lambda: dict(STATUTORY_DAYS))
    max_extension: int = 30

    def days_for(self, kind: str, case: Mapping[str, Any]) -> int:
        return self.days[kind]

    def add_days(self, start: str, days: int) -> str:
        return calendar_days_after(start, days)

    def deadlines(self, case: Mapping[str, Any]) -> dict[str, Deadline]:
        """Every deadline of ``case``, from its received date and its history."""
        found: dict[str, Deadline] = {}

        def start(kind: str, date: str) -> None:
            found[kind] = Deadline(kind, LABELS[kind], date,
                                   self.add_days(date, self.days_for(kind, case)))

        def meet(kind: str, date: str) -> None:
            deadline = found.get(kind)
            if deadline is not None and deadline.met_on is None:
                found[kind] = Deadline(kind, deadline.label, deadline.start, deadline.due, date)

        def copied() -> list[str]:
            return [kind for kind in found if kind.startswith(COPIED + ":")]

        def forwarded(entry: Mapping[str, Any]) -> None:
            """主送 has the statutory deadlines (decide from the forward, answer from
            acceptance); each 抄送 unit the policy's days; the receiving body its window
            of working days to object."""
            date = entry["date"]
            for kind in copied():
                del found[kind]
            found["objection_window"] = Deadline(
                "objection_window", LABELS["objection_window"], date,
                add_working_days(date, OBJECTION_WORKING_DAYS, case.get("calendar")))
            days = int(case.get("copied_days") or COPIED_DAYS)
            for unit in copied_units(entry.get("copied")):
                found[f"{COPIED}:{unit}"] = Deadline(f"{COPIED}:{unit}", LABELS[COPIED], date,
                                                     self.add_days(date, days))

        start("dispatch", case["received"])
        start("decide", case["received"])
        for entry in case["history"]:
            step, date = entry["step"], entry["date"]
            if step == "forward":
                meet("dispatch", date)
                if found["decide"].met_on is None:
                    start("decide", date)
                forwarded(entry)
            elif step == "object":  # 退回: the forward is void; the forwarding office again
                meet("objection_window", date)
                for kind in copied():
                    del found[kind]
                start("dispatch", date)
                start("decide", date)
            elif step in ("accept", "reject", "refuse"):
                meet("dispatch", date)
                meet("decide", date)
                found.pop("objection_window", None)  # decided: nothing left to object to
                if step == "accept":
                    start("answer", date)
            elif step == "extend" and "answer" in found:
                found["answer"] = attrs.evolve(
                    found["answer"], due=self.add_days(found["answer"].due, entry["days"]))
            elif step == "answer":
                meet("answer", date)
                for kind in copied():
                    meet(kind, date)
                start("review_window", date)
            elif step == "request_review":
                meet("review_window", date)
                start("review", date)
            elif step == "answer_review":
                meet("review", date)
                if entry.get("outcome") == "redo":
                    start("answer", date)
                else:
                    start("rereview_window", date)
            elif step == "request_rereview":
                meet("rereview_window", date)
                start("rereview", date)
            elif step == "answer_rereview":
                meet("rereview", date)
        return found
