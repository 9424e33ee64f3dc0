"""Register cases on a node as fast as possible until killed (run by test_crash.py).

    python tests/crash_worker.py HOME cli|api FIRST_SERIAL

``cli`` registers through the real ``xinfang case register --json`` command
(``build_cli()``, each call opening and closing the node as a user's command
does); ``api`` keeps the node open and calls ``api.register_case``. Prints
``READY`` once the loop is about to start, then ``ACK <case number>`` after
each registration has returned, flushed at once: a line on stdout is a case
the user was told is registered.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
from pathlib import Path

from conftest import synthetic_id  # tests/ is sys.path[0] when this file runs as a script
from xinfang.cli.main import build_cli
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api

NAMES = ["赵某甲", "钱某乙", "孙某丙", "李某丁", "周某戊", "吴某己", "郑某庚", "王某辛"]


def petitioner(serial: int) -> tuple[str, str]:
    return NAMES[serial % len(NAMES)], synthetic_id(serial % 999 + 1)


def register_via_cli(home: Path, serial: int, cli) -> str:
    name, id_number = petitioner(serial)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["--home", str(home), "--operator", "测试员", "case", "register",
                  "-p", f"name={name},id={id_number},phone=13800000{serial % 1000:03d}",
                  "--channel", "来访", "--category", "劳动社保", "--request", "请求追讨拖欠工资",
                  "--received", "2026-03-01", "--json"],
                 prog_name="xinfang", standalone_mode=False)
    return json.loads(out.getvalue())["id"]


def register_via_api(node: Node, serial: int) -> str:
    name, id_number = petitioner(serial)
    data = api.CaseInput(
        petitioners=[api.PetitionerInput(name, id_number, address="示例村一组")],
        channel="来信", category="国土资源", kind="申诉求决", request="请求核实宅基地确权",
        received="2026-03-01")
    return api.register_case(node, data)


def main() -> None:
    home, mode, serial = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if mode == "cli":
        register = functools.partial(register_via_cli, home, cli=build_cli(get_plugin_manager()))
    else:
        node = Node.open(home, pm=get_plugin_manager())
        node.operator = "测试员"
        register = functools.partial(register_via_api, node)
    print("READY", flush=True)
    while True:
        case_id = register(serial)
        print(f"ACK {case_id}", flush=True)  # only now is the case acknowledged
        serial += 1


if __name__ == "__main__":
    main()
