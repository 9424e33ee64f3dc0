"""越级访, 来源, 主送 / 抄送 with the 退回 window in working days, 终结方式 and 回访, the
migration of a store made before them, and the indicators they give."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from conftest import COUNTY, TOWNSHIP, VILLAGE, case_input
from sync_helpers import build_tree, carry, deliver, feed, next_event, register as tree_register
from xinfang.core import policy, records, verify
from xinfang.core.errors import StepRefused
from xinfang.core.node import DB_NAME, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api
from xinfang.plugins.stats import indicators as ind

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def county(make_node):
    return make_node(level="county", area=COUNTY, name="示例县信访局", root=True)


def register(node, **overrides) -> str:
    return api.register_case(node, case_input(**overrides), today=TODAY)


def step(node, case_id, name, **values) -> str:
    return api.take_step(node, case_id, name, values, today=TODAY)


def deadline(node, case_id, kind):
    found = {d["kind"]: d for d in api.get_case(node, case_id, reveal=False).deadlines}
    return found.get(kind)


# -- 越级访 and 来源 at registration ----------------------------------------------

def test_registration_records_level_gone_to_and_source_with_their_labels(county):
    case_id = register(county, area=VILLAGE, went_to="省", source="国家信访信息系统转办")
    case = api.get_case(county, case_id, reveal=False)
    assert (case.went_to, case.source, case.skipped_level) == ("省", "国家信访信息系统转办", True)


def test_level_defaults_to_the_registering_office_and_source_to_self_or_handed_down(make_node):
    township = make_node(level="township", area=TOWNSHIP, name="示例镇信访办")
    own = api.get_case(township, register(township, area=VILLAGE), reveal=False)
    assert (own.went_to, own.source, own.skipped_level) == ("乡镇", "群众自行", False)
    handed = api.get_case(township, register(township, channel="上级转交办"), reveal=False)
    assert handed.source == "上级交办"


@pytest.mark.parametrize("area, went_to, skipped", [
    (VILLAGE, "村", False), (VILLAGE, "乡镇", False), (VILLAGE, "县", True),
    (VILLAGE, "京", True), (TOWNSHIP, "县", False), (TOWNSHIP, "市", True),
    (COUNTY, "市", False), (COUNTY, "省", True), (COUNTY, "京", True),
])
def test_level_skipping_is_two_or_more_levels_above_the_cases_area(county, area, went_to,
                                                                     skipped):
    case = api.get_case(county, register(county, area=area, went_to=went_to), reveal=False)
    assert case.skipped_level is skipped


def test_a_visit_counts_one_batch_and_its_headcount_a_letter_one_case(county):
    people = [api.PetitionerInput(f"赵某{n}") for n in "甲乙丙丁戊戌"]
    visit = api.get_case(county, register(county, petitioners=people, headcount=30),
                         reveal=False)
    assert (visit.counted_in, visit.batches, visit.person_visits, visit.collective) == (
        "batch", 1, 30, True)
    letter = api.get_case(county, register(county, channel="来信"), reveal=False)
    assert (letter.counted_in, letter.batches, letter.person_visits) == ("case", 0, 0)


# -- 主送 / 抄送 and the 退回 window -----------------------------------------------

def test_lead_and_copied_units_each_have_their_deadline(county):
    case_id = register(county, received="2026-03-05")
    step(county, case_id, "forward", date="2026-03-06", mode="交办", unit="县人社局",
         copied="县住建局、县自然资源局")
    case = api.get_case(county, case_id, reveal=False)
    assert (case.unit, case.copied) == ("县人社局", "县住建局、县自然资源局")
    # the lead has the statutory 15 days to decide from the forward
    assert deadline(county, case_id, "decide")["due"] == "2026-03-21"
    # each copied unit the policy's 30 days by default: 03-06 + 30 = 04-05
    for unit in ("县住建局", "县自然资源局"):
        assert deadline(county, case_id, f"copied:{unit}")["due"] == "2026-04-05"
    policy.set_policy(county, "case.copied_days", "10")
    assert deadline(county, case_id, "copied:县住建局")["due"] == "2026-03-16"
    step(county, case_id, "accept", date="2026-03-09")
    step(county, case_id, "answer", date="2026-04-01", outcome="support")
    assert deadline(county, case_id, "copied:县住建局")["met_on"] == "2026-04-01"


def test_objection_window_is_five_working_days_over_weekends_and_the_policy_calendar(county):
    case_id = register(county, received="2026-03-05")
    step(county, case_id, "forward", date="2026-03-06", mode="转送", unit="县人社局")
    # Friday 03-06: Mon 09, Tue 10, Wed 11, Thu 12, Fri 13
    assert deadline(county, case_id, "objection_window")["due"] == "2026-03-13"
    policy.set_policy(county, "case.holidays", "2026-03-10")
    # Tue 10 a holiday: 09, 11, 12, 13, Mon 16
    assert deadline(county, case_id, "objection_window")["due"] == "2026-03-16"
    policy.set_policy(county, "case.extra_workdays", "2026-03-07")
    # Saturday 07 a working day (调休): 07, 09, 11, 12, 13
    assert deadline(county, case_id, "objection_window")["due"] == "2026-03-13"


def test_objection_within_the_window_sends_the_case_back_to_the_forwarding_office(county):
    case_id = register(county, received="2026-03-05")
    step(county, case_id, "forward", date="2026-03-06", mode="转送", unit="县人社局",
         copied="县住建局")
    step(county, case_id, "object", date="2026-03-13", reason="不属本单位职责")
    case = api.get_case(county, case_id, reveal=False)
    assert (case.status, case.forwarded_to, case.copied) == ("registered", None, None)
    assert deadline(county, case_id, "copied:县住建局") is None
    assert deadline(county, case_id, "objection_window")["met_on"] == "2026-03-13"
    # the forwarding office has the case again: 15 days from the objection to forward it
    assert deadline(county, case_id, "dispatch")["due"] == "2026-03-28"
    assert verify.rebuild(county, check_only=True).consistent


def test_objection_after_the_window_is_refused_when_authored(county):
    case_id = register(county, received="2026-03-05")
    step(county, case_id, "forward", date="2026-03-06", mode="转送", unit="县人社局")
    with pytest.raises(StepRefused, match="5 个工作日|2026-03-13"):
        step(county, case_id, "object", date="2026-03-16", reason="不属本单位职责")
    assert api.get_case(county, case_id, reveal=False).status == "forwarded"


def _assigned_to_the_village(tree, tmp_path) -> str:
    case_id = tree_register(tree.township, area=tree.village.info.area, received="2026-03-05")
    step(tree.township, case_id, "forward", date="2026-03-06", mode="交办",
         to_area=tree.village.info.area)
    carry(tree.township, tree.village, tmp_path)
    tree_register(tree.village, serial=2)  # the village's feed has an event to follow
    return case_id


def _objection(node, case_id, date):
    return next_event(node, type="case.object", entity_id=case_id, area=node.info.area,
                      body={"values": {"date": date, "reason": "不属本村事项"}, "by": "测试员"})


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_late_objection_signed_by_hand_is_kept_as_a_conflict_on_arrival(tmp_path, via):
    tree = build_tree(tmp_path / "tree", villages=1)
    try:
        case_id = _assigned_to_the_village(tree, tmp_path)
        with pytest.raises(StepRefused):
            step(tree.village, case_id, "object", date="2026-03-16", reason="不属本村事项")
        late = _objection(tree.village, case_id, "2026-03-16")
        applied, refused = deliver(tree.village, tree.township, [*feed(tree.village), late],
                                   via, tmp_path)
        assert (applied, refused) == (2, {})
        case = api.get_case(tree.township, case_id, reveal=False)
        assert case.status == "forwarded"
        kept = records.conflicts(tree.township, "case", case_id)
        assert [(c["event_id"], c["type"]) for c in kept] == [(late.id, "case.object")]
        assert "2026-03-13" in kept[0]["reason"]
    finally:
        tree.close()


def test_an_objection_in_time_from_the_body_assigned_to_is_folded(tmp_path):
    tree = build_tree(tmp_path / "tree", villages=1)
    try:
        case_id = _assigned_to_the_village(tree, tmp_path)
        in_time = _objection(tree.village, case_id, "2026-03-12")
        assert deliver(tree.village, tree.township, [*feed(tree.village), in_time], "bundle",
                       tmp_path) == (2, {})
        assert api.get_case(tree.township, case_id, reveal=False).status == "registered"
    finally:
        tree.close()


def test_only_the_body_forwarded_to_may_object(county):
    case_id = register(county, area=VILLAGE, received="2026-03-05")
    step(county, case_id, "forward", date="2026-03-06", mode="交办", to_area=TOWNSHIP)
    with pytest.raises(StepRefused, match=TOWNSHIP):
        step(county, case_id, "object", date="2026-03-09", reason="不属本单位职责")


# -- 终结方式 and 回访 -------------------------------------------------------------

def test_ending_and_follow_up_are_recorded_after_closing(county):
    case_id = register(county, received="2026-03-05")
    with pytest.raises(StepRefused, match="回访"):
        step(county, case_id, "follow_up", date="2026-03-06", result="x", ceased="是")
    step(county, case_id, "accept", date="2026-03-06")
    step(county, case_id, "answer", date="2026-03-20", outcome="support")
    step(county, case_id, "close", date="2026-03-21", ending="协议化解")
    step(county, case_id, "follow_up", date="2026-04-21", result="工资已补发", ceased="否")
    step(county, case_id, "follow_up", date="2026-05-21", result="未再信访", ceased="是")
    case = api.get_case(county, case_id)
    assert case.ending == "协议化解"
    assert case.follow_up == {"date": "2026-05-21", "result": "未再信访", "ceased": True}
    assert case.status == "closed"
    assert [h["step"] for h in case.history][-2:] == ["follow_up", "follow_up"]


# -- a store made before these fields ---------------------------------------------

def test_a_store_made_before_migrates_and_rebuilds_to_the_same_views(tmp_path):
    home = tmp_path / "old"
    node = Node.init(home, level="county", area=COUNTY, name="示例县信访局", root=True,
                     pm=get_plugin_manager(()))
    node.operator = "测试员"
    case_id = register(node, received="2026-03-05")
    step(node, case_id, "forward", date="2026-03-06", mode="转送", unit="县人社局")
    node.close()
    conn = sqlite3.connect(home / DB_NAME)  # as the release before left it
    with conn:
        for column in ("went_to", "skipped_level", "source", "copied", "ending",
                       "follow_up_date", "follow_up_result", "follow_up_ceased"):
            conn.execute(f"alter table cases drop column {column}")
        conn.execute("delete from case_deadlines where kind = 'objection_window'")
        conn.execute("delete from _sqlite_migrations where migration_set = 'case' and "
                     "name = '0004_case_model_additions'")
    conn.close()
    node = Node.open(home, pm=get_plugin_manager(()))
    try:
        assert deadline(node, case_id, "objection_window")["due"] == "2026-03-13"
        case = api.get_case(node, case_id, reveal=False)  # refolded from the events
        assert (case.went_to, case.source, case.skipped_level) == ("县", "群众自行", False)
        assert verify.rebuild(node, check_only=True).consistent
    finally:
        node.close()


# -- the indicators ---------------------------------------------------------------

def test_indicators_of_level_skipping_source_ceasing_and_the_lead_unit(county):
    a = register(county, area=VILLAGE, went_to="县", source="群众自行", headcount=3,
                 received="2026-03-02")
    b = register(county, area=VILLAGE, went_to="省", source="上级交办", headcount=2,
                 received="2026-03-03")
    c = register(county, area=TOWNSHIP, went_to="京", source="国家信访信息系统转办",
                 headcount=6, received="2026-03-04")
    d = register(county, area=COUNTY, went_to="市", source="督办", received="2026-03-05")
    register(county, area=COUNTY, went_to="京", category="涉法涉诉", headcount=4,
             received="2026-03-05")  # left out of every figure
    for case_id, ceased in ((a, "是"), (b, "否")):
        step(county, case_id, "accept", date="2026-03-06")
        step(county, case_id, "answer", date="2026-03-19", outcome="support")
        step(county, case_id, "close", date="2026-03-20", ending="依法终结")
        step(county, case_id, "follow_up", date="2026-03-25", result="回访", ceased=ceased)
    step(county, c, "forward", date="2026-03-06", mode="交办", unit="县人社局")
    step(county, c, "accept", date="2026-03-08")
    step(county, c, "answer", date="2026-03-30", outcome="explain")
    step(county, d, "forward", date="2026-03-06", mode="交办", unit="县住建局")
    step(county, d, "accept", date="2026-03-07")  # answer due 05-06, never answered
    cases = ind.load_cases(county, COUNTY)

    def value(name, start="2026-03-01", end="2026-03-31"):
        return next(i for i in ind.INDICATORS if i.name == name).value(
            cases, start, end, "2026-11-22")

    assert value("skipped_level") == 3                       # a (村→县), b, c
    assert (value("to_province"), value("to_province_people")) == (1, 2)
    assert (value("to_capital"), value("to_capital_people")) == (1, 6)  # the 涉法涉诉 left out
    assert [value(f"source_{s}") for s in ("self", "higher", "national", "supervision")] == [
        1, 1, 1, 1]
    ceased = value("ceased_rate")
    assert (ceased.numerator, ceased.denominator) == (1, 2)  # a ceased, b did not
    lead = value("lead_on_time_closure")
    assert (lead.numerator, lead.denominator) == (1, 1)      # c answered 03-30, due 05-07
    may = value("lead_on_time_closure", "2026-05-01", "2026-05-31")
    assert (may.numerator, may.denominator) == (0, 1)        # d due 05-06, unmet


# -- the commands -----------------------------------------------------------------

def test_cli_help_shows_the_new_fields_in_chinese(invoke):
    assert invoke("init", "--level", "county", "--area", COUNTY, "--name", "示例县信访局",
                  "--root").exit_code == 0
    shown = {args: invoke("case", *args, "--help").output for args in (
        ("register",), ("forward",), ("object",), ("close",), ("follow-up",))}
    assert "--went-to" in shown[("register",)] and "走访层级" in shown[("register",)]
    assert "国家信访信息系统转办" in shown[("register",)] and "来源" in shown[("register",)]
    assert "--copied" in shown[("forward",)] and "抄送单位" in shown[("forward",)]
    assert "主送" in shown[("forward",)]
    assert "退回理由" in shown[("object",)]
    assert "终结方式" in shown[("close",)] and "协议化解" in shown[("close",)]
    assert "是否息访" in shown[("follow-up",)] and "回访结果" in shown[("follow-up",)]


def test_cli_registers_with_level_and_source_and_shows_them(invoke):
    assert invoke("init", "--level", "county", "--area", COUNTY, "--name", "示例县信访局",
                  "--root").exit_code == 0
    result = invoke("case", "register", "-p", "name=赵某甲", "--channel", "来访",
                    "--category", "劳动社保", "--request", "请求追讨拖欠工资", "--received",
                    "2026-03-05", "--area", VILLAGE, "--went-to", "京", "--source", "督办",
                    "--json")
    assert result.exit_code == 0, result.output
    import json
    data = json.loads(result.output)
    assert (data["went_to"], data["source"], data["skipped_level"]) == ("京", "督办", True)
    bad = invoke("case", "register", "-p", "name=赵某甲", "--channel", "来访", "--category",
                 "劳动社保", "--request", "x", "--went-to", "火星")
    assert bad.exit_code != 0 and "Traceback" not in bad.output
