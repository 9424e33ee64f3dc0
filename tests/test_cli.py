"""The `xinfang` command line: help everywhere, parseable --json, one-line errors that write
nothing."""

from __future__ import annotations

import datetime as dt
import json

import click
import pytest
from click.testing import CliRunner

from conftest import synthetic_id
from plugins import hearing
from xinfang.cli.main import build_cli
from xinfang.core import clock
from xinfang.core.fold import views_digest
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager

VILLAGE = "431202101201"
INIT = ("init", "--level", "village", "--area", VILLAGE, "--name", "测试村")
ID1 = synthetic_id(1)
WRONG_CHECK = ID1[:17] + ("0" if ID1[17] != "0" else "1")
TOMORROW = (clock.today() + dt.timedelta(days=1)).isoformat()
#: the commands of the node's core and of the case plugin; each prints data, so takes --json
CORE_GROUPS = {"init", "node", "log", "rebuild", "case"}


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = [path for path, _ in walk(build_cli(get_plugin_manager([hearing])))]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "xinfang")
def test_help_works_on_every_command(path):
    cli = build_cli(get_plugin_manager([hearing]))
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("用法：")
    assert result.exception is None


def test_every_node_and_case_command_takes_json():
    commands = [(path, command) for path, command in walk(build_cli(get_plugin_manager([hearing])))
                if path and path[0] in CORE_GROUPS and not isinstance(command, click.Group)]
    assert len(commands) >= 19
    missing = [" ".join(path) for path, command in commands
               if not any(p.name == "as_json" for p in command.params)]
    assert missing == []


def ok(invoke, *args, **kw):
    result = invoke(*args, **kw)
    assert result.exit_code == 0, result.output
    return result


def parsed(invoke, *args, **kw):
    """Run with --json; stdout must be exactly one JSON document."""
    return json.loads(ok(invoke, *args, "--json", **kw).stdout)


REGISTER = ("case", "register", "-p", f"name=赵某甲,id={ID1},phone=13800000001,rep",
            "--channel", "来访", "--category", "劳动社保", "--request", "请求追讨拖欠工资")


def test_json_of_node_and_log_commands_parses(invoke):
    created = parsed(invoke, *INIT)
    assert (created["area"], created["level"], created["events"]) == (VILLAGE, "village", 0)
    assert parsed(invoke, "node", "show")["name"] == "测试村"
    assert parsed(invoke, "log", "verify")["ok"] is True
    assert parsed(invoke, "rebuild", "--check")["consistent"] is True
    assert parsed(invoke, "rebuild")["consistent"] is True
    assert parsed(invoke, "node", "new-epoch") == {"epoch": 1}


def test_json_of_every_case_command_parses(invoke):
    ok(invoke, *INIT)
    case_id = parsed(invoke, *REGISTER, "--received", "2026-01-05")["id"]
    steps = [
        ("forward", "--date", "2026-01-08", "--mode", "交办", "--unit", "镇劳动保障所"),
        ("accept", "--date", "2026-01-10"),
        ("extend", "--date", "2026-02-01", "--days", "10", "--reason", "需调取用工记录"),
        ("answer", "--date", "2026-03-01", "--outcome", "予以支持"),
        ("close", "--date", "2026-03-02"),
        ("rate", "--date", "2026-03-03", "--rating", "满意"),
        ("request-review", "--date", "2026-03-10"),
        ("answer-review", "--date", "2026-03-20", "--outcome", "维持"),
        ("request-rereview", "--date", "2026-04-01"),
        ("answer-rereview", "--date", "2026-04-10", "--outcome", "维持"),
        ("finalize", "--date", "2026-04-15"),
    ]
    for step, *values in steps:
        assert parsed(invoke, "case", step, case_id, *values)["id"] == case_id
    other = parsed(invoke, *REGISTER, "--received", "2026-01-05")["id"]
    for step, *values in [("reject", "--reason", "属仲裁事项", "--legal-channel", "仲裁")]:
        assert parsed(invoke, "case", step, other, *values)["status"] == "not_accepted"
    third = parsed(invoke, *REGISTER)["id"]
    assert parsed(invoke, "case", "refuse", third, "--reason", "已终结")["status"] == \
        "not_reaccepted"
    fourth = parsed(invoke, *REGISTER)["id"]
    assert parsed(invoke, "case", "withdraw", fourth)["status"] == "withdrawn"
    assert [c["id"] for c in parsed(invoke, "case", "list")] == [case_id, other, third, fourth]
    shown = parsed(invoke, "case", "show", case_id)
    assert shown["status"] == "final" and len(shown["history"]) == 12


def test_json_of_a_plugin_step_command_parses(invoke):
    ok(invoke, *INIT, plugins=[hearing])
    case_id = parsed(invoke, *REGISTER, plugins=[hearing])["id"]
    ok(invoke, "case", "accept", case_id, plugins=[hearing])
    assert parsed(invoke, "case", "hold-hearing", case_id, plugins=[hearing])["status"] == "hearing"


# -- bad input: one line, non-zero exit, nothing written ---------------------------

def snapshot(home, plugins=()):
    node = Node.open(home, pm=get_plugin_manager(plugins))
    try:
        return (node.db.execute("select count(*) from events").fetchone()[0],
                views_digest(node.db, node.registry),
                node.db.execute("select count(*) from vault").fetchone()[0],
                dict(node.db.execute("select key, value from meta").fetchall()))
    finally:
        node.close()


@pytest.fixture
def office(invoke):
    """A village node with a registered case, a case in handling and an answered one."""
    ok(invoke, *INIT)
    ids = {}
    ids["new"] = parsed(invoke, *REGISTER, "--received", "2026-01-05")["id"]
    ids["handling"] = parsed(invoke, *REGISTER, "--received", "2026-01-05")["id"]
    ok(invoke, "case", "accept", ids["handling"], "--date", "2026-01-10")
    ok(invoke, "case", "extend", ids["handling"], "--date", "2026-01-20", "--days", "10",
       "--reason", "复杂")
    ids["answered"] = parsed(invoke, *REGISTER, "--received", "2026-01-05")["id"]
    ok(invoke, "case", "accept", ids["answered"], "--date", "2026-01-10")
    ok(invoke, "case", "answer", ids["answered"], "--date", "2026-02-01", "--outcome", "解释说明")
    return ids


def register_with(**changes):
    values = {"-p": f"name=赵某甲,id={ID1}", "--channel": "来访", "--category": "劳动社保",
              "--request": "请求追讨拖欠工资", "--received": "2026-01-05", **changes}
    return ["case", "register", *(x for pair in values.items() for x in pair)]


BAD_INPUT = {
    "malformed id number": (register_with(**{"-p": "name=赵某甲,id=43120219800101"}),
                            "应为 17 位数字加一位数字或 X"),
    "id number with a letter": (register_with(**{"-p": "name=赵某甲,id=99000019800101001Y"}),
                                "应为 17 位数字加一位数字或 X"),
    "wrong check digit": (register_with(**{"-p": f"name=赵某甲,id={WRONG_CHECK}"}),
                          "未通过 GB 11643 校验"),
    "unknown category": (register_with(**{"--category": "水利工程"}),
                         "问题类别 (category) 没有“水利工程”这一项"),
    "area outside jurisdiction": (register_with(**{"--area": "431202101202"}),
                                  "问题属地 431202101202 不在本节点辖区"),
    "received date in the future": (register_with(**{"--received": TOMORROW}),
                                    f"{TOMORROW} 晚于今天"),
    "empty request": (register_with(**{"--request": "   "}), "诉求为空"),
    "petitioner without name=": (register_with(**{"-p": f"赵某甲,id={ID1}"}),
                                 "无法识别信访人信息"),
    "case field no plugin adds": (register_with(**{"--field": "major=是"}),
                                  "没有这些项：major"),
    "invalid lifecycle step": (["case", "answer", "{new}", "--outcome", "予以支持"],
                               "不能对已登记 (registered) 的信访事项办理答复 (answer)；"
                               "当前可办理：转送交办(forward)"),
    "invalid lifecycle step typed without its values": (
        ["case", "answer", "{new}"], "不能对已登记 (registered) 的信访事项"),
    "finished step from a wrong state": (["case", "finalize", "{answered}"],
                                         "不能对已答复 (answered) 的信访事项"),
    "step dated before received": (["case", "accept", "{new}", "--date", "2026-01-04"],
                                   "早于信访事项的登记日期（2026-01-05）"),
    "step dated in the future": (["case", "accept", "{new}", "--date", TOMORROW],
                                 "晚于今天"),
    "second extension": (["case", "extend", "{handling}", "--date", "2026-02-01", "--days", "5",
                          "--reason", "仍复杂"], "已记录过延期"),
    "extension of an answered case": (["case", "extend", "{answered}", "--days", "5",
                                       "--reason", "x"], "不能对已答复"),
    "review after its window": (["case", "request-review", "{answered}", "--date", "2026-03-04"],
                                "已过申请期限 2026-03-03"),
    "rating not in the list": (["case", "rate", "{answered}", "--rating", "还行"],
                               "评价 (rating) 没有“还行”这一项"),
    "step on an unknown case": (["case", "accept", "431202101201-2026-09999"],
                                "本节点没有信访事项 431202101201-2026-09999"),
    "show an unknown case": (["case", "show", "431202101201-2026-09999"],
                             "本节点没有信访事项 431202101201-2026-09999"),
    "list by unknown status": (["case", "list", "--status", "待办"], "未知状态“待办”"),
    "node directory that already exists": (list(INIT), "已存在且不为空"),
}


@pytest.mark.parametrize("what", list(BAD_INPUT))
def test_bad_input_gives_one_error_line_and_writes_nothing(invoke, office, what):
    args, says = BAD_INPUT[what]
    args = [a.format(**office) for a in args]
    before = snapshot(invoke.home)
    result = invoke(*args)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("错误："), lines[0]
    assert says in lines[0]
    assert result.stdout == ""
    assert snapshot(invoke.home) == before


def test_extension_over_30_days_is_refused_in_one_line(invoke):
    ok(invoke, *INIT)
    case_id = parsed(invoke, *REGISTER, "--received", "2026-01-05")["id"]
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    before = snapshot(invoke.home)
    result = invoke("case", "extend", case_id, "--date", "2026-01-20", "--days", "31",
                    "--reason", "复杂")
    assert result.exit_code != 0
    assert result.output.strip() == "错误：不能办理延期 (extend)：延期最多 30 天；申请了 31 天"
    assert snapshot(invoke.home) == before


def test_init_over_an_existing_node_keeps_its_identity(invoke):
    created = parsed(invoke, *INIT)
    ok(invoke, *REGISTER)
    before = snapshot(invoke.home)
    result = invoke("init", "--level", "township", "--area", "431202101", "--name", "另一个节点")
    assert result.exit_code != 0
    assert result.output.strip() == (f"错误：节点目录 {invoke.home} 已存在且不为空；"
                                     "请另选 --home 或将其删除")
    assert snapshot(invoke.home) == before
    assert parsed(invoke, "node", "show")["fingerprint"] == created["fingerprint"]


def test_init_into_a_non_empty_directory_is_refused(invoke, tmp_path):
    home = tmp_path / "papers"
    home.mkdir()
    (home / "台账.xlsx").write_bytes(b"not a node")
    result = invoke(*INIT, home_dir=home)
    assert result.exit_code != 0
    assert result.output.startswith("错误：") and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in home.iterdir()) == ["台账.xlsx"]


@pytest.mark.parametrize("args, says", [
    (("init", "--level", "村", "--area", "4312021012", "--name", "测试村"), "有 10 位"),
    (("init", "--level", "hamlet", "--area", VILLAGE, "--name", "测试村"), "没有“hamlet”这一层级"),
    (("init", "--level", "village", "--area", VILLAGE, "--name", "  "), "节点名称为空"),
])
def test_init_with_bad_values_creates_nothing(invoke, args, says):
    result = invoke(*args)
    assert result.exit_code != 0
    assert result.output.startswith("错误：") and says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not invoke.home.exists()


def test_commands_on_a_directory_without_a_node_say_to_run_init(invoke):
    result = invoke("case", "list")
    assert result.exit_code != 0
    assert result.output.startswith("错误：") and "没有节点" in result.output
    assert "xinfang init" in result.output
    assert len(result.output.strip().splitlines()) == 1
