"""The named reports through the command line: 月报表 and 超期督办, in every format.

The county is ``test_stats_indicators.build_county``'s, whose figures are
worked out by hand there; here the same figures must come out of
``xinfang report run`` as text, JSON, CSV and an xlsx workbook.
"""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from test_stats_indicators import build_county
from xinfang.core import reports
from xinfang.core.plugins import get_plugin_manager, Registry


@pytest.fixture(scope="module")
def county_tree(tmp_path_factory):
    tree, ids = build_county(tmp_path_factory.mktemp("stats-cli"))
    yield tree, ids
    tree.close()


@pytest.fixture
def run(invoke, county_tree):
    tree, _ = county_tree

    def go(*args):
        return invoke("report", *args, home_dir=tree.county.home)
    return go


def overdue(node, **params):
    return reports.run_report(node, "stats.overdue", {"period": "2026-11", **params})


def test_overdue_lists_every_unmet_deadline_with_its_days_unit_and_leader(county_tree):
    tree, ids = county_tree
    result = overdue(tree.county)
    found = [(r["case_id"], r["deadline"], r["days_overdue"]) for r in result.rows]
    # as of 11-30: C2's transfer and decision deadlines (due 2025-11-25: 365 + 5 days),
    # C4's answer (due 11-02: 28 days), A2's transfer and decision (due 11-18: 12 days).
    # A5 was accepted 11-25 (late, but met by 11-30); C1 was answered late, on 11-05.
    assert [(case, days) for case, _, days in found] == [
        (ids["C2"], 370), (ids["C2"], 370), (ids["C4"], 28), (ids["A2"], 12), (ids["A2"], 12)]
    c4 = next(r for r in result.rows if r["case_id"] == ids["C4"])
    assert (c4["unit"], c4["leader"], c4["area"]) == ("县住建局", "周某", "431202102201")
    assert c4["due"] == "2026-11-02"
    assert "3 件，5 项期限" in result.total["area"]


def test_overdue_as_of_an_earlier_day_counts_a_deadline_met_after_it(county_tree):
    tree, ids = county_tree
    rows = overdue(tree.county, as_of="2026-11-04").rows
    # on 11-04 C1's answer (due 11-01, answered 11-05) was 3 days overdue; A2 was not yet
    assert (ids["C1"], 3) in [(r["case_id"], r["days_overdue"]) for r in rows]
    assert ids["A2"] not in {r["case_id"] for r in rows}


def test_report_run_text_shows_title_header_rows_and_total(run):
    result = run("run", "stats.monthly", "--period", "2026-11")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "示例县信访局 2026年11月 信访工作月报表"
    assert "填报单位：示例县信访局" in lines
    total = next(line for line in lines if line.startswith("合计"))
    assert "50.0% (2/4)" in total and "31" in total
    assert "涉法涉诉" in result.output


def test_report_run_json_keeps_numerators_and_denominators(run):
    result = run("run", "stats.monthly", "--period", "2026-11", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"]["timely_acceptance"] == {"numerator": 2, "denominator": 4,
                                                  "value": 0.5}
    assert data["total"]["cases"] == 3
    assert [row["group"] for row in data["rows"]] == ["431202101", "431202102"]
    assert data["params"]["area"] is None and len(data["trend"]["rows"]) == 12


def test_report_run_area_option_breaks_the_township_down_by_village(run):
    result = run("run", "stats.monthly", "--period", "2026-11", "--area", "431202101",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    groups = [row["group"] for row in json.loads(result.output)["rows"]]
    assert groups == ["431202101201", "431202101202"]


def test_report_run_csv_has_the_header_rows_and_a_total_row(run):
    result = run("run", "stats.monthly", "--period", "2026-11", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output.lstrip("\ufeff"))))
    assert rows[0][:4] == ["区划", "件数", "批次", "人次"]
    total = next(r for r in rows if r and r[0] == "合计")
    assert total[1:4] == ["3", "2", "31"]


def test_report_run_xlsx_is_an_office_sheet_with_a_trend_chart(run, tmp_path):
    out = tmp_path / "月报表.xlsx"
    result = run("run", "stats.monthly", "--period", "2026-11", "--format", "xlsx",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    sheet = book.worksheets[0]
    assert sheet["A1"].value == "示例县信访局 2026年11月 信访工作月报表"
    assert sheet["A2"].value == "填报单位：示例县信访局"
    assert sheet["A3"].value.startswith("统计期间：2026年11月")
    header = next(r for r in sheet.iter_rows(min_row=1, max_row=12) if r[0].value == "区划")
    names = [c.value for c in header]
    assert names[:4] == ["区划", "件数", "批次", "人次"]
    assert sheet.freeze_panes == f"A{header[0].row + 1}"
    total = next(r for r in sheet.iter_rows() if r[0].value == "合计")
    timely = total[names.index("及时受理率")]
    assert (total[1].value, timely.value, timely.number_format) == (3, 0.5, "0.0%")
    trend = book.worksheets[1]
    assert trend.max_row == 13  # a header and twelve months
    assert len(trend._charts) == 2


def test_xlsx_without_out_is_refused_with_one_line(run):
    result = run("run", "stats.monthly", "--period", "2026-11", "--format", "xlsx")
    assert result.exit_code != 0
    assert result.output.strip().count("\n") == 0 and "--out" in result.output
    assert "Traceback" not in result.output


def test_a_bad_period_on_the_command_line_is_one_chinese_line(run):
    result = run("run", "stats.monthly", "--period", "2026-13")
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "统计期间“2026-13”无法识别" in line and "2026-Q4" in line


def test_period_given_twice_is_refused(run):
    result = run("run", "stats.monthly", "--period", "2026-11", "--param", "period=2026-10")
    assert result.exit_code != 0 and "\n" not in result.output.strip()


def test_a_report_without_a_period_refuses_the_period_option(run):
    result = run("run", "case.status", "--period", "2026-11")
    assert result.exit_code != 0 and "period" in result.output


def test_overdue_runs_through_the_cli(run, county_tree):
    _, ids = county_tree
    result = run("run", "stats.overdue", "--period", "2026-11", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["days_overdue"] for r in json.loads(result.output)["rows"]] == [370, 370, 28,
                                                                             12, 12]


def test_describe_prints_parameters_and_every_indicator_definition(run):
    result = run("describe", "stats.monthly")
    assert result.exit_code == 0, result.output
    assert "period" in result.output and "及时受理率" in result.output
    assert "决定所属期间的日期" in result.output
    data = json.loads(run("describe", "stats.monthly", "--json").output)
    assert [p["name"] for p in data["params"]] == ["period", "area", "by", "as_of"]
    names = {d["name"] for d in data["definitions"]}
    assert {"timely_acceptance", "on_time_closure", "satisfaction", "rated", "repeat_rate",
            "first_petition_closure", "cases", "batches", "person_visits"} <= names


def test_describe_an_unknown_report_is_one_line(run):
    result = run("describe", "stats.nothing")
    assert result.exit_code != 0 and "\n" not in result.output.strip()


def test_the_stats_plugin_is_built_in_and_registered_through_the_hooks():
    from xinfang.app import DEFAULT_PLUGINS, plugin_manager
    assert "xinfang.plugins.stats.plugin" in DEFAULT_PLUGINS
    registry = Registry.collect(plugin_manager(entry_points=False))
    assert {"stats.monthly", "stats.overdue"} <= set(registry.reports)
    assert registry.renderers["xlsx"].binary
    assert "stats.monthly" in Registry.collect(get_plugin_manager()).reports
