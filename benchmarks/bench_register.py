"""Interactive registration (``api.register_case``) on a small node and on a large one.

A person at a desk registers one case at a time, one event and one
transaction each. Whatever that path reads must not grow with the log, or a
county holding a few years of cases answers more slowly every month. This
benchmark measures it, in the same run, on two county nodes:

* a small node holding ``--small`` events (1,000) and a large one holding
  ``--large`` (1,000,000), both built with the batched pipeline
  (``Node.append_many``, as ``bench_append.py`` does) from the same seeded mix
  of 信访事项 events;
* the same ``--registrations`` cases (200), registered alternately on the two
  nodes, so that a change in the machine's load hits both alike; each timed on
  its own (wall and CPU), the median compared;
* every SQL statement one registration runs, caught with SQLite's trace
  callback together with the line of code that ran it, and its
  ``EXPLAIN QUERY PLAN`` on each node: a ``SCAN`` of a table that grows with
  the log is named, with its plan and its line; every ``select`` among them is
  run again on its own on each node, so a statement that grows shows its cost.

    python benchmarks/bench_register.py                         # 1k and 1M events
    python benchmarks/bench_register.py --node /var/tmp/big     # keep the 1M node there, reuse it
    python benchmarks/bench_register.py --large 20000 --out -   # quick, no file written

Results are appended to ``benchmarks/REGISTER_RESULTS.md``. Only synthetic
data: ID numbers in region 990000 (assigned to no place), names like 赵某甲.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import attrs

import xinfang
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.demo.synthetic import KINDS, random_id, random_name, random_phone
from xinfang.plugins.cases import api

from bench_append import (API_TODAY, CATEGORIES, CHANNELS, COUNTY, REQUESTS, VILLAGES,
                          Executor, Workload)
from common import REPO, filesystem, machine, publish

HERE = Path(__file__).resolve().parent
#: the code measured: the checkout, or a copy of a commit put first on PYTHONPATH
PACKAGE = Path(xinfang.__file__).resolve().parent
#: the measured cases are received on this day: the last year the built nodes fill
RECEIVED = "2025-12-22"
#: statements whose plan is looked at; transaction control has none
PLANNED = ("select", "insert", "update", "delete", "replace", "with")


# -- machine ---------------------------------------------------------------------


def lscpu() -> str:
    """The first 12 lines of ``lscpu``, as every results file records the machine."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "(lscpu not available)"
    return "\n".join(out.splitlines()[:12])


def code_state() -> str:
    """Which code ran: the checkout with the files changed in it, or an exported commit."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, timeout=10).stdout.strip()
    if PACKAGE != REPO:
        return (f"{head or '?'} exported unchanged (`git archive`) to {PACKAGE}, on "
                "PYTHONPATH; the benchmark scripts from the checkout")
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=REPO, capture_output=True, text=True, timeout=10).stdout
    files = [line[3:] for line in changed.splitlines() if not line[3:].startswith("benchmarks/")]
    return (head or "?") + (f" with changes in {', '.join(files)}" if files else " unchanged")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def say(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


# -- the nodes -------------------------------------------------------------------


def build_node(home: Path, events: int, batch: int, seed: int) -> Node:
    """A county node holding ``events`` events of the benchmark mix, or the one at ``home``.

    A node already at ``home`` is reused as it is (building 1M events takes
    minutes); its event count is what the results report.
    """
    if (home / "xinfang.db").exists():
        node = Node.open(home, pm=get_plugin_manager())
        node.operator = "基准测试员"
        say(f"reusing the node at {home}: {count_events(node):,} events")
        return node
    node = Node.init(home, level="county", area=COUNTY, name="示例县信访局", root=True,
                     pm=get_plugin_manager())
    node.operator = "基准测试员"
    stream = iter(Workload(seed, expected_cases=max(events // 4, 1)))
    executor = Executor(node)
    start, done = time.perf_counter(), 0
    while done < events:
        size = min(batch, events - done)
        node.append_many([executor.draft(next(stream)) for _ in range(size)])
        done += size
        rate = done / max(time.perf_counter() - start, 1e-9)
        say(f"\r  building {home.name}: {done:,}/{events:,} events, {rate:,.0f}/s, "
            f"ETA {(events - done) / rate / 60:.1f} min   ", end="")
    say("")
    conflicts = node.db.execute("select count(*) from conflicts").fetchone()[0]
    if conflicts:
        raise SystemExit(f"the built node folded {conflicts} conflicts: the workload is wrong")
    return node


def count_events(node: Node) -> int:
    return node.db.execute("select count(*) from events").fetchone()[0]


def case_inputs(count: int, seed: int) -> list[api.CaseInput]:
    """``count`` cases to register at the desk, 15% of them a petitioner seen before.

    A petitioner seen before is tagged as the same person and, in the same
    category within the window, flagged 重复访; both run on every
    registration, found or not.
    """
    rng = random.Random(seed)
    seen: list[api.PetitionerInput] = []
    inputs = []
    for _ in range(count):
        if seen and rng.random() < 0.15:
            person = rng.choice(seen)
        else:
            person = api.PetitionerInput(name=random_name(rng), id_number=random_id(rng),
                                         phone=random_phone(rng),
                                         address=f"示例村{rng.randrange(1, 12)}组")
            seen.append(person)
        inputs.append(api.CaseInput(
            petitioners=(person,), channel=rng.choice(CHANNELS), category=rng.choice(CATEGORIES),
            kind=rng.choice(KINDS), request=rng.choice(REQUESTS).format(
                n=rng.randint(2, 9), y=rng.randint(2015, 2021)),
            received=RECEIVED, area=rng.choice(VILLAGES)))
    return inputs


# -- timing ----------------------------------------------------------------------


@attrs.frozen
class Timing:
    """Milliseconds of one registration, wall clock and this process's CPU."""

    wall: float
    cpu: float


def register_once(node: Node, data: api.CaseInput) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    api.register_case(node, data, today=API_TODAY)
    return Timing(1e3 * (time.perf_counter() - wall), 1e3 * (time.process_time() - cpu))


def alternate(nodes: list[Node], inputs: list[api.CaseInput], warmup: int
              ) -> list[list[Timing]]:
    """Register every input on every node in turn; the first ``warmup`` are not kept."""
    timings: list[list[Timing]] = [[] for _ in nodes]
    for done, data in enumerate(inputs, 1):
        for index, node in enumerate(nodes):
            timing = register_once(node, data)
            if done > warmup:
                timings[index].append(timing)
        say(f"\r  registering: {done}/{len(inputs)} on each node   ", end="")
    say("")
    return timings


def split(node: Node, inputs: list[api.CaseInput]) -> dict[str, tuple[float, float]]:
    """Wall milliseconds per registration from the start of each statement to the start of
    the next (or the end of the registration), by statement template: where the time of
    a registration goes, SQLite's own work and the Python around it, ``COMMIT`` (the
    fsync) included. Returns (ms per registration, statements per registration)."""
    marks: list[tuple[float, str]] = []
    totals: dict[str, float] = collections.defaultdict(float)
    counts: collections.Counter = collections.Counter()
    node.db.conn.set_trace_callback(lambda sql: marks.append((time.perf_counter(), sql)))
    try:
        for data in inputs:
            marks.clear()
            api.register_case(node, data, today=API_TODAY)
            end = time.perf_counter()
            for (start, sql), after in zip(marks, [m[0] for m in marks[1:]] + [end]):
                template = Statement(sql, "").template
                totals[template] += after - start
                counts[template] += 1
    finally:
        node.db.conn.set_trace_callback(None)
    return {t: (1e3 * totals[t] / len(inputs), counts[t] / len(inputs)) for t in totals}


def resident(path: Path) -> str:
    """How much of a file the OS page cache holds (``fincore``), as 'resident / size'."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE",
                              str(path)], capture_output=True, text=True, timeout=30).stdout
        held, size = (int(x) for x in out.split()[:2])
    except (OSError, ValueError):
        return "unknown (no fincore)"
    return f"{held / 2**20:,.0f} of {size / 2**20:,.0f} MiB"


@attrs.frozen
class Summary:
    label: str
    events: int
    cases: int
    count: int
    median: float
    p90: float
    mean: float
    cpu_median: float

    @classmethod
    def of(cls, label: str, node: Node, timings: list[Timing]) -> "Summary":
        walls = sorted(t.wall for t in timings)
        return cls(label, count_events(node),
                   node.db.execute("select count(*) from cases").fetchone()[0], len(walls),
                   statistics.median(walls), walls[int(0.9 * (len(walls) - 1))],
                   statistics.fmean(walls), statistics.median(t.cpu for t in timings))


# -- what one registration runs --------------------------------------------------


@attrs.frozen
class Statement:
    """One statement as SQLite ran it (parameters expanded) and the line that ran it."""

    sql: str
    where: str

    @property
    def template(self) -> str:
        """The statement with its literals replaced by ``?``, to pair it across nodes."""
        text = re.sub(r"x'[0-9a-f]*'", "?", self.sql, flags=re.I)
        text = re.sub(r"'(?:[^']|'')*'", "?", text)
        return re.sub(r"\b\d+(?:\.\d+)?\b", "?", text)

    @property
    def planned(self) -> bool:
        return self.sql.lstrip().split(None, 1)[0].lower() in PLANNED


def caller() -> str:
    """The innermost line of xinfang's own code (not a benchmark's) on the stack."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if (path.is_relative_to(PACKAGE) and not path.is_relative_to(HERE)
                and not path.is_relative_to(PACKAGE / "benchmarks")
                and ".venv" not in path.parts):
            return f"{path.relative_to(PACKAGE)}:{frame.lineno} `{frame.name}`"
    return "?"


def trace_one(node: Node, data: api.CaseInput) -> list[Statement]:
    statements: list[Statement] = []
    node.db.conn.set_trace_callback(lambda sql: statements.append(Statement(sql, caller())))
    try:
        api.register_case(node, data, today=API_TODAY)
    finally:
        node.db.conn.set_trace_callback(None)
    return statements


def reader(node: Node) -> sqlite3.Connection:
    """A read-only connection to the node's database, for plans and re-runs."""
    return sqlite3.connect(f"file:{node.home / 'xinfang.db'}?mode=ro", uri=True)


def plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    try:
        return [row[3] for row in conn.execute("explain query plan " + sql)]
    except sqlite3.Error as exc:  # a statement only valid inside its transaction
        return [f"(no plan: {exc})"]


def scans(lines: list[str]) -> list[str]:
    """The lines of a plan that read a whole table or index, not a range of it."""
    return [line for line in lines if line.startswith("SCAN") and "CONSTANT ROW" not in line]


def scanned_table(line: str, sql: str) -> str:
    """The table a ``SCAN x`` line reads (``x`` may be an alias in ``sql``)."""
    name = line.split()[1]
    alias = re.search(rf"\b(?:from|join)\s+\[?(\w+)\]?\s+(?:as\s+)?{re.escape(name)}\b", sql,
                      flags=re.I)
    return alias.group(1) if alias else name


def rows_of(conn: sqlite3.Connection, table: str) -> int | None:
    try:
        return conn.execute(f"select count(*) from [{table}]").fetchone()[0]
    except sqlite3.Error:
        return None


def rerun(conn: sqlite3.Connection, sql: str, repeat: int) -> float:
    """Median microseconds of running a ``select`` on its own, all rows fetched."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append(1e6 * (time.perf_counter() - start))
    return statistics.median(times)


@attrs.frozen
class Traced:
    """A statement of one registration, on the small and the large node side by side."""

    template: str
    where: str
    sql_small: str
    sql_large: str
    plan_small: tuple[str, ...]
    plan_large: tuple[str, ...]
    micros_small: float | None
    micros_large: float | None


def pair(small: list[Statement], large: list[Statement], conns: tuple[sqlite3.Connection, ...],
         repeat: int) -> list[Traced]:
    """The statements of the two traces, matched by position and template."""
    if [s.template for s in small] != [s.template for s in large]:
        say("  the two registrations ran different statements; pairing by template only")
    by_template: dict[str, list[Statement]] = collections.defaultdict(list)
    for statement in large:
        by_template[statement.template].append(statement)
    out = []
    for statement in small:
        if not statement.planned or not by_template[statement.template]:
            continue
        other = by_template[statement.template].pop(0)
        is_select = statement.sql.lstrip().lower().startswith(("select", "with"))
        out.append(Traced(
            statement.template, statement.where, statement.sql, other.sql,
            tuple(plan(conns[0], statement.sql)), tuple(plan(conns[1], other.sql)),
            rerun(conns[0], statement.sql, repeat) if is_select else None,
            rerun(conns[1], other.sql, repeat) if is_select else None))
    return out


# -- reporting -------------------------------------------------------------------


def short(sql: str, width: int = 160) -> str:
    text = " ".join(sql.split())
    return (text[:width] + " …") if len(text) > width else text


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def split_table(r: dict[str, Any]) -> list[str]:
    small, large = r["splits"]
    if not r["split"]:
        return []
    templates = sorted(set(small) | set(large),
                       key=lambda t: -(large.get(t, (0, 0))[0] - small.get(t, (0, 0))[0]))
    total = [sum(ms for ms, _ in side.values()) for side in (small, large)]
    lines = ["", f"Where the wall time of a registration goes ({r['split']} more registrations "
                 "on each node, alternately, traced): from the start of each statement to the "
                 "start of the next, so each row holds SQLite's work on the statement and the "
                 "Python after it; `COMMIT` holds the fsync. Largest growth first:", "",
             "| statement | runs | ms small | ms large | large − small |",
             "|---|---:|---:|---:|---:|"]
    for template in templates[:r["top"]]:
        (ms_small, runs), (ms_large, _) = small.get(template, (0, 0)), large.get(template, (0, 0))
        lines.append(f"| `{cell(short(template, 110))}` | {runs:.1f} | {ms_small:.3f} | "
                     f"{ms_large:.3f} | {ms_large - ms_small:+.3f} |")
    commit = [side.get("COMMIT", (0, 0))[0] for side in (small, large)]
    lines += [f"| **all statements** | | **{total[0]:.2f}** | **{total[1]:.2f}** | "
              f"{total[1] - total[0]:+.2f} |",
              f"| of which everything but `COMMIT` | | {total[0] - commit[0]:.2f} | "
              f"{total[1] - commit[1]:.2f} | {total[1] - commit[1] - total[0] + commit[0]:+.2f} |",
              ""]
    return lines


def grouped(traced) -> list[tuple[Traced, int]]:
    """Statements run more than once (same text and line) listed once, with how often."""
    runs: dict[tuple[str, str], list[Traced]] = {}
    for t in traced:
        runs.setdefault((t.template, t.where), []).append(t)
    return [(ts[0], len(ts)) for ts in runs.values()]


def report(r: dict[str, Any]) -> str:
    small, large = r["summaries"]
    ratio = small.median / large.median
    ratio_cpu = small.cpu_median / large.cpu_median
    lines = [
        "| node | events | cases | registrations timed | median ms | p90 ms | mean ms | "
        "CPU median ms | registrations/s (1 / median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in (small, large):
        lines.append(f"| {s.label} | {s.events:,} | {s.cases:,} | {s.count} | {s.median:.2f} | "
                     f"{s.p90:.2f} | {s.mean:.2f} | {s.cpu_median:.2f} | {1e3 / s.median:,.0f} |")
    goal = "met" if ratio >= 0.9 else "NOT met"
    lines += [
        "",
        f"Throughput of the large node against the small one (median against median): "
        f"**{ratio:.2f}** (CPU: {ratio_cpu:.2f}); goal ≥ 0.9: {goal}.",
        "",
        f"One registration runs {r['statements'][0]} SQL statements on the small node and "
        f"{r['statements'][1]} on the large one ({r['planned']} with a query plan).",
        "",
    ]
    lines += ["Statements whose plan on the large node reads a whole table or index "
              "(`SCAN`), with the rows of what they scan; *grows* marks a table with many "
              "times the rows on the large node:", ""]
    scanning = grouped(t for t in r["traced"] if scans(list(t.plan_large)))
    if scanning:
        lines += ["| statement (large node) | runs | plan | scanned: rows small / large | "
                  "where |", "|---|---:|---|---|---|"]
        for t, runs in scanning:
            scanned = []
            for line in scans(list(t.plan_large)):
                table = scanned_table(line, t.sql_large)
                counts = r["rows"][0].get(table), r["rows"][1].get(table)
                grows = (None not in counts and counts[1] > max(100, 4 * counts[0]))
                scanned.append(f"{table}: {counts[0]} / {counts[1]}"
                               + (" **grows**" if grows else ""))
            lines.append(f"| `{cell(short(t.sql_large))}` | {runs} | "
                         f"{cell('; '.join(t.plan_large))} | {'; '.join(scanned)} | "
                         f"{cell(t.where)} |")
    else:
        lines.append("(none)")
    selects = [(t, runs) for t, runs in grouped(t for t in r["traced"]
                                                if t.micros_large is not None)]
    selects.sort(key=lambda item: -item[0].micros_large * item[1])
    lines += [
        "",
        f"Every `select` of the registration run again on its own (median of {r['repeat']}; "
        "statements run several times are listed once), slowest on the large node first:",
        "",
        "| statement (large node) | runs | plan (large node) | µs small | µs large | "
        "large / small | where |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for t, runs in selects[:r["top"]]:
        lines.append(f"| `{cell(short(t.sql_large, 110))}` | {runs} | "
                     f"{cell('; '.join(t.plan_large))} | {t.micros_small:,.0f} | "
                     f"{t.micros_large:,.0f} | "
                     f"{t.micros_large / max(t.micros_small, 1e-9):.1f} | {cell(t.where)} |")
    lines += split_table(r)
    total = [sum(t.micros_small * n for t, n in selects),
             sum(t.micros_large * n for t, n in selects)]
    lines += ["", f"All {sum(n for _, n in selects)} selects together: {total[0]:,.0f} µs on "
                  f"the small node, {total[1]:,.0f} µs on the large one."]
    return "\n".join(lines)


HEADER = """# Registration benchmarks

`benchmarks/bench_register.py` measures the interactive path, one
`api.register_case` per transaction, on a county node holding 1,000 events
and on one holding 1,000,000 (both built with `Node.append_many` from the
seeded mix of `bench_append.py`), registering the same cases alternately on
the two; and it lists every SQL statement one registration runs, with its
query plan on each node and the line of code that runs it. Each run appends
a section below:

    python benchmarks/bench_register.py --node /var/tmp/xinfang-1m

Reading a section: the ratio is the large node's registrations per second
against the small node's (1.0: the log's size costs nothing); a `SCAN` row
names a statement that reads a whole table, which is harmless only where the
table does not grow with the log (its rows on both nodes are given).
"""


# -- the run ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="events on the small node")
    parser.add_argument("--large", type=int, default=1_000_000, help="events on the large node")
    parser.add_argument("--registrations", type=int, default=200,
                        help="cases registered on each node, timed one by one (200)")
    parser.add_argument("--warmup", type=int, default=10, help="first registrations not kept")
    parser.add_argument("--split", type=int, default=60,
                        help="registrations more on each node, traced to split their time (60)")
    parser.add_argument("--batch", type=int, default=500, help="events per append_many (500)")
    parser.add_argument("--repeat", type=int, default=21, help="re-runs of each traced select")
    parser.add_argument("--top", type=int, default=12, help="selects listed in the results")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--node", type=Path, default=None,
                        help="directory of the large node: built there if missing, else reused")
    parser.add_argument("--out", default=str(HERE / "REGISTER_RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    args = parser.parse_args(argv)
    if args.registrations <= args.warmup:
        parser.error("--registrations must be more than --warmup")

    started = dt.datetime.now().astimezone()
    load_start = load()
    with tempfile.TemporaryDirectory(prefix="xinfang-register-") as tmp:
        tmp = Path(tmp)
        small = build_node(tmp / "small", args.small, args.batch, args.seed)
        large = build_node(args.node or tmp / "large", args.large, args.batch, args.seed)
        nodes = [small, large]
        inputs = case_inputs(args.registrations + 1 + args.split, args.seed + 1)
        say("tracing one registration on each node …")
        traces = [trace_one(node, inputs[0]) for node in nodes]
        cached = resident(large.home / "xinfang.db")
        timings = alternate(nodes, inputs[1:-args.split or None], args.warmup)
        say("splitting the time of a registration by statement …")
        splits = [{}, {}]
        for data in inputs[len(inputs) - args.split:] if args.split else ():
            for index, node in enumerate(nodes):
                for template, (ms, runs) in split(node, [data]).items():
                    old = splits[index].get(template, (0.0, 0.0))
                    splits[index][template] = (old[0] + ms / args.split, old[1] + runs / args.split)
        conns = tuple(reader(node) for node in nodes)
        traced = pair(*traces, conns, args.repeat)
        tables = {scanned_table(line, t.sql_large) for t in traced
                  for line in scans(list(t.plan_large))}
        rows = [{table: rows_of(conn, table) for table in tables} for conn in conns]
        for conn in conns:
            conn.close()
        summaries = [Summary.of(f"small ({args.small:,} built)", small, timings[0]),
                     Summary.of(f"large ({args.large:,} built)", large, timings[1])]
        where = filesystem(Path(args.node or tmp))
        for node in nodes:
            node.close()

    results = {"summaries": summaries, "traced": traced, "rows": rows,
               "statements": [len(t) for t in traces],
               "planned": sum(1 for s in traces[1] if s.planned),
               "repeat": args.repeat, "top": args.top, "splits": splits, "split": args.split,
               "cached": cached}
    info = machine()
    command = ["python benchmarks/bench_register.py"] + (argv if argv is not None else
                                                          sys.argv[1:])
    section = "\n".join([
        f"## {started:%Y-%m-%d %H:%M %Z}: register_case at {summaries[0].events:,} and "
        f"{summaries[1].events:,} events",
        "",
        "```", lscpu(), "```", "",
        f"- Python {info['python']}, SQLite {info['sqlite']}, sqlite-utils "
        f"{info['sqlite-utils']}, cryptography {info['cryptography']}; {info['platform']}",
        f"- code {code_state()}; load average (1/5/15 min) {load_start} at the start, "
        f"{load()} at the end",
        f"- databases on {where}; the large node's database in the OS page cache at the "
        f"start: {cached}; `{' '.join(command)}`",
        "",
        report(results),
    ])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
