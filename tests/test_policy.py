"""Policy as synced events: the fold depends only on events and policy.

Settings that change views (the 集体访 threshold, the 重复访 window, the
deadline rule in force) are ``policy.set`` events written by the root, or
by a node for its own subtree where the root delegated the key. They travel
down the tree and re-fold what they govern; two nodes with the same events
and policy hold the same views whatever plugins they have installed.
"""

from __future__ import annotations

import json

import pytest

from conftest import case_input
from plugins import hearing, inspection
from sync_helpers import TODAY, build_tree, carry, enrol, register, send_pages, wire
from xinfang.core import fold, i18n, policy, store, verify
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.event import Event
from xinfang.plugins.cases import api


def collective(node, case_id) -> bool:
    return api.get_case(node, case_id, reveal=False).collective


def test_policy_show_lists_every_key_with_its_default_and_set_changes_it(invoke):
    result = invoke("init", "--level", "county", "--area", "431202", "--name", "测试县", "--root")
    assert result.exit_code == 0, result.output
    shown = json.loads(invoke("policy", "show", "--json").stdout)
    values = {row["key"]: row for row in shown["policy"]}
    assert values["case.collective_threshold"]["value"] == 5
    assert values["case.collective_threshold"]["default"] is True
    result = invoke("policy", "set", "case.collective_threshold", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == 1
    again = {r["key"]: r for r in json.loads(invoke("policy", "show", "--json").stdout)["policy"]}
    assert (again["case.collective_threshold"]["value"],
            again["case.collective_threshold"]["area"]) == (3, "431202")
    assert json.loads(invoke("policy", "show", "--json").stdout)["version"] != shown["version"]


@pytest.mark.parametrize("key, value, says", [
    ("case.collective_threshold", "三", "须为整数"),
    ("case.collective_threshold", "1", "不得小于 2"),
    ("case.no_such_key", "1", "没有名为"),
    ("case.deadline_policy", "statutory", "名称@版本"),
])
def test_a_bad_policy_value_is_one_chinese_line_and_writes_nothing(invoke, key, value, says):
    invoke("init", "--level", "county", "--area", "431202", "--name", "测试县", "--root")
    before = json.loads(invoke("node", "show", "--json").stdout)["events"]
    result = invoke("policy", "set", key, value)
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1 and says in result.output, result.output
    assert json.loads(invoke("node", "show", "--json").stdout)["events"] == before


def test_only_the_root_sets_policy_for_its_tree(tmp_path):
    tree = build_tree(tmp_path)
    with pytest.raises(InvalidInput, match="只能由根节点设定"):
        policy.set_policy(tree.township, "case.collective_threshold", 3)
    tree.close()


def test_a_policy_change_at_the_root_reaches_a_village_and_refolds_its_cases(tmp_path):
    tree = build_tree(tmp_path)
    village, township, county = tree.village, tree.township, tree.county
    three = register(village, 1, headcount=3)
    carry(village, township, tmp_path)
    assert not collective(village, three) and not collective(township, three)
    policy.set_policy(county, "case.collective_threshold", 3)
    carry(county, township, tmp_path)
    assert collective(township, three)
    carry(township, village, tmp_path)
    assert collective(village, three)
    assert village.context.policy("case.collective_threshold", village.info.area) == 3
    for node in tree.nodes:
        assert verify.rebuild(node, check_only=True).consistent
    tree.close()


def test_a_delegated_key_is_set_by_a_township_for_its_own_subtree(tmp_path):
    tree = build_tree(tmp_path)
    village, township, county = tree.village, tree.township, tree.county
    with pytest.raises(InvalidInput):
        policy.set_policy(township, "case.repeat_window_days", 30)
    policy.set_policy(county, "policy.delegated", "case.repeat_window_days")
    carry(county, township, tmp_path)
    policy.set_policy(township, "case.repeat_window_days", 30)
    carry(township, village, tmp_path)
    carry(township, county, tmp_path)
    for node in (village, county):
        assert node.context.policy("case.repeat_window_days", village.info.area) == 30
    # the county's own area outside the township keeps the default
    assert county.context.policy("case.repeat_window_days", "431202102") == 365
    tree.close()


def test_a_policy_event_from_a_node_without_authority_is_kept_as_a_conflict(tmp_path):
    """A stolen township key signs a policy change by hand: the log keeps it,
    every node lists it as a conflict, and no view changes."""
    tree = build_tree(tmp_path)
    township, county = tree.township, tree.county
    three = register(township, 1, area=tree.village.info.area, headcount=3)
    carry(township, county, tmp_path)
    cases_before = county.db.execute("select * from cases order by id").fetchall()
    seq, prev = store.feed_head(township.db, township.info.author, 0)
    forged = Event.create(township.keys, epoch=0, seq=seq + 1, prev=prev,
                          hlc=township.clock.tick(), type="policy.set", entity="policy",
                          entity_id=policy.entity_id("case.collective_threshold", "431202101"),
                          area="431202101", body={"key": "case.collective_threshold", "value": 2})
    summary = send_pages(township, county, [wire([forged], certs_from=township)], tmp_path)
    assert summary.applied == 1
    assert not collective(county, three)
    reasons = [i18n.show(r[0]) for r in county.db.execute(
        "select reason from conflicts where event_id = ?", [forged.id])]
    assert reasons and "未下放" in reasons[0]
    assert county.context.policy("case.collective_threshold", "431202101") == 5
    assert county.db.execute("select * from cases order by id").fetchall() == cases_before
    tree.close()


def test_nodes_with_different_plugins_fold_the_same_events_to_the_same_views(make_node):
    """The hearing plugin offers a stricter deadline rule and the inspection plugin an
    entity type; neither is in force, so a node with them folds as one without."""
    source = make_node(level="county", area="431202", name="测试县", root=True)
    case_id = api.register_case(source, case_input(area="431202101201", headcount=2),
                                today=TODAY)
    api.take_step(source, case_id, "accept", {"date": "2026-01-06"}, today=TODAY)
    policy.set_policy(source, "case.collective_threshold", 2)
    events = list(store.all_events(source.db))
    plain = make_node(level="township", area="431202101", name="甲镇")
    extended = make_node(level="township", area="431202101", name="乙镇",
                         plugins=[hearing, inspection])
    for node in (plain, extended):
        enrol(node, source)
        node.ingest(events)
    assert collective(plain, case_id) and collective(extended, case_id)
    assert fold.views_digest(plain.db, plain.registry) == \
        fold.views_digest(extended.db, extended.registry) == \
        fold.views_digest(source.db, source.registry)


def test_policy_in_force_names_its_code_and_version(make_node):
    node = make_node(plugins=[hearing], root=True)
    assert {v.key: v.value for v in policy.policy_in_force(node)}["case.deadline_policy"] \
        == "statutory@1"
    policy.set_policy(node, "case.deadline_policy", hearing.ONE_MONTH)
    policy.set_policy(node, "case.deadline_policy", "statutory@1")
    found = {v.key: v for v in policy.policy_in_force(node)}["case.deadline_policy"]
    assert (found.value, found.version, found.default) == ("statutory@1", 2, False)
    with pytest.raises(NotFound):
        policy.set_policy(node, "case.not_a_key", 1)
