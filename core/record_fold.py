"""A lifecycle record's events of a page, folded in memory and written once.

The kernel folds a record by reading its row and history and writing them
back, event after event. While a page folds (``page_fold``), a record whose
events of the page arrive in total order after what it holds is loaded once
into a ``Run``: the kernel's same code then reads and writes the run (the
functions below say where), and the run is written once at the end, its
history by ``executemany``; what a plugin writes through ``FoldContext.defer``
(the case deadlines) is written once too. Anything a plugin refuses or holds
on the way sends the page back to the fold one event at a time
(``PageFallback``), the reference these views are held to.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from . import i18n, kernel
from .entities import EntityType
from .errors import Hold, StepRefused

#: positions in a history row as ``Run`` keeps it (``entity_history`` from ``ord`` on)
_STEP, _DATE, _AUTHOR, _DETAILS = 3, 5, 6, 9
#: what ``stored`` says when only SQLite knows what it would give back
_UNSURE = object()
_NUMERIC_START = re.compile(r"\s*[-+]?[0-9.]")


def affinity(declared: str) -> str:
    """The column affinity SQLite gives a declared type (datatype3.html, 3.1)."""
    kind = declared.upper()
    if "INT" in kind:
        return "INTEGER"
    if "CHAR" in kind or "CLOB" in kind or "TEXT" in kind:
        return "TEXT"
    if "BLOB" in kind or not kind:
        return "BLOB"
    if "REAL" in kind or "FLOA" in kind or "DOUB" in kind:
        return "REAL"
    return "NUMERIC"


def stored(value: Any, kind: str) -> Any:
    """What a column of affinity ``kind`` gives back for ``value`` bound into it, or
    ``_UNSURE`` where that takes SQLite's own conversion rules (then the row is
    written and read back)."""
    if value is None or type(value) is bytes:
        return value
    if type(value) is int:
        return str(value) if kind == "TEXT" else value if kind != "REAL" else _UNSURE
    if type(value) is str:
        if kind in ("TEXT", "BLOB") or not _NUMERIC_START.match(value):
            return value
    return _UNSURE


@attrs.frozen
class Shape:
    """A kernel table's columns: names, affinities, and whether each defaults to NULL."""

    names: tuple[str, ...]
    kinds: dict[str, str]
    #: columns a row left out of its insert does not read back as NULL (a default, a
    #: rowid alias, which gets a value of SQLite's choosing)
    not_null: frozenset[str]

    @classmethod
    def of(cls, ctx, table: str) -> "Shape":
        cache = ctx.registry.extras.setdefault("core.shapes", {})
        if table not in cache:
            info = ctx.db.conn.execute(f"pragma table_info([{table}])").fetchall()
            cache[table] = cls(tuple(r[1] for r in info), {r[1]: affinity(r[2]) for r in info},
                               frozenset(r[1] for r in info if r[4] is not None or (
                                   r[5] and r[2].upper() == "INTEGER")))
        return cache[table]


@attrs.define
class Run:
    """One record's events of a page folded in memory, written once at the end.

    ``row`` is the table's row as ``kernel.load`` reads it before decoding
    (``None``: not created), ``history`` its ``entity_history`` rows from ``ord``
    on. The kernel code that folds one event at a time reads and writes here
    through the functions below (``run_of``). A value whose stored form only
    SQLite can tell is written at once and read back (``stale``).
    """

    entity_type: EntityType
    entity_id: str
    shape: Shape
    row: dict[str, Any] | None
    history: list[list[Any]]
    exists: bool
    written_history: int
    pending: dict[str, Any] = attrs.Factory(dict)
    stale: bool = False
    #: the details of ``history`` rows decoded so far (read, never handed out)
    decoded: list[dict[str, Any]] = attrs.Factory(list)
    #: ``taken_by`` as of the first ``taken`` rows of ``history``
    taken: int = 0
    offices: dict[str, dict[str, str]] = attrs.Factory(dict)
    #: bumped at every change of the row or history, so ``recall`` knows what still holds
    version: int = 0
    memo: dict[Any, tuple[int, Any]] = attrs.Factory(dict)
    #: a plugin callback has run for the event being folded (it may have written)
    plugin_ran: bool = False

    @classmethod
    def load(cls, ctx, entity_type: EntityType, entity_id: str) -> "Run":
        cursor = ctx.db.conn.execute(f"select * from [{entity_type.table}] where id = ?",
                                     [entity_id])
        found = cursor.fetchone()
        row = None if found is None else dict(zip(next(zip(*cursor.description)), found))
        history = [list(r) for r in ctx.db.conn.execute(
            "select ord, order_key, event_id, step, label, date, author, operator, status, "
            "details from entity_history where entity = ? and entity_id = ? order by ord",
            [entity_type.name, entity_id])]
        return cls(entity_type, entity_id, Shape.of(ctx, entity_type.table), row, history,
                   row is not None, len(history))

    def view(self, ctx) -> dict[str, Any] | None:
        """The record as ``load`` would read it now (a fresh dict each time)."""
        if self.stale:
            self.write(ctx)
            cursor = ctx.db.conn.execute(f"select * from [{self.entity_type.table}] where id = ?",
                                         [self.entity_id])
            found = cursor.fetchone()
            self.row = None if found is None else dict(zip(next(zip(*cursor.description)), found))
            self.stale = False
        if self.row is None:
            return None
        record = dict(self.row)
        for name in ("facts", "fields"):
            if isinstance(record.get(name), str):
                record[name] = json.loads(record[name])
        return record

    def insert(self, ctx, values: dict[str, Any]) -> None:
        self.row = dict.fromkeys(self.shape.names)
        for name, value in values.items():
            self.row[name] = self._stored(name, value)
        if not self.shape.not_null <= values.keys():
            self.stale = True
        self.pending = dict(values)
        self.version += 1

    def update(self, ctx, values: dict[str, Any]) -> None:
        for name, value in values.items():
            self.row[name] = self._stored(name, value)
            self.pending[name] = value
        self.version += 1

    def _stored(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        found = stored(value, self.shape.kinds[name])
        if found is _UNSURE:
            self.stale = True
            return None
        return found

    def record(self, row: list[Any]) -> None:
        self.history.append([len(self.history), *row])
        self.version += 1

    def history_details(self) -> list[dict[str, Any]]:
        """``kernel.history_details`` from memory: fresh dicts, as the table would give."""
        for row in self.history[len(self.decoded):]:
            self.decoded.append(json.loads(row[_DETAILS]))
        return [{**details, "step": row[_STEP], "date": row[_DATE]}
                for row, details in zip(self.history, self.decoded)]

    def taken_by(self, ctx) -> dict[str, dict[str, str]]:
        """``taken_by`` from the history in memory and the certificates (a fresh copy)."""
        for row in self.history[self.taken:]:
            author = ctx.author_of(row[_AUTHOR])
            if author is not None:
                self.offices[row[_STEP]] = {"area": author.area, "level": author.level}
        self.taken = len(self.history)
        return {step: dict(office) for step, office in self.offices.items()}

    def remember(self, key: Any, value: Any) -> None:
        self.memo[key] = (self.version, value)

    def recall(self, key: Any) -> Any:
        found = self.memo.get(key)
        return found[1] if found is not None and found[0] == self.version else None

    def write(self, ctx) -> None:
        """The row and the new history into the tables."""
        conn, table = ctx.db.conn, self.entity_type.table
        if self.pending:
            columns = [c for c in self.shape.names if c in self.pending]
            values = [self.pending[c] for c in columns]
            if self.exists:
                conn.execute(f"update [{table}] set {', '.join(f'[{c}] = ?' for c in columns)} "
                             "where id = ?", [*values, self.entity_id])
            else:
                conn.execute(f"insert into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
                             f"values ({', '.join('?' * len(columns))})", values)
                self.exists = True
            self.pending = {}
        if len(self.history) > self.written_history:
            conn.executemany(
                "insert into entity_history (entity, entity_id, ord, order_key, event_id, step, "
                "label, date, author, operator, status, details) values "
                "(?,?,?,?,?,?,?,?,?,?,?,?)",
                [[self.entity_type.name, self.entity_id, *row]
                 for row in self.history[self.written_history:]])
            self.written_history = len(self.history)


def run_of(ctx, entity: str, entity_id: str) -> Run | None:
    """The run of ``entity``/``entity_id`` if its events fold in memory now."""
    run = getattr(ctx, "run", None)
    if run is not None and run.entity_id == entity_id and run.entity_type.name == entity:
        return run
    return None


def plugin_runs(ctx) -> None:
    """A plugin callback is about to run for the event folding in memory: from here a
    refusal cannot be undone in memory alone (``fold_run``)."""
    if getattr(ctx, "run", None) is not None:
        ctx.run.plugin_ran = True


def view_of(ctx, entity_type: EntityType, entity_id: str) -> dict[str, Any] | None:
    """``kernel.load`` as the fold sees it: from the run, else from the table."""
    run = run_of(ctx, entity_type.name, entity_id)
    return kernel.load(ctx.db, entity_type, entity_id) if run is None else run.view(ctx)


def history_of(ctx, entity: str, entity_id: str) -> list[dict[str, Any]]:
    """``kernel.history_details`` as the fold sees it."""
    run = run_of(ctx, entity, entity_id)
    return kernel.history_details(ctx.db, entity, entity_id) if run is None \
        else run.history_details()


def taken_by(ctx, entity: str, entity_id: str) -> dict[str, dict[str, str]]:
    """``kernel.taken_by`` as the fold sees it."""
    run = run_of(ctx, entity, entity_id)
    return kernel.taken_by(ctx.db, entity, entity_id) if run is None else run.taken_by(ctx)


def row_exists(ctx, entity_type: EntityType, entity_id: str) -> bool:
    run = run_of(ctx, entity_type.name, entity_id)
    if run is not None:
        return run.row is not None
    return ctx.db.conn.execute(f"select 1 from [{entity_type.table}] where id = ?",
                               [entity_id]).fetchone() is not None


def insert_row(ctx, entity_type: EntityType, entity_id: str, values: dict[str, Any]) -> None:
    run = run_of(ctx, entity_type.name, entity_id)
    if run is not None:
        run.insert(ctx, values)
        return
    ctx.db.conn.execute(
        f"insert into [{entity_type.table}] ({', '.join(f'[{c}]' for c in values)}) "
        f"values ({', '.join('?' * len(values))})", list(values.values()))


def update_row(ctx, entity_type: EntityType, entity_id: str, values: dict[str, Any]) -> None:
    run = run_of(ctx, entity_type.name, entity_id)
    if run is not None:
        run.update(ctx, values)
        return
    ctx.db.conn.execute(
        f"update [{entity_type.table}] set {', '.join(f'[{c}] = ?' for c in values)} "
        "where id = ?", [*values.values(), entity_id])


def add_history(ctx, entity_type: EntityType, entity_id: str, row: list[Any]) -> None:
    """One more step of the record's history (``row``: its columns from order_key on)."""
    run = run_of(ctx, entity_type.name, entity_id)
    if run is not None:
        run.record(row)
        return
    db = ctx.db.conn
    (count,) = db.execute("select count(*) from entity_history where entity = ? and entity_id = ?",
                          [entity_type.name, entity_id]).fetchone()
    db.execute(
        "insert into entity_history (entity, entity_id, ord, order_key, event_id, step, label, "
        "date, author, operator, status, details) values (?,?,?,?,?,?,?,?,?,?,?,?)",
        [entity_type.name, entity_id, count, *row])


class PageFallback(Exception):
    """A plugin refused or held an event of a record folding in memory (``fold_run``)."""


def fold_run(ctx, entity_type: EntityType, events: list, head: tuple | None) -> None:
    """Fold one lifecycle record's events of a page, all after its head, in memory.

    The kernel's own refusals (the state, a guard, the area, a second
    registration) are kept as conflicts as ``fold._apply_one`` keeps them; a
    refusal or a hold once a plugin callback ran for the event, or from
    ``xinfang_event_applied``, raises ``PageFallback``. Plugins'
    ``xinfang_event_applied`` run once the record is written, for each event
    folded in order; by that hook's rule (a function of the views) they end
    where they would have after each event. What they ``defer`` is written once.
    """
    run = Run.load(ctx, entity_type, events[0].entity_id)
    ctx.run, ctx._deferred = run, {}
    try:
        applied, conflicts, area = _fold_events(ctx, run, entity_type, events, head)
        run.write(ctx)
        _flush(ctx)
        ctx.run = None
        _store_outcome(ctx, events[-1], conflicts, area)
        for event in applied:
            ctx.registry.pm.hook.xinfang_event_applied(context=ctx, event=event)
        _flush(ctx)
    except (StepRefused, Hold) as exc:
        raise PageFallback() from exc
    finally:
        ctx.run, ctx._deferred = None, None


def _fold_events(ctx, run: Run, entity_type: EntityType, events: list, head: tuple | None
                 ) -> tuple[list, list, str | None]:
    """The kernel's steps on the run: the events applied, the conflicts, the area the
    record is filed under (None: it files no record)."""
    conflicts, applied = [], []
    area = None
    for event in events:
        run.plugin_ran = False
        try:
            kernel.apply(ctx, entity_type, event)
        except StepRefused as exc:
            if run.plugin_ran:
                raise PageFallback() from exc
            conflicts.append([event.id, event.entity, event.entity_id, event.order_key,
                              event.type, i18n.stored(exc.message)])
            if head is None and area is None:
                area = event.area  # a conflict files a record only while nothing has
        except Hold as exc:
            raise PageFallback() from exc
        else:
            applied.append(event)
            area = event.area
    return applied, conflicts, area


def _store_outcome(ctx, last, conflicts: list, area: str | None) -> None:
    """The page's conflicts of the record and its head."""
    conn = ctx.db.conn
    if conflicts:
        conn.executemany(
            "insert or replace into conflicts (event_id, entity, entity_id, order_key, type, "
            "reason) values (?,?,?,?,?,?)", conflicts)
    if area is None:
        conn.execute("update entity_heads set order_key = ? where entity = ? and entity_id = ?",
                     [last.order_key, last.entity, last.entity_id])
    else:
        conn.execute(
            "insert into entity_heads (entity, entity_id, order_key, area) values (?,?,?,?) "
            "on conflict (entity, entity_id) do update set order_key = excluded.order_key, "
            "area = excluded.area", [last.entity, last.entity_id, last.order_key, area])


def _flush(ctx) -> None:
    """Run what ``FoldContext.defer`` kept, once each, and keep deferring."""
    writes, ctx._deferred = ctx._deferred, {}
    for write in writes.values():
        write()
