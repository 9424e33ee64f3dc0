"""The 月报表's indicators on a real county, against answers worked out by hand.

The fixture county holds a small, known set of cases registered and handled
on real nodes (two villages, their township, the county) and carried up by
bundle. Every expected figure below is counted from the list of cases in
``build_county``'s docstring, not from the code under test.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_helpers import build_tree, carry, register
from xinfang.core import reports
from xinfang.core.errors import InvalidInput, StepRefused
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.core.reports import Change, Ratio
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.core import periods
from xinfang.plugins.stats.indicators import INDICATORS, load_cases
from xinfang.plugins.stats.tally import Tally

LATER = dt.date(2026, 12, 1)  # "today" for steps taken after the helpers' fixed day
NEXT_YEAR = dt.date(2027, 1, 1)
TOWNSHIP_2 = "431202102201"   # a village of a second township, registered at the county


def step(node, case_id, name, **values):
    api.take_step(node, case_id, name, values, today=LATER)


def county_case(node, serial, received, **overrides):
    values = dict(petitioners=[api.PetitionerInput(f"钱某{serial}", synthetic(100 + serial))],
                  channel="来信", category="劳动社保", kind="申诉求决", request="请求解决问题",
                  received=received, area=TOWNSHIP_2)
    values.update(overrides)
    return api.register_case(node, api.CaseInput(**values), today=LATER)


def build_county(base: Path):
    """The fixture tree and its cases (period of interest: 2026-11).

    Village A (431202101201):
      A1 received 2026-10-25, visit of 1, labour; 受理 2026-11-02 (decide due 11-09)
      A2 received 2026-11-03, visit of 30 (集体访); never decided (decide due 11-18)
      A3 received 2026-11-04, visit, 涉法涉诉; 不予受理 11-05 (excluded everywhere)
      A4 received 2026-11-05, letter; 不予受理 11-10 (decide due 11-20)
      A5 received 2026-11-06, visit of 1, labour, the same petitioner as A1 (重复访);
         受理 11-25 (decide due 11-21: late)
    Village B (431202101202):
      B1 received 2026-08-01, online, land; 受理 08-05 (answer due 10-04); 延期 09-20
         +30 days (due 11-03); 答复 11-02; 满意 11-06
    County, area 431202102201 (a second township):
      C1 received 2026-09-01, letter; 受理 09-02 (answer due 11-01); 答复 11-05 (late);
         不满意 11-08
      C2 received 2025-11-10, visit of 2; nothing since (decide due 2025-11-25)
      C3 received 2026-09-05, letter; 受理 09-06 (answer due 11-05); 答复 11-04; 基本满意 11-10
      C4 received 2026-09-03, letter; 受理 09-03 (answer due 11-02); never answered
    """
    tree = build_tree(base)
    a, b, county = tree.village, tree.sibling, tree.county
    ids = {}
    ids["A1"] = register(a, 1, received="2026-10-25")
    step(a, ids["A1"], "accept", date="2026-11-02", unit="镇劳动保障所", leader="王某")
    ids["A2"] = register(a, 2, received="2026-11-03", headcount=30)
    ids["A3"] = register(a, 3, received="2026-11-04", category="涉法涉诉")
    step(a, ids["A3"], "reject", date="2026-11-05", reason="属诉讼程序", legal_channel="诉讼")
    ids["A4"] = register(a, 4, received="2026-11-05", channel="来信")
    step(a, ids["A4"], "reject", date="2026-11-10", reason="应申请仲裁", legal_channel="仲裁")
    ids["A5"] = register(a, 1, received="2026-11-06", request="再次请求追讨拖欠工资")
    step(a, ids["A5"], "accept", date="2026-11-25", unit="镇劳动保障所", leader="李某")
    ids["B1"] = register(b, 6, received="2026-08-01", channel="网上信访", category="国土资源")
    step(b, ids["B1"], "accept", date="2026-08-05", unit="镇国土所", leader="张某")
    step(b, ids["B1"], "extend", date="2026-09-20", days=30, reason="需实地核查")
    step(b, ids["B1"], "answer", date="2026-11-02", outcome="解释说明")
    step(b, ids["B1"], "rate", date="2026-11-06", rating="满意")
    ids["C1"] = county_case(county, 1, "2026-09-01")
    step(county, ids["C1"], "accept", date="2026-09-02", unit="县人社局", leader="刘某")
    step(county, ids["C1"], "answer", date="2026-11-05", outcome="予以支持")
    step(county, ids["C1"], "rate", date="2026-11-08", rating="不满意")
    ids["C2"] = county_case(county, 2, "2025-11-10", channel="来访", headcount=2)
    ids["C3"] = county_case(county, 3, "2026-09-05", category="农村农业")
    step(county, ids["C3"], "accept", date="2026-09-06", unit="县农业农村局", leader="陈某")
    step(county, ids["C3"], "answer", date="2026-11-04", outcome="解释说明")
    step(county, ids["C3"], "rate", date="2026-11-10", rating="基本满意")
    ids["C4"] = county_case(county, 4, "2026-09-03")
    step(county, ids["C4"], "accept", date="2026-09-03", unit="县住建局", leader="周某")
    for village in tree.villages:
        carry(village, tree.township, base)
    carry(tree.township, county, base)
    return tree, ids


@pytest.fixture(scope="module")
def county_tree(tmp_path_factory):
    tree, ids = build_county(tmp_path_factory.mktemp("stats"))
    yield tree, ids
    tree.close()


def monthly(node, **params):
    given = {"period": "2026-11", **params}
    return reports.run_report(node, "stats.monthly", given)


# -- periods ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, start, end, previous, year_ago", [
    ("2026-11", "2026-11-01", "2026-11-30", "2026-10", "2025-11"),
    ("2026-01", "2026-01-01", "2026-01-31", "2025-12", "2025-01"),
    ("2026-Q4", "2026-10-01", "2026-12-31", "2026-Q3", "2025-Q4"),
    ("2026-Q1", "2026-01-01", "2026-03-31", "2025-Q4", "2025-Q1"),
    ("2026", "2026-01-01", "2026-12-31", "2025", "2025"),
    # 92 days, so the one before is the 92 days ending 2026-02-28
    ("2026-03-01..2026-05-31", "2026-03-01", "2026-05-31", "2025-11-29..2026-02-28",
     "2025-03-01..2025-05-31"),
])
def test_each_period_form_knows_its_days_the_one_before_and_last_year(text, start, end,
                                                                      previous, year_ago):
    period = periods.parse(text)
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)
    assert period.previous().code == previous
    assert period.year_ago().code == year_ago


def test_the_trend_is_the_twelve_months_up_to_the_period():
    months = periods.parse("2026-11").months(12)
    assert [m.code for m in months][:2] == ["2025-12", "2026-01"]
    assert months[-1].code == "2026-11" and len(months) == 12


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "11/2026", "2026-05-31..2026-03-01",
                                  "", "二〇二六年"])
def test_a_bad_period_is_one_error_naming_the_forms_accepted(text):
    with pytest.raises(InvalidInput) as caught:
        periods.parse(text)
    message = str(caught.value)
    assert "\n" not in message
    assert "2026-Q4" in message and "2026-03-01..2026-05-31" in message


def test_a_rate_with_nothing_to_count_has_no_value_rather_than_a_division_error():
    assert Ratio(0, 0).value is None
    assert Ratio(1, 4).value == 0.25
    assert Change.between(Ratio(1, 2), Ratio(0, 0)).value is None
    assert Change.between(3, 0).value is None


def test_every_indicator_has_a_definition_and_a_date_that_decides_the_period():
    assert len({i.name for i in INDICATORS}) == len(INDICATORS)
    for indicator in INDICATORS:
        assert indicator.definition and indicator.label
        assert indicator.kind in ("count", "ratio")


# -- the county's November, by hand -----------------------------------------------------


def test_counts_of_cases_visits_and_person_visits(county_tree):
    tree, _ = county_tree
    total = monthly(tree.county).total
    # received in November, 涉法涉诉 A3 left out: A2, A4, A5
    assert total["cases"] == 3
    # visits among them: A2 and A5 (A4 is a letter): one batch each, the group of 30 too
    assert total["batches"] == 2
    # person-visits: A2's 30 + A5's 1; the letter A4 counts in cases only
    assert total["person_visits"] == 30 + 1
    assert (total["collective"], total["collective_people"]) == (1, 30)
    assert total["repeat"] == 1  # A5 repeats A1


def test_timely_acceptance_counts_decisions_including_not_accepted_across_month_ends(
        county_tree):
    tree, _ = county_tree
    # decisions due or made in November: A1 (registered in October, accepted 11-02, due
    # 11-09: timely), A2 (due 11-18, none: late), A4 (不予受理 11-10, due 11-20: timely),
    # A5 (due 11-21, accepted 11-25: late); A3 is 涉法涉诉 and left out
    assert monthly(tree.county).total["timely_acceptance"] == Ratio(2, 4)


def test_on_time_closure_counts_the_extended_deadline(county_tree):
    tree, _ = county_tree
    # handling deadlines due or met in November: B1 (due 10-04 + 30 days = 11-03, answered
    # 11-02: on time only thanks to the 延期), C1 (due 11-01, answered 11-05: late), C3
    # (due 11-05, answered 11-04), C4 (due 11-02, never answered)
    assert monthly(tree.county).total["on_time_closure"] == Ratio(2, 4)


def test_satisfaction_and_rating_rate_of_cases_answered_in_the_period(county_tree):
    tree, _ = county_tree
    total = monthly(tree.county).total
    # answered in November: B1 满意, C1 不满意, C3 基本满意
    assert total["satisfaction"] == Ratio(1 + 1, 3)
    assert total["rated"] == Ratio(3, 3)


def test_repeat_rate_and_first_petition_closure(county_tree):
    tree, _ = county_tree
    total = monthly(tree.county).total
    assert total["repeat_rate"] == Ratio(1, 3)  # A5 of A2, A4, A5
    # first petitions whose handling deadline came in November: B1, C1, C3, C4; answered
    # by 11-30: B1, C1, C3
    assert total["first_petition_closure"] == Ratio(3, 4)


def test_law_litigation_cases_are_left_out_and_the_report_says_how_many(county_tree):
    tree, ids = county_tree
    result = monthly(tree.county)
    note = result.notes[0]
    assert "涉法涉诉" in note
    # A3: one case registered, one decision on acceptance, one visit of one person
    assert "本期登记 1 件" in note
    assert "及时受理率 1" in note and "批次 1" in note
    assert all(row["group"] != "涉法涉诉" for row in monthly(tree.county, by="category").rows)


def test_previous_period_and_same_period_last_year(county_tree):
    tree, _ = county_tree
    comparison = {row["indicator"]: row for row in monthly(tree.county).tables[0].rows}
    cases = comparison["件数"]
    # October: A1 only; November 2025: C2 only
    assert (cases["current"], cases["previous"], cases["last_year"]) == (3, 1, 1)
    assert cases["mom"] == Change((3 - 1) / 1) and cases["yoy"] == Change((3 - 1) / 1)
    people = comparison["人次"]
    assert (people["previous"], people["last_year"]) == (1, 2)  # A1's 1; C2's 2
    assert people["yoy"].value == pytest.approx((31 - 2) / 2)
    timely = comparison["及时受理率"]
    # November 2025: C2's decision fell due 2025-11-25 and was never made
    assert timely["last_year"] == Ratio(0, 1)
    assert timely["yoy"] == Change(0.5 - 0.0, "points")
    # October: no decision was due or made
    assert timely["previous"] == Ratio(0, 0) and timely["mom"].value is None


def test_the_trend_holds_twelve_months_ending_with_the_period(county_tree):
    tree, _ = county_tree
    trend = {row["month"]: row for row in monthly(tree.county).trend.rows}
    assert len(trend) == 12
    assert trend["2026-11"]["cases"] == 3 and trend["2026-10"]["cases"] == 1
    assert trend["2026-08"]["cases"] == 1  # B1
    assert trend["2026-09"]["cases"] == 3  # C1, C3, C4
    assert trend["2025-12"]["cases"] == 0  # C2 was received in November 2025


def test_the_county_breaks_down_by_township_and_the_township_by_village(county_tree):
    tree, _ = county_tree
    rows = {row["group"]: row for row in monthly(tree.county).rows}
    assert set(rows) == {"431202101", "431202102"}
    assert rows["431202101"]["cases"] == 3 and rows["431202102"]["cases"] == 0
    assert rows["431202101"]["timely_acceptance"] == Ratio(2, 4)
    # township 102: C1 late, C3 on time, C4 never answered; township 101: B1 on time
    assert rows["431202102"]["on_time_closure"] == Ratio(1, 3)
    assert rows["431202101"]["on_time_closure"] == Ratio(1, 1)

    by_village = {row["group"]: row for row in monthly(tree.county, area="431202101").rows}
    assert set(by_village) == {"431202101201", "431202101202"}
    assert by_village["431202101201"]["person_visits"] == 31
    assert by_village["431202101202"]["satisfaction"] == Ratio(1, 1)
    # the township's own node holds the same figures for its area as the county
    assert monthly(tree.township).total == monthly(tree.county, area="431202101").total


def test_breakdown_by_channel_category_and_kind(county_tree):
    tree, _ = county_tree
    by_channel = {row["group"]: row for row in monthly(tree.county, by="channel").rows}
    assert by_channel["来访"]["cases"] == 2 and by_channel["来信"]["cases"] == 1
    by_category = {row["group"]: row for row in monthly(tree.county, by="category").rows}
    assert by_category["国土资源"]["on_time_closure"] == Ratio(1, 1)
    by_kind = {row["group"]: row for row in monthly(tree.county, by="kind").rows}
    assert by_kind["申诉求决"]["cases"] == 3


def test_an_area_outside_the_node_is_refused(county_tree):
    tree, _ = county_tree
    with pytest.raises(InvalidInput):
        monthly(tree.township, area="431202102")


def test_a_filed_report_shows_the_same_figures_when_run_later(county_tree):
    tree, _ = county_tree
    early = monthly(tree.county, as_of="2026-12-01").total
    late = monthly(tree.county, as_of="2027-03-01").total
    assert early == late
    # seen as of 11-05, A2's decision (due 11-18) had not fallen due yet: A1 and A3 only,
    # and A3 is left out
    assert monthly(tree.county, as_of="2026-11-05").total["timely_acceptance"] == Ratio(1, 1)


# -- the grouped path against a count case by case ---------------------------------------

CHANNELS = ["来访", "来信", "网上信访", "电话"]
CATEGORIES = ["劳动社保", "国土资源", "涉法涉诉", "农村农业"]
AREAS = ["431202101201", "431202102201", "431202103201"]
CASES = st.lists(st.tuples(
    st.sampled_from(AREAS), st.sampled_from(CHANNELS), st.sampled_from(CATEGORIES),
    st.integers(1, 40), st.integers(1, 30),     # headcount; day of November
    st.sampled_from([None, "受理", "不予受理"]), st.integers(0, 20)),  # decision after n days
    min_size=0, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CASES)
def test_breakdown_rows_sum_to_the_total_row_and_equal_a_count_case_by_case(cases):
    with tempfile.TemporaryDirectory() as home:
        node = Node.init(Path(home) / "county", level="county", area="431202",
                         name="示例县信访局", root=True, pm=get_plugin_manager())
        node.operator = "测试员"
        try:
            for serial, (area, channel, category, headcount, day, decision, after) in \
                    enumerate(cases):
                received = dt.date(2026, 11, day)
                case_id = api.register_case(node, api.CaseInput(
                    petitioners=[api.PetitionerInput(f"孙某{serial}", synthetic(500 + serial))],
                    channel=channel, category=category, kind="申诉求决", request="请求",
                    received=received.isoformat(), headcount=headcount, area=area),
                    today=LATER)
                date = (received + dt.timedelta(days=after)).isoformat()
                if decision == "受理":
                    api.take_step(node, case_id, "accept", {"date": date}, today=NEXT_YEAR)
                elif decision == "不予受理":
                    api.take_step(node, case_id, "reject", {
                        "date": date, "reason": "另有法定途径", "legal_channel": "诉讼"},
                        today=NEXT_YEAR)
            counted = [c for c in cases if c[2] != "涉法涉诉"]
            for by in ("area", "channel", "category", "kind"):
                result = reports.run_report(node, "stats.monthly",
                                            {"period": "2026-11", "by": by})
                for indicator in INDICATORS:
                    values = [row[indicator.name] for row in result.rows]
                    whole = result.total[indicator.name]
                    if indicator.kind == "ratio":
                        assert sum(v.numerator for v in values) == whole.numerator
                        assert sum(v.denominator for v in values) == whole.denominator
                    else:
                        assert sum(values) == whole
            total = result.total
            # the one-pass tally gives what each indicator's simple case-by-case sum gives
            loaded = load_cases(node, "431202")
            for indicator in INDICATORS:
                assert indicator.value(loaded, "2026-11-01", "2026-11-30",
                                       "2026-11-30") == total[indicator.name], indicator.name
            assert total["cases"] == len(counted)
            assert total["batches"] == sum(1 for c in counted if c[1] == "来访")
            assert total["person_visits"] == sum(c[3] for c in counted if c[1] == "来访")
            # decisions fall due 15 days after receipt: by 12-15 at the latest, so every
            # decision of a November case is due or made by 11-30 only if within the month
            timely = [c for c in counted if c[5] and c[6] <= 15]
            due_in_november = [c for c in counted
                               if (c[5] and min(c[4] + c[6], c[4] + 15) <= 30)
                               or (not c[5] and c[4] + 15 <= 30)]
            in_period = [c for c in timely if c[4] + c[6] <= 30]
            assert total["timely_acceptance"] == Ratio(len(in_period), len(due_in_november))
        finally:
            node.close()


# -- reading only the cases a report's periods can count ---------------------------------

#: (received: days after 2024-09-01, category, steps: (step, days after the one before))
HISTORIES = st.lists(st.tuples(
    st.integers(0, 760), st.sampled_from(["劳动社保", "涉法涉诉"]),
    st.lists(st.tuples(st.sampled_from(["accept", "extend", "answer", "close", "rate"]),
                       st.integers(0, 120)), max_size=4)),
    min_size=1, max_size=10)
STEP_VALUES = {"extend": {"days": 30, "reason": "情况复杂"}, "answer": {"outcome": "explain"},
               "rate": {"rating": "satisfied"}}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HISTORIES, st.sampled_from(["2025-03", "2025-10", "2026-01", "2026-08"]))
def test_a_report_reading_only_the_cases_dated_in_its_periods_counts_what_all_give(
        histories, month):
    """``load_cases(since=…)`` skips the cases with no date on or after ``since``: for
    every period of a 月报表 (the month, the one before, a year earlier, the trend), the
    figures from what it reads equal the figures from every case."""
    start = dt.date(2024, 9, 1)
    with tempfile.TemporaryDirectory() as home:
        node = Node.init(Path(home) / "county", level="county", area="431202",
                         name="示例县信访局", root=True, pm=get_plugin_manager())
        node.operator = "测试员"
        try:
            for serial, (received, category, steps) in enumerate(histories):
                day = start + dt.timedelta(days=received)
                case_id = county_case(node, serial, day.isoformat(), category=category)
                for name, after in steps:
                    day += dt.timedelta(days=after)
                    try:
                        api.take_step(node, case_id, name, {"date": day.isoformat(),
                                                            **STEP_VALUES.get(name, {})},
                                      today=NEXT_YEAR)
                    except (InvalidInput, StepRefused):
                        pass  # not allowed in that state or on that day: the case stays
            period = periods.parse(month)
            spans = {"current": period, "previous": period.previous(),
                     "year_ago": period.year_ago(),
                     **{m.code: m for m in period.months(12)}}
            since = min(p.start for p in spans.values()).isoformat()
            days = {name: (p.start.isoformat(), p.end.isoformat()) for name, p in spans.items()}
            as_of = {name: p.end.isoformat() for name, p in spans.items()}
            every = Tally(INDICATORS, days, as_of).add(load_cases(node, "431202"))
            read = load_cases(node, "431202", since)
            some = Tally(INDICATORS, days, as_of).add(read)
            for name in spans:
                assert some.row(name) == every.row(name), name
                for indicator in INDICATORS:
                    assert some.left_out(indicator, name) == every.left_out(indicator, name)
            # and it does leave cases out when there are old ones to leave out
            assert len(read) <= len(load_cases(node, "431202"))
        finally:
            node.close()
