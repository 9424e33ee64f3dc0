"""Concurrent lifecycle steps: listed on every node alike, settled by a person's event."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sync_helpers import TODAY, build_tree, carry, exchange, register
from xinfang.cli.main import build_cli
from xinfang.core.errors import NotFound
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins import settlements
from xinfang.plugins.cases import api


@pytest.fixture
def contested(tmp_path):
    """The county reassigns a case that the township has just closed, both offline."""
    tree = build_tree(tmp_path / "tree", villages=1)
    county, township = tree.county, tree.township
    case_id = register(township, 1)
    carry(township, county, tmp_path)
    for step, values in (("accept", {}), ("answer", {"outcome": "explain"}), ("close", {})):
        api.take_step(township, case_id, step, {"date": TODAY.isoformat(), **values}, today=TODAY)
    api.take_step(county, case_id, "forward",
                  {"date": TODAY.isoformat(), "mode": "assign", "unit": "县人社局"}, today=TODAY)
    exchange(township, county, tmp_path)
    exchange(township, county, tmp_path)
    yield tree, case_id
    for node in (tree.county, tree.township, *tree.villages):
        node.close()


def test_concurrent_steps_resolve_alike_and_are_listed_on_both_nodes(contested):
    tree, case_id = contested
    listed = [settlements.list_conflicts(n) for n in (tree.county, tree.township)]
    assert listed[0] == listed[1] and len(listed[0]) == 1
    [conflict] = listed[0]
    assert conflict.entity_id == case_id and not conflict.settled
    # one deterministic winner on both nodes, whatever arrived first
    assert api.get_case(tree.county, case_id).status == api.get_case(tree.township, case_id).status


def test_a_settlement_is_an_event_that_syncs_and_closes_the_conflict(contested, tmp_path):
    tree, case_id = contested
    [conflict] = settlements.list_conflicts(tree.county)
    settlements.settle(tree.county, conflict.event_id[:12], "县局确认镇已办结，交办作废")
    assert settlements.list_conflicts(tree.county) == []
    exchange(tree.township, tree.county, tmp_path)
    assert settlements.list_conflicts(tree.township) == []
    [settled] = settlements.list_conflicts(tree.township, include_settled=True)
    assert settled.settled and settled.note == "县局确认镇已办结，交办作废"


def test_settling_needs_a_note_and_a_known_conflict(contested):
    tree, _ = contested
    [conflict] = settlements.list_conflicts(tree.county)
    with pytest.raises(Exception, match="note"):
        settlements.settle(tree.county, conflict.event_id, "  ")
    with pytest.raises(NotFound, match="没有与“ffffffff”相符的冲突"):
        settlements.settle(tree.county, "ffffffff", "备注")


def test_conflicts_command_lists_and_settles_with_json(contested):
    tree, _ = contested
    cli = build_cli(get_plugin_manager())
    home = ["--home", str(tree.county.home)]
    listed = CliRunner().invoke(cli, [*home, "conflicts", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    settled = CliRunner().invoke(cli, [*home, "conflicts", "settle", row["event_id"][:10],
                                       "--note", "已核实"])
    assert settled.exit_code == 0, settled.output
    assert json.loads(CliRunner().invoke(cli, [*home, "conflicts", "--json"]).output) == []
    again = CliRunner().invoke(cli, [*home, "conflicts", "--all", "--json"]).output
    assert json.loads(again)[0]["settled"] is True
