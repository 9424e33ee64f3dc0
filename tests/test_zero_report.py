"""信息零报告: a period declared at the county reaches every station; stations file
daily, offline, carried up by bundle; the county sees who is silent and the rates.

The tree is the real one of ``sync_helpers``: the county (root), one township and
two villages. A certification's day comes from the real ``trust.certify`` stamp,
so the periods here start after the tree was built (``SOON``); figures are
counted by hand in each test.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import build_tree, carry, copy_node, deliver, feed, next_event
from xinfang.cli.main import build_cli
from xinfang.core import clock, i18n, store
from xinfang.core.errors import InvalidInput
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.zero_report import api, periods
from xinfang.plugins.zero_report.plugin import TYPE, entity_id

#: the day the tree is certified, as the stamps say it (Beijing time)
CERTIFIED = clock.today()
SOON = CERTIFIED + dt.timedelta(days=10)
D1, D2, D3 = (SOON + dt.timedelta(days=i) for i in range(3))


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path)
    yield made
    made.close()


def declared(tree, tmp_path, **kw):
    """Declare D1..D3 at the county and carry it down to every village."""
    period = api.declare(tree.county, "两会", D1.isoformat(), D3.isoformat(), **kw)
    carry(tree.county, tree.township, tmp_path)
    for village in tree.villages:
        carry(tree.township, village, tmp_path)
    return period


def file(node, day, filed, **kw):
    return api.file_report(node, day.isoformat(), today=filed, **kw)


def carry_up(tree, tmp_path):
    for village in tree.villages:
        carry(village, tree.township, tmp_path)
    carry(tree.township, tree.county, tmp_path)


def test_a_county_declaration_reaches_every_village_and_a_township_cannot_declare(tree,
                                                                                  tmp_path):
    period = declared(tree, tmp_path)
    for node in tree.nodes:
        assert [p.to_json() for p in api.list_periods(node)] == [period.to_json()]
    assert period.days() == [D1, D2, D3] and period.covers == ("431202",)
    with pytest.raises(InvalidInput):
        api.declare(tree.township, "国庆", D1.isoformat(), D3.isoformat())


def test_the_silent_village_is_listed_each_day_and_the_rates_are_counted_by_hand(tree,
                                                                                  tmp_path):
    period = declared(tree, tmp_path)
    village, silent = tree.villages
    file(village, D1, D1)
    file(village, D2, D3)  # late: filed a day after
    file(village, D3, D3)
    for day in (D1, D2, D3):
        file(tree.township, day, day)
    carry_up(tree, tmp_path)

    for day in (D1, D2, D3):
        found = api.missing(tree.county, day.isoformat(), today=D3)
        assert [m["area"] for m in found["missing"]] == [silent.info.area]
        assert (found["expected"], found["filed"]) == (3, 2)
    status = api.status(tree.county, period.id, as_of=D3)
    # 3 stations x 3 days = 9 expected; township 3 + village 3 = 6 received; 5 on time
    assert status["total"] == {"expected": 9, "filed": 6, "on_time": 5, "late": 1}
    rows = {s["area"]: s for s in status["stations"]}
    assert (rows[village.info.area]["filed"], rows[village.info.area]["on_time"]) == (3, 2)
    assert rows[silent.info.area]["silent_days"] == [d.isoformat() for d in (D1, D2, D3)]
    # as of D2 the late report of D2 was not yet received: 2 stations x 2 days
    early = api.status(tree.county, period.id, as_of=D2)
    assert early["total"] == {"expected": 6, "filed": 3, "on_time": 3, "late": 0}

    from xinfang.core.reports import run_report
    result = run_report(tree.county, "zero.rates", {"period": period.id,
                                                     "as_of": D3.isoformat()})
    assert (result.total["reporting_rate"].numerator,
            result.total["reporting_rate"].denominator) == (6, 9)
    assert result.total["on_time_rate"].numerator == 5


def test_nothing_to_report_is_distinct_from_nothing_received_and_a_correction_keeps_the_day(
        tree, tmp_path):
    period = declared(tree, tmp_path)
    village = tree.village
    file(village, D1, D1)
    carry_up(tree, tmp_path)
    first = api.day_report(tree.county, period, D1, as_of=D1)
    rows = {r["area"]: r for r in first["stations"]}
    assert rows[village.info.area]["report"]["status"] == "none"
    assert "report" not in rows[tree.sibling.info.area]
    corrected = file(village, D1, D2, note="村民反映道路问题，已登记")
    assert corrected["corrected"]
    carry_up(tree, tmp_path)
    again = {r["area"]: r for r in api.day_report(tree.county, period, D1, D2)["stations"]}
    report = again[village.info.area]["report"]
    assert (report["status"], report["corrections"], report["first_filed"]) == ("note", 1,
                                                                                D1.isoformat())
    assert again[village.info.area]["on_time"]


def test_a_date_outside_the_period_is_refused_when_filing_and_on_arrival(tree, tmp_path):
    period = declared(tree, tmp_path)
    with pytest.raises(InvalidInput):
        file(tree.village, D3 + dt.timedelta(days=1), D3 + dt.timedelta(days=1))
    file(tree.village, D1, D1)
    outside = (D3 + dt.timedelta(days=1)).isoformat()
    event = next_event(tree.village, type=TYPE, entity="zero_filing",
                       entity_id=entity_id(tree.village.info.area, period.id, outside),
                       area=tree.village.info.area,
                       body={"period": period.id, "date": outside, "filed": outside,
                             "status": "none", "note": "", "cases": [], "by": "测试员"})
    before = feed(tree.village)[-1]  # the D1 filing, so the feed has no gap
    applied, refused = deliver(tree.village, tree.township, [before, event], "bundle", tmp_path)
    assert applied == 2 and refused == {}
    assert tree.township.db.execute("select count(*) from conflicts where event_id = ?",
                                    [event.id]).fetchone() == (1,)
    assert tree.township.db.execute("select count(*) from zero_filings where id = ?",
                                    [event.entity_id]).fetchone() == (0,)


def _forged_for_sibling(tree, period, area, filing_area):
    day = D1.isoformat()
    return next_event(tree.village, type=TYPE, entity="zero_filing",
                      entity_id=entity_id(filing_area, period.id, day), area=area,
                      body={"period": period.id, "date": day, "filed": day, "status": "none",
                            "note": "", "cases": [], "by": "测试员"})


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_filing_for_a_sibling_village_signed_with_a_real_village_key_is_refused(
        tree, tmp_path, via):
    period = declared(tree, tmp_path)
    file(tree.village, D2, D2)  # the village has a feed to continue
    sibling = tree.sibling.info.area
    for area in (sibling, tree.village.info.area):  # claimed outright, or by the id only
        event = _forged_for_sibling(tree, period, area, sibling)
        applied, refused = deliver(tree.village, tree.township, [event], via, tmp_path)
        assert applied == 0 and list(refused) == [event.id]
    assert tree.township.db.execute("select count(*) from zero_filings").fetchone() == (0,)


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_township_filing_for_its_village_is_refused_on_arrival(tree, tmp_path, via):
    period = declared(tree, tmp_path)
    file(tree.township, D1, D1)
    day = D2.isoformat()
    event = next_event(tree.township, type=TYPE, entity="zero_filing",
                       entity_id=entity_id(tree.village.info.area, period.id, day),
                       area=tree.village.info.area,
                       body={"period": period.id, "date": day, "filed": day, "status": "none",
                             "note": "", "cases": [], "by": "测试员"})
    applied, refused = deliver(tree.township, tree.county, [event], via, tmp_path)
    assert applied == 0
    assert "own area" in refused[event.id] or "本辖区" in refused[event.id] \
        or tree.village.info.area in refused[event.id]


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_declaration_signed_by_a_township_key_is_not_in_force_anywhere(tree, tmp_path, via):
    period = declared(tree, tmp_path)
    file(tree.township, D1, D1)
    area = tree.township.info.area
    value = {"FAKE1": {"name": "假期", "from": D1.isoformat(), "to": D3.isoformat(),
                       "every": 1, "areas": [area]}}
    event = next_event(tree.township, type="policy.set", entity="policy",
                       entity_id=f"{periods.KEY}@{area}", area=area,
                       body={"key": periods.KEY, "value": value})
    own = feed(tree.township)  # its certifications and its filing, so the feed has no gap
    applied, refused = deliver(tree.township, tree.county, [*own, event], via, tmp_path)
    assert applied == len(own) + 1 and refused == {}  # kept in the log, and listed as a conflict
    assert [p.id for p in api.list_periods(tree.county)] == [period.id]
    assert tree.county.db.execute("select count(*) from conflicts where event_id = ?",
                                  [event.id]).fetchone() == (1,)


def test_a_station_certified_mid_period_is_expected_from_its_certification_day(tmp_path):
    tree = build_tree(tmp_path)
    try:
        start = CERTIFIED - dt.timedelta(days=2)
        period = api.declare(tree.county, "春节", start.isoformat(),
                             (CERTIFIED + dt.timedelta(days=1)).isoformat())
        carry(tree.township, tree.county, tmp_path)  # the trust.certify events come up
        since = {s.area: s.since for s in api.stations(tree.county, period)}
        assert since == {tree.township.info.area: start, tree.village.info.area: CERTIFIED,
                         tree.sibling.info.area: CERTIFIED}
        status = api.status(tree.county, period.id, as_of=CERTIFIED + dt.timedelta(days=1))
        assert status["total"]["expected"] == 4 + 2 + 2
    finally:
        tree.close()


def _cli(home, *args):
    cli = build_cli(get_plugin_manager())
    return CliRunner().invoke(cli, ["--home", str(home), "--operator", "测试员", *args])


def test_cli_declares_files_and_lists_the_silent_as_json_and_says_bad_dates_in_chinese(
        tree, tmp_path):
    homes = {n.info.area: n.home for n in tree.nodes}
    tree.close()
    county, village = homes["431202"], homes["431202101201"]
    result = _cli(county, "zero-report", "declare", "--name", "两会", "--from", D1.isoformat(),
                  "--to", D2.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["every"] == 1
    bad = _cli(county, "zero-report", "declare", "--name", "两会", "--from", "2026-02-30",
               "--to", D2.isoformat())
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "日期" in bad.output and len(bad.output.strip().splitlines()) == 1
    backwards = _cli(county, "zero-report", "declare", "--name", "两会", "--from",
                     D2.isoformat(), "--to", D1.isoformat())
    assert backwards.exit_code == 1 and "早于" in backwards.output

    from xinfang.core.node import Node
    from sync_helpers import carry as carry_nodes
    nodes = {a: Node.open(h, pm=get_plugin_manager()) for a, h in homes.items()}
    try:
        carry_nodes(nodes["431202"], nodes["431202101"], tmp_path)
        carry_nodes(nodes["431202101"], nodes["431202101201"], tmp_path)
    finally:
        for n in nodes.values():
            n.close()
    filed = _cli(village, "zero-report", "file", "--date", D1.isoformat(), "--today",
                 D1.isoformat(), "--json")
    assert filed.exit_code == 0, filed.output
    assert json.loads(filed.output)["status"] == "none"
    future = _cli(village, "zero-report", "file", "--date", D2.isoformat(), "--today",
                  D1.isoformat())
    assert future.exit_code == 1 and "晚于今天" in future.output
    silent = _cli(village, "zero-report", "missing", "--date", D1.isoformat(), "--today",
                  D1.isoformat(), "--json")
    assert silent.exit_code == 0, silent.output
    # the village itself filed; the township, whose certificate it holds, has not
    assert [m["area"] for m in json.loads(silent.output)["missing"]] == ["431202101"]
    status = _cli(county, "zero-report", "status", "--as-of", D2.isoformat(), "--json")
    assert status.exit_code == 0, status.output
    # the township never came up, so the county knows only the township it certified:
    # 1 station x 2 days
    assert json.loads(status.output)["total"]["expected"] == 1 * 2
    csv = _cli(county, "report", "run", "zero.rates", "--format", "csv", "--param",
               f"as_of={D2.isoformat()}")
    assert csv.exit_code == 0, csv.output


# -- convergence -------------------------------------------------------------------


def _views(node):
    return (node.db.execute("select * from zero_filings order by id").fetchall(),
            node.db.execute("select event_id, reason from conflicts order by event_id")
            .fetchall())


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The township before the declaration came, and every event it later receives."""
    base = tmp_path_factory.mktemp("zero-pool")
    tree = build_tree(base)
    blank = copy_node(tree.township, base / "blank")
    blank.close()
    period = declared(tree, base)
    village, sibling = tree.villages
    file(village, D1, D1)
    file(village, D2, D3)
    file(village, D1, D2, note="补充情况")  # a correction
    file(sibling, D3, D3)
    carry(village, tree.township, base)
    carry(sibling, tree.township, base)
    events = [e for e in store.all_events(tree.township.db)
              if e.entity in ("zero_filing", "policy")]
    assert len(events) == 5 and period.id
    reference = _views(tree.township)
    tree.close()
    return base / "blank", events, reference


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arrival_order_folds_the_same_filings(pool, tmp_path_factory, data):
    blank, events, reference = pool
    order = data.draw(st.permutations(events))
    node = copy_node_from(blank, tmp_path_factory.mktemp("zero-order"))
    try:
        for event in order:
            node.ingest([event])
        assert _views(node) == reference
    finally:
        node.close()


def copy_node_from(home, target):
    import shutil

    from xinfang.core.node import Node

    shutil.copytree(home, target, dirs_exist_ok=True)
    return Node.open(target, pm=get_plugin_manager())
