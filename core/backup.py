"""Backing a node up to one file, and restoring a node from it.

A backup is a zip archive: ``manifest.json`` (what it is, whose node, when),
``xinfang.db`` (a copy made with SQLite's online backup API, consistent while
the node keeps running) and, when asked for, the node's two private keys
under ``keys/``, re-encrypted under a passphrase (PKCS#8 PEM, the
``cryptography`` package's best available encryption). Petitioners' clear
values are in the database only in its vault (``core.vault``), whose data key
opens with the node's encryption key alone: a backup without keys, or a
copied database, reveals none of them; restoring one needs the node's own
``keys/`` directory, copied by hand. The archive is
written to ``FILE.part`` and renamed when complete, so a failure leaves
nothing behind.

A restored node starts a new epoch before anything else is written: the
backup may lack events the node had already sent away, and writing on from
the old sequence numbers would fork its own feed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import tempfile
import zipfile
from pathlib import Path

import attrs
import pluggy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import vault
from .entities import listing
from .errors import InvalidInput, KeyError_, NodeError
from .i18n import N_, Message
from .keys import NodeKeys
from .node import DB_NAME, KEYS_DIR, Node

FORMAT = "xinfang-backup"
VERSION = 1
MANIFEST = "manifest.json"
KEY_FILES = ("signing.pem", "encryption.pem")


@attrs.frozen
class BackupSummary:
    path: str
    name: str
    area: str
    epoch: int
    events: int
    with_keys: bool
    bytes: int
    created: str


def backup(node: Node, path: Path | str, with_keys: bool = False,
           passphrase: str | None = None) -> BackupSummary:
    """Write a backup of ``node`` to ``path``; the keys only with ``with_keys``."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(N_("the backup file {path} is a directory: give a file name, such as "
                              "--out {example}"), path=str(path), example=str(path / "node.xfbak"))
    if not path.parent.is_dir():
        raise InvalidInput(N_("the directory {path} does not exist: create it first, or choose "
                              "another --out place"), path=str(path.parent))
    if path.exists():
        raise InvalidInput(N_("the file {path} already exists: choose another file name, or "
                              "move the old backup away first"), path=str(path))
    if node.db.conn.in_transaction:
        raise InvalidInput(N_("cannot back up inside a write transaction of this node (the "
                              "connection has an open transaction): back up after it is "
                              "committed"))
    if with_keys and not passphrase:
        raise InvalidInput(N_("backing up the keys needs a passphrase: give the passphrase that "
                              "encrypts the keys in the backup with --passphrase or "
                              "XINFANG_PASSPHRASE"))
    key_files = _encrypted_keys(node.keys, passphrase) if with_keys else {}
    if not vault.adopt_clear_rows(node.db):
        node.vault  # release 0.1.0's clear values go into the vault first: it needs the keys
    info = node.info
    part = path.with_name(path.name + ".part")
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        copy = work / DB_NAME
        _copy_database(node, copy)
        events = _count_events(copy)
        manifest = {"format": FORMAT, "version": VERSION, "name": info.name,
                    "area": info.area, "level": info.level, "author": info.author,
                    "epoch": info.epoch, "events": events, "with_keys": with_keys,
                    "created": dt.datetime.now().isoformat(timespec="seconds")}
        with zipfile.ZipFile(part, "x", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
            archive.write(copy, DB_NAME)
            for name, data in key_files.items():
                archive.writestr(f"{KEYS_DIR}/{name}", data)
        part.rename(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BackupSummary(str(path), info.name, info.area, info.epoch, events, with_keys,
                         path.stat().st_size, manifest["created"])


def _encrypted_keys(keys: NodeKeys, passphrase: str) -> dict[str, bytes]:
    algorithm = serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
    return {name: key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8, algorithm)
            for name, key in zip(KEY_FILES, (keys.signing, keys.encryption))}


def _copy_database(node: Node, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the node keeps running, then
    vacuumed, so the file holds only live rows (clear values only in the vault)."""
    conn = sqlite3.connect(str(target))
    try:
        node.db.conn.backup(conn)
        conn.execute("pragma journal_mode = delete")  # one self-contained file
        conn.execute("vacuum")  # no free pages: nothing deleted travels in the copy
    finally:
        conn.close()


def _count_events(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("select count(*) from events").fetchone()[0]
    finally:
        conn.close()


def read_manifest(path: Path | str) -> dict:
    """The manifest of a backup file, or a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(N_("the backup file {path} does not exist (or is not a file): check "
                              "the path"), path=str(path))
    not_backup = Message(N_("{path} is not a xinfang backup file (one written by `xinfang "
                            "backup`)"), path=str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if MANIFEST not in names or DB_NAME not in names:
                raise InvalidInput(N_("{backup}: {manifest} or {database} is missing"),
                                   backup=not_backup, manifest=MANIFEST, database=DB_NAME)
            manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(N_("{backup}: {error}"), backup=not_backup, error=str(exc)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(N_("{backup}: its manifest is not a backup manifest"),
                           backup=not_backup)
    if manifest.get("version") != VERSION:
        raise InvalidInput(N_("the backup file {path} has format version {version}, which this "
                              "program does not know: restore it with the xinfang version that "
                              "wrote it, or a newer one"),
                           path=str(path), version=repr(manifest.get("version")))
    keys_in = {f"{KEYS_DIR}/{n}" for n in KEY_FILES} <= names
    if manifest.get("with_keys") and not keys_in:
        raise InvalidInput(N_("the backup file {path} is damaged: its manifest says it holds "
                              "keys, but the key files are missing"), path=str(path))
    return manifest


def restore(path: Path | str, home: Path | str, passphrase: str | None = None,
            pm: pluggy.PluginManager | None = None) -> Node:
    """Restore a backup into the new node directory ``home`` and open it.

    ``home`` must be missing or empty; for a backup made without keys it may
    hold only a ``keys/`` directory copied by hand from the original node.
    The restored node is in a new epoch before anything else is written.
    """
    path, home = Path(path), Path(home)
    manifest = read_manifest(path)
    hand_keys = _check_target(home, manifest, path)
    if manifest["with_keys"] and not passphrase:
        raise InvalidInput(N_("the keys in the backup file {path} are protected by a passphrase: "
                              "give the passphrase of the backup with --passphrase or "
                              "XINFANG_PASSPHRASE"), path=str(path))
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.restore-", dir=home.parent))
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open(DB_NAME) as source, open(staging / DB_NAME, "wb") as target:
                shutil.copyfileobj(source, target)
            keys = _restore_keys(archive, path, passphrase) if manifest["with_keys"] else None
        _check_database(staging / DB_NAME, manifest, path)
        author = manifest["author"]
        if keys is not None:
            if keys.author != author:
                raise InvalidInput(N_("the backup file {path} is damaged: its keys do not "
                                      "belong to its database"), path=str(path))
            keys.save(staging / KEYS_DIR, passphrase)
        elif NodeKeys.load(hand_keys, passphrase).author != author:
            raise InvalidInput(N_("the keys in {keys} do not belong to the node in the backup "
                                  "({name}): copy the original node's own {directory}/ "
                                  "directory"), keys=str(hand_keys), name=manifest["name"],
                               directory=KEYS_DIR)
        with Node.open(staging, passphrase=passphrase, pm=pm) as node:
            node.new_epoch()  # before any write: the old epoch's later seqs may exist elsewhere
            node.db.execute("pragma wal_checkpoint(truncate)")
        if hand_keys is not None:  # one atomic rename: home holds its keys, then a node
            (staging / DB_NAME).replace(home / DB_NAME)
            shutil.rmtree(staging)
        else:
            if home.exists():
                home.rmdir()
            staging.rename(home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Node.open(home, passphrase=passphrase, pm=pm)


def _check_target(home: Path, manifest: dict, path: Path) -> Path | None:
    """Refuse a non-empty ``home``; return hand-copied keys for a keyless backup."""
    present = sorted(p.name for p in home.iterdir()) if home.is_dir() else []
    if home.exists() and not home.is_dir():
        raise NodeError(N_("{home} is a file, not a directory: choose another, new directory "
                           "with --home"), home=str(home))
    if manifest["with_keys"]:
        if present:
            raise NodeError(N_("the directory {home} exists and is not empty: a restore does not "
                               "overwrite it; choose another, new directory with --home"),
                            home=str(home))
        return None
    if present and present != [KEYS_DIR]:
        raise NodeError(N_("the directory {home} exists and is not empty: a restore does not "
                           "overwrite it; choose another, new directory with --home (for a "
                           "backup without keys it may hold only the {directory}/ directory "
                           "copied by hand)"), home=str(home), directory=KEYS_DIR)
    if not present or not all((home / KEYS_DIR / n).is_file() for n in KEY_FILES):
        raise InvalidInput(N_("the backup file {path} holds no keys (it was made without "
                              "--with-keys): first copy the original node's {directory}/ "
                              "directory ({files}) by hand to {target}, then run `xinfang "
                              "restore` again"), path=str(path), directory=KEYS_DIR,
                           files=listing(KEY_FILES), target=str(home / KEYS_DIR))
    return home / KEYS_DIR


def _restore_keys(archive: zipfile.ZipFile, path: Path, passphrase: str) -> NodeKeys:
    loaded = []
    for name in KEY_FILES:
        try:
            loaded.append(serialization.load_pem_private_key(
                archive.read(f"{KEYS_DIR}/{name}"), password=passphrase.encode("utf-8")))
        except (ValueError, TypeError):
            raise KeyError_(N_("wrong passphrase: the keys in the backup file {path} cannot be "
                               "decrypted (or the key files are damaged); give the passphrase "
                               "used for the backup"), path=str(path)) from None
    signing, encryption = loaded
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(encryption, X25519PrivateKey):
        raise InvalidInput(N_("the keys in the backup file {path} are not Ed25519 and X25519 "
                              "keys"), path=str(path))
    return NodeKeys(signing, encryption)


def _check_database(db_path: Path, manifest: dict, path: Path) -> None:
    try:
        conn = sqlite3.connect(str(db_path))
        try:
            ok = conn.execute("pragma quick_check").fetchone()[0]
            author = conn.execute("select value from meta where key = 'author'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(N_("the database in the backup file {path} is damaged ({error})"),
                           path=str(path), error=str(exc)) from None
    if ok != "ok" or author is None or author[0] != manifest.get("author"):
        raise InvalidInput(N_("the database in the backup file {path} is damaged or does not "
                              "belong to the node its manifest names"), path=str(path))
