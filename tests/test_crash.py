"""Nothing is lost when the process dies (DESIGN invariant 6), with real processes.

A child process registers cases on one node as fast as it can, through the
real ``xinfang case register`` command or the API, and prints each case number
only after the call has returned. The test kills it with SIGKILL at a random
moment, fifteen times on the same node, and after every kill checks what an
office relies on: the log verifies, the views agree with a rebuild from the
log, every case it was told is registered is there, and each registration
is one case (no half-written one, none twice).
"""

from __future__ import annotations

import json
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import VILLAGE, synthetic_id
from xinfang.cli.main import build_cli
from xinfang.core.event import Event
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("crash_worker.py")
#: one kill per seed; each seed fixes how long the child runs before it dies.
SEEDS = (3, 17, 29, 41, 53, 67, 71, 89, 97, 101, 113, 127, 131, 149, 151)
#: the longest a child runs before the kill, in seconds, after it said READY.
MAX_RUN = 0.35
START_TIMEOUT = 60


def xinfang(home: Path, *args: str):
    """The real ``xinfang`` command, in process."""
    return CliRunner().invoke(build_cli(get_plugin_manager()),
                              ["--home", str(home), "--operator", "测试员", *args])


def run_and_kill(home: Path, mode: str, first_serial: int, seed: int, log: Path) -> list[str]:
    """Start a registering child, SIGKILL it after a random delay; return its ACKed numbers."""
    delay = random.Random(seed).uniform(0.0, MAX_RUN)
    with open(log, "wb") as stderr:
        child = subprocess.Popen([sys.executable, str(WORKER), str(home), mode, str(first_serial)],
                                 stdout=subprocess.PIPE, stderr=stderr)
        try:
            started, _, _ = select.select([child.stdout], [], [], START_TIMEOUT)
            assert started, f"worker printed nothing in {START_TIMEOUT} s"
            ready = child.stdout.readline()
            assert ready == b"READY\n", (f"worker did not start: {ready!r}\n"
                                         + log.read_text(errors="replace"))
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            output = child.stdout.read()
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL, (
        f"the worker ended by itself (exit {child.returncode}) before it was killed:\n"
        + log.read_text(errors="replace"))
    # Only whole lines count: a line cut off by the kill was never acknowledged.
    return [line.split(" ", 1)[1] for line in output.decode().split("\n")[:-1]
            if line.startswith("ACK ")]


def check_node(home: Path, acknowledged: list[str]) -> int:
    """Everything an office relies on after a crash; returns the number of cases."""
    verified = xinfang(home, "log", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["ok"] is True

    rebuilt = xinfang(home, "rebuild", "--check", "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.output)["consistent"] is True

    with Node.open(home, pm=get_plugin_manager()) as node:
        listed = [case.id for case in api.list_cases(node)]
        missing = sorted(set(acknowledged) - set(listed))
        assert not missing, f"acknowledged cases lost by the crash: {missing}"
        registrations = [Event.parse(raw, sig) for raw, sig in node.db.execute(
            "select raw, sig from events where type = 'case.register' order by order_key")]
        assert len(listed) == len(registrations) == len(set(listed))
        # Numbers run 00001, 00002, …: none was issued twice or skipped.
        serials = sorted(int(case_id.rsplit("-", 1)[1]) for case_id in listed)
        assert serials == list(range(1, len(listed) + 1))
        assert node.db.execute("select count(*) from conflicts").fetchone()[0] == 0
        # Each registration was written with its sealed petitioner data, never apart.
        held = {row[0] for row in node.db.execute("select digest from vault")}
        for event in registrations:
            for person in event.body["petitioners"]:
                for key in ("name", "id_number", "phone", "address"):
                    if person.get(key):
                        assert person[key] in held, (
                            f"{event.entity_id}: sealed {key} is in the log but its value is lost")
        return len(listed)


def test_sigkill_at_random_moments_loses_no_acknowledged_case(tmp_path):
    home = tmp_path / "village"
    created = xinfang(home, "init", "--level", "village", "--area", VILLAGE, "--name", "测试村信访站")
    assert created.exit_code == 0, created.output

    acknowledged: list[str] = []
    cases = 0
    for kill, seed in enumerate(SEEDS):
        mode = "cli" if kill % 2 == 0 else "api"
        acked = run_and_kill(home, mode, kill * 100, seed, tmp_path / f"worker{kill}.log")
        # What was acknowledged is new, in order, and continues from before.
        assert acked == sorted(acked) and not set(acked) & set(acknowledged)
        acknowledged.extend(acked)
        cases_now = check_node(home, acknowledged)
        assert cases_now >= cases + len(acked)
        cases = cases_now
    assert len(acknowledged) >= len(SEEDS), (
        f"only {len(acknowledged)} registrations were acknowledged in {len(SEEDS)} runs; "
        "the kills came too early to test anything")

    # The office carries on: the next registration takes the next number.
    registered = xinfang(home, "case", "register", "-p", f"name=赵某甲,id={synthetic_id(11)}",
                         "--channel", "来访", "--category", "劳动社保", "--request", "请求追讨拖欠工资",
                         "--received", "2026-03-01", "--json")
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.output)["id"] == f"{VILLAGE}-2026-{cases + 1:05d}"
    check_node(home, acknowledged + [json.loads(registered.output)["id"]])
