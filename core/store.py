"""The SQLite store: the log of events and the node's own bookkeeping.

The tables of ``PRIMARY_TABLES`` hold the truth: the log (``events``), the
clear values, encrypted (``vault``; ``secrets`` is release 0.1.0's clear
table, emptied into the vault), boxes held for others (``held_boxes``), who
read what (``access_log``), trust data (``certs``, fork evidence in ``frozen_feeds`` and ``quarantine``), sync
bookkeeping and the node's ``meta``. Every other table is a view folded from
the log and can be dropped and rebuilt (``xinfang rebuild``).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Iterator

import sqlite_utils

from sqlite_utils.migrations import Migrations

from . import signed
from .event import Event
from .errors import NodeError
from .i18n import N_
from .migrations import adopt_legacy_records

#: tables that hold the truth; everything else is rebuilt from them.
PRIMARY_TABLES = ("events", "vault", "held_boxes", "secrets", "meta", "access_log",
                  "_sqlite_migrations", "feeds", "certs", "quarantine", "frozen_feeds", "peers", "peer_refusals",
                  "seen_envelopes")
#: view tables the core itself maintains while folding, the same on every node
#: that folds the same entity types.
CORE_VIEW_TABLES = ("conflicts", "entity_heads", "entity_history", "exclusions",
                    "policy_values")
#: view tables that say what *this* node could not fold: rebuilt like views,
#: but left out of ``views_digest``, since they follow the plugins installed.
LOCAL_VIEW_TABLES = ("held_entities",)

MIGRATIONS = Migrations("xinfang.core")


@MIGRATIONS(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db.executescript("""
    create table meta (key text primary key, value text not null);
    create table events (
        pos integer primary key,          -- arrival order on this node
        id text not null unique,          -- sha256 of raw
        author text not null,
        epoch integer not null,
        seq integer not null,
        prev text,
        order_key text not null,          -- total order: hlc, author, epoch, seq
        type text not null,
        entity text not null,
        entity_id text not null,
        area text not null,
        raw blob not null,                -- the exact signed bytes
        sig blob not null,
        unique (author, epoch, seq)
    );
    create index events_entity on events (entity, entity_id, order_key);
    create index events_order on events (order_key);
    create table secrets (
        digest text primary key,          -- sha256 commitment carried in an event
        salt text not null,
        value text not null
    );
    create table access_log (
        pos integer primary key,
        at text not null,
        who text not null,
        entity text not null,
        entity_id text not null,
        what text not null
    );
    create table conflicts (
        event_id text primary key,
        entity text not null,
        entity_id text not null,
        order_key text not null,
        type text not null,
        reason text not null
    );
    create table entity_heads (
        entity text not null,
        entity_id text not null,
        order_key text not null,
        primary key (entity, entity_id)
    );
    """)


@MIGRATIONS(name="0002_sync_state")
def _sync_state(db: sqlite_utils.Database) -> None:
    db.executescript("""
    -- per (author, epoch): the highest seq held, its id, and (for feeds seen
    -- through a scope filter) the seq up to which every in-scope event is held
    create table feeds (
        author text not null, epoch integer not null, seq integer not null,
        head text not null, covered integer not null default 0,
        primary key (author, epoch)
    );
    insert into feeds (author, epoch, seq, head)
        select author, epoch, max(seq), (select id from events e2 where e2.author = e.author
            and e2.epoch = e.epoch order by seq desc limit 1)
        from events e group by author, epoch;
    create table certs (
        subject text primary key, issuer text not null, area text not null,
        level text not null, name text not null, encryption text not null,
        raw blob not null, sig blob not null
    );
    create table quarantine (
        event_id text not null, author text not null, epoch integer not null,
        seq integer not null, raw blob not null, sig blob not null,
        reason text not null, peer text, at text not null,
        reported integer not null default 0,
        primary key (event_id)
    );
    create table frozen_feeds (
        author text not null, epoch integer not null, seq integer not null,
        reason text not null, primary key (author, epoch)
    );
    create table peers (
        author text primary key, ack text not null default '{}',
        sent integer not null default 0, received integer not null default 0,
        last_sync text, last_transport text, last_error text
    );
    create table peer_refusals (
        peer text not null, event_id text not null, reason text not null,
        reported integer not null default 0, primary key (peer, event_id)
    );
    create table seen_envelopes (
        id text primary key, sender text not null, at text not null
    );
    """)


@MIGRATIONS(name="0003_kernel")
def _kernel(db: sqlite_utils.Database) -> None:
    """The entity kernel's views, exclusions instead of deleted rows, synced policy."""
    db.executescript("""
    create table entity_history (
        entity text not null, entity_id text not null, ord integer not null,
        order_key text not null, event_id text not null, step text not null,
        label text not null, date text not null, author text not null,
        operator text not null, status text not null, details text not null,
        primary key (entity, entity_id, ord)
    );
    alter table entity_heads add column area text not null default '';
    create index entity_heads_area on entity_heads (entity, area);
    -- entities this node cannot fold (plugin or policy code missing), with why
    create table held_entities (
        entity text not null, entity_id text not null, area text not null,
        reason text not null, primary key (entity, entity_id)
    );
    -- events a folded revocation excludes: author's events after (epoch, seq)
    create table exclusions (
        author text not null, epoch integer not null, seq integer not null,
        reason text not null, source text not null, primary key (author, source)
    );
    -- the policy in force: the last authorised value of each key per area
    create table policy_values (
        key text not null, area text not null, value text not null,
        version integer not null, event_id text not null, author text not null,
        primary key (key, area)
    );
    """)
    # every view is folded anew by the kernel once all migrations are in
    set_meta(db, "refold_needed", "1")


@MIGRATIONS(name="0004_certificate_wire")
def _certificate_wire(db: sqlite_utils.Database) -> None:
    """The node's own certificate in the one wire form of a signed document.

    Release 0.1.0 kept it in meta as ``{"certificate": base64, "signature":
    hex}``; it is now ``[base64 bytes, base64 signature]`` like everywhere
    else. The bytes and signature are unchanged.
    """
    text = get_meta(db, "certificate")
    if text is None:
        return
    try:  # a binascii.Error from base64 is a ValueError
        old = json.loads(text)
        if not isinstance(old, dict):
            return  # already in the wire form
        document = signed.parse("certificate", base64.b64decode(old["certificate"], validate=True),
                                bytes.fromhex(old["signature"]))
    except (ValueError, KeyError, TypeError, signed.SignedError) as exc:
        raise NodeError(N_("the node's stored certificate cannot be read ({error}); restore "
                           "the database from a backup"),
                        error=exc.message if isinstance(exc, signed.SignedError)
                        else str(exc)) from None
    set_meta(db, "certificate", json.dumps(document.to_wire()))


@MIGRATIONS(name="0005_vault")
def _vault(db: sqlite_utils.Database) -> None:
    """Clear values encrypted at rest (``core.vault``), and boxes held for others.

    Rows of the old clear ``secrets`` table move into the vault the first time
    the node's keys unlock it (a migration holds no key).
    """
    db.executescript("""
    create table vault (
        digest text primary key,          -- the sealed digest an event carries
        entity_id text not null,          -- the record it belongs to: released only with it
        lookup text not null,             -- keyed hash of the clear value, to find it
        sealed blob not null              -- nonce + AEAD of [salt, value] under the data key
    );
    create index vault_lookup on vault (lookup);
    create index vault_entity on vault (entity_id);
    -- boxes sealed to another office, held here to be forwarded towards it
    create table held_boxes (
        digest text not null, entity_id text not null, recipient text not null,
        box blob not null, primary key (digest, recipient)
    );
    create index held_boxes_entity on held_boxes (entity_id);
    """)


def open_database(path: Path, create: bool = False) -> sqlite_utils.Database:
    if not create and not path.exists():
        raise NodeError(N_("database {path} is missing; run `xinfang init` first, "
                           "or point --home / XINFANG_HOME at the node directory"),
                        path=str(path))
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("pragma journal_mode = wal")
        conn.execute("pragma synchronous = full")
        conn.execute("pragma foreign_keys = on")
        db = sqlite_utils.Database(conn)
        adopt_legacy_records(db)
        MIGRATIONS.apply(db)
        db.execute("select count(*) from meta").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NodeError(N_("database {path} is damaged ({error}); restore it from a "
                           "backup and run `xinfang node new-epoch`"),
                        path=str(path), error=str(exc)) from None
    return db


def get_meta(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("select value from meta where key = ?", [key]).fetchone()
    return row[0] if row else default


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.execute("insert into meta (key, value) values (?, ?) "
               "on conflict (key) do update set value = excluded.value", [key, value])


def events_of_type(db: sqlite_utils.Database, entity: str) -> Iterator[Event]:
    for row in db.conn.execute("select raw, sig from events where entity = ? order by order_key",
                               [entity]):
        yield row_to_event(row)


def insert_event(db: sqlite_utils.Database, event: Event) -> bool:
    """Append ``event``; False if the log already holds it (idempotent)."""
    cursor = db.conn.execute(
        "insert or ignore into events (id, author, epoch, seq, prev, order_key, type, "
        "entity, entity_id, area, raw, sig) values (?,?,?,?,?,?,?,?,?,?,?,?)",
        [event.id, event.author, event.epoch, event.seq, event.prev, event.order_key,
         event.type, event.entity, event.entity_id, event.area, event.raw,
         event.signature])
    if cursor.rowcount != 1:
        return False
    db.conn.execute(
        "insert into feeds (author, epoch, seq, head) values (?,?,?,?) "
        "on conflict (author, epoch) do update set seq = excluded.seq, head = excluded.head "
        "where excluded.seq > feeds.seq",
        [event.author, event.epoch, event.seq, event.id])
    return True


def feed_head(db: sqlite_utils.Database, author: str, epoch: int) -> tuple[int, str | None]:
    row = db.conn.execute("select seq, head from feeds where author = ? and epoch = ?",
                          [author, epoch]).fetchone()
    return (row[0], row[1]) if row else (0, None)


def row_to_event(row) -> Event:
    return Event.parse(row[0], row[1])


def events_of(db: sqlite_utils.Database, entity: str, entity_id: str) -> Iterator[Event]:
    for row in db.conn.execute(
            "select raw, sig from events where entity = ? and entity_id = ? order by order_key",
            [entity, entity_id]):
        yield row_to_event(row)


def all_events(db: sqlite_utils.Database, order: str = "order_key") -> Iterator[Event]:
    for row in db.conn.execute(f"select raw, sig from events order by {order}"):
        yield row_to_event(row)


def all_certificates(db: sqlite_utils.Database) -> list:
    from .certs import Certificate

    return [Certificate.parse(raw, sig) for raw, sig in db.execute("select raw, sig from certs")]


def remember_certificate(db: sqlite_utils.Database, cert) -> None:
    """Keep a certificate this node has checked (or issued, or holds itself)."""
    db.execute(
        "insert into certs (subject, issuer, area, level, name, encryption, raw, sig) "
        "values (?,?,?,?,?,?,?,?) on conflict (subject) do nothing",
        [cert.subject, cert.issuer, cert.area, cert.level, cert.name, cert.encryption,
         cert.raw, cert.signature])
