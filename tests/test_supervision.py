"""督查督办, 包案 and 通报: supervision orders down and answers up, authority on arrival,
escalation of what is overdue, leaders owning cases, and the draft circular.

The fixture: the county (431202) over township 431202101 over villages
431202101201 and 431202101202. Village 1 registers two visits on 2026-11-02
and 2026-11-03, the township one on 2026-11-05. A case's office duties
(转送交办 and 受理告知) fall due 15 days after receipt: 11-17, 11-18, 11-20.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from types import SimpleNamespace

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from sync_helpers import (build_tree, carry, deliver, next_event, quarantine, register)
from xinfang.cli.main import build_cli
from xinfang.core.plugins import get_plugin_manager
from xinfang.core import i18n, policy, reports
from xinfang.core.errors import InvalidInput, NotFound, StepRefused
from xinfang.core import periods
from xinfang.plugins.stats import reports as stats
from xinfang.plugins.supervision import api, escalation, leaders, orders

ISSUED = dt.date(2026, 11, 10)
LATER = dt.date(2026, 11, 20)


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path)
    made = SimpleNamespace(county=built.county, township=built.township,
                           village=built.village, sibling=built.sibling, close=built.close,
                           first=register(built.village, 1, received="2026-11-02"),
                           second=register(built.village, 2, received="2026-11-03"),
                           own=register(built.township, 3, received="2026-11-05"))
    carry(made.village, made.township, tmp_path)
    carry(made.township, made.county, tmp_path)
    carry(made.county, made.township, tmp_path)
    carry(made.township, made.village, tmp_path)
    yield made
    made.close()


def sync_all(tree, tmp_path) -> None:
    for _ in range(2):
        carry(tree.village, tree.township, tmp_path)
        carry(tree.township, tree.county, tmp_path)
        carry(tree.county, tree.township, tmp_path)
        carry(tree.township, tree.village, tmp_path)


def order_row(node, order_id):
    return node.db.execute("select status, area, issuer_area from supervision_orders "
                           "where id = ?", [order_id]).fetchone()


def listed(node, day, area=None, everything=False):
    return {(i.kind, i.ref, i.obligation) for i in
            api.supervision_list(node, day, area, everything)}


# -- orders down, answers up ---------------------------------------------------------


def test_an_order_goes_to_the_township_holding_the_cases_and_its_answer_comes_back(
        tree, tmp_path):
    order = api.issue(tree.county, [tree.second, tree.first], "2026-11-20",
                      "请于11月20日前报告化解情况", date="2026-11-10", today=ISSUED)
    assert order.startswith("431202-2026-")  # the issuer's number
    assert order_row(tree.county, order) == ("issued", "431202101", "431202")
    carry(tree.county, tree.township, tmp_path)
    assert order_row(tree.township, order) == ("issued", "431202101", "431202")
    api.step(tree.township, order, "respond", {"result": "已约谈信访人，正在化解",
                                              "date": "2026-11-18"}, today=LATER)
    carry(tree.township, tree.county, tmp_path)
    assert order_row(tree.county, order)[0] == "responded"
    api.step(tree.county, order, "close", {"date": "2026-11-19"}, today=dt.date(2026, 11, 19))
    carry(tree.county, tree.township, tmp_path)
    assert order_row(tree.township, order)[0] == "closed"
    cases = json.loads(tree.township.db.execute(
        "select cases from supervision_orders where id = ?", [order]).fetchone()[0])
    assert cases == sorted([tree.first, tree.second])


def test_the_issuer_sends_an_answer_back_with_a_new_due_date(tree, tmp_path):
    order = api.issue(tree.county, [tree.own], "2026-11-20", "报告办理结果",
                      date="2026-11-10", today=ISSUED)
    carry(tree.county, tree.township, tmp_path)
    api.step(tree.township, order, "respond", {"result": "已答复", "date": "2026-11-15"},
             today=LATER)
    carry(tree.township, tree.county, tmp_path)
    api.step(tree.county, order, "redo", {"reason": "答复不具体", "due": "2026-11-30",
                                         "date": "2026-11-16"}, today=dt.date(2026, 11, 16))
    row = tree.county.db.execute("select due, met_on from supervision_items where entity = "
                                 "'order' and entity_id = ?", [order]).fetchone()
    assert row == ("2026-11-30", None)
    assert order_row(tree.county, order)[0] == "issued"


def test_an_order_cannot_be_issued_to_this_offices_own_area_nor_across_townships(tree):
    with pytest.raises(InvalidInput, match="431202101"):
        api.issue(tree.township, [tree.own], "2026-11-20", "报告", today=ISSUED)
    with pytest.raises(NotFound, match="431202101201-2026-99999"):
        api.issue(tree.county, ["431202101201-2026-99999"], "2026-11-20", "报告",
                  today=ISSUED)
    before = tree.county.db.execute("select count(*) from events").fetchone()
    with pytest.raises(InvalidInput):
        api.issue(tree.county, [tree.first], "2026-11-01", "报告", date="2026-11-10",
                  today=ISSUED)  # due before the order's date
    assert tree.county.db.execute("select count(*) from events").fetchone() == before


def test_a_village_neither_holds_nor_can_answer_the_townships_order(tree, tmp_path):
    """The order lies in the township's area, so it never reaches the village; one the
    village's stolen key signs for that area is refused on arrival."""
    order = api.issue(tree.county, [tree.first], "2026-11-20", "报告", date="2026-11-10",
                      today=ISSUED)
    sync_all(tree, tmp_path)
    with pytest.raises(NotFound, match=order):
        api.step(tree.village, order, "respond", {"result": "已处理"}, today=LATER)
    event = next_event(tree.village, type="order.respond", entity="order", entity_id=order,
                       area="431202101", body={"values": {"date": "2026-11-12",
                                                          "result": "已处理"}, "by": "x"})
    applied, refused = deliver(tree.village, tree.township, [event], "bundle", tmp_path)
    assert applied == 0 and event.id in refused
    assert order_row(tree.township, order)[0] == "issued"


# -- authority on arrival: events built and signed by hand ----------------------------


def issue_body(cases, due="2026-11-20"):
    return {"date": "2026-11-10", "due": due, "required": "报告", "cases": cases,
            "fields": {}, "by": "thief"}


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_stolen_village_key_cannot_issue_an_order(tree, tmp_path, via):
    """A village has no office below it: the order is refused on arrival, never folded."""
    thief = tree.village
    event = next_event(thief, type="order.issue", entity="order",
                       entity_id=f"{thief.info.area}-2026-00001", area=thief.info.area,
                       body=issue_body([tree.first]))
    applied, refused = deliver(thief, tree.township, [event], via, tmp_path)
    assert applied == 0 and "431202101201" in refused[event.id]
    assert order_row(tree.township, event.entity_id) is None


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_stolen_township_key_cannot_issue_an_order_to_a_sibling_nor_to_itself(
        tree, tmp_path, via):
    thief = tree.township
    for serial, area in ((1, "431202101"), (2, "431202102201")):
        event = next_event(thief, type="order.issue", entity="order",
                           entity_id=f"{thief.info.area}-2026-{serial:05d}", area=area,
                           body=issue_body([tree.own]))
        applied, refused = deliver(thief, tree.county, [event], via, tmp_path)
        assert applied == 0 and event.id in refused
        assert order_row(tree.county, event.entity_id) is None


def test_an_order_naming_no_case_or_unsorted_cases_is_refused_on_arrival(tree, tmp_path):
    thief = tree.township
    for serial, cases in ((1, []), (2, [tree.second, tree.first]), (3, ["x"])):
        event = next_event(thief, type="order.issue", entity="order",
                           entity_id=f"{thief.info.area}-2026-{serial:05d}",
                           area=tree.village.info.area, body=issue_body(cases))
        applied, refused = deliver(thief, tree.county, [event], "bundle", tmp_path)
        assert applied == 0 and event.id in refused


def test_a_stolen_township_key_cannot_close_the_countys_order(tree, tmp_path):
    """销号 is the issuer's: a township closing the county's order is a conflict on every
    node that folds it, and the order stays answered."""
    order = api.issue(tree.county, [tree.own], "2026-11-20", "报告", date="2026-11-10",
                      today=ISSUED)
    carry(tree.county, tree.township, tmp_path)
    api.step(tree.township, order, "respond", {"result": "已答复", "date": "2026-11-15"},
             today=LATER)
    thief = tree.township
    event = next_event(thief, type="order.close", entity="order", entity_id=order,
                       area="431202101", body={"values": {"date": "2026-11-16"}, "by": "x"})
    applied, refused = deliver(thief, tree.county, [*_pending(thief), event], "bundle",
                               tmp_path)
    assert refused == {}
    assert order_row(tree.county, order)[0] == "responded"
    reasons = [i18n.show(r) for (r,) in tree.county.db.execute(
        "select reason from conflicts where entity_id = ?", [order])]
    assert len(reasons) == 1 and "431202" in reasons[0]


def _pending(node):
    """The node's own events its parent has not had yet (its whole feed: re-sent ones are
    skipped)."""
    from sync_helpers import feed
    return feed(node)


# -- escalation ------------------------------------------------------------------------


def test_an_overdue_case_rises_one_level_each_span_of_the_policys_days(tree, tmp_path):
    """The township's own case (received 11-05) owes 受理告知 and 转送交办 by 11-20: on
    11-21 both are 1 day overdue and on the township's list only; on 11-25 (5 days, the
    default span) on the county's too."""
    own = {("case", tree.own, "decide"), ("case", tree.own, "dispatch")}
    assert listed(tree.township, "2026-11-20") & own == set()
    assert listed(tree.township, "2026-11-21") >= own
    assert listed(tree.county, "2026-11-24") & own == set()
    assert listed(tree.county, "2026-11-25") >= own
    # the village's case (due 11-17) reaches the county only after two spans: 11-27
    first = ("case", tree.first, "decide")
    assert first in listed(tree.township, "2026-11-22")
    assert first not in listed(tree.county, "2026-11-26")
    assert first in listed(tree.county, "2026-11-27")
    assert first in listed(tree.county, "2026-11-26", everything=True)


def test_a_new_escalation_span_refolds_the_cases_it_governs(tree, tmp_path):
    policy.set_policy(tree.county, escalation.KEY, "10")
    spans = {every for (every,) in tree.county.db.execute(
        "select every from supervision_items where entity = 'case'")}
    assert spans == {10}
    own = ("case", tree.own, "decide")
    assert own not in listed(tree.county, "2026-11-29")  # 9 days
    assert own in listed(tree.county, "2026-11-30")  # 10 days


def test_a_met_duty_leaves_the_list(tree, tmp_path):
    from xinfang.plugins.cases import api as cases
    cases.take_step(tree.township, tree.own, "accept", {"date": "2026-11-19"},
                    today=dt.date(2026, 11, 19))
    assert ("case", tree.own, "decide") not in listed(tree.township, "2026-11-25")


def test_an_unanswered_order_rises_from_the_addressee_to_the_issuer_and_above(tree, tmp_path):
    order = api.issue(tree.township, [tree.first], "2026-11-20", "报告", date="2026-11-10",
                      today=ISSUED)
    sync_all(tree, tmp_path)
    entry = ("order", order, "respond")
    assert entry in listed(tree.village, "2026-11-12")  # addressed to it
    assert entry in listed(tree.township, "2026-11-12")  # issued by it
    assert entry not in listed(tree.county, "2026-11-29")  # 9 days: one level, the township
    assert entry in listed(tree.county, "2026-11-30")  # 10 days: two levels


@settings(max_examples=200, deadline=None)
@given(due=st.integers(0, 60), met=st.one_of(st.none(), st.integers(0, 90)),
       first=st.integers(0, 90), later=st.integers(0, 30), every=st.integers(1, 15))
def test_an_obligation_never_falls_back_a_level_until_it_is_met(due, met, first, later, every):
    """Read on a later day, an unmet obligation has risen at least as far, and never above
    the node's own level."""
    start = dt.date(2026, 1, 1)
    due_day = (start + dt.timedelta(days=due)).isoformat()
    met_day = None if met is None else (start + dt.timedelta(days=met)).isoformat()
    one, two = start + dt.timedelta(days=first), start + dt.timedelta(days=first + later)
    d1, d2 = (escalation.days_overdue(due_day, met_day, d) for d in (one, two))
    if met_day is None or met_day > two.isoformat():
        assert d2 >= d1
    area = "431202101201"
    for d in (d1, d2):
        reached = escalation.reached_area(area, d // every, "431202")
        assert area.startswith(reached) and reached.startswith("431202")


# -- 包案 ------------------------------------------------------------------------------


def test_a_leader_owns_a_case_and_the_monthly_report_counts_it(tree, tmp_path):
    """Two cases taken by leaders in November, one followed up with petitioning ceased:
    包案件数 2, 包案息访率 1/2; the township's own case has no leader."""
    from xinfang.plugins.cases import api as cases
    day = dt.date(2026, 11, 20)
    leaders.assign(tree.village, tree.first, "示例镇副镇长甲", "包调处、包化解",
                   date="2026-11-06", today=day)
    cases.take_step(tree.village, tree.second, "accept",
                    {"date": "2026-11-07", "leader": "示例村主任乙"}, today=day)
    for step, values in (("answer", {"outcome": "support"}), ("close", {}),
                         ("follow_up", {"result": "已息访", "ceased": "是"})):
        cases.take_step(tree.village, tree.second, step, {"date": "2026-11-09", **values},
                        today=day)
    sync_all(tree, tmp_path)
    owned = leaders.assignments(tree.county)
    assert [(a.case_id, a.leader, a.since, a.ceased) for a in owned] == [
        (tree.first, "示例镇副镇长甲", "2026-11-06", False),
        (tree.second, "示例村主任乙", "2026-11-07", True)]
    output = stats.monthly(tree.county, periods.parse("2026-11"), "431202",
                           as_of=dt.date(2026, 11, 30))
    assert output.total["baoan"] == 2
    assert output.total["baoan_ceased_rate"] == reports.Ratio(1, 2)


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_stolen_village_key_cannot_name_a_leader_for_a_sibling_villages_case(
        tree, tmp_path, via):
    """包案 signed by the sibling's key on village 1's case: refused when it names village
    1's area (outside the key's), a conflict when it names its own; no leader either way."""
    thief = tree.sibling
    register(thief, 9, received="2026-11-04")  # the thief's own feed has an event
    elsewhere = next_event(thief, type="case.baoan", entity="case", entity_id=tree.first,
                           area=tree.village.info.area, body={
                               "values": {"date": "2026-11-20", "leader": "盗用者"}, "by": "x"})
    applied, refused = deliver(thief, tree.township, [elsewhere], via, tmp_path)
    assert applied == 0 and elsewhere.id in refused
    own = next_event(thief, type="case.baoan", entity="case", entity_id=tree.first,
                     area=thief.info.area, body={"values": {"date": "2026-11-20",
                                                            "leader": "盗用者"}, "by": "x"})
    deliver(thief, tree.township, [*_pending(thief), own], via, tmp_path)
    assert tree.township.db.execute("select leader from cases where id = ?",
                                    [tree.first]).fetchone() == (None,)
    assert tree.township.db.execute("select count(*) from conflicts where event_id = ?",
                                    [own.id]).fetchone() == (1,)


def test_naming_the_same_leader_again_keeps_the_day_they_took_the_case(tree):
    day = dt.date(2026, 11, 20)
    leaders.assign(tree.village, tree.first, "示例镇副镇长甲", date="2026-11-06", today=day)
    leaders.assign(tree.village, tree.first, "示例镇副镇长甲", date="2026-11-12", today=day)
    assert leaders.assignments(tree.village)[0].since == "2026-11-06"
    leaders.assign(tree.village, tree.first, "示例镇镇长丙", date="2026-11-13", today=day)
    assert [(a.leader, a.since) for a in leaders.assignments(tree.village)] == [
        ("示例镇镇长丙", "2026-11-13")]


# -- 通报 ------------------------------------------------------------------------------


def test_the_circular_totals_the_list_and_opens_in_openpyxl(tree, tmp_path):
    """As of 11-30 every duty of the three cases is overdue (2 each: 6), all risen at
    least a level; one order on the township's case is open and unanswered (due 11-20)."""
    order = api.issue(tree.county, [tree.own], "2026-11-20", "报告", date="2026-11-10",
                      today=ISSUED)
    result = reports.run_report(tree.county, "supervision.notice", {"as_of": "2026-11-30"})
    assert result.total["overdue"] == 6 and result.total["risen"] == 6
    assert result.total["orders"] == 1 and result.total["orders_overdue"] == 1
    assert [r["area"] for r in result.rows] == ["431202101"]
    text = reports.render(tree.county.registry, result, "text").decode()
    assert "2026-11-30" in text and order in text
    book = openpyxl.load_workbook(io.BytesIO(reports.render(tree.county.registry, result,
                                                            "xlsx")))
    cells = [c for row in book.active.iter_rows(values_only=True) for c in row if c]
    assert result.heading in cells and result.preamble[0] in cells
    assert order in cells and 6 in cells


# -- the command line -----------------------------------------------------------------


def run(home, *args):
    cli = build_cli(get_plugin_manager())
    return CliRunner().invoke(cli, ["--home", str(home), "--operator", "测试员", *args])


def test_ducha_and_baoan_on_the_command_line_with_json_and_clear_errors(tree, tmp_path):
    county = tree.county.home
    tree.county.close()
    issued = run(county, "ducha", "issue", "--case", tree.own, "--due", "2026-12-30",
                 "--required", "报告办理结果", "--json")
    assert issued.exit_code == 0, issued.output
    order = json.loads(issued.output)["id"]
    listing = run(county, "ducha", "list", "--as-of", "2026-11-30", "--json")
    assert order in {r["ref"] for r in json.loads(listing.output)}
    bad = run(county, "ducha", "issue", "--case", "431202101201-2026-99999", "--due",
              "2026-12-30", "--required", "报告")
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "431202101201-2026-99999" in bad.output and len(bad.output.strip().splitlines()) == 1
    assigned = run(county, "baoan", "assign", "--case", tree.first, "--leader",
                   "示例县副县长丁", "--date", "2026-11-20", "--json")
    assert assigned.exit_code == 0, assigned.output
    owned = json.loads(run(county, "baoan", "list", "--json").output)
    assert [(a["case_id"], a["leader"]) for a in owned] == [(tree.first, "示例县副县长丁")]
    empty = run(county, "baoan", "assign", "--case", tree.first, "--leader", " ")
    assert empty.exit_code != 0 and "--leader" in empty.output
