"""移民信访维稳台账: disputes, projects and targets through their lifecycles, the month's
carry and ledger, overdue disputes, 转信访, authority on arrival and sync up the tree.

The fixture: the county (431202) over township 431202101 over villages 431202101201
and 431202101202, every node with the ledger plugin. "Today" is 2026-11-22.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sync_helpers import (TODAY, build_tree, carry, deliver, feed, next_event, register,
                          send_pages, wire)
from xinfang.cli.main import build_cli
from xinfang.core import i18n, records
from xinfang.core.errors import InvalidEvent, InvalidInput, StepRefused
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.ledger import api

VILLAGE, SIBLING, TOWNSHIP, COUNTY = "431202101201", "431202101202", "431202101", "431202"


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path)
    yield built
    built.close()


def dispute(node, date="2026-11-03", area=None, **extra):
    values = {"date": date, "kind": "征地补偿", "summary": "赵某甲等反映征地补偿款未足额发放",
              "people": 5, "risk": "高", "leader": "示例镇副镇长甲", "person": "钱某乙",
              "due": "2026-11-30", **extra}
    return api.add_dispute(node, values, area=area, today=TODAY)


def row(node, dispute_id):
    return node.db.execute("select status, progress, resolved_on, case_id from ledger_disputes "
                           "where id = ?", [dispute_id]).fetchone()


def sync_up(tree, tmp_path):
    carry(tree.village, tree.township, tmp_path)
    carry(tree.township, tree.county, tmp_path)


# -- lifecycles ------------------------------------------------------------------------


def test_a_dispute_is_screened_worked_on_and_resolved(tree):
    number = dispute(tree.village)
    assert number == f"{VILLAGE}-2026-00001"
    assert row(tree.village, number) == ("screened", None, None, None)
    api.step(tree.village, "dispute", number, "start",
             {"date": "2026-11-05", "measures": "召开协调会", "mediation": "人民调解"}, TODAY)
    api.step(tree.village, "dispute", number, "progress",
             {"date": "2026-11-10", "progress": "已核实补偿标准"}, TODAY)
    assert row(tree.village, number) == ("resolving", "已核实补偿标准", None, None)
    api.step(tree.village, "dispute", number, "resolve",
             {"date": "2026-11-18", "progress": "补偿款已补发到户"}, TODAY)
    record = records.get(tree.village, "dispute", number)
    assert (record.status, record.status_label) == ("resolved", "已化解")
    assert row(tree.village, number) == ("resolved", "补偿款已补发到户", "2026-11-18", None)
    assert [h["step"] for h in record.history] == ["add", "start", "progress", "resolve"]
    with pytest.raises(StepRefused, match="已化解"):
        api.step(tree.village, "dispute", number, "progress", {"progress": "再次回访"}, TODAY)


def test_a_dispute_turned_into_a_petition_links_a_case_held_here_only(tree):
    case = register(tree.village, 1, received="2026-11-04")
    number = dispute(tree.village)
    before = tree.village.db.execute("select count(*) from events").fetchone()
    with pytest.raises(InvalidInput, match="431202101201-2026-99999"):
        api.step(tree.village, "dispute", number, "to_petition",
                 {"date": "2026-11-06", "case": "431202101201-2026-99999"}, TODAY)
    assert tree.village.db.execute("select count(*) from events").fetchone() == before
    api.step(tree.village, "dispute", number, "to_petition",
             {"date": "2026-11-06", "case": case}, TODAY)
    assert row(tree.village, number) == ("to_petition", None, None, case)
    assert records.get(tree.village, "dispute", number).status_label == "已转信访"


def test_a_step_dated_before_the_screening_is_refused(tree):
    number = dispute(tree.village, date="2026-11-10")
    with pytest.raises(StepRefused, match="2026-11-10"):
        api.step(tree.village, "dispute", number, "start", {"date": "2026-11-09"}, TODAY)


def test_a_project_reports_progress_to_completion(tree):
    number = api.add_project(tree.village, {"date": "2026-03-01", "kind": "旧房改造",
                                            "name": "示例一村旧房改造", "planned": 37,
                                            "unit": "户"}, today=TODAY)
    for day, done in (("2026-06-30", 11), ("2026-09-30", 25)):
        api.step(tree.village, "project", number, "progress",
                 {"date": day, "done": done, "note": "按计划推进"}, TODAY)
    assert api.project_done(tree.village, number) == 25
    with pytest.raises(StepRefused, match="37"):
        api.step(tree.village, "project", number, "progress",
                 {"date": "2026-10-30", "done": 38}, TODAY)
    api.step(tree.village, "project", number, "progress", {"date": "2026-10-31", "done": 37},
             TODAY)
    api.step(tree.village, "project", number, "finish", {"date": "2026-11-01"}, TODAY)
    record = records.get(tree.village, "project", number)
    assert (record.status_label, api.project_done(tree.village, number)) == ("已完工", 37)


def test_a_project_lies_in_a_village_and_a_dispute_not_in_a_county(tree):
    with pytest.raises(InvalidEvent, match=TOWNSHIP):
        api.add_project(tree.township, {"kind": "道路", "name": "示例镇道路", "planned": 3},
                        today=TODAY)
    with pytest.raises(InvalidEvent, match=COUNTY):
        dispute(tree.county)
    assert dispute(tree.county, area=TOWNSHIP).startswith(COUNTY)


def test_a_target_is_set_once_per_township_and_year_and_revised(tree):
    values = {"year": 2026, "no_mass": "是", "max_skipped": 2, "min_resolution": 90}
    target = api.set_target(tree.county, TOWNSHIP, values, today=TODAY)
    assert target == f"{TOWNSHIP}-2026-target"
    with pytest.raises(InvalidInput, match=target):
        api.set_target(tree.county, TOWNSHIP, values, today=TODAY)
    api.step(tree.county, "target", target, "revise",
             {"date": "2026-07-01", "max_skipped": 1, "min_resolution": 95}, TODAY)
    got = tree.county.db.execute("select year, no_mass, max_skipped, min_resolution from "
                                 "ledger_targets where id = ?", [target]).fetchone()
    assert got == (2026, 1, 1, 95)
    assert api.set_target(tree.county, TOWNSHIP, {**values, "year": 2027}, today=TODAY) \
        == f"{TOWNSHIP}-2027-target"


def test_a_township_sets_no_target_even_for_itself(tree):
    with pytest.raises(InvalidEvent, match="431202101"):
        api.set_target(tree.township, TOWNSHIP, {"year": 2026}, today=TODAY)


# -- the month: carry, ledger, overdue ------------------------------------------------


def test_carrying_the_month_rescreens_open_disputes_once(tree):
    """Three October disputes, one resolved in October: two are carried into November,
    and a November one is in November's ledger already; carrying again takes no step."""
    first = dispute(tree.village, date="2026-10-08")
    second = dispute(tree.village, date="2026-10-15", risk="低")
    closed = dispute(tree.village, date="2026-10-20")
    api.step(tree.village, "dispute", closed, "resolve",
             {"date": "2026-10-25", "progress": "已调解"}, TODAY)
    november = dispute(tree.village, date="2026-11-03")
    assert [r["id"] for r in api.month_ledger(tree.village, "2026-11")] == [november]
    assert api.carry(tree.village, "2026-11", today=TODAY) == [first, second]
    events = tree.village.db.execute("select count(*) from events").fetchone()
    assert api.carry(tree.village, "2026-11", today=TODAY) == []
    assert tree.village.db.execute("select count(*) from events").fetchone() == events
    ledger = api.month_ledger(tree.village, "2026-11")
    assert [(r["no"], r["id"], r["rescreened"]) for r in ledger] == [
        (1, first, "2026-11-01"), (2, second, "2026-11-01"), (3, november, None)]
    assert (ledger[0]["kind"], ledger[0]["risk"], ledger[1]["risk"]) == ("征地补偿", "高", "低")
    assert [r["id"] for r in api.month_ledger(tree.village, "2026-10")] == [first, second,
                                                                            closed]
    with pytest.raises(InvalidInput, match="2026-12-01"):
        api.carry(tree.village, "2026-12", today=TODAY)


def test_a_months_ledger_says_resolved_as_the_month_ended(tree):
    number = dispute(tree.village, date="2026-10-08")
    api.carry(tree.village, "2026-11", date="2026-11-02", today=TODAY)
    api.step(tree.village, "dispute", number, "resolve",
             {"date": "2026-11-12", "progress": "已化解"}, TODAY)
    (october,) = api.month_ledger(tree.village, "2026-10")
    (november,) = api.month_ledger(tree.village, "2026-11")
    assert (october["resolved"], november["resolved"]) == (False, True)
    assert november["rescreened"] == "2026-11-02"


def test_overdue_disputes_are_the_open_ones_due_before_the_day(tree):
    due_early = dispute(tree.village, due="2026-11-10")
    dispute(tree.village, due="2026-11-25")
    resolved = dispute(tree.village, due="2026-11-05")
    api.step(tree.village, "dispute", resolved, "resolve",
             {"date": "2026-11-06", "progress": "已化解"}, TODAY)
    assert [r.id for r in api.overdue(tree.village, "2026-11-20")] == [due_early]
    assert [r.id for r in api.overdue(tree.village, "2026-11-10")] == []


# -- authority on arrival --------------------------------------------------------------


def add_body(**extra):
    return {"date": "2026-11-03", "kind": "land_compensation", "summary": "征地补偿",
            "risk": "high", "fields": {}, "by": "thief", **extra}


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_stolen_township_key_cannot_set_a_target(tree, tmp_path, via):
    own = dispute(tree.township)  # the feed's own events arrive, the target does not
    event = next_event(tree.township, type="target.set", entity="target",
                       entity_id=f"{TOWNSHIP}-2026-target", area=TOWNSHIP,
                       body={"year": 2026, "max_skipped": 99, "fields": {}, "by": "thief"})
    applied, refused = deliver(tree.township, tree.county, [*feed(tree.township), event], via,
                               tmp_path)
    assert row(tree.county, own)[0] == "screened"
    assert event.id in refused and "431202101" in refused[event.id]
    assert tree.county.db.execute("select count(*) from ledger_targets").fetchone() == (0,)


def test_a_target_whose_id_is_not_its_township_and_year_is_refused(tree, tmp_path):
    """Signed by the county itself, sent down in a bundle: the id names another year."""
    api.set_target(tree.county, TOWNSHIP, {"year": 2025}, today=TODAY)
    carry(tree.county, tree.township, tmp_path)
    event = next_event(tree.county, type="target.set", entity="target",
                       entity_id=f"{TOWNSHIP}-2027-target", area=TOWNSHIP,
                       body={"year": 2026, "fields": {}, "by": "x"})
    summary = send_pages(tree.county, tree.township, [wire([event], certs_from=tree.county)],
                         tmp_path)
    assert event.id in {r.event_id for r in summary.refused}
    assert tree.township.db.execute("select id from ledger_targets").fetchall() == [
        (f"{TOWNSHIP}-2025-target",)]


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_village_key_cannot_set_a_target_for_its_own_area(tree, tmp_path, via):
    """The id is the one its values give, so only the rule of who signs refuses it."""
    thief = tree.village
    dispute(thief)
    made = [next_event(thief, type="target.set", entity="target",
                       entity_id=f"{VILLAGE}-2026-target", area=VILLAGE,
                       body={"year": 2026, "fields": {}, "by": "x"})]
    applied, refused = deliver(thief, tree.township, [*feed(thief), *made], via, tmp_path)
    assert made[0].id in refused and VILLAGE in refused[made[0].id]
    assert tree.township.db.execute("select count(*) from ledger_targets").fetchone() == (0,)


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_project_for_a_township_is_refused_on_arrival(tree, tmp_path, via):
    """A township key records disputes for its own area, but a project lies in a village:
    the township's own dispute arrives, its project for the township is refused."""
    thief = tree.township
    good = dispute(thief)
    event = next_event(thief, type="project.add", entity="project",
                       entity_id=f"{TOWNSHIP}-2026-00002", area=TOWNSHIP,
                       body={"kind": "road", "name": "示例镇道路", "planned": 3,
                             "date": "2026-11-03", "fields": {}, "by": "x"})
    applied, refused = deliver(thief, tree.county, [*feed(thief), event], via, tmp_path)
    assert event.id in refused and "431202101" in refused[event.id]
    assert tree.county.db.execute("select id from ledger_disputes").fetchall() == [(good,)]
    assert tree.county.db.execute("select count(*) from ledger_projects").fetchone() == (0,)


def test_a_sibling_villages_key_cannot_step_anothers_dispute(tree, tmp_path):
    """The sibling's step claiming the dispute's area is refused on arrival (outside its
    certificate); claiming its own area it is a conflict on every node (``reach``)."""
    number = dispute(tree.village)
    sync_up(tree, tmp_path)
    thief = tree.sibling
    dispute(thief)
    claims = [next_event(thief, type="dispute.resolve", entity="dispute", entity_id=number,
                         area=VILLAGE, body={"values": {"date": "2026-11-05",
                                                        "progress": "已化解"}, "by": "x"})]
    applied, refused = deliver(thief, tree.township, [*feed(thief), *claims], "bundle",
                               tmp_path)
    assert claims[0].id in refused
    own = next_event(thief, type="dispute.resolve", entity="dispute", entity_id=number,
                     area=SIBLING, body={"values": {"date": "2026-11-05",
                                                    "progress": "已化解"}, "by": "x"})
    applied, refused = deliver(thief, tree.township, [*feed(thief), own], "bundle", tmp_path)
    assert own.id not in refused
    assert row(tree.township, number)[0] == "screened"
    reasons = [i18n.show(r) for (r,) in tree.township.db.execute(
        "select reason from conflicts where entity_id = ?", [number])]
    assert len(reasons) == 1 and VILLAGE in reasons[0]


def test_a_township_key_cannot_revise_the_countys_target(tree, tmp_path):
    target = api.set_target(tree.county, TOWNSHIP, {"year": 2026, "max_skipped": 2},
                            today=TODAY)
    carry(tree.county, tree.township, tmp_path)
    thief = tree.township
    with pytest.raises(StepRefused, match="431202101"):
        api.step(thief, "target", target, "revise", {"max_skipped": 50}, TODAY)
    dispute(thief)
    event = next_event(thief, type="target.revise", entity="target", entity_id=target,
                       area=TOWNSHIP, body={"values": {"date": "2026-11-05",
                                                       "max_skipped": 50}, "by": "x"})
    deliver(thief, tree.county, [*feed(thief), event], "bundle", tmp_path)
    assert tree.county.db.execute("select max_skipped from ledger_targets").fetchone() == (2,)


# -- sync ---------------------------------------------------------------------------------


def test_a_village_dispute_travels_to_the_township_and_county_with_its_steps(tree, tmp_path):
    number = dispute(tree.village)
    api.step(tree.village, "dispute", number, "start", {"date": "2026-11-04"}, TODAY)
    sync_up(tree, tmp_path)
    assert row(tree.county, number)[0] == "resolving"
    api.step(tree.township, "dispute", number, "resolve",
             {"date": "2026-11-08", "progress": "镇调解委员会调解成功"}, TODAY)
    carry(tree.township, tree.county, tmp_path)
    carry(tree.township, tree.village, tmp_path)
    for node in (tree.village, tree.township, tree.county):
        assert row(node, number)[:3] == ("resolved", "镇调解委员会调解成功", "2026-11-08")
    assert [r["id"] for r in api.month_ledger(tree.county, "2026-11")] == [number]
    assert tree.sibling.db.execute("select count(*) from ledger_disputes").fetchone() == (0,)


# -- the command line ---------------------------------------------------------------------


def run(home, *args):
    cli = build_cli(get_plugin_manager())
    return CliRunner().invoke(cli, ["--home", str(home), "--operator", "测试员", *args])


def test_the_ledger_commands_with_json_and_one_chinese_line_on_bad_input(tree):
    home = tree.village.home
    tree.village.close()
    added = run(home, "ledger", "dispute", "add", "--date", "2026-10-08", "--kind", "移民安置",
                "--summary", "孙某丙反映安置房分配不公", "--risk", "中", "--due", "2026-10-20",
                "--json")
    assert added.exit_code == 0, added.output
    number = json.loads(added.output)["id"]
    overdue = run(home, "ledger", "dispute", "list", "--overdue", "--as-of", "2026-11-01",
                  "--json")
    assert [r["id"] for r in json.loads(overdue.output)] == [number]
    carried = run(home, "ledger", "dispute", "carry", "--month", "2026-11", "--json")
    assert carried.exit_code == 0, carried.output
    assert json.loads(carried.output) == [number]
    shown = json.loads(run(home, "ledger", "dispute", "show", number, "--json").output)
    assert [h["step"] for h in shown["history"]] == ["add", "rescreen"]
    linked = run(home, "ledger", "dispute", "to-petition", number, "--case",
                 "431202101201-2026-99999")
    assert linked.exit_code != 0 and "Traceback" not in linked.output
    assert len(linked.output.strip().splitlines()) == 1
    assert "431202101201-2026-99999" in linked.output and "信访事项" in linked.output
    bad = run(home, "ledger", "dispute", "add", "--kind", "外星人", "--summary", "x",
              "--risk", "高")
    assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1
    assert "外星人" in bad.output and "Traceback" not in bad.output
    month = run(home, "ledger", "dispute", "carry", "--month", "2026-13")
    assert month.exit_code != 0 and "2026-13" in month.output
    project = run(home, "ledger", "project", "add", "--kind", "旧房改造", "--name", "旧房改造",
                  "--planned", "37", "--json")
    assert project.exit_code == 0, project.output
    pid = json.loads(project.output)["id"]
    progressed = run(home, "ledger", "project", "progress", pid, "--done", "11", "--json")
    assert progressed.exit_code == 0, progressed.output
    listed = json.loads(run(home, "ledger", "project", "list", "--json").output)
    assert [p["id"] for p in listed] == [pid]


def test_target_set_on_the_command_line_at_the_county(tree):
    home = tree.county.home
    tree.county.close()
    made = run(home, "ledger", "target", "set", "--township", TOWNSHIP, "--year", "2026",
               "--max-skipped", "2", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["id"] == f"{TOWNSHIP}-2026-target"
    again = run(home, "ledger", "target", "set", "--township", TOWNSHIP, "--year", "2026")
    assert again.exit_code != 0 and len(again.output.strip().splitlines()) == 1
    revised = run(home, "ledger", "target", "revise", f"{TOWNSHIP}-2026-target",
                  "--max-skipped", "1", "--json")
    assert revised.exit_code == 0, revised.output
