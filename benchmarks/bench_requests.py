"""Server CPU per sync request at a township, as the number of its children's feeds grows.

A township (the server) holds the feeds of N enrolled children, each with a
few case events; one more child, a real village node, makes the requests: a
``hello``, a quiet ``pull`` (it holds everything already) and a small ``push``
(one new event). Each request is a real sealed request made by
``http.Client.request``, served by the township's real WSGI application
(``NodeApp``: routing, the lock, ``SyncEndpoint``) inside this process, so the
time measured is the server's whole work on the request and nothing of the
client's or of the socket's. Time is ``time.process_time()`` of this process
(one thread), the median of the repetitions.

The floor, measured in the same run: opening the same sealed request and
sealing an empty answer (``envelope.open_`` + ``envelope.seal``), which any
request costs whatever the store holds. The goal is a flat row: the cost at
300 children within 1.2× of the cost at 3.

Building: a township can certify at most 999 villages of distinct area codes
(three digits), so above 998 the synthetic children share area codes (the
measuring village alone holds ``…999``). The children are not nodes on disk:
each is a key pair, an enrolment request signed with it, a certificate made by
the township's real ``trust.sign_request`` (which logs ``trust.certify``), and
a few ``case.register`` events made by ``Event.create`` and taken by the
township's real ``receive.apply_page``, 500 to a page.

    python benchmarks/bench_requests.py                  # 3, 30, 300, 3000 children
    python benchmarks/bench_requests.py --sizes 3,30 --reps 5 --out -   # a smoke test

Results are appended to ``benchmarks/REQUEST_RESULTS.md``. Synthetic data only.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from xinfang.core import signed
from xinfang.core.event import Event
from xinfang.core.hlc import HybridClock
from xinfang.core.keys import NodeKeys
from xinfang.sync import envelope, receive, send, trust, wire
from xinfang.sync.http import PATH, Client
from xinfang.sync.server import NodeApp

from bench_sync import COUNTY, CaseStream, Progress, enrol, load, make_node, say
from common import code_version, filesystem, machine, write_results

HERE = Path(__file__).resolve().parent
TOWNSHIP = COUNTY + "101"
#: the measuring village's area code: no synthetic child shares it
OWN_CODE = 999
EVENTS_PER_CHILD = 3


# -- the township and its children ------------------------------------------------


class InProcess(Client):
    """The real sync client, its requests served by the township's ``NodeApp`` in this
    process; ``served`` collects the CPU seconds the server spent on each."""

    app: NodeApp

    def post(self, body: bytes) -> bytes:
        answer, cpu, wall = serve_once(self.app, body)
        self.served.append((cpu, wall))
        return answer


def serve_once(app: NodeApp, body: bytes) -> tuple[bytes, float, float]:
    """The server's answer to one sealed request, with its CPU and wall seconds."""
    environ = {"PATH_INFO": PATH, "REQUEST_METHOD": "POST", "QUERY_STRING": "",
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/octet-stream",
               "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(body)}
    status: list[str] = []
    cpu, wall = time.process_time(), time.perf_counter()
    data = b"".join(app(environ, lambda line, headers: status.append(line)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if not status[0].startswith("200"):
        raise RuntimeError(f"the township refused the request: {status[0]} "
                           f"{data[:300].decode('utf-8', 'replace')}")
    return data, cpu, wall


def client(village, township) -> InProcess:
    made = InProcess(village, "http://127.0.0.1:1")
    made.app, made.served = NodeApp(township), []
    return made


def child_request(keys: NodeKeys, area: str, name: str) -> trust.EnrolmentRequest:
    """What ``xinfang enroll request`` makes, for a key pair with no node around it."""
    content = {"v": 1, "subject": keys.author, "encryption": keys.encryption_public,
               "area": area, "level": "village", "name": name}
    return trust.EnrolmentRequest.from_document(signed.sign(keys, trust.KIND, content))


def child_events(keys: NodeKeys, area: str, clock: HybridClock, seed: int) -> list[Event]:
    """A child's first case events, signed with its key, chained from seq 1."""
    stream = CaseStream(area, "00" * 32, seed=seed)
    stream.serials[2019] = (seed // (OWN_CODE - 1)) * 1000  # children sharing an area number apart
    events, prev = [], None
    for seq, draft in enumerate(stream.take(EVENTS_PER_CHILD), 1):
        event = Event.create(keys, epoch=0, seq=seq, prev=prev, hlc=clock.tick(),
                             type=draft.type, entity=draft.entity, entity_id=draft.entity_id,
                             area=draft.area, body=draft.body)
        events.append(event)
        prev = event.id
    return events


def build(base: Path, children: int) -> tuple:
    """County, township, the measuring village and ``children - 1`` synthetic children
    under the township; returns the nodes and the seconds building took."""
    started = time.perf_counter()
    county = make_node(base / "county", "county", COUNTY, "示例县信访局", root=True)
    township = make_node(base / "township", "township", TOWNSHIP, "示例一镇信访办")
    enrol(township, county)
    village = make_node(base / "village", "village", f"{TOWNSHIP}{OWN_CODE:03d}",
                        "示例一镇测量村信访站")
    enrol(village, township)
    chain = trust.chain_of(township.db, township.info.author)
    clock, page, certs = HybridClock(), [], []
    progress = Progress(f"{children - 1} children", children - 1)
    for number in range(children - 1):
        keys = NodeKeys.generate()
        area = f"{TOWNSHIP}{number % (OWN_CODE - 1) + 1:03d}"
        signed_back = trust.sign_request(township, child_request(keys, area,
                                                                 f"示例{number + 1}村信访站"))
        certs.append(trust.Certificate.from_wire(signed_back["certificate"]))
        page += child_events(keys, area, clock, seed=number)
        if len(page) + EVENTS_PER_CHILD > wire.MAX_PAGE_EVENTS or number == children - 2:
            result = receive.apply_page(township, wire.Page(page, certs=[*certs, *chain]))
            assert result.applied == len(page) and not result.refused, result.refused[:3]
            page, certs = [], []
        progress.add(1)
    progress.end()
    village.append_many(CaseStream(village.info.area, village.match_key, seed=7).take(2))
    first = client(village, township).sync()  # the village holds all it should, and so does
    assert first.pushed == 2, first          # the township of it
    return county, township, village, time.perf_counter() - started


# -- the requests ------------------------------------------------------------------


def request_body(made: InProcess, op: str) -> bytes:
    """A sealed request as ``Client.sync`` makes it for ``op`` (a push: one new event)."""
    village = made.node
    if op == "push":
        village.append_many(CaseStream(village.info.area, village.match_key,
                                       seed=time.perf_counter_ns()).take(1))
        theirs = {(a, e): s for (a, e), s in wire.frontier(made.app.node.db).items()
                  if a == village.info.author}
        pages = list(send.pages_for(village, made.parent.area, theirs,
                                    release=send.outgoing_rule(village, made.parent)))
        assert len(pages) == 1 and len(pages[0].events) == 1
        payload = {"op": "push", "page": pages[0].to_wire()}
    elif op == "hello" and hasattr(made, "hello_payload"):  # what Client.sync sends
        payload = made.hello_payload()[0]
    else:
        payload = {"op": op, "frontier": wire.frontier_to_wire(wire.frontier(village.db))}
    return made.request(payload)


def measure(made: InProcess, op: str, reps: int) -> dict[str, float]:
    """Median CPU and wall seconds of the server's work on ``reps`` requests of ``op``."""
    cpus, walls = [], []
    for _ in range(reps):
        request_id, body = request_body(made, op)
        answer, cpu, wall = serve_once(made.app, body)
        reply = made.answer(answer, request_id)
        if op == "pull":
            assert reply["page"] is None, "the village was not up to date"
        if op == "push":
            assert reply["applied"] == 1, reply
        cpus.append(cpu)
        walls.append(wall)
    return {"cpu": statistics.median(cpus), "wall": statistics.median(walls),
            "cpu_min": min(cpus)}


def after_trust_change(made: InProcess, reps: int) -> float:
    """Median CPU seconds of a pull served right after the township certified one more
    child: the first request at a new version of the trust data, which judges the
    stored chains again. It carries no events, only the range of the township's feed
    that its ``trust.certify`` moved."""
    township = made.app.node
    cpus = []
    for number in range(reps):
        keys = NodeKeys.generate()
        trust.sign_request(township, child_request(keys, f"{TOWNSHIP}{number % 998 + 1:03d}",
                                                   f"示例新{number + 1}村信访站"))
        request_id, body = request_body(made, "pull")
        answer, cpu, _ = serve_once(made.app, body)
        page = made.answer(answer, request_id)["page"]
        if page is not None:  # a range: the township's feed moved, none of it for the village
            page = wire.Page.from_wire(page)
            assert not page.events
            receive.apply_page(made.node, page, peer=township.info.author)
        cpus.append(cpu)
    return statistics.median(cpus)


def floor(made: InProcess, reps: int) -> float:
    """Median CPU seconds of opening a quiet pull's sealed request and sealing an empty
    answer: what the envelope costs the server."""
    township = made.app.node
    cpus = []
    for _ in range(reps):
        _, body = request_body(made, "pull")
        started = time.process_time()
        opened = envelope.open_(township.keys, body, "request")
        envelope.seal(township.keys, opened.header["from"], made.node.info.encryption,
                      "response", {"page": None, "refused": [], "request": opened.header["id"]})
        cpus.append(time.process_time() - started)
    return statistics.median(cpus)


def profile(made: InProcess, op: str, reps: int, top: int = 12) -> list[tuple]:
    """The server's functions by cumulative time over ``reps`` requests of ``op``."""
    bodies = [request_body(made, op)[1] for _ in range(reps)] if op != "push" else None
    profiler = cProfile.Profile(time.process_time)  # CPU, as the table of medians
    for index in range(reps):
        body = bodies[index] if bodies else request_body(made, op)[1]
        profiler.enable()
        serve_once(made.app, body)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)
    rows = []
    for (path, line, name), (calls, _, tottime, cumtime, _) in sorted(
            stats.stats.items(), key=lambda item: -item[1][3])[:top]:
        where = "(built-in)" if path == "~" else f"{Path(path).parent.name}/{Path(path).name}:{line}"
        rows.append((name, where, calls, tottime, cumtime, cumtime / total))
    return rows


# -- the report ----------------------------------------------------------------------


OPS = ("hello", "pull", "push")
LABELS = {"hello": "hello", "pull": "quiet pull", "push": "push of 1 event"}


def report(rows: list[dict], profiled: dict, args, started: float, load_before: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    lines = [f"## {now}: server CPU per sync request ({args.label})", "",
             f"- machine: {info['platform']}; {info['cpu']}, {info['cores']} cores",
             f"- Python {info['python']}, cryptography {info['cryptography']}, SQLite "
             f"{info['sqlite']}, sqlite-utils {info['sqlite-utils']}",
             f"- code {code_version()}; load average {load_before} at the start, {load()} at "
             f"the end; run took {(time.perf_counter() - started) / 60:.1f} min",
             f"- databases on {filesystem(Path(tempfile.gettempdir()))}; "
             f"`python benchmarks/bench_requests.py {' '.join(sys.argv[1:])}`", "",
             f"A township with N children's feeds ({EVENTS_PER_CHILD} case events each); one "
             f"of them, a real village node, makes the requests. Server CPU (`process_time` "
             f"around `NodeApp`), median of {args.reps}, in milliseconds; the floor is "
             f"opening the request's envelope and sealing an empty answer; *first after a "
             f"trust change* is a pull (no events, a range) right after the township certified one more "
             f"child (a new version of the trust data, so the stored chains are judged "
             f"again; median of {max(3, args.reps // 3)}).", "",
             "| children | feeds at the township | build s | floor | "
             + " | ".join(LABELS[op] for op in OPS) + " | pull, first after a trust "
             "change | " + " | ".join(f"{LABELS[op]} wall" for op in OPS) + " |",
             "|" + "---:|" * (3 + 2 * len(OPS) + 2)]
    for row in rows:
        lines.append(f"| {row['n']:,} | {row['feeds']:,} | {row['build']:.1f} | "
                     f"{row['floor'] * 1e3:.2f} | "
                     + " | ".join(f"{row[op]['cpu'] * 1e3:.2f}" for op in OPS) + " | "
                     + f"{row['cold'] * 1e3:.2f} | "
                     + " | ".join(f"{row[op]['wall'] * 1e3:.2f}" for op in OPS) + " |")
    base = rows[0]
    lines += ["", f"Ratios of server CPU to that at {base['n']} children (1.00 = flat; the goal "
                  f"is at most 1.2 at 300):", "",
              "| children | " + " | ".join(LABELS[op] for op in OPS) + " | over the floor, "
              + " | over the floor, ".join(LABELS[op] for op in OPS) + " |",
              "|---|" + "---:|" * (2 * len(OPS))]
    for row in rows:
        lines.append(f"| {row['n']:,} / {base['n']:,} | "
                     + " | ".join(f"{row[op]['cpu'] / base[op]['cpu']:.2f}" for op in OPS)
                     + " | " + " | ".join(f"{row[op]['cpu'] / row['floor']:.1f}×"
                                          for op in OPS) + " |")
    for (n, op), table in profiled.items():
        lines += ["", f"cProfile of {args.reps} {LABELS[op]} requests at {n:,} children, top "
                      f"{len(table)} by cumulative time:", "",
                  "| function | where | calls | tottime s | cumtime s | share |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| `{name}` | {where} | {calls:,} | {tt:.4f} | {ct:.4f} | {share:.0%} |"
                  for name, where, calls, tt, ct, share in table]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,30,300,3000",
                        help="children's feeds at the township, comma-separated")
    parser.add_argument("--reps", type=int, default=15, help="requests of each kind per size")
    parser.add_argument("--profile", default="300", help="sizes to profile a quiet pull at")
    parser.add_argument("--label", default="before", help="what the run measures, for the file")
    parser.add_argument("--out", default=str(HERE / "REQUEST_RESULTS.md"),
                        help="results file to append to, or - for stdout only")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    profile_at = {int(s) for s in args.profile.split(",") if s}
    started, load_before = time.perf_counter(), load()
    rows, profiled = [], {}
    for n in sizes:
        base = Path(tempfile.mkdtemp(prefix=f"xf-requests-{n}-"))
        try:
            say(f"{n} children: building")
            county, township, village, seconds = build(base, n)
            made = client(village, township)
            row = {"n": n, "build": seconds, "feeds": township.db.execute(
                "select count(*) from feeds").fetchone()[0]}
            for op in OPS:
                row[op] = measure(made, op, args.reps)
            row["floor"] = floor(made, args.reps)
            row["cold"] = after_trust_change(made, max(3, args.reps // 3))
            if n in profile_at:
                profiled[(n, "pull")] = profile(made, "pull", args.reps)
            say(f"  built in {seconds:.1f} s; CPU ms: floor {row['floor'] * 1e3:.2f}, "
                + ", ".join(f"{op} {row[op]['cpu'] * 1e3:.2f}" for op in OPS))
            rows.append(row)
            for node in (county, township, village):
                node.close()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    text = report(rows, profiled, args, started, load_before)
    print(text)
    if args.out != "-":
        write_results(Path(args.out), text, HEADER)


HEADER = """# Request benchmarks

`benchmarks/bench_requests.py` measures the server's CPU per sync request (a hello, a
quiet pull, a push of one event) at a township holding 3 to 3,000 children's feeds;
`benchmarks/bench_load.py` runs 200 villages against one `xinfang serve`, 16 at a time.
Each run appends a section below.
"""


if __name__ == "__main__":
    main()
