"""What a 月报表 costs against folding the log it is made of.

Builds one county node holding ~100,000 events (~20,000 cases) with
``bench_append``'s seeded workload and batched pipeline, then measures, in
the same run:

* re-folding every view from the log (``fold.refold_all``, what ``xinfang
  rebuild`` does, without its before/after comparison);
* ``stats.monthly`` for a month, by area (one pass over ``cases`` and
  ``case_deadlines``, then the period, 环比, 同比 and the twelve-month trend
  grouped in Python), and again by category and for a whole year;
* ``stats.overdue`` as of that month's end;
* rendering the monthly result as xlsx.

The ratio report / fold says how far a report is from the cost of the data:
the report must stay a small fraction of a refold as the store grows.

    python benchmarks/bench_reports.py                 # ~100,000 events, into REPORTS_RESULTS.md
    python benchmarks/bench_reports.py --quick --out - # ~5,000 events, nothing written

Only synthetic data (the workload's: ID numbers in region 990000, names of
the form 赵某甲).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from xinfang.core import fold, reports
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager

from bench_append import COUNTY, Executor, Workload, run_pipeline
from common import Stopwatch, code_version, filesystem, machine, write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "REPORTS_RESULTS.md"
HEADER = """# Report benchmarks

`benchmarks/bench_reports.py` builds a county node of about 100,000 events
(about 20,000 cases, `bench_append`'s seeded workload) and times the offices'
reports against re-folding the views from the same log, in the same run.
*report / fold* is the report's wall time over the fold's: small and flat as
the store grows means a report costs a fraction of the data it reads.

    python benchmarks/bench_reports.py             # 100,000 events
    python benchmarks/bench_reports.py --quick --out -
"""
#: the workload's received dates run 2022-01 to 2025-12: a month near the end
PERIOD = "2025-11"
AS_OF = "2025-12-31"


def statements(node, work) -> dict[str, int]:
    """How many SQL statements ``work`` runs, and how many of them read the case views:
    the 月报表 must read them once, whatever periods and breakdowns it shows."""
    seen: list[str] = []
    node.db.conn.set_trace_callback(seen.append)
    try:
        work()
    finally:
        node.db.conn.set_trace_callback(None)
    reads = [s for s in seen if s.lstrip().lower().startswith("select")]
    return {"statements": len(seen), "reads of cases": sum(" cases" in s for s in reads),
            "reads of case_deadlines": sum("case_deadlines" in s for s in reads)}


def timed(label: str, work, repeat: int = 3):
    """The best of ``repeat`` wall times (and its CPU time): a report is read-only, so
    the later runs see the same data with a warm page cache."""
    best = None
    for _ in range(repeat):
        with Stopwatch() as watch:
            value = work()
        if best is None or watch.wall < best[0]:
            best = (watch.wall, watch.cpu, value)
    return label, best[0], best[1], best[2]


def run(events: int, batch: int, seed: int, directory: Path) -> dict:
    node = Node.init(directory / "county", level="county", area=COUNTY, name="示例县信访局",
                     root=True, pm=get_plugin_manager())
    node.operator = "基准测试"
    try:
        executor = Executor(node)
        stream = iter(Workload(seed, expected_cases=events // 5))
        print(f"building {events:,} events …", file=sys.stderr, flush=True)
        run_pipeline(executor, stream, events, batch)
        (cases,) = node.db.execute("select count(*) from cases").fetchone()
        (held,) = node.db.execute("select count(*) from events").fetchone()

        print("re-folding …", file=sys.stderr, flush=True)
        with Stopwatch() as refold:
            with node.db.atomic():
                folded = fold.refold_all(node.context)

        def report(name, **params):
            return lambda: reports.run_report(node, name, params)

        measures = [
            timed("stats.monthly, by area", report("stats.monthly", period=PERIOD)),
            timed("stats.monthly, by category", report("stats.monthly", period=PERIOD,
                                                         by="category")),
            timed("stats.monthly, a year", report("stats.monthly", period=PERIOD[:4])),
            timed("stats.overdue", report("stats.overdue", period=PERIOD)),
            timed("supervision.notice (通报)", report("supervision.notice", as_of=AS_OF)),
        ]
        monthly = measures[0][3]
        passes = statements(node, lambda: reports.run_report(node, "stats.monthly",
                                                             {"period": PERIOD}))
        measures.append(timed("render xlsx", lambda: reports.render(node.registry, monthly,
                                                                    "xlsx")))
        return {"events": held, "cases": cases, "folded": folded, "refold": refold,
                "measures": measures, "total": monthly.total, "overdue": len(measures[3][3].rows),
                "passes": passes, "notice": measures[4][3].total}
    finally:
        node.close()


def text(results: dict, args) -> str:
    m = machine()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    refold = results["refold"]
    total = results["total"]
    lines = [
        f"## {now}: {results['events']:,} events, {results['cases']:,} cases",
        "",
        f"- machine: {m['platform']}; {m['cpu']}, {m['cores']} cores",
        f"- Python {m['python']}, SQLite {m['sqlite']}, sqlite-utils {m['sqlite-utils']}",
        f"- code {code_version()}; load average at the end "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- databases on {filesystem(Path(tempfile.gettempdir()))}; seed {args.seed}; "
        f"`python benchmarks/bench_reports.py --events {args.events} --batch {args.batch}`",
        "",
        "| measure | wall s | CPU s | report / fold |",
        "|---|---:|---:|---:|",
        f"| fold: `fold.refold_all` over {results['folded']:,} events | {refold.wall:.2f} | "
        f"{refold.cpu:.2f} | 1 |",
    ]
    for label, wall, cpu, _ in results["measures"]:
        lines.append(f"| {label} (best of 3) | {wall:.3f} | {cpu:.3f} | "
                     f"{wall / refold.wall:.4f} |")
    lines += ["", f"{PERIOD} at the county: {total['cases']:,} cases, "
              f"{total['person_visits']:,} person-visits, timely acceptance "
              f"{total['timely_acceptance']}, on-time closure {total['on_time_closure']}; "
              f"overdue list {results['overdue']:,} deadlines.",
              "", "SQL run by one 月报表 (this period, the previous one, the same one a year "
              "earlier and the twelve trend months, a row per area): " + ", ".join(
                  f"{k} {v}" for k, v in results["passes"].items()) + ".",
              "", f"通报 as of {AS_OF}: " + ", ".join(
                  f"{k} {v:,}" for k, v in results["notice"].items()
                  if isinstance(v, int)) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in all (100000)")
    parser.add_argument("--quick", action="store_true", help="5,000 events: a smoke run")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction (500)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=str(RESULTS),
                        help="results file to append to, or - for the screen only")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 5_000
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        results = run(args.events, args.batch, args.seed, Path(tmp))
    section = text(results, args)
    print(section)
    if args.out != "-":
        write_results(Path(args.out), section, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
