"""Ordinary mistakes end in one clear line and a non-zero exit, never a traceback.

Every test runs the real command line (``invoke``) on real nodes of a
certified tree (``build_tree``), with real waitress servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import click
import pytest

from plugins import hearing
from sync_helpers import COUNTY, TOWNSHIP, build_tree, carry, register, serve
from test_cli import walk
from xinfang.cli.main import build_cli
from xinfang.core import store
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree")
    yield made
    made.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def no_crash(result) -> None:
    out = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"crashed with {result.exception!r}: {out}")
    assert "Traceback" not in out and "内部错误" not in out and "internal error" not in out, out


def one_line_error(result, *needles: str) -> str:
    """The command failed with exactly one line, ``错误：…``, naming ``needles``."""
    no_crash(result)
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误："), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def files_in(directory: Path) -> set[str]:
    return {p.name for p in Path(directory).iterdir()}


# -- sync ------------------------------------------------------------------------


def test_sync_to_an_address_that_is_not_a_url_is_refused_and_not_remembered(invoke, tree):
    said = one_line_error(invoke("sync", "--url", "notaurl", home_dir=tree.village.home),
                          "notaurl", "http://", "--url")
    assert "无法连接上级" in said
    assert store.get_meta(tree.village.db, "parent_url") is None


def test_sync_to_an_ftp_url_is_refused_at_once(invoke, tree):
    started = time.monotonic()
    result = invoke("sync", "--url", f"ftp://127.0.0.1:{free_port()}/",
                    home_dir=tree.village.home)
    one_line_error(result, "ftp://", "http://")
    assert time.monotonic() - started < 5
    assert store.get_meta(tree.village.db, "parent_url") is None


def test_a_url_that_failed_is_not_remembered_one_that_worked_is(invoke, tree):
    dead = f"http://127.0.0.1:{free_port()}"
    one_line_error(invoke("sync", "--url", dead, home_dir=tree.village.home),
                   "示例一镇信访办", dead)
    assert store.get_meta(tree.village.db, "parent_url") is None
    with serve(tree.township) as url:
        result = invoke("sync", "--url", url, home_dir=tree.village.home)
        assert result.exit_code == 0, result.output
        assert store.get_meta(tree.village.db, "parent_url") == url
        one_line_error(invoke("sync", "--url", dead, home_dir=tree.village.home))
        assert store.get_meta(tree.village.db, "parent_url") == url


def test_a_refusal_names_the_parent_the_village_talked_to_and_the_reason(invoke, tree,
                                                                         tmp_path):
    """The village is pointed at another office's server: the answer says who refused why."""
    other = build_tree(tmp_path / "other", villages=0)
    try:
        with serve(other.township) as url:
            said = one_line_error(invoke("sync", "--url", url, home_dir=tree.village.home),
                                  "上级 示例一镇信访办", "拒绝了同步请求", "400",
                                  "发给另一个节点")
    finally:
        other.close()
    assert url in said


def test_scheduled_sync_backs_off_and_stops_after_its_rounds(invoke, tree):
    port = free_port()
    started = time.monotonic()
    result = invoke("sync", "--url", f"http://127.0.0.1:{port}", "--every", "1s", "--rounds",
                    "3", home_dir=tree.village.home)
    took = time.monotonic() - started
    no_crash(result)
    failures = [line for line in result.output.splitlines() if line.startswith("同步失败")]
    assert len(failures) == 3, result.output
    assert ["秒后重试" in line for line in failures] == [True, True, False]
    waits = [float(line.rsplit("；", 1)[1].split(" ")[0]) for line in failures[:2]]
    # jittered exponential backoff: about 1 s, then about 2 s (each up to half a second more)
    assert 1.0 <= waits[0] <= 1.5 and 2.0 <= waits[1] <= 2.5, waits
    assert 3.0 <= took < 20, took


def test_every_must_be_a_positive_duration(invoke, tree):
    for every in ("0s", "often"):
        one_line_error(invoke("sync", "--url", "http://127.0.0.1:1", "--every", every,
                              home_dir=tree.village.home), "--every")


# -- serve -----------------------------------------------------------------------


def test_serve_on_a_port_in_use_is_one_line(invoke, tree):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(invoke("serve", "--port", str(port), home_dir=tree.township.home),
                       str(port), "--port")


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_on_an_impossible_port_is_refused_not_moved(invoke, tree, port):
    result = invoke("serve", "--port", port, home_dir=tree.township.home)
    no_crash(result)
    assert result.exit_code == 2 and "65535" in result.output, result.output


def test_serve_on_an_unknown_host_is_one_line(invoke, tree):
    one_line_error(invoke("serve", "--host", "no-such-host.invalid", "--port", "0",
                          home_dir=tree.township.home), "no-such-host.invalid", "--host")


# -- bundles and enrolment files -------------------------------------------------


def test_bundle_export_into_a_missing_directory_leaves_nothing(invoke, tree, tmp_path):
    out = tmp_path / "usb" / "missing" / "to-town.xfb"
    one_line_error(invoke("bundle", "export", "--to", TOWNSHIP[1], "--out", str(out),
                          home_dir=tree.village.home), str(out.parent), "--out")
    assert not (tmp_path / "usb").exists()


def test_bundle_export_onto_a_directory_leaves_nothing(invoke, tree, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    register(tree.village, 1)
    one_line_error(invoke("bundle", "export", "--to", TOWNSHIP[1], "--out", str(usb),
                          home_dir=tree.village.home), str(usb), "目录")
    assert files_in(tmp_path) == {"usb", "tree"} and files_in(usb) == set()
    assert not list(tmp_path.glob("*.part"))
    status = json.loads(invoke("sync", "status", "--json", home_dir=tree.village.home).stdout)
    assert [r["sent"] for r in status] == [0]


@pytest.fixture
def files(invoke, tree, tmp_path):
    """A request, the certificate the township signs for it, and a bundle, made by the CLI."""
    newcomer = tmp_path / "newcomer"
    assert invoke("init", "--level", "village", "--area", "431202101203", "--name", "示例三村",
                  home_dir=newcomer).exit_code == 0
    request, cert, bundle = tmp_path / "new.request", tmp_path / "new.cert", tmp_path / "b.xfb"
    assert invoke("enroll", "request", "--out", str(request), home_dir=newcomer).exit_code == 0
    signed = invoke("enroll", "sign", str(request), "--out", str(cert),
                    home_dir=tree.township.home)
    assert signed.exit_code == 0, signed.output
    register(tree.village, 1)
    exported = invoke("bundle", "export", "--to", TOWNSHIP[1], "--out", str(bundle),
                      home_dir=tree.village.home)
    assert exported.exit_code == 0, exported.output
    return {"request": request, "cert": cert, "bundle": bundle}


@pytest.mark.parametrize("given, says", [("cert", "xinfang enroll import"),
                                         ("bundle", "xinfang bundle import")])
def test_enroll_sign_of_a_file_that_is_not_a_request_names_its_command(invoke, tree, files,
                                                                       given, says):
    out = files["request"].parent / "again.cert"
    one_line_error(invoke("enroll", "sign", str(files[given]), "--out", str(out),
                          home_dir=tree.township.home), says, "注册申请")
    assert not out.exists()


@pytest.mark.parametrize("given, says", [("cert", "xinfang enroll import"),
                                         ("request", "xinfang enroll sign")])
def test_bundle_import_of_a_certificate_or_request_names_its_command(invoke, tree, files,
                                                                     given, says):
    before = tree.township.db.execute("select count(*) from events").fetchone()
    one_line_error(invoke("bundle", "import", str(files[given]), home_dir=tree.township.home),
                   says)
    assert tree.township.db.execute("select count(*) from events").fetchone() == before


def test_reimporting_a_bundle_is_reported_as_done(invoke, tree, files):
    first = invoke("bundle", "import", str(files["bundle"]), home_dir=tree.township.home)
    assert first.exit_code == 0, first.output
    again = invoke("bundle", "import", str(files["bundle"]), home_dir=tree.township.home)
    no_crash(again)
    assert again.exit_code == 0 and "已于" in again.output and "无需再次导入" in again.output
    assert len(again.output.strip().splitlines()) == 1
    parsed = json.loads(invoke("bundle", "import", str(files["bundle"]), "--json",
                               home_dir=tree.township.home).stdout)
    assert parsed["already_imported"]


def test_init_home_on_an_existing_file_is_one_line(invoke, tmp_path):
    home = tmp_path / "a-file"
    home.write_text("not a node", encoding="utf-8")
    one_line_error(invoke("init", "--level", "village", "--area", "431202101201", "--name", "村",
                          home_dir=home), str(home), "--home")
    assert home.read_text(encoding="utf-8") == "not a node"


# -- sync status -----------------------------------------------------------------


def rows(invoke, node: Node) -> list[dict]:
    return json.loads(invoke("sync", "status", "--json", home_dir=node.home).stdout)


def test_acknowledged_never_exceeds_sent_after_bundles_and_http(invoke, tree, tmp_path):
    register(tree.village, 1)
    register(tree.village, 2)
    register(tree.township, 3)
    carry(tree.village, tree.township, tmp_path)
    carry(tree.township, tree.village, tmp_path)
    for node in (tree.village, tree.township):
        for row in rows(invoke, node):
            assert row["acknowledged"] <= row["sent"], (node.info.name, row)
    # the township acknowledges both of the village's events, which it sent
    village_row = [r for r in rows(invoke, tree.village) if r["relation"] == "parent"][0]
    assert (village_row["sent"], village_row["acknowledged"], village_row["pending"]) == (2, 2, 0)

    with serve(tree.county) as url:
        result = invoke("sync", "--url", url, home_dir=tree.township.home)
        assert result.exit_code == 0, result.output
    for node in (tree.township, tree.county):
        for row in rows(invoke, node):
            assert row["acknowledged"] <= row["sent"], (node.info.name, row)
    county_row = [r for r in rows(invoke, tree.county) if r["area"] == TOWNSHIP[0]][0]
    # the county's case.tag of each of the 3 cases, signed as it took the push
    assert (county_row["sent"], county_row["acknowledged"], county_row["pending"]) == (3, 3, 0)
    up = [r for r in rows(invoke, tree.township) if r["area"] == COUNTY[0]][0]
    assert up["sent"] == up["acknowledged"] and up["pending"] == 0


def test_the_last_sync_error_is_stored_in_no_language_and_shown_in_the_reader_s(invoke, tree):
    dead = f"http://127.0.0.1:{free_port()}"
    one_line_error(invoke("sync", "--url", dead, home_dir=tree.village.home), "无法连接上级")
    stored = tree.village.db.execute("select last_error from peers where author = ?",
                                     [tree.township.info.author]).fetchone()[0]
    assert "无法连接上级" not in stored and dead in stored
    parent = [r for r in rows(invoke, tree.village) if r["relation"] == "parent"][0]
    assert parent["last_error"].startswith("无法连接上级 示例一镇信访办")
    english = json.loads(invoke("--lang", "en", "sync", "status", "--json",
                                home_dir=tree.village.home).stdout)
    assert [r["last_error"] for r in english if r["relation"] == "parent"][0].startswith(
        "cannot reach the parent 示例一镇信访办")
    text = invoke("sync", "status", home_dir=tree.village.home).output
    assert "上级" in text and "无法连接上级" in text and "parent" not in text


def test_sync_status_help_defines_its_columns(invoke):
    said = invoke("sync", "status", "--help").output
    for column in ("已发送", "已确认", "待发送", "不超过已发送"):
        assert column in said


# -- garbage into every command --------------------------------------------------

PM = [hearing]
SKIP_BARE = {("serve",), ("web",), ("demo",)}  # with no arguments these serve or run the demo


def garbage_calls(path, command):
    """Two calls: garbage for what is required, and garbage for every value it takes."""
    required, everything = [*path], [*path]
    for param in command.params:
        if isinstance(param, click.Argument):
            required.append("\x00garbage")
            everything.append("\x00garbage")
        elif param.name == "as_json":
            everything.append("--json")
        elif not param.is_flag and param.opts[0].startswith("--"):
            everything += [param.opts[0], "\x00garbage"]
            if param.required:
                required += [param.opts[0], "\x00garbage"]
    calls = [everything]
    if tuple(path) not in SKIP_BARE:
        calls.append(required)
    return calls


COMMANDS = [(path, cmd) for path, cmd in walk(build_cli(get_plugin_manager(PM)))
            if path and (not isinstance(cmd, click.Group) or cmd.invoke_without_command)]


@pytest.mark.parametrize("path, command", COMMANDS, ids=lambda p: " ".join(p)
                         if isinstance(p, tuple) else "")
def test_garbage_into_every_command_never_crashes(invoke, path, command, tmp_path,
                                                  monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # files written by default land here, not in the checkout
    made = invoke("init", "--level", "county", "--area", "431202", "--name", "测试县信访局",
                  "--root", plugins=PM)
    assert made.exit_code == 0, made.output
    for args in garbage_calls(path, command):
        result = invoke(*args, plugins=PM, input="")
        no_crash(result)


def test_serve_names_its_node_and_logs_one_line_per_request(tree):
    import os
    import re
    import subprocess
    import sys

    from xinfang.sync.http import Client

    register(tree.village, 1)
    proc = subprocess.Popen([sys.executable, "-c", "from xinfang.cli.main import main; main()",
                             "--home", str(tree.township.home), "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        start = proc.stderr.readline()
        assert "示例一镇信访办" in start and str(tree.township.home.name) in start, start
        url = re.search(r"http://127\.0\.0\.1:\d+", start).group(0)
        Client(tree.village, url).sync()
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=20)[1]
    lines = [line for line in rest.splitlines() if "/v1/sync" in line]
    assert lines and all(tree.village.info.name in line and " 200" in line for line in lines)
    assert any("push: 接收 1 条" in line for line in lines), rest
