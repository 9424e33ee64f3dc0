"""Checking the log, and rebuilding the views from it.

``verify_log`` re-checks, for every stored event, that its bytes are
canonical, that its id is their hash, that the indexed columns say what the
bytes say, that the signature holds and that each author's chain has no gap
and no fork. ``rebuild`` re-folds every view from the log and reports how the
result differs from what was stored; it is also an integrity check of the
fold itself.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import attrs

from . import fold
from .errors import InvalidEvent
from .event import Event, EventReason, event_id
from .i18n import N_, Message, _, show

Progress = Callable[[int], None]


@attrs.frozen
class Problem:
    pos: int | None
    event_id: str | None
    author: str | None
    epoch: int | None
    seq: int | None
    #: what is wrong, in the language of the one who verifies (the report is not stored)
    what: str

    def describe(self) -> str:
        if self.pos is None:
            return self.what
        return _("event #{pos} (id {id}…, author {author}…, epoch {epoch}, seq {seq}): "
                 "{what}").format(pos=self.pos, id=self.event_id[:16], author=self.author[:16],
                                  epoch=self.epoch, seq=self.seq, what=self.what)


#: a valid stored event the views leave out: a revocation or fork is past it
Excluded = EventReason


@attrs.frozen
class VerifyReport:
    events: int
    feeds: int
    secrets: int
    problems: tuple[Problem, ...]
    excluded: tuple[Excluded, ...] = ()
    #: whether the vault's rows were opened and checked (it needs the node's keys);
    #: ``secrets`` counts the rows either way
    secrets_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


_COLUMNS = ("id", "author", "epoch", "seq", "prev", "order_key", "type", "entity", "entity_id", "area")


def _partial_feeds(db) -> set[str]:
    """Authors whose feed this node holds only in part: those above or beside it.

    Sync sends a node only the events in its scope, so of an author outside
    its scope (the county, seen from a village) it holds a filtered run of
    the chain; links are checked where consecutive events are both held.
    """
    meta = dict(db.execute("select key, value from meta where key in ('area', 'author')"))
    area = meta.get("area", "")
    return {subject for subject, cert_area in db.execute("select subject, area from certs")
            if not cert_area.startswith(area) and subject != meta.get("author")}


def verify_log(db, progress: Progress | None = None, vault=None) -> VerifyReport:
    """Check every event's hash, chain and signature, and with ``vault`` (the node's
    unlocked ``core.vault.Vault``) every vault row; without it the rows are counted only."""
    problems: list[Problem] = []
    partial = _partial_feeds(db)
    feeds: dict[tuple[str, int], tuple[int, str]] = {}
    count = 0
    cursor = db.conn.execute(
        "select pos, " + ", ".join(_COLUMNS) + ", raw, sig from events order by author, epoch, seq")
    for row in cursor:
        count += 1
        pos, stored = row[0], dict(zip(_COLUMNS, row[1:11]))
        raw, sig = bytes(row[11]), bytes(row[12])

        def problem(msgid: str, **values) -> None:
            problems.append(Problem(pos, stored["id"], stored["author"], stored["epoch"],
                                    stored["seq"], str(Message(msgid, **values))))
            # the next event links to the stored id: report one damaged event once,
            # not again as a gap after it
            feeds[(stored["author"], stored["epoch"])] = (stored["seq"], stored["id"])

        try:
            event = Event.parse(raw, sig)
        except InvalidEvent as exc:
            problem(N_("stored bytes do not decode: {error}"), error=exc.message)
            continue
        if event_id(raw) != stored["id"]:
            problem(N_("stored id is not the SHA-256 of the stored bytes (bytes altered)"))
            continue
        mismatched = [name for name, value in _columns_of(event).items() if stored[name] != value]
        if mismatched:
            problem(N_("index columns {columns} disagree with the signed bytes"),
                    columns=", ".join(mismatched))
            continue
        if not event.signature_valid():
            problem(N_("signature does not verify against the author's key"))
            continue
        key = (event.author, event.epoch)
        last_seq, last_id = feeds.get(key, (0, None))
        if event.seq != last_seq + 1:
            if event.author not in partial:
                problem(N_("gap in the author's chain: seq {seq} follows seq {last}"),
                        seq=event.seq, last=last_seq)
        elif event.prev != last_id:
            problem(N_("prev does not match the id of the author's previous event "
                       "(chain broken)"))
        feeds[key] = (event.seq, event.id)
        if progress and count % 1000 == 0:
            progress(count)
    secrets = db.conn.execute("select count(*) from vault").fetchone()[0]
    for digest in vault.problems() if vault is not None else ():
        problems.append(Problem(None, None, None, None, None, _(
            "the vault row of sealed value {digest}… is damaged, was moved to another record "
            "or does not match its digest").format(digest=digest[:16])))
    if progress:
        progress(count)
    return VerifyReport(count, len(feeds), secrets, tuple(problems), tuple(excluded_events(db)),
                        secrets_checked=vault is not None)


def excluded_events(db) -> list[Excluded]:
    """Every stored event a revocation or a frozen feed keeps out of the views, with why
    in the reader's language."""
    found = []
    for author, in db.execute("select author from exclusions union select author from frozen_feeds"
                              ).fetchall():
        for stored_id, epoch, seq in db.execute(
                "select id, epoch, seq from events where author = ? order by epoch, seq",
                [author]).fetchall():
            reason = fold.excluded_reason(db, author, epoch, seq)
            if reason:
                found.append(Excluded(stored_id, author, epoch, seq, show(reason)))
    return found


def _columns_of(event: Event) -> dict[str, object]:
    return {"id": event.id, "author": event.author, "epoch": event.epoch, "seq": event.seq,
            "prev": event.prev, "order_key": event.order_key, "type": event.type,
            "entity": event.entity, "entity_id": event.entity_id, "area": event.area}


@attrs.frozen
class TableDifference:
    table: str
    only_stored: tuple[tuple, ...]
    only_rebuilt: tuple[tuple, ...]


@attrs.frozen
class RebuildReport:
    events: int
    tables: int
    differences: tuple[TableDifference, ...]
    written: bool

    @property
    def consistent(self) -> bool:
        return not self.differences


class _Discard(Exception):
    """Raised inside the rebuild transaction to roll it back for ``--check``."""


def rebuild(node, check_only: bool = False, progress: Progress | None = None) -> RebuildReport:
    """Re-fold every view from the log; with ``check_only`` keep nothing."""
    ctx = node.context
    before = fold.dump_views(node.db, node.registry)
    result = {}
    with contextlib.suppress(_Discard):  # raised only to roll back a --check
        with node.db.atomic():
            result["events"] = fold.refold_all(ctx, progress=progress)
            result["after"] = fold.dump_views(node.db, node.registry)
            if check_only:
                raise _Discard
    after = result["after"]
    differences = []
    for table in before:
        old, new = set(before[table]), set(after[table])
        if old != new:
            differences.append(TableDifference(
                table, tuple(sorted(old - new, key=repr)), tuple(sorted(new - old, key=repr))))
    return RebuildReport(result["events"], len(before), tuple(differences), not check_only)
