"""Cost per event of one node's log: append, fold, verify, and how it grows.

Registers a realistic mix of 信访事项 events on one county node and measures,
in the same run:

* the full pipeline (encode + sign + append + fold) through ``Node.append_many``
  in batches, one transaction and one fsync per batch;
* the interactive path (``api.register_case`` / ``api.take_step``: one event,
  one transaction) on the empty node and again on the full one;
* as floors, the bare cost of Ed25519 signing the very same bytes and of a
  plain SQLite insert of them into a fresh file with the same PRAGMAs, so the
  price of everything else the pipeline does can be read as a ratio;
* re-folding every view from the log (``verify.rebuild``) and re-checking it
  (``verify.verify_log``);
* database bytes per event, and throughput of the first against the last 10%
  of the batched events (equal numbers mean the cost does not grow).

Province-scale numbers are then arithmetic, not hope: see RESULTS.md.

    python benchmarks/bench_append.py                   # 100,000 events
    python benchmarks/bench_append.py --events 5000 --out -   # quick, no file written

Only synthetic data: ID numbers in region 990000 (assigned to no place),
names of the form 赵某甲.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xinfang.core import codec, fold, sealing, verify
from xinfang.core.event import EVENT_DOMAIN
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.demo.synthetic import KINDS, TEXTS, random_id, random_name, random_phone
from xinfang.plugins.cases import api

from common import Rate, Stopwatch, code_version, filesystem, machine, publish

HERE = Path(__file__).resolve().parent
COUNTY = "431202"
#: the API refuses dates after "today"; a fixed today keeps runs reproducible.
API_TODAY = dt.date(2026, 6, 30)
FIRST_RECEIVED = dt.date(2022, 1, 3)
LAST_RECEIVED = dt.date(2025, 12, 20)
OPEN_CASES = 300  # cases in progress at once, interleaved as on a real desk

# -- the workload ----------------------------------------------------------------

CHANNELS = ["visit"] * 5 + ["letter"] * 2 + ["online"] * 4 + ["phone"] * 2 + ["mailbox", "referred"]
CATEGORIES = ["labour"] * 5 + ["land"] * 3 + ["demolition"] * 2 + [
    "urban_construction", "law_litigation", "agriculture", "civil_affairs", "medical",
    "environment", "resettlement", "veterans", "enterprise_reform", "historical", "neighbour",
    "family", "village_affairs"]
REQUESTS = [
    "请求协调追讨拖欠的工资，涉及{n}个月，用工单位至今未予结算",
    "反映承包地被占用后补偿款未足额发放，请求核实并补发",
    "请求解决移民安置房屋漏水问题，多次向村里反映未果",
    "反映邻近养殖场污水直排河道，影响饮水安全，请求查处",
    "请求落实退役军人优待政策，相关补助自{y}年起未发放",
    "反映村务财务不公开，请求公开近{n}年集体收支情况",
    "请求核实低保资格认定，家庭困难情况未被采纳",
    "反映宅基地纠纷，邻居擅自扩建影响通行，请求调处",
    "请求对医疗纠纷进行调解，对赔偿方案有异议",
    "反映企业改制时职工安置费用未落实，涉及{n}名职工",
    "建议在村口增设路灯和减速设施，保障夜间出行安全",
    "检举村干部在项目招标中存在违规操作，请求调查",
]
UNITS = ["镇劳动保障所", "镇国土所", "镇司法所", "镇民政办", "县人社局", "县自然资源局",
         "县生态环境局", "镇农业服务中心", "镇退役军人服务站", "县住建局"]
LEADERS = ["王某", "李某", "张某", "刘某", "陈某"]
HANDLERS = ["周某", "吴某", "郑某", "孙某", "马某", "朱某"]
REASONS = ["需调取相关档案", "需实地核查", "涉及多个部门，需协调", "需等待鉴定结论"]
VILLAGES = [f"{COUNTY}{t:03d}{v:03d}" for t in range(101, 111) for v in range(201, 216)]


@attrs.frozen
class Register:
    key: int
    area: str
    received: str
    channel: str
    category: str
    kind: str
    request: str
    headcount: int
    petitioners: tuple[api.PetitionerInput, ...]

    @property
    def year(self) -> int:
        return int(self.received[:4])


@attrs.frozen
class StepIntent:
    key: int
    step: str
    values: dict[str, Any]


class Workload:
    """An endless, seeded stream of case events, interleaved across open cases.

    Each registered case draws its whole path through the lifecycle at once
    (forward, accept, extend, answer, rate, close, review, rereview, reject,
    withdraw …) with dates that satisfy every guard, so the fold should record
    no conflict; the run checks that it does not.
    """

    def __init__(self, seed: int, expected_cases: int) -> None:
        self.rng = random.Random(seed)
        self.cases = 0
        self.day_step = max((LAST_RECEIVED - FIRST_RECEIVED).days / max(expected_cases, 1), 0.0)
        self.open: list[tuple[int, collections.deque]] = []
        self.recent: collections.deque = collections.deque(maxlen=3000)

    def __iter__(self) -> Iterator[Register | StepIntent]:
        while True:
            if len(self.open) < OPEN_CASES:
                yield self._register()
                continue
            index = self.rng.randrange(len(self.open))
            key, plan = self.open[index]
            step, values = plan.popleft()
            if not plan:
                self.open[index] = self.open[-1]
                self.open.pop()
            yield StepIntent(key, step, values)

    def _person(self, representative: bool = False) -> api.PetitionerInput:
        rng = self.rng
        return api.PetitionerInput(
            name=random_name(rng),
            id_number=random_id(rng),
            phone=random_phone(rng) if rng.random() < 0.9 else None,
            address=f"示例村{rng.randrange(1, 12)}组" if rng.random() < 0.8 else None,
            representative=representative)

    def _register(self) -> Register:
        rng = self.rng
        key = self.cases
        self.cases += 1
        received = FIRST_RECEIVED + dt.timedelta(days=int(key * self.day_step))
        received = min(received, LAST_RECEIVED)
        category = rng.choice(CATEGORIES)
        if rng.random() < 0.04:  # 集体访: several named, more present
            people = tuple(self._person(representative=True) for _ in range(rng.randint(2, 5)))
            headcount = len(people) + rng.randint(3, 40)
        elif self.recent and rng.random() < 0.15:  # the same person again: 重复访 candidates
            person, earlier_category = rng.choice(self.recent)
            if rng.random() < 0.7:
                category = earlier_category
            people, headcount = (person,), 1
        else:
            people, headcount = (self._person(),), 1
        for person in people:
            self.recent.append((person, category))
        area = rng.choice(VILLAGES)
        request = rng.choice(REQUESTS).format(n=rng.randint(2, 9), y=rng.randint(2015, 2021))
        self.open.append((key, collections.deque(self._plan(received))))
        return Register(key, area, received.isoformat(), rng.choice(CHANNELS), category,
                        rng.choice(KINDS), request, headcount, people)

    def _plan(self, received: dt.date) -> list[tuple[str, dict[str, Any]]]:
        rng = self.rng
        day = received
        plan: list[tuple[str, dict[str, Any]]] = []

        def after(low: int, high: int) -> str:
            nonlocal day
            day = day + dt.timedelta(days=rng.randint(low, high))
            return day.isoformat()

        if rng.random() < 0.25:
            target = ({"unit": rng.choice(UNITS)} if rng.random() < 0.7
                      else {"to_area": rng.choice(VILLAGES)})
            plan.append(("forward", {"date": after(1, 10),
                                     "mode": rng.choice(["transfer", "assign"]), **target}))
        fate = rng.random()
        if fate < 0.07:
            plan.append(("reject", {"date": after(1, 10), "reason": "属司法程序受理范围",
                                    "legal_channel": rng.choice(["litigation", "arbitration",
                                                                 "admin_review"])}))
            return plan
        if fate < 0.09:
            plan.append(("refuse", {"date": after(1, 10), "reason": "同一事项已办结，无新情况"}))
            return plan
        plan.append(("accept", {"date": after(1, 12), "unit": rng.choice(UNITS),
                                "leader": rng.choice(LEADERS), "handler": rng.choice(HANDLERS)}))
        if rng.random() < 0.03:
            plan.append(("withdraw", {"date": after(1, 20), "reason": "已自行协商解决"}))
            return plan
        if rng.random() < 0.10:
            plan.append(("extend", {"date": after(10, 40), "days": rng.randint(10, 30),
                                    "reason": rng.choice(REASONS)}))
        answered = after(5, 15)
        plan.append(("answer", {"date": answered, "outcome": rng.choice(
            ["support", "explain", "explain", "reject"]), "text": rng.choice(TEXTS)}))
        if rng.random() < 0.6:
            plan.append(("rate", {"date": after(1, 10), "rating": rng.choice(
                ["satisfied", "satisfied", "basically", "dissatisfied"])}))
        # 复查 and 复核 are taken by the levels above the answering office: one node
        # cannot take them on its own answers, so this one-node workload has none
        plan.append(("close", {"date": after(1, 10)}))
        return plan


# -- turning intents into events -------------------------------------------------


class Executor:
    """Maps workload keys to case numbers and turns intents into events."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.case_id: dict[int, str] = {}
        self.serials: dict[int, int] = {}
        self.match_key = node.match_key
        self.prefix = node.info.area
        self.area_of: dict[int, str] = {}

    # the interactive path: one call, one event, one transaction
    def via_api(self, intent: Register | StepIntent) -> None:
        if isinstance(intent, Register):
            self.area_of[intent.key] = intent.area
            data = api.CaseInput(petitioners=intent.petitioners, channel=intent.channel,
                                 category=intent.category, kind=intent.kind,
                                 request=intent.request, received=intent.received,
                                 headcount=intent.headcount, area=intent.area)
            self.case_id[intent.key] = api.register_case(self.node, data, today=API_TODAY)
        else:
            api.take_step(self.node, self.case_id[intent.key], intent.step, intent.values,
                          today=API_TODAY)

    def forget_serials(self) -> None:
        """Re-read case-number serials from the log after the API has written."""
        self.serials.clear()

    def _new_case_id(self, year: int) -> str:
        if year not in self.serials:
            self.serials[year] = int(api.next_case_id(self.node, year).rsplit("-", 1)[1])
        serial = self.serials[year]
        self.serials[year] = serial + 1
        return f"{self.prefix}-{year}-{serial:05d}"

    # the batched path: the drafts ``register_case`` and ``take_step`` build
    def draft(self, intent: Register | StepIntent) -> Draft:
        operator = self.node.operator
        if isinstance(intent, StepIntent):
            return Draft(f"case.{intent.step}", api.ENTITY, self.case_id[intent.key],
                         self.area_of[intent.key], {"values": dict(intent.values), "by": operator})
        secrets: list[sealing.Secret] = []
        people = []
        for person in intent.petitioners:
            sealed: dict[str, Any] = {"representative": bool(person.representative)}
            values = {"name": person.name}
            if person.id_number:
                values["id_number"] = person.id_number
                sealed["id_tag"] = sealing.match_tag(self.match_key, person.id_number)
            if person.phone:
                values["phone"] = person.phone
            if person.address:
                values["address"] = person.address
            for name, value in values.items():
                secret = sealing.seal(value)
                secrets.append(secret)
                sealed[name] = secret.digest
            people.append(sealed)
        body = {"channel": intent.channel, "category": intent.category, "kind": intent.kind,
                "request": intent.request, "received": intent.received,
                "headcount": intent.headcount, "petitioners": people, "fields": {},
                "by": operator}
        case_id = self._new_case_id(intent.year)
        self.case_id[intent.key] = case_id
        self.area_of[intent.key] = intent.area
        return Draft("case.register", api.ENTITY, case_id, intent.area, body, secrets)


def check_drafts_match_api(directory: Path) -> str | None:
    """Register one case through the API and one as a benchmark draft, on a
    scratch node, and compare the bodies' structure: the batched figures are
    only honest if the drafts are the events the API would have made."""
    person = api.PetitionerInput("赵某甲", random_id(random.Random(1)), "13800000001",
                                 "示例村一组", representative=True)
    intent = Register(0, VILLAGES[0], "2024-01-02", "visit", "labour", "appeal",
                      "请求协调追讨拖欠工资", 1, (person,))
    step = StepIntent(0, "accept", {"date": "2024-01-05", "unit": UNITS[0], "leader": "王某",
                                    "handler": "周某"})
    with Node.init(directory, level="county", area=COUNTY, name="对照县", root=True) as node:
        executor = Executor(node)
        executor.via_api(intent)
        executor.via_api(step)
        made = [codec.decode(raw)["body"] for (raw,) in
                node.db.execute("select raw from events order by pos").fetchall()]
        executor.forget_serials()
        drafts = [executor.draft(attrs.evolve(intent, key=1)),
                  executor.draft(attrs.evolve(step, key=1))]
        node.append_many(drafts)  # the plugin's validation must accept them too
        for api_body, draft in zip(made, drafts):
            if shape(api_body) != shape(draft.body):
                return (f"the benchmark's drafts differ from the API's events:\n"
                        f"  API:   {shape(api_body)}\n  draft: {shape(draft.body)}")
    return None


def shape(value: Any) -> Any:
    """The structure of a body without its values: keys and types, recursively."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


# -- measuring -------------------------------------------------------------------


class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.start = label, total, time.perf_counter()
        self.shown = 0.0

    def show(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.shown < 0.5 and done < self.total:
            return
        self.shown = now
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        print(f"\r{self.label}: {done:,}/{self.total:,} events, {rate:,.0f}/s   ",
              end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        print(file=sys.stderr, flush=True)


def run_api(executor: Executor, stream: Iterator, count: int, label: str) -> Rate:
    progress = Progress(label, count)
    intents = [next(stream) for _ in range(count)]
    with Stopwatch() as watch:
        for done, intent in enumerate(intents, 1):
            executor.via_api(intent)
            progress.show(done)
    progress.end()
    return watch.rate(label, count)


def run_pipeline(executor: Executor, stream: Iterator, count: int, batch: int):
    """One ``Rate`` per batch of ``append_many``, and one for building the drafts."""
    node = executor.node
    batches: list[Rate] = []
    drafting = [0.0, 0.0]
    progress = Progress("pipeline (append_many)", count)
    done = 0
    while done < count:
        size = min(batch, count - done)
        with Stopwatch() as watch:
            drafts = [executor.draft(next(stream)) for _ in range(size)]
        drafting[0] += watch.wall
        drafting[1] += watch.cpu
        with Stopwatch() as watch:
            node.append_many(drafts)
        batches.append(watch.rate("batch", size))
        done += size
        progress.show(done)
    progress.end()
    return batches, Rate("draft building (not in the pipeline figure)", count, *drafting)


def total(label: str, rates: list[Rate]) -> Rate:
    return Rate(label, sum(r.events for r in rates), sum(r.seconds for r in rates),
                sum(r.cpu for r in rates))


def slices(batches: list[Rate], parts: int) -> list[Rate]:
    """Throughput of consecutive slices of about 1/parts of the events each."""
    events = sum(b.events for b in batches)
    out: list[Rate] = []
    current: list[Rate] = []
    done = 0
    for batch in batches:
        current.append(batch)
        done += batch.events
        if done * parts >= events * (len(out) + 1):
            out.append(total(f"slice {len(out) + 1}", current))
            current = []
    return out


def bare_sign(raws: list[bytes]) -> tuple[Rate, list[bytes], Any]:
    key = Ed25519PrivateKey.generate()
    with Stopwatch() as watch:
        signatures = [key.sign(EVENT_DOMAIN + raw) for raw in raws]
    return watch.rate("bare Ed25519 sign", len(raws)), signatures, key.public_key()


def bare_verify(raws: list[bytes], signatures: list[bytes], public) -> Rate:
    with Stopwatch() as watch:
        for raw, signature in zip(raws, signatures):
            public.verify(signature, EVENT_DOMAIN + raw)
    return watch.rate("bare Ed25519 verify", len(raws))


def bare_insert(directory: Path, rows: list[tuple[bytes, bytes]], batch: int,
                per_row: bool) -> tuple[Rate, int]:
    """Insert the same (raw, signature) pairs into a plain table, batch by batch."""
    path = directory / ("bare-per-row.db" if per_row else "bare.db")
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = full")
    conn.execute("create table events (pos integer primary key, raw blob not null, "
                 "sig blob not null)")
    sql = "insert into events (raw, sig) values (?, ?)"
    with Stopwatch() as watch:
        for first in range(0, len(rows), batch):
            chunk = rows[first:first + batch]
            conn.execute("begin")
            if per_row:
                for row in chunk:
                    conn.execute(sql, row)
            else:
                conn.executemany(sql, chunk)
            conn.execute("commit")
    size = checkpointed_size(conn, path)
    conn.close()
    how = "one execute per row" if per_row else "executemany"
    return watch.rate(f"bare SQLite insert ({how})", len(rows)), size


def checkpointed_size(conn: sqlite3.Connection, path: Path) -> int:
    conn.execute("pragma wal_checkpoint(truncate)")
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def table_bytes(conn: sqlite3.Connection, node: Node) -> dict[str, int]:
    """Bytes on disk per group of tables (with their indexes), from ``dbstat``."""
    owner = dict(conn.execute("select name, tbl_name from sqlite_master where type in "
                              "('table', 'index')").fetchall())
    views = set(fold.view_tables(node.registry))
    groups: collections.Counter = collections.Counter()
    try:
        rows = conn.execute("select name, sum(pgsize) from dbstat group by name").fetchall()
    except sqlite3.OperationalError:  # SQLite built without the dbstat table
        return {}
    for name, size in rows:
        table = owner.get(name, name)
        group = ("log (events + indexes)" if table == "events" else
                 "sealed values (vault, encrypted)" if table in ("vault", "secrets") else
                 "views" if table in views else "node and sync bookkeeping")
        groups[group] += size
    return dict(groups)


# -- reporting -------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def report(results: dict[str, Any]) -> str:
    r = results
    pipeline: Rate = r["pipeline"]
    rows = [
        (pipeline, f"`Node.append_many`, batches of {r['batch']}, one transaction + fsync each; "
                   "drafts built beforehand"),
        (r["first"], "the first tenth of the batched events (near-empty node)"),
        (r["last"], f"the last tenth (node holding ~{r['events']:,} events)"),
        (r["api_start"], "`api.register_case` / `api.take_step`, one event per transaction, "
                         "empty node"),
        (r["api_end"], f"the same, node holding ~{r['events']:,} events"),
        (r["drafting"], "building the drafts (sealing: salt + SHA-256, HMAC tag)"),
        (r["sign"], "`Ed25519PrivateKey.sign(domain + raw)` over the same bytes"),
        (r["verify"], "`Ed25519PublicKey.verify`, key object loaded once"),
        (r["insert"], f"(raw, sig) into a plain table, batches of {r['batch']}, WAL, "
                      "synchronous=FULL, fresh file"),
        (r["insert_rows"], "the same, one `execute` per row"),
        (r["rebuild"], "`verify.rebuild(node)`: empty every view, re-fold the whole log, compare"),
        (r["verify_log"], "`verify.verify_log`: decode, hash, columns, signature, chain"),
    ]
    lines = ["| measure | events/s | µs/event | CPU µs/event | what |", "|---|---:|---:|---:|---|"]
    for rate, note in rows:
        lines.append(f"| {rate.label} | {fmt(rate.per_second)} | {fmt(rate.micros)} | "
                     f"{fmt(rate.cpu_micros)} | {note} |")
    sign, insert = r["sign"], r["insert"]
    ratio_sign = pipeline.per_second / sign.per_second
    ratio_insert = pipeline.per_second / insert.per_second
    growth = r["last"].per_second / r["first"].per_second
    growth_cpu = r["first"].cpu_micros / r["last"].cpu_micros
    lines += [
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| pipeline / bare sign (throughput) | {ratio_sign:.3f} (signing alone is "
        f"{1 / ratio_sign:.1f}× faster; CPU only: {sign.cpu_micros / pipeline.cpu_micros:.3f}) |",
        f"| pipeline / bare SQLite insert (throughput) | {ratio_insert:.3f} (the insert alone is "
        f"{1 / ratio_insert:.1f}× faster; CPU only: "
        f"{insert.cpu_micros / pipeline.cpu_micros:.3f}) |",
        f"| last / first tenth of the batched events, throughput (1.0 = flat) | {growth:.2f} "
        f"(CPU only: {growth_cpu:.2f}) |",
        f"| interactive path, full / empty node | "
        f"{r['api_end'].per_second / r['api_start'].per_second:.2f} |",
        "",
        "| storage | bytes/event |",
        "|---|---:|",
        f"| node database, db + WAL after checkpoint ({r['db_bytes']:,} bytes) | "
        f"{r['db_bytes'] / r['events']:,.0f} |",
    ]
    for group, size in sorted(r["groups"].items()):
        lines.append(f"| — {group} | {size / r['events']:,.0f} |")
    lines += [
        f"| signed event bytes alone (mean `raw`, + 64 signature) | {r['mean_raw']:,.0f} + 64 |",
        f"| bare table of (raw, sig), after checkpoint | {r['bare_bytes'] / r['events']:,.0f} |",
        "",
        *projection(r),
        "",
        "Deciles of the batched events, first to last: events/s "
        + ", ".join(fmt(s.per_second) for s in r["deciles"]) + "; CPU µs/event "
        + ", ".join(fmt(s.cpu_micros) for s in r["deciles"]) + ".",
        "",
        f"Workload: {r['events']:,} events on one county node: {r['cases']:,} cases "
        f"({r['collective']:,} 集体访, {r['repeat']:,} flagged 重复访), "
        + ", ".join(f"{n:,} {t}" for t, n in r["types"]) + f"; conflicts: {r['conflicts']}.",
    ]
    return "\n".join(lines)


def projection(r: dict[str, Any]) -> list[str]:
    """A year's work for a county and for a province, from this run's own numbers."""
    per_case = r["events"] / r["cases"]
    bytes_per_event = r["db_bytes"] / r["events"]
    lines = [f"A year, at this mix's {per_case:.1f} events per case (one node doing all the work):",
             "",
             "| cases a year | events | pipeline | one by one (API) | rebuild | verify_log | disk |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, cases in (("a county, 5,000", 5_000), ("a province, 300,000", 300_000)):
        events = cases * per_case

        def took(rate: Rate) -> str:
            seconds = events / rate.per_second
            return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.0f} min"

        lines.append(f"| {label} | {events:,.0f} | {took(r['pipeline'])} | {took(r['api_end'])} | "
                     f"{took(r['rebuild'])} | {took(r['verify_log'])} | "
                     f"{events * bytes_per_event / 1e6:,.0f} MB |")
    return lines


HEADER = """# Benchmarks

`benchmarks/bench_append.py` registers a realistic, seeded mix of 信访事项
events (registrations with sealed petitioner fields, forward / accept /
extend / answer / rate / close, reviews and rereviews, rejections,
withdrawals; about 300 cases open at once, interleaved) on one county node and
measures, in the same run, the full pipeline against its floors: bare Ed25519
signing of the very same bytes, and a plain SQLite insert of them with the
same PRAGMAs (WAL, `synchronous=FULL`) and the same batches. Each run appends
a section below:

    python benchmarks/bench_append.py --events 100000 --batch 500

How to read a section:

- *µs/event* is wall-clock time; *CPU µs/event* leaves out waiting (fsync,
  and other programs on a shared machine). Where they differ, the difference
  is waiting.
- *pipeline / bare sign* is the share of the pipeline's time that signing
  takes (near 1 would mean signing dominates); its inverse is how many times
  dearer the whole pipeline is than signing alone. The same for the insert.
- *last / first tenth* near 1.0 means the cost per event does not grow with
  the size of the log; the deciles show the whole curve.
- The year table multiplies the measured rates and bytes per event by a
  county's and a province's case load, as if one node did all the work. In
  the real tree each node folds only its own subtree, so these are upper
  bounds for any single node.
"""


# -- the run ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in all (100000)")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction (500)")
    parser.add_argument("--api-events", type=int, default=200,
                        help="events through the interactive API on the empty and on the full "
                             "node, each (200)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to create the node (default: a temporary directory)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    args = parser.parse_args(argv)
    if args.events < 100 or args.batch < 1:
        parser.error("--events must be at least 100 and --batch at least 1")
    api_events = min(args.api_events, args.events // 10)
    batched = args.events - 2 * api_events

    with tempfile.TemporaryDirectory(prefix="xinfang-bench-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        mismatch = check_drafts_match_api(tmp / "scratch")
        if mismatch:
            print(mismatch, file=sys.stderr)
            return 1
        node = Node.init(tmp / "county", level="county", area=COUNTY, name="示例县信访局",
                         root=True, pm=get_plugin_manager())
        node.operator = "基准测试员"
        workload = Workload(args.seed, expected_cases=args.events // 4)
        stream = iter(workload)
        executor = Executor(node)

        api_start = run_api(executor, stream, api_events, "interactive API, empty node")
        executor.forget_serials()
        batches, drafting = run_pipeline(executor, stream, batched, args.batch)
        api_end = run_api(executor, stream, api_events, "interactive API, full node")

        conn = node.db.conn
        events = conn.execute("select count(*) from events").fetchone()[0]
        assert events == args.events, (events, args.events)
        conflicts = conn.execute("select count(*) from conflicts").fetchone()[0]
        types = conn.execute("select type, count(*) from events group by type "
                             "order by count(*) desc").fetchall()
        cases, collective, repeat = conn.execute(
            "select count(*), sum(collective), count(repeat_of) from cases").fetchone()
        mean_raw = conn.execute("select avg(length(raw)) from events").fetchone()[0]
        db_path = node.home / "xinfang.db"
        db_bytes = checkpointed_size(conn, db_path)
        groups = table_bytes(conn, node)
        rows = [(bytes(raw), bytes(sig)) for raw, sig in
                conn.execute("select raw, sig from events order by pos")]
        raws = [raw for raw, _ in rows]

        print("floors: sign, verify, insert …", file=sys.stderr, flush=True)
        sign, signatures, public = bare_sign(raws)
        verify_rate = bare_verify(raws, signatures, public)
        insert, bare_bytes = bare_insert(tmp, rows, args.batch, per_row=False)
        insert_rows, _ = bare_insert(tmp, rows, args.batch, per_row=True)

        print("rebuild (fold alone) …", file=sys.stderr, flush=True)
        with Stopwatch() as watch:
            rebuilt = verify.rebuild(node)
        rebuild_rate = watch.rate("fold alone (rebuild)", rebuilt.events)
        if not rebuilt.consistent:
            print("rebuild found views that differ from the log", file=sys.stderr)
            return 1
        print("verify_log …", file=sys.stderr, flush=True)
        with Stopwatch() as watch:
            checked = verify.verify_log(node.db)
        verify_log_rate = watch.rate("verify_log", checked.events)
        if not checked.ok:
            print(f"verify_log found problems: {checked.problems[:3]}", file=sys.stderr)
            return 1
        where = filesystem(tmp)
        node.close()

    deciles = slices(batches, 10)
    pipeline = total("full pipeline: encode + sign + append + fold", batches)
    results = {
        "events": args.events, "batch": args.batch, "pipeline": pipeline,
        "first": attrs.evolve(deciles[0], label=f"— first {deciles[0].events:,} batched events"),
        "last": attrs.evolve(deciles[-1], label=f"— last {deciles[-1].events:,} batched events"),
        "deciles": deciles,
        "api_start": attrs.evolve(api_start, label="interactive API, empty node"),
        "api_end": attrs.evolve(api_end, label="interactive API, full node"),
        "drafting": drafting,
        "sign": sign, "verify": verify_rate, "insert": insert, "insert_rows": insert_rows,
        "rebuild": rebuild_rate, "verify_log": verify_log_rate,
        "db_bytes": db_bytes, "groups": groups, "mean_raw": mean_raw, "bare_bytes": bare_bytes,
        "cases": cases, "collective": collective or 0, "repeat": repeat, "types": types,
        "conflicts": conflicts,
    }
    info = machine()
    now = dt.datetime.now().astimezone()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    section = "\n".join([
        f"## {now:%Y-%m-%d %H:%M %Z}: {args.events:,} events, batches of {args.batch}",
        "",
        f"- machine: {info['platform']}; {info['cpu']}, {info['cores']} cores",
        f"- Python {info['python']}, cryptography {info['cryptography']}, "
        f"SQLite {info['sqlite']}, sqlite-utils {info['sqlite-utils']}",
        f"- code {code_version()}; load average at the end {load} (1/5/15 min)",
        f"- databases on {where}; seed {args.seed}; `python benchmarks/bench_append.py "
        f"--events {args.events} --batch {args.batch} --api-events {args.api_events}`",
        "",
        report(results),
    ])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
