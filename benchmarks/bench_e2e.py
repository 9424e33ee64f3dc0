"""End-to-end HTTP sync of a village's case registrations to its county, measured.

For each size N (20,000 and 100,000), in the same run:

* a village node under a county, holding N case registrations written with
  the batched pipeline (``Node.append_many``, batches of 500), each with a
  petitioner's sealed name, ID number and phone and a 同人 tag (one in ten a
  petitioner seen before), as ``api.register_case`` writes them;
* the county served by a real ``xinfang serve`` in a subprocess on loopback,
  and the village syncing to it with ``sync.http.Client(...).sync()`` (what
  ``xinfang sync`` runs) until both sides agree: events per second over the
  wall clock, and CPU per event of the client (``time.process_time``) and of
  the server (its ``/proc`` CPU time over the sync; with start-up and
  shutdown from ``resource.getrusage(RUSAGE_CHILDREN)`` once it has exited);
* the floors: a bare SQLite insert of the same (raw, sig) bytes in
  transactions of a page (500), WAL, ``synchronous=FULL``, and the same
  events merged in-process (``send.pages_for`` at the village,
  ``receive.apply_page`` at a copy of the county, no HTTP, no envelopes), so
  the cost of the wire can be read as a ratio.

    python benchmarks/bench_e2e.py                            # 20k and 100k
    python benchmarks/bench_e2e.py --sizes 2000 --out -       # quick, no file written
    python benchmarks/bench_e2e.py --mix lifecycle            # registrations and their steps

Results are appended to ``benchmarks/E2E_RESULTS.md``. Only synthetic data:
ID numbers in region 990000 (assigned to no place), names like 赵某甲.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

from xinfang.core import sealing
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.demo.synthetic import KINDS, random_id, random_name, random_phone
from xinfang.plugins.cases import tags
from xinfang.sync import http, receive, send, wire

from bench_register import code_state, load, lscpu, say
from bench_sync import CATEGORIES, CHANNELS, OPERATOR, REQUESTS, CaseStream, Tree, bare_insert
from common import Rate, Stopwatch, filesystem, machine, publish

HERE = Path(__file__).resolve().parent
BATCH = 500
FIRST_RECEIVED = dt.date(2019, 1, 2)
#: registrations are spread over at most this many days, so every date is in the past
SPAN_DAYS = 2_000


# -- the village's registrations -------------------------------------------------


class Registrations:
    """A seeded stream of one village's ``case.register`` drafts, as the API builds them."""

    def __init__(self, node: Node, total: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.area, self.match_key = node.info.area, node.match_key
        self.per_day = max(1, -(-total // SPAN_DAYS))
        self.cases = 0
        self.serials: dict[int, int] = {}
        self.recent: list[tuple[str, str, str]] = []

    def take(self, n: int) -> list[Draft]:
        return [self._register() for _ in range(n)]

    def _person(self) -> tuple[str, str, str]:
        rng = self.rng
        if self.recent and rng.random() < 0.1:
            return rng.choice(self.recent)
        person = (random_name(rng), random_id(rng), random_phone(rng))
        self.recent = (self.recent + [person])[-500:]
        return person

    def _register(self) -> Draft:
        rng = self.rng
        received = FIRST_RECEIVED + dt.timedelta(days=self.cases // self.per_day)
        self.cases += 1
        serial = self.serials.get(received.year, 0) + 1
        self.serials[received.year] = serial
        person = self._person()
        secrets = [sealing.seal(value) for value in person]
        sealed = {"representative": False, "name": secrets[0].digest,
                  "id_number": secrets[1].digest, "phone": secrets[2].digest,
                  "id_tag": sealing.match_tag(self.match_key, person[1])}
        body = {"channel": rng.choice(CHANNELS), "category": rng.choice(CATEGORIES),
                "kind": rng.choice(KINDS), "request": rng.choice(REQUESTS).format(
                    n=rng.randint(2, 9)),
                "received": received.isoformat(), "headcount": 1, "petitioners": [sealed],
                "fields": {}, "by": OPERATOR}
        return Draft("case.register", "case", f"{self.area}-{received.year}-{serial:05d}",
                     self.area, body, secrets)


def write(village: Node, stream, total: int) -> Rate:
    start = time.perf_counter()
    with Stopwatch() as watch:
        done = 0
        while done < total:
            size = min(BATCH, total - done)
            village.append_many(stream.take(size))
            done += size
            rate = done / max(time.perf_counter() - start, 1e-9)
            say(f"\r  village writes: {done:,}/{total:,}, {rate:,.0f}/s   ", end="")
    say("")
    return watch.rate("village writes (append_many)", total)


# -- the server ------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Served:
    """``xinfang serve`` of a node in a subprocess, on a free loopback port."""

    def __init__(self, home: Path, log: Path) -> None:
        self.log = log
        self.cpu_before = children_cpu()
        env = {**os.environ, "XINFANG_HOME": str(home), "XINFANG_LANG": "en"}
        command = [str(Path(sys.executable).parent / "xinfang"), "serve", "--host",
                   "127.0.0.1", "--port", "0"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=open(log, "wb"))
        self.url = self._wait_for_url()

    def _wait_for_url(self, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", self.log.read_text("utf-8", "replace"))
            if found and found.group(1) != "0":
                return found.group(0)
            if self.process.poll() is not None:
                raise SystemExit(f"xinfang serve exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise SystemExit("xinfang serve did not start within a minute")

    @property
    def cpu(self) -> float:
        return proc_cpu(self.process.pid)

    def requests(self) -> int:
        return sum(1 for line in self.log.read_text("utf-8", "replace").splitlines()
                   if "/v1/sync" in line)

    def stop(self) -> tuple[float, int]:
        """Stop it as an operator does (Ctrl-C); its whole CPU time and peak memory (KiB)."""
        peak = proc_peak_kib(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return children_cpu() - self.cpu_before, peak


# -- one size --------------------------------------------------------------------


@attrs.frozen
class Outcome:
    size: int
    moved: int
    pulled: int
    rounds: int
    requests: int
    wall: float
    client_cpu: float
    server_cpu: float
    server_total_cpu: float
    server_idle_cpu: float
    server_peak_mib: float
    write: Rate
    bare: Rate
    local: "InProcess"
    conflicts: int
    bytes_up: int
    tagging: tuple[float, float, int, float, float]

    @property
    def events(self) -> int:
        """Events that crossed the wire, both ways."""
        return self.moved + self.pulled

    @property
    def per_second(self) -> float:
        return self.size / self.wall

    def micros(self, seconds: float) -> float:
        """Microseconds per registration (per village event) of ``seconds``."""
        return 1e6 * seconds / self.size


def village_events(village: Node) -> list[list]:
    """The village's events in pages of ``BATCH``, for the bare insert."""
    from xinfang.core import store

    events = list(store.all_events(village.db, order="pos"))
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


def idle_server_cpu(home: Path, log: Path) -> float:
    """CPU of a server that starts and stops serving nothing: what start-up costs."""
    served = Served(home, log)
    cpu, _ = served.stop()
    return cpu


@attrs.frozen
class InProcess:
    """The sync's work without HTTP or envelopes, each part timed on its own."""

    up_paging: Rate
    up_apply: Rate
    down_paging: Rate
    down_apply: Rate

    @property
    def cpu(self) -> float:
        return sum(r.cpu for r in (self.up_paging, self.up_apply, self.down_paging,
                                   self.down_apply))

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in (self.up_paging, self.up_apply, self.down_paging,
                                       self.down_apply))


def carry(source: Node, target: Node, label: str, hook_each_page: bool) -> tuple[Rate, Rate]:
    """Every page ``source`` has for ``target``, built with the release rule the HTTP
    client and server use and applied as the server applies a push (the received hook
    after each page, or once at the end as the client does)."""
    peer = target.certificate
    with Stopwatch() as watch:
        pages = list(send.pages_for(source, target.info.area, wire.frontier(target.db),
                                    release=send.outgoing_rule(source, peer), peer=peer))
    events = sum(len(p.events) for p in pages)
    paging = watch.rate(f"{label}: `pages_for` at the {source.info.level}", events)
    with Stopwatch() as watch:
        applied = 0
        for page in pages:
            result = receive.apply_page(target, page, peer=source.info.author)
            if result.refused:
                raise SystemExit(f"refused in the in-process merge: {result.refused[0]}")
            applied += result.applied
            if hook_each_page:
                target.pm.hook.xinfang_received(node=target, applied=result.applied)
        if not hook_each_page:
            target.pm.hook.xinfang_received(node=target, applied=applied)
    apply = watch.rate(f"{label}: `apply_page` + received hook at the {target.info.level}",
                       events)
    return paging, apply


def in_process(village_copy: Path, county_copy: Path) -> InProcess:
    """The same sync between copies of the two nodes as they were before it: the
    village's events up, then what the county made of them (its 同人 tags) down."""
    village = Node.open(village_copy, pm=get_plugin_manager())
    county = Node.open(county_copy, pm=get_plugin_manager())
    up = carry(village, county, "up", hook_each_page=True)
    down = carry(county, village, "down", hook_each_page=False)
    village.close()
    county.close()
    return InProcess(*up, *down)


def tagging_query(home: Path, repeat: int = 3) -> tuple[float, float, int, float, float]:
    """The root's tag search at the county as the sync left it: median wall and CPU
    seconds of the full query for untagged petitioners (``tags.untagged``, which the
    received hook ran after every page before it kept its place), the petitioners held,
    and median wall and CPU seconds of the hook's search now (``tags.tag_jurisdiction``,
    nothing having arrived since its last look)."""
    county = Node.open(home, pm=get_plugin_manager())
    timed = {"full": ([], []), "since": ([], [])}
    for _ in range(repeat):
        for name, run in (("full", lambda: tags.untagged(county)),
                          ("since", lambda: tags.tag_jurisdiction(county))):
            with Stopwatch() as watch:
                run()
            timed[name][0].append(watch.wall)
            timed[name][1].append(watch.cpu)
    held = county.db.execute("select count(*) from case_petitioners").fetchone()[0]
    county.close()
    full, since = ([statistics.median(v) for v in timed[k]] for k in ("full", "since"))
    return full[0], full[1], held, since[0], since[1]


def county_counts(home: Path, author: str) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{home / 'xinfang.db'}?mode=ro", uri=True)
    held = conn.execute("select count(*) from events where author = ?", [author]).fetchone()[0]
    conflicts = conn.execute("select count(*) from conflicts").fetchone()[0]
    conn.close()
    return held, conflicts


def run_size(base: Path, size: int, mix: str, seed: int) -> Outcome:
    say(f"== {size:,} {'registrations' if mix == 'registrations' else 'case events'} ==")
    tree = Tree(base, villages=1, townships=0)
    village, county = tree.villages[0], tree.county
    county_home = county.home
    county.close()
    stream = (Registrations(village, size, seed) if mix == "registrations"
              else CaseStream(village.info.area, village.match_key, seed))
    wrote = write(village, stream, size)
    village.db.execute("pragma wal_checkpoint(truncate)")
    for name, home in (("village-pristine", village.home), ("county-pristine", county_home),
                       ("county-idle", county_home)):
        shutil.copytree(home, base / name)
    own = village.db.execute("select count(*) from events where author = ?",
                             [village.info.author]).fetchone()[0]

    say("  bare insert of the same bytes …")
    bare = bare_insert(base, village_events(village))
    idle = idle_server_cpu(base / "county-idle", base / "idle.log")

    say("  HTTP sync village -> county …")
    served = Served(county_home, base / "serve.log")
    client = http.Client(village, served.url, timeout=300)
    server_before = served.cpu
    with Stopwatch() as watch:
        summary = client.sync()
    server_cpu = served.cpu - server_before
    requests = served.requests()
    server_total, peak = served.stop()
    held, conflicts = county_counts(county_home, village.info.author)
    if held != own or conflicts:
        raise SystemExit(f"the county holds {held:,} of the village's {own:,} events, "
                         f"{conflicts} conflicts (pushed {summary.pushed:,})")
    say(f"  {summary.pushed:,} pushed, {summary.pulled:,} pulled in {watch.wall:,.1f} s, "
        f"{requests} requests")
    tagging = tagging_query(county_home)
    bytes_up = sum(len(e.raw) + len(e.signature) for page in village_events(village)
                   for e in page)
    village.close()

    say("  the same sync in-process …")
    local = in_process(base / "village-pristine", base / "county-pristine")
    if local.up_apply.events != summary.pushed or local.down_apply.events != summary.pulled:
        say(f"  in-process moved {local.up_apply.events:,} up and {local.down_apply.events:,} "
            f"down, HTTP {summary.pushed:,} and {summary.pulled:,}")
    return Outcome(size, summary.pushed, summary.pulled, summary.rounds, requests, watch.wall,
                   watch.cpu, server_cpu, server_total, idle, peak / 1024, wrote, bare, local,
                   conflicts, bytes_up, tagging)


# -- reporting -------------------------------------------------------------------


def report(outcomes: list[Outcome], mix: str) -> str:
    what = "registrations" if mix == "registrations" else "case events"
    lines = [
        f"Per {what[:-1]} written at the village (the county's 同人 tag events it causes "
        "travel back down in the same sync and are counted in its cost):",
        "",
        f"| {what} | up / down events | requests | wall s | **{what}/s** | "
        "client CPU µs | server CPU µs (sync) | server CPU µs (with start-up) | "
        "both, CPU µs | server peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.size:,} | {o.moved:,} / {o.pulled:,} | {o.requests} | {o.wall:,.1f} | "
            f"**{o.per_second:,.0f}** | {o.micros(o.client_cpu):,.0f} | "
            f"{o.micros(o.server_cpu):,.0f} | {o.micros(o.server_total_cpu):,.0f} | "
            f"{o.micros(o.client_cpu + o.server_cpu):,.0f} | {o.server_peak_mib:,.0f} |")
    lines += ["", "Floors and parts, measured in the same run on the same events (per event "
                  "of each part):", "",
              "| size | measure | events | events/s | µs/event | CPU µs/event |",
              "|---:|---|---:|---:|---:|---:|"]
    for o in outcomes:
        local = o.local
        for rate in (o.write, o.bare, local.up_paging, local.up_apply, local.down_paging,
                     local.down_apply):
            lines.append(f"| {o.size:,} | {rate.label} | {rate.events:,} | "
                         f"{rate.per_second:,.0f} | {rate.micros:,.1f} | "
                         f"{rate.cpu_micros:,.1f} |")
    lines += ["", "| size | HTTP sync / bare insert (throughput) | HTTP sync / in-process "
                  "(throughput) | the wire's share of the CPU (1 − in-process / HTTP, both "
                  "sides) | server CPU per request, ms | server start-up + shutdown, CPU s | "
                  "rounds | conflicts | raw + sig MB up | the root's full untagged query after the "
                  "sync: petitioners, ms (CPU ms) | the received hook's search since its "
                  "last look, ms (CPU ms) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        local_rate = o.size / o.local.seconds
        wire_share = 1 - o.local.cpu / (o.client_cpu + o.server_cpu)
        lines.append(
            f"| {o.size:,} | {o.per_second / o.bare.per_second:.4f} | "
            f"{o.per_second / local_rate:.2f} | {wire_share:.0%} | "
            f"{1e3 * o.server_cpu / max(o.requests, 1):,.0f} | {o.server_idle_cpu:.2f} | "
            f"{o.rounds} | {o.conflicts} | {o.bytes_up / 1e6:,.1f} | "
            f"{o.tagging[2]:,}: {1e3 * o.tagging[0]:,.0f} ({1e3 * o.tagging[1]:,.0f}) | "
            f"{1e3 * o.tagging[3]:,.1f} ({1e3 * o.tagging[4]:,.1f}) |")
    return "\n".join(lines)


HEADER = """# End-to-end sync benchmarks

`benchmarks/bench_e2e.py` syncs a village's case registrations to its county
over real HTTP: the county runs `xinfang serve` in a subprocess on loopback,
the village runs `sync.http.Client(...).sync()` (what `xinfang sync` runs).
It reports events per second over the wall clock and CPU per event of the
client and the server, beside a bare SQLite insert of the same bytes and the
same merge done in-process without HTTP. Each run appends a section below:

    python benchmarks/bench_e2e.py --sizes 20000,100000

Reading a section: *server CPU (sync)* is the server's CPU time over the
sync alone (from `/proc`), *with start-up* adds starting and stopping it
(`getrusage(RUSAGE_CHILDREN)` after it exits); the client and the server
take turns (one request at a time), so the wall time is about their sum.
"""


# -- the run ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,100000", help="events at the village")
    parser.add_argument("--mix", choices=("registrations", "lifecycle"), default="registrations",
                        help="case.register only, or registrations with their steps")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=str(HERE / "E2E_RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    started = dt.datetime.now().astimezone()
    load_start = load()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="xinfang-e2e-") as tmp:
        for size in sizes:
            base = Path(tmp) / f"n{size}"
            outcomes.append(run_size(base, size, args.mix, args.seed))
            shutil.rmtree(base, ignore_errors=True)
        where = filesystem(Path(tmp))

    info = machine()
    command = ["python benchmarks/bench_e2e.py"] + (argv if argv is not None else sys.argv[1:])
    section = "\n".join([
        f"## {started:%Y-%m-%d %H:%M %Z}: HTTP sync village -> county, "
        + ", ".join(f"{s:,}" for s in sizes) + f" {args.mix}",
        "",
        "```", lscpu(), "```", "",
        f"- Python {info['python']}, SQLite {info['sqlite']}, sqlite-utils "
        f"{info['sqlite-utils']}, cryptography {info['cryptography']}; {info['platform']}",
        f"- code {code_state()}; load average (1/5/15 min) {load_start} at the start, "
        f"{load()} at the end",
        f"- databases on {where}; loopback; `{' '.join(command)}`",
        "",
        report(outcomes, args.mix),
    ])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
