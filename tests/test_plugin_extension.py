"""A county's plugin (tests/plugins/hearing.py) extends the case plugin without touching it:
a lifecycle state 听证中, a case field 重大案件, a stricter deadline policy
(一般案件一个月) that governs only where the county puts it in force, and a 问题类别."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from conftest import case_input, synthetic_id
from plugins import hearing
from xinfang import hookimpl
from xinfang.core import policy
from xinfang.core.errors import InvalidInput, StepRefused
from xinfang.plugins.cases import api
from xinfang.plugins.cases.deadlines import STATUTORY_DAYS, StatutoryPolicy

TODAY = dt.date(2026, 11, 22)
INIT = ("init", "--level", "village", "--area", "431202101201", "--name", "测试村", "--root")
LOCAL_RULE = ("policy", "set", "case.deadline_policy", hearing.ONE_MONTH)
REGISTER = ("case", "register", "-p", f"name=赵某甲,id={synthetic_id(1)}", "--channel", "来访",
            "--category", "劳动社保", "--request", "请求追讨拖欠工资", "--received", "2026-01-05")
WITH = [hearing]


def ok(invoke, *args, plugins=WITH):
    result = invoke(*args, plugins=plugins)
    assert result.exit_code == 0, result.output
    return result


def refused(invoke, *args, plugins=WITH) -> str:
    result = invoke(*args, plugins=plugins)
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output.strip()


def register_json(invoke, *extra, plugins=WITH) -> dict:
    return json.loads(ok(invoke, *REGISTER, *extra, "--json", plugins=plugins).stdout)


def show_json(invoke, case_id, plugins=WITH) -> dict:
    return json.loads(ok(invoke, "case", "show", case_id, "--json", plugins=plugins).stdout)


def local_node(make_node, plugins=WITH, code=hearing.ONE_MONTH):
    """A node (its own root) where the local deadline rule is in force."""
    node = make_node(plugins=plugins, root=True)
    policy.set_policy(node, "case.deadline_policy", code)
    return node


def answer_deadline(shown: dict) -> tuple:
    found = {d["kind"]: d for d in shown["deadlines"]}["answer"]
    return found["start"], found["due"]


# -- the new state and its steps --------------------------------------------

def test_plugin_steps_become_case_commands_with_help(invoke):
    listing = ok(invoke, "case", "--help").stdout
    assert "hold-hearing" in listing and "end-hearing" in listing
    assert "举行听证" in listing and "听证结束" in listing
    helped = ok(invoke, "case", "hold-hearing", "--help").stdout
    assert "--place" in helped and "听证地点" in helped and "--date" in helped


def test_without_the_plugin_there_is_no_hearing_command(invoke):
    assert "hold-hearing" not in ok(invoke, "case", "--help", plugins=()).stdout
    assert invoke("case", "hold-hearing", "--help").exit_code != 0


def test_hearing_state_is_entered_and_left_through_the_cli(invoke):
    ok(invoke, *INIT)
    case_id = register_json(invoke)["id"]
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    out = ok(invoke, "case", "hold-hearing", case_id, "--date", "2026-02-01",
             "--place", "镇政府会议室").stdout
    assert out.strip() == f"{case_id}：举行听证完成，当前状态 听证中"
    shown = show_json(invoke, case_id)
    assert (shown["status"], shown["status_label"]) == ("hearing", "听证中")
    assert shown["history"][-1]["details"]["place"] == "镇政府会议室"
    assert json.loads(ok(invoke, "case", "list", "--status", "听证中", "--json").stdout)[0]["id"] \
        == case_id
    ok(invoke, "case", "end-hearing", case_id, "--date", "2026-02-05")
    assert show_json(invoke, case_id)["status_label"] == "办理中"
    ok(invoke, "case", "answer", case_id, "--date", "2026-02-06", "--outcome", "不予支持")
    assert show_json(invoke, case_id)["status_label"] == "已答复"


def test_built_in_steps_know_the_new_state(make_node):
    node = make_node(plugins=WITH)
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    api.take_step(node, case_id, "hold_hearing", {"date": "2026-02-01"}, today=TODAY)
    # no answer during a hearing; the refusal names the new state and its steps
    with pytest.raises(StepRefused, match=r"不能对听证中 \(hearing\) 的信访事项办理答复 \(answer\)；"
                                          "当前可办理：") as caught:
        api.take_step(node, case_id, "answer", {"date": "2026-02-02", "outcome": "support"},
                      today=TODAY)
    allowed = str(caught.value).split("当前可办理：")[1]
    # 撤回 and 领导包案 (the supervision plugin's) apply to every open state, this plugin's too
    assert set(allowed.split("、")) == {"撤回(withdraw)", "听证结束(end_hearing)",
                                       "领导包案(baoan)"}
    api.take_step(node, case_id, "withdraw", {"date": "2026-02-03"}, today=TODAY)
    assert api.get_case(node, case_id).status == "withdrawn"


def test_hearing_from_a_wrong_state_is_refused_naming_it(invoke):
    ok(invoke, *INIT)
    case_id = register_json(invoke)["id"]
    message = refused(invoke, "case", "hold-hearing", case_id, "--date", "2026-01-06")
    assert message.startswith("错误：不能对已登记 (registered) 的信访事项办理举行听证 "
                              "(hold_hearing)；当前可办理：")
    assert "受理(accept)" in message
    message = refused(invoke, "case", "end-hearing", case_id, "--date", "2026-01-06")
    assert "已登记 (registered)" in message


def test_an_open_case_in_hearing_still_counts_as_overdue(make_node):
    node = make_node(plugins=WITH)
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    api.take_step(node, case_id, "hold_hearing", {"date": "2026-02-01"}, today=TODAY)
    assert [c.id for c in api.list_cases(node, api.CaseFilter(overdue=True), today=TODAY)] \
        == [case_id]


# -- the new case field ---------------------------------------------------------

def test_case_field_is_recorded_and_shown(invoke):
    ok(invoke, *INIT)
    case_id = register_json(invoke, "--field", "major=是")["id"]
    shown = show_json(invoke, case_id)
    assert shown["fields"] == {"major": True}
    text = ok(invoke, "case", "show", case_id).stdout
    assert re.search(r"^  (major|重大案件) (True|是)$", text, re.M), text
    plain = register_json(invoke, "--field", "major=否")["id"]
    assert show_json(invoke, plain)["fields"] == {"major": False}
    unset = register_json(invoke)["id"]
    assert show_json(invoke, unset)["fields"] == {}


def test_case_field_with_a_value_that_is_not_yes_or_no_is_refused(invoke):
    ok(invoke, *INIT)
    message = refused(invoke, *REGISTER, "--field", "major=也许")
    assert message == "错误：重大案件 (major) 须为 是 或 否，收到“也许”"


def test_case_field_is_refused_without_the_plugin(invoke):
    ok(invoke, *INIT, plugins=())
    message = refused(invoke, *REGISTER, "--field", "major=是", plugins=())
    assert message == "错误：信访事项的扩展字段 没有这些项：major；可填：无"
    assert json.loads(ok(invoke, "case", "list", "--json", plugins=()).stdout) == []


def test_api_case_field_through_the_plugin(make_node):
    node = make_node(plugins=WITH)
    case_id = api.register_case(node, case_input(fields={"major": "yes"}), today=TODAY)
    assert api.get_case(node, case_id).fields == {"major": True}
    with pytest.raises(InvalidInput, match="没有这些项：grade；可填：重大案件\\(major\\)"):
        api.register_case(node, case_input(fields={"grade": "A"}), today=TODAY)


# -- the stricter deadline policy ---------------------------------------------

def test_answer_deadline_is_one_month_under_the_local_rule(invoke):
    ok(invoke, *INIT)
    ok(invoke, *LOCAL_RULE)
    case_id = register_json(invoke)["id"]
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    assert answer_deadline(show_json(invoke, case_id)) == ("2026-01-10", "2026-02-09")   # 30 d


def test_major_case_keeps_two_months_under_the_local_rule(invoke):
    ok(invoke, *INIT)
    ok(invoke, *LOCAL_RULE)
    case_id = register_json(invoke, "--field", "major=是")["id"]
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    assert answer_deadline(show_json(invoke, case_id)) == ("2026-01-10", "2026-03-11")   # 60 d


def test_with_the_plugin_but_not_its_rule_in_force_the_statutory_60_days_apply(invoke):
    ok(invoke, *INIT)
    case_id = register_json(invoke)["id"]
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    assert answer_deadline(show_json(invoke, case_id)) == ("2026-01-10", "2026-03-11")


def test_without_the_plugin_the_statutory_60_days_apply(invoke):
    ok(invoke, *INIT, plugins=())
    case_id = register_json(invoke, plugins=())["id"]
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10", plugins=())
    assert answer_deadline(show_json(invoke, case_id, plugins=())) == ("2026-01-10", "2026-03-11")


def test_local_policy_keeps_the_other_statutory_deadlines_and_the_extension(make_node):
    node = local_node(make_node)
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    api.take_step(node, case_id, "extend", {"date": "2026-01-20", "days": 30, "reason": "复杂"},
                  today=TODAY)
    api.take_step(node, case_id, "answer", {"date": "2026-03-01", "outcome": "explain"},
                  today=TODAY)
    found = {d["kind"]: (d["start"], d["due"]) for d in api.get_case(node, case_id).deadlines}
    assert found == {"dispatch": ("2026-01-05", "2026-01-20"),
                     "decide": ("2026-01-05", "2026-01-20"),
                     "answer": ("2026-01-10", "2026-03-11"),       # 30 + 30 extension
                     "review_window": ("2026-03-01", "2026-03-31")}
    other = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    api.take_step(node, other, "accept", {"date": "2026-01-10"}, today=TODAY)
    with pytest.raises(StepRefused, match="延期最多 30 天；申请了 31 天"):
        api.take_step(node, other, "extend", {"date": "2026-01-20", "days": 31, "reason": "复杂"},
                      today=TODAY)


def test_extension_guard_uses_the_local_answer_deadline(make_node):
    node = local_node(make_node)
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    # due 2026-02-09 under the local rule, so an extension on 02-10 comes too late
    with pytest.raises(StepRefused, match="办理答复期限 2026-02-09 已过"):
        api.take_step(node, case_id, "extend", {"date": "2026-02-10", "days": 10,
                                                "reason": "复杂"}, today=TODAY)


def test_local_deadline_makes_a_case_overdue_sooner(make_node):
    statutory, local = make_node(), local_node(make_node)
    for node in (statutory, local):
        case_id = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
        api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    on = dt.date(2026, 3, 1)
    assert api.list_cases(statutory, api.CaseFilter(overdue=True), today=on) == []
    assert len(api.list_cases(local, api.CaseFilter(overdue=True), today=on)) == 1


# -- the new category and the collective threshold ---------------------------------

def test_category_added_by_the_plugin_is_accepted_by_code_or_label(invoke):
    ok(invoke, *INIT)
    first = register_json(invoke, "--category", "水利工程")
    assert first["category"] == "水利工程"
    listed = json.loads(ok(invoke, "case", "list", "--category", "water", "--json").stdout)
    assert [c["id"] for c in listed] == [first["id"]]


def test_category_of_the_plugin_is_unknown_without_it(invoke):
    ok(invoke, *INIT, plugins=())
    message = refused(invoke, *REGISTER, "--category", "水利工程", plugins=())
    assert message.startswith("错误：问题类别 (category) 没有“水利工程”这一项")
    assert "劳动社保(labour)" in message


def test_collective_threshold_of_three_set_as_policy(invoke):
    ok(invoke, *INIT)
    ok(invoke, "policy", "set", "case.collective_threshold", "3")
    three = register_json(invoke, "--headcount", "3")
    two = register_json(invoke, "--headcount", "2")
    assert (three["collective"], two["collective"]) == (True, False)


class ShortReviewWindow:
    """A policy that gives the petitioner 15 days, not 30, to ask for 复查."""

    @hookimpl
    def xinfang_deadline_policies(self):
        return [StatutoryPolicy(code="review-15@1", name="复查申请十五日（测试）",
                                days={**STATUTORY_DAYS, "review_window": 15})]


def test_review_window_refusal_states_the_window_of_the_policy_in_force(make_node):
    node = local_node(make_node, [ShortReviewWindow()], "review-15@1")
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    api.take_step(node, case_id, "answer", {"date": "2026-03-01", "outcome": "explain"},
                  today=TODAY)
    with pytest.raises(StepRefused) as caught:
        api.take_step(node, case_id, "request_review", {"date": "2026-03-17"}, today=TODAY)
    message = str(caught.value)
    assert "已过申请期限 2026-03-16" in message
    # the petitioner is told the rule that applies, not the statutory 30 days
    assert "答复 2026-03-01 后 15 天" in message, message
