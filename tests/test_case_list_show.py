"""`xinfang case list` with its filters and `xinfang case show`, text and --json."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from xinfang.core import clock, i18n

from conftest import case_input, synthetic_id
from xinfang.plugins.cases import api

TOWNSHIP = "431202101"
EAST, WEST = "431202101201", "431202101202"
ID1, ID2, ID3 = synthetic_id(1), synthetic_id(2), synthetic_id(3)


def ok(invoke, *args):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def register(invoke, *args) -> str:
    return json.loads(ok(invoke, "case", "register", *args, "--json").stdout)["id"]


@pytest.fixture
def cases(invoke):
    """Four cases at a township office, one of each kind the filters tell apart."""
    ok(invoke, "init", "--level", "township", "--area", TOWNSHIP, "--name", "测试镇信访办")
    handling = register(invoke, "-p", f"name=赵某甲,id={ID1},phone=13800000001,address=东村一组",
                        "--channel", "来信", "--category", "劳动社保", "--request", "请求追讨拖欠工资",
                        "--received", "2026-01-05", "--area", EAST)
    ok(invoke, "case", "accept", handling, "--date", "2026-01-10", "--unit", "镇劳动保障所")
    group = register(invoke, "-p", f"name=钱某乙,id={ID2},rep", "-p", "name=孙某丙",
                     "--headcount", "6", "--channel", "来访", "--category", "邻里纠纷",
                     "--request", "宅基地界址争议", "--received", "2026-02-01", "--area", WEST)
    ok(invoke, "case", "reject", group, "--date", "2026-02-03", "--reason", "属民事纠纷",
       "--legal-channel", "诉讼")
    repeat = register(invoke, "-p", f"name=赵某甲,id={ID1}", "--channel", "来访",
                      "--category", "劳动社保", "--request", "再次请求追讨拖欠工资",
                      "--received", "2026-03-01", "--area", EAST)
    fresh = register(invoke, "-p", f"name=李某丁,id={ID3}", "--channel", "网上信访",
                     "--category", "环境污染", "--request", "养殖场污水直排", "--area", EAST)
    return {"handling": handling, "group": group, "repeat": repeat, "fresh": fresh}


def listed(invoke, *filters) -> list[str]:
    return [c["id"] for c in json.loads(ok(invoke, "case", "list", *filters, "--json").stdout)]


def test_list_without_filters_shows_every_case_oldest_first(invoke, cases):
    assert listed(invoke) == [cases["handling"], cases["group"], cases["repeat"], cases["fresh"]]


@pytest.mark.parametrize("filters, expected", [
    (("--status", "办理中"), ["handling"]),
    (("--status", "accepted"), ["handling"]),
    (("--status", "已登记"), ["repeat", "fresh"]),
    (("--status", "不予受理"), ["group"]),
    (("--category", "劳动社保"), ["handling", "repeat"]),
    (("--category", "neighbour"), ["group"]),
    (("--area", WEST), ["group"]),
    (("--area", EAST), ["handling", "repeat", "fresh"]),
    (("--area", TOWNSHIP), ["handling", "group", "repeat", "fresh"]),
    (("--overdue",), ["handling", "repeat"]),
    (("--due-within", "15"), ["fresh"]),
    (("--repeat",), ["repeat"]),
    (("--no-repeat",), ["handling", "group", "fresh"]),
    (("--collective",), ["group"]),
    (("--no-collective",), ["handling", "repeat", "fresh"]),
    (("--channel", "来信"), ["handling"]),
    (("--channel", "visit"), ["group", "repeat"]),
    (("--channel", "online"), ["fresh"]),
    (("--category", "劳动社保", "--repeat"), ["repeat"]),
    (("--area", EAST, "--overdue", "--status", "已登记"), ["repeat"]),
    (("--status", "已终结"), []),
])
def test_list_filters(invoke, cases, filters, expected):
    assert listed(invoke, *filters) == [cases[name] for name in expected]


def test_list_json_carries_status_flags_and_labels(invoke, cases):
    rows = {c["id"]: c for c in json.loads(ok(invoke, "case", "list", "--json").stdout)}
    group = rows[cases["group"]]
    assert (group["status_label"], group["channel"], group["category"], group["headcount"],
            group["collective"], group["area"]) == ("不予受理", "来访", "邻里纠纷", 6, True, WEST)
    assert rows[cases["repeat"]]["repeat_of"] == cases["handling"]
    assert rows[cases["repeat"]]["first_petition"] is False
    assert rows[cases["fresh"]]["first_petition"] is True


def test_list_text_is_a_table_with_flags_and_a_total(invoke, cases):
    text = ok(invoke, "case", "list").stdout
    lines = text.splitlines()
    assert lines[0].split() == ["编号", "状态", "形式", "类别", "人数", "登记日期", "属地", "标记"]
    row = next(line for line in lines if line.startswith(cases["repeat"]))
    assert f"重复访←{cases['handling']}" in row and "已登记" in row
    assert "集体访" in next(line for line in lines if line.startswith(cases["group"]))
    assert "初信初访" in next(line for line in lines if line.startswith(cases["fresh"]))
    assert lines[-1] == "共 4 件"


def test_list_with_no_match_says_so(invoke, cases):
    assert ok(invoke, "case", "list", "--status", "已终结").stdout.strip() == \
        "没有符合条件的信访事项"


def test_list_never_prints_petitioners_identity(invoke, cases):
    for args in (("case", "list"), ("case", "list", "--json")):
        out = ok(invoke, *args).stdout
        assert ID1 not in out and "赵某甲" not in out and "13800000001" not in out


@pytest.mark.parametrize("filters, says", [
    (("--status", "待处理"), "未知状态“待处理”；可用的状态：已登记(registered)"),
    (("--category", "水利工程"), "问题类别 (category) 没有“水利工程”这一项"),
    (("--channel", "微信"), "信访形式 (channel) 没有“微信”这一项"),
    (("--area", "43120x"), "区划代码"),
    (("--due-within", "-3"), "--due-within 须为天数"),
])
def test_list_with_a_bad_filter_is_refused_in_one_line(invoke, cases, filters, says):
    result = invoke("case", "list", *filters)
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("错误：") and says in result.output


def test_show_text_has_the_case_petitioners_deadlines_and_history(invoke, cases):
    text = ok(invoke, "case", "show", cases["handling"]).stdout
    assert text.splitlines()[0].startswith(f"信访事项 {cases['handling']}  【办理中】  初信初访")
    assert "诉求 请求追讨拖欠工资" in text
    assert "责任单位 镇劳动保障所" in text
    assert f"赵某甲  {ID1}  13800000001  东村一组" in text
    assert "受理告知期限" in text and "已于 2026-01-10 完成" in text
    assert "办理答复期限   2026-01-10 → 2026-03-11  超期" in text
    assert "2026-01-05  登记  → 已登记  测试镇信访办/测试员" in text
    assert "2026-01-10  受理  → 办理中  测试镇信访办/测试员  责任单位：镇劳动保障所" in text


def test_show_json_has_the_petitioners_clear_values(invoke, cases):
    shown = json.loads(ok(invoke, "case", "show", cases["group"], "--json").stdout)
    assert shown["petitioners"] == [
        {"name": "钱某乙", "id_number": ID2, "phone": None, "address": None, "representative": True},
        {"name": "孙某丙", "id_number": None, "phone": None, "address": None,
         "representative": False}]
    assert shown["status_label"] == "不予受理"
    assert [h["step"] for h in shown["history"]] == ["register", "reject"]
    assert shown["history"][1]["details"] == {"date": "2026-02-03", "reason": "属民事纠纷",
                                              "legal_channel": "litigation"}
    assert shown["history"][1]["operator"] == "测试员"
    assert {d["kind"] for d in shown["deadlines"]} == {"dispatch", "decide"}


def test_show_json_of_a_repeat_names_the_earlier_case(invoke, cases):
    shown = json.loads(ok(invoke, "case", "show", cases["repeat"], "--json").stdout)
    assert (shown["repeat_of"], shown["first_petition"]) == (cases["handling"], False)


def access_log(invoke):
    db = sqlite3.connect(invoke.home / "xinfang.db")
    try:
        return [(*row[:3], i18n.show(row[3])) for row in db.execute(
            "select who, entity, entity_id, what from access_log order by pos")]
    finally:
        db.close()


def test_show_logs_who_read_the_petitioners(invoke, cases):
    assert access_log(invoke) == []          # registering, stepping and listing reveal no one
    ok(invoke, "case", "list")
    ok(invoke, "case", "show", cases["handling"])
    ok(invoke, "case", "show", cases["group"], "--json")
    assert access_log(invoke) == [("测试员", "case", cases["handling"], "查阅信访人信息"),
                                  ("测试员", "case", cases["group"], "查阅信访人信息")]


def test_register_output_does_not_echo_identity(invoke):
    ok(invoke, "init", "--level", "village", "--area", EAST, "--name", "测试村")
    for args in ((), ("--json",)):
        out = ok(invoke, "case", "register", "-p", f"name=赵某甲,id={ID1},phone=13800000001",
                 "--channel", "来访", "--category", "劳动社保", "--request", "讨薪",
                 "--received", "2026-01-05", *args).stdout
        assert ID1 not in out and "13800000001" not in out


def test_register_text_names_the_case_and_its_flags(invoke):
    ok(invoke, "init", "--level", "village", "--area", EAST, "--name", "测试村")
    out = ok(invoke, "case", "register", "-p", f"name=赵某甲,id={ID1}", "--headcount", "7",
             "--channel", "来访", "--category", "劳动社保", "--request", "讨薪",
             "--received", "2026-01-05").stdout
    assert out.strip() == f"已登记 {EAST}-2026-00001  集体访 初信初访"


def test_show_of_an_unknown_case_is_refused(invoke, cases):
    result = invoke("case", "show", "431202101201-2026-09999")
    assert result.exit_code != 0
    assert result.output.strip() == ("错误：本节点没有信访事项 431202101201-2026-09999；"
                                     "`xinfang case list` 列出全部")
    assert len(access_log(invoke)) == 0


def test_case_registered_without_date_is_received_today(invoke, cases):
    shown = json.loads(ok(invoke, "case", "show", cases["fresh"], "--json").stdout)
    assert shown["received"] == clock.today().isoformat()


def test_list_says_which_deadline_is_overdue_and_by_how_many_days(node):
    """督查督办 needs the missed deadline and how late it is, not just a flag."""
    case_id = api.register_case(node, case_input(received="2026-01-05"),
                                today=dt.date(2026, 3, 1))
    [case] = api.list_cases(node, api.CaseFilter(overdue=True), today=dt.date(2026, 3, 1))
    late = {d["kind"]: d for d in case.overdue}
    assert case.id == case_id
    assert late["decide"]["label"] == "受理告知期限"
    assert (late["decide"]["due"], late["decide"]["days"]) == ("2026-01-20", 40)
    api.take_step(node, case_id, "accept", {"date": "2026-03-01"}, today=dt.date(2026, 3, 1))
    assert api.list_cases(node, api.CaseFilter(overdue=True), today=dt.date(2026, 3, 1)) == []
