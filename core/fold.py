"""Folding events into views.

Views are a deterministic function of the *set* of events and of the synced
policy in force: each entity's events are applied in the total order (hybrid
clock, author, epoch, sequence). An event that arrives after a later one of
the same entity has been applied triggers a re-fold of that entity alone, so
any arrival order, with any duplicates, gives the same views byte for byte.
An event the entity's state cannot accept is kept in the log and listed in
``conflicts``, never dropped.

Three things an event can be besides folded, none of which touches the log:

* **excluded**: a revocation or a fork puts it past a point its feed may not
  go beyond (``exclusions``, ``frozen_feeds``); the fold skips it, and a
  rebuild skips it again, since the rule is itself folded from events and
  fork evidence;
* **held**: no installed plugin handles its entity or event type, or the
  policy code in force is not installed; its entity has no view here until
  the plugin comes (``held_entities``), and the next open folds it;
* a **conflict**, as above.

The fold reads only events, synced policy and trust data: never the clock,
never a local setting.

A page of events (a sync page, a local batch, a trusted copy) folds a page at
a time (``page_fold``), to the views of ``apply`` on each event in turn.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Collection, Iterable

import attrs
import sqlite_utils

from . import codec, i18n, kernel, store
from .errors import Hold, StepRefused
from .event import Event
from .plugins import Registry
from .views import plain_value, dump_views, view_tables, views_digest  # noqa: F401  (fold.* callers)


@attrs.define
class FoldContext:
    """What fold code may use: the views, the registry and policy (never clear values)."""

    db: sqlite_utils.Database
    registry: Registry
    _pending: set[tuple[str, str]] = attrs.Factory(set)
    _excluding: set[str] | None = None
    _held: set[tuple[str, str]] | None = None
    _policy: dict[tuple[str, str], Any] = attrs.Factory(dict)
    _effects: dict[Any, list[Any]] = attrs.Factory(dict)
    #: the record whose events of a page fold in memory (``record_fold.Run``)
    run: Any = None
    #: ``defer``'s writes, while a page folds
    _deferred: dict[Any, Callable[[], None]] | None = None
    #: certified offices by key, read once a page (no fold writes ``certs``)
    _authors: dict[str, Any] | None = None

    def columns(self, table: str) -> tuple[str, ...]:
        """A view table's columns, read once per registry (migrations ran before)."""
        cache = self.registry.extras.setdefault("core.columns", {})
        if table not in cache:
            cache[table] = tuple(r[1] for r in self.db.conn.execute(
                f"pragma table_info([{table}])"))
        return cache[table]

    def author_of(self, key: str):
        """``kernel.author_of``, read once a page while a page folds."""
        if self._authors is None:
            return kernel.author_of(self.db, key)
        if key not in self._authors:
            self._authors[key] = kernel.author_of(self.db, key)
        return self._authors[key]

    def defer(self, key: Any, write: Callable[[], None]) -> None:
        """Run ``write`` now, or once a record's events of a page are folded (a later
        ``write`` under ``key`` replaces it): rows rewritten after each event, once."""
        if self._deferred is None:
            return write()
        self._deferred[key] = write

    def recall(self, key: Any) -> Any:
        """What ``remember`` kept under ``key`` if the record in memory is unchanged since."""
        return None if self.run is None else self.run.recall(key)

    def remember(self, key: Any, value: Any) -> None:
        if self.run is not None:
            self.run.remember(key, value)

    # -- policy ------------------------------------------------------------------

    def policy(self, key: str, area: str) -> Any:
        """The value of ``key`` in force at ``area``: the most specific one set, else
        the default its plugin declares (the same on every node with that plugin)."""
        cache_key = (key, area)
        if cache_key not in self._policy:
            row = self.db.conn.execute(
                "select value from policy_values where key = ? and ? like area || '%' "
                "order by length(area) desc limit 1", [key, area]).fetchone()
            if row is not None:
                value = json.loads(row[0])
            else:
                declared = self.registry.policy_keys.get(key)
                value = declared.default if declared is not None else None
            self._policy[cache_key] = value
        return self._policy[cache_key]

    def policy_changed(self, key: str, area: str) -> None:
        """Re-fold what reads ``key`` under ``area``: policy applies to every entity."""
        self._policy.clear()
        declared = self.registry.policy_keys.get(key)
        readers = set(declared.entities) if declared is not None else set()
        types = [t.name for t in self.registry.entity_types.values()
                 if key in t.policy or t.name in readers]
        for entity in types:
            for table in ("entity_heads", "held_entities"):
                for (entity_id,) in self.db.conn.execute(
                        f"select entity_id from {table} where entity = ? and area like ? || '%'",
                        [entity, area]):
                    self._pending.add((entity, entity_id))

    # -- exclusion ---------------------------------------------------------------

    def excluded(self, event: Event) -> bool:
        if self._excluding is None:
            self._excluding = {row[0] for row in self.db.conn.execute(
                "select author from exclusions union select author from frozen_feeds")}
        if event.author not in self._excluding:
            return False
        return excluded_reason(self.db, event.author, event.epoch, event.seq) is not None

    def exclude(self, author: str, epoch: int, seq: int, reason: str | i18n.Message,
                source: str) -> None:
        """Exclude ``author``'s events after (epoch, seq), and re-fold what they touched.

        ``reason`` is stored language-independent (``i18n.stored``); readers ``show`` it."""
        reason = i18n.stored(reason)
        row = self.db.conn.execute("select epoch, seq from exclusions where author = ? and "
                                   "source = ?", [author, source]).fetchone()
        self.db.conn.execute(
            "insert or replace into exclusions (author, epoch, seq, reason, source) "
            "values (?,?,?,?,?)", [author, epoch, seq, reason, source])
        if self._excluding is not None:  # a re-fold may have read the table without it
            self._excluding.add(author)
        self.effect(("exclusion", author, source), tuple(row) if row else None, (epoch, seq),
                    lambda: self.exclusions_changed(author))

    def unexclude(self, author: str, source: str) -> None:
        row = self.db.conn.execute("select epoch, seq from exclusions where author = ? and "
                                   "source = ?", [author, source]).fetchone()
        if row is not None:
            self.db.conn.execute("delete from exclusions where author = ? and source = ?",
                                 [author, source])
            self._excluding = None
            self.effect_removed(("exclusion", author, source), tuple(row),
                                lambda: self.exclusions_changed(author))

    def exclusions_changed(self, author: str) -> None:
        """A rule about ``author`` came or went: re-fold every entity its events touch."""
        self._excluding = None
        for entity, entity_id in self.db.conn.execute(
                "select distinct entity, entity_id from events where author = ?", [author]):
            self._pending.add((entity, entity_id))

    def is_held(self, entity: str, entity_id: str) -> bool:
        if self._held is None:
            self._held = {tuple(r) for r in self.db.conn.execute(
                "select entity, entity_id from held_entities")}
        return (entity, entity_id) in self._held

    # -- effects of control entities on other entities ---------------------------

    def effect(self, key: Any, current: Any, new: Any, on_change) -> None:
        """A control entity (policy, revocation) sets ``key`` to ``new``.

        ``on_change`` runs at ``settle_effects``, once, if the value the fold ends
        with differs from the one it found (``current`` at the first setting, or
        what the entity's reset removed). Values passed through do not count: a
        re-fold may fold an event before the rule that excludes it, then override
        it. So re-folding a control entity to the same result re-folds nothing else.
        """
        self._effects.setdefault(key, [current, new, on_change])[1:] = [new, on_change]

    def effect_removed(self, key: Any, old: Any, on_change) -> None:
        """A reset took away ``key``'s value; ``on_change`` runs if no fold restores it."""
        self._effects.setdefault(key, [old, None, on_change])[1] = None

    def settle_effects(self) -> None:
        """Run ``on_change`` for each key whose value differs from before the fold."""
        effects, self._effects = self._effects, {}
        for before, after, on_change in effects.values():
            if before != after and on_change is not None:
                on_change()

    def refold_later(self, entity: str, entity_id: str) -> None:
        self._pending.add((entity, entity_id))

    def drain(self, only: Iterable[str] | None = None) -> None:
        """Re-fold what policy or exclusion changes marked, until nothing is left
        (with ``only``, re-fold entities of those types and drop the rest).

        This ends: a re-fold starts from its entity's reset, so it never reads what its
        last fold set, and one that ends where it started marks nothing (``effect``).
        Should fold code break that, a round starting from the state an earlier one
        started from raises ``FoldCycle``, rather than spin for ever.
        """
        self.settle_effects()
        rounds = 0
        seen: dict[str, int] = {}
        history: list[list[tuple[str, str]]] = []
        keep = None if only is None else set(only)
        while self._pending:
            pending, self._pending = sorted(
                p for p in self._pending if keep is None or p[0] in keep), set()
            rounds += 1
            if rounds > CYCLE_CHECK_AFTER:
                state = _state_digest(self, pending)
                if state in seen:
                    raise FoldCycle(history[seen[state]:])
                seen[state] = len(history)
                history.append(pending)
            for entity, entity_id in pending:
                refold(self, entity, entity_id)


#: rounds after which each round of a drain is checked for a cycle: far more than a
#: revocation down a chain of ``certs.MAX_CHAIN`` keys takes; checking costs only time
CYCLE_CHECK_AFTER = 64


class FoldCycle(RuntimeError):
    """Re-folding fed on itself (a bug in fold code, not in the data): a round of
    ``drain`` began from the very views and marks an earlier one did, so it never ends."""

    def __init__(self, rounds: list[list[tuple[str, str]]]):
        self.entities = sorted({pair for pending in rounds for pair in pending})
        shown = ", ".join(f"{entity}/{key[:16]}" for entity, key in self.entities[:20])
        more = " (+{})".format(len(self.entities) - 20) if len(self.entities) > 20 else ""
        # for developers, like a failed assertion: no user can cause it, so not catalogued
        super().__init__("re-folding does not settle: a cycle of {} round(s) re-folds {}{} "
                         "again and again".format(len(rounds), shown, more))


def _state_digest(ctx: FoldContext, pending: list[tuple[str, str]]) -> str:
    """Every view row and the entities about to be re-folded: what a round starts from."""
    digest = hashlib.sha256(codec.encode([list(p) for p in pending]))
    for table, rows in sorted(dump_views(ctx.db, ctx.registry).items()):
        digest.update(codec.encode([table, [[plain_value(v) for v in row] for row in rows]]))
    return digest.hexdigest()


def excluded_reason(db, author: str, epoch: int, seq: int) -> str | None:
    """Why (author, epoch, seq) is excluded from the views, or None: the stored text,
    which ``i18n.show`` renders in the reader's language."""
    row = db.conn.execute(
        "select reason from exclusions where author = ? and (epoch < ? or (epoch = ? and seq < ?)) "
        "order by epoch, seq limit 1", [author, epoch, epoch, seq]).fetchone()
    if row:
        return row[0]
    row = db.conn.execute("select reason from frozen_feeds where author = ? and epoch = ? "
                          "and seq <= ?", [author, epoch, seq]).fetchone()
    return row[0] if row else None


def apply(ctx: FoldContext, event: Event) -> None:
    """Fold an event just added to the log."""
    _apply_event(ctx, event)
    ctx.drain()


def _apply_event(ctx: FoldContext, event: Event, unseen: Collection[str] = ()) -> None:
    """``apply`` without its drain; ``unseen`` as ``refold`` takes it."""
    if not ctx.excluded(event) and not ctx.is_held(event.entity, event.entity_id):
        head = ctx.db.conn.execute(
            "select order_key from entity_heads where entity = ? and entity_id = ?",
            [event.entity, event.entity_id]).fetchone()
        if head is None or event.order_key > head[0]:
            _apply_one(ctx, event)
        else:
            refold(ctx, event.entity, event.entity_id, unseen)


def reset(ctx: FoldContext, entity: str, entity_id: str) -> None:
    """Remove every view row of one entity, so it can be folded again from its events."""
    entity_type = ctx.registry.entity_type(entity)
    if entity_type is not None:
        if entity_type.lifecycle_entity:
            kernel.reset(ctx, entity_type, entity_id)
        if entity_type.reset is not None:
            entity_type.reset(ctx, entity_id)
    ctx.registry.pm.hook.xinfang_entity_reset(context=ctx, entity=entity, entity_id=entity_id)
    for table in ("conflicts", "entity_heads", "held_entities"):
        ctx.db.conn.execute(f"delete from {table} where entity = ? and entity_id = ?",
                            [entity, entity_id])
    if ctx._held is not None:
        ctx._held.discard((entity, entity_id))


def refold(ctx: FoldContext, entity: str, entity_id: str, unseen: Collection[str] = ()) -> None:
    """Fold one entity again from its events in the log, but ``unseen`` ones (stored,
    not yet reached by a page folding one event at a time)."""
    reset(ctx, entity, entity_id)
    for event in list(store.events_of(ctx.db, entity, entity_id)):
        if event.id in unseen or ctx.excluded(event):
            continue
        if not _apply_one(ctx, event):
            break  # held: the rest of its events wait with it
    ctx.settle_effects()


def _apply_one(ctx: FoldContext, event: Event) -> bool:
    """Fold one event; False if its entity is now held."""
    conn = ctx.db.conn
    reason = ctx.registry.unhandled(event)
    entity_type = ctx.registry.entity_type(event.entity)
    # a step no plugin here folds, of a record type one does: held only if it reaches
    # the record (``kernel.reach``), else a conflict like any step that cannot
    unknown_step = reason is not None and entity_type is not None \
        and entity_type.lifecycle_entity
    refused = False
    if reason is None or unknown_step:
        conn.execute("savepoint fold_event")
        try:
            if reason is None:
                _fold(ctx, event)
                ctx.registry.pm.hook.xinfang_event_applied(context=ctx, event=event)
            else:
                kernel.reach(ctx, entity_type, event)
        except StepRefused as exc:
            conn.execute("rollback to savepoint fold_event")
            conn.execute(
                "insert or replace into conflicts (event_id, entity, entity_id, order_key, type, "
                "reason) values (?,?,?,?,?,?)",
                [event.id, event.entity, event.entity_id, event.order_key, event.type,
                 i18n.stored(exc.message)])
            refused, reason = True, None
        except Hold as exc:
            conn.execute("rollback to savepoint fold_event")
            reason = exc.message
        conn.execute("release savepoint fold_event")
    if reason is not None:
        hold(ctx, event, reason)
        return False
    # The entity is filed under the area of the last event folded into it (for a
    # lifecycle record, its own area: a step is taken only where it claims the record's
    # area); a conflict files it only while nothing else has, so an event kept as a
    # conflict, a stolen key's stamped before the record's creation say, never moves a
    # record out of the area a policy set there re-folds (``policy_changed``).
    conn.execute(
        "insert into entity_heads (entity, entity_id, order_key, area) values (?,?,?,?) "
        "on conflict (entity, entity_id) do update set order_key = excluded.order_key"
        + ("" if refused else ", area = excluded.area"),
        [event.entity, event.entity_id, event.order_key, event.area])
    return True


def _fold(ctx: FoldContext, event: Event) -> None:
    entity_type = ctx.registry.entity_type(event.entity)
    if entity_type.lifecycle_entity:
        kernel.apply(ctx, entity_type, event)
    else:
        entity_type.apply(ctx, event)


def hold(ctx: FoldContext, event: Event, reason: str | i18n.Message) -> None:
    """Take the event's entity out of the views and list it as held, with why
    (stored language-independent, like a conflict's reason)."""
    reset(ctx, event.entity, event.entity_id)
    ctx.db.conn.execute(
        "insert or replace into held_entities (entity, entity_id, area, reason) values (?,?,?,?)",
        [event.entity, event.entity_id, event.area, i18n.stored(reason)])
    if ctx._held is not None:
        ctx._held.add((event.entity, event.entity_id))


def refold_all(ctx: FoldContext, events: Iterable[Event] | None = None,
               progress: Callable[[int], None] | None = None) -> int:
    """Empty every view and fold the whole log (or ``events``, in total order).

    Policy and trust entities are folded first: their effect does not depend
    on when they sort (a policy applies to every entity, an exclusion to
    every later event), so folding them first gives what folding in order
    and re-folding on each change gives, without the re-folds. Meanwhile only
    control entities are re-folded: the others are folded after, once, with
    the control state final. An event whose entity a re-fold has already
    folded from the log is not applied a second time.
    """
    for table in view_tables(ctx.registry):
        ctx.db.conn.execute(f"delete from [{table}]")
    ctx._policy.clear()
    ctx._excluding = None
    ctx._held = None
    streams: list[tuple[bool, Iterable[Event]]]
    control = [t for t in ctx.registry.control_entities() if t in ctx.registry.entity_types]
    if events is None:
        streams = [(True, store.events_of_type(ctx.db, name)) for name in control]
        streams.append((False, (e for e in store.all_events(ctx.db) if e.entity not in control)))
    else:
        streams = [(False, events)]
    count = 0
    for first, stream in streams:
        for event in stream:
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(count)
            if ctx.excluded(event) or ctx.is_held(event.entity, event.entity_id):
                continue
            head = ctx.db.conn.execute(
                "select order_key from entity_heads where entity = ? and entity_id = ?",
                [event.entity, event.entity_id]).fetchone()
            if head is not None and event.order_key <= head[0]:
                continue  # a re-fold of its entity, reading the log, folded it already
            _apply_one(ctx, event)
            # what a control event changes for others is folded with them, later
            ctx.drain(control if first else None)
    return count
