"""Bytes per event of the log, and what a leaner layout of it would gain, measured.

The log (``events``) keeps each event's signed bytes and signature, and beside
them columns copied out of those bytes for the queries that find events: the
id, author and previous id as 64-character hex, the order key (a 115-character
string that contains the author's hex again), type, entity and area; and four
indexes over them. This benchmark measures, in the same run:

1. **The log as it is**, on a node holding ``--events`` events (100,000) of
   the benchmark mix (``Node.append_many``, as ``bench_append.py``; or the
   node at ``--node``): bytes per event of the ``events`` table and of each of
   its indexes, from SQLite's ``dbstat`` table, beside a bare table of
   (raw, sig) holding the same bytes.
2. **Which index each query uses.** Every statement on ``events`` that a set
   of everyday operations runs (writing, registering, a step, paging a village
   to its county, bundles both ways, re-folding, checking the log, opening the
   node), caught with SQLite's trace callback with the line that ran it, and
   the index its ``EXPLAIN QUERY PLAN`` names.
3. **Variants**, each in a scratch database filled with the same events in the
   same pages (one transaction and fsync per 500, WAL, ``synchronous=FULL``, as
   the store): ids as 32-byte blobs, the order key as a 56-byte blob that sorts
   the same way, a narrower entity index, the order index dropped, ``WITHOUT
   ROWID``. For each: bytes per event, insert rate, and which of the statements
   of (2) would change plan (a sort, or a scan) on its schema.
4. **A migration**: the events table rewritten into the leanest variant that
   keeps every plan, in one SQL statement, timed.

The real store's schema is not changed.

    python benchmarks/bench_storage.py                              # 100,000 events
    python benchmarks/bench_storage.py --node /var/tmp/xinfang-1m   # an existing node
    python benchmarks/bench_storage.py --events 5000 --out -        # quick, no file written

Results are appended to ``benchmarks/STORAGE_RESULTS.md``. Only synthetic data.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import attrs

from xinfang.core.node import Node
from xinfang.core import store, verify
from xinfang.plugins.cases import api
from xinfang.sync import bundle, receive, send, wire

from bench_append import API_TODAY, UNITS
from bench_register import (Statement, build_node, caller, case_inputs, code_state,
                            count_events, load, lscpu, say)
from bench_sync import COUNTY_NAME, Tree, write_events
from common import Rate, Stopwatch, filesystem, machine, publish

HERE = Path(__file__).resolve().parent
BATCH = 500
COLUMNS = ("id", "author", "epoch", "seq", "prev", "order_key", "type", "entity", "entity_id",
           "area", "raw", "sig")


# -- the log as it is ------------------------------------------------------------


def dbstat(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """(bytes of pages, bytes of payload) per table and index, from ``dbstat``."""
    try:
        rows = conn.execute("select name, sum(pgsize), sum(payload) from dbstat "
                            "group by name").fetchall()
    except sqlite3.OperationalError:
        raise SystemExit("this SQLite has no dbstat table (SQLITE_ENABLE_DBSTAT_VTAB); "
                         "page counts would need sqlite3_analyzer") from None
    return {name: (pages, payload) for name, pages, payload in rows}


def log_objects(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """The ``events`` table and its indexes: (name, the SQL that made it, or 'unique …')."""
    rows = conn.execute("select name, sql from sqlite_master where tbl_name = 'events' "
                        "order by type desc, name").fetchall()
    out = []
    for name, sql in rows:
        if sql is None:  # an index SQLite made for a unique constraint
            columns = [r[2] for r in conn.execute(f"pragma index_info([{name}])")]
            sql = f"unique ({', '.join(columns)})"
        out.append((name, " ".join(re.sub(r"--[^\n]*", "", sql).split())))
    return out


def column_bytes(conn: sqlite3.Connection) -> dict[str, float]:
    """Mean stored bytes of each column of the log (length of text or blob, 8 for integers)."""
    parts = ", ".join(f"avg(case when typeof({c}) = 'integer' then 8 else length(cast({c} as blob))"
                      f" end)" for c in COLUMNS)
    row = conn.execute(f"select {parts} from events").fetchone()
    return dict(zip(COLUMNS, row))


# -- which index each statement uses ---------------------------------------------


@attrs.frozen
class Seen:
    """A statement on ``events`` as it ran, the operation that ran it and its line."""

    operation: str
    statement: Statement


class Tracer:
    """Catches the statements on ``events`` of every node it is attached to."""

    def __init__(self) -> None:
        self.operation = ""
        self.seen: dict[tuple[str, str], Seen] = {}

    def attach(self, node: Node) -> None:
        node.db.conn.set_trace_callback(self._record)

    def _record(self, sql: str) -> None:
        if not re.search(r"\bevents\b", sql) or not sql.lstrip()[:6].lower() in (
                "select", "insert", "update", "delete", "with"):
            return
        statement = Statement(sql, caller())
        self.seen.setdefault((statement.template, statement.where),
                             Seen(self.operation, statement))

    def run(self, operation: str, work: Callable[[], Any]) -> Any:
        self.operation = operation
        return work()


def everyday(base: Path, events: int) -> list[Seen]:
    """The statements on ``events`` of a village and its county going about their work."""
    tracer = Tracer()
    tree = Tree(base, villages=1, townships=0)
    village, county = tree.villages[0], tree.county
    for node in (village, county):
        tracer.attach(node)
    data = case_inputs(3, seed=7)
    data = [attrs.evolve(d, area=village.info.area) for d in data]
    tracer.run("write (append_many)", lambda: write_events(village, tree.streams[0], events, BATCH))
    case_id = tracer.run("register_case", lambda: api.register_case(village, data[0],
                                                                   today=API_TODAY))
    tracer.run("take_step", lambda: api.take_step(village, case_id, "accept", {
        "date": "2025-12-23", "unit": UNITS[0], "leader": "王某", "handler": "周某"},
        today=API_TODAY))

    def page_up() -> None:
        frontier = wire.frontier(county.db)
        send.count_missing(village, county.info.area, frontier)
        for page in send.pages_for(village, county.info.area, frontier):
            receive.apply_page(county, page, peer=village.info.author)

    tracer.run("pages village -> county (count_missing, pages_for, apply_page)", page_up)
    api.register_case(village, data[1], today=API_TODAY)
    up, down = base / "up.bundle", base / "down.bundle"
    tracer.run("bundle export", lambda: bundle.export_bundle(village, COUNTY_NAME, up))
    tracer.run("bundle import", lambda: bundle.import_bundle(county, up))
    tracer.run("bundle export", lambda: bundle.export_bundle(county, village.info.name, down))
    tracer.run("bundle import", lambda: bundle.import_bundle(village, down))
    tracer.run("refold of one record (store.events_of)",
               lambda: list(store.events_of(county.db, "case", case_id)))
    tracer.run("vault re-keying (store.all_events by pos)",
               lambda: sum(1 for _ in store.all_events(county.db, order="pos")))
    tracer.run("verify_log", lambda: verify.verify_log(county.db))
    tracer.run("rebuild", lambda: verify.rebuild(county))
    home = county.home
    county.close()
    tracer.run("open", lambda: open_traced(home, tracer))
    village.close()
    return list(tracer.seen.values())


def open_traced(home: Path, tracer: Tracer) -> None:
    """Open a node with the tracer on its connection from the first statement: opening
    (migrations, the clock's catch-up) runs before ``Node.open`` returns."""
    connect = sqlite3.connect

    def traced(*args, **kwargs) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(tracer._record)
        return conn

    with mock.patch.object(sqlite3, "connect", traced):
        node = Node.open(home)
    node.close()


INDEX = re.compile(r"USING (?:COVERING )?INDEX (\w+)|USING (INTEGER PRIMARY KEY)|"
                   r"^(SCAN) (?:events|e)\b")


def plan_of(conn: sqlite3.Connection, sql: str) -> tuple[str, ...]:
    try:
        return tuple(row[3] for row in conn.execute("explain query plan " + sql))
    except sqlite3.Error as exc:
        return (f"(no plan: {exc})",)


def indexes_used(plan: tuple[str, ...]) -> list[str]:
    """The names of what a plan reads ``events`` through (``SCAN`` for the whole table)."""
    used = []
    for line in plan:
        if not re.search(r"\b(?:events|e)\b", line):
            continue
        match = INDEX.search(line)
        if match:
            used.append(match.group(1) or match.group(2) or "SCAN")
    return used


# -- variants --------------------------------------------------------------------


def order_blob(key: str) -> bytes:
    """The order key as bytes that sort as the text does: wall, counter, author, epoch, seq.

    Every field of the text is fixed-width and zero-padded (a wall time from
    10**15 ms on is written ``:`` + 16 digits, which sorts after every 15-digit
    one), so big-endian integers of fixed width keep the order.
    """
    wall, counter, author, epoch, seq = key.split(".")
    return (struct.pack(">QI", int(wall.lstrip(":")), int(counter)) + bytes.fromhex(author)
            + struct.pack(">IQ", int(epoch), int(seq)))


def unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def same(value):
    return value


@attrs.frozen
class Layout:
    """One way to store the log: its DDL, and how a row of today's log converts to it."""

    name: str
    what: str
    ddl: str
    binary_ids: bool = False
    binary_order: bool = False

    def convert(self, row: tuple) -> tuple:
        to_id = unhex if self.binary_ids else same
        to_order = order_blob if self.binary_order else same
        (id_, author, epoch, seq, prev, order_key, *rest) = row
        return (to_id(id_), to_id(author), epoch, seq, to_id(prev), to_order(order_key), *rest)

    def sql_convert(self) -> str:
        """The same conversion in SQL, for a migration (``unhex`` and ``order_blob`` are
        registered as functions on the connection)."""
        ident = (lambda c: f"unhex({c})") if self.binary_ids else (lambda c: c)
        order = "order_blob(order_key)" if self.binary_order else "order_key"
        return ", ".join([ident("id"), ident("author"), "epoch", "seq", ident("prev"), order,
                          "type", "entity", "entity_id", "area", "raw", "sig"])


def table_ddl(ids: str, order: str, key: str = "pos integer primary key,",
              unique: str = "unique (author, epoch, seq)", tail: str = "") -> str:
    return f"""create table events (
        {key}
        id {ids} not null unique, author {ids} not null, epoch integer not null,
        seq integer not null, prev {ids}, order_key {order} not null, type text not null,
        entity text not null, entity_id text not null, area text not null,
        raw blob not null, sig blob not null{', ' + unique if unique else ''}
    ){tail};"""


ENTITY_FULL = "create index events_entity on events (entity, entity_id, order_key);"
ENTITY_NARROW = "create index events_entity on events (entity, entity_id);"
ORDER_INDEX = "create index events_order on events (order_key);"


def layouts(today_ddl: str) -> list[Layout]:
    return [
        Layout("as today", "the store's own DDL, copied from the node", today_ddl),
        Layout("entity index narrowed", "as today, `events_entity` on (entity, entity_id) only",
               table_ddl("text", "text") + ENTITY_NARROW + ORDER_INDEX),
        Layout("entity index narrowed, order index dropped",
               "as above, without `events_order`",
               table_ddl("text", "text") + ENTITY_NARROW),
        Layout("binary ids", "id, author, prev as 32-byte blobs; indexes as today",
               table_ddl("blob", "text") + ENTITY_FULL + ORDER_INDEX, binary_ids=True),
        Layout("binary ids and order key",
               "as above, and the order key as 56 bytes (wall 8, counter 4, author 32, "
               "epoch 4, seq 8) that sort as the text",
               table_ddl("blob", "blob") + ENTITY_FULL + ORDER_INDEX, binary_ids=True,
               binary_order=True),
        Layout("binary, entity index narrowed",
               "binary ids and order key, `events_entity` on (entity, entity_id)",
               table_ddl("blob", "blob") + ENTITY_NARROW + ORDER_INDEX, binary_ids=True,
               binary_order=True),
        Layout("binary, WITHOUT ROWID",
               "binary ids and order key; the table keyed by (author, epoch, seq) "
               "`WITHOUT ROWID`, so the feed index is the table; no `pos`",
               table_ddl("blob", "blob", key="", unique="primary key (author, epoch, seq)",
                         tail=" without rowid") + ENTITY_FULL + ORDER_INDEX,
               binary_ids=True, binary_order=True),
    ]


@attrs.frozen
class Filled:
    layout: Layout
    rate: Rate
    file_bytes: int
    objects: dict[str, tuple[int, int]]
    changed: list[tuple[Seen, tuple[str, ...], tuple[str, ...]]]


def source_pages(conn: sqlite3.Connection) -> Iterator[list[tuple]]:
    """Today's rows in arrival order, a page of ``BATCH`` at a time."""
    after = 0
    columns = ", ".join(COLUMNS)
    while True:
        rows = conn.execute(f"select pos, {columns} from events where pos > ? order by pos "
                            f"limit {BATCH}", [after]).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield [row[1:] for row in rows]


def scratch(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = full")
    return conn


def other_tables(source: sqlite3.Connection) -> list[str]:
    """The DDL of every other table and index of the node, so that plans can be made."""
    return [sql for (sql,) in source.execute(
        "select sql from sqlite_master where sql is not null and tbl_name != 'events' "
        "and name not like 'sqlite_%' order by type desc")]


def fill(layout: Layout, source: sqlite3.Connection, directory: Path,
         statements: list[Seen], today_plans: dict[str, tuple[str, ...]]) -> Filled:
    """The log's rows into a fresh database of ``layout``, a page per transaction."""
    path = directory / f"{re.sub(r'[^a-z]+', '-', layout.name)}.db"
    conn = scratch(path)
    conn.executescript(layout.ddl)
    width = len(COLUMNS)
    sql = (f"insert or ignore into events ({', '.join(COLUMNS)}) "
           f"values ({', '.join('?' * width)})")
    seconds = cpu = 0.0
    events = 0
    for page in source_pages(source):
        rows = [layout.convert(row) for row in page]
        with Stopwatch() as watch:
            conn.execute("begin")
            conn.executemany(sql, rows)
            conn.execute("commit")
        seconds, cpu, events = seconds + watch.wall, cpu + watch.cpu, events + len(rows)
    conn.execute("pragma wal_checkpoint(truncate)")
    file_bytes = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    objects = {name: size for name, size in dbstat(conn).items()
               if name == "events" or name.startswith(("events_", "sqlite_autoindex_events"))}
    for ddl in other_tables(source):
        conn.execute(ddl)
    changed = []
    for seen in statements:
        plan = plan_of(conn, seen.statement.sql)
        if plan != today_plans[seen.statement.sql]:
            changed.append((seen, today_plans[seen.statement.sql], plan))
    conn.close()
    path.unlink()
    Path(f"{path}-wal").unlink(missing_ok=True)
    Path(f"{path}-shm").unlink(missing_ok=True)
    return Filled(layout, Rate(layout.name, events, seconds, cpu), file_bytes, objects, changed)


def bare(source: sqlite3.Connection, directory: Path) -> Filled:
    """The floor: (raw, sig) alone, in the same pages."""
    layout = Layout("bare (raw, sig)", "a plain table of the signed bytes and signatures",
                    "create table events (pos integer primary key, raw blob not null, "
                    "sig blob not null);")
    path = directory / "bare.db"
    conn = scratch(path)
    conn.executescript(layout.ddl)
    seconds = cpu = 0.0
    events = 0
    for page in source_pages(source):
        rows = [row[-2:] for row in page]
        with Stopwatch() as watch:
            conn.execute("begin")
            conn.executemany("insert into events (raw, sig) values (?, ?)", rows)
            conn.execute("commit")
        seconds, cpu, events = seconds + watch.wall, cpu + watch.cpu, events + len(rows)
    conn.execute("pragma wal_checkpoint(truncate)")
    file_bytes = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    objects = {n: s for n, s in dbstat(conn).items() if n == "events"}
    conn.close()
    path.unlink()
    return Filled(layout, Rate(layout.name, events, seconds, cpu), file_bytes, objects, [])


def migrate(layout: Layout, node_db: Path, directory: Path) -> tuple[Rate, bool]:
    """The log rewritten into ``layout`` by one ``insert … select`` in one transaction,
    as a migration would; and whether every row's order is kept."""
    path = directory / "migrated.db"
    conn = scratch(path)
    conn.create_function("unhex", 1, unhex, deterministic=True)
    conn.create_function("order_blob", 1, order_blob, deterministic=True)
    conn.executescript(layout.ddl)
    conn.execute("attach database ? as old", [f"file:{node_db}?mode=ro"])
    events = conn.execute("select count(*) from old.events").fetchone()[0]
    with Stopwatch() as watch:
        conn.execute("begin")
        conn.execute(f"insert into events ({', '.join(COLUMNS)}) select {layout.sql_convert()} "
                     "from old.events order by pos")
        conn.execute("commit")
    # the order of the new keys must be the order of the old ones, row for row
    old = [r[0] for r in conn.execute("select id from old.events order by order_key")]
    new = [r[0].hex() if isinstance(r[0], bytes) else r[0]
           for r in conn.execute("select id from events order by order_key")]
    conn.close()
    path.unlink()
    return watch.rate(f"migration into “{layout.name}”", events), old == new


def worse(before: tuple[str, ...], after: tuple[str, ...]) -> bool:
    """Whether a plan reads more than it did: a new sort, a scan, or no plan at all.

    The same search under another name (the primary key of a ``WITHOUT ROWID``
    table, a covering index) is not worse.
    """
    def scanning(line: str) -> bool:
        return line.startswith("SCAN") or (line.startswith("SEARCH") and " USING " not in line)

    for line in after:
        if line.startswith("(no plan"):
            return True
        if "TEMP B-TREE" in line and line not in before:
            return True
        if scanning(line) and sum(map(scanning, after)) > sum(map(scanning, before)):
            return True
    return False


def harmless(changed) -> bool:
    """Whether every worse plan of a layout adds at most a sort of what an index found
    for one record (a handful of rows), never a scan of the log nor a failure."""
    for seen, before, after in changed:
        if not worse(before, after):
            continue
        for line in after:
            if line.startswith("(no plan") or line.startswith("SCAN") or (
                    line.startswith("SEARCH") and " USING " not in line):
                if line not in before:
                    return False
        if "entity_id=?" not in " ".join(after):
            return False
    return True


# -- reporting -------------------------------------------------------------------


def per_event(size: float, events: int) -> str:
    return f"{size / events:,.0f}"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def report(r: dict[str, Any]) -> str:
    events = r["events"]
    stats: dict[str, tuple[int, int]] = r["stats"]
    lines = [f"### 1. The log as it is, at {events:,} events", "",
             "| object | definition | bytes/event (pages) | bytes/event (payload) |",
             "|---|---|---:|---:|"]
    log_total = 0
    for name, sql in r["objects"]:
        pages, payload = stats.get(name, (0, 0))
        log_total += pages
        lines.append(f"| `{name}` | {cell(sql if len(sql) < 90 else sql[:87] + '…')} | "
                     f"{per_event(pages, events)} | {per_event(payload, events)} |")
    bare_filled: Filled = r["bare"]
    bare_pages = sum(p for p, _ in bare_filled.objects.values())
    lines += [f"| **the log, all of it** | | **{per_event(log_total, events)}** | |",
              f"| bare table of (raw, sig), same rows | `{cell(bare_filled.layout.ddl)}` | "
              f"{per_event(bare_pages, events)} | |",
              "",
              "Mean stored bytes per column (text and blob lengths; integers counted as 8): "
              + ", ".join(f"{c} {v:,.0f}" for c, v in r["columns"].items()) + ".",
              "",
              "### 2. Which index each statement on `events` uses", "",
              f"{len(r['statements'])} distinct statements on `events` ran in: "
              + ", ".join(dict.fromkeys(s.operation for s in r["statements"])) + ".", "",
              "| reads `events` through | statements | where (first operation that ran it) |",
              "|---|---:|---|"]
    by_index: dict[str, list[Seen]] = collections.defaultdict(list)
    for seen in r["statements"]:
        for used in set(indexes_used(r["plans"][seen.statement.sql])) or {"(writes only)"}:
            by_index[used].append(seen)
    names = [name for name, _ in r["objects"] if name != "events"] + [
        "INTEGER PRIMARY KEY", "SCAN", "(writes only)"]
    for name in names:
        users = by_index.get(name, [])
        where = "; ".join(dict.fromkeys(f"{cell(s.statement.where)} ({s.operation})"
                                        for s in users))
        lines.append(f"| `{name}` | {len(users)} | {where or '**no statement**'} |")
    lines += ["", "### 3. Variants, filled with the same rows in pages of "
                  f"{BATCH} (one transaction + fsync each)", "",
              "| layout | log bytes/event | file bytes/event | against today | insert events/s | "
              "CPU µs/event | plans worse | what |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    today_bytes = sum(p for p, _ in r["filled"][0].objects.values())
    for filled in [*r["filled"], bare_filled]:
        size = sum(p for p, _ in filled.objects.values())
        worse_plans = (sum(worse(b, a) for _, b, a in filled.changed)
                       if filled is not bare_filled else "—")
        lines.append(f"| {filled.layout.name} | {per_event(size, events)} | "
                     f"{per_event(filled.file_bytes, events)} | {size / today_bytes:.2f} | "
                     f"{filled.rate.per_second:,.0f} | {filled.rate.cpu_micros:.1f} | "
                     f"{worse_plans} | {cell(filled.layout.what)} |")
    lines += ["", "Per object, bytes/event (pages):", "",
              "| layout | " + " | ".join(f"`{n}`" for n in r["object_names"]) + " |",
              "|---|" + "---:|" * len(r["object_names"])]
    for filled in r["filled"]:
        lines.append(f"| {filled.layout.name} | " + " | ".join(
            per_event(filled.objects[n][0], events) if n in filled.objects else "—"
            for n in r["object_names"]) + " |")
    lines += ["", "Statements whose plan on a variant's schema reads more than today's (a new "
                  "sort, a scan, or none at all; the same search under another name is left "
                  "out):", ""]
    any_changed = False
    for filled in r["filled"]:
        for seen, before, after in filled.changed:
            if not worse(before, after):
                continue
            any_changed = True
            lines.append(f"- *{filled.layout.name}*: `{cell(short(seen.statement.sql))}` "
                         f"({seen.statement.where}, {seen.operation}): "
                         f"{'; '.join(before)} → **{'; '.join(after)}**")
    if not any_changed:
        lines.append("(none)")
    rate, kept = r["migration"]
    lines += ["", "### 4. A migration", "",
              f"{rate.label}: {rate.events:,} events in {rate.seconds:,.1f} s "
              f"({rate.per_second:,.0f} events/s, CPU {rate.cpu_micros:.1f} µs/event), one "
              f"`insert … select` in one transaction (`unhex` and the order key's packing as "
              f"Python functions); order of the rows by the new key equals the order by the "
              f"old: {'yes' if kept else '**NO**'}."]
    return "\n".join(lines)


def short(sql: str, width: int = 140) -> str:
    text = " ".join(sql.split())
    return (text[:width] + " …") if len(text) > width else text


HEADER = """# Storage benchmarks

`benchmarks/bench_storage.py` measures the bytes per event of the log
(`events` and each of its indexes, from SQLite's `dbstat`) beside a bare
table of the same (raw, sig) bytes; which index each statement on the log
uses (traced while a village and its county write, register, page, bundle,
re-fold and check); and variants of the log's layout in scratch databases
(binary ids, a binary order key, a narrower entity index, no order index,
`WITHOUT ROWID`), each with its bytes per event, its insert rate and the
plans it would change. The real store's schema is not changed. Each run
appends a section below:

    python benchmarks/bench_storage.py --node /var/tmp/xinfang-1m
"""


# -- the run ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events on the node")
    parser.add_argument("--trace-events", type=int, default=2_000,
                        help="events the village writes in the traced operations")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--node", type=Path, default=None,
                        help="an existing node to measure (built there if missing)")
    parser.add_argument("--out", default=str(HERE / "STORAGE_RESULTS.md"),
                        help="markdown file the results are appended to; '-' for none")
    args = parser.parse_args(argv)

    started = dt.datetime.now().astimezone()
    load_start = load()
    with tempfile.TemporaryDirectory(prefix="xinfang-storage-") as tmp:
        tmp = Path(tmp)
        node = build_node(args.node or tmp / "county", args.events, BATCH, args.seed)
        node.db.execute("pragma wal_checkpoint(truncate)")
        node_db = node.home / "xinfang.db"
        events = count_events(node)
        node.close()
        source = sqlite3.connect(f"file:{node_db}?mode=ro", uri=True)
        say("dbstat of the log …")
        stats = dbstat(source)
        objects = log_objects(source)
        columns = column_bytes(source)
        today_ddl = ";\n".join(sql for _, sql in objects if not sql.startswith("unique")) + ";"

        say("tracing the statements on events of everyday operations …")
        statements = everyday(tmp / "trace", args.trace_events)
        plans = {s.statement.sql: plan_of(source, s.statement.sql) for s in statements}

        filled = []
        for layout in layouts(today_ddl):
            say(f"filling “{layout.name}” …")
            filled.append(fill(layout, source, tmp, statements, plans))
        say("filling the bare table …")
        bare_filled = bare(source, tmp)
        leanest = min((f for f in filled if harmless(f.changed)),
                      key=lambda f: sum(p for p, _ in f.objects.values()))
        say(f"migrating into “{leanest.layout.name}” …")
        migration = migrate(leanest.layout, node_db, tmp)
        source.close()
        where = filesystem(node_db)
        if args.node is None:
            shutil.rmtree(tmp / "county", ignore_errors=True)

    object_names = list(dict.fromkeys(n for f in filled for n in f.objects))
    results = {"events": events, "stats": stats, "objects": objects, "columns": columns,
               "statements": statements, "plans": plans, "filled": filled, "bare": bare_filled,
               "object_names": object_names, "migration": migration}
    info = machine()
    command = ["python benchmarks/bench_storage.py"] + (argv if argv is not None else
                                                         sys.argv[1:])
    section = "\n".join([
        f"## {started:%Y-%m-%d %H:%M %Z}: the log's bytes at {events:,} events, and variants",
        "",
        "```", lscpu(), "```", "",
        f"- Python {info['python']}, SQLite {info['sqlite']}, sqlite-utils "
        f"{info['sqlite-utils']}, cryptography {info['cryptography']}; {info['platform']}",
        f"- code {code_state()}; load average (1/5/15 min) {load_start} at the start, "
        f"{load()} at the end",
        f"- databases on {where}; `{' '.join(command)}`",
        "",
        report(results),
    ])
    publish(section, args.out, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
