"""A node: one office's directory, database, keys and plugins.

The node is the Python API the CLI and plugins use: ``Node.init`` creates
one, ``Node.open`` opens it, ``append`` signs and stores new events and folds
them into the views in one transaction.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets as _secrets
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterable

import attrs
import platformdirs
import pluggy
import sqlite_utils

from . import areas, clock, fold, migrations, sealing, signatures, store
from .admission import DUPLICATE, Admission, validate
from .certs import Certificate
from .errors import InvalidEvent, InvalidInput, NodeError
from .event import Event, order_key_ceiling, timestamp_of
from .hlc import MAX_COUNTER, MAX_DRIFT_MS, HybridClock, Timestamp
from .i18n import N_, Message, show
from .keys import NodeKeys, fingerprint, keys_need_passphrase
from .plugins import Registry, get_plugin_manager
from .sealing import Secret
from .vault import Vault, adopt_clear_rows

DB_NAME = "xinfang.db"
KEYS_DIR = "keys"


def default_home() -> Path:
    """``XINFANG_HOME``, else the user's data directory as the platform names it.

    Most county offices use Windows PCs: platformdirs gives them
    ``%LOCALAPPDATA%\\xinfang``, a Mac ``~/Library/Application Support/xinfang``
    and Linux ``$XDG_DATA_HOME/xinfang`` (``~/.local/share/xinfang``).
    """
    if os.environ.get("XINFANG_HOME"):
        return Path(os.environ["XINFANG_HOME"])
    return platformdirs.user_data_path("xinfang", appauthor=False)


@attrs.frozen
class Draft:
    """An event not yet signed: what a plugin asks the node to record."""

    type: str
    entity: str
    entity_id: str
    area: str
    body: dict[str, Any]
    secrets: tuple[Secret, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class NodeInfo:
    name: str
    level: str
    area: str
    author: str
    encryption: str
    epoch: int
    root: bool
    created: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.author)

    @property
    def level_label(self) -> str:
        return areas.level(self.level).label


@attrs.define
class Node:
    home: Path
    db: sqlite_utils.Database
    pm: pluggy.PluginManager
    registry: Registry
    passphrase: str | None = attrs.field(default=None, repr=False)
    operator: str = attrs.Factory(lambda: os.environ.get("XINFANG_OPERATOR") or getpass.getuser())
    clock: HybridClock = attrs.Factory(HybridClock)
    _keys: NodeKeys | None = attrs.field(default=None, repr=False)
    _vault: Vault | None = attrs.field(default=None, repr=False)

    # -- creating and opening ------------------------------------------------

    @classmethod
    def init(cls, home: Path | None, *, level: str, area: str, name: str, root: bool = False,
             passphrase: str | None = None, pm: pluggy.PluginManager | None = None) -> "Node":
        home = Path(home) if home else default_home()
        found_level = areas.level(level)
        areas.check_code(area, found_level)
        if not name or not name.strip():
            raise InvalidInput(N_("node name is empty; give the office's name with --name"))
        if home.exists() and not home.is_dir():
            raise NodeError(N_("cannot make a node at {home}: it is a file, not a directory; "
                               "give a new (or empty) directory with --home"), home=str(home))
        if home.exists() and any(home.iterdir()):
            raise NodeError(N_("node directory {home} already exists and is not empty; "
                               "choose another --home or remove it"), home=str(home))
        # Build the node beside its final place and rename it in at the end, so a
        # crash half way leaves no half-made node where `init` would refuse to run.
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.init-", dir=home.parent))
        keys = NodeKeys.generate()
        keys.save(staging / KEYS_DIR, passphrase)
        db = store.open_database(staging / DB_NAME, create=True)
        node = cls._assemble(staging, db, pm, passphrase)
        node._keys = keys
        with db.atomic():
            for key, value in {
                "name": name.strip(), "level": found_level.name, "area": area,
                "author": keys.author, "encryption": keys.encryption_public, "epoch": "0",
                "root": "1" if root else "0", "created": clock.today().isoformat(),
                "match_key": _secrets.token_hex(32),
            }.items():
                store.set_meta(db, key, value)
            if root:
                cert = Certificate.issue(keys, subject=keys.author, encryption=keys.encryption_public,
                                         area=area, level=found_level.name, name=name.strip())
                store.set_meta(db, "certificate", cert.to_json())
                store.set_meta(db, "root_author", cert.subject)
                store.remember_certificate(db, cert)
        db.execute("pragma wal_checkpoint(truncate)")
        node.close()
        if home.exists():
            home.rmdir()
        staging.rename(home)
        opened = cls.open(home, passphrase=passphrase, pm=node.pm)
        opened._keys = keys
        return opened

    @classmethod
    def open(cls, home: Path | None = None, *, passphrase: str | None = None,
             pm: pluggy.PluginManager | None = None) -> "Node":
        home = Path(home) if home else default_home()
        if not (home / DB_NAME).exists():
            raise NodeError(N_("no node at {home} (no {database}); run `xinfang init` first, "
                               "or point --home / XINFANG_HOME at the node directory"),
                            home=str(home), database=DB_NAME)
        db = store.open_database(home / DB_NAME)
        if store.get_meta(db, "author") is None:
            raise NodeError(N_("database in {home} has no node identity; it was not made by "
                               "`xinfang init` or is damaged"), home=str(home))
        return cls._assemble(home, db, pm, passphrase)

    @classmethod
    def _assemble(cls, home, db, pm, passphrase) -> "Node":
        pm = pm or get_plugin_manager()
        registry = Registry.collect(pm)
        for entity_type in registry.entity_types.values():
            migrations.apply(db, entity_type.migrations)
        adopt_clear_rows(db)  # release 0.1.0's clear values: encrypted before anything else
        node = cls(home=home, db=db, pm=pm, registry=registry, passphrase=passphrase)
        try:
            # its own latest stamp, however far off; others' only within the drift
            own = db.execute("select max(e.order_key) from feeds f join events e on "
                             "e.id = f.head where f.author = ?",
                             [store.get_meta(db, "author")]).fetchone()[0]
            ceiling = Timestamp(node.clock.read_wall() + MAX_DRIFT_MS, MAX_COUNTER)
            latest = db.execute("select max(order_key) from events where order_key <= ?",
                                [order_key_ceiling(ceiling)]).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise NodeError(N_("database in {home} is damaged ({error}); restore it from a "
                               "backup and run `xinfang node new-epoch`"),
                            home=str(home), error=str(exc)) from None
        if own:
            node.clock.restore(timestamp_of(own))
        if latest:
            node.clock.observe(timestamp_of(latest))
        node._catch_up()
        return node

    def _catch_up(self) -> None:
        """Fold what this node could not fold before: after a migration every view,
        after a change of plugins every held entity (and hold what lost its plugin)."""
        signature = self.registry.signature()
        refold = store.get_meta(self.db, "refold_needed") == "1"
        if not refold and store.get_meta(self.db, "plugins") == signature:
            return
        with self.db.atomic():
            ctx = self.context
            if refold:
                fold.refold_all(ctx)
            else:
                stale = self.db.execute(
                    "select entity, entity_id from held_entities union "
                    "select entity, entity_id from entity_heads where entity not in (%s)"
                    % ",".join("?" * len(self.registry.entity_types)),
                    list(self.registry.entity_types)).fetchall()
                for entity, entity_id in stale:
                    ctx.refold_later(entity, entity_id)
                ctx.drain()
            store.set_meta(self.db, "refold_needed", "0")
            store.set_meta(self.db, "plugins", signature)

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- identity ----------------------------------------------------------

    @property
    def info(self) -> NodeInfo:
        meta = dict(self.db.execute("select key, value from meta").fetchall())
        return NodeInfo(name=meta["name"], level=meta["level"], area=meta["area"],
                        author=meta["author"], encryption=meta["encryption"],
                        epoch=int(meta["epoch"]), root=meta["root"] == "1",
                        created=meta["created"])

    @property
    def certificate(self) -> Certificate | None:
        text = store.get_meta(self.db, "certificate")
        return Certificate.from_json(text) if text else None

    @property
    def match_key(self) -> str:
        return store.get_meta(self.db, "match_key")

    @property
    def keys(self) -> NodeKeys:
        if self._keys is None:
            from .vault import drop_other_wraps, passphrase_needed

            current, staged = self.home / KEYS_DIR, self.home / (KEYS_DIR + ".next")
            for directory in (current, staged):
                if not self.passphrase and keys_need_passphrase(directory):
                    raise passphrase_needed(directory)
            finished = None
            if staged.exists() and (loaded := NodeKeys.load(staged, self.passphrase)).author \
                    == self.info.author:
                # a key rotation was cut off after the database switched keys (and the
                # vault got a wrap for the new key in the same transaction)
                if current.exists():
                    retired, n = self.home / f"{KEYS_DIR}.retired-interrupted", 1
                    while retired.exists():
                        retired, n = self.home / f"{KEYS_DIR}.retired-interrupted-{n}", n + 1
                    current.rename(retired)
                staged.rename(current)
                finished = loaded
            self._keys = NodeKeys.load(current, self.passphrase)
            if self._keys.author != self.info.author:
                self._keys = None
                raise NodeError(N_("the keys in {directory} do not belong to this node's "
                                   "database"), directory=str(current))
            if finished is not None:
                drop_other_wraps(self.db, self._keys.encryption_public)
        return self._keys

    @property
    def vault(self) -> Vault:
        """The clear values this node holds; opening it needs the keys (and passphrase)."""
        if self._vault is None:
            self._vault = Vault.unlock(self.db, self.keys.encryption)
        return self._vault

    def reveal(self, digest: str | None, entity_id: str) -> str | None:
        """The clear value behind ``digest`` if this node holds it for the record
        ``entity_id`` (never one sealed for another record). Callers log the read."""
        return self.vault.value(digest, entity_id) if digest else None

    @property
    def keys_encrypted(self) -> bool:
        return keys_need_passphrase(self.home / KEYS_DIR)

    @property
    def context(self) -> fold.FoldContext:
        """A fold context for one transaction (its caches live no longer)."""
        return fold.FoldContext(self.db, self.registry)

    def in_jurisdiction(self, area: str) -> bool:
        return areas.contains(self.info.area, area)

    # -- writing -------------------------------------------------------------

    def append(self, draft: Draft) -> Event:
        return self.append_many([draft])[0]

    def append_many(self, drafts: Iterable[Draft]) -> list[Event]:
        """Sign, store and fold ``drafts`` in one transaction: all or nothing (folded
        a page at a time, ``Admission.batch``)."""
        info = self.info
        keys = self.keys
        events = []
        with self.db.atomic(), Admission(self).batch() as admission:
            seq, prev = store.feed_head(self.db, info.author, info.epoch)
            for draft in drafts:
                if not areas.contains(info.area, draft.area):
                    raise InvalidInput(N_("area {area} is outside this node's jurisdiction "
                                          "{scope} ({name})"), area=draft.area,
                                       scope=info.area, name=info.name)
                validate(self, draft)
                seq += 1
                event = Event.create(keys, epoch=info.epoch, seq=seq, prev=prev,
                                     hlc=self.clock.tick(), type=draft.type, entity=draft.entity,
                                     entity_id=draft.entity_id, area=draft.area, body=draft.body)
                self._keep_secrets(draft.secrets, draft.entity_id)
                reason = admission.admit(event, local=True)
                if reason is not None:
                    raise InvalidEvent(N_("this node cannot write this event: {reason}"),
                                       reason=reason if isinstance(reason, Message)
                                       else show(reason))
                prev = event.id
                events.append(event)
        return events

    def _keep_secrets(self, secrets: Iterable[Secret], entity_id: str) -> None:
        for secret in secrets:
            if not secret.holds():
                raise InvalidEvent(N_("sealed value {digest}… does not match its digest"),
                                   digest=secret.digest[:16])
            self.vault.keep(secret, entity_id)

    def ingest(self, events: Iterable[Event], secrets: Iterable[Secret] = ()) -> int:
        """Fold events made elsewhere, in any order, as a trusted copy; return how
        many were new.

        For a reference fold of events already checked elsewhere (a backup, a
        test's model): each passes the signature and plugin checks of the one
        admission path, but not chain or trust checks, since a copy may hold
        any subset of feeds in any order. Everything is applied in one
        transaction, so a bad event leaves the store untouched.
        """
        events = list(events)
        secrets = list(secrets)
        new = 0
        with self.db.atomic():
            for event in events if secrets else ():
                sealed = sealing.digests_in(event.body)
                self._keep_secrets([s for s in secrets if s.digest in sealed], event.entity_id)
            admission = Admission(self)
            good = signatures.valid(events)
            for event in events:
                if (event.raw, event.signature) not in good:
                    raise InvalidEvent(N_("event {event}… from author {author}… has a "
                                          "signature that does not verify"),
                                       event=event.id[:16], author=event.author[:16])
                validate(self, event)
            with admission.batch():
                for event in events:
                    if admission.check_stored(event) != DUPLICATE:
                        admission.accept(event)
                        new += 1
        return new

    def new_epoch(self) -> int:
        """Start a new epoch, e.g. after restoring this node from a backup.

        The restored log may lack events this node had already sent away;
        writing on from the old sequence numbers would fork its own feed.
        """
        epoch = self.info.epoch + 1
        store.set_meta(self.db, "epoch", str(epoch))
        return epoch

    def log_access(self, entity: str, entity_id: str, what: str) -> None:
        self.db.execute(
            "insert into access_log (at, who, entity, entity_id, what) values (?,?,?,?,?)",
            [dt.datetime.now().isoformat(timespec="seconds"), self.operator, entity, entity_id, what])

    def author_name(self, author: str) -> str:
        """The office behind an author key, as this node's certificates name it."""
        info = self.info
        if author == info.author:
            return info.name
        row = self.db.execute("select name from certs where subject = ?", [author]).fetchone()
        return row[0] if row else fingerprint(author)
