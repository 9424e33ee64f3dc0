"""Finding cases by a petitioner, listing by date, handler and unit, the access log,
and what a node trusts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import case_input, synthetic_id
from sync_helpers import build_tree, carry, register
from xinfang.core import i18n
from xinfang.core.errors import InvalidInput
from xinfang.core.keys import fingerprint
from xinfang.plugins.cases import api, find

TODAY = dt.date(2026, 3, 1)


def person(name: str, serial: int) -> api.PetitionerInput:
    return api.PetitionerInput(name, synthetic_id(serial), f"1380000{serial:04d}")


def access_rows(node) -> list[tuple[str, str, str]]:
    return [(entity, entity_id, i18n.show(what)) for entity, entity_id, what in node.db.execute(
        "select entity, entity_id, what from access_log order by pos")]


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree", villages=1)
    yield made
    made.close()


# -- case find ---------------------------------------------------------------------


def test_find_by_name_and_id_number_where_the_clear_values_are_held(node):
    first = api.register_case(node, case_input(petitioners=[person("赵某甲", 1)]), today=TODAY)
    second = api.register_case(node, case_input(
        petitioners=[person("钱某乙", 2), person("赵某甲", 3)], request="第二件"), today=TODAY)
    api.register_case(node, case_input(petitioners=[person("孙某丙", 4)]), today=TODAY)
    assert [f.case.id for f in find.find_cases(node, name="赵某甲")] == [first, second]
    assert [(f.case.id, f.by) for f in find.find_cases(node, id_number=synthetic_id(2))] == [
        (second, "id_number")]
    assert find.find_cases(node, name="李某丁") == []
    assert access_rows(node) == [("case", "*", "按姓名查找"), ("case", "*", "按身份证号查找"),
                                 ("case", "*", "按姓名查找")]


def test_the_county_finds_an_id_number_it_was_sent_and_the_township_between_finds_nothing(
        tree, tmp_path):
    """Only the ID number goes up, sealed to the county: the county finds the case by it
    (not by the name it was not sent); the township relays it unread, and holds no key
    that tests an ID number against the village's tag."""
    village, township, county = tree.village, tree.township, tree.county
    case_id = register(village, serial=7)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    assert find.find_cases(county, name="赵某7") == []
    found = find.find_cases(county, id_number=synthetic_id(7))
    assert [(f.case.id, f.by) for f in found] == [(case_id, "id_number")]
    assert access_rows(county)[-1] == ("case", "*", "按身份证号查找")
    assert find.find_cases(township, id_number=synthetic_id(7)) == []
    assert access_rows(township)[-1] == ("case", "*", "按身份证号查找")


def test_find_refuses_bad_input_and_logs_nothing(node):
    with pytest.raises(InvalidInput, match="之一"):
        find.find_cases(node)
    with pytest.raises(InvalidInput, match="之一"):
        find.find_cases(node, name="赵某甲", id_number=synthetic_id(1))
    with pytest.raises(InvalidInput, match="身份证号"):
        find.find_cases(node, id_number="12345")
    assert access_rows(node) == []


def test_case_find_through_the_cli(invoke):
    assert invoke("init", "--level", "village", "--area", "431202101201",
                  "--name", "示例村信访站").exit_code == 0
    registered = invoke("case", "register", "-p", f"name=赵某甲,id={synthetic_id(5)}",
                        "--channel", "来访", "--category", "劳动社保", "--request", "请求追讨拖欠工资",
                        "--json")
    case_id = json.loads(registered.output)["id"]
    result = invoke("case", "find", "--id-number", synthetic_id(5), "--json")
    assert result.exit_code == 0, result.output
    assert [(r["id"], r["found_by"]) for r in json.loads(result.output)] == [(case_id, "id_number")]
    text = invoke("case", "find", "--name", "赵某甲")
    assert text.exit_code == 0 and case_id in text.output and "共 1 件" in text.output
    none = invoke("case", "find", "--name", "李某丁")
    assert none.exit_code == 0 and "没有符合条件" in none.output
    bad = invoke("case", "find")
    assert bad.exit_code != 0 and bad.output.startswith("错误：请给出 --name 或 --id-number")
    log = json.loads(invoke("access-log", "--json").output)
    assert [(r["entity_id"], r["what"]) for r in log] == [("*", "按身份证号查找"),
                                                         ("*", "按姓名查找"),
                                                         ("*", "按姓名查找")]
    assert all(r["who"] == "测试员" for r in log)


# -- case list by date, handler, unit -------------------------------------------------


def test_list_filters_by_received_date_handler_and_unit(node):
    ids = [api.register_case(node, case_input(received=day), today=TODAY)
           for day in ("2026-01-05", "2026-02-10", "2026-02-20")]
    api.take_step(node, ids[0], "accept", {"unit": "镇劳动保障所", "handler": "王某"}, today=TODAY)
    api.take_step(node, ids[2], "accept", {"unit": "镇司法所", "handler": "李某"}, today=TODAY)

    def listed(**filters):
        return [c.id for c in api.list_cases(node, api.CaseFilter(**filters), today=TODAY)]

    assert listed(received_from="2026-02-01") == ids[1:]
    assert listed(received_to="2026-02-10") == ids[:2]
    assert listed(received_from="2026-02-10", received_to=dt.date(2026, 2, 10)) == [ids[1]]
    assert listed(handler="王某") == [ids[0]]
    assert listed(unit="司法所") == [ids[2]]
    assert listed(unit="镇", received_from="2026-02-01") == [ids[2]]
    with pytest.raises(InvalidInput, match="不是日期"):
        listed(received_from="2026-13-01")
    with pytest.raises(InvalidInput, match="晚于"):
        listed(received_from="2026-03-01", received_to="2026-02-01")


def test_list_filters_through_the_cli(invoke):
    assert invoke("init", "--level", "village", "--area", "431202101201",
                  "--name", "示例村信访站").exit_code == 0
    for day in ("2026-01-05", "2026-02-10"):
        assert invoke("case", "register", "-p", "name=赵某甲", "--channel", "来访",
                      "--category", "劳动社保", "--request", "请求", "--received", day).exit_code == 0
    rows = json.loads(invoke("case", "list", "--from", "2026-02-01", "--json").output)
    assert [r["received"] for r in rows] == ["2026-02-10"]
    rows = json.loads(invoke("case", "list", "--to", "2026-01-31", "--unit", "所", "--json").output)
    assert rows == []
    bad = invoke("case", "list", "--from", "昨天")
    assert bad.exit_code != 0 and bad.output.startswith("错误：--from “昨天” 不是日期")


# -- access log ----------------------------------------------------------------------


def test_access_log_lists_who_read_which_case(invoke):
    assert invoke("init", "--level", "village", "--area", "431202101201",
                  "--name", "示例村信访站").exit_code == 0
    ids = [json.loads(invoke("case", "register", "-p", "name=赵某甲", "--channel", "来访",
                             "--category", "劳动社保", "--request", "请求", "--json").output)["id"]
           for _ in range(2)]
    assert invoke("access-log").output.startswith("没有查阅记录")
    invoke("case", "show", ids[0])
    invoke("--operator", "张某", "case", "show", ids[1])
    rows = json.loads(invoke("access-log", "--json").output)
    assert [(r["entity_id"], r["what"]) for r in rows] == [(ids[0], "查阅信访人信息"),
                                                          (ids[1], "查阅信访人信息")]
    only = json.loads(invoke("access-log", "--case", ids[1], "--json").output)
    assert [r["entity_id"] for r in only] == [ids[1]]
    text = invoke("access-log")
    assert text.exit_code == 0 and ids[0] in text.output and "共 2 条" in text.output


# -- trust list ------------------------------------------------------------------------


def test_trust_list_shows_certificates_root_and_where_a_revocation_would_cut(tree, tmp_path,
                                                                           invoke):
    from xinfang.sync.trust_list import trust_list

    village, township, county = tree.village, tree.township, tree.county
    register(village, serial=1)
    register(village, serial=2)
    carry(village, township, tmp_path)
    listing = trust_list(township)
    assert listing.root["fingerprint"] == fingerprint(county.info.author)
    assert listing.root["name"] == county.info.name
    by_name = {c["name"]: c for c in listing.certificates}
    assert by_name[village.info.name]["issuer"] == township.info.name
    assert by_name[village.info.name]["fingerprint"] == fingerprint(village.info.author)
    assert by_name[county.info.name]["self_signed"]
    assert [(d["name"], d["epoch"], d["seq"]) for d in listing.descendants] == [
        (village.info.name, 0, 2)]
    assert listing.revocations == ()
    assert [d["name"] for d in trust_list(county).descendants] == [township.info.name]
    carry(township, county, tmp_path)  # the village's certificate travels up with its events
    # the township's one event: the trust.certify it logged when it certified the village
    assert [(d["name"], d["seq"]) for d in trust_list(county).descendants] == [
        (township.info.name, 1), (village.info.name, 2)]
    assert trust_list(village).descendants == ()

    home = township.home
    revoked = invoke("trust", "revoke", village.info.name, "--epoch", "0", "--seq", "2",
                     "--reason", "笔记本丢失", home_dir=home)
    assert revoked.exit_code == 0, revoked.output
    data = json.loads(invoke("trust", "list", "--json", home_dir=home).output)
    assert [(r["name"], r["epoch"], r["seq"], r["kind"], r["reason"]) for r in data["revocations"]] \
        == [(village.info.name, 0, 2, "revoke", "笔记本丢失")]
    assert data["descendants"][0]["revoked"]
    text = invoke("trust", "list", home_dir=home)
    assert text.exit_code == 0, text.output
    assert fingerprint(county.info.author) in text.output and "--epoch 0 --seq 2" in text.output
    assert "吊销" in text.output
