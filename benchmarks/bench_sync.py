"""Cost of sync at a county: merging villages' logs, incremental syncs, bundle bytes.

Three measurements, each against its floors in the same run:

1. **Merge.** A county merges N events (100,000) from 20 villages (under two
   townships). Every page comes from ``send.pages_for(village, county scope,
   county frontier)`` and is applied with ``receive.apply_page``; beside it, bare
   Ed25519 verification of the very same signatures (``cryptography``, key
   object loaded once per author, and ``keys.verify`` as ``check_event`` calls
   it) and a bare SQLite insert of the same (raw, sig) bytes into a fresh file
   with the same PRAGMAs (WAL, ``synchronous=FULL``) in transactions of the
   same sizes as the pages. A merge of the first 10,000 of those events into a
   pristine copy of the county is profiled with cProfile.
2. **Incremental sync.** A county store is grown to 10k, 100k and 1M events
   (``Node.append_many`` in batches of 1,000 at a few villages, pushed with
   ``pages_for`` / ``apply_page``); at each size one village writes 10 new
   events, which reach the county (a) as pages against the county's frontier
   and (b) through a real bundle file (``export_bundle`` + ``import_bundle``);
   (c) is the county's bundle back to the village, which carries the county's
   acknowledgement. Median of 5 repetitions; flat means the cost of a sync
   does not depend on the size of the log.
3. **Bundle bytes.** Bytes per event of bundles of 0, 1, 10, 100 and 1,000
   events beside zlib (level 6) of the events' concatenated canonical bytes.

    python benchmarks/bench_sync.py                 # the full run (1M: ~half an hour)
    python benchmarks/bench_sync.py --quick --out - # smoke test, < 60 s, no file written
    python benchmarks/bench_sync.py --parts incremental --sizes 10000,100000,300000

Results are appended to ``benchmarks/SYNC_RESULTS.md``. Only synthetic data:
ID numbers in region 990000 (assigned to no place), names like 赵某甲.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import datetime as dt
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from xinfang.core import keys as keymod
from xinfang.core import sealing
from xinfang.core.event import EVENT_DOMAIN, Event
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.demo.synthetic import KINDS, TEXTS, random_id, random_name, random_phone
from xinfang.sync import bundle, peers, receive, send, trust, wire

from common import Rate, Stopwatch, code_version, filesystem, machine, publish

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COUNTY = "431202"
COUNTY_NAME = "示例县信访局"
OPERATOR = "基准测试员"

# -- machine and code ------------------------------------------------------------


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


# -- progress and timing ---------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Progress:
    """One self-overwriting line on stderr: done/total, rate, ETA."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.start = self.shown = time.perf_counter()
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.shown < 1.0 and self.done < self.total:
            return
        self.shown = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0
        print(f"\r  {self.label}: {self.done:,}/{self.total:,}, {rate:,.0f}/s, "
              f"ETA {eta / 60:.1f} min   ", end="", file=sys.stderr, flush=True)

    def end(self) -> float:
        elapsed = time.perf_counter() - self.start
        print(f"\r  {self.label}: {self.done:,} in {elapsed:,.1f} s "
              f"({self.done / max(elapsed, 1e-9):,.0f}/s)" + " " * 20, file=sys.stderr, flush=True)
        return elapsed


# -- the tree of nodes -----------------------------------------------------------


def make_node(home: Path, level: str, area: str, name: str, root: bool = False) -> Node:
    node = Node.init(home, level=level, area=area, name=name, root=root,
                     pm=get_plugin_manager())
    node.operator = OPERATOR
    return node


def enrol(child: Node, parent: Node) -> None:
    """The enrolment ``xinfang enroll`` does, without the envelope around it."""
    trust.import_certificate(child, trust.sign_request(parent, trust.make_request(child)))


class Tree:
    """A county (the root) and villages, under townships or directly under it."""

    def __init__(self, base: Path, villages: int, townships: int) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.county = make_node(base / "county", "county", COUNTY, COUNTY_NAME, root=True)
        self.townships: list[Node] = []
        for t in range(townships):
            town = make_node(base / f"town{t}", "township", f"{COUNTY}{101 + t:03d}",
                             f"示例{t + 1}镇信访办")
            enrol(town, self.county)
            self.townships.append(town)
        self.villages: list[Node] = []
        for v in range(villages):
            if self.townships:
                parent = self.townships[v % len(self.townships)]
                area = f"{parent.info.area}{201 + v // len(self.townships):03d}"
            else:
                parent, area = self.county, f"{COUNTY}101{201 + v:03d}"
            village = make_node(base / f"village{v}", "village", area, f"示例{v + 1}村信访站")
            enrol(village, parent)
            self.villages.append(village)
        self.streams = [CaseStream(v.info.area, v.match_key, seed=1000 + i)
                        for i, v in enumerate(self.villages)]

    def close(self) -> None:
        for node in [self.county, *self.townships, *self.villages]:
            node.close()


def count(node: Node) -> int:
    return node.db.execute("select count(*) from events").fetchone()[0]


# -- the workload: case events at a village --------------------------------------

CHANNELS = ["visit"] * 5 + ["letter"] * 2 + ["online"] * 4 + ["phone"] * 2 + ["mailbox"]
CATEGORIES = ["labour"] * 5 + ["land"] * 3 + ["demolition"] * 2 + [
    "urban_construction", "agriculture", "civil_affairs", "medical", "environment",
    "resettlement", "neighbour", "family", "village_affairs"]
REQUESTS = [
    "请求协调追讨拖欠的工资，涉及{n}个月，用工单位至今未予结算",
    "反映承包地被占用后补偿款未足额发放，请求核实并补发",
    "请求解决移民安置房屋漏水问题，多次向村里反映未果",
    "反映邻近养殖场污水直排河道，影响饮水安全，请求查处",
    "反映村务财务不公开，请求公开近{n}年集体收支情况",
    "反映宅基地纠纷，邻居擅自扩建影响通行，请求调处",
    "建议在村口增设路灯和减速设施，保障夜间出行安全",
]
UNITS = ["镇劳动保障所", "镇国土所", "镇司法所", "镇民政办", "县人社局", "县自然资源局"]
FIRST_RECEIVED = dt.date(2019, 1, 2)


class CaseStream:
    """A seeded, endless stream of one village's case events as ``Draft`` objects.

    Each case is registered (one petitioner, sealed name / ID number / phone,
    an ID tag for 重复访; 10% reuse an earlier petitioner), then accepted,
    answered, closed and in 60% rated, interleaved over 30 open cases as on a
    real desk: about 4.6 events per case, the mix a village writes. These are
    the drafts ``api.register_case`` / ``api.take_step`` build.
    """

    OPEN = 30

    def __init__(self, area: str, match_key: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.area, self.match_key = area, match_key
        self.cases = 0
        self.serials: collections.Counter = collections.Counter()
        self.open: list[tuple[str, collections.deque]] = []
        self.recent: collections.deque = collections.deque(maxlen=500)

    def take(self, n: int) -> list[Draft]:
        return [self._next() for _ in range(n)]

    def _next(self) -> Draft:
        if len(self.open) < self.OPEN:
            return self._register()
        index = self.rng.randrange(len(self.open))
        case_id, plan = self.open[index]
        step, values = plan.popleft()
        if not plan:
            self.open[index] = self.open[-1]
            self.open.pop()
        return Draft(f"case.{step}", "case", case_id, self.area, {"values": values, "by": OPERATOR})

    def _person(self) -> tuple[str, str, str]:
        rng = self.rng
        id_number = random_id(rng)  # drawn first: the same seed gives the same people
        return random_name(rng), id_number, random_phone(rng)

    def _register(self) -> Draft:
        rng = self.rng
        received = FIRST_RECEIVED + dt.timedelta(days=self.cases // 20)
        self.cases += 1
        self.serials[received.year] += 1
        case_id = f"{self.area}-{received.year}-{self.serials[received.year]:05d}"
        person = rng.choice(self.recent) if self.recent and rng.random() < 0.1 else self._person()
        self.recent.append(person)
        name, id_number, phone = person
        secrets = [sealing.seal(value) for value in person]
        sealed = {"representative": False, "name": secrets[0].digest,
                  "id_number": secrets[1].digest, "phone": secrets[2].digest,
                  "id_tag": sealing.match_tag(self.match_key, id_number)}
        body = {"channel": rng.choice(CHANNELS), "category": rng.choice(CATEGORIES),
                "kind": rng.choice(KINDS),
                "request": rng.choice(REQUESTS).format(n=rng.randint(2, 9)),
                "received": received.isoformat(), "headcount": 1, "petitioners": [sealed],
                "fields": {}, "by": OPERATOR}
        day = received

        def after(low: int, high: int) -> str:
            nonlocal day
            day = day + dt.timedelta(days=rng.randint(low, high))
            return day.isoformat()

        plan = collections.deque([
            ("accept", {"date": after(1, 5), "unit": rng.choice(UNITS), "leader": "王某",
                        "handler": "周某"}),
            ("answer", {"date": after(5, 15), "outcome": rng.choice(["support", "explain",
                                                                     "reject"]),
                        "text": rng.choice(TEXTS)}),
            ("close", {"date": after(1, 5)}),
        ])
        if rng.random() < 0.6:
            plan.append(("rate", {"date": after(0, 5), "rating": rng.choice(
                ["satisfied", "satisfied", "basically", "dissatisfied"])}))
        self.open.append((case_id, plan))
        return Draft("case.register", "case", case_id, self.area, body, secrets)


def write_events(node: Node, stream: CaseStream, total: int, batch: int,
                 progress: Progress | None = None) -> None:
    """``total`` new events at ``node``, ``append_many`` in batches of ``batch``."""
    left = total
    while left > 0:
        n = min(batch, left)
        node.append_many(stream.take(n))
        left -= n
        if progress:
            progress.add(n)


def push(source: Node, target: Node, progress: Progress | None = None) -> int:
    """Every page ``source`` has for ``target`` (by its frontier), applied at ``target``."""
    applied = 0
    scope = target.info.area
    for page in send.pages_for(source, scope, wire.frontier(target.db)):
        result = receive.apply_page(target, page, peer=source.info.author)
        if result.refused:
            raise SystemExit(f"refused while pushing: {result.refused[0]}")
        applied += result.applied
        if progress:
            progress.add(result.applied)
    return applied


# -- 1. a county merges its villages ---------------------------------------------


def bare_verify(events: list[Event]) -> Rate:
    public = {a: Ed25519PublicKey.from_public_bytes(bytes.fromhex(a))
              for a in {e.author for e in events}}
    with Stopwatch() as watch:
        for e in events:
            public[e.author].verify(e.signature, EVENT_DOMAIN + e.raw)
    return watch.rate("bare Ed25519 verify (key loaded once per author)", len(events))


def library_verify(events: list[Event]) -> Rate:
    with Stopwatch() as watch:
        for e in events:
            if not keymod.verify(e.author, e.signature, EVENT_DOMAIN + e.raw):
                raise SystemExit("a signature does not verify")
    return watch.rate("`keys.verify` per event (key parsed per call, as `check_event`)",
                      len(events))


def bare_insert(directory: Path, batches: list[list[Event]]) -> Rate:
    path = directory / "bare-insert.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = full")
    conn.execute("create table events (pos integer primary key, raw blob not null, "
                 "sig blob not null)")
    rows = [[(e.raw, e.signature) for e in batch] for batch in batches]
    with Stopwatch() as watch:
        for batch in rows:
            conn.execute("begin")
            conn.executemany("insert into events (raw, sig) values (?, ?)", batch)
            conn.execute("commit")
    conn.close()
    sizes = sorted({len(b) for b in batches})
    return watch.rate(f"bare SQLite insert of (raw, sig), one transaction per page "
                      f"({sizes[-1]} events)", sum(len(b) for b in batches))


def apply_all(county: Node, built: list[tuple[str, wire.Page]]) -> int:
    applied = 0
    for peer, page in built:
        result = receive.apply_page(county, page, peer=peer)
        if result.refused:
            raise SystemExit(f"refused: {result.refused[0]}")
        applied += result.applied
    return applied


def _short(filename: str) -> str:
    for prefix in (str(REPO) + os.sep, *(p + os.sep for p in sys.path if p)):
        if filename.startswith(prefix):
            return ("xinfang/" if prefix == str(REPO) + os.sep else "") + filename[len(prefix):]
    return filename


def profile_rows(profiler: cProfile.Profile) -> tuple[float, list[dict[str, Any]]]:
    """(total seconds, every function by cumulative time, with file:line)."""
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (cc, nc, tt, ct, _) in stats.stats.items():
        where = f"{_short(filename)}:{line}" if filename != "~" else "(built-in)"
        rows.append({"where": where, "function": name, "calls": nc, "tottime": tt,
                     "cumtime": ct})
    rows.sort(key=lambda r: -r["cumtime"])
    return stats.total_tt, rows


def profile_merge(county_home: Path, built: list[tuple[str, wire.Page]], events: int
                  ) -> dict[str, Any]:
    """cProfile of a merge of the first ``events`` events into a pristine county."""
    chosen, total = [], 0
    for peer, page in built:
        if total >= events:
            break
        chosen.append((peer, page))
        total += len(page.events)
    county = Node.open(county_home, pm=get_plugin_manager())
    profiler = cProfile.Profile()
    with Stopwatch() as watch:
        applied = profiler.runcall(apply_all, county, chosen)
    county.close()
    root, rows = profile_rows(profiler)

    def cumulative(path_end: str, function: str) -> float:
        return sum(r["cumtime"] for r in rows if r["where"].split(":")[0].endswith(path_end)
                   and r["function"] == function)

    return {"events": applied, "wall": watch.wall, "profiled_total": root, "top": rows[:15],
            "signature": cumulative("core/event.py", "signature_valid"),
            "check": cumulative("sync/receive.py", "check_event"),
            "fold": cumulative("core/fold.py", "apply"),
            "insert": cumulative("core/store.py", "insert_event"),
            "validate_hook": sum(r["cumtime"] for r in rows if r["function"] == "__call__"
                                 and "pluggy" in r["where"])}


def run_merge(base: Path, events: int, villages: int, townships: int, batch: int,
              profile_events: int) -> dict[str, Any]:
    say(f"== 1. merge: {events:,} events from {villages} villages into a county ==")
    tree = Tree(base, villages, townships)
    per = [events // villages + (1 if i < events % villages else 0) for i in range(villages)]
    progress = Progress("villages write (append_many)", events)
    for village, stream, n in zip(tree.villages, tree.streams, per):
        write_events(village, stream, n, batch, progress)
    progress.end()

    pristine = base / "county-pristine"
    tree.county.db.execute("pragma wal_checkpoint(truncate)")
    shutil.copytree(tree.county.home, pristine)

    say("  pages_for at every village against the county's frontier …")
    built: list[tuple[str, wire.Page]] = []
    frontier = wire.frontier(tree.county.db)
    with Stopwatch() as watch:
        for village in tree.villages:
            for page in send.pages_for(village, COUNTY, frontier):
                built.append((village.info.author, page))
    all_events = [e for _, page in built for e in page.events]
    assert len(all_events) == events, (len(all_events), events)
    paging = watch.rate("`pages_for` at the villages (read + parse + certs + secrets)", events)

    progress = Progress("county apply_page", events)
    with Stopwatch() as watch:
        applied = 0
        for peer, page in built:
            result = receive.apply_page(tree.county, page, peer=peer)
            if result.refused:
                raise SystemExit(f"refused: {result.refused[0]}")
            applied += result.applied
            progress.add(result.applied)
    progress.end()
    assert applied == events, (applied, events)
    apply_rate = watch.rate("`apply_page`, all pages, at the county", events)
    conflicts = tree.county.db.execute("select count(*) from conflicts").fetchone()[0]
    types = tree.county.db.execute("select type, count(*) from events group by type "
                                   "order by count(*) desc").fetchall()
    mean_raw = tree.county.db.execute("select avg(length(raw)) from events").fetchone()[0]

    say("  floors: bare verify, keys.verify, bare insert …")
    verify_rate = bare_verify(all_events)
    lib_verify_rate = library_verify(all_events)
    insert_rate = bare_insert(base, [list(page.events) for _, page in built])

    say(f"  cProfile of a {profile_events:,}-event merge into a pristine county copy …")
    profile = profile_merge(pristine, built, profile_events)
    tree.close()
    return {"events": events, "villages": villages, "townships": townships,
            "pages": len(built), "page_sizes": sorted({len(p.events) for _, p in built}),
            "paging": paging, "apply": apply_rate, "verify": verify_rate,
            "lib_verify": lib_verify_rate, "insert": insert_rate, "profile": profile,
            "conflicts": conflicts, "types": types, "mean_raw": mean_raw}


# -- 2. incremental sync against a growing store ----------------------------------


@attrs.frozen
class Sample:
    pages_for: float
    apply: float
    export: float
    import_: float
    back_export: float
    back_import: float
    bundle_bytes: int
    back_bytes: int
    a_cpu: float
    b_cpu: float
    c_cpu: float


def own_events(node) -> int:
    return node.db.execute("select count(*) from events where author = ?",
                           [node.info.author]).fetchone()[0]


def settle_acks(county: Node, village: Node) -> None:
    """Record on both sides the frontier the other holds now: the state a
    previous bundle round trip leaves (set directly, since the store was grown
    with pages rather than bundles)."""
    with village.db.atomic():
        peers.record_ack(village, county.info.author, wire.frontier(county.db), "bench")
    with county.db.atomic():
        peers.record_ack(county, village.info.author, wire.frontier(village.db), "bench")


def measure_incremental(tree: Tree, base: Path, new: int, reps: int, batch: int) -> list[Sample]:
    county, village, stream = tree.county, tree.villages[0], tree.streams[0]
    samples_a: list[tuple[float, float, float]] = []
    for _ in range(reps):
        write_events(village, stream, new, batch)
        cpu = time.process_time()
        start = time.perf_counter()
        built = list(send.pages_for(village, COUNTY, wire.frontier(county.db)))
        middle = time.perf_counter()
        applied = sum(receive.apply_page(county, p, peer=village.info.author).applied
                      for p in built)
        end = time.perf_counter()
        cpu = time.process_time() - cpu
        if applied != new:
            raise SystemExit(f"incremental pages applied {applied} events, not {new}")
        samples_a.append((middle - start, end - middle, cpu))
    settle_acks(county, village)
    samples = []
    for rep in range(reps):
        write_events(village, stream, new, batch)
        up, down = base / f"up-{rep}.xfb", base / f"down-{rep}.xfb"
        tags_before = own_events(county)
        c0, t0 = time.process_time(), time.perf_counter()
        sent = bundle.export_bundle(village, COUNTY_NAME, up)
        t1 = time.perf_counter()
        got = bundle.import_bundle(county, up)
        c2, t2 = time.process_time(), time.perf_counter()
        back = bundle.export_bundle(county, village.info.name, down)
        t3 = time.perf_counter()
        bundle.import_bundle(village, down)
        c4, t4 = time.process_time(), time.perf_counter()
        if sent.events != new or got.applied != new or got.refused:
            raise SystemExit(f"bundle sent {sent.events}, applied {got.applied}, "
                             f"refused {len(got.refused)}; expected {new}")
        tags = own_events(county) - tags_before  # the root's case.tag for each registration
        if back.events != tags:
            raise SystemExit(f"the county's bundle back carried {back.events} events, not "
                             f"the {tags} case.tag events it wrote")
        samples.append(Sample(samples_a[rep][0], samples_a[rep][1], t1 - t0, t2 - t1, t3 - t2,
                              t4 - t3, sent.bytes, back.bytes, samples_a[rep][2], c2 - c0,
                              c4 - c2))
        up.unlink()
        down.unlink()
    return samples


def profile_incremental(tree: Tree, base: Path, new: int, batch: int) -> dict[str, Any]:
    """One more repetition of (a), (b) and (c), each step under cProfile."""
    county, village, stream = tree.county, tree.villages[0], tree.streams[0]
    up, down = base / "profiled-up.xfb", base / "profiled-down.xfb"
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("(a) pages_for + apply_page", lambda: [
            receive.apply_page(county, p, peer=village.info.author)
            for p in list(send.pages_for(village, COUNTY, wire.frontier(county.db)))]),
        ("(b) export_bundle at the village", lambda: bundle.export_bundle(village, COUNTY_NAME,
                                                                          up)),
        ("(b) import_bundle at the county", lambda: bundle.import_bundle(county, up)),
        ("(c) export_bundle at the county", lambda: bundle.export_bundle(
            county, village.info.name, down)),
        ("(c) import_bundle at the village", lambda: bundle.import_bundle(village, down)),
    ]
    result = {}
    for i, (label, step) in enumerate(steps):
        if i in (0, 1):
            write_events(village, stream, new, batch)
        profiler = cProfile.Profile()
        profiler.runcall(step)
        result[label] = profile_rows(profiler)
    return result


def run_incremental(base: Path, sizes: list[int], growth_villages: int, batch: int, new: int,
                    reps: int, budget: float, profile: bool = True) -> dict[str, Any]:
    say(f"== 2. incremental sync of {new} events against stores of "
        f"{', '.join(f'{s:,}' for s in sizes)} events ==")
    tree = Tree(base, growth_villages, townships=0)
    county = tree.county
    results: dict[int, Any] = {}
    started = time.perf_counter()
    skipped: list[tuple[int, str]] = []
    growth: list[tuple[int, int, float, float]] = []  # (held before, events, write s, push s)
    chunk = 10 * batch
    for size in sizes:
        need = size - count(county)
        if need > 0:
            elapsed = time.perf_counter() - started
            held = count(county)
            if held and budget and elapsed / held * size > budget:
                why = (f"growing to {size:,} would take ~{elapsed / held * size / 60:.0f} min at "
                       f"the {held / elapsed:,.0f} events/s seen so far; over the "
                       f"{budget / 60:.0f}-minute budget")
                say(f"  skipping {size:,}: {why}")
                skipped.append((size, why))
                continue
            progress = Progress(f"grow the county to {size:,} (write + push)", need)
            while need > 0:
                n = min(chunk, need)
                index = len(growth) % len(tree.villages)
                before = count(county)
                with Stopwatch() as writing:
                    write_events(tree.villages[index], tree.streams[index], n, batch)
                with Stopwatch() as pushing:
                    pushed = push(tree.villages[index], county)
                if pushed != n:
                    raise SystemExit(f"pushed {pushed} events, expected {n}")
                growth.append((before, n, writing.wall, pushing.wall))
                progress.add(n)
                need -= n
            progress.end()
        held = count(county)
        county.db.execute("pragma wal_checkpoint(truncate)")
        db_bytes = (county.home / "xinfang.db").stat().st_size
        say(f"  county holds {held:,} events ({db_bytes / 1e6:,.0f} MB); measuring "
            f"{reps} × {new} new events …")
        samples = measure_incremental(tree, base, new, reps, batch)
        results[size] = {"held": held, "db_bytes": db_bytes, "samples": samples,
                         "village_feed": tree.villages[0].db.execute(
                             "select max(seq) from events").fetchone()[0]}
        row = summarise(samples)
        say(f"    pages {row['a'] * 1e3:.1f} ms, bundle {row['b'] * 1e3:.1f} ms, "
            f"back {row['c'] * 1e3:.1f} ms (medians)")
        if profile and size == sizes[-1]:
            say("    one more repetition under cProfile …")
            results[size]["profile"] = profile_incremental(tree, base, new, batch)
    conflicts = county.db.execute("select count(*) from conflicts").fetchone()[0]
    feeds = county.db.execute("select count(*) from feeds").fetchone()[0]
    tree.close()
    return {"sizes": results, "skipped": skipped, "new": new, "reps": reps,
            "villages": growth_villages, "conflicts": conflicts, "feeds": feeds, "growth": growth,
            "grow_seconds": time.perf_counter() - started}


def summarise(samples: list[Sample]) -> dict[str, float]:
    med = lambda f: statistics.median(f(s) for s in samples)  # noqa: E731
    return {"pages_for": med(lambda s: s.pages_for), "apply": med(lambda s: s.apply),
            "a": med(lambda s: s.pages_for + s.apply),
            "export": med(lambda s: s.export), "import": med(lambda s: s.import_),
            "b": med(lambda s: s.export + s.import_),
            "back_export": med(lambda s: s.back_export),
            "back_import": med(lambda s: s.back_import),
            "c": med(lambda s: s.back_export + s.back_import),
            "bytes": med(lambda s: s.bundle_bytes), "back_bytes": med(lambda s: s.back_bytes),
            "a_cpu": med(lambda s: s.a_cpu), "b_cpu": med(lambda s: s.b_cpu),
            "c_cpu": med(lambda s: s.c_cpu)}


# -- 3. bundle bytes per event ----------------------------------------------------


def run_bundles(base: Path, sizes: list[int], batch: int, warmup: int = 200) -> dict[str, Any]:
    say(f"== 3. bundle bytes for {', '.join(map(str, sizes))} events ==")
    tree = Tree(base, 1, townships=0)
    county, village, stream = tree.county, tree.villages[0], tree.streams[0]

    def round_trip(tag: str) -> tuple[bundle.ExportSummary, list[bytes], list[bytes]]:
        path = base / f"{tag}.xfb"
        before = county.db.execute("select max(seq) from events where author = ?",
                                   [village.info.author]).fetchone()[0] or 0
        summary = bundle.export_bundle(village, COUNTY_NAME, path)
        bundle.import_bundle(county, path)
        back = base / f"{tag}-back.xfb"
        bundle.export_bundle(county, village.info.name, back)
        bundle.import_bundle(village, back)
        rows = village.db.execute("select raw, sig from events where author = ? and seq > ? "
                                  "order by seq", [village.info.author, before]).fetchall()
        return summary, [bytes(r[0]) for r in rows], [bytes(r[1]) for r in rows]

    write_events(village, stream, warmup, batch)
    round_trip("warmup")  # the steady mix of event types, and acknowledgements on both sides
    rows = []
    for n in [0, *sizes]:
        if n:
            write_events(village, stream, n, batch)
        summary, raws, sigs = round_trip(f"b{n}")
        assert summary.events == n == len(raws), (summary.events, n, len(raws))
        joined = b"".join(raws)
        rows.append({"events": n, "bundle": summary.bytes, "raw": len(joined),
                     "raw_sig": len(joined) + sum(len(s) for s in sigs),
                     "zlib": len(zlib.compress(joined, 6)) if n else 0,
                     "zlib_sig": len(zlib.compress(b"".join(r + s for r, s in zip(raws, sigs)),
                                                   6)) if n else 0})
        say(f"  {n:>5} events: bundle {summary.bytes:,} bytes")
    tree.close()
    return {"rows": rows, "warmup": warmup}


# -- the report -------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"


def ms(x: float) -> str:
    return f"{x * 1e3:,.1f}"


def report_merge(r: dict[str, Any]) -> str:
    apply, verify, lib, insert = r["apply"], r["verify"], r["lib_verify"], r["insert"]
    prof = r["profile"]
    lines = [
        f"### 1. A county merges {r['events']:,} events from {r['villages']} villages",
        "",
        f"{r['villages']} villages under {r['townships']} townships, each writing "
        f"{r['events'] // r['villages']:,} case events (`Node.append_many`, batches of 1,000); "
        f"the county applies {r['pages']:,} pages (`pages_for(village, '{COUNTY}', "
        f"county frontier)`, {r['page_sizes'][-1]} events a page) with `apply_page`, one "
        f"transaction + fsync each. Mean event {r['mean_raw']:,.0f} bytes + 64 signature; mix "
        + ", ".join(f"{n:,} {t}" for t, n in r["types"]) + f"; fold conflicts: {r['conflicts']}.",
        "",
        "| measure | events/s | µs/event | CPU µs/event |",
        "|---|---:|---:|---:|",
    ]
    for rate in (apply, verify, lib, insert, r["paging"]):
        lines.append(f"| {rate.label} | {fmt(rate.per_second)} | {fmt(rate.micros)} | "
                     f"{fmt(rate.cpu_micros)} |")
    share_lib = lib.micros / apply.micros
    sig_share = prof["signature"] / prof["profiled_total"]
    lines += [
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| apply / bare verify (throughput) | {apply.per_second / verify.per_second:.3f} "
        f"(bare verify alone is {verify.per_second / apply.per_second:.1f}× faster) |",
        f"| apply / `keys.verify` (throughput) | {apply.per_second / lib.per_second:.3f} "
        f"(`keys.verify` alone is {lib.per_second / apply.per_second:.1f}× faster) |",
        f"| apply / bare SQLite insert (throughput) | "
        f"{apply.per_second / insert.per_second:.3f} (the insert alone is "
        f"{insert.per_second / apply.per_second:.1f}× faster) |",
        f"| the same three, CPU time only (verify / apply, insert / apply) | "
        f"{verify.cpu_micros / apply.cpu_micros:.3f}, {lib.cpu_micros / apply.cpu_micros:.3f}, "
        f"{insert.cpu_micros / apply.cpu_micros:.3f} |",
        f"| share of apply time that is signature verification, unprofiled estimate "
        f"(`keys.verify` µs / apply µs; CPU µs / CPU µs) | {share_lib:.1%}; "
        f"{lib.cpu_micros / apply.cpu_micros:.1%} |",
        f"| the same, from cProfile (`Event.signature_valid` cumulative / total) | "
        f"{sig_share:.1%} |",
        "",
        "Verifying every event's signature bounds `apply_page` at the verify rate "
        f"(~{fmt(verify.per_second)} events/s on one core here). The expected way past that "
        "bound is **verifying one signature per contiguous run of an author's chain (the "
        "chain's hashes authenticate the rest)**: a page of one feed is a contiguous run that "
        "`check_event` already links to the held head by `prev`, so verifying the signature of "
        "the run's last event authenticates every event before it, and one verification "
        f"would stand for up to {r['page_sizes'][-1]} events (a run whose last signature fails "
        "falls back to one verification per event, to quarantine exactly the bad ones). "
        "At today's cost the gain is capped by the rest of the "
        f"pipeline: removing {share_lib:.0%} of the time would give about "
        f"{fmt(apply.per_second / max(1 - share_lib, 1e-9))} events/s.",
        "",
        f"cProfile of a {prof['events']:,}-event merge into a pristine copy of the county "
        f"({prof['wall']:.1f} s under the profiler; profiled total {prof['profiled_total']:.2f} s): "
        f"`check_event` {prof['check'] / prof['profiled_total']:.0%} (of which signature "
        f"{sig_share:.0%}), `fold.apply` {prof['fold'] / prof['profiled_total']:.0%}, "
        f"`store.insert_event` {prof['insert'] / prof['profiled_total']:.0%}. "
        "Top 15 by cumulative time:",
        "",
        "| # | function | where | calls | tottime s | cumtime s | cum share |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for i, row in enumerate(prof["top"], 1):
        lines.append(f"| {i} | `{row['function']}` | {row['where']} | {row['calls']:,} | "
                     f"{row['tottime']:.2f} | {row['cumtime']:.2f} | "
                     f"{row['cumtime'] / prof['profiled_total']:.0%} |")
    return "\n".join(lines)


def report_incremental(r: dict[str, Any]) -> str:
    sizes = sorted(r["sizes"])
    lines = [
        f"### 2. Incremental sync of {r['new']} new events (median of {r['reps']})",
        "",
        f"A county holding N events written by {r['villages']} villages enrolled directly "
        f"under it (feeds at the county: {r['feeds']}; fold conflicts {r['conflicts']}); one "
        f"village writes "
        f"{r['new']} new events, which reach the county (a) as `pages_for(village, county "
        "scope, county frontier)` + `apply_page`, (b) as a bundle file "
        "(`export_bundle` at the village + `import_bundle` at the county); (c) is the "
        "county's bundle back to the village (it carries the county's frontier as the "
        "acknowledgement, and no events). Times in milliseconds.",
        "",
        "| county holds | DB MB | village feed | (a) pages_for | (a) apply_page | (a) total | "
        "(b) export | (b) import | (b) total | bundle bytes | (c) export | (c) import | "
        "(c) total |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = {}
    for size in sizes:
        item = r["sizes"][size]
        s = rows[size] = summarise(item["samples"])
        lines.append(
            f"| {item['held']:,} | {item['db_bytes'] / 1e6:,.0f} | {item['village_feed']:,} | "
            f"{ms(s['pages_for'])} | {ms(s['apply'])} | **{ms(s['a'])}** | {ms(s['export'])} | "
            f"{ms(s['import'])} | **{ms(s['b'])}** | {s['bytes']:,.0f} | "
            f"{ms(s['back_export'])} | {ms(s['back_import'])} | **{ms(s['c'])}** |")
    if len(sizes) > 1:
        for key, what in (("a_cpu", "(a) pages"), ("b_cpu", "(b) bundle"),
                          ("c_cpu", "(c) bundle back")):
            ratio = rows[sizes[-1]][key] / rows[sizes[0]][key]
            flat = ratio <= 2.0  # 5 samples of a few ms: noise is tens of percent
            lines += ["", f"- {what}: CPU time at {sizes[-1]:,} events is {ratio:.2f}× that at "
                          f"{sizes[0]:,} — " + ("flat (within 2×)." if flat else
                                                f"**not flat** ({sizes[-1] // sizes[0]}× the "
                                                "store).")]
    lines += ["", "CPU time of this process (leaves out fsync waits and other programs; "
                  "medians, ms):", "",
              "| county holds | (a) pages CPU | (b) bundle CPU | (c) bundle back CPU |",
              "|---:|---:|---:|---:|"]
    for size in sizes:
        s = rows[size]
        lines.append(f"| {r['sizes'][size]['held']:,} | {ms(s['a_cpu'])} | {ms(s['b_cpu'])} | "
                     f"{ms(s['c_cpu'])} |")
    if len(sizes) > 1:
        lo = rows[sizes[0]]
        lines += ["", f"Ratios to the smallest store ({sizes[0]:,} events), medians; 1.00 = flat:",
                  "", "| store | (a) pages | (b) bundle | (c) bundle back | (a) CPU | (b) CPU | "
                  "(c) CPU |", "|---|---:|---:|---:|---:|---:|---:|"]
        for size in sizes[1:]:
            hi = rows[size]
            lines.append(
                f"| {size:,} / {sizes[0]:,} | {hi['a'] / lo['a']:.2f} | {hi['b'] / lo['b']:.2f} | "
                f"{hi['c'] / lo['c']:.2f} | {hi['a_cpu'] / lo['a_cpu']:.2f} | "
                f"{hi['b_cpu'] / lo['b_cpu']:.2f} | {hi['c_cpu'] / lo['c_cpu']:.2f} |")
    growth = r["growth"]
    if growth:
        lines += ["", "Growing the store (the fast path: `append_many` at a village, then "
                      "`pages_for` + `apply_page` at the county), by tenths of the largest "
                      "store; *push* is the county's `apply_page` throughput at that size:", "",
                  "| county held | events | write events/s | push events/s |",
                  "|---|---:|---:|---:|"]
        for part in _tenths(growth):
            lines.append(f"| {part[0]:,} – {part[0] + part[1]:,} | {part[1]:,} | "
                         f"{fmt(part[1] / part[2])} | {fmt(part[1] / part[3])} |")
    for size, why in r["skipped"]:
        lines += ["", f"Not measured at {size:,} events: {why}."]
    profiled = [(size, r["sizes"][size]["profile"]) for size in sizes
                if "profile" in r["sizes"][size]]
    for size, steps in profiled:
        lines += ["", f"One more repetition at {r['sizes'][size]['held']:,} events, each step "
                      "under cProfile: the 8 entries with the most cumulative time below the "
                      "step itself (seconds; the profiler inflates Python-level calls).", "",
                  "| step | total s | function | where | calls | cumtime s | share |",
                  "|---|---:|---|---|---:|---:|---:|"]
        for label, (total, rows_) in steps.items():
            shown = [x for x in rows_ if not x["where"].startswith("xinfang/benchmarks/")][1:9]
            for j, x in enumerate(shown):
                lines.append(f"| {label if j == 0 else ''} | {f'{total:.3f}' if j == 0 else ''} "
                             f"| `{x['function']}` | {x['where']} | {x['calls']:,} | "
                             f"{x['cumtime']:.3f} | {x['cumtime'] / total:.0%} |")
    lines += ["", "Every repetition, (a) and (b) alike:", "",
              "| county holds | rep | pages_for | apply | export | import | back export | "
              "back import |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        for i, s in enumerate(r["sizes"][size]["samples"], 1):
            lines.append(f"| {r['sizes'][size]['held']:,} | {i} | {ms(s.pages_for)} | "
                         f"{ms(s.apply)} | {ms(s.export)} | {ms(s.import_)} | "
                         f"{ms(s.back_export)} | {ms(s.back_import)} |")
    return "\n".join(lines)


def _tenths(growth: list[tuple[int, int, float, float]]) -> list[tuple[int, int, float, float]]:
    """Growth chunks merged into about ten slices: (held before, events, write s, push s)."""
    total = sum(g[1] for g in growth)
    slices, current = [], None
    for before, n, w, p in growth:
        if current is None:
            current = [before, 0, 0.0, 0.0]
        current[1] += n
        current[2] += w
        current[3] += p
        if current[1] >= total / 10:
            slices.append(tuple(current))
            current = None
    if current is not None:
        slices.append(tuple(current))
    return slices


def report_bundles(r: dict[str, Any]) -> str:
    lines = [
        "### 3. Bundle bytes per event",
        "",
        f"A village's bundle to the county after a warm-up of {r['warmup']} events (so the mix "
        "of event types is the steady one). Upward bundles carry no clear petitioner values "
        "(sealed digests only). *zlib* is `zlib.compress(b''.join(raw), 6)` of the same "
        "events' canonical bytes.",
        "",
        "| events | bundle bytes | bundle B/event | raw B/event | raw+sig B/event | "
        "zlib(raw) B/event | zlib(raw+sig) B/event | bundle / zlib(raw) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    empty = r["rows"][0]["bundle"]
    for row in r["rows"]:
        n = row["events"]
        if not n:
            lines.append(f"| 0 | {row['bundle']:,} | — | — | — | — | — | — |")
            continue
        lines.append(
            f"| {n:,} | {row['bundle']:,} | {fmt(row['bundle'] / n)} | {fmt(row['raw'] / n)} | "
            f"{fmt(row['raw_sig'] / n)} | {fmt(row['zlib'] / n)} | {fmt(row['zlib_sig'] / n)} | "
            f"{row['bundle'] / row['zlib']:.2f} |")
    big = r["rows"][-1]
    if big["events"]:
        marginal = (big["bundle"] - empty) / big["events"]
        lines += ["", f"An empty bundle (header, sender's chain, frontier, signature) is "
                      f"{empty:,} bytes; above it, the {big['events']:,}-event bundle costs "
                      f"{fmt(marginal)} bytes/event, {marginal / (big['zlib'] / big['events']):.2f}× "
                      f"zlib of the raw bytes and {marginal / (big['zlib_sig'] / big['events']):.2f}× "
                      "zlib of raw + signature (a signature is 64 random bytes, which no "
                      "compressor shrinks; base64 in the pages costs a further 4/3 before zlib)."]
    return "\n".join(lines)


HEADER = """# Sync benchmarks

`benchmarks/bench_sync.py` measures the sync layer at a county: (1) merging
100,000 events from 20 villages with `receive.apply_page`, beside bare Ed25519
verification and a bare SQLite insert of the same bytes, with a cProfile of a
10,000-event merge; (2) an incremental sync of 10 new events against stores of
10k, 100k and 1M events, as pages and through real bundle files; (3) bundle
bytes per event. Each run appends a section below; re-run with

    python benchmarks/bench_sync.py

Reading the numbers: a flat row in table 2 means a sync costs what the new
events cost, whatever the size of the log; the ratios in table 1 say how far
`apply_page` is from its floors (verifying signatures, writing the bytes).
"""


def ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test in < 60 s: merge 2,000 events, stores of 10k and 20k, "
                             "bundles up to 1,000")
    parser.add_argument("--parts", default="merge,incremental,bundles",
                        help="which parts to run, comma separated (merge,incremental,bundles)")
    parser.add_argument("--merge-events", type=int, default=100_000)
    parser.add_argument("--villages", type=int, default=20, help="villages in the merge (20)")
    parser.add_argument("--townships", type=int, default=2,
                        help="townships the merge's villages sit under (2; 0 = directly "
                             "under the county)")
    parser.add_argument("--profile-events", type=int, default=10_000)
    parser.add_argument("--sizes", type=ints, default=[10_000, 100_000, 1_000_000],
                        help="store sizes for the incremental sync (10000,100000,1000000)")
    parser.add_argument("--growth-villages", type=int, default=4,
                        help="villages that write the grown store (4)")
    parser.add_argument("--new-events", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--bundle-sizes", type=ints, default=[1, 10, 100, 1000])
    parser.add_argument("--batch", type=int, default=1000, help="append_many batch (1000)")
    parser.add_argument("--budget-minutes", type=float, default=0,
                        help="skip a store size whose growth is projected past this many "
                             "minutes (0 = no limit)")
    parser.add_argument("--no-sync-profile", action="store_true",
                        help="skip the profiled extra repetition at the largest store")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to create the nodes (default: a temporary directory)")
    parser.add_argument("--out", default=str(HERE / "SYNC_RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    args = parser.parse_args(argv)
    if args.quick:
        args.merge_events, args.profile_events = 2_000, 1_000
        args.sizes = [10_000, 20_000]
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - {"merge", "incremental", "bundles"}:
        parser.error(f"unknown part(s) {sorted(parts - {'merge', 'incremental', 'bundles'})}")
    args.sizes = sorted(args.sizes)

    started = time.perf_counter()
    info = machine()
    code_start, load_start = code_version(), load()
    sections = []
    with tempfile.TemporaryDirectory(prefix="xinfang-bench-sync-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        where = filesystem(tmp)
        if "merge" in parts:
            merged = run_merge(tmp / "merge", args.merge_events, args.villages, args.townships,
                               args.batch, args.profile_events)
            sections.append(report_merge(merged))
            shutil.rmtree(tmp / "merge", ignore_errors=True)
        if "incremental" in parts:
            grown = run_incremental(tmp / "incremental", args.sizes, args.growth_villages,
                                    args.batch, args.new_events, args.reps,
                                    args.budget_minutes * 60, not args.no_sync_profile)
            sections.append(report_incremental(grown))
            shutil.rmtree(tmp / "incremental", ignore_errors=True)
        if "bundles" in parts:
            sized = run_bundles(tmp / "bundles", args.bundle_sizes, args.batch)
            sections.append(report_bundles(sized))
    now = dt.datetime.now().astimezone()
    code_end = code_version()
    command = "python benchmarks/bench_sync.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    section = "\n".join([
        f"## {now:%Y-%m-%d %H:%M %Z}: {', '.join(sorted(parts))}"
        + (" (quick)" if args.quick else ""),
        "",
        f"- machine: {info['platform']}; {info['cpu']}, {info['cores']} cores",
        f"- Python {info['python']}, cryptography {info['cryptography']}, "
        f"SQLite {info['sqlite']}, sqlite-utils {info['sqlite-utils']}",
        f"- code {code_start}" + (f" at the start, {code_end} at the end (the library changed "
                                  "during the run; the start's code is what ran)"
                                  if code_end != code_start else "")
        + f"; load average (1/5/15 min) {load_start} at the start, {load()} at the end; "
        f"run took {(time.perf_counter() - started) / 60:.1f} min",
        f"- databases on {where}; `{command.strip()}`",
        "",
        "\n\n".join(sections),
    ])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
