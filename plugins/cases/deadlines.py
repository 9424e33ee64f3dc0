"""Statutory deadlines of a 信访事项 (《信访工作条例》2022), as a policy.

A deadline policy is code a plugin offers through the case plugin's own hook
``xinfang_deadline_policies``, under a ``code`` (``name@version``); which code
governs the cases of an area is synced policy (``case.deadline_policy``). A
local rule (一般案件一个月, 大案两个月) subclasses ``StatutoryPolicy``,
overrides ``days`` or ``days_for`` and takes a code of its own; the county
then sets it in force for its area.
Days are calendar days: the law does not settle this (docs/domain.md), so a
policy that counts working days overrides ``add_days``.
"""

from __future__ import annotations

import datetime as dt
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
}
#: windows bound the petitioner, not the office: they are never overdue.
WINDOWS = frozenset({"review_window", "rereview_window"})

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
        return (dt.date.fromisoformat(start) + dt.timedelta(days=days)).isoformat()

    def deadlines(self, case: Mapping[str, Any]) -> dict[str, Deadline]:
        """Every deadline of ``case``, from its received date and its history."""
        found: dict[str, Deadline] = {}

        def start(kind: str, date: str) -> None:
            found[kind] = Deadline(kind, LABELS[kind], date,
                                   self.add_days(date, self.days_for(kind, case)))

        def meet(kind: str, date: str) -> None:
            if kind in found and found[kind].met_on is None:
                found[kind] = attrs.evolve(found[kind], met_on=date)

        start("dispatch", case["received"])
        start("decide", case["received"])
        for entry in case["history"]:
            step, date = entry["step"], entry["date"]
            if step == "forward":
                meet("dispatch", date)
                if found["decide"].met_on is None:
                    start("decide", date)
            elif step in ("accept", "reject", "refuse"):
                meet("dispatch", date)
                meet("decide", date)
                if step == "accept":
                    start("answer", date)
            elif step == "extend" and "answer" in found:
                found["answer"] = attrs.evolve(
                    found["answer"], due=self.add_days(found["answer"].due, entry["days"]))
            elif step == "answer":
                meet("answer", date)
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
