"""Moving a 信访事项 through its lifecycle (《信访工作条例》2022), and the steps refused."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import TOWNSHIP, VILLAGE, case_input
from xinfang.core import verify
from xinfang.core.errors import InvalidInput, NotFound, StepRefused
from xinfang.plugins.cases import api

TODAY = dt.date(2026, 7, 1)
RECEIVED = "2026-01-05"

# The whole path, in order, with the values a clerk types.
FULL_PATH = [
    ("forward", {"date": "2026-01-08", "mode": "交办", "unit": "镇劳动保障所"}, "forwarded"),
    ("accept", {"date": "2026-01-10", "unit": "镇劳动保障所", "leader": "王某某",
                "handler": "周某某"}, "accepted"),
    ("extend", {"date": "2026-02-01", "days": 30, "reason": "需调取用工记录"}, "accepted"),
    ("answer", {"date": "2026-03-20", "outcome": "予以支持", "text": "责令补发工资"}, "answered"),
    ("close", {"date": "2026-03-22"}, "closed"),
    ("rate", {"date": "2026-03-25", "rating": "不满意"}, "closed"),
    ("request_review", {"date": "2026-04-10", "reason": "补发数额不足"}, "review_requested"),
    ("answer_review", {"date": "2026-05-01", "outcome": "维持"}, "review_answered"),
    ("request_rereview", {"date": "2026-05-20"}, "rereview_requested"),
    ("answer_rereview", {"date": "2026-06-10", "outcome": "维持"}, "rereview_answered"),
    ("finalize", {"date": "2026-06-15"}, "final"),
]
LABELS = {
    "registered": "已登记", "forwarded": "已转送交办", "accepted": "办理中", "answered": "已答复",
    "closed": "已办结", "not_accepted": "不予受理", "not_reaccepted": "不再受理",
    "review_requested": "复查中", "review_answered": "已复查答复", "rereview_requested": "复核中",
    "rereview_answered": "已复核答复", "final": "已终结", "withdrawn": "已撤回",
}

# How to reach each state from a fresh registration.
ACCEPT = ("accept", {"date": "2026-01-10"})
ANSWER = ("answer", {"date": "2026-03-01", "outcome": "support"})
REVIEW = ("request_review", {"date": "2026-03-10"})
REVIEWED = ("answer_review", {"date": "2026-03-20", "outcome": "upheld"})
REREVIEW = ("request_rereview", {"date": "2026-04-01"})
REREVIEWED = ("answer_rereview", {"date": "2026-04-10", "outcome": "upheld"})
ROUTES = {
    "registered": [],
    "forwarded": [("forward", {"date": "2026-01-08", "mode": "转送", "unit": "县人社局"})],
    "accepted": [ACCEPT],
    "answered": [ACCEPT, ANSWER],
    "closed": [ACCEPT, ANSWER, ("close", {"date": "2026-03-02"})],
    "not_accepted": [("reject", {"date": "2026-01-08", "reason": "属劳动仲裁事项",
                                 "legal_channel": "仲裁"})],
    "not_reaccepted": [("refuse", {"date": "2026-01-08", "reason": "同一事项已终结"})],
    "review_requested": [ACCEPT, ANSWER, REVIEW],
    "review_answered": [ACCEPT, ANSWER, REVIEW, REVIEWED],
    "rereview_requested": [ACCEPT, ANSWER, REVIEW, REVIEWED, REREVIEW],
    "rereview_answered": [ACCEPT, ANSWER, REVIEW, REVIEWED, REREVIEW, REREVIEWED],
    "final": [ACCEPT, ANSWER, REVIEW, REVIEWED, REREVIEW, REREVIEWED,
              ("finalize", {"date": "2026-04-15"})],
    "withdrawn": [("withdraw", {"date": "2026-01-08", "reason": "已自行协商解决"})],
}
# What the refusal message lists as allowed, in the users' words; the supervision plugin
# adds 领导包案 in every open state.
BAOAN = "、领导包案(baoan)"
FROM_INTAKE = ("转送交办(forward)、受理(accept)、不予受理(reject)、不再受理(refuse)、撤回(withdraw)"
               + BAOAN)
ALLOWED = {
    "registered": FROM_INTAKE,
    "forwarded": "转送交办(forward)、退回(object)、受理(accept)、不予受理(reject)、不再受理(refuse)、"
                 "撤回(withdraw)" + BAOAN,
    "accepted": "延期(extend)、答复(answer)、撤回(withdraw)" + BAOAN,
    "answered": "办结(close)、满意度评价(rate)、复查申请(request_review)、撤回(withdraw)" + BAOAN,
    "closed": "满意度评价(rate)、复查申请(request_review)、回访(follow_up)",
    "not_accepted": "无（已结束）",
    "not_reaccepted": "无（已结束）",
    "review_requested": "复查答复(answer_review)、撤回(withdraw)" + BAOAN,
    "review_answered": "复核申请(request_rereview)",
    "rereview_requested": "复核答复(answer_rereview)、撤回(withdraw)" + BAOAN,
    "rereview_answered": "终结(finalize)",
    "final": "无（已结束）",
    "withdrawn": "无（已结束）",
}
# Valid values for every step, so a refusal can only come from the state.
ANY_VALUES = {
    "forward": {"mode": "assign", "unit": "镇司法所"}, "accept": {}, "reject": {
        "reason": "属诉讼事项", "legal_channel": "litigation"},
    "refuse": {"reason": "重复"}, "extend": {"days": 10, "reason": "情况复杂"},
    "answer": {"outcome": "explain"}, "close": {}, "rate": {"rating": "satisfied"},
    "request_review": {}, "answer_review": {"outcome": "upheld"}, "request_rereview": {},
    "answer_rereview": {"outcome": "upheld"}, "finalize": {}, "withdraw": {},
}


def events(node) -> int:
    return node.db.execute("select count(*) from events").fetchone()[0]


def register(node, received=RECEIVED) -> str:
    return api.register_case(node, case_input(received=received), today=TODAY)


def walk(node, case_id, steps):
    for name, values in steps:
        api.take_step(node, case_id, name, dict(values), today=TODAY)


def reach(node, state: str) -> str:
    case_id = register(node)
    walk(node, case_id, ROUTES[state])
    assert api.get_case(node, case_id).status == state
    return case_id


def test_case_goes_through_every_step_to_final(node):
    case_id = register(node)
    for name, values, state in FULL_PATH:
        api.take_step(node, case_id, name, dict(values), today=TODAY)
        case = api.get_case(node, case_id)
        assert (case.status, case.status_label) == (state, LABELS[state]), name
    assert [h["step"] for h in case.history] == ["register", *(s for s, _, _ in FULL_PATH)]
    assert [h["label"] for h in case.history] == [
        "登记", "转送交办", "受理", "延期", "答复", "办结", "满意度评价", "复查申请", "复查答复",
        "复核申请", "复核答复", "终结"]
    assert [h["date"] for h in case.history[1:]] == [v["date"] for _, v, _ in FULL_PATH]
    assert (case.unit, case.leader, case.handler) == ("镇劳动保障所", "王某某", "周某某")
    assert case.rating == "不满意"
    assert case.history[4]["details"]["outcome"] == "support"
    assert case.history[3]["details"]["days"] == 30


def test_views_of_a_case_through_the_whole_lifecycle_rebuild_identically(node):
    case_id = register(node)
    walk(node, case_id, [(n, v) for n, v, _ in FULL_PATH])
    report = verify.rebuild(node, check_only=True)
    assert report.consistent, report.differences


@pytest.mark.parametrize("state", list(ROUTES))
def test_every_step_not_allowed_in_a_state_is_refused_naming_state_and_allowed_steps(node, state):
    case_id = reach(node, state)
    before = events(node)
    allowed = {s.name for s in node.registry.lifecycle("case").allowed(state)}
    refused = [name for name in ANY_VALUES if name not in allowed]
    assert refused
    for name in refused:
        with pytest.raises(StepRefused) as caught:
            api.take_step(node, case_id, name, {"date": "2026-06-20", **ANY_VALUES[name]},
                          today=TODAY)
        message = str(caught.value)
        assert f"不能对{LABELS[state]} ({state}) 的信访事项办理" in message, message
        assert message.endswith(f"当前可办理：{ALLOWED[state]}"), message
    assert events(node) == before
    assert api.get_case(node, case_id).status == state


@pytest.mark.parametrize("state, step", [
    ("registered", "answer"), ("accepted", "reject"), ("final", "rate"),
])
def test_step_from_a_wrong_state_is_refused_for_the_state_before_its_values_are_asked_for(
        node, state, step):
    # `xinfang case answer ID` on a registered case must say the case is not in handling
    # yet, not ask for --outcome first and refuse the state only after it is given.
    case_id = reach(node, state)
    with pytest.raises(StepRefused) as caught:
        api.take_step(node, case_id, step, {"date": "2026-06-20"}, today=TODAY)
    assert str(caught.value).startswith(f"不能对{LABELS[state]} ({state}) 的信访事项办理")
    assert str(caught.value).endswith(f"当前可办理：{ALLOWED[state]}")


def test_unknown_step_is_refused_listing_the_steps_allowed(node):
    case_id = reach(node, "accepted")
    with pytest.raises(StepRefused, match=r"没有名为“approve”的步骤；"
                                          r"办理中 \(accepted\) 时可办理：延期\(extend\)、答复\(answer\)"):
        api.take_step(node, case_id, "approve", {}, today=TODAY)


def test_step_on_a_case_the_node_does_not_hold_is_refused(node):
    with pytest.raises(NotFound, match="本节点没有信访事项 431202101201-2026-09999"):
        api.take_step(node, "431202101201-2026-09999", "accept", {}, today=TODAY)
    assert events(node) == 0


def test_step_value_the_step_does_not_take_is_refused(node):
    case_id = register(node)
    with pytest.raises(InvalidInput, match=r"受理\(accept\) 没有这些项：days"):
        api.take_step(node, case_id, "accept", {"date": "2026-01-06", "days": 5}, today=TODAY)
    assert events(node) == 1


# -- intake: forward, accept, reject, refuse ---------------------------------

def test_forward_needs_a_unit_or_an_area_below(node):
    case_id = register(node)
    with pytest.raises(StepRefused, match="--unit.*--to-area"):
        api.take_step(node, case_id, "forward", {"date": "2026-01-06", "mode": "交办"}, today=TODAY)
    with pytest.raises(InvalidInput, match=r"方式 \(mode\) 为必填项"):
        api.take_step(node, case_id, "forward", {"date": "2026-01-06", "unit": "镇司法所"},
                      today=TODAY)
    assert events(node) == 1


def test_township_assigns_a_case_down_to_a_village(make_node):
    township = make_node(level="township", area=TOWNSHIP, name="测试镇信访办")
    case_id = api.register_case(township, case_input(received=RECEIVED), today=TODAY)
    api.take_step(township, case_id, "forward",
                  {"date": "2026-01-06", "mode": "交办", "to_area": VILLAGE}, today=TODAY)
    case = api.get_case(township, case_id)
    assert (case.status_label, case.forwarded_to) == ("已转送交办", VILLAGE)
    # forwarded again, to a unit, then accepted there
    api.take_step(township, case_id, "forward",
                  {"date": "2026-01-07", "mode": "转送", "unit": "镇土地所"}, today=TODAY)
    api.take_step(township, case_id, "accept", {"date": "2026-01-09"}, today=TODAY)
    case = api.get_case(township, case_id)
    assert (case.status, case.forwarded_to, case.unit) == ("accepted", "镇土地所", "镇土地所")


def test_assigning_to_an_area_outside_the_jurisdiction_is_refused(make_node):
    township = make_node(level="township", area=TOWNSHIP, name="测试镇信访办")
    case_id = api.register_case(township, case_input(received=RECEIVED), today=TODAY)
    with pytest.raises(InvalidInput, match="431203101201 不在本节点辖区"):
        api.take_step(township, case_id, "forward",
                      {"date": "2026-01-06", "mode": "交办", "to_area": "431203101201"},
                      today=TODAY)
    assert api.get_case(township, case_id).status == "registered"


def test_not_accepted_keeps_the_reason_and_the_legal_channel(node):
    case_id = register(node)
    api.take_step(node, case_id, "reject", {"date": "2026-01-08", "reason": "属劳动争议仲裁事项",
                                            "legal_channel": "仲裁"}, today=TODAY)
    case = api.get_case(node, case_id)
    assert case.status_label == "不予受理"
    assert case.history[-1]["details"]["reason"] == "属劳动争议仲裁事项"
    assert case.history[-1]["details"]["legal_channel"] == "arbitration"
    # a recorded outcome, not a deletion: the case is still listed
    assert [c.id for c in api.list_cases(node, api.CaseFilter(status="不予受理"), today=TODAY)] \
        == [case_id]


@pytest.mark.parametrize("missing", ["reason", "legal_channel"])
def test_not_accepted_without_reason_or_legal_channel_is_refused(node, missing):
    case_id = register(node)
    values = {"date": "2026-01-08", "reason": "属诉讼事项", "legal_channel": "诉讼"}
    del values[missing]
    with pytest.raises(InvalidInput, match=f"\\({missing}\\) 为必填项"):
        api.take_step(node, case_id, "reject", values, today=TODAY)
    assert api.get_case(node, case_id).status == "registered"


def test_not_accepted_with_an_unknown_legal_channel_is_refused(node):
    case_id = register(node)
    with pytest.raises(InvalidInput, match="法定途径.*没有“信访”这一项.*诉讼\\(litigation\\)"):
        api.take_step(node, case_id, "reject", {"date": "2026-01-08", "reason": "x",
                                                "legal_channel": "信访"}, today=TODAY)


def test_not_reaccepted_keeps_the_reason_and_the_earlier_case(node):
    earlier = register(node, received="2026-01-02")
    case_id = register(node)
    api.take_step(node, case_id, "refuse", {"date": "2026-01-08", "reason": "同一事项已复核终结",
                                            "earlier": earlier}, today=TODAY)
    case = api.get_case(node, case_id)
    assert case.status_label == "不再受理"
    assert case.history[-1]["details"]["earlier"] == earlier
    with pytest.raises(InvalidInput, match=r"理由 \(reason\) 为必填项"):
        api.take_step(node, register(node), "refuse", {"date": "2026-01-08"}, today=TODAY)


# -- handling: extension, answer, rating --------------------------------------

def test_extension_is_allowed_once(node):
    case_id = reach(node, "accepted")
    api.take_step(node, case_id, "extend", {"date": "2026-02-01", "days": 15, "reason": "复杂"},
                  today=TODAY)
    with pytest.raises(StepRefused, match=r"本信访事项已记录过延期（2026-02-01）"):
        api.take_step(node, case_id, "extend", {"date": "2026-02-10", "days": 15,
                                                "reason": "仍需调查"}, today=TODAY)
    assert events(node) == 3


def test_extension_of_more_than_30_days_is_refused(node):
    case_id = reach(node, "accepted")
    with pytest.raises(StepRefused, match="延期最多 30 天；申请了 31 天"):
        api.take_step(node, case_id, "extend", {"date": "2026-02-01", "days": 31, "reason": "复杂"},
                      today=TODAY)
    # the refused request did not use up the one extension
    api.take_step(node, case_id, "extend", {"date": "2026-02-01", "days": 30, "reason": "复杂"},
                  today=TODAY)


@pytest.mark.parametrize("days, says", [(0, "不得小于 1"), ("两周", "须为整数")])
def test_extension_days_must_be_a_positive_number(node, days, says):
    case_id = reach(node, "accepted")
    with pytest.raises(InvalidInput, match=says):
        api.take_step(node, case_id, "extend", {"date": "2026-02-01", "days": days,
                                                "reason": "复杂"}, today=TODAY)


def test_extension_needs_a_reason(node):
    case_id = reach(node, "accepted")
    with pytest.raises(InvalidInput, match=r"延期理由 \(reason\) 为必填项"):
        api.take_step(node, case_id, "extend", {"date": "2026-02-01", "days": 10}, today=TODAY)


def test_extension_after_the_answer_deadline_passed_is_refused(node):
    case_id = reach(node, "accepted")    # accepted 2026-01-10: answer due 2026-03-11
    with pytest.raises(StepRefused, match="办理答复期限 2026-03-11 已过"):
        api.take_step(node, case_id, "extend", {"date": "2026-03-12", "days": 10,
                                                "reason": "复杂"}, today=TODAY)
    api.take_step(node, case_id, "extend", {"date": "2026-03-11", "days": 10, "reason": "复杂"},
                  today=TODAY)


def test_answer_needs_an_outcome_from_the_list(node):
    case_id = reach(node, "accepted")
    with pytest.raises(InvalidInput, match=r"处理意见 \(outcome\) 为必填项"):
        api.take_step(node, case_id, "answer", {"date": "2026-02-01"}, today=TODAY)
    with pytest.raises(InvalidInput, match="处理意见 \\(outcome\\) 没有“同意”这一项.*予以支持\\(support\\)"):
        api.take_step(node, case_id, "answer", {"date": "2026-02-01", "outcome": "同意"},
                      today=TODAY)


def test_rating_before_closing_keeps_the_state_and_is_allowed_once(node):
    case_id = reach(node, "answered")
    api.take_step(node, case_id, "rate", {"date": "2026-03-05", "rating": "基本满意"}, today=TODAY)
    case = api.get_case(node, case_id)
    assert (case.status, case.rating) == ("answered", "基本满意")
    api.take_step(node, case_id, "close", {"date": "2026-03-06"}, today=TODAY)
    with pytest.raises(StepRefused, match="已记录过满意度评价"):
        api.take_step(node, case_id, "rate", {"date": "2026-03-07", "rating": "满意"}, today=TODAY)
    assert api.get_case(node, case_id).rating == "基本满意"


def test_rating_outside_the_three_grades_is_refused(node):
    case_id = reach(node, "closed")
    with pytest.raises(InvalidInput, match="满意.*基本满意.*不满意"):
        api.take_step(node, case_id, "rate", {"date": "2026-03-05", "rating": "一般"}, today=TODAY)


# -- 复查 / 复核 ----------------------------------------------------------------

def test_review_ordering_redo_sends_the_case_back_to_handling_with_a_new_deadline(node):
    case_id = reach(node, "review_requested")       # answered 2026-03-01, review asked 03-10
    api.take_step(node, case_id, "answer_review",
                  {"date": "2026-03-20", "outcome": "责令重新办理"}, today=TODAY)
    case = api.get_case(node, case_id)
    assert (case.status, case.status_label) == ("accepted", "办理中")
    assert case.history[-1]["status"] == "accepted"
    answer = {d["kind"]: d for d in case.deadlines}["answer"]
    assert (answer["start"], answer["due"], answer["met_on"]) == ("2026-03-20", "2026-05-19", None)
    # handled again: a new answer opens a new 复查 window from the new answer
    api.take_step(node, case_id, "answer", {"date": "2026-04-15", "outcome": "予以支持"},
                  today=TODAY)
    deadlines = {d["kind"]: d for d in api.get_case(node, case_id).deadlines}
    assert deadlines["answer"]["met_on"] == "2026-04-15"
    assert (deadlines["review_window"]["start"], deadlines["review_window"]["due"]) == (
        "2026-04-15", "2026-05-15")
    api.take_step(node, case_id, "request_review", {"date": "2026-05-10"}, today=TODAY)
    assert api.get_case(node, case_id).status == "review_requested"


def test_a_new_round_after_redo_may_be_extended_again(node):
    case_id = reach(node, "accepted")
    api.take_step(node, case_id, "extend", {"date": "2026-01-20", "days": "10", "reason": "调查"},
                  today=TODAY)
    api.take_step(node, case_id, "answer", {"date": "2026-03-01", "outcome": "解释说明"},
                  today=TODAY)
    api.take_step(node, case_id, "request_review", {"date": "2026-03-10"}, today=TODAY)
    api.take_step(node, case_id, "answer_review", {"date": "2026-03-20", "outcome": "责令重新办理"},
                  today=TODAY)
    api.take_step(node, case_id, "extend", {"date": "2026-04-01", "days": "30", "reason": "重新调查"},
                  today=TODAY)
    answer = {d["kind"]: d for d in api.get_case(node, case_id).deadlines}["answer"]
    assert (answer["start"], answer["due"]) == ("2026-03-20", "2026-06-18")
    with pytest.raises(StepRefused, match="已记录过延期"):
        api.take_step(node, case_id, "extend", {"date": "2026-04-02", "days": "5", "reason": "再延"},
                      today=TODAY)


@pytest.mark.parametrize("outcome", ["维持", "变更"])
def test_review_upheld_or_changed_leaves_the_case_answered_at_review(node, outcome):
    case_id = reach(node, "review_requested")
    api.take_step(node, case_id, "answer_review", {"date": "2026-03-20", "outcome": outcome},
                  today=TODAY)
    assert api.get_case(node, case_id).status_label == "已复查答复"


@pytest.mark.parametrize("state", ["answered", "closed"])
def test_review_requested_after_its_30_day_window_is_refused_with_the_reason(node, state):
    case_id = reach(node, state)                    # answered 2026-03-01: window to 03-31
    with pytest.raises(StepRefused) as caught:
        api.take_step(node, case_id, "request_review", {"date": "2026-04-01"}, today=TODAY)
    message = str(caught.value)
    assert "复查申请于 2026-04-01 提出，已过申请期限 2026-03-31" in message
    assert "答复 2026-03-01 后 30 天" in message and "不予受理" in message
    assert api.get_case(node, case_id).status == state
    # the last day of the window is still inside it
    api.take_step(node, case_id, "request_review", {"date": "2026-03-31"}, today=TODAY)
    assert api.get_case(node, case_id).status == "review_requested"


def test_rereview_requested_after_its_30_day_window_is_refused_with_the_reason(node):
    case_id = reach(node, "review_answered")        # review answered 2026-03-20: to 04-19
    with pytest.raises(StepRefused) as caught:
        api.take_step(node, case_id, "request_rereview", {"date": "2026-04-20"}, today=TODAY)
    message = str(caught.value)
    assert "复核申请于 2026-04-20 提出，已过申请期限 2026-04-19" in message
    assert "复查答复 2026-03-20 后 30 天" in message and "不予受理" in message
    api.take_step(node, case_id, "request_rereview", {"date": "2026-04-19"}, today=TODAY)
    assert api.get_case(node, case_id).status == "rereview_requested"


def test_final_case_takes_no_further_step(node):
    case_id = reach(node, "final")
    with pytest.raises(StepRefused, match=r"已终结 \(final\) 的信访事项.*当前可办理：无（已结束）"):
        api.take_step(node, case_id, "request_review", {"date": "2026-04-20"}, today=TODAY)


# -- withdrawal ---------------------------------------------------------------

@pytest.mark.parametrize("state", ["registered", "forwarded", "accepted", "answered",
                                   "review_requested", "rereview_requested"])
def test_petitioner_withdraws_from_any_open_state(node, state):
    case_id = reach(node, state)
    api.take_step(node, case_id, "withdraw", {"date": "2026-06-20", "reason": "当事人撤回"},
                  today=TODAY)
    case = api.get_case(node, case_id)
    assert (case.status, case.status_label) == ("withdrawn", "已撤回")
    assert case.history[-1]["details"]["reason"] == "当事人撤回"


@pytest.mark.parametrize("state", ["closed", "not_accepted", "review_answered", "final",
                                   "withdrawn"])
def test_withdrawal_from_a_finished_state_is_refused(node, state):
    case_id = reach(node, state)
    with pytest.raises(StepRefused, match=f"不能对{LABELS[state]} \\({state}\\) 的信访事项办理"
                                          "撤回 \\(withdraw\\)"):
        api.take_step(node, case_id, "withdraw", {"date": "2026-06-20"}, today=TODAY)


# -- dates ------------------------------------------------------------------

@pytest.mark.parametrize("state, step", [
    ("registered", "forward"), ("registered", "accept"), ("registered", "reject"),
    ("registered", "refuse"), ("registered", "withdraw"), ("accepted", "extend"),
    ("accepted", "answer"), ("answered", "close"), ("answered", "rate"),
    ("answered", "request_review"), ("review_requested", "answer_review"),
])
def test_step_dated_before_the_case_was_received_is_refused(node, state, step):
    case_id = reach(node, state)
    before = events(node)
    with pytest.raises(StepRefused, match=r"日期 2026-01-04 早于信访事项的登记日期（2026-01-05）"):
        api.take_step(node, case_id, step, {"date": "2026-01-04", **ANY_VALUES[step]}, today=TODAY)
    assert events(node) == before


@pytest.mark.parametrize("state, step, values", [
    ("accepted", "answer", {"date": "2026-01-08", "outcome": "support"}),       # accepted 01-10
    ("answered", "request_review", {"date": "2026-02-20"}),                      # answered 03-01
])
def test_step_dated_before_the_step_it_follows_is_refused(node, state, step, values):
    # A typing error in the date would otherwise record an answer before the acceptance
    # (met_on before the deadline started) and skew 按期办结率.
    case_id = reach(node, state)
    last = api.get_case(node, case_id).history[-1]["date"]
    before = events(node)
    with pytest.raises(StepRefused, match=f"早于该信访事项上一步办理的日期（{last}）"):
        api.take_step(node, case_id, step, dict(values), today=TODAY)
    assert events(node) == before


def test_step_dated_in_the_future_is_refused(node):
    case_id = register(node)
    with pytest.raises(InvalidInput, match="2026-07-02 晚于今天"):
        api.take_step(node, case_id, "accept", {"date": "2026-07-02"}, today=TODAY)
    assert events(node) == 1


def test_step_date_defaults_to_today(node):
    case_id = register(node)
    api.take_step(node, case_id, "accept", {}, today=TODAY)
    assert api.get_case(node, case_id).history[-1]["date"] == TODAY.isoformat()
