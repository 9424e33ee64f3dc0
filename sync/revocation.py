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

``trust.certify`` is written by an issuer for each certificate it signs
(``trust.sign_request``), naming the certificate's digest. It is what makes
"issued before the revocation" decidable (``certs.issued_in_time``): once a
key is revoked, a certificate it issued counts only if its ``trust.certify``
lies at or before the point. The fold excludes every event of a key whose
stored certificate a revocation voids, and of the keys certified below it
(``_void_below``), so events taken in before the revocation leave the views
exactly as events refused after it never entered them.

The ``trust`` migration set is the sync layer's own.
"""

from __future__ import annotations

import re

from sqlite_utils.migrations import Migrations

from xinfang import hookimpl
from xinfang.core import certs, keys
from xinfang.core.entities import EntityType, require
from xinfang.core.errors import InvalidEvent, InvalidInput
from xinfang.core.i18n import N_, Message

from xinfang.core.authority import Authority
from xinfang.core.certs import CERTIFY, Point
from xinfang.core.scope import TRUST_ENTITY


MIGRATIONS = Migrations("trust")

#: why a key's events after its point are excluded: stored in ``exclusions`` as a
#: ``Message``, so the view is the same in every language
EXCLUDED = {"trust.retire": N_("key retired: events after epoch {epoch} seq {seq} are not "
                               "accepted"),
            "trust.revoke": N_("key revoked: events after epoch {epoch} seq {seq} are not "
                               "accepted")}
_DIGEST = re.compile(r"[0-9a-f]{64}")


@MIGRATIONS(name="0001_revocations")
def _schema(db) -> None:
    db.executescript("""
    create table revocations (
        subject text primary key, epoch integer not null, seq integer not null,
        event_id text not null, kind text not null, reason text not null
    );
    """)


def void_source(issuer: str) -> str:
    """The ``exclusions.source`` of the keys a revocation of ``issuer`` voids: one per
    revoked key, so each revocation's fold owns and resets its own."""
    return "void " + issuer


def _apply(ctx, event) -> None:
    if event.type == CERTIFY:
        _certified(ctx, event)
        return
    body = event.body
    subject = event.entity_id
    if event.type == "trust.retire":
        require(event.author == subject, N_("a key can only retire itself"))
        point = (event.epoch, event.seq)
    else:
        point = (body["epoch"], body["seq"])
    row = ctx.db.conn.execute("select epoch, seq from revocations where subject = ?",
                              [subject]).fetchone()
    # The earliest point wins everywhere. This is also why the retirement is safe to fold
    # when a revocation in this same entity puts it past its point: a re-fold starts with
    # the revocation's exclusion reset, so a retirement sorting first is folded, and then
    # the revocation's earlier point replaces its row and its exclusion, and voids a
    # superset of what it voided (``_void_below``). The views are the same as when the
    # retirement is skipped, and only the value the fold ends with counts as a change
    # (``FoldContext.effect``), so the re-fold marks nothing new and the drain ends.
    if row is not None and tuple(row) <= point:
        return
    kind = event.type.split(".")[1]
    ctx.db.conn.execute(
        "insert into revocations (subject, epoch, seq, event_id, kind, reason) "
        "values (?,?,?,?,?,?) on conflict (subject) do update set epoch = excluded.epoch, "
        "seq = excluded.seq, event_id = excluded.event_id, kind = excluded.kind, "
        "reason = excluded.reason",
        [subject, point[0], point[1], event.id, kind, body.get("reason", "")])
    reason = Message(EXCLUDED.get(event.type, EXCLUDED["trust.revoke"]), epoch=point[0],
                     seq=point[1])
    ctx.exclude(subject, point[0], point[1], reason.stored(), "revocation")
    _void_below(ctx, subject, Point(point[0], point[1], kind))


def _void_below(ctx, issuer: str, point: Point) -> None:
    """Exclude every event of a key whose stored certificate ``issuer`` signed without
    logging it by ``point``, and of every key certified below that one.

    Only keys the log holds events of get a row: a key without events has nothing
    to leave the views, and its events are refused on arrival (``Authority.scope``),
    so the rows are the same whether the certificate came before the revocation or
    after, and a rebuild makes the same ones.
    """
    db = ctx.db
    own = certs.certificate(db, issuer)
    if own is not None and own.self_signed:
        return  # the root's certificates are not judged (``certs.void_reason``)
    name = _name(db, issuer)
    for cert in _issued_by(db, issuer):
        if certs.issued_in_time(db, cert, point):
            continue
        reason = certs.void_message(cert, name, point).stored()
        for subject in _below(db, cert.subject):
            if db.conn.execute("select 1 from events where author = ? limit 1",
                               [subject]).fetchone():
                ctx.exclude(subject, 0, 0, reason, void_source(issuer))


def _issued_by(db, issuer: str) -> list[certs.Certificate]:
    found = []
    for raw, sig in db.conn.execute("select raw, sig from certs where issuer = ? and "
                                    "subject != issuer order by subject", [issuer]).fetchall():
        try:
            found.append(certs.Certificate.parse(raw, sig))
        except InvalidInput:
            continue  # not a certificate this release reads: it validates nothing
    return found


def _below(db, subject: str) -> list[str]:
    """``subject`` and every key whose stored chain passes through it."""
    found, layer = [subject], [subject]
    for _depth in range(certs.MAX_CHAIN):
        layer = [row[0] for key in layer for row in db.conn.execute(
            "select subject from certs where issuer = ? and subject != issuer", [key])
            if row[0] not in found]
        if not layer:
            break
        found.extend(layer)
    return found


def _name(db, key: str) -> str:
    row = db.conn.execute("select name from certs where subject = ?", [key]).fetchone()
    return row[0] if row else keys.fingerprint(key)


def _certified(ctx, event) -> None:
    """A ``trust.certify`` within its issuer's revocation point arrived after the fold
    voided the certificate it names: fold the revocation again, which finds it now."""
    point = certs.revocation_of(ctx.db, event.author)
    if point is not None and point.holds(event.epoch, event.seq) and ctx.db.conn.execute(
            "select 1 from exclusions where source = ? limit 1",
            [void_source(event.author)]).fetchone():
        ctx.refold_later(TRUST_ENTITY, event.author)


def _reset(ctx, subject: str) -> None:
    """Take back what the subject's revocation did; and since this entity is re-folded
    when its issuer's feed freezes (a fork), have each revoked issuer's revocation
    judge its certificates again."""
    db = ctx.db.conn
    db.execute("delete from revocations where subject = ?", [subject])
    ctx.unexclude(subject, "revocation")
    for author, in db.execute("select author from exclusions where source = ?",
                              [void_source(subject)]).fetchall():
        ctx.unexclude(author, void_source(subject))
    for issuer, in db.execute(
            "select distinct author from events where entity = ? and entity_id = ? and "
            "type = ? and author in (select subject from revocations)",
            [TRUST_ENTITY, subject, CERTIFY]).fetchall():
        ctx.refold_later(TRUST_ENTITY, issuer)


@hookimpl
def xinfang_entity_types():
    return [EntityType(TRUST_ENTITY, "密钥信任", ("revocations",), MIGRATIONS, apply=_apply,
                       reset=_reset)]


@hookimpl
def xinfang_validate_event(event, node):
    author = getattr(event, "author", None)
    if author is None:  # a draft: this node is about to sign it
        _check_own_key(node)
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
        if event.entity_id != (getattr(event, "author", None) or node.info.author):
            raise InvalidEvent(N_("trust.retire can only retire its author's own key"))
    elif event.type == CERTIFY:
        digest = body.get("certificate") if set(body) == {"certificate"} else None
        if not (isinstance(digest, str) and _DIGEST.fullmatch(digest)
                and _DIGEST.fullmatch(event.entity_id)):
            raise InvalidEvent(N_("trust.certify names the certified key and the SHA-256 of "
                                  "its certificate in hex, and nothing else"))
    else:
        raise InvalidEvent(N_("unknown trust event type {type}"), type=event.type)


def _check_own_key(node) -> None:
    """Refuse to sign with a key every node refuses: revoked, retired, or certified by a
    revoked key after its point (the node must move to a new key)."""
    db = node.db
    if not db.execute("select 1 from revocations limit 1").fetchone():
        return
    revoked = db.execute(
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
    void = certs.void_reason(db, certs.chain_of(db, node.info.author))
    if void is not None:
        raise InvalidEvent(N_("{reason}; every node refuses what this node signs now: run "
                              "`xinfang enroll rotate` and have the parent sign the new key"),
                           reason=void)
