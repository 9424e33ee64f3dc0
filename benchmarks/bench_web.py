"""What the web view's pages cost at a county of ~20,000 cases, over real HTTP.

Builds one county node of ~100,000 events (~20,000 cases) with
``bench_append``'s seeded workload and batched pipeline (as ``bench_reports``
does), adds a 经办人 account, serves the node with the real server
(``sync.server.BackgroundServer``: waitress, ``NodeApp``, every route), logs in
over HTTP and times, N requests each after one untimed warm-up, in the same run:

* the baseline: the stylesheet (``/static/web.css``), a request that reads no
  case data: the cost of HTTP, routing and the server itself;
* the 工作台 for a month of the workload (its 月报表 run once and kept until the
  log changes), and the 工作台 right after a 登记 through the form, when it must
  run the 月报表 again (the two halves of one "register, then look" round);
* the case list: the first page, a filtered page (status and category), a
  search over the request text, and a page deep in the list;
* a case page (one with a later repeat), and the 登记 POST itself;
* the 月报表's own page (``/reports/stats.monthly?run=1…``), if the node serves it.

Each line gives the median and the 95th percentile of the wall time seen by the
client, and the median over the baseline's median (the ratio holds better than
the absolute time on a shared machine). The goal: every page under 300 ms.

    python benchmarks/bench_web.py                    # ~100,000 events, into WEB_RESULTS.md
    python benchmarks/bench_web.py --quick --out -    # ~5,000 events, nothing written
    python benchmarks/bench_web.py --node /tmp/county # build once, reuse on the next run

Only synthetic data (the workload's: ID numbers in region 990000, names of the
form 赵某甲).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import os
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.demo.synthetic import random_id, random_name
from xinfang.sync.server import BackgroundServer
from xinfang.web import accounts

from bench_append import COUNTY, Executor, Workload, run_pipeline
from common import code_version, filesystem, machine, write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "WEB_RESULTS.md"
HEADER = """# Web page benchmarks

`benchmarks/bench_web.py` builds a county node of about 100,000 events (about
20,000 cases, `bench_append`'s seeded workload), serves it with the real server
and times the web view's pages over HTTP after logging in: median and 95th
percentile of the client's wall time over N requests each, and the median over
that of a bare static request (the stylesheet) in the same run. The goal: every
page under 300 ms at 20,000 cases.

    python benchmarks/bench_web.py                 # 100,000 events
    python benchmarks/bench_web.py --quick --out -
"""
#: the workload's received dates run 2022-01 to 2025-12: a month near the end
PERIOD = "2025-11"
USER, PASSWORD = "bench.handler", "bench-password-2026"
GOAL_MS = 300


class Client:
    """urllib with a cookie jar: a browser that logs in and asks for pages."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, form: dict | None = None) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.url + path, data=data,
                                         headers={"Accept": "text/html"})
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def hidden(self, path: str) -> dict[str, str]:
        """The hidden fields of the page's forms (the CSRF token, a login form's token)."""
        body = self.request(path)[1].decode("utf-8")
        return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))

    def login(self, name: str, password: str) -> None:
        form = {k: v for k, v in self.hidden("/login").items() if k != "next"}
        status, body = self.request("/login", {**form, "name": name, "password": password})
        if status != 200 or b'name="password"' in body:
            raise SystemExit(f"login failed: {status}")


def build(home: Path, events: int, batch: int, seed: int) -> None:
    node = Node.init(home, level="county", area=COUNTY, name="示例县信访局", root=True,
                     pm=get_plugin_manager())
    node.operator = "基准测试"
    try:
        print(f"building {events:,} events …", file=sys.stderr, flush=True)
        run_pipeline(Executor(node), iter(Workload(seed, expected_cases=events // 5)),
                     events, batch)
        accounts.add_user(node, USER, "handler", PASSWORD, area=COUNTY)
    finally:
        node.close()


def facts(home: Path) -> dict:
    with Node.open(home) as node:
        db = node.db
        (cases,) = db.execute("select count(*) from cases").fetchone()
        (events,) = db.execute("select count(*) from events").fetchone()
        (repeated,) = db.execute("select repeat_of from cases where repeat_of is not null "
                                 "order by received desc limit 1").fetchone()
    return {"cases": cases, "events": events, "case": repeated}


def timed(client: Client, path: str, count: int, before=None) -> dict:
    """One untimed warm-up, then ``count`` timed requests (``before`` runs untimed
    before each, e.g. a 登记 that changes the log)."""
    status, body = client.request(path)
    if status != 200:
        return {"status": status, "skipped": True}
    times = []
    for _ in range(count):
        if before is not None:
            before()
        started = time.perf_counter()
        status, body = client.request(path)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"{path}: status {status}")
    return summary(times, len(body))


def register(client: Client, rng: random.Random, times: list[float]):
    """A 登记 through the form, as an office does between two looks at the 工作台; the
    POST's wall time (with the case page it leads to) goes to ``times``."""
    def post() -> None:
        form = client.hidden("/cases/new")
        started = time.perf_counter()
        status, _body = client.request("/cases/new", {
            "csrf": form["csrf"], "p.name": random_name(rng), "p.id_number": random_id(rng),
            "channel": "visit", "category": "labour", "kind": "appeal",
            "request": "请求协调追讨拖欠的工资（基准测试）", "area": COUNTY})
        times.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"登记 failed: {status}")
    return post


def summary(times: list[float], size: int = 0) -> dict:
    times = sorted(times)
    return {"status": 200, "median": statistics.median(times),
            "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
            "max": times[-1], "bytes": size, "n": len(times)}


def run(home: Path, requests: int, changed: int) -> dict:
    found = facts(home)
    case, rng = found["case"], random.Random(7)
    pages = [
        ("baseline: /static/web.css", "/static/web.css", requests, None),
        ("工作台 (dashboard), log unchanged", f"/?period={PERIOD}", requests, None),
        ("工作台 right after a 登记 (月报表 run again)", f"/?period={PERIOD}", changed, "register"),
        ("case list, first page", "/cases", requests, None),
        ("case list, filtered (status, category)", "/cases?status=closed&category=labour",
         requests, None),
        ("case list, search of the request text", "/cases?" + urllib.parse.urlencode(
            {"q": "宅基地纠纷"}), requests, None),
        ("case list, page 200", "/cases?page=200", requests, None),
        ("case page (with a repeat)", f"/cases/{case}", requests, None),
        ("月报表 page (stats.monthly, run)", "/reports/stats.monthly?" + urllib.parse.urlencode(
            {"run": "1", "period": PERIOD}), requests, None),
    ]
    results = []
    with BackgroundServer(home) as server:
        client = Client(server.url)
        client.login(USER, PASSWORD)
        for label, path, count, before in pages:
            print(f"timing {label} …", file=sys.stderr, flush=True)
            posts: list[float] = []
            hook = register(client, rng, posts) if before == "register" else None
            results.append((label, path, timed(client, path, count, hook)))
            if posts:
                results.append(("登记 (the form's POST, then the case page)", "/cases/new",
                                summary(posts)))
    return {**found, "results": results}


def kib(size: int) -> str:
    return f"{size / 1024:.1f}" if size else "—"


def text(found: dict, args) -> str:
    m = machine()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    base = found["results"][0][2]["median"]
    lines = [
        f"## {now}: {found['events']:,} events, {found['cases']:,} cases",
        "",
        f"- machine: {m['platform']}; {m['cpu']}, {m['cores']} cores",
        f"- Python {m['python']}, SQLite {m['sqlite']}, sqlite-utils {m['sqlite-utils']}",
        f"- code {code_version()}; load average at the end "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- databases on {filesystem(Path(tempfile.gettempdir()))}; seed {args.seed}; "
        f"`python benchmarks/bench_web.py --events {args.events} --requests {args.requests}`",
        "",
        f"| page | requests | median ms | p95 ms | max ms | median / baseline | "
        f"under {GOAL_MS} ms | KiB |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for label, path, r in found["results"]:
        if r.get("skipped"):
            lines.append(f"| {label} | — | — | — | — | — | not served here (status "
                         f"{r['status']}) | — |")
            continue
        lines.append(f"| {label} | {r['n']} | {1000 * r['median']:.1f} | {1000 * r['p95']:.1f} | "
                     f"{1000 * r['max']:.1f} | {r['median'] / base:.1f} | "
                     f"{'yes' if r['p95'] * 1000 < GOAL_MS else 'no'} | {kib(r['bytes'])} |")
    lines += ["", f"Month shown: {PERIOD}; case page: {found['case']}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in all (100000)")
    parser.add_argument("--quick", action="store_true", help="5,000 events: a smoke run")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction (500)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--requests", type=int, default=30, help="timed requests a page (30)")
    parser.add_argument("--changed", type=int, default=10,
                        help="timed 工作台 requests each after a 登记 (10)")
    parser.add_argument("--node", type=Path,
                        help="keep the built node in this directory, and reuse it if it is "
                             "there already (a run adds a few cases to it)")
    parser.add_argument("--out", default=str(RESULTS),
                        help="results file to append to, or - for the screen only")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.requests, args.changed = 5_000, 10, 3
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        home = (args.node or Path(tmp)) / "county"
        if not home.exists():
            build(home, args.events, args.batch, args.seed)
        found = run(home, args.requests, args.changed)
    section = text(found, args)
    print(section)
    if args.out != "-":
        write_results(Path(args.out), section, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
