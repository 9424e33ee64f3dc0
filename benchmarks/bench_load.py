"""A bounded load test: 200 villages syncing a few events each, 16 at a time, against one
real ``xinfang serve`` on the loopback address.

The township and its villages are real nodes on disk, enrolled with the real
enrolment functions; each village registers a few cases first. The township is
then served by ``xinfang serve`` in a process of its own, and the villages run
``http.Client.sync`` (what ``xinfang sync`` runs), 16 threads at a time. Counted:
syncs that raised (errors), events made at the villages that the township does
not hold afterwards (lost, read from its database once the server has stopped),
the time of each sync (p50, p95, max), and the server process's CPU seconds.

Bounded: the number of villages, the threads, and a deadline after which no
further sync starts (``--minutes``); a sync not started is counted and reported.

    python benchmarks/bench_load.py                       # 200 villages, 16 at a time
    python benchmarks/bench_load.py --villages 20 --out -  # a smoke test

Results are appended to ``benchmarks/REQUEST_RESULTS.md``. Synthetic data only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xinfang.sync.http import Client

from bench_sync import COUNTY, CaseStream, Progress, enrol, load, make_node, say
from common import code_version, filesystem, machine, write_results

HERE = Path(__file__).resolve().parent
TOWNSHIP = COUNTY + "101"
XINFANG = [sys.executable, "-c", "from xinfang.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"xinfang serve ended with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError("xinfang serve did not start listening")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build(base: Path, villages: int, events: int) -> tuple:
    """County, township, ``villages`` villages with ``events`` case events each; returns
    the township's home, the villages and the ids of every event they made."""
    county = make_node(base / "county", "county", COUNTY, "示例县信访局", root=True)
    township = make_node(base / "township", "township", TOWNSHIP, "示例一镇信访办")
    enrol(township, county)
    made, ids = [], set()
    progress = Progress(f"{villages} villages", villages)
    for number in range(villages):
        village = make_node(base / f"village{number}", "village",
                            f"{TOWNSHIP}{number + 1:03d}", f"示例{number + 1}村信访站")
        enrol(village, township)
        written = village.append_many(CaseStream(village.info.area, village.match_key,
                                                 seed=number).take(events))
        ids.update(e.id for e in written)
        made.append(village)
        progress.add(1)
    progress.end()
    home = township.home
    township.close()
    county.close()
    return home, made, ids


def sync_one(village, url: str, deadline: float) -> tuple[str, float, str]:
    """("ok" | "error" | "not run", seconds, what went wrong)."""
    if time.monotonic() > deadline:
        return "not run", 0.0, ""
    started = time.perf_counter()
    try:
        Client(village, url).sync()
    except Exception as exc:  # noqa: BLE001 - every failure is counted, whatever it is
        return "error", time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
    return "ok", time.perf_counter() - started, ""


def held(home: Path, ids: set[str]) -> int:
    """How many of ``ids`` the township's database holds."""
    conn = sqlite3.connect(home / "xinfang.db")
    try:
        conn.execute("create temp table wanted (id text primary key)")
        conn.executemany("insert into wanted values (?)", [(i,) for i in ids])
        return conn.execute("select count(*) from events join wanted using (id)").fetchone()[0]
    finally:
        conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def run(args) -> dict:
    base = Path(tempfile.mkdtemp(prefix="xf-load-"))
    try:
        say(f"building {args.villages} villages")
        started = time.perf_counter()
        home, villages, ids = build(base, args.villages, args.events)
        building = time.perf_counter() - started
        port = free_port()
        with open(base / "serve.log", "wb") as log:
            server = subprocess.Popen([*XINFANG, "--home", str(home), "serve", "--host",
                                       "127.0.0.1", "--port", str(port)], stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            wait_for(port, server)
            cpu_before = cpu_seconds(server.pid)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + args.minutes * 60
            say(f"syncing, {args.threads} at a time")
            wall = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
                results = list(pool.map(lambda v: sync_one(v, url, deadline), villages))
            wall = time.perf_counter() - wall
            server_cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.send_signal(signal.SIGINT)  # what Ctrl-C does: waitress closes, the node too
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for village in villages:
            village.close()
        log_lines = (base / "serve.log").read_text(errors="replace").splitlines()
        times = [seconds for status, seconds, _ in results if status == "ok"]
        problems = [why for status, _, why in results if status == "error"]
        requests = [line for line in log_lines if " POST /v1/sync " in line]
        return {"villages": args.villages, "events": len(ids), "build": building,
                "wall": wall, "ok": len(times), "errors": len(problems),
                "not_run": sum(status == "not run" for status, _, _ in results),
                "lost": len(ids) - held(home, ids), "p50": statistics.median(times) if times
                else float("nan"), "p95": percentile(times, 0.95) if times else float("nan"),
                "max": max(times, default=float("nan")), "server_cpu": server_cpu,
                "requests": len(requests),
                "refused": sum(" 200 " not in line for line in requests),
                "problems": sorted(set(problems))[:5]}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(found: dict, args, load_before: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    per_request = found["server_cpu"] / max(found["requests"], 1) * 1e3
    lines = [f"## {now}: load test, {found['villages']} villages, {args.threads} at a time "
             f"({args.label})", "",
             f"- machine: {info['platform']}; {info['cpu']}, {info['cores']} cores",
             f"- Python {info['python']}, cryptography {info['cryptography']}, SQLite "
             f"{info['sqlite']}, sqlite-utils {info['sqlite-utils']}",
             f"- code {code_version()}; load average {load_before} at the start, {load()} at "
             f"the end; databases on {filesystem(Path(tempfile.gettempdir()))}",
             f"- `python benchmarks/bench_load.py {' '.join(sys.argv[1:])}`; building "
             f"{found['build']:.0f} s", "",
             f"One `xinfang serve` (a township, its own process) and {found['villages']} "
             f"villages of {args.events} case events each, each running `Client.sync` once, "
             f"{args.threads} threads at a time; seconds.", "",
             "| villages | events made | errors | not run | lost | p50 s | p95 s | max s | "
             "all syncs s | requests | refused (non-200) | server CPU s | server CPU ms "
             "per request |",
             "|" + "---:|" * 13,
             f"| {found['villages']} | {found['events']:,} | {found['errors']} | "
             f"{found['not_run']} | {found['lost']} | {found['p50']:.2f} | {found['p95']:.2f} | "
             f"{found['max']:.2f} | {found['wall']:.1f} | {found['requests']:,} | "
             f"{found['refused']} | {found['server_cpu']:.1f} | {per_request:.1f} |"]
    if found["problems"]:
        lines += ["", "Errors (distinct, at most 5):", ""]
        lines += [f"- {problem[:300]}" for problem in found["problems"]]
    lines += ["", f"Goal: 0 errors, 0 lost, p95 under 2 s: "
                  f"{'met' if found['errors'] == 0 and found['lost'] == 0 and found['not_run'] == 0 and found['p95'] < 2 else 'not met'}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--villages", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--events", type=int, default=3, help="case events per village")
    parser.add_argument("--minutes", type=float, default=20,
                        help="no sync starts after this many minutes of syncing")
    parser.add_argument("--label", default="before", help="what the run measures, for the file")
    parser.add_argument("--out", default=str(HERE / "REQUEST_RESULTS.md"),
                        help="results file to append to, or - for stdout only")
    args = parser.parse_args(argv)
    load_before = load()
    found = run(args)
    text = report(found, args, load_before)
    print(text)
    if args.out != "-":
        from bench_requests import HEADER

        write_results(Path(args.out), text, HEADER)


if __name__ == "__main__":
    main()
