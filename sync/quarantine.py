"""Refused events and frozen feeds: the quarantine table and what moves into it.

An event a node may not apply is kept, with its reason, rather than lost:
it is the evidence an administrator acts on. A fork freezes its feed from
the fork point, and events that turn out invalid after they were applied
(a revoked key, a frozen feed) leave the log for quarantine, and the views
they touched are folded again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from xinfang.core import fold
from xinfang.core.event import Event

from .trust import Authority


def quarantine(db, event: Event, reason: str, peer: str | None, now: str) -> None:
    db.execute(
        "insert into quarantine (event_id, author, epoch, seq, raw, sig, reason, peer, at) "
        "values (?,?,?,?,?,?,?,?,?) on conflict (event_id) do update set "
        "reason = excluded.reason, peer = excluded.peer, at = excluded.at",
        [event.id, event.author, event.epoch, event.seq, event.raw, event.signature,
         reason, peer, now])


def take_fork_evidence(node, authority: Authority, first: Event, second: Event,
                       now: str) -> None:
    """Freeze a feed on proof from elsewhere: two valid signatures on one position."""
    same_place = (first.author, first.epoch, first.seq) == (second.author, second.epoch, second.seq)
    cert = authority.scope(first.author)
    if (not same_place or first.id == second.id or cert is None
            or not first.signature_valid() or not second.signature_valid()):
        return  # not evidence of anything: ignored, as a forged claim must be
    if node.db.execute("select 1 from frozen_feeds where author = ? and epoch = ?",
                       [first.author, first.epoch]).fetchone():
        return
    for event in (first, second):
        quarantine(node.db, event, f"fork: {cert.name} signed two different events as epoch "
                                   f"{event.epoch} seq {event.seq}", None, now)
    freeze(node, first, cert.name)


def freeze(node, event: Event, name: str) -> None:
    """Freeze a forked feed from the fork point: later events leave the views.

    Which of two forked events arrived first differs between nodes; taking
    both branches out from the fork point on makes every node that has seen
    the fork hold the same state.
    """
    db = node.db
    now = dt.datetime.now().isoformat(timespec="seconds")
    db.execute("insert or ignore into frozen_feeds (author, epoch, seq, reason) values (?,?,?,?)",
               [event.author, event.epoch, event.seq, f"fork at seq {event.seq}"])
    if event.author == node.info.author:
        # This node forked itself (it was restored from a copy). Its own log stays;
        # it writes on in a new epoch, which no one holds a frozen feed for.
        if node.info.epoch == event.epoch:
            node.new_epoch()
        return
    remove_from_log(node.context, "author = ? and epoch = ? and seq >= ?",
                    [event.author, event.epoch, event.seq], f"frozen feed: {name} forked", now)


def remove_from_log(ctx: fold.FoldContext, where: str, params: list[Any], reason: str,
                    now: str) -> int:
    """Move events that turned out invalid into quarantine and re-fold what they touched."""
    db = ctx.db
    rows = db.execute(f"select id, author, epoch, seq, raw, sig, entity, entity_id from events "
                      f"where {where}", params).fetchall()
    touched = set()
    for event_id, author, epoch, seq, raw, sig, entity, entity_id in rows:
        db.execute("insert into quarantine (event_id, author, epoch, seq, raw, sig, reason, peer, "
                   "at) values (?,?,?,?,?,?,?,?,?) on conflict (event_id) do update set "
                   "reason = excluded.reason, at = excluded.at",
                   [event_id, author, epoch, seq, raw, sig, reason, None, now])
        db.execute("delete from events where id = ?", [event_id])
        touched.add((entity, entity_id))
    for author, epoch in {(r[1], r[2]) for r in rows}:
        last = db.execute("select seq, id from events where author = ? and epoch = ? "
                          "order by seq desc limit 1", [author, epoch]).fetchone()
        if last:
            db.execute("update feeds set seq = ?, head = ? where author = ? and epoch = ?",
                       [last[0], last[1], author, epoch])
        else:
            db.execute("delete from feeds where author = ? and epoch = ?", [author, epoch])
    for entity, entity_id in sorted(touched):
        fold.refold(ctx, entity, entity_id)
    return len(rows)
