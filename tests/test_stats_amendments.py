"""补报 on the next report: a late event changing an approved period's figures leaves the
approved figures as they are and shows, on ``report run stats.monthly`` for a later period,
one line per changed earlier period with the approved value and the value now.

Worked out by hand: in October village 1 registers one visit (赵某11, received
2026-10-08); the township submits its October report as of 2026-10-31 and the county
approves it: 1 case (件), 1 visit (批次), 1 person-visit (人次), in the village's row and
the total. Its decision deadline (10-08 + 15 days = 10-23) fell due by 10-31, so the
及时受理率's denominator is 1. Then a case received 2026-10-20 (赵某12) is registered at
the village and synced: October now holds 2 cases, 2 visits, 2 person-visits, 2
self-submitted (来源 群众自行) and the 重复信访率's denominator (every case of the period)
is 2, in the village's row and the total; its decision deadline (11-04) falls after
10-31 and neither case repeats another, so no other figure changes.
"""

from __future__ import annotations

import datetime as dt
import json

import openpyxl

from sync_helpers import TOWNSHIP, carry, register
from test_stats_submission import tree, up  # noqa: F401  (the fixture: a November tree)
from xinfang.plugins.stats import approval, submission as sub

OCTOBER = f"{TOWNSHIP[0]}-2026-10-stats.monthly"
VILLAGE_AREA = "431202101201"
#: the figures the late case changes, in the village's row and the total, as the next
#: report's line shows them (审核数 approved, 现核算 now)
CHANGED = [f"{group} {figure}：审核数 1，现核算 2（+1）" for group in (VILLAGE_AREA, "合计")
           for figure in ("件数", "批次", "人次", "来源：群众自行", "重复信访率分母")]


def approved_october(tree, tmp_path):
    register(tree.village, 11, received="2026-10-08")
    up(tree, tmp_path)
    carry(tree.county, tree.township, tmp_path)
    done = sub.submit(tree.township, "stats.monthly", "2026-10", dt.date(2026, 10, 31))
    assert done["figures"]["total"]["cases"] == 1
    carry(tree.township, tree.county, tmp_path)
    sub.approve(tree.county, OCTOBER)
    carry(tree.county, tree.township, tmp_path)


def run_november(invoke, home, *options):
    result = invoke("report", "run", "stats.monthly", "--period", "2026-11", "--area",
                    TOWNSHIP[0], *options, home_dir=home)
    assert result.exit_code == 0, result.output
    return result.output


def amendment_lines(text):
    return [line for line in text.splitlines() if "补报" in line]


def test_a_late_case_of_an_approved_month_is_a_bubao_line_on_the_next_report(
        tree, tmp_path, invoke):
    approved_october(tree, tmp_path)
    county = tree.county.home
    assert amendment_lines(run_november(invoke, county)) == []
    assert not any("补报" in n for n in json.loads(run_november(
        invoke, county, "--format", "json"))["notes"])

    register(tree.village, 12, received="2026-10-20")  # registered after the approval
    up(tree, tmp_path)

    [line] = amendment_lines(run_november(invoke, county))
    assert "2026-10" in line and OCTOBER in line
    for changed in CHANGED:
        assert changed in line
    assert line.count("审核数") == len(CHANGED)  # no other figure changed
    notes = json.loads(run_november(invoke, county, "--format", "json"))["notes"]
    assert [n for n in notes if "补报" in n] == [line.removeprefix("- ")]
    csv_text = run_november(invoke, county, "--format", "csv")
    assert sum("补报" in row for row in csv_text.splitlines()) == 1
    sheet = tmp_path / "november.xlsx"
    run_november(invoke, county, "--format", "xlsx", "--out", str(sheet))
    cells = [c.value for row in openpyxl.load_workbook(sheet).worksheets[0].iter_rows()
             for c in row if isinstance(c.value, str) and "补报" in c.value]
    assert cells == [line.removeprefix("- ")]
    # the approved figures stand
    assert approval.load(tree.county.db, OCTOBER)["figures"]["total"]["cases"] == 1


def test_the_bubao_line_also_shows_on_the_townships_own_report_once_synced(
        tree, tmp_path, invoke):
    approved_october(tree, tmp_path)
    register(tree.village, 12, received="2026-10-20")
    carry(tree.village, tree.township, tmp_path)
    [line] = amendment_lines(run_november(invoke, tree.township.home))
    assert OCTOBER in line and all(changed in line for changed in CHANGED)


def test_no_bubao_for_an_area_without_an_approved_period_or_for_the_same_period(
        tree, tmp_path, invoke):
    approved_october(tree, tmp_path)
    register(tree.village, 12, received="2026-10-20")
    up(tree, tmp_path)
    county_area = invoke("report", "run", "stats.monthly", "--period", "2026-11",
                         home_dir=tree.county.home)
    assert county_area.exit_code == 0 and amendment_lines(county_area.output) == []
    october = invoke("report", "run", "stats.monthly", "--period", "2026-10", "--area",
                     TOWNSHIP[0], home_dir=tree.county.home)
    assert october.exit_code == 0 and amendment_lines(october.output) == []
