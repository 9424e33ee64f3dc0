"""The 信访事项 lifecycle of 《信访工作条例》(2022), as states and steps.

Guards are pure functions of the case view and the step's values, so every
node folding the same events refuses the same steps. The view a guard sees
holds ``status``, ``received``, ``facts`` (the latest values of each step
taken, by step name) and ``deadlines`` (by kind, from the deadline policy).
A guard's reason is kept in the view as a conflict reason, so it is a
``Message`` shown in the reader's language, never text in the language of the
node that folded it.

The review steps also say who may take them (``Step.authority``), from the
office the certificates name for the step before (``taken_by`` in the view):
复查 is asked of and answered by the level directly above the office that
answered, 复核 by the level above the office that answered the 复查, and 终结
is recorded by the office that answered the 复核. A village cannot review its
own answer, nor a stolen village key take the township's review.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from xinfang.core import areas
from xinfang.core.entities import ANY_OPEN, Author, Field, State, Step, level_label
from xinfang.core.i18n import Message, N_

from .deadlines import OBJECTION_WORKING_DAYS

DATE = Field("date", "日期", kind="date", help=N_("date of the step, YYYY-MM-DD (default today)"))
NOTE = Field("note", "备注")
ENDING = Field("ending", "终结方式", kind="choice", choices="case.ending",
               help=N_("how the case ended"))

STATES = [
    State("registered", "已登记"),
    State("forwarded", "已转送交办"),
    State("accepted", "办理中"),
    State("answered", "已答复"),
    State("closed", "已办结", open=False),
    State("not_accepted", "不予受理", open=False),
    State("not_reaccepted", "不再受理", open=False),
    State("review_requested", "复查中"),
    State("review_answered", "已复查答复", open=False),
    State("rereview_requested", "复核中"),
    State("rereview_answered", "已复核答复", open=False),
    State("final", "已终结", open=False),
    State("withdrawn", "已撤回", open=False),
]


def _not_before_received(view: dict[str, Any], values: dict[str, Any]) -> Message | None:
    if values.get("date") and values["date"] < view["received"]:
        return Message(N_("date {date} is before the case was received ({received})"),
                       date=values["date"], received=view["received"])
    if values.get("date") and values["date"] < view["updated"]:
        return Message(N_("date {date} is before the case's last step ({updated}); steps are "
                          "recorded in the order they happened"),
                       date=values["date"], updated=view["updated"])
    return None


def _guarded(*checks):
    def guard(view: dict[str, Any], values: dict[str, Any]) -> Message | None:
        for check in (_not_before_received, *checks):
            reason = check(view, values)
            if reason:
                return reason
        return None
    return guard


def _label(step: str) -> str:
    """The label of a step of this lifecycle (looked up when a guard runs)."""
    return next(s.label for s in STEPS if s.name == step)


def _once(step: str):
    def check(view, values):
        if step in view["facts"]:
            return Message(N_("{step} has already been recorded for this case ({date})"),
                           step=_label(step), date=view["facts"][step]["date"])
        return None
    return check


def _extension_allowed(view, values):
    limit = view["max_extension"]
    if values.get("days", 0) > limit:
        return Message(N_("an extension is at most {limit} days; {asked} were asked"),
                       limit=limit, asked=values["days"])
    due = view["deadlines"].get("answer", {}).get("due")
    if due and values["date"] > due:
        return Message(N_("the answer deadline {due} has passed; an extension must be decided "
                          "before it"), due=due)
    return None


def _within_window(window: str, step: str, earlier: str):
    """``step`` asked after the ``window`` that ``earlier`` (a step) opened."""
    def check(view, values):
        deadline = view["deadlines"].get(window) or {}
        due = deadline.get("due")
        if due and values["date"] > due:
            days = (dt.date.fromisoformat(due) - dt.date.fromisoformat(deadline["start"])).days
            return Message(N_("{step} was asked on {date}, after its window closed on {due} "
                              "({days} days after {earlier} {start}); under the regulations "
                              "it is not accepted"),
                           step=_label(step), date=values["date"], due=due, days=days,
                           earlier=_label(earlier), start=deadline["start"])
        return None
    return check


def _objection_window(view, values):
    """退回 within the receiving body's working days after the forward; later the matter
    is its own (the window is in the view's deadlines, from the synced calendar)."""
    window = view["deadlines"].get("objection_window") or {}
    due = window.get("due")
    if due and values.get("date") and values["date"] > due:
        return Message(N_("{step} on {date} is after the {days} working days the receiving "
                          "body has to object ({start} to {due}); the matter is its own now"),
                       step=_label("object"), date=values["date"], days=OBJECTION_WORKING_DAYS,
                       start=window["start"], due=due)
    return None


#: 回访 follows 办结 (closed); a case that goes on to 复查 keeps the 回访 it had
AFTER_CLOSING = frozenset({"closed"})


def _forward_target(view, values):
    if not values.get("unit") and not values.get("to_area"):
        return Message(N_("say where the case goes: a unit (--unit) or an area code below "
                          "(--to-area)"))
    return None


# -- who may take a step: 复查 one level up, 复核 one more (《信访工作条例》) -----------


def _level_above(area: str) -> str | None:
    """The area of the level directly above ``area`` (a township's county …), or None."""
    shorter = [n for n in areas.VALID_LENGTHS if n < len(area)]
    return area[:shorter[-1]] if shorter else None


def _office(view, step: str) -> dict[str, str] | None:
    return view.get("taken_by", {}).get(step)


def _above_the_office_of(step: str):
    """复查 goes to the level directly above the office that answered, 复核 to the level
    above the office that answered the 复查: taken by that level and no other, so an
    office never reviews its own answer and a stolen key of a lower office cannot."""
    def authority(view: dict[str, Any], author: Author) -> Message | None:
        office = _office(view, step)
        if office is None:
            return Message(N_("no certificate here names the office that took {step}, so "
                              "the level above it is not known"), step=_label(step))
        above = _level_above(office["area"])
        if author.area != above:
            return Message(N_("it is for the level directly above the office that took "
                              "{step} ({level} {area}), that is area {above}"),
                           step=_label(step), level=level_label(office["level"]),
                           area=office["area"], above=above or "—")
        return None
    return authority


def _receiving_body(view: dict[str, Any], author: Author) -> Message | None:
    """退回 is the receiving body's: the office of the area the case was assigned to, or,
    for a unit that is no node here, the forwarding office recording the unit's answer."""
    forward = view["facts"].get("forward") or {}
    office = _office(view, "forward")
    area = forward.get("to_area") or (office or {}).get("area")
    if area is None or author.area != area:
        return Message(N_("it is for the body the case was forwarded to (area {area})"),
                       area=area or "—")
    return None


def _the_office_of(step: str):
    """终结 is recorded by the office whose 复核 answer made the case final."""
    def authority(view: dict[str, Any], author: Author) -> Message | None:
        office = _office(view, step)
        if office is None or author.area != office["area"]:
            return Message(N_("it is for the office that took {step} ({area})"),
                           step=_label(step), area=office["area"] if office else "—")
        return None
    return authority


STEPS = [
    Step("forward", "转送交办", {"registered", "forwarded"}, "forwarded", (
        DATE, Field("mode", "方式", kind="choice", choices="case.forward_mode", required=True),
        Field("unit", "责任单位", help=N_("the lead unit (主送)")),
        Field("to_area", "交办至区划", help=N_("area code below this node")),
        Field("copied", "抄送单位", help=N_("copied units (抄送), separated by 、 or commas; "
                                          "each has the policy's days to answer the lead unit")),
        NOTE), guard=_guarded(_forward_target)),
    Step("object", "退回", {"forwarded"}, "registered", (
        DATE, Field("reason", "退回理由", required=True,
                    help=N_("why the matter is not the receiving body's own"))),
        guard=_guarded(_objection_window), authority=_receiving_body),
    Step("accept", "受理", {"registered", "forwarded"}, "accepted", (
        DATE, Field("unit", "责任单位"), Field("leader", "包案领导"), Field("handler", "办理人"),
        NOTE), guard=_guarded()),
    Step("reject", "不予受理", {"registered", "forwarded"}, "not_accepted", (
        DATE, Field("reason", "理由", required=True),
        Field("legal_channel", "法定途径", kind="choice", choices="case.legal_channel",
              required=True)), guard=_guarded()),
    Step("refuse", "不再受理", {"registered", "forwarded"}, "not_reaccepted", (
        DATE, Field("reason", "理由", required=True), Field("earlier", "原信访事项编号")),
        guard=_guarded()),
    Step("extend", "延期", {"accepted"}, None, (
        DATE, Field("days", "延期天数", kind="int", required=True, minimum=1),
        Field("reason", "延期理由", required=True)),
        guard=_guarded(_once("extend"), _extension_allowed)),
    Step("answer", "答复", {"accepted"}, "answered", (
        DATE, Field("outcome", "处理意见", kind="choice", choices="case.answer_outcome",
                    required=True), Field("text", "答复内容")), guard=_guarded()),
    Step("close", "办结", {"answered"}, "closed", (DATE, ENDING, NOTE), guard=_guarded()),
    Step("rate", "满意度评价", {"answered", "closed"}, None, (
        DATE, Field("rating", "评价", kind="choice", choices="case.rating", required=True)),
        guard=_guarded(_once("rate"))),
    Step("request_review", "复查申请", {"answered", "closed"}, "review_requested", (
        DATE, Field("reason", "申请理由")),
        guard=_guarded(_within_window("review_window", "request_review", "answer")),
        authority=_above_the_office_of("answer")),
    Step("answer_review", "复查答复", {"review_requested"}, "review_answered", (
        DATE, Field("outcome", "复查意见", kind="choice", choices="case.review_outcome",
                    required=True), Field("text", "复查意见书")),
        guard=_guarded(), retarget=lambda v: "accepted" if v.get("outcome") == "redo" else None,
        authority=_above_the_office_of("answer")),
    Step("request_rereview", "复核申请", {"review_answered"}, "rereview_requested", (
        DATE, Field("reason", "申请理由")),
        guard=_guarded(_within_window("rereview_window", "request_rereview", "answer_review")),
        authority=_above_the_office_of("answer_review")),
    Step("answer_rereview", "复核答复", {"rereview_requested"}, "rereview_answered", (
        DATE, Field("outcome", "复核意见", kind="choice", choices="case.review_outcome",
                    required=True), Field("text", "复核意见书")), guard=_guarded(),
        authority=_above_the_office_of("answer_review")),
    Step("finalize", "终结", {"rereview_answered"}, "final", (DATE, ENDING, NOTE),
         guard=_guarded(),
         authority=_the_office_of("answer_rereview")),
    Step("withdraw", "撤回", {ANY_OPEN}, "withdrawn", (
        DATE, Field("reason", "撤回理由")), guard=_guarded()),
]

#: 回访 after 办结: a step on the ended case that moves no state (it may be repeated, the
#: latest counting), with its date, result and whether petitioning ceased (是否息访); a
#: real step, not a note, because a person records it and it belongs in the history
FOLLOW_UP = Step("follow_up", "回访", AFTER_CLOSING, None, (
    Field("date", "回访日期", kind="date", required=True,
          help=N_("date of the follow-up visit, YYYY-MM-DD")),
    Field("result", "回访结果", required=True),
    Field("ceased", "是否息访", kind="bool", required=True,
          help=N_("whether the petitioner has stopped petitioning (是/否)"))),
    guard=_guarded())
