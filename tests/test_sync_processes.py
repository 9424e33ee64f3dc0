"""HTTP sync between real processes (DESIGN invariants 5 and 6).

Every node here is a directory driven by the real ``xinfang`` command in a
process of its own: ``xinfang serve`` on the county, ``xinfang sync`` on the
township, certificates made with ``xinfang enroll request/sign/import`` and
cases carried on a "USB stick" with ``xinfang bundle export/import``.

The crash test SIGKILLs the syncing client at fixed pseudo-random moments
(and, if the machine is so loaded that none of them lands mid-sync, right
after a page has landed), then the server once, and holds the result against
a control copy of the same two directories that synced without interruption:
the same events and the same views must come out, and every node's log and
views must still verify. A scheduled sync must outlive a parent that is down,
or that dies half-way through an answer.

Only the bulk data (thousands of cases, so that a sync spans many pages) is
written through the Python API, in this process, while no other process has
the node open. Names and ID numbers are synthetic.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import COUNTY, TOWNSHIP, VILLAGE, synthetic_id
from xinfang.core import clock, fold
from xinfang.core.node import Node
from xinfang.plugins.cases import api
from xinfang.sync import wire

pytestmark = pytest.mark.slow

#: the installed console entry point, run by this interpreter (no PATH shim in between)
XINFANG = [sys.executable, "-c", "from xinfang.cli.main import main; main()"]
ENV = {key: value for key, value in os.environ.items()
       if key not in ("XINFANG_HOME", "XINFANG_PASSPHRASE", "XINFANG_DEBUG")}
ENV.update({"PYTHONIOENCODING": "utf-8", "XINFANG_OPERATOR": "测试员"})

COUNTY_NAME = "示例县信访局"
TOWNSHIP_NAME = "示例一镇信访办"
VILLAGE_NAME = "示例一镇示例一村信访站"
TODAY = dt.date(2026, 3, 1)
#: fixed seed for the moments at which the client is killed
KILL_SEED = 20260301
PROCESS_TIMEOUT = 60


# -- processes ----------------------------------------------------------------


def xf(home: Path, *args: str, check: bool = True,
       timeout: float = PROCESS_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``xinfang --home HOME ARGS`` in a process of its own and wait for it."""
    proc = subprocess.run([*XINFANG, "--home", str(home), *args], capture_output=True,
                          text=True, encoding="utf-8", env=ENV, timeout=timeout)
    if check:
        assert proc.returncode == 0, (f"xinfang {' '.join(args)} exited {proc.returncode}\n"
                                      f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def xf_json(home: Path, *args: str, **kw):
    return json.loads(xf(home, *args, "--json", **kw).stdout)


def spawn(home: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start ``xinfang`` without waiting; its stdout and stderr go to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([*XINFANG, "--home", str(home), *args], stdout=out,
                                stderr=subprocess.STDOUT, env=ENV)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    """``xinfang serve`` on a node, in its own process."""

    def __init__(self, home: Path, port: int, log: Path):
        self.home, self.port, self.log = home, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, within: float = 20.0) -> "Server":
        self.proc = spawn(self.home, "serve", "--port", str(self.port), log=self.log)
        deadline = time.monotonic() + within
        while not accepts(self.port):
            if self.proc.poll() is not None:
                pytest.fail(f"xinfang serve exited {self.proc.returncode}: "
                            f"{self.log.read_text(encoding='utf-8', errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"xinfang serve did not accept connections within {within} s")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: no handler, no clean-up, exactly like a power cut."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def serving(home: Path, port: int, log: Path):
    server = Server(home, port, log)
    try:
        yield server.start()
    finally:
        server.stop()


def wait_for(predicate, within: float, what: str, every: float = 0.02):
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        time.sleep(every)


# -- reading nodes (read-only, safe while another process writes) ----------------


def read_only(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'xinfang.db'}?mode=ro", uri=True, timeout=10)


def event_ids(home: Path) -> set[str]:
    with contextlib.closing(read_only(home)) as db:
        return {row[0] for row in db.execute("select id from events")}


def event_count(home: Path) -> int:
    with contextlib.closing(read_only(home)) as db:
        return db.execute("select count(*) from events").fetchone()[0]


def digest(home: Path) -> str:
    with Node.open(home) as node:
        return fold.views_digest(node.db, node.registry)


def frontier(home: Path) -> wire.Frontier:
    with contextlib.closing(read_only(home)) as db:
        return {(a, e): max(s, c) for a, e, s, c in
                db.execute("select author, epoch, seq, covered from feeds")}


def assert_nodes_sound(*homes: Path) -> None:
    """``xinfang log verify`` and ``xinfang rebuild --check`` pass on every node.

    The checks only read, so all of them run at once, one process each.
    """
    procs = []
    for home in homes:
        for args in (("log", "verify", "--json"), ("rebuild", "--check", "--json")):
            procs.append((home, args, subprocess.Popen(
                [*XINFANG, "--home", str(home), *args], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=ENV, text=True, encoding="utf-8")))
    failures = []
    try:
        results = [(home, args, proc, *proc.communicate(timeout=PROCESS_TIMEOUT))
                   for home, args, proc in procs]
    finally:
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for home, args, proc, out, err in results:
        if proc.returncode != 0:
            failures.append(f"{home.name}: xinfang {' '.join(args)} exited {proc.returncode}: "
                            f"{out[:1000]} {err[:1000]}")
            continue
        data = json.loads(out)
        if args[0] == "log" and not (data["ok"] and data["problems"] == []):
            failures.append(f"{home.name}: log verify: {data['problems'][:3]}")
        if args[0] == "rebuild" and not data["consistent"]:
            failures.append(f"{home.name}: rebuild --check: {data['differences'][:2]}")
    assert failures == []


# -- building nodes -------------------------------------------------------------


def register_many(home: Path, count: int, first: int, area: str | None = None,
                  ids: bool = True) -> None:
    """``count`` cases through ``api.register_case``, in one transaction (fast).

    Every ID number is synthetic; petitioners repeat every 700 cases, so some
    cases are 重复访 of earlier ones, as in real work. ``ids=False`` leaves
    the ID numbers out, for tests that count the events a sync moves: the
    county tags every ID number it receives with an event of its own
    (``case.tag``), which two runs sign at different moments.
    """
    with Node.open(home) as node:
        node.operator = "测试员"
        with node.db.atomic():
            for n in range(first, first + count):
                serial = n % 700
                api.register_case(node, api.CaseInput(
                    petitioners=[api.PetitionerInput(f"赵某{serial}",
                                                     synthetic_id(serial) if ids else None)],
                    channel=("来访", "来信", "网上信访")[n % 3],
                    category=("劳动社保", "库区移民", "国土资源")[n % 3 // 2],
                    kind="申诉求决", request=f"请求解决示例问题{n}", received="2026-01-05",
                    area=area), today=TODAY)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    """A county (root), a township and a village, all made and enrolled by the CLI.

    Built once per module; each test works on its own copy.
    """
    base = tmp_path_factory.mktemp("tree")
    county, town, village = base / "county", base / "town", base / "village"
    created = xf_json(county, "init", "--level", "county", "--area", COUNTY, "--name",
                      COUNTY_NAME, "--root")
    assert created["root"] and created["certified"]
    xf(town, "init", "--level", "township", "--area", TOWNSHIP, "--name", TOWNSHIP_NAME)
    xf(village, "init", "--level", "village", "--area", VILLAGE, "--name", VILLAGE_NAME)
    imported = {}
    for child, parent, parent_name in ((town, county, COUNTY_NAME),
                                       (village, town, TOWNSHIP_NAME)):
        request, cert = base / f"{child.name}.request", base / f"{child.name}.cert"
        said = xf(child, "enroll", "request", "--out", str(request)).stdout
        assert str(request) in said and request.exists()
        said = xf(parent, "enroll", "sign", str(request), "--out", str(cert)).stdout
        assert str(cert) in said and cert.exists()
        imported[child.name] = xf_json(child, "enroll", "import", str(cert))
        assert imported[child.name]["parent"] == parent_name
    for name in ("town", "village"):
        assert imported[name]["root"] == COUNTY_NAME
        assert imported[name]["root_fingerprint"] == created["fingerprint"]
    shown = xf_json(village, "node", "show")
    assert shown["certified"] and shown["parent"] == TOWNSHIP_NAME
    assert shown["root_fingerprint"] == created["fingerprint"]
    return {"county": county, "town": town, "village": village}


@pytest.fixture
def nodes(tree, tmp_path) -> dict[str, Path]:
    copies = {}
    for name, home in tree.items():
        copies[name] = tmp_path / name
        shutil.copytree(home, copies[name])
    return copies


def parent_status(home: Path) -> dict:
    rows = [r for r in xf_json(home, "sync", "status") if r["relation"].endswith("parent")]
    assert len(rows) == 1, rows
    return rows[0]


def register_cli(home: Path, n: int) -> str:
    data = xf_json(home, "case", "register", "-p", f"name=钱某{n},id={synthetic_id(800 + n)}",
                   "--channel", "来访", "--category", "劳动社保",
                   "--request", f"请求解决示例问题{n}", "--received",
                   (clock.today() - dt.timedelta(days=10 + n)).isoformat())
    return data["id"]


# -- 1. a township syncs to the county's server, both in their own processes -----


def test_township_syncs_its_cases_and_a_villages_bundle_to_a_county_server_process(
        nodes, tmp_path):
    county, town, village = nodes["county"], nodes["town"], nodes["village"]
    village_case = register_cli(village, 0)
    carried = tmp_path / "village-to-town.xfb"
    exported = xf_json(village, "bundle", "export", "--to", TOWNSHIP_NAME, "--out", str(carried))
    assert exported["events"] == 1 and carried.exists()
    imported = xf_json(town, "bundle", "import", str(carried))
    assert (imported["applied"], imported["refused"]) == (1, [])
    town_cases = {register_cli(town, n) for n in (1, 2, 3)}
    # 3 of its own, its trust.certify of the village (at enrolment) and the village's 1
    pushed_expected = event_count(town)
    assert pushed_expected == 5

    with serving(county, free_port(), tmp_path / "serve.log") as server:
        proc = xf(town, "sync", "--url", server.url, "--json")
        summary = json.loads(proc.stdout)
        # pulled: the county's case.tag of each of the 4 cases, signed as it took the push
        assert summary == {"pushed": pushed_expected, "pulled": 4, "refused_here": 0,
                           "refused_there": 0, "rounds": summary["rounds"]}

        listed = {c["id"]: c for c in xf_json(county, "case", "list")}
        assert set(listed) == town_cases | {village_case}
        assert listed[village_case]["area"] == VILLAGE
        assert all(listed[c]["area"] == TOWNSHIP for c in town_cases)

        status = parent_status(town)
        assert status["name"] == COUNTY_NAME
        assert (status["sent"], status["acknowledged"], status["pending"]) == (
            pushed_expected, pushed_expected, 0)
        assert (status["last_transport"], status["last_error"]) == ("http", None)
        assert status["refused_by_peer"] == status["refused_from_peer"] == 0

        # the address is remembered, and a second sync has nothing to move
        again = json.loads(xf(town, "sync", "--json").stdout)
        assert (again["pushed"], again["pulled"]) == (0, 0)
        assert parent_status(town)["sent"] == pushed_expected
    assert event_ids(county) == event_ids(town)
    assert_nodes_sound(county, town, village)


def test_a_bundle_followed_by_http_continues_from_the_same_frontier(nodes, tmp_path):
    """The township carries its cases up on a USB stick, then syncs over HTTP.

    Nothing is sent twice, and afterwards the township's status must say what
    the county told it in the sync's first exchange: it holds everything.
    """
    county, town = nodes["county"], nodes["town"]
    register_many(town, 3, first=0, ids=False)
    carried = tmp_path / "town-to-county.xfb"
    # its 3 cases and its trust.certify of the village, logged when it enrolled it
    assert xf_json(town, "bundle", "export", "--to", COUNTY_NAME, "--out",
                   str(carried))["events"] == 4
    assert xf_json(county, "bundle", "import", str(carried))["applied"] == 4

    with serving(county, free_port(), tmp_path / "serve.log") as server:
        summary = json.loads(xf(town, "sync", "--url", server.url, "--json").stdout)
        assert (summary["pushed"], summary["pulled"]) == (0, 0)
    assert event_ids(county) == event_ids(town)
    child = [r for r in xf_json(county, "sync", "status") if r["area"] == TOWNSHIP][0]
    # the county sent the township nothing: it holds 4 events, none of them acknowledged sends
    assert (child["sent"], child["acknowledged"], child["pending"]) == (0, 0, 0)
    status = parent_status(town)
    assert status["last_error"] is None
    assert (status["acknowledged"], status["pending"]) == (4, 0), (
        "after an HTTP sync in which the county reported holding all 4 events, the township "
        f"still shows acknowledged {status['acknowledged']}, pending {status['pending']}")
    assert (status["last_transport"], status["last_sync"] is not None) == ("http", True)


# -- 2. SIGKILL the client at random moments, and the server once ---------------


def sync_killed(town: Path, url: str, log: Path, delay: float | None = None,
                until=None) -> str:
    """Start a sync and SIGKILL it after ``delay`` seconds, or as soon as ``until()``.

    Returns "killed", or "finished" if the sync ended first (it must end well).
    """
    proc = spawn(town, "sync", "--url", url, log=log)
    # still running at the moment chosen is the point: that is when it is killed
    with contextlib.suppress(subprocess.TimeoutExpired):
        if delay is not None:
            proc.wait(timeout=delay)
        else:
            wait_for(lambda: proc.poll() is not None or until(), within=PROCESS_TIMEOUT,
                     what="the sync to make progress", every=0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return "killed"
    assert proc.returncode == 0, log.read_text(encoding="utf-8", errors="replace")
    return "finished"


def test_sync_killed_at_random_moments_ends_exactly_like_an_uninterrupted_one(nodes, tmp_path):
    county, town = nodes["county"], nodes["town"]
    # the township has 3 pages to push up; the county 2 pages of cases to send down
    register_many(town, 1500, first=0, ids=False)
    register_many(county, 1000, first=5000, area=TOWNSHIP)
    control_county, control_town = tmp_path / "control-county", tmp_path / "control-town"
    shutil.copytree(county, control_county)
    shutil.copytree(town, control_town)
    town_before, county_before = event_ids(town), event_ids(county)
    everything = town_before | county_before
    to_push, to_pull = len(town_before), len(county_before)

    def pushed() -> int:
        return event_count(county) - to_pull

    def pulled() -> int:
        return event_count(town) - to_push

    rng = random.Random(KILL_SEED)
    delays = [round(rng.uniform(0.05, 1.5), 2) for _ in range(5)]
    kills = []                                      # (when, how it ended, pushed, pulled)
    with serving(county, free_port(), tmp_path / "serve.log") as server:
        # First kill the client the moment a page has landed, once on the way
        # up and once on the way down, so a kill certainly falls mid-sync
        # however loaded the machine; then at random moments (fixed seeds).
        held = pushed()
        ended = sync_killed(town, server.url, tmp_path / "client-up.log",
                            until=lambda: pushed() > held)
        kills.append(("after a page up", ended, pushed(), pulled()))
        if pulled() < to_pull:
            held = pulled()
            ended = sync_killed(town, server.url, tmp_path / "client-down.log",
                                until=lambda: pulled() > held)
            kills.append(("after a page down", ended, pushed(), pulled()))
        for n, delay in enumerate(delays):
            ended = sync_killed(town, server.url, tmp_path / f"client-{n}.log", delay=delay)
            kills.append((f"{delay} s", ended, pushed(), pulled()))
        print("kills (when, how it ended, events pushed, events pulled):", kills)
        # only whole pages ever arrive: a kill never leaves part of a page applied
        assert all(k[2] % wire.MAX_PAGE_EVENTS == 0 or k[2] == to_push for k in kills), kills
        assert all(k[3] % wire.MAX_PAGE_EVENTS == 0 or k[3] == to_pull for k in kills), kills
        assert any(k[1] == "killed" and (0 < k[2] < to_push or 0 < k[3] < to_pull)
                   for k in kills), f"no kill landed in the middle of a sync: {kills}"

        final = json.loads(xf(town, "sync", "--url", server.url, "--json").stdout)
        assert (final["refused_here"], final["refused_there"]) == (0, 0)
        # (the county may still have been applying a page the killed client had
        # sent when it was counted, so what is left to push is at most this)
        assert final["pushed"] <= to_push - kills[-1][2]
        assert final["pulled"] == to_pull - kills[-1][3]

    with serving(control_county, free_port(), tmp_path / "control-serve.log") as control:
        xf(control_town, "sync", "--url", control.url)

    assert event_ids(county) == event_ids(control_county) == everything
    assert event_ids(town) == event_ids(control_town) == everything
    assert frontier(town) == frontier(control_town)
    assert digest(county) == digest(control_county)
    assert digest(town) == digest(control_town)
    # The county's own account of the township: it holds all the county sent.
    child = [r for r in xf_json(county, "sync", "status") if r["area"] == TOWNSHIP]
    assert child[0]["pending"] == 0
    assert child[0]["acknowledged"] == min(child[0]["sent"], len(everything))
    # (The township's account of the county is checked in the bundle-then-HTTP
    # test below: see there for why it can be stale here. Its "sent" counter
    # is not checked either: a client killed after the county applied a page
    # but before it recorded sending it cannot count that page.)

    # -- the server is SIGKILLed in the middle of a sync, then restarted ------------
    register_many(town, 1000, first=10000, ids=False)
    wanted = event_ids(town)
    port = free_port()
    server = Server(county, port, tmp_path / "serve-2.log")
    try:
        server.start()
        held = event_count(county)
        client = spawn(town, "sync", "--url", server.url, log=tmp_path / "client-cut.log")
        try:
            wait_for(lambda: event_count(county) > held or client.poll() is not None,
                     within=PROCESS_TIMEOUT, what="the county to apply the first pushed page",
                     every=0.01)
            server.kill()
            client.wait(timeout=PROCESS_TIMEOUT)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        said = (tmp_path / "client-cut.log").read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in said
        # Exit 1 with "无法连接上级" is right; depending on the instant of the
        # kill the client may instead crash with exit 2 (IncompleteRead), a bug
        # pinned down deterministically by the cut-answer test below.
        assert client.returncode in (1, 2), said
        assert COUNTY_NAME in said or "IncompleteRead" in said, said
        cut_at = event_ids(county)
        assert held < len(cut_at) < len(wanted), "the server was not killed mid-sync"

        server.start()                              # same directory, same port
        resumed = json.loads(xf(town, "sync", "--url", server.url, "--json").stdout)
        assert resumed["pushed"] == len(wanted) - len(cut_at)
        assert resumed["refused_there"] == 0
        assert event_ids(county) == wanted
        assert parent_status(town)["last_error"] is None
    finally:
        server.stop()
    # the log only grows, so checking every node once at the end covers both crash phases
    assert_nodes_sound(county, town, control_county, control_town, nodes["village"])


# -- 3. a scheduled sync survives the parent being down -------------------------


def test_scheduled_sync_retries_while_the_parent_is_down_then_succeeds(nodes, tmp_path):
    county, town = nodes["county"], nodes["town"]
    cases = {register_cli(town, n) for n in (1, 2)}
    port = free_port()
    assert not accepts(port)

    started = time.monotonic()
    down = xf(town, "sync", "--url", f"http://127.0.0.1:{port}", "--every", "1s",
              "--rounds", "3", timeout=30)
    took = time.monotonic() - started
    failures = [line for line in down.stderr.splitlines() if line.startswith("同步失败")]
    assert len(failures) == 3, down.stderr
    assert all("无法连接上级" in line and COUNTY_NAME in line for line in failures), down.stderr
    # a retry is promised after each attempt but the last, which is not followed by one
    assert ["秒后重试" in line for line in failures] == [True, True, False], down.stderr
    assert 3.0 <= took < 20, took                   # backoff: about 1 s, then about 2 s
    status = parent_status(town)
    assert "无法连接上级" in status["last_error"]
    # its 2 cases and its trust.certify of the village
    assert (status["sent"], status["acknowledged"], status["pending"]) == (0, 0, 3)

    with serving(county, port, tmp_path / "serve.log"):
        up = xf(town, "sync", "--url", f"http://127.0.0.1:{port}", "--every", "1s", "--rounds",
                "2", "--json", timeout=30)
        decoder, text, summaries = json.JSONDecoder(), up.stdout.strip(), []
        while text:
            summary, end = decoder.raw_decode(text)
            summaries.append(summary)
            text = text[end:].strip()
        # pulled: the county's case.tag of each of the 2 cases
        assert [(s["pushed"], s["pulled"]) for s in summaries] == [(3, 2), (0, 0)]
        assert "同步失败" not in up.stderr
        assert {c["id"] for c in xf_json(county, "case", "list")} == cases
    status = parent_status(town)
    assert (status["sent"], status["acknowledged"], status["pending"]) == (3, 3, 0)
    assert status["last_error"] is None


class CuttingParent:
    """A parent whose process dies in the middle of every answer.

    It reads each request whole, sends the status line, headers and part of
    the body, and closes the connection: what a client sees when the parent's
    machine loses power while answering (the server-kill test above hits this
    only at some instants of the kill; here it is every time).
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.cut = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(([line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")] or [b"0"])[0])
                while len(body) < length and (chunk := conn.recv(65536)):
                    body += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: 1000\r\n\r\n" + b"\x00" * 100)
                self.cut += 1

    def __enter__(self) -> "CuttingParent":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_a_parent_dying_mid_answer_is_reported_and_a_scheduled_sync_survives_it(nodes):
    town = nodes["town"]
    register_many(town, 2, first=0)
    with CuttingParent() as parent:
        url = f"http://127.0.0.1:{parent.port}"
        once = xf(town, "sync", "--url", url, check=False)
        assert parent.cut == 1
        assert "internal error" not in once.stderr, (
            "a parent that died half-way through its answer crashed `xinfang sync` as an "
            f"internal error instead of being reported as unreachable: {once.stderr.strip()}")
        assert once.returncode == 1 and COUNTY_NAME in once.stderr, once.stderr

        scheduled = xf(town, "sync", "--url", url, "--every", "1s", "--rounds", "2",
                       check=False, timeout=30)
        assert scheduled.returncode == 0, scheduled.stderr
        failures = [line for line in scheduled.stderr.splitlines() if line.startswith("同步失败")]
        assert len(failures) == 2 and parent.cut == 3, scheduled.stderr
    assert event_count(town) == 3   # its trust.certify and 2 cases: nothing written, nothing lost
    assert_nodes_sound(town)
