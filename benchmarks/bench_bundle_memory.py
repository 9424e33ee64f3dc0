"""Peak memory of exporting and importing bundles of 1k, 10k and 100k events.

A village (directly under a county) writes the workload of ``bench_sync``
(``CaseStream``: case events as a village desk writes them); at each size
it exports a bundle to the county, and a pristine copy of the county (one
that has imported nothing) imports it. Each export and each import runs in
a fresh subprocess that reports its own RSS high-water mark
(``VmHWM``, see ``rss_mb``), so nothing a previous step allocated is
counted. The floor is the same subprocess doing nothing but
importing the bundle code and opening the node; what an operation costs is
its peak above that floor. ``--tracemalloc`` adds, in a further subprocess
per step, the Python heap's peak during the operation alone (slower: it
traces every allocation), which leaves out SQLite's page cache and the
allocator's slack.

    python benchmarks/bench_bundle_memory.py                       # 1k, 10k, 100k
    python benchmarks/bench_bundle_memory.py --sizes 1000 --out -  # smoke test
    python benchmarks/bench_bundle_memory.py --label before        # names the section

Results are appended to ``benchmarks/BUNDLE_RESULTS.md``. Only synthetic data.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import code_version, filesystem, machine, publish  # noqa: E402

HEADER = """# Bundle memory benchmarks

`benchmarks/bench_bundle_memory.py` measures the peak memory of exporting a
village's bundle to its county and of importing it there, at 1k, 10k and
100k events, each in a fresh subprocess (RSS high-water mark, `VmHWM`),
beside the floor of the same subprocess that only opens the node. Goal: a
peak of at most 100 MB at every size, memory that does not grow with the
bundle. Each run appends a section below; re-run with

    python benchmarks/bench_bundle_memory.py
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


# -- the subprocess ----------------------------------------------------------------


def rss_mb() -> float:
    """This process's RSS high-water mark in MB.

    On Linux, ``VmHWM`` of its own address space. Not ``ru_maxrss``: Linux
    folds into it the high-water mark of the address space ``exec`` replaced,
    which after ``subprocess``'s vfork is the parent's, so a child of a large
    benchmark process would report the parent's peak. Elsewhere ``ru_maxrss``
    (macOS reports bytes).
    """
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/self/status") as status:
            kib = next(line for line in status if line.startswith("VmHWM:")).split()[1]
        return int(kib) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def worker(action: str, home: str, path: str, trace: bool) -> dict[str, Any]:
    """One operation on the node at ``home``: its peak memory, time and outcome."""
    import tracemalloc

    from xinfang.core.node import Node
    from xinfang.core.plugins import get_plugin_manager
    from xinfang.sync import bundle

    node = Node.open(Path(home), pm=get_plugin_manager())
    if trace:
        tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {}
    if action == "export":
        summary = bundle.export_bundle(node, "示例县信访局", Path(path))
        result = {"events": summary.events, "pages": summary.pages, "bytes": summary.bytes}
    elif action == "import":
        pages: dict[str, float] = {}

        def progress(done: int, total: int) -> None:
            """After each page: the peaks so far, those of the pages alone at the last one."""
            pages["rss_mb"] = rss_mb()
            if trace:
                pages["heap_mb"] = tracemalloc.get_traced_memory()[1] / (1024 * 1024)

        summary = bundle.import_bundle(node, Path(path), progress=progress)
        result = {"events": summary.applied, "pages": summary.pages,
                  "refused": len(summary.refused), "pages_rss_mb": pages.get("rss_mb", 0.0),
                  "pages_heap_mb": pages.get("heap_mb", 0.0)}
    result.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)
    if trace:
        result["heap_mb"] = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
        tracemalloc.stop()
    node.close()
    result["rss_mb"] = rss_mb()
    return result


def run_worker(action: str, home: Path, path: Path | None = None,
               trace: bool = False) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", action, str(home),
               str(path or "-")] + (["--tracemalloc"] if trace else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{action} at {home} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- building the village ------------------------------------------------------------


def build(base: Path):
    """A county and one village enrolled under it; the pristine county copied aside."""
    from bench_sync import Tree

    tree = Tree(base, 1, townships=0)
    stream = tree.streams[0]
    tree.county.db.execute("pragma wal_checkpoint(truncate)")
    tree.close()
    shutil.copytree(base / "county", base / "county-pristine")
    return base / "village0", stream


def grow(home: Path, stream, events: int, batch: int) -> None:
    from bench_sync import Progress, write_events
    from xinfang.core.node import Node
    from xinfang.core.plugins import get_plugin_manager

    village = Node.open(home, pm=get_plugin_manager())
    village.operator = "基准测试员"
    held = village.db.execute("select count(*) from events where author = ?",
                              [village.info.author]).fetchone()[0]
    if events > held:
        progress = Progress(f"village writes up to {events:,}", events - held)
        write_events(village, stream, events - held, batch, progress)
        progress.end()
    village.db.execute("pragma wal_checkpoint(truncate)")
    village.close()


def measure(base: Path, sizes: list[int], batch: int, trace: bool) -> dict[str, Any]:
    village, stream = build(base)
    floors = {"village": run_worker("floor", village),
              "county": run_worker("floor", base / "county-pristine")}
    say(f"  floors: village {floors['village']['rss_mb']:.1f} MB, county "
        f"{floors['county']['rss_mb']:.1f} MB")
    rows = []
    for size in sorted(sizes):
        grow(village, stream, size, batch)
        path = base / f"b{size}.xfb"
        out = run_worker("export", village, path)
        county = base / f"county-{size}"
        shutil.copytree(base / "county-pristine", county)
        into = run_worker("import", county, path)
        if into["events"] != out["events"] or into["refused"]:
            raise SystemExit(f"exported {out['events']}, applied {into['events']}, "
                             f"refused {into['refused']}")
        row = {"size": size, "export": out, "import": into}
        if trace:
            shutil.rmtree(county)
            shutil.copytree(base / "county-pristine", county)
            again = base / f"b{size}-traced.xfb"
            row["export_heap"] = run_worker("export", village, again, True)["heap_mb"]
            traced = run_worker("import", county, path, True)
            row["import_heap"], row["import_pages_heap"] = (traced["heap_mb"],
                                                            traced["pages_heap_mb"])
            again.unlink()
        shutil.rmtree(county)
        say(f"  {size:>7,} events, {out['bytes'] / 1e6:.1f} MB bundle: export "
            f"{out['rss_mb']:.1f} MB, import {into['rss_mb']:.1f} MB "
            f"({into['events'] / into['wall']:,.0f} events/s)")
        rows.append(row)
    return {"floors": floors, "rows": rows}


# -- the report ---------------------------------------------------------------------


def report(result: dict[str, Any], trace: bool) -> str:
    fv, fc = result["floors"]["village"]["rss_mb"], result["floors"]["county"]["rss_mb"]
    lines = [f"Floors (a subprocess that imports the bundle code and opens the node; RSS "
             f"high-water mark, `VmHWM`): village {fv:.1f} MB, county {fc:.1f} MB. \"+\" is "
             "the peak above that floor. \"pages\" is the import's peak when its last page "
             "was applied, before the acknowledgement and the `xinfang_received` hook (at the "
             "county, the root, the case plugin's hook signs a `case.tag` for every case whose "
             "ID numbers arrived).", "",
             "| events | bundle MB | B/event | pages | export peak MB (+) | import peak MB (+) "
             "| import peak by the last page MB (+) | import events/s | import CPU µs/event |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        out, into, n = row["export"], row["import"], row["size"]
        lines.append(
            f"| {n:,} | {out['bytes'] / 1e6:.1f} | {out['bytes'] / n:.0f} | {out['pages']} | "
            f"{out['rss_mb']:.1f} (+{out['rss_mb'] - fv:.1f}) | "
            f"{into['rss_mb']:.1f} (+{into['rss_mb'] - fc:.1f}) | "
            f"{into['pages_rss_mb']:.1f} (+{into['pages_rss_mb'] - fc:.1f}) | "
            f"{into['events'] / into['wall']:,.0f} | {1e6 * into['cpu'] / into['events']:.0f} |")
    if trace:
        lines += ["", "Python heap peak during the operation alone (`tracemalloc`, a separate "
                      "run of each):", "",
                  "| events | export heap MB | import heap MB | import heap by the last page MB |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {row['size']:,} | {row['export_heap']:.1f} | {row['import_heap']:.1f} | "
                  f"{row['import_pages_heap']:.1f} |" for row in result["rows"]]
    return "\n".join(lines)


def ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=ints, default=[1_000, 10_000, 100_000])
    parser.add_argument("--batch", type=int, default=1000, help="append_many batch (1000)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also measure the Python heap's peak per operation (slower)")
    parser.add_argument("--label", default="", help="a word for the section's title")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to create the nodes (default: a temporary directory)")
    parser.add_argument("--out", default=str(HERE / "BUNDLE_RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    parser.add_argument("--worker", nargs=3, metavar=("ACTION", "HOME", "PATH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.tracemalloc)))
        return 0
    started = time.perf_counter()
    info, code, load_start = machine(), code_version(), load()
    with tempfile.TemporaryDirectory(prefix="xinfang-bench-bundle-", dir=args.dir) as tmp:
        where = filesystem(Path(tmp))
        result = measure(Path(tmp), args.sizes, args.batch, args.tracemalloc)
    now = dt.datetime.now().astimezone()
    command = "python benchmarks/bench_bundle_memory.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    section = "\n".join([
        f"## {now:%Y-%m-%d %H:%M %Z}" + (f": {args.label}" if args.label else ""), "",
        f"- machine: {info['platform']}; {info['cpu']}, {info['cores']} cores",
        f"- Python {info['python']}, cryptography {info['cryptography']}, "
        f"SQLite {info['sqlite']}",
        f"- code {code}; load average (1/5/15 min) {load_start} at the start, {load()} at "
        f"the end; run took {(time.perf_counter() - started) / 60:.1f} min",
        f"- databases on {where}; `{command.strip()}`", "",
        report(result, args.tracemalloc)])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
