"""Key revocation and retirement, as events (a built-in plugin).

``trust.revoke`` is written by an ancestor of the revoked node and names the
last good (epoch, seq) of its feed; ``trust.retire`` is written by a node
with its old key when it moves to a new one, and names its successor. Either
way the key's events after that point are refused on arrival by every node
the revocation has reached (it travels down to the revoked key's area and up
with the county's feed); nodes that already hold some keep them in the log,
*excluded*: the fold
skips them and re-folds what they touched, so a revocation has the same
effect whatever order things arrived in, and a rebuild reproduces it.

The ``trust`` migration set is the sync layer's own.
"""

from __future__ import annotations

from sqlite_utils.migrations import Migrations

from xinfang import hookimpl
from xinfang.core.entities import EntityType, require
from xinfang.core.errors import InvalidEvent
from xinfang.core.i18n import N_, Message

from xinfang.core.certs import Authority
from xinfang.core.scope import TRUST_ENTITY


MIGRATIONS = Migrations("trust")

#: why a key's events after its point are excluded: stored in ``exclusions`` as a
#: ``Message``, so the view is the same in every language
EXCLUDED = {"trust.retire": N_("key retired: events after epoch {epoch} seq {seq} are not "
                               "accepted"),
            "trust.revoke": N_("key revoked: events after epoch {epoch} seq {seq} are not "
                               "accepted")}


@MIGRATIONS(name="0001_revocations")
def _schema(db) -> None:
    db.executescript("""
    create table revocations (
        subject text primary key, epoch integer not null, seq integer not null,
        event_id text not null, kind text not null, reason text not null
    );
    """)


def _apply(ctx, event) -> None:
    body = event.body
    subject = event.entity_id
    if event.type == "trust.retire":
        require(event.author == subject, N_("a key can only retire itself"))
        point = (event.epoch, event.seq)
    else:
        point = (body["epoch"], body["seq"])
    row = ctx.db.conn.execute("select epoch, seq from revocations where subject = ?",
                              [subject]).fetchone()
    if row is not None and tuple(row) <= point:
        return  # an earlier point already holds; the earliest wins everywhere
    ctx.db.conn.execute(
        "insert into revocations (subject, epoch, seq, event_id, kind, reason) "
        "values (?,?,?,?,?,?) on conflict (subject) do update set epoch = excluded.epoch, "
        "seq = excluded.seq, event_id = excluded.event_id, kind = excluded.kind, "
        "reason = excluded.reason",
        [subject, point[0], point[1], event.id, event.type.split(".")[1],
         body.get("reason", "")])
    reason = Message(EXCLUDED.get(event.type, EXCLUDED["trust.revoke"]), epoch=point[0],
                     seq=point[1])
    ctx.exclude(subject, point[0], point[1], reason.stored(), "revocation")


def _reset(ctx, subject: str) -> None:
    ctx.db.conn.execute("delete from revocations where subject = ?", [subject])
    ctx.unexclude(subject, "revocation")


@hookimpl
def xinfang_entity_types():
    return [EntityType(TRUST_ENTITY, "密钥信任", ("revocations",), MIGRATIONS, apply=_apply,
                       reset=_reset)]


@hookimpl
def xinfang_validate_event(event, node):
    author = getattr(event, "author", None)
    if author is None:  # a draft: this node is about to sign it
        revoked = node.db.execute(
            "select epoch, seq, kind from revocations where subject = "
            "(select value from meta where key = 'author')").fetchone()
        if revoked:
            message = (N_("this node's key was retired after epoch {epoch} seq {seq}; every "
                          "node refuses what it signs now: run `xinfang enroll rotate` and have "
                          "the parent sign the new key") if revoked[2] == "retire" else
                       N_("this node's key was revoked after epoch {epoch} seq {seq}; every "
                          "node refuses what it signs now: run `xinfang enroll rotate` and have "
                          "the parent sign the new key"))
            raise InvalidEvent(message, epoch=revoked[0], seq=revoked[1])
    if event.entity != TRUST_ENTITY:
        return
    body = event.body
    if event.type == "trust.revoke":
        if type(body.get("epoch")) is not int or type(body.get("seq")) is not int:
            raise InvalidEvent(N_("trust.revoke needs the last good epoch and seq as "
                                  "integers"))
        author = getattr(event, "author", None) or node.info.author
        if not Authority(node.db).is_ancestor(author, event.entity_id):
            raise InvalidEvent(N_("trust.revoke must be written by an ancestor of the revoked "
                                  "node in the certificate chain"))
    elif event.type == "trust.retire":
        if not isinstance(body.get("successor"), str):
            raise InvalidEvent(N_("trust.retire names the successor key"))
    else:
        raise InvalidEvent(N_("unknown trust event type {type}"), type=event.type)
