"""The documentation is tested: every hook documented with an example that runs
and a named test, the example plugin in CONTRIBUTING.md works on real nodes,
and the README's commands are the real ones."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_helpers import carry, enrol
from xinfang import hookimpl
from xinfang.app import plugin_manager
from xinfang.cli.main import build_cli
from xinfang.core import held, hookspecs, policy, records, reports, store, verify
from xinfang.core.errors import (InvalidEvent, InvalidInput, NotFound, PluginError,
                                 StepRefused)
from xinfang.core.event import Event
from xinfang.core.node import Draft, Node
from xinfang.core.sealing import Secret
from xinfang.plugins.cases import api
from xinfang.plugins.cases import hookspecs as case_hookspecs
from xinfang.plugins.ledger import hookspecs as ledger_hookspecs
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.sync import send
from xinfang.sync.http import NodeApp
from xinfang.sync.server import BackgroundServer

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
README = ROOT / "README.md"
TODAY = dt.date(2026, 3, 1)
COUNTY = "431202"
TOWNSHIP = "431202101"
VILLAGE = "431202101201"
OTHER_VILLAGE = "431202102201"

#: the core's hooks and those the case plugin adds with ``xinfang_addhooks``
HOOK_MODULES = (hookspecs, case_hookspecs, ledger_hookspecs)
HOOKS = sorted(name for module in HOOK_MODULES for name, value in vars(module).items()
               if callable(value) and hasattr(value, "xinfang_spec"))
#: hooks the example plugin leaves out, and why (their sections have their own example)
NOT_IN_EXAMPLE = {"xinfang_transports": "moving events is the sync layer's business",
                  "xinfang_message_catalogs": "a catalogue is a directory of files beside "
                                              "the module",
                  "xinfang_ledger_headers": "the ledger plugin's own hook, for its import"}
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")

synthetic_id = synthetic


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S)


def section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of that level
    (a ``#`` comment inside a fenced block is not a heading)."""
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(rf"^{re.escape(heading)}[ \t]*$", text, re.M)
    assert match, f"no heading {heading!r}"
    lines, fenced = [], False
    for line in text[match.end():].split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        lines.append(line)
    return "\n".join(lines)


def hook_heading(hook: str) -> re.Match:
    """The heading ``#### `hook(args)` `` in CONTRIBUTING.md (group 1: the arguments)."""
    match = re.search(rf"^#+ `{hook}\(([^)]*)\)`[ \t]*$",
                      CONTRIBUTING.read_text(encoding="utf-8"), re.M)
    assert match, f"CONTRIBUTING.md has no section headed `{hook}(…)`"
    return match


def hook_section(hook: str) -> str:
    return section(CONTRIBUTING.read_text(encoding="utf-8"), hook_heading(hook).group(0))


def import_text(code: str, name: str, directory: Path):
    """Import ``code`` as the module ``name`` (kept in ``sys.modules`` by the caller)."""
    path = directory / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_hookspecs_were_found():
    assert len(HOOKS) >= 16
    assert {"xinfang_validate_event", "xinfang_addhooks", "xinfang_outgoing",
            "xinfang_deadline_policies"} <= set(HOOKS)


# -- (a) every hook is documented, with an example that runs -----------------------

@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    """Headed by its signature, with a python example that implements the hook."""
    spec = next(getattr(m, hook) for m in HOOK_MODULES if hasattr(m, hook))
    documented = [a.strip() for a in hook_heading(hook).group(1).split(",") if a.strip()]
    assert documented == list(spec.__code__.co_varnames[:spec.__code__.co_argcount]), \
        f"the heading of {hook} should give its arguments as the hookspec does"
    blocks = fenced_blocks(hook_section(hook), "python")
    assert blocks, f"the section of {hook} has no ```python example"
    assert re.search(rf"^def {hook}\(", blocks[0], re.M), \
        f"the example in the section of {hook} does not implement it"


@pytest.fixture(scope="module")
def snippet_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("snippets")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_section_example_runs_as_a_plugin(hook, snippet_dir, tmp_path):
    """Loaded with the built-in plugins on a county and a township: a case is
    registered, accepted, carried up by bundle, re-folded out of order on a
    copy and rebuilt; the example's reports, routes, transports and commands
    are run."""
    name = f"doc_example_{hook}"
    module = import_text(fenced_blocks(hook_section(hook), "python")[0], name, snippet_dir)
    try:
        pm = plugin_manager([module])
        nodes = [node_with(tmp_path / "county", [module]),
                 node_with(tmp_path / "town", [module], level="township", area=TOWNSHIP,
                           name="示例镇信访办", root=False)]
        county, town = nodes
        enrol(town, county)
        case_id = register(town, category="劳动社保")
        api.take_step(town, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
        carry(town, county, tmp_path)
        assert api.get_case(county, case_id).status == "accepted"
        copy = node_with(tmp_path / "copy", [module], name="副本")
        nodes.append(copy)
        copy.ingest(reversed(list(store.all_events(town.db))), secrets_of(town))
        send.outgoing_rule(town, county.certificate).boxes(store.all_events(town.db))
        registry = county.registry
        own = lambda found: [item.name for item in (found or ())]  # noqa: E731
        for report in own(getattr(module, "xinfang_reports", lambda: [])()):
            result = reports.run_report(county, report)
            for fmt in registry.renderers:
                assert reports.render(registry, result, fmt)
        for fmt in own(getattr(module, "xinfang_renderers", lambda: [])()):
            assert reports.render(registry, reports.run_report(county, "case.status"), fmt)
        for route in getattr(module, "xinfang_routes", lambda: [])():
            status, _ = wsgi_get(county, route.path)
            assert status < 500, route.path
        for transport in getattr(module, "xinfang_transports", lambda: [])():
            transport.send(town, county.info.name, tmp_path / f"via-{transport.name}")
            if transport.receive is not None:
                transport.receive(county, tmp_path / f"via-{transport.name}")
        for node in nodes:
            assert verify.rebuild(node, check_only=True).consistent
        for node in nodes:
            node.close()
        cli = build_cli(pm)
        for command in set(build_cli(pm).commands) - set(build_cli(plugin_manager()).commands):
            result = CliRunner().invoke(cli, [command, "--help"])
            assert result.exit_code == 0, result.output
        assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
    finally:
        sys.modules.pop(name, None)


# -- (b) every hook has a test -----------------------------------------------------

def defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"), re.M))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    """Some test besides this file implements the hook (by name or ``specname``)
    or calls it through ``pm.hook``, and the hook's section names tests that exist."""
    pattern = re.compile(rf"\bdef {hook}\b|\bhook\.{hook}\b|specname\s*=\s*[\"']{hook}[\"']")
    users = [path.relative_to(TESTS) for path in TESTS.rglob("*.py")
             if path.name != "test_docs.py" and pattern.search(path.read_text(encoding="utf-8"))]
    assert users, f"no test implements or calls {hook}"
    text = hook_section(hook)
    assert "\nTest:" in text, f"the section of {hook} has no 'Test:' line naming its tests"
    paragraph = re.split(r"\n\s*\n", text.split("\nTest:", 1)[1])[0]
    named = NAMED_TEST.findall(paragraph)
    assert named, f"the 'Test:' line of {hook} names no test as `tests/file.py::test_name`"
    for file, test in named:
        path = ROOT / file
        assert path.is_file(), f"{hook}: {file} does not exist"
        assert test in defined_tests(path), f"{hook}: {file} has no test {test}"


# -- (c) the example plugin works --------------------------------------------------

@pytest.fixture(scope="module")
def relief(tmp_path_factory):
    """The ``## Example plugin`` block of CONTRIBUTING.md, imported as a module."""
    blocks = fenced_blocks(section(CONTRIBUTING.read_text(encoding="utf-8"),
                                   "## Example plugin"), "python")
    assert len(blocks) == 1, "the Example plugin section must hold exactly one python block"
    try:
        yield import_text(blocks[0], "xinfang_county_relief", tmp_path_factory.mktemp("plugin"))
    finally:
        sys.modules.pop("xinfang_county_relief", None)


def node_with(home, plugins, level="county", area=COUNTY, name="示例县信访局", root=True):
    node = Node.init(home, level=level, area=area, name=name, root=root,
                     pm=plugin_manager(plugins))
    node.operator = "测试员"
    return node


@pytest.fixture
def county(tmp_path, relief):
    with node_with(tmp_path / "county", [relief]) as node:
        yield node


@pytest.fixture
def plain(tmp_path):
    """The same county without the plugin, to show what the plugin changes."""
    with node_with(tmp_path / "plain", [], name="对照县信访局") as node:
        yield node


def register(node, serial=1, received="2026-01-05", category="生活困难", area=VILLAGE,
             **extra):
    data = api.CaseInput(
        petitioners=[api.PetitionerInput("钱某乙", synthetic_id(serial), "13800000002",
                                         "示例村二组")],
        channel="来访", category=category, kind="申诉求决", request="请求给予困难救助",
        received=received, area=area, **extra)
    return api.register_case(node, data, today=TODAY)


def accepted(node, **kwargs) -> str:
    case_id = register(node, **kwargs)
    api.take_step(node, case_id, "accept", {"date": "2026-01-10", "unit": "县民政局"},
                  today=TODAY)
    return case_id


def apply_relief(node, case_id, amount="3000", kind="生活救助", applied="2026-01-12"):
    return records.create(node, "relief", {"case_id": case_id, "kind": kind, "amount": amount,
                                          "reason": "因病致贫", "applied": applied}, today=TODAY)


def relief_step(node, relief_id, step, **values):
    values.setdefault("date", "2026-01-15")
    return records.take_step(node, "relief", relief_id, step, values, today=TODAY)


def event_count(node) -> int:
    return node.db.execute("select count(*) from events").fetchone()[0]


def secrets_of(node) -> list[Secret]:
    return [node.vault.get(digest) for (digest,) in node.db.execute("select digest from vault")]


def referrals(node) -> list[tuple]:
    return node.db.execute("select case_id, area, referred from relief_referrals "
                           "order by case_id").fetchall()


def answer_due(node, case_id) -> str:
    return node.db.execute("select due from case_deadlines where case_id = ? and "
                           "kind = 'answer'", [case_id]).fetchone()[0]


def wsgi_get(node, path: str, query: str = "") -> tuple[int, dict]:
    """One GET through the node's WSGI application, without a server."""
    answer = {}
    body = NodeApp(node)({"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": query,
                          "wsgi.input": io.BytesIO()},
                         lambda status, headers: answer.update(status=int(status.split()[0])))
    return answer["status"], b"".join(body)


def test_example_implements_every_hook(relief):
    missing = [hook for hook in HOOKS if not hasattr(relief, hook) and hook not in NOT_IN_EXAMPLE]
    assert not missing, f"the example plugin should show every hook; missing {missing}"
    plugin_manager([relief])  # check_pending: every name is a real hook


class Hotline:
    """Another county plugin filling the example's own hook."""

    @hookimpl
    def xinfang_relief_notice(self, relief):
        return [f"如有疑问，请拨打 12345 并报告救助编号 {relief.id}"]


def test_example_adds_a_hook_other_plugins_fill(tmp_path, relief, county):
    case_id = accepted(county)
    plain_notice = relief.notice(county, apply_relief(county, case_id))
    assert len(plain_notice) == 3 and plain_notice[0].startswith("救助告知书 ")
    # registered before the plugin that adds its hook: the historic hook still finds it
    with node_with(tmp_path / "hotline", [Hotline(), relief]) as node:
        relief_id = apply_relief(node, accepted(node))
        assert relief.notice(node, relief_id)[-1] == \
            f"如有疑问，请拨打 12345 并报告救助编号 {relief_id}"
    with pytest.raises(PluginError, match="xinfang_relief_notice"):
        plugin_manager([Hotline()])  # the hook does not exist without the example


def test_example_relief_moves_through_its_lifecycle_with_history(county, plain):
    assert county.registry.entity_type("relief").label == "信访救助"
    assert {"reliefs", "relief_referrals"} <= set(county.db.table_names())
    assert not {"reliefs", "relief_referrals"} & set(plain.db.table_names())
    case_id = accepted(county)
    relief_id = apply_relief(county, case_id)
    assert relief_id == f"{COUNTY}-2026-00001"
    assert records.get(county, "relief", relief_id).status_label == "待审批"
    relief_step(county, relief_id, "approve", approver="王某")
    relief_step(county, relief_id, "pay", voucher="FK-2026-017", date="2026-01-20")
    record = records.get(county, "relief", relief_id)
    assert (record.status, record.status_label) == ("paid", "已发放")
    assert record.values == {"case_id": case_id, "kind": "living", "amount": 3000,
                             "reason": "因病致贫", "applied": "2026-01-12"}
    assert [h["step"] for h in record.history] == ["apply", "approve", "pay"]
    assert record.history[-1]["summary"] == "发放凭证号：FK-2026-017"
    listed = records.list_records(county, "relief", records.RecordFilter(status="已发放"))
    assert [r.id for r in listed] == [relief_id]
    with pytest.raises(StepRefused, match=r"不能对已发放 \(paid\) 的.*；当前可办理：无"):
        relief_step(county, relief_id, "refuse", reason="重复申请")
    assert verify.rebuild(county, check_only=True).consistent


def test_example_entity_type_refuses_a_second_registration(relief, tmp_path):
    with pytest.raises(PluginError, match="relief"):
        Node.init(tmp_path / "twice", level="county", area=COUNTY, name="县", root=True,
                  pm=plugin_manager([relief, _Twin(relief)]))


class _Twin:
    """A second plugin registering the example's entity type again."""

    def __init__(self, module):
        self.xinfang_entity_types = hookimpl(lambda: module.xinfang_entity_types())


def test_example_adds_a_step_to_cases_taken_once(county, plain):
    case_id = register(county, category="劳动社保")
    with pytest.raises(StepRefused, match="转救助"):
        api.take_step(county, case_id, "refer_relief", {"date": "2026-01-08"}, today=TODAY)
    api.take_step(county, case_id, "accept", {"date": "2026-01-10"}, today=TODAY)
    api.take_step(county, case_id, "refer_relief", {"date": "2026-01-11"}, today=TODAY)
    case = api.get_case(county, case_id)
    assert case.status == "accepted"  # the step keeps the state
    assert case.history[-1]["step"] == "refer_relief"
    with pytest.raises(StepRefused, match="already referred for relief on 2026-01-11"):
        api.take_step(county, case_id, "refer_relief", {"date": "2026-01-12"}, today=TODAY)
    # a node without the plugin keeps the case's events, and holds the case
    plain.ingest(store.all_events(county.db), secrets_of(county))
    with pytest.raises(NotFound):
        api.get_case(plain, case_id)
    (group,) = held.held(plain)
    assert (group.entity, group.entities, group.events) == ("case", 1, 3)
    assert "case.refer_relief" in group.reason


def test_example_entity_field_is_recorded_on_the_case(county, plain):
    case_id = register(county, category="劳动社保", fields={"low_income": "是"})
    assert api.get_case(county, case_id).fields == {"low_income": True}
    with pytest.raises(InvalidInput, match="low_income"):
        register(plain, category="劳动社保", fields={"low_income": "是"})
    # a node without the plugin cannot write the field, but folds a case that has it
    plain.ingest(store.all_events(county.db), secrets_of(county))
    assert api.get_case(plain, case_id).fields == {"low_income": True}


def test_example_vocabulary_adds_a_category_and_a_list_of_its_own(county, plain):
    case_id = register(county, category="生活困难")
    assert api.get_case(county, case_id).category == "生活困难"
    assert county.registry.vocabulary("case.category")[-1].code == "hardship"
    assert [c.code for c in county.registry.vocabulary("relief.kind")] == \
        ["living", "medical", "temporary"]
    relief_id = apply_relief(county, case_id, kind="医疗救助")
    assert records.get(county, "relief", relief_id).values["kind"] == "medical"
    with pytest.raises(InvalidInput, match="生活救助\\(living\\)"):
        apply_relief(county, case_id, kind="助学")
    with pytest.raises(InvalidInput, match="生活困难"):
        register(plain, category="生活困难")
    # a node that lacks the code holds the case that uses it
    plain.ingest([e for e in store.all_events(county.db) if e.entity == "case"])
    (group,) = held.held(plain)
    assert group.entity == "case" and "“hardship”" in group.reason


def test_example_policy_key_decides_which_approvals_need_a_meeting(county, tmp_path, relief):
    shown = {v.key: v for v in policy.policy_in_force(county)}["relief.review_threshold"]
    assert (shown.value, shown.default) == (5000, True)
    case_id = accepted(county)
    large, small = apply_relief(county, case_id, "6000"), apply_relief(county, case_id, "4000")
    with pytest.raises(StepRefused, match="6000 元超过 5000 元，须经集体研究"):
        relief_step(county, large, "approve", approver="王某")
    relief_step(county, large, "approve", approver="王某", meeting="县救助会议纪要2026-3")
    relief_step(county, small, "approve", approver="王某")
    # a lower threshold applies to what was folded already: the approval of 4000
    # without a meeting record becomes a conflict, kept and listed
    policy.set_policy(county, "relief.review_threshold", "3000")
    small_now = records.get(county, "relief", small)
    assert small_now.status == "applied"
    assert [c["type"] for c in small_now.conflicts] == ["relief.approve"]
    assert "4000 元超过 3000 元" in small_now.conflicts[0]["reason"]
    assert records.get(county, "relief", large).status == "approved"
    policy.set_policy(county, "relief.review_threshold", "5000")
    assert records.get(county, "relief", small).conflicts == ()
    assert verify.rebuild(county, check_only=True).consistent
    with node_with(tmp_path / "village", [relief], level="village", area=VILLAGE,
                   name="示例村", root=False) as village:
        with pytest.raises(InvalidInput, match="只能由根节点设定"):
            policy.set_policy(village, "relief.review_threshold", "8000")


def test_example_deadline_policy_governs_only_where_it_is_in_force(county, tmp_path, relief):
    inside = accepted(county, category="劳动社保")
    outside = accepted(county, serial=2, category="劳动社保", area=OTHER_VILLAGE)
    assert answer_due(county, inside) == "2026-03-11"          # statutory 60 days
    policy.set_policy(county, "case.deadline_policy", "county-30@1", area=TOWNSHIP)
    assert answer_due(county, inside) == "2026-02-09"          # the county's 30, re-folded
    assert answer_due(county, outside) == "2026-03-11"         # another township: 60
    # a township without the plugin holds what the code it lacks governs …
    town = node_with(tmp_path / "town", [], level="township", area=TOWNSHIP, name="示例镇",
                     root=False)
    enrol(town, county)
    carry(county, town, tmp_path)
    (group,) = held.held(town)
    assert group.entity == "case" and "county-30@1" in group.reason
    home = town.home
    town.close()
    # … and folds it when the plugin is installed
    with Node.open(home, pm=plugin_manager([relief])) as town:
        assert held.held(town) == []
        assert answer_due(town, inside) == "2026-02-09"


def test_example_validation_refuses_before_anything_is_written(county):
    case_id = accepted(county)
    before = event_count(county)
    with pytest.raises(InvalidEvent, match="'第3号' is not a case number"):
        apply_relief(county, "第3号")
    with pytest.raises(InvalidInput, match="不得大于 50000"):
        apply_relief(county, case_id, amount="80000")
    assert event_count(county) == before
    assert county.db.execute("select count(*) from reliefs").fetchone()[0] == 0


def test_example_validation_also_checks_events_that_arrive(county, plain):
    """A node without the plugin holds the event unjudged; one with it refuses it."""
    event = plain.append(Draft("relief.apply", "relief", f"{COUNTY}-2026-00001", COUNTY,
                               {"case_id": "第3号", "kind": "living", "amount": 3000,
                                "reason": "因病致贫", "applied": "2026-01-12", "fields": {},
                                "by": "测试员"}))
    (group,) = held.held(plain)
    assert group.entity == "relief" and "relief" in group.reason
    with pytest.raises(InvalidEvent, match="not a case number"):
        county.ingest([event])
    assert event_count(county) == 0


def test_example_reaction_fills_its_view_and_survives_rebuild(county):
    first, second = accepted(county), accepted(county, serial=2)
    for case_id in (first, second):
        api.take_step(county, case_id, "refer_relief", {"date": "2026-01-11"}, today=TODAY)
    assert referrals(county) == [(first, VILLAGE, "2026-01-11"), (second, VILLAGE, "2026-01-11")]
    api.take_step(county, second, "withdraw", {"date": "2026-01-12"}, today=TODAY)
    assert referrals(county) == [(first, VILLAGE, "2026-01-11")]
    county.db.execute("delete from relief_referrals")
    report = verify.rebuild(county)
    assert not report.consistent                                # the emptied table was noticed …
    assert referrals(county) == [(first, VILLAGE, "2026-01-11")]  # … and refilled
    assert verify.rebuild(county, check_only=True).consistent


def test_example_reset_hook_clears_the_rows_of_a_case_that_is_held(county):
    case_id = accepted(county)
    api.take_step(county, case_id, "refer_relief", {"date": "2026-01-11"}, today=TODAY)
    policy.set_policy(county, "case.deadline_policy", "nowhere@1")  # a code no plugin offers
    assert [g.entity for g in held.held(county)] == ["case"]
    assert referrals(county) == []
    policy.set_policy(county, "case.deadline_policy", "statutory@1")
    assert held.held(county) == []
    assert referrals(county) == [(case_id, VILLAGE, "2026-01-11")]
    assert verify.rebuild(county, check_only=True).consistent


def test_example_reaction_follows_a_refold(county, tmp_path, relief):
    """Events arriving newest first re-fold the case at every arrival."""
    case_id = accepted(county)
    api.take_step(county, case_id, "refer_relief", {"date": "2026-01-11"}, today=TODAY)
    apply_relief(county, case_id)
    events = [Event.parse(raw, sig) for raw, sig in
              county.db.execute("select raw, sig from events order by pos").fetchall()]
    with node_with(tmp_path / "replica", [relief], name="副本") as replica:
        for event in reversed(events):
            replica.ingest([event], secrets_of(county))
        assert referrals(replica) == referrals(county) == [(case_id, VILLAGE, "2026-01-11")]
        assert verify.rebuild(replica, check_only=True).consistent


def test_example_sends_name_and_id_of_hardship_cases_up_to_the_county(tmp_path, relief):
    def tree(base, plugins):
        county = node_with(base / "county", plugins)
        town = node_with(base / "town", plugins, "township", TOWNSHIP, "示例镇信访办", False)
        village = node_with(base / "village", plugins, "village", VILLAGE, "示例村信访站", False)
        enrol(town, county)
        enrol(village, town)
        return county, town, village

    county, town, village = tree(tmp_path / "with", [relief])
    hardship = register(village, category="生活困难")
    labour = register(village, serial=2, category="劳动社保")
    carry(village, town, tmp_path)
    carry(town, county, tmp_path)
    for node in (town, county):
        person = api.get_case(node, hardship).petitioners[0]
        assert (person.name, person.id_number) == ("钱某乙", synthetic_id(1))
        assert (person.phone, person.address) == (None, None)  # only what paying needs
        assert api.get_case(node, labour).petitioners[0].name is None  # the built-in rule
    without = tree(tmp_path / "without", [])
    plain_case = register(without[2], category="劳动社保")
    carry(without[2], without[1], tmp_path)
    carry(without[1], without[0], tmp_path)
    assert api.get_case(without[0], plain_case).petitioners[0].name is None
    for node in (county, town, village, *without):
        node.close()


def relief_cli(invoke, relief):
    """The commands of the page's shell example, run on a county; the relief's id."""
    def ok(*args):
        result = invoke(*args, plugins=[relief])
        assert result.exit_code == 0, result.output
        return result

    ok("init", "--level", "county", "--area", COUNTY, "--name", "示例县信访局", "--root")
    case_id = json.loads(ok(
        "case", "register", "-p", f"name=钱某乙,id={synthetic_id(3)}", "--channel", "来访",
        "--category", "生活困难", "--request", "家中突发变故，请求给予困难救助",
        "--received", "2026-01-05", "--area", VILLAGE, "--field", "low_income=是",
        "--json").stdout)["id"]
    ok("case", "accept", case_id, "--date", "2026-01-06", "--unit", "县民政局")
    ok("case", "refer-relief", case_id, "--date", "2026-01-07")
    relief_id = json.loads(ok(
        "relief", "apply", "--case-id", case_id, "--kind", "生活救助", "--amount", "6000",
        "--reason", "因病致贫", "--applied", "2026-01-08", "--json").stdout)["id"]
    ok("relief", "approve", relief_id, "--date", "2026-01-09", "--approver", "王某",
       "--meeting", "县救助会议纪要2026-3")
    ok("relief", "pay", relief_id, "--date", "2026-01-10", "--voucher", "FK-2026-017")
    return ok, case_id, relief_id


def test_example_commands_are_added(invoke, relief):
    ok, case_id, relief_id = relief_cli(invoke, relief)
    shown = json.loads(ok("relief", "show", relief_id, "--json").stdout)
    assert (shown["status_label"], shown["values"]["case_id"]) == ("已发放", case_id)
    assert ok("relief", "notice", relief_id).stdout.splitlines() == [
        f"救助告知书 {relief_id}", f"信访事项 {case_id}", "生活救助 6000 元（已发放）"]
    group = ok("relief", "--help").stdout
    for command in ("apply", "list", "show", "approve", "pay", "refuse", "notice"):
        assert re.search(rf"^  {command}\b", group, re.M), command
    loaded = {p["name"]: p for p in json.loads(ok("plugins", "--json").stdout)}
    mine = loaded["xinfang_county_relief"]
    assert (mine["entity_types"], mine["reports"], mine["routes"]) == \
        (["relief"], ["relief.summary"], ["relief.summary"])
    other = json.loads(ok("relief", "apply", "--case-id", case_id, "--kind", "临时救助",
                          "--amount", "7000", "--reason", "再次", "--applied", "2026-01-11",
                          "--json").stdout)["id"]
    result = invoke("relief", "approve", other, "--date", "2026-01-12", "--approver", "王某",
                    plugins=[relief])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().startswith("错误：不能办理批准 (approve)：救助金额 7000 元")
    assert "relief" not in build_cli(plugin_manager()).commands


def test_example_report_and_renderer_run_through_the_cli(invoke, relief):
    ok, _, _ = relief_cli(invoke, relief)
    run = ("report", "run", "relief.summary", "--param", "year=2026", "--format")
    assert ok(*run, "markdown").stdout.splitlines() == [
        "| 救助类别 | 申请件数 | 批准金额（元） | 已发放（元） |", "|---|---|---|---|",
        "| 生活救助 | 1 | 6000 | 6000 |"]
    assert ok(*run, "csv").stdout_bytes.decode("utf-8").splitlines()[1] == "生活救助,1,6000,6000"
    assert json.loads(ok(*run, "json").stdout)["rows"] == [
        {"kind": "生活救助", "applications": 1, "approved": 6000, "paid": 6000}]
    assert json.loads(ok("report", "run", "relief.summary", "--param", "year=2025",
                         "--format", "json").stdout)["rows"] == []
    bad = invoke("report", "run", "relief.summary", "--param", "year=今年", plugins=[relief])
    assert bad.exit_code != 0 and bad.output.startswith("错误：报表参数 年度(year) 不对")
    missing = invoke("report", "run", "relief.summary", "--format", "markdown")
    assert missing.exit_code != 0 and "relief.summary" in missing.output


def test_example_route_serves_the_summary(county, relief, monkeypatch):
    relief_id = apply_relief(county, accepted(county), "2000")
    relief_step(county, relief_id, "approve", approver="王某")
    county.close()
    monkeypatch.setenv("XINFANG_PLUGINS", "xinfang_county_relief")  # served as if installed

    def get(query: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"{server.url}/relief/summary?{query}") as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with BackgroundServer(county.home) as server:
        status, data = get("year=2026")
        assert status == 200
        assert data["rows"] == [{"kind": "生活救助", "applications": 1, "approved": 2000,
                                 "paid": 0}]
        status, data = get(urllib.parse.urlencode({"year": "今年"}))
        assert status == 400 and "年度(year)" in data["error"]
        status, data = get("month=1")
        assert status == 400 and "没有参数 month" in data["error"]


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
    assert "检查通过：" in result.output
    assert "个节点各自恰好持有其辖区应有的事件" in result.output
    assert "冲突：1 件" in result.output and "重复访：1 件" in result.output
    # the resettlement township relays 5 disputes, 1 project and 1 target it cannot fold;
    # the bureau holds only cases of category 库区移民
    assert "未解析：矛盾纠纷 5 条（事件 8 个）、移民新村项目 1 条（事件 3 个）、目标责任状 1 条" \
        in result.output
    assert "其他类别 0 件" in result.output and "检查通过：移民局持有全县" in result.output


def test_demo_speaks_english_when_asked():
    result = CliRunner().invoke(build_cli(), ["--lang", "en", "demo"])
    assert result.exit_code == 0, result.output
    assert "Checks passed: each of the 16 nodes holds exactly the events" in result.output
    assert "Checks passed: the bureau holds the county's" in result.output
    assert "Conflicts: 1" in result.output and "Repeat petitions: 1 case " in result.output
