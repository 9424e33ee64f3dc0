"""Store and forward: what a node cannot fold it still checks, keeps and relays.

A tree city → county → township → village in which only the city and the
village have a plugin (``tests/plugins/inspection.py``). Its records must
cross the two relays that lack it, both ways, without stalling anything
else the village sends; installing the plugin later folds what was held
into exactly the views a node with the plugin from the start has.
"""

from __future__ import annotations

import json

import attrs
import pytest
from click.testing import CliRunner

from plugins import hearing, inspection
from sync_helpers import carry, enrol, event_ids, new_node, register, views
from xinfang.app import plugin_manager
from xinfang.cli.main import build_cli
from xinfang.core import fold, held, policy, records, store
from xinfang.core.node import Node
from xinfang.plugins.cases import api

CITY, COUNTY, TOWNSHIP, VILLAGE = "4312", "431202", "431202101", "431202101201"


@attrs.define
class CityTree:
    city: Node
    county: Node
    township: Node
    village: Node

    @property
    def nodes(self):
        return [self.city, self.county, self.township, self.village]

    def up(self, directory):
        carry(self.village, self.township, directory)
        carry(self.township, self.county, directory)
        carry(self.county, self.city, directory)

    def down(self, directory):
        carry(self.city, self.county, directory)
        carry(self.county, self.township, directory)
        carry(self.township, self.village, directory)

    def close(self):
        for node in self.nodes:
            node.close()


@pytest.fixture
def tree(tmp_path):
    made = CityTree(
        new_node(tmp_path / "city", "city", CITY, "测试市信访局", root=True, plugins=[inspection]),
        new_node(tmp_path / "county", "county", COUNTY, "测试县信访局"),
        new_node(tmp_path / "township", "township", TOWNSHIP, "测试镇信访办"),
        new_node(tmp_path / "village", "village", VILLAGE, "测试村信访站", plugins=[inspection]))
    enrol(made.county, made.city)
    enrol(made.township, made.county)
    enrol(made.village, made.township)
    yield made
    made.close()


def test_records_no_relay_can_fold_still_cross_the_tree_both_ways(tree, tmp_path):
    entity_id = records.create(tree.village, "inspection", {"topic": "渠道护坡"})
    case_id = register(tree.village, 1)
    tree.up(tmp_path)
    # the relays keep the record (held) and the case behind it was not stalled
    for relay in (tree.township, tree.county):
        groups = held.held(relay)
        assert [(g.entity, g.entities, g.events) for g in groups] == [("inspection", 1, 1)]
        assert groups[0].authors == (tree.village.info.name,)
        assert api.get_case(relay, case_id, reveal=False).id == case_id
    assert records.get(tree.city, "inspection", entity_id).status == "planned"
    # a decision at the city comes back down through the same relays
    records.take_step(tree.city, "inspection", entity_id, "inspect")
    tree.down(tmp_path)
    assert records.get(tree.village, "inspection", entity_id).status == "inspected"
    assert held.held(tree.township)[0].events == 2
    # the village's later cases still flow: nothing waits on the held record
    later = register(tree.village, 2)
    tree.up(tmp_path)
    assert api.get_case(tree.county, later, reveal=False).id == later
    tree.down(tmp_path)  # the city, the root, tagged the later case's ID number
    assert views(tree.city) == views(tree.village)


def test_held_events_are_listed_by_the_cli_with_counts_and_authors(tree, tmp_path):
    records.create(tree.village, "inspection", {"topic": "渠道护坡"})
    records.create(tree.village, "inspection", {"topic": "危房排查"})
    carry(tree.village, tree.township, tmp_path)
    cli = build_cli(plugin_manager())
    result = CliRunner().invoke(cli, ["--home", str(tree.township.home), "held", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["entity"], r["entities"], r["events"], r["authors"]) for r in rows] == [
        ("inspection", 2, 2, [tree.village.info.name])]
    assert "inspection" in rows[0]["reason"]
    text = CliRunner().invoke(cli, ["--home", str(tree.township.home), "held"]).output
    assert "inspection" in text and tree.village.info.name in text


def test_installing_the_plugin_folds_what_was_held_into_the_same_views(tree, tmp_path):
    entity_id = records.create(tree.village, "inspection", {"topic": "渠道护坡"})
    records.take_step(tree.village, "inspection", entity_id, "inspect")
    register(tree.village, 1)
    carry(tree.village, tree.township, tmp_path)
    home = tree.township.home
    tree.township.close()
    # the next command that opens the node with the plugin installed folds it
    with Node.open(home, pm=plugin_manager([inspection])) as township:
        assert held.held(township) == []
        assert records.get(township, "inspection", entity_id).status == "inspected"
        reference = new_node(tmp_path / "reference", "township", TOWNSHIP, "对照镇",
                             plugins=[inspection])
        reference.ingest(store.all_events(township.db))
        assert fold.views_digest(township.db, township.registry) == \
            fold.views_digest(reference.db, reference.registry)
        reference.close()
    tree.township = Node.open(home, pm=plugin_manager())
    # and removing it again holds the records once more, without touching the log
    assert [g.entity for g in held.held(tree.township)] == ["inspection"]
    assert entity_id not in {r[0] for r in tree.township.db.execute(
        "select entity_id from entity_heads where entity = 'inspection'")}


def test_relays_send_exactly_what_a_relay_with_the_plugin_would(tree, tmp_path):
    records.create(tree.village, "inspection", {"topic": "渠道护坡"})
    register(tree.village, 1)
    tree.up(tmp_path)
    # every event the village wrote reached the top, through both relays
    assert event_ids(tree.village) <= event_ids(tree.township) <= event_ids(tree.county)
    assert event_ids(tree.village) <= event_ids(tree.city)


def test_policy_code_a_node_lacks_holds_the_cases_it_governs(tmp_path):
    county = new_node(tmp_path / "county", "county", COUNTY, "测试县", root=True,
                      plugins=[hearing])
    village = new_node(tmp_path / "village", "village", VILLAGE, "测试村")
    township = new_node(tmp_path / "township", "township", TOWNSHIP, "测试镇")
    enrol(township, county)
    enrol(village, township)
    case_id = register(village, 1)
    api.take_step(village, case_id, "accept", {"date": "2026-03-06"}, today=api.dt.date(2026, 11, 22))
    policy.set_policy(county, "case.deadline_policy", hearing.ONE_MONTH)
    carry(county, township, tmp_path)
    carry(township, village, tmp_path)
    # the village cannot apply the county's rule: it holds the case, naming the code
    groups = held.held(village)
    assert [(g.entity, g.entities) for g in groups] == [("case", 1)]
    assert hearing.ONE_MONTH in groups[0].reason
    with pytest.raises(Exception):
        api.get_case(village, case_id, reveal=False)
    home = village.home
    village.close()
    with Node.open(home, pm=plugin_manager([hearing])) as village:
        case = api.get_case(village, case_id, reveal=False)
        answer = {d["kind"]: d["due"] for d in case.deadlines}["answer"]
        assert answer == "2026-04-05"            # 30 days under the county's rule
    for node in (county, township):
        node.close()
