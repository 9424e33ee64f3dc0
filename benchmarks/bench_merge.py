"""A county merging its villages: the fold a page at a time against one event at a time.

The county applies every page its villages send (``send.pages_for`` against the
county's frontier, ``receive.apply_page``), twice from the same pristine copy:
once as ``apply_page`` folds (a page at a time where ``Admission.batch`` is
used) and once with the fold forced to one event at a time
(``Admission.page_fold = False``), the reference. Beside them, in the same run,
the floors: a bare SQLite insert of the same (raw, sig) bytes into a fresh file
with the same PRAGMAs (WAL, ``synchronous=FULL``) in transactions of the pages'
sizes (the median of three runs), and bare Ed25519 verification of the same
signatures. On the first pages of each merge it counts the SQL statements the
connection runs per applied event (``set_trace_callback``), by kind, and
profiles where the time goes (cProfile): the fold's share, the signatures',
the log insert's.

Both merges must end with byte-identical views (``fold.views_digest``); the
run stops if they do not.

    python benchmarks/bench_merge.py                       # 100,000 events, 20 villages
    python benchmarks/bench_merge.py --events 20000 --out -

Results are appended to ``benchmarks/MERGE_RESULTS.md``. Synthetic data only
(the case stream of ``bench_sync.py``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import datetime as dt
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from xinfang.core import fold
from xinfang.core.admission import Admission
from xinfang.core.event import Event
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.sync import receive, send, wire

import bench_sync
from bench_sync import COUNTY, Progress, Tree, bare_insert, bare_verify, profile_rows, say
from common import Rate, Stopwatch, code_version, filesystem, machine, publish

HERE = Path(__file__).resolve().parent
HEADER = """# County merge: the fold a page at a time

Appended by `benchmarks/bench_merge.py`: a county applies every page of its
villages (`receive.apply_page`), with the fold a page at a time and with the
fold one event at a time (the reference), beside a bare SQLite insert of the
same bytes and bare Ed25519 verification measured in the same run; SQL
statements per applied event; where the time goes (cProfile).
"""

#: whether this code has the page fold at all (an older checkout folds one at a time)
HAS_PAGE_FOLD = hasattr(Admission, "page_fold")


@contextlib.contextmanager
def one_at_a_time() -> Iterator[None]:
    """Force the reference fold: every event folded as it is admitted."""
    if not HAS_PAGE_FOLD:
        yield
        return
    before = Admission.page_fold
    Admission.page_fold = False
    try:
        yield
    finally:
        Admission.page_fold = before


def build(base: Path, events: int, villages: int, townships: int, batch: int
          ) -> tuple[Path, list[tuple[str, wire.Page]], Rate]:
    """Villages write ``events`` case events; the pristine county and every page for it."""
    tree = Tree(base, villages, townships)
    per = [events // villages + (1 if i < events % villages else 0) for i in range(villages)]
    progress = Progress("villages write (append_many)", events)
    with Stopwatch() as watch:
        for village, stream, n in zip(tree.villages, tree.streams, per):
            bench_sync.write_events(village, stream, n, batch, progress)
    progress.end()
    local = watch.rate(f"`Node.append_many` at the villages, batches of {batch:,}", events)
    pristine = base / "county-pristine"
    tree.county.db.execute("pragma wal_checkpoint(truncate)")
    shutil.copytree(tree.county.home, pristine)
    frontier = wire.frontier(tree.county.db)
    built = [(village.info.author, page) for village in tree.villages
             for page in send.pages_for(village, COUNTY, frontier)]
    tree.close()
    return pristine, built, local


def merge(pristine: Path, work: Path, built: list[tuple[str, wire.Page]], label: str
          ) -> tuple[Rate, str, int]:
    """Every page applied to a fresh copy of the county: the rate, the views digest."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    county = Node.open(work, pm=get_plugin_manager())
    total = sum(len(page.events) for _, page in built)
    progress = Progress(label, total)
    with Stopwatch() as watch:
        applied = 0
        for peer, page in built:
            result = receive.apply_page(county, page, peer=peer)
            if result.refused:
                raise SystemExit(f"refused: {result.refused[0]}")
            applied += result.applied
            progress.add(len(page.events))
    progress.end()
    digest = fold.views_digest(county.db, county.registry)
    conflicts = county.db.execute("select count(*) from conflicts").fetchone()[0]
    county.close()
    return watch.rate(label, applied), digest, conflicts


def median_insert(base: Path, pages: list[list[Event]], tries: int = 3) -> Rate:
    """The bare insert's median of ``tries`` runs, each into a fresh file: its
    fsyncs vary more from run to run than anything else measured here."""
    rates = []
    for attempt in range(tries):
        directory = base / f"bare-{attempt}"
        directory.mkdir()
        rates.append(bare_insert(directory, pages))
        shutil.rmtree(directory)
    return sorted(rates, key=lambda rate: rate.per_second)[tries // 2]


_LITERAL = re.compile(r"'(?:[^']|'')*'|x'[0-9a-fA-F]*'|\b\d+\b")


def statement_kind(sql: str) -> str:
    """A statement with its literals taken out, so like statements count together."""
    return _LITERAL.sub("?", " ".join(sql.split()))[:100]


def first_pages(built: list[tuple[str, wire.Page]], events: int) -> list[tuple[str, wire.Page]]:
    chosen, total = [], 0
    for peer, page in built:
        if total >= events:
            break
        chosen.append((peer, page))
        total += len(page.events)
    return chosen


def apply_all(county: Node, pages: list[tuple[str, wire.Page]]) -> int:
    return sum(receive.apply_page(county, page, peer=peer).applied for peer, page in pages)


def count_statements(pristine: Path, work: Path, pages: list[tuple[str, wire.Page]]
                     ) -> dict[str, Any]:
    """SQL statements the county's connection runs per applied event, by kind."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    county = Node.open(work, pm=get_plugin_manager())
    kinds: collections.Counter = collections.Counter()
    county.db.conn.set_trace_callback(lambda sql: kinds.update([statement_kind(sql)]))
    applied = apply_all(county, pages)
    county.db.conn.set_trace_callback(None)
    county.close()
    return {"events": applied, "total": sum(kinds.values()), "kinds": kinds.most_common(12),
            "paged": any(kind.startswith("savepoint fold_page") for kind in kinds)}


#: (label, file ending, function) of what the profile names; cumulative times
PROFILED = (
    ("signature verification", "core/signed.py", "signature_valid"),
    ("admission checks (with signatures)", "core/admission.py", "check"),
    ("log insert", "core/store.py", "insert_event"),
    ("fold, one at a time", "core/fold.py", "apply"),
    ("fold, a page at a time", "core/page_fold.py", "apply_page"),
)


def profile(pristine: Path, work: Path, pages: list[tuple[str, wire.Page]]) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    county = Node.open(work, pm=get_plugin_manager())
    profiler = cProfile.Profile()
    applied = profiler.runcall(apply_all, county, pages)
    county.close()
    total, rows = profile_rows(profiler)
    shares = {}
    for label, ending, function in PROFILED:
        found = [r["cumtime"] for r in rows
                 if r["where"].split(":")[0].endswith(ending) and r["function"] == function]
        if found:
            shares[label] = max(found) / total
    return {"events": applied, "total": total, "shares": shares, "top": rows[:12]}


def run(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    say(f"== a county merges {args.events:,} events from {args.villages} villages ==")
    pristine, built, local = build(base, args.events, args.villages, args.townships, args.batch)
    events = sum(len(page.events) for _, page in built)
    work = base / "county-work"
    paged_rate, paged_digest, conflicts = merge(pristine, work, built, "apply_page (as it folds)")
    with one_at_a_time():
        single_rate, single_digest, _ = merge(pristine, work, built,
                                              "apply_page, fold one event at a time")
    if paged_digest != single_digest:
        raise SystemExit("the page fold and the fold one at a time give different views")
    all_events = [e for _, page in built for e in page.events]
    say("  floors: bare insert (median of 3), bare Ed25519 …")
    insert = median_insert(base, [list(page.events) for _, page in built])
    verify = bare_verify(all_events)
    sample = first_pages(built, args.sample_events)
    say(f"  statements and cProfile over the first {args.sample_events:,} events …")
    paged_statements = count_statements(pristine, work, sample)
    paged_profile = profile(pristine, work, sample)
    with one_at_a_time():
        single_statements = count_statements(pristine, work, sample)
        single_profile = profile(pristine, work, sample)
    return {"events": events, "villages": args.villages, "townships": args.townships,
            "pages": len(built), "page_size": max(len(p.events) for _, p in built),
            "conflicts": conflicts, "local": local, "paged": paged_rate, "single": single_rate,
            "insert": insert, "verify": verify, "digest": paged_digest,
            "paged_statements": paged_statements, "single_statements": single_statements,
            "paged_profile": paged_profile, "single_profile": single_profile}


def fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"


def report(r: dict[str, Any]) -> str:
    insert, verify = r["insert"], r["verify"]
    lines = [
        f"{r['villages']} villages under {r['townships']} townships, {r['events']:,} case "
        f"events in {r['pages']:,} pages of up to {r['page_size']} events, each applied in its "
        f"own transaction; fold conflicts: {r['conflicts']}; both merges end with views "
        f"digest `{r['digest'][:16]}…`.",
        "",
        "| measure | events/s | µs/event | CPU µs/event | of bare insert |",
        "|---|---:|---:|---:|---:|",
    ]
    for rate in (r["paged"], r["single"], insert, verify, r["local"]):
        lines.append(f"| {rate.label} | {fmt(rate.per_second)} | {fmt(rate.micros)} | "
                     f"{fmt(rate.cpu_micros)} | {rate.per_second / insert.per_second:.1%} |")
    paged = r["paged"]
    rest = max(paged.cpu_micros - verify.cpu_micros, 1e-9)
    lines += ["", f"Speed-up of the page fold over the fold one event at a time, same run: "
                  f"{paged.per_second / r['single'].per_second:.2f}× in events/s, "
                  f"{r['single'].cpu_micros / paged.cpu_micros:.2f}× in CPU. Without a "
                  f"signature check per event, estimated as the page fold's CPU "
                  f"µs/event less bare Ed25519's: {fmt(rest)} µs, at most "
                  f"{fmt(1e6 / rest)} events/s CPU-bound, "
                  f"{1e6 / rest / insert.per_second:.1%} of the bare insert."]
    lines += ["", f"SQL statements per applied event and cProfile shares (first "
                  f"{r['paged_statements']['events']:,} events):", "",
              "| | statements/event | " + " | ".join(label for label, *_ in PROFILED) + " |",
              "|---|---:|" + "---:|" * len(PROFILED)]
    for name, key in (("as it folds", "paged"), ("one at a time", "single")):
        statements, prof = r[f"{key}_statements"], r[f"{key}_profile"]
        shares = " | ".join(f"{prof['shares'][label]:.0%}" if label in prof["shares"] else "—"
                            for label, *_ in PROFILED)
        lines.append(f"| {name} | {statements['total'] / statements['events']:.1f} | {shares} |")
    for name, key in (("as it folds", "paged"), ("one at a time", "single")):
        statements = r[f"{key}_statements"]
        lines += ["", f"Most frequent statements, {name} (per event):", ""]
        lines += [f"- {n / statements['events']:.2f} `{kind}`"
                  for kind, n in statements["kinds"]]
    prof = r["paged_profile"]
    lines += ["", f"cProfile, as it folds (total {prof['total']:.2f} s), top by cumulative "
                  "time:", "", "| function | where | calls | tottime s | cumtime s |",
              "|---|---|---:|---:|---:|"]
    lines += [f"| `{row['function']}` | {row['where']} | {row['calls']:,} | "
              f"{row['tottime']:.2f} | {row['cumtime']:.2f} |" for row in prof["top"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--villages", type=int, default=20)
    parser.add_argument("--townships", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="append_many batch (1000)")
    parser.add_argument("--sample-events", type=int, default=5_000,
                        help="events counted and profiled (5000)")
    parser.add_argument("--label", default="", help="a note for the heading (e.g. before)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--out", default=str(HERE / "MERGE_RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = machine()
    code = code_version()
    with tempfile.TemporaryDirectory(prefix="xinfang-bench-merge-", dir=args.dir) as tmp:
        where = filesystem(Path(tmp))
        result = run(args, Path(tmp))
    now = dt.datetime.now().astimezone()
    command = "python benchmarks/bench_merge.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    section = "\n".join([
        f"## {now:%Y-%m-%d %H:%M %Z}: {result['events']:,} events"
        + (f" ({args.label})" if args.label else ""),
        "",
        f"- machine: {info['platform']}; {info['cpu']}, {info['cores']} cores",
        f"- Python {info['python']}, cryptography {info['cryptography']}, "
        f"SQLite {info['sqlite']}, sqlite-utils {info['sqlite-utils']}",
        f"- code {code}; `apply_page` folds "
        f"{'a page at a time' if result['paged_statements']['paged'] else 'one event at a time'}"
        f"; run took "
        f"{(time.perf_counter() - started) / 60:.1f} min; databases on {where}",
        f"- `{command.strip()}`",
        "",
        report(result),
    ])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
