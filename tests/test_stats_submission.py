"""Verifiable statistics and upward approval: a township's 月报表 submitted, recomputed
by the county from the signed events it holds at the township's frontier, approved
(locked) or sent back, over bundles and HTTP, with authority checked on arrival.

The fixture's November, worked out by hand: village 1 registers two visits
(赵某1, 赵某2) and a letter (赵某5), the township one visit (赵某3), all
received in November and seen as of 2026-11-30: 4 cases (件), 3 visits (批次),
3 person-visits (人次); the village's row holds 3 cases, the township's own 1.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sync_helpers import (TOWNSHIP, build_tree, carry, deliver, enrol, feed, new_node,
                          next_event, register, send_pages, serve, wire)
from xinfang.app import DEFAULT_PLUGINS
from xinfang.core import held, i18n, policy
from xinfang.core.errors import InvalidInput, NotFound, StepRefused
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.stats import approval, submission as sub
from xinfang.sync.http import Client

AS_OF = dt.date(2026, 11, 30)
RECORD = f"{TOWNSHIP[0]}-2026-11-stats.monthly"
VILLAGE_AREA = "431202101201"


def november(tree) -> None:
    register(tree.village, 1, received="2026-11-03")
    register(tree.village, 2, received="2026-11-10")
    register(tree.village, 5, received="2026-11-11", channel="来信")
    register(tree.township, 3, received="2026-11-12")


def up(tree, tmp_path) -> None:
    carry(tree.village, tree.township, tmp_path)
    carry(tree.township, tree.county, tmp_path)


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path)
    november(made)
    up(made, tmp_path)
    carry(made.county, made.township, tmp_path)  # the county's certifications come down
    carry(made.township, made.village, tmp_path)
    yield made
    made.close()


def total(record_or_figures, name):
    figures = record_or_figures.get("figures", record_or_figures)
    return figures["total"][name]


def row(figures, group):
    return next(r for r in figures["rows"] if r["group"] == group)


def test_a_matching_submission_is_consistent_and_its_approval_comes_down(tree, tmp_path):
    done = sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)
    assert done["record"] == RECORD
    figures = done["figures"]
    assert (total(figures, "cases"), total(figures, "batches"),
            total(figures, "person_visits")) == (4, 3, 3)
    assert row(figures, VILLAGE_AREA)["cases"] == 3
    assert row(figures, TOWNSHIP[0])["cases"] == 1
    carry(tree.township, tree.county, tmp_path)
    check = sub.verify_submission(tree.county, RECORD)
    assert (check.result, check.differences, check.missing) == (sub.CONSISTENT, (), ())
    assert check.policy_recomputed == check.policy_submitted == policy.policy_version(
        tree.township.db)
    sub.approve(tree.county, RECORD)
    carry(tree.county, tree.township, tmp_path)
    [line] = sub.status(tree.township)
    assert (line["status"], line["check"], line["amendments"]) == ("approved", "consistent", [])


def _honest_body(node):
    period = sub.periods.parse("2026-11")
    return {"report": "stats.monthly", "period": "2026-11", "as_of": AS_OF.isoformat(),
            "figures": sub.figures(node, period, node.info.area, AS_OF.isoformat()),
            "frontier": sub.frontier(node.db),
            "policy_version": policy.policy_version(node.db), "by": "测试员"}


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_township_that_understates_a_figure_is_caught_field_by_field(tree, tmp_path, via):
    body = _honest_body(tree.township)
    body["figures"]["total"]["cases"] = 3  # one case hidden (4 held)
    row(body["figures"], VILLAGE_AREA)["cases"] = 2
    body["figures"]["total"]["timely_acceptance"]["denominator"] -= 1
    forged = next_event(tree.township, type="report.submit", entity="report",
                        entity_id=RECORD, area=TOWNSHIP[0], body=body)
    applied, refused = deliver(tree.township, tree.county, [forged], via, tmp_path)
    assert (applied, refused) == (1, {})
    check = sub.verify_submission(tree.county, RECORD)
    assert check.result == sub.MISMATCH
    # the 及时受理率's denominator: the four cases' decision deadlines (received 11-03,
    # 11-10, 11-11, 11-12, + 15 days) all fell due by 11-30
    assert [(d.group, d.figure, d.part, d.submitted, d.recomputed, d.difference)
            for d in check.differences] == [
        (VILLAGE_AREA, "cases", "count", 2, 3, -1),
        (None, "cases", "count", 3, 4, -1),
        (None, "timely_acceptance", "denominator", 3, 4, -1)]
    assert all(i18n._(d.kind) == "少报（漏报/瞒报）" for d in check.differences)
    with pytest.raises(InvalidInput, match="不一致|3"):
        sub.approve(tree.county, RECORD)
    returned = sub.send_back(tree.county, RECORD, "件数与核算不符")
    assert [e[:3] for e in returned["evidence"]] == [
        [VILLAGE_AREA, "cases", "count"], [None, "cases", "count"],
        [None, "timely_acceptance", "denominator"]]


def test_the_county_names_the_events_it_lacks_rather_than_a_mismatch(tree, tmp_path):
    register(tree.village, 6, received="2026-11-20")
    carry(tree.village, tree.township, tmp_path)
    done = sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)
    assert total(done, "cases") == 5
    # only the township's own new event (the submission) reaches the county
    own = [e for e in feed(tree.township) if e.id == done["event"]]
    assert deliver(tree.township, tree.county, own, "bundle", tmp_path)[0] == 1
    check = sub.verify_submission(tree.county, RECORD)
    village_seq = feed(tree.village)[-1].seq
    assert check.result == sub.MISSING and check.differences == ()
    assert [(g.author, g.first, g.last, g.count) for g in check.missing] == [
        (tree.village.info.author, village_seq, village_seq, 1)]
    assert check.missing[0].name == tree.village.info.name
    with pytest.raises(InvalidInput, match="缺少|1"):
        sub.approve(tree.county, RECORD)
    carry(tree.township, tree.county, tmp_path)  # the rest arrives: now it matches
    assert sub.verify_submission(tree.county, RECORD).result == sub.CONSISTENT


def test_a_township_behind_matches_at_its_frontier_and_a_late_event_is_an_amendment(
        tree, tmp_path):
    sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)
    carry(tree.township, tree.county, tmp_path)
    late = register(tree.village, 7, received="2026-11-21")  # after the township computed
    up(tree, tmp_path)
    check = sub.verify_submission(tree.county, RECORD)
    assert check.result == sub.CONSISTENT
    village_seq = feed(tree.village)[-1].seq
    assert (tree.village.info.author, village_seq, village_seq, 1) in [
        (g.author, g.first, g.last, g.count) for g in check.newer]
    sub.approve(tree.county, RECORD)
    [line] = sub.status(tree.county)
    assert total(line, "cases") == 4  # the approved figures stay
    assert [(d.group, d.figure, d.submitted, d.recomputed) for d in line["amendments"]
            if d.figure == "cases"] == [(VILLAGE_AREA, "cases", 3, 4), (None, "cases", 4, 5)]
    carry(tree.county, tree.township, tmp_path)
    assert late
    december = sub.submit(tree.township, "stats.monthly", "2026-12", dt.date(2026, 12, 31))
    [amended] = december["amendments"]
    assert amended["record"] == RECORD
    assert [None, "cases", "count", 4, 5] in amended["differences"]


def test_send_back_and_resubmission_round_trip_over_http(tree, tmp_path):
    with serve(tree.county) as url:
        sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)
        Client(tree.township, url).sync()
        sub.send_back(tree.county, RECORD, "请补充说明集体访情况")
        Client(tree.township, url).sync()
        [line] = sub.status(tree.township)
        assert (line["status"], line["reason"]) == ("returned", "请补充说明集体访情况")
        again = sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)
        assert again["step"] == "resubmit"
        Client(tree.township, url).sync()
        assert approval.load(tree.county.db, RECORD)["round"] == 2
        sub.approve(tree.county, RECORD)
        Client(tree.township, url).sync()
    record = approval.load(tree.township.db, RECORD)
    assert (record["status"], record["round"], record["reason"]) == ("approved", 2, None)
    with pytest.raises(InvalidInput, match="已审核|锁定"):
        sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)


def _decision(node, step, record, **body):
    return next_event(node, type=f"report.{step}", entity="report", entity_id=RECORD,
                      area=TOWNSHIP[0], body={"submission": record["submission"], **body})


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_only_the_county_may_decide_a_townships_report(tree, tmp_path, via):
    sub.submit(tree.township, "stats.monthly", "2026-11", AS_OF)
    carry(tree.township, tree.county, tmp_path)
    record = approval.load(tree.county.db, RECORD)
    # a stolen village key: the township's record lies outside its area, refused
    stolen = _decision(tree.village, "approve", record)
    applied, refused = deliver(tree.village, tree.township, [stolen], via, tmp_path)
    assert applied == 0 and stolen.id in refused
    # a sibling township's key: outside its area too, refused by the county
    sibling = new_node(tmp_path / "t2", "township", "431202102", "示例二镇信访办")
    enrol(sibling, tree.county)
    register(sibling, 9, received="2026-11-02")
    forged = _decision(sibling, "approve", record)
    applied, refused = deliver(sibling, tree.county, [forged], via, tmp_path)
    assert applied == 0 and "431202102" in refused[forged.id]
    # the township approving its own report: inside its area, but not its step: a conflict
    own = _decision(tree.township, "approve", record)
    assert deliver(tree.township, tree.county, [own], via, tmp_path) == (1, {})
    reason = tree.county.db.execute("select reason from conflicts where event_id = ?",
                                    [own.id]).fetchone()[0]
    assert "431202" in i18n.show(reason)
    assert approval.load(tree.county.db, RECORD)["status"] == "submitted"
    sibling.close()


def test_a_county_cannot_submit_for_a_township_and_the_township_keeps_it_as_a_conflict(
        tree, tmp_path):
    body = _honest_body(tree.township)
    forged = next_event(tree.county, type="report.submit", entity="report", entity_id=RECORD,
                        area=TOWNSHIP[0], body=body)
    # the county's feed reaches the township filtered: the page says what it completes
    page = wire([forged], certs_from=tree.county,
                ranges=[(tree.county.info.author, 0, forged.seq - 1, forged.seq)])
    assert send_pages(tree.county, tree.township, [page], tmp_path).applied == 1
    assert approval.load(tree.township.db, RECORD) is None
    assert tree.township.db.execute("select count(*) from conflicts where event_id = ?",
                                    [forged.id]).fetchone()[0] == 1


def test_the_commands_print_json_and_bad_input_is_one_chinese_line(tree, tmp_path, invoke):
    township, county = tree.township.home, tree.county.home
    result = invoke("report", "submit", "stats.monthly", "--period", "2026-11", "--as-of",
                    "2026-11-30", "--json", home_dir=township)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["figures"]["total"]["cases"] == 4
    draft = json.loads(invoke("report", "status", "--period", "2026-12", "--json",
                              home_dir=township).output)
    assert [(d["period"], d["state"]) for d in draft] == [("2026-12", "草稿")]
    carry(tree.township, tree.county, tmp_path)
    status = json.loads(invoke("report", "status", "--json", home_dir=county).output)
    assert [(s["id"], s["state"], s["check"]) for s in status] == [
        (RECORD, "已上报", "consistent")]
    text = invoke("report", "status", home_dir=county).output
    assert "核对一致" in text and RECORD in text
    for args, expected in [
            (("approve", "431202101-2026-10-stats.monthly"), "没有"),
            (("return", RECORD), "理由"),
            (("submit", "stats.overdue", "--period", "2026-11"), "stats.overdue")]:
        bad = invoke("report", *args, home_dir=county)
        assert bad.exit_code == 1 and "Traceback" not in bad.output
        assert len(bad.output.strip().splitlines()) == 1 and expected in bad.output
    assert invoke("report", "approve", RECORD, "--json", home_dir=county).exit_code == 0
    twice = invoke("report", "approve", RECORD, home_dir=county)
    assert twice.exit_code == 1 and len(twice.output.strip().splitlines()) == 1
    assert "已审核" in twice.output or "锁定" in twice.output


def test_bad_input_through_the_api(tree):
    with pytest.raises(NotFound):
        sub.verify_submission(tree.county, "nothing")
    with pytest.raises(InvalidInput):
        sub.submit(tree.county, "stats.monthly", "2026-11", AS_OF)  # the root submits to none


def test_a_relay_without_the_stats_plugin_holds_and_forwards_the_records(tmp_path):
    without = [p for p in DEFAULT_PLUGINS if "stats" not in p]
    city = new_node(tmp_path / "city", "city", "4312", "测试市信访局", root=True)
    county = Node.init(tmp_path / "county", level="county", area="431202", name="测试县信访局",
                       pm=get_plugin_manager(entry_points=False, defaults=without))
    township = new_node(tmp_path / "township", "township", TOWNSHIP[0], TOWNSHIP[1])
    enrol(county, city)
    enrol(township, county)
    register(township, 3, received="2026-11-12")
    carry(township, county, tmp_path)
    carry(county, township, tmp_path)
    sub.submit(township, "stats.monthly", "2026-11", AS_OF)
    carry(township, county, tmp_path)
    carry(county, city, tmp_path)
    assert [(g.entity, g.entities) for g in held.held(county)] == [("report", 1)]
    assert approval.load(city.db, RECORD)["status"] == "submitted"
    assert sub.verify_submission(city, RECORD).result == sub.CONSISTENT
    with pytest.raises(StepRefused):  # the city is not the township's parent
        sub.approve(city, RECORD)
    county.close()
    county = Node.open(tmp_path / "county")  # the plugin installed: the held record folds
    assert approval.load(county.db, RECORD)["status"] == "submitted"
    sub.approve(county, RECORD)
    carry(county, township, tmp_path)
    carry(county, city, tmp_path)
    assert approval.load(township.db, RECORD)["status"] == "approved"
    assert approval.load(city.db, RECORD)["status"] == "approved"
    for node in (city, county, township):
        node.close()
