"""The entity kernel: a plugin that only declares an entity type gets the rest.

``tests/plugins/inspection.py`` declares 安全检查 (three states, two steps,
one field, its own table and migration) and nothing else. Here it gets
generated commands with ``--json``, history, conflicts, sync through the
tree and rebuild, on real nodes and the real CLI.
"""

from __future__ import annotations

import json

import pytest

from plugins import inspection
from sync_helpers import build_tree, carry, views
from xinfang.core import i18n, records, verify
from xinfang.core.errors import InvalidInput, NotFound, PluginError
from xinfang.core.entities import EntityType, Field, State, Step
from xinfang.core.plugins import Registry, get_plugin_manager

WITH = [inspection]
VILLAGE = "431202101201"


def ok(invoke, *args):
    result = invoke(*args, plugins=WITH)
    assert result.exit_code == 0, result.output
    return result


def as_json(invoke, *args):
    return json.loads(ok(invoke, *args, "--json").stdout)


def test_declared_entity_gets_create_list_show_and_one_command_per_step(invoke):
    listing = ok(invoke, "inspection", "--help").stdout
    for name in ("plan", "list", "show", "inspect", "close"):
        assert f"  {name} " in listing, listing
    assert "检查事项" in ok(invoke, "inspection", "plan", "--help").stdout


def test_entity_moves_through_its_lifecycle_on_the_cli_with_history(invoke):
    ok(invoke, "init", "--level", "village", "--area", VILLAGE, "--name", "测试村")
    made = as_json(invoke, "inspection", "plan", "--topic", "消防通道")
    assert (made["status"], made["values"]["topic"]) == ("planned", "消防通道")
    entity_id = made["id"]
    assert entity_id.startswith(f"{VILLAGE}-")
    assert as_json(invoke, "inspection", "inspect", entity_id, "--date", "2026-03-02")[
        "status_label"] == "已检查"
    ok(invoke, "inspection", "close", entity_id, "--date", "2026-03-05")
    shown = as_json(invoke, "inspection", "show", entity_id)
    assert [(h["step"], h["label"], h["status"]) for h in shown["history"]] == [
        ("plan", "计划检查", "planned"), ("inspect", "检查", "inspected"),
        ("close", "整改完毕", "closed")]
    assert shown["history"][1]["date"] == "2026-03-02"
    assert [r["id"] for r in as_json(invoke, "inspection", "list", "--status", "已整改")] == [entity_id]
    assert as_json(invoke, "inspection", "list", "--status", "待检查") == []
    text = ok(invoke, "inspection", "show", entity_id).stdout
    assert "整改完毕" in text and "消防通道" in text


def test_a_step_the_state_does_not_allow_is_one_line_naming_the_allowed_steps(invoke):
    ok(invoke, "init", "--level", "village", "--area", VILLAGE, "--name", "测试村")
    entity_id = as_json(invoke, "inspection", "plan", "--topic", "燃气管道")["id"]
    result = invoke("inspection", "close", entity_id, plugins=WITH)
    assert result.exit_code != 0
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "检查(inspect)" in message, message
    assert as_json(invoke, "inspection", "show", entity_id)["status"] == "planned"


def test_missing_field_and_unknown_entity_are_clear_errors_with_nothing_written(invoke):
    ok(invoke, "init", "--level", "village", "--area", VILLAGE, "--name", "测试村")
    result = invoke("inspection", "plan", plugins=WITH)
    assert result.exit_code != 0 and "检查事项" in result.output
    result = invoke("inspection", "show", f"{VILLAGE}-2026-00009", plugins=WITH)
    assert result.exit_code != 0 and "本节点没有安全检查" in result.output
    assert as_json(invoke, "inspection", "list") == []


def test_api_lists_with_filters_and_refuses_an_unknown_status(make_node):
    node = make_node(plugins=WITH)
    first = records.create(node, "inspection", {"topic": "消防通道"})
    records.create(node, "inspection", {"topic": "电线老化"})
    records.take_step(node, "inspection", first, "inspect")
    found = records.list_records(node, "inspection", records.RecordFilter(status="inspected"))
    assert [r.id for r in found] == [first]
    by_topic = records.list_records(node, "inspection",
                                   records.RecordFilter(values={"topic": "电线老化"}))
    assert [r.values["topic"] for r in by_topic] == ["电线老化"]
    with pytest.raises(InvalidInput, match="没有状态"):
        records.list_records(node, "inspection", records.RecordFilter(status="lost"))
    with pytest.raises(NotFound):
        records.get(node, "inspection", "431202101201-2026-09999")


def test_concurrent_steps_become_a_listed_conflict_on_every_node(tmp_path):
    # one village: the nodes compared hold the same events, the township's trust.certify
    # of it included (a sibling's would never reach the village)
    tree = build_tree(tmp_path, villages=1, plugins=WITH)
    village, township = tree.village, tree.township
    entity_id = records.create(village, "inspection", {"topic": "河道护栏"})
    carry(village, township, tmp_path)
    records.take_step(village, "inspection", entity_id, "inspect", {"date": "2026-03-02"})
    records.take_step(township, "inspection", entity_id, "inspect", {"date": "2026-03-03"})
    carry(village, township, tmp_path)
    carry(township, village, tmp_path)
    for node in (village, township):
        record = records.get(node, "inspection", entity_id)
        assert record.status == "inspected"
        assert len(record.conflicts) == 1 and "inspect" in record.conflicts[0]["type"]
    assert views(village) == views(township)
    tree.close()


def test_a_conflict_folded_in_english_and_in_chinese_gives_the_same_views_in_each_readers_language(
        tmp_path):
    """Views are the same whatever language the node folding them runs in: the
    conflict reason is stored as a message, rendered where it is read."""
    tree = build_tree(tmp_path, villages=1, plugins=WITH)  # the same events on both
    village, township = tree.village, tree.township
    entity_id = records.create(village, "inspection", {"topic": "河道护栏"})
    carry(village, township, tmp_path)
    records.take_step(village, "inspection", entity_id, "inspect", {"date": "2026-03-02"})
    records.take_step(township, "inspection", entity_id, "inspect", {"date": "2026-03-03"})
    with i18n.language_scope("en"):
        carry(village, township, tmp_path)  # the township folds the conflict in English
    carry(township, village, tmp_path)  # the village folds it in Chinese
    assert views(village) == views(township)
    stored = {node.info.name: node.db.execute("select reason from conflicts").fetchall()
              for node in (village, township)}
    assert len(set(map(tuple, stored.values()))) == 1 and len(stored[village.info.name]) == 1
    for node in (village, township):
        with i18n.language_scope("en"):
            (english,) = records.get(node, "inspection", entity_id).conflicts
        (chinese,) = records.get(node, "inspection", entity_id).conflicts
        assert english["reason"].startswith("cannot 检查 (inspect)"), english
        assert "不能" in chinese["reason"] and "cannot" not in chinese["reason"], chinese
        assert "已检查" in english["reason"] and "已检查" in chinese["reason"]
    tree.close()


def test_records_sync_up_the_tree_and_rebuild_to_the_same_views(tmp_path):
    tree = build_tree(tmp_path, villages=1, plugins=WITH)  # the same events on both
    village, township, county = tree.village, tree.township, tree.county
    entity_id = records.create(village, "inspection", {"topic": "校舍安全"})
    records.take_step(village, "inspection", entity_id, "inspect")
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    assert records.get(county, "inspection", entity_id).status == "inspected"
    records.take_step(county, "inspection", entity_id, "close")
    carry(county, township, tmp_path)
    carry(township, village, tmp_path)
    assert records.get(village, "inspection", entity_id).status == "closed"
    assert views(village) == views(county)
    for node in tree.nodes:
        assert verify.rebuild(node, check_only=True).consistent
    tree.close()


def test_a_field_named_like_a_kernel_column_is_refused_at_plugin_load():
    class Bad:
        from xinfang import hookimpl

        @hookimpl
        def xinfang_entity_types(self):
            return [EntityType("bad", "坏", ("bad_rows",), None, table="bad_rows",
                               create=Step("add", "新建", (), "open", (Field("by", "经办人"),)),
                               states=(State("open", "开"),))]

    with pytest.raises(PluginError, match="“by”用了内核保留的名称"):
        Registry.collect(get_plugin_manager([Bad()]))


def test_a_lifecycle_entity_needs_a_table_and_a_creation_step():
    with pytest.raises(PluginError, match="须给出 apply=，或同时给出 table= 和 create="):
        EntityType("half", "半", (), None, table="half_rows")


def _hand_signed_step(node, entity: str, entity_id: str, step: str, values: dict):
    """The next event of ``node``'s own feed, built and signed by hand: a stolen key."""
    from xinfang.core import store
    from xinfang.core.event import Event

    seq, prev = store.feed_head(node.db, node.info.author, node.info.epoch)
    return Event.create(node.keys, epoch=node.info.epoch, seq=seq + 1, prev=prev,
                        hlc=node.clock.tick(), type=f"{entity}.{step}", entity=entity,
                        entity_id=entity_id, area=node.info.area,
                        body={"values": values, "by": "盗用密钥"})


@pytest.mark.parametrize("kind", ["inspection", "case"])
def test_a_stolen_village_key_cannot_step_a_sibling_villages_record(tmp_path, kind):
    """The step names the thief's own area, so it passes the scope check on arrival;
    every receiver then keeps it as a conflict, since the record's area decides."""
    from sync_helpers import register, send_pages, wire
    from xinfang.plugins.cases import api

    tree = build_tree(tmp_path, plugins=WITH)
    thief, victim, township = tree.village, tree.sibling, tree.township
    register(thief, 1)                                    # the thief's feed has a head
    if kind == "inspection":
        target = records.create(victim, "inspection", {"topic": "河道护栏"})
        step, values = "inspect", {"date": "2026-03-02"}
    else:
        target = register(victim, 2)
        step, values = "withdraw", {"date": "2026-03-06", "reason": "冒名撤回"}
    carry(thief, township, tmp_path)
    carry(victim, township, tmp_path)
    forged = _hand_signed_step(thief, kind, target, step, values)
    summary = send_pages(thief, township, [wire([forged], certs_from=thief)], tmp_path)
    assert summary.applied == 1                            # stored and relayed, not folded
    status = (records.get(township, kind, target).status if kind == "inspection"
              else api.get_case(township, target, reveal=False).status)
    assert status == ("planned" if kind == "inspection" else "registered")
    reasons = [r[0] for r in township.db.execute(
        "select reason from conflicts where event_id = ?", [forged.id])]
    assert reasons and "区划" in i18n.show(reasons[0])
    assert verify.rebuild(township, check_only=True).consistent
    tree.close()
