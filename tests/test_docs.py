"""The documentation is tested: every hook documented and tested, the example
plugin in CONTRIBUTING.md runs, and the README's commands are the real ones."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from xinfang.cli.main import build_cli
from xinfang.core import hookspecs, verify
from xinfang.core.errors import InvalidEvent, InvalidInput, PluginError, StepRefused
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
README = ROOT / "README.md"
TODAY = dt.date(2026, 3, 1)
COUNTY = "431202"
VILLAGE = "431202101201"

HOOKS = sorted(name for name, value in vars(hookspecs).items()
               if callable(value) and hasattr(value, "xinfang_spec"))


synthetic_id = synthetic


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S)


def section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of that level."""
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(rf"^{re.escape(heading)}[ \t]*$", text, re.M)
    assert match, f"no heading {heading!r}"
    rest = text[match.end():]
    following = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:following.start()] if following else rest


def test_hookspecs_were_found():
    assert len(HOOKS) >= 9
    assert "xinfang_validate_event" in HOOKS


# -- (a) every hook is documented --------------------------------------------------

@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    text = CONTRIBUTING.read_text(encoding="utf-8")
    assert re.search(rf"^#+ `{hook}\(", text, re.M), \
        f"CONTRIBUTING.md has no section headed `{hook}(…)`"


# -- (b) every hook has a test -----------------------------------------------------

@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    """Some test besides this file implements the hook (by name or ``specname``)
    or calls it through ``pm.hook``."""
    pattern = re.compile(rf"\bdef {hook}\b|\bhook\.{hook}\b|specname\s*=\s*[\"']{hook}[\"']")
    users = [path.relative_to(TESTS) for path in TESTS.rglob("*.py")
             if path.name != "test_docs.py" and pattern.search(path.read_text(encoding="utf-8"))]
    assert users, f"no test implements or calls {hook}"


# -- (c) the example plugin works --------------------------------------------------

@pytest.fixture(scope="module")
def relief(tmp_path_factory):
    """The ``## Example plugin`` block of CONTRIBUTING.md, imported as a module."""
    blocks = fenced_blocks(section(CONTRIBUTING.read_text(encoding="utf-8"),
                                   "## Example plugin"), "python")
    assert len(blocks) == 1, "the Example plugin section must hold exactly one python block"
    path = tmp_path_factory.mktemp("plugin") / "xinfang_county_relief.py"
    path.write_text(blocks[0], encoding="utf-8")
    spec = importlib.util.spec_from_file_location("xinfang_county_relief", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture
def county(tmp_path, relief):
    with Node.init(tmp_path / "county", level="county", area=COUNTY, name="示例县信访局",
                   root=True, pm=get_plugin_manager([relief])) as node:
        node.operator = "测试员"
        yield node


@pytest.fixture
def plain(tmp_path):
    """The same county without the plugin, to show what the plugin changes."""
    with Node.init(tmp_path / "plain", level="county", area=COUNTY, name="对照县信访局",
                   root=True, pm=get_plugin_manager()) as node:
        node.operator = "测试员"
        yield node


def register(node, serial=1, received="2026-01-05", category="劳动社保", **extra):
    data = api.CaseInput(
        petitioners=[api.PetitionerInput("钱某乙", synthetic_id(serial), "13800000002")],
        channel="来访", category=category, kind="申诉求决", request="请求给予困难救助",
        received=received, area=VILLAGE, **extra)
    return api.register_case(node, data, today=TODAY)


def grant(node, case_id, amount="3000", date="2026-01-20"):
    return api.take_step(node, case_id, "grant_relief",
                         {"date": date, "amount": amount, "approver": "王某",
                          "reason": "因病致贫"}, today=TODAY)


def event_count(node) -> int:
    return node.db.execute("select count(*) from events").fetchone()[0]


def test_example_implements_every_hook(relief):
    missing = [hook for hook in HOOKS if not hasattr(relief, hook)]
    assert not missing, f"the example plugin should show every hook; missing {missing}"
    get_plugin_manager([relief])  # check_pending: every name is a real hook


def test_example_entity_type_owns_a_fund_and_its_tables(county, plain, relief):
    assert county.registry.entity_type("relief_fund").label == "信访救助资金"
    tables = set(county.db.table_names())
    assert {"relief_funds", "relief_grants"} <= tables
    assert not {"relief_funds", "relief_grants"} & set(plain.db.table_names())
    relief.allocate(county, 2026, 150000)
    relief.allocate(county, 2026, 50000)
    rows = county.db.execute("select fund_id, area, year, allocated from relief_funds").fetchall()
    assert rows == [(f"{COUNTY}-2026", COUNTY, 2026, 200000)]
    with pytest.raises(InvalidInput):
        relief.allocate(county, 2026, 0)


def test_example_entity_type_refuses_a_second_registration(relief, tmp_path):
    with pytest.raises(PluginError, match="relief_fund"):
        Node.init(tmp_path / "twice", level="county", area=COUNTY, name="县", root=True,
                  pm=get_plugin_manager([relief, _Twin(relief)]))


class _Twin:
    """A second plugin registering the example's entity type again."""

    def __init__(self, module):
        from xinfang import hookimpl

        self.xinfang_entity_types = hookimpl(lambda: module.xinfang_entity_types())


def test_example_vocabulary_adds_a_category(county, plain):
    case_id = register(county, category="生活困难")
    assert api.get_case(county, case_id).category == "生活困难"
    assert [c.code for c in county.registry.vocabulary("case.category")][-1] == "hardship"
    with pytest.raises(InvalidInput, match="生活困难"):
        register(plain, category="生活困难")


def test_example_entity_field_is_recorded_on_the_case(county, plain):
    case_id = register(county, fields={"low_income": "是"})
    assert api.get_case(county, case_id).fields == {"low_income": True}
    with pytest.raises(InvalidInput, match="low_income"):
        register(plain, fields={"low_income": "是"})


def test_example_lifecycle_step_is_taken_once(county):
    case_id = register(county)
    with pytest.raises(StepRefused, match="发放救助"):
        grant(county, case_id)  # only once the case is accepted
    api.take_step(county, case_id, "accept", {"date": "2026-01-10", "unit": "县民政局"},
                  today=TODAY)
    grant(county, case_id)
    case = api.get_case(county, case_id)
    assert case.status == "accepted"  # the step keeps the state
    assert case.history[-1]["step"] == "grant_relief"
    assert case.history[-1]["details"]["amount"] == 3000
    with pytest.raises(StepRefused, match="already granted"):
        grant(county, case_id, date="2026-01-25")


def test_example_deadline_policy_overrides_the_statutory_one(county, plain):
    for node in (county, plain):
        case_id = register(node)
        api.take_step(node, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    answer = "select due from case_deadlines where kind = 'answer'"
    assert county.db.execute(answer).fetchone()[0] == "2026-02-09"  # 30 days
    assert plain.db.execute(answer).fetchone()[0] == "2026-03-11"    # statutory 60


def test_example_setting_overrides_the_repeat_window(county, plain, relief):
    assert county.registry.setting("case.repeat_window_days") == 730
    assert county.registry.setting("relief.max_amount") == relief.SETTINGS["relief.max_amount"]
    assert county.registry.setting("case.collective_threshold") == 5  # deferred to built-in
    for node in (county, plain):
        first = register(node, serial=7, received="2024-09-01")
        second = register(node, serial=7, received="2026-01-05")  # 491 days later
        assert api.get_case(node, second).repeat_of == (first if node is county else None)


def test_example_validation_refuses_before_anything_is_written(county, relief):
    case_id = register(county)
    api.take_step(county, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    before = event_count(county)
    with pytest.raises(InvalidEvent, match="limit of 20000"):
        grant(county, case_id, amount="50000")
    assert event_count(county) == before
    assert county.db.execute("select count(*) from relief_grants").fetchone()[0] == 0


def test_example_validation_also_checks_events_that_arrive(county, tmp_path, relief):
    """An event signed elsewhere is checked again by ``ingest``."""
    with Node.init(tmp_path / "elsewhere", level="county", area=COUNTY, name="县",
                   root=True, pm=get_plugin_manager()) as other:
        from xinfang.core.node import Draft

        event = other.append(Draft("relief_fund.allocate", "relief_fund", f"{COUNTY}-2026",
                                   COUNTY, {"year": 2026, "amount": -5, "by": "某"}))
    with pytest.raises(InvalidEvent, match="relief_fund.allocate"):
        county.ingest([event])
    assert event_count(county) == 0


def test_example_reaction_fills_its_view_and_survives_rebuild(county):
    case_id = register(county)
    api.take_step(county, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    grant(county, case_id, amount="4500")
    api.take_step(county, case_id, "answer", {"date": "2026-01-28", "outcome": "予以支持"},
                  today=TODAY)
    rows = county.db.execute(
        "select case_id, area, date, amount, approver from relief_grants").fetchall()
    assert rows == [(case_id, VILLAGE, "2026-01-20", 4500, "王某")]
    county.db.execute("delete from relief_grants")
    report = verify.rebuild(county)
    assert not report.consistent  # the emptied table was noticed …
    assert county.db.execute(
        "select case_id, amount from relief_grants").fetchall() == [(case_id, 4500)]  # … and refilled
    assert verify.rebuild(county, check_only=True).consistent


def test_example_reaction_follows_a_refold(county, tmp_path, relief):
    """A late event that sorts first re-folds the case; the grant row is recomputed."""
    case_id = register(county)
    api.take_step(county, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    grant(county, case_id)
    events = list(county.db.execute("select raw, sig from events order by pos").fetchall())
    from xinfang.core.event import Event
    from xinfang.core.sealing import Secret

    secrets = [Secret(*row) for row in county.db.execute("select digest, salt, value from secrets")]
    with Node.init(tmp_path / "replica", level="county", area=COUNTY, name="县", root=True,
                   pm=get_plugin_manager([relief])) as replica:
        parsed = [Event.parse(raw, sig) for raw, sig in events]
        replica.ingest(reversed(parsed), secrets)  # newest first: every arrival re-folds
        assert replica.db.execute("select case_id, amount from relief_grants").fetchall() == \
            [(case_id, 3000)]
        assert verify.rebuild(replica, check_only=True).consistent


def test_example_releases_hardship_identity_up_to_the_county(tmp_path, relief):
    from xinfang.core.certs import Certificate
    from xinfang.core.keys import NodeKeys
    from xinfang.sync.bundle import release_rule
    from xinfang.sync.send import pages_for

    def neighbour(area, level):
        keys = NodeKeys.generate()
        return Certificate.issue(keys, subject=keys.author, encryption=keys.encryption_public,
                                 area=area, level=level, name=f"示例{level}")

    county, city = neighbour(COUNTY, "county"), neighbour("4312", "city")
    released = {}
    for name, plugins in (("with", [relief]), ("without", [])):
        with Node.init(tmp_path / name, level="village", area=VILLAGE, name="示例村信访站",
                       pm=get_plugin_manager(plugins)) as village:
            village.operator = "测试员"
            hardship = register(village, category="劳动社保" if name == "without" else "生活困难")
            other = register(village, serial=2)
            for destination in (county, city):
                for case_id in (hardship, other):
                    page, = pages_for(village, destination.area, {},
                                      release=release_rule(village, destination))
                    event, = [e for e in page.events if e.entity_id == case_id]
                    digests = {p["name"] for p in event.body["petitioners"]}
                    sent = {s.digest for s in page.secrets}
                    released[name, destination.level, case_id == hardship] = digests <= sent
    assert released["with", "county", True] is True       # hardship: up to the county
    assert released["with", "city", True] is False        # … and no further
    assert released["with", "county", False] is False     # other cases: the built-in rule
    assert released["without", "county", True] is False  # without the plugin: digests only


def test_example_commands_are_added(county, relief):
    home = county.home
    county.close()
    runner = CliRunner()
    cli = build_cli(get_plugin_manager([relief]))
    base = ["--home", str(home), "--operator", "测试员"]
    result = runner.invoke(cli, [*base, "relief", "allocate", "--year", "2026",
                                 "--amount", "80000"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, [*base, "case", "register", "-p", f"name=钱某乙,id={synthetic_id(3)}",
                                 "--channel", "来访", "--category", "生活困难", "--request",
                                 "请求困难救助", "--received", "2026-01-05", "--area", VILLAGE,
                                 "--field", "low_income=是", "--json"])
    assert result.exit_code == 0, result.output
    case_id = json.loads(result.output)["id"]
    assert runner.invoke(cli, [*base, "case", "accept", case_id, "--date", "2026-01-06"]).exit_code == 0
    result = runner.invoke(cli, [*base, "case", "grant-relief", case_id, "--date", "2026-01-07",
                                 "--amount", "2500", "--approver", "王某", "--reason", "因病致贫"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, [*base, "relief", "report", "--year", "2026", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"year": 2026, "allocated": 80000, "granted": 2500,
                                         "cases": 1, "balance": 77500}
    result = runner.invoke(cli, [*base, "case", "grant-relief", case_id, "--amount", "99999",
                                 "--approver", "王某", "--reason", "再次"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "Error:" in result.output
    assert "relief" not in build_cli(get_plugin_manager()).commands


# -- (d) the README's commands -----------------------------------------------------

def setup_commands() -> list[str]:
    text = section(README.read_text(encoding="utf-8"), "## Set up and go")
    return [block.strip() for block in fenced_blocks(text, "sh")]


def test_readme_has_two_setup_commands_the_first_runs_the_demo():
    commands = setup_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in command for command in commands)
    assert commands[0].endswith("xinfang demo")


def test_readme_test_command_is_what_ci_runs():
    """.ci/run runs the README's test command verbatim, one step per line."""
    command = setup_commands()[1]
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in [line.strip() for line in ci.splitlines()], \
        ".ci/run must run the README's test command verbatim"


# -- (e) the demo ------------------------------------------------------------------

def test_demo_runs_and_checks_itself():
    result = CliRunner().invoke(build_cli(), ["demo"])
    assert result.exit_code == 0, result.output
    assert "every node holds exactly the state its scope allows; all nodes agree" in result.output
    assert "冲突：1 件" in result.output and "重复访：1 件" in result.output
