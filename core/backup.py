"""Backing a node up to one file, and restoring a node from it.

A backup is a zip archive: ``manifest.json`` (what it is, whose node, when),
``xinfang.db`` (a copy made with SQLite's online backup API, consistent while
the node keeps running) and, when asked for, the node's two private keys
under ``keys/``, re-encrypted under a passphrase (PKCS#8 PEM, the
``cryptography`` package's best available encryption). The archive is
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

from .errors import InvalidInput, KeyError_, NodeError
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
        raise InvalidInput(f"备份文件 {path} 是一个目录：请给出文件名，如 --out {path / 'node.xfbak'}")
    if not path.parent.is_dir():
        raise InvalidInput(f"目录 {path.parent} 不存在：请先创建它，或换一个 --out 位置")
    if path.exists():
        raise InvalidInput(f"文件 {path} 已存在：请换一个文件名，或先移走旧的备份")
    if node.db.conn.in_transaction:
        raise InvalidInput("不能在本节点的写入事务中备份：请在事务提交后再备份 "
                           "(the connection has an open transaction)")
    if with_keys and not passphrase:
        raise InvalidInput("备份密钥需要口令：请用 --passphrase 或 XINFANG_PASSPHRASE 给出"
                           "加密备份中密钥的口令")
    key_files = _encrypted_keys(node.keys, passphrase) if with_keys else {}
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
    """SQLite's online backup: a consistent copy while the node keeps running."""
    conn = sqlite3.connect(str(target))
    try:
        node.db.conn.backup(conn)
        conn.execute("pragma journal_mode = delete")  # one self-contained file
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
        raise InvalidInput(f"备份文件 {path} 不存在（或不是文件）：请检查路径")
    not_backup = f"{path} 不是 xinfang 备份文件（由 `xinfang backup` 写出）"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if MANIFEST not in names or DB_NAME not in names:
                raise InvalidInput(f"{not_backup}：缺少 {MANIFEST} 或 {DB_NAME}")
            manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{not_backup}：{exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{not_backup}：清单不是备份清单")
    if manifest.get("version") != VERSION:
        raise InvalidInput(f"备份文件 {path} 的格式版本 {manifest.get('version')!r} 本程序不认识："
                           "请用写出它的 xinfang 版本或更新的版本恢复")
    keys_in = {f"{KEYS_DIR}/{n}" for n in KEY_FILES} <= names
    if manifest.get("with_keys") and not keys_in:
        raise InvalidInput(f"备份文件 {path} 已损坏：清单说含有密钥，但缺少密钥文件")
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
        raise InvalidInput(f"备份文件 {path} 中的密钥受口令保护：请用 --passphrase 或 "
                           "XINFANG_PASSPHRASE 给出备份时的口令")
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
                raise InvalidInput(f"备份文件 {path} 已损坏：其中的密钥不属于其中的数据库")
            keys.save(staging / KEYS_DIR, passphrase)
        elif NodeKeys.load(hand_keys, passphrase).author != author:
            raise InvalidInput(f"{hand_keys} 中的密钥不属于备份中的节点（{manifest['name']}）："
                               "请复制原节点自己的 keys/ 目录")
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
        raise NodeError(f"{home} 是一个文件，不是目录：请用 --home 另选一个新目录")
    if manifest["with_keys"]:
        if present:
            raise NodeError(f"目录 {home} 已存在且不为空：恢复不会覆盖它；请用 --home 另选一个新目录")
        return None
    if present and present != [KEYS_DIR]:
        raise NodeError(f"目录 {home} 已存在且不为空：恢复不会覆盖它；请用 --home 另选一个新目录"
                        f"（备份不含密钥时，其中只可有手工复制来的 {KEYS_DIR}/ 目录）")
    if not present or not all((home / KEYS_DIR / n).is_file() for n in KEY_FILES):
        raise InvalidInput(f"备份文件 {path} 不含密钥（备份时未加 --with-keys）：请先把原节点的 "
                           f"{KEYS_DIR}/ 目录（{'、'.join(KEY_FILES)}）手工复制到 {home / KEYS_DIR}，"
                           "再运行 restore")
    return home / KEYS_DIR


def _restore_keys(archive: zipfile.ZipFile, path: Path, passphrase: str) -> NodeKeys:
    loaded = []
    for name in KEY_FILES:
        try:
            loaded.append(serialization.load_pem_private_key(
                archive.read(f"{KEYS_DIR}/{name}"), password=passphrase.encode("utf-8")))
        except (ValueError, TypeError):
            raise KeyError_(f"口令不对：解不开备份文件 {path} 中的密钥；请给出备份时所用的口令 "
                            "(wrong passphrase, or damaged key files)") from None
    signing, encryption = loaded
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(encryption, X25519PrivateKey):
        raise InvalidInput(f"备份文件 {path} 中的密钥不是 Ed25519 和 X25519 密钥")
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
        raise InvalidInput(f"备份文件 {path} 中的数据库已损坏 ({exc})") from None
    if ok != "ok" or author is None or author[0] != manifest.get("author"):
        raise InvalidInput(f"备份文件 {path} 中的数据库已损坏或不属于清单所写的节点")
