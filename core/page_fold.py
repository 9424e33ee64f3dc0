"""Folding a page at a time: record by record, each record's events together.

A page (a sync page, a local batch, a trusted copy) gives the views of folding
its events one at a time in the order they came (``fold.apply``), which stays
the reference: ``tests/test_fold_batched.py`` holds the two equal on random
event sets. Records fold independently of each other; control events (policy,
trust), whose folds every other fold and the admission of what follows them
read, fold one at a time where they stand. A record whose events of the page
came in total order after what it holds folds in memory and is written once
(``record_fold``); any other record folds one event at a time.
"""

from __future__ import annotations

from typing import Sequence

from . import record_fold
from .event import Event
from .fold import FoldContext, _apply_event, _apply_one, apply

#: raised when a plugin refuses or holds an event of a record folding in memory: the
#: page is folded again one event at a time, which keeps such an event as ``apply`` does
PageFallback = record_fold.PageFallback


def apply_page(ctx: FoldContext, events: Sequence[Event]) -> None:
    """Fold events just added to the log, a page at a time; the views are those of
    ``apply`` on each in the order given.

    Control events (policy, trust) fold one at a time where they stand, since
    what they change (exclusions, policy in force) is read by the admission of
    what follows them and by every other fold; the events between them fold
    record by record (``_fold_records``). So a control event must be the last
    of ``events`` the log holds yet (``Admission.batch`` folds what came before
    each one as it arrives).
    """
    control = ctx.registry.control_entities()
    between: list[Event] = []
    for event in events:
        if event.entity in control:
            _fold_between(ctx, between)
            between = []
            apply(ctx, event)
        else:
            between.append(event)
    _fold_between(ctx, between)


def _fold_between(ctx: FoldContext, events: list[Event]) -> None:
    """Fold non-control events record by record in one savepoint; if a plugin refuses
    or holds one on the way, undo that and fold them one at a time instead."""
    if len(events) < 2:
        for event in events:
            apply(ctx, event)
        return
    conn = ctx.db.conn
    before = _snapshot(ctx)
    conn.execute("savepoint fold_page")
    ctx._authors = {}
    try:
        _fold_records(ctx, events)
        sent_back = False
    except PageFallback:
        sent_back = True
    finally:
        ctx._authors = None
        ctx.run = None
    if sent_back:
        conn.execute("rollback to savepoint fold_page")
        _restore(ctx, before)
        for event, unseen in zip(events, _later(events)):
            _apply_event(ctx, event, unseen)
            ctx.drain()
    conn.execute("release savepoint fold_page")
    ctx.drain()


def _snapshot(ctx: FoldContext) -> tuple:
    """What the context caches about the views, to ``_restore`` after a rollback."""
    return (set(ctx._pending), None if ctx._excluding is None else set(ctx._excluding),
            None if ctx._held is None else set(ctx._held), dict(ctx._policy),
            {key: list(value) for key, value in ctx._effects.items()})


def _restore(ctx: FoldContext, saved: tuple) -> None:
    ctx._pending, ctx._excluding, ctx._held, ctx._policy, ctx._effects = saved


def _later(events: list[Event]) -> list[frozenset[str]]:
    """For each event, its record's events after it in ``events``: stored in the log
    already, but not yet arrived for a fold that takes the events one at a time."""
    after: dict[tuple[str, str], set[str]] = {}
    found: list[frozenset[str]] = [frozenset()] * len(events)
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        seen = after.setdefault((event.entity, event.entity_id), set())
        found[index] = frozenset(seen)
        seen.add(event.id)
    return found


def _fold_records(ctx: FoldContext, events: list[Event]) -> None:
    """Each record's events of the page, record after record.

    Records fold independently of each other, so only each record's own order
    matters. Where its events arrive in total order after its head (a feed's
    page: the common case) they are appended together (``_append_record``).
    Otherwise they fold one at a time in the order they came, as ``apply``
    folds them, a re-fold leaving out those still to come (``_later``): which
    event is folded first can decide whether the record is held and why, and a
    record once held takes no more events.
    """
    records: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        records.setdefault((event.entity, event.entity_id), []).append(event)
    heads = _heads(ctx, list(records))
    for (entity, entity_id), arrived in records.items():
        found = [e for e in arrived if not ctx.excluded(e)]
        if not found or ctx.is_held(entity, entity_id):
            continue
        head = heads.get((entity, entity_id))
        keys = [e.order_key for e in found]
        if (head is None or keys[0] > head[0]) and all(a < b for a, b in zip(keys, keys[1:])):
            _append_record(ctx, found, head)
        else:
            for event, unseen in zip(arrived, _later(arrived)):
                _apply_event(ctx, event, unseen)


def _heads(ctx: FoldContext, records: list[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """(order key, area) of each record's head, in a few statements (the list of
    records drives the join, so each is one look-up in the primary key)."""
    found = {}
    for start in range(0, len(records), HEADS_AT_ONCE):
        chunk = records[start:start + HEADS_AT_ONCE]
        marks = ",".join("(?,?)" for _ in chunk)
        for entity, entity_id, order_key, area in ctx.db.conn.execute(
                "select h.entity, h.entity_id, h.order_key, h.area "
                f"from (values {marks}) as r cross join entity_heads h "
                "on h.entity = r.column1 and h.entity_id = r.column2",
                [part for record in chunk for part in record]):
            found[(entity, entity_id)] = (order_key, area)
    return found


#: records whose heads one statement reads (two parameters each, within SQLite's 999)
HEADS_AT_ONCE = 400


def _append_record(ctx: FoldContext, events: list[Event], head: tuple | None) -> None:
    """Fold one record's events, arrived in total order after its head: a lifecycle
    record in memory (``record_fold.fold_run``); any other one, or one with an event no
    plugin here folds, one event at a time (``_apply_one``), stopping where it is
    held, as ``apply`` would."""
    entity_type = ctx.registry.entity_type(events[0].entity)
    if entity_type is None or not entity_type.lifecycle_entity or any(
            ctx.registry.unhandled(e) is not None for e in events):
        for event in events:
            if not _apply_one(ctx, event):
                break
        return
    record_fold.fold_run(ctx, entity_type, events, head)
