"""The ledger's reports against answers worked out by hand, and their submission upward.

The fixture (county 431202 → township 431202101 → villages …201 and …202, real
nodes, synced up):

village 1 (…201)
  D1 土地/征地补偿, 高, found 2026-10-15, due 2026-11-20, carried into November
     (月度排查 2026-11-01), never resolved: overdue at the end of November
  D2 移民安置, 中, found 2026-11-05, resolved (化解) 2026-11-18
  D3 移民安置, 高, found 2026-11-08, a 群体性事件, 转信访 2026-11-12 to C1
  C1 a 库区移民 visit of 12 people, 2026-11-09, who went to Beijing (进京, 越级)
  C3 a 劳动社保 visit, 2026-11-10: not a resettlement case, counted nowhere here
village 2 (…202)
  D4 征地补偿, 低, found 2026-11-10, due 2026-12-31, open
  C2 a 库区移民 letter, 2026-11-15
  P1 旧房改造, 37 户 planned, progress 5 (2026-10-10), 11 (2026-11-20), 20 (2026-12-05)

November at the township, by hand: the ledger holds D1, D2, D3 (village 1) and D4
(village 2): 4 screened, 1 resolved (D2), 化解率 1/4 = 25.0%, 1 转信访 (D3), 1 overdue
(D1), 1 群体性事件 (D3). Village 1: 3 / 1 / 1 / 1 / 1; village 2: 1 / 0 / 0 / 0 / 0.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from types import SimpleNamespace

import openpyxl
import pytest

from sync_helpers import (COUNTY, TOWNSHIP, VILLAGES, build_tree, carry, enrol, new_node,
                          register)
from xinfang.app import DEFAULT_PLUGINS
from xinfang.core import reports
from xinfang.core.errors import InvalidInput
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.ledger import api
from xinfang.plugins.stats import approval, submission as sub

V1, V2 = VILLAGES[0][0], VILLAGES[1][0]
NOV_END = "2026-11-30"


def dispute(node, date, kind, risk, **more):
    values = {"date": date, "kind": kind, "risk": risk, "summary": "征地补偿款分配争议",
              "people": 3, **more}
    return api.add_dispute(node, values, today=dt.date.fromisoformat(date))


def day(text):
    return dt.date.fromisoformat(text)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ledger-reports")
    made = build_tree(tmp)
    v1, v2 = made.villages
    d1 = dispute(v1, "2026-10-15", "征地补偿", "高", due="2026-11-20")
    d2 = dispute(v1, "2026-11-05", "移民安置", "中")
    d3 = dispute(v1, "2026-11-08", "移民安置", "高", mass="是")
    c1 = register(v1, 1, received="2026-11-09", category="库区移民", headcount=12,
                  went_to="京", request="请求落实移民后期扶持")
    register(v1, 3, received="2026-11-10")
    api.carry(v1, "2026-11", today=day("2026-11-01"))
    api.step(v1, "dispute", d2, "resolve", {"date": "2026-11-18", "progress": "已协商一致"},
             today=day("2026-11-18"))
    api.step(v1, "dispute", d3, "to_petition", {"date": "2026-11-12", "case": c1},
             today=day("2026-11-12"))
    d4 = dispute(v2, "2026-11-10", "征地补偿", "低", due="2026-12-31")
    register(v2, 2, received="2026-11-15", category="库区移民", channel="来信")
    p1 = api.add_project(v2, {"date": "2026-09-01", "kind": "旧房改造", "name": "示例二村旧房改造",
                              "planned": 37, "unit": "户"}, area=V2, today=day("2026-09-01"))
    for date, done in (("2026-10-10", 5), ("2026-11-20", 11), ("2026-12-05", 20)):
        api.step(v2, "project", p1, "progress", {"date": date, "done": done},
                 today=day("2026-12-10"))
    for village in made.villages:
        carry(village, made.township, tmp)
    carry(made.township, made.county, tmp)
    carry(made.county, made.township, tmp)  # the county's certifications come down
    yield SimpleNamespace(county=made.county, township=made.township, villages=made.villages,
                          tmp=tmp, ids={"d1": d1, "d2": d2, "d3": d3, "d4": d4, "c1": c1,
                                        "p1": p1})
    made.close()


def run(node, name, **given):
    return reports.run_report(node, name, given)


def by(rows, key="area"):
    return {row[key]: row for row in rows}


FIGURES = ("screened", "resolved", "to_petition", "overdue", "mass")


def test_the_november_dispute_report_counts_the_carried_resolved_transferred_and_overdue(tree):
    result = run(tree.township, "ledger.disputes", period="2026-11", as_of=NOV_END)
    rows = by(result.rows)
    assert [tuple(rows[V1][f] for f in FIGURES), tuple(rows[V2][f] for f in FIGURES)] == [
        (3, 1, 1, 1, 1), (1, 0, 0, 0, 0)]
    assert tuple(result.total[f] for f in FIGURES) == (4, 1, 1, 1, 1)
    rate = result.total["resolution"]
    assert (rate.numerator, rate.denominator, rate.percent()) == (1, 4, "25.0%")
    assert rows[V1]["resolution"].percent() == "33.3%"
    kinds = {t.name: by(t.rows, "group") for t in result.tables}
    assert {k: (r["screened"], r["resolved"]) for k, r in kinds["by_kind"].items()} == {
        "征地补偿": (2, 0), "移民安置": (2, 1)}
    assert {k: (r["screened"], r["resolved"]) for k, r in kinds["by_risk"].items()} == {
        "高": (2, 0), "中": (1, 1), "低": (1, 0)}
    assert "25.0%" in result.preamble[0]


def test_october_holds_only_the_dispute_found_then_and_a_quarter_counts_it_once(tree):
    october = run(tree.township, "ledger.disputes", period="2026-10", as_of="2026-10-31")
    assert tuple(october.total[f] for f in FIGURES) == (1, 0, 0, 0, 0)
    # Q4 seen as of 30 November: D1 (October and November) once, D2, D3, D4
    quarter = run(tree.township, "ledger.disputes", period="2026-Q4", as_of=NOV_END)
    assert tuple(quarter.total[f] for f in FIGURES) == (4, 1, 1, 1, 1)
    # seen as of 15 November: D4 (found the 10th) is in, D2's 化解 (the 18th) is not yet,
    # D3's 转信访 (the 12th) is, and D1 (due the 20th) is not yet overdue
    early = run(tree.township, "ledger.disputes", period="2026-11", as_of="2026-11-15")
    assert tuple(early.total[f] for f in FIGURES) == (4, 0, 1, 0, 1)


def test_the_county_sees_one_township_row_and_a_bad_period_is_one_clear_error(tree):
    result = run(tree.county, "ledger.disputes", period="2026-11", as_of=NOV_END)
    assert [(r["area"], r["screened"]) for r in result.rows] == [(TOWNSHIP[0], 4)]
    with pytest.raises(InvalidInput, match="2026-13"):
        run(tree.county, "ledger.disputes", period="2026-13")


def test_the_resettlement_monthly_report_counts_only_resettlement_cases(tree):
    result = run(tree.township, "ledger.monthly", period="2026-11", as_of=NOV_END)
    names = ("visits", "visit_people", "letters", "skipped_level", "to_capital",
             "to_province", "screened", "resolved", "mass")
    rows = by(result.rows)
    assert tuple(rows[V1][n] for n in names) == (1, 12, 0, 1, 1, 0, 3, 1, 1)
    assert tuple(rows[V2][n] for n in names) == (0, 0, 1, 0, 0, 0, 1, 0, 0)
    assert tuple(result.total[n] for n in names) == (1, 12, 1, 1, 1, 0, 4, 1, 1)
    [projects] = result.tables
    [project] = projects.rows
    # the progress of 5 December is after the month: 11 of 37 done by 30 November
    assert (project["planned"], project["done"], project["percent"].percent()) == (
        37, 11, "29.7%")
    with pytest.raises(InvalidInput, match="2026-Q4"):
        run(tree.township, "ledger.monthly", period="2026-Q4")


def test_the_reports_render_as_xlsx_with_the_expected_cells(tree):
    result = run(tree.township, "ledger.disputes", period="2026-11", as_of=NOV_END)
    data = reports.render(tree.township.registry, result, "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert "矛盾纠纷排查化解月报表" in cells[0][0]
    village = next(r for r in cells if r[0] == V1)
    assert village[1:6] == [3, 1, pytest.approx(1 / 3), 1, 1]
    total = next(r for r in cells if r[0] == "合计")
    assert total[1:7] == [4, 1, 0.25, 1, 1, 1]
    for fmt in ("text", "json", "csv"):
        assert reports.render(tree.township.registry, result, fmt)
    as_json = json.loads(reports.render(tree.township.registry, result, "json"))
    assert as_json["total"]["resolution"] == {"numerator": 1, "denominator": 4, "value": 0.25}


def test_the_yearly_assessment_sets_each_target_beside_its_outcome(tree):
    api.set_target(tree.county, TOWNSHIP[0], {"year": 2026, "no_mass": "是", "max_skipped": 0,
                                              "min_resolution": 20}, today=day("2026-01-05"))
    result = run(tree.county, "ledger.targets", year="2026", as_of="2026-12-31")
    # the year: 1 群体事件 (D3) against none; 1 越级访 (C1) against 0; resolved 1 of the 4
    # screened in the year's ledgers (25.0%) against at least 20%
    assert [(r["township"], r["required"], r["outcome"], r["met"]) for r in result.rows] == [
        (TOWNSHIP[0], "无", "1起群体事件", "未达标"),
        (TOWNSHIP[0], "0", "1", "未达标"),
        (TOWNSHIP[0], "20%", "25.0% (1/4)", "达标")]
    assert result.total["met"] == "3项目标中1项达标"


def test_a_township_submits_its_dispute_report_and_the_county_recomputes_and_approves(tree):
    done = sub.submit(tree.township, "ledger.disputes", "2026-11", day(NOV_END))
    record = f"{TOWNSHIP[0]}-2026-11-ledger.disputes"
    assert done["record"] == record
    figures = done["figures"]
    assert figures["total"]["screened"] == 4
    assert figures["total"]["resolution"] == {"numerator": 1, "denominator": 4}
    assert next(r for r in figures["rows"] if r["group"] == V1)["overdue"] == 1
    carry(tree.township, tree.county, tree.tmp)
    check = sub.verify_submission(tree.county, record)
    assert (check.result, check.differences, check.missing) == (sub.CONSISTENT, (), ())
    sub.approve(tree.county, record)
    carry(tree.county, tree.township, tree.tmp)
    line = next(x for x in sub.status(tree.township) if x["id"] == record)
    assert (line["status"], line["report"]) == ("approved", "ledger.disputes")


def test_the_resettlement_monthly_report_is_submittable_and_recomputed_alike(tree):
    done = sub.submit(tree.township, "ledger.monthly", "2026-11", day(NOV_END))
    assert done["figures"]["total"]["visit_people"] == 12
    carry(tree.township, tree.county, tree.tmp)
    assert sub.verify_submission(tree.county, done["record"]).result == sub.CONSISTENT


def test_an_understated_dispute_figure_is_caught_and_an_unknown_report_is_refused(tree):
    figures = sub.figures(tree.township, sub.periods.parse("2026-10"), TOWNSHIP[0],
                          "2026-10-31", "ledger.disputes")
    assert figures["total"]["screened"] == 1
    given = {**figures, "total": {**figures["total"], "screened": 0}}
    assert [(d.group, d.figure, d.submitted, d.recomputed) for d in
            sub.compare(given, figures)] == [(None, "screened", 0, 1)]
    with pytest.raises(InvalidInput, match="ledger.targets"):
        sub.submit(tree.township, "ledger.targets", "2026", day("2026-12-31"))
    assert approval.REPORT_NAME.match("ledger.disputes")
    assert not approval.REPORT_NAME.match("ledger disputes")


def test_the_commands_run_describe_and_assess_with_one_chinese_line_on_bad_input(tree, invoke,
                                                                                 tmp_path):
    home = tree.county.home
    described = invoke("report", "describe", "ledger.disputes", home_dir=home)
    assert described.exit_code == 0 and "化解率" in described.output
    out = tmp_path / "月报.xlsx"
    done = invoke("report", "run", "ledger.disputes", "--period", "2026-11", "--param",
                  f"as_of={NOV_END}", "--format", "xlsx", "--out", str(out), home_dir=home)
    assert done.exit_code == 0, done.output
    sheet = openpyxl.load_workbook(out).worksheets[0]
    assert any(row[0] == TOWNSHIP[0] and row[1] == 4 for row in sheet.iter_rows(values_only=True))
    assessed = invoke("ledger", "target", "report", "--year", "2026", "--format", "json",
                      home_dir=home)
    assert assessed.exit_code == 0, assessed.output
    assert json.loads(assessed.output)["report"] == "ledger.targets"
    bad = invoke("report", "run", "ledger.disputes", "--period", "2026-13", home_dir=home)
    assert bad.exit_code != 0 and "2026-13" in bad.output and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_a_county_without_the_ledger_plugin_holds_the_submission_and_says_it_cannot_check(
        tmp_path):
    without = [p for p in DEFAULT_PLUGINS if "ledger" not in p]
    county = Node.init(tmp_path / "county", level="county", area=COUNTY[0], name=COUNTY[1],
                       root=True, pm=get_plugin_manager(entry_points=False, defaults=without))
    township = new_node(tmp_path / "township", "township", *TOWNSHIP)
    enrol(township, county)
    dispute(township, "2026-11-05", "移民安置", "中")
    carry(county, township, tmp_path)
    done = sub.submit(township, "ledger.disputes", "2026-11", day(NOV_END))
    assert done["figures"]["total"]["screened"] == 1
    carry(township, county, tmp_path)
    record = done["record"]
    assert approval.load(county.db, record)["status"] == "submitted"
    assert sub.verify_submission(county, record).result == sub.UNAVAILABLE
    with pytest.raises(InvalidInput, match="ledger.disputes"):
        sub.approve(county, record)
    county.close()
    county = Node.open(tmp_path / "county")  # the plugin installed: the disputes fold
    assert sub.verify_submission(county, record).result == sub.CONSISTENT
    sub.approve(county, record)
    for node in (county, township):
        node.close()
