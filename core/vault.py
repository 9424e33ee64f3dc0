"""The vault: the clear values this node holds, encrypted at rest.

A petitioner's name, ID number, phone and address reach a node's disk only
here. Each row is the salt and value behind one sealed digest, encrypted
with AES-GCM under the node's *data key* and bound to the digest and to the
record (entity id) it belongs to, so a value is only ever released together
with its own record and a row cannot be moved to another. A keyed hash of
the value (``lookup``) lets ``case find`` match a name or an ID number
without decrypting every row; it is keyed by the data key, so it cannot be
tested against guessed names or ID numbers without the keys.

The data key is random, made on first use, and kept in ``meta`` only as
boxes sealed to the node's own X25519 encryption key (``vault_key:<public
key>``), one per key the node holds, so a key rotation adds a box for the
new key before the old one goes (``sync.trust.rotate_keys``). Whoever holds
the database alone (a copied file, a backup made without keys) cannot read
the vault; when the node's keys have a passphrase, reading or writing
identity needs it. What this does not protect against is said in
docs/design.md (§11).

Each row's nonce is random (96 bits) under one data key: far below the
2^32 encryptions the AES-GCM bound allows for the values an office holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import sealing, store
from .errors import KeyError_
from .i18n import N_
from .sealing import Secret

WRAP_PREFIX = "vault_key:"
WRAP_BINDING = b"xinfang-vault-key-v1"
ROW_DOMAIN = "xinfang-vault-row-v1"
LOOKUP_DOMAIN = b"xinfang-vault-lookup-v1\x00"
NONCE = 12


class PassphraseNeeded(KeyError_):
    """The node's keys have a passphrase and none was given: identity stays locked."""


class VaultDamaged(KeyError_):
    """A vault row that does not open, or opens to a value that is not its digest's."""


def passphrase_needed(directory) -> PassphraseNeeded:
    return PassphraseNeeded(N_(
        "this node's keys ({directory}) are protected by a passphrase, and signing and "
        "reading petitioners' identity need them: give the passphrase with --passphrase or "
        "the XINFANG_PASSPHRASE environment variable"), directory=str(directory))


class Vault:
    """The encrypted clear values of one node's database, under one data key."""

    def __init__(self, db, key: bytes, *, private: X25519PrivateKey | None = None,
                 unsaved_wrap: tuple[str, str] | None = None):
        self.db = db
        self._private = private
        #: a data key made in this process: its wrap is written with every row
        #: until then, so a rolled-back first write never leaves rows without it
        self._unsaved_wrap = unsaved_wrap
        self._use(key)

    def _use(self, key: bytes) -> None:
        self._key = key
        self._aead = AESGCM(hmac.new(key, ROW_DOMAIN.encode("ascii"), hashlib.sha256).digest())
        self._lookup_key = hmac.new(key, LOOKUP_DOMAIN, hashlib.sha256).digest()

    @classmethod
    def unlock(cls, db, encryption: X25519PrivateKey) -> "Vault":
        """The node's vault, its data key opened with the node's encryption key."""
        public = encryption.public_key().public_bytes_raw().hex()
        wrapped = store.get_meta(db, WRAP_PREFIX + public)
        if wrapped is None:
            if db.execute("select count(*) from vault").fetchone()[0]:
                raise KeyError_(N_("the vault of this node was locked with other keys: "
                                   "restore the node's own {directory}/ directory to read "
                                   "identity"), directory="keys")
            key = os.urandom(32)
            vault = cls(db, key, private=encryption, unsaved_wrap=(
                WRAP_PREFIX + public, sealing.seal_to(public, key, WRAP_BINDING).hex()))
            vault._save_wrap()
        else:
            vault = cls(db, _open_wrap(encryption, wrapped), private=encryption)
        vault._adopt_clear_rows()
        return vault

    def wrap_for(self, public_hex: str) -> None:
        """Let the X25519 key ``public_hex`` (a rotation's next key) open this vault."""
        self._save_wrap()
        store.set_meta(self.db, WRAP_PREFIX + public_hex,
                       sealing.seal_to(public_hex, self._key, WRAP_BINDING).hex())

    def _save_wrap(self) -> None:
        """Write the wrap of a data key made here, or take the one another process wrote."""
        if self._unsaved_wrap is None:
            return
        name, wrap = self._unsaved_wrap
        self.db.conn.execute("insert or ignore into meta (key, value) values (?, ?)",
                             [name, wrap])
        stored = store.get_meta(self.db, name)
        if stored != wrap:  # another process made the vault's key first: use that one
            self._use(_open_wrap(self._private, stored))
            self._unsaved_wrap = None

    # -- writing -----------------------------------------------------------------

    def keep(self, secret: Secret, entity_id: str) -> bool:
        """Keep a checked clear value of ``entity_id``; False if it was already held."""
        self._save_wrap()
        nonce = os.urandom(NONCE)
        plain = json.dumps([secret.salt, secret.value], ensure_ascii=False).encode("utf-8")
        sealed = nonce + self._aead.encrypt(nonce, plain, _binding(secret.digest, entity_id))
        cursor = self.db.conn.execute(
            "insert or ignore into vault (digest, entity_id, lookup, sealed) values (?,?,?,?)",
            [secret.digest, entity_id, self._lookup(secret.value), sealed])
        return cursor.rowcount == 1

    def keep_all(self, secrets: Iterable[Secret], entity_id: str) -> None:
        for secret in secrets:
            self.keep(secret, entity_id)

    # -- reading -----------------------------------------------------------------

    def get(self, digest: str | None, entity_id: str | None = None) -> Secret | None:
        """The value behind ``digest`` (of ``entity_id`` only, when given).

        A row that does not open is never returned: it raises ``VaultDamaged``.
        """
        if not digest:
            return None
        row = self.db.conn.execute("select entity_id, sealed from vault where digest = ?",
                                   [digest]).fetchone()
        if row is None or (entity_id is not None and row[0] != entity_id):
            return None
        return self._open(digest, row[0], row[1])

    def value(self, digest: str | None, entity_id: str | None = None) -> str | None:
        """The clear value behind a sealed digest, where this node holds it."""
        secret = self.get(digest, entity_id)
        return secret.value if secret else None

    def of_entity(self, entity_id: str, digests: Iterable[str]) -> list[Secret]:
        """The values among ``digests`` that belong to ``entity_id``, and only those
        (a damaged row is left out: ``xinfang log verify`` reports it)."""
        wanted = sorted(set(digests))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        return [secret for secret in (
            self._open_or_none(digest, entity_id, sealed) for digest, sealed in self.db.conn.execute(
                f"select digest, sealed from vault where entity_id = ? and digest in ({marks})",
                [entity_id, *wanted])) if secret is not None]

    def digests_of_value(self, value: str) -> list[str]:
        """The digests of the held values equal to ``value``, each checked (a damaged
        row matches nothing)."""
        found = []
        for digest, entity_id, sealed in self.db.conn.execute(
                "select digest, entity_id, sealed from vault where lookup = ?",
                [self._lookup(value)]):
            secret = self._open_or_none(digest, entity_id, sealed)
            if secret is not None and secret.value == value:
                found.append(digest)
        return found

    def problems(self) -> list[str]:
        """Digests whose row does not open, does not match its digest or has a lookup
        that is not its value's: for ``xinfang log verify``."""
        bad = []
        for digest, entity_id, lookup, sealed in self.db.conn.execute(
                "select digest, entity_id, lookup, sealed from vault order by digest"):
            secret = self._open_or_none(digest, entity_id, sealed)
            if secret is None or lookup != self._lookup(secret.value):
                bad.append(digest)
        return bad

    # -- inside ------------------------------------------------------------------

    def _open(self, digest: str, entity_id: str, sealed: bytes) -> Secret:
        secret = self._open_or_none(digest, entity_id, sealed)
        if secret is None:
            raise VaultDamaged(N_("the vault row of sealed value {digest}… is damaged or was "
                                  "moved to another record: run `xinfang log verify`, and "
                                  "restore the node from a backup"), digest=digest[:16])
        return secret

    def _open_or_none(self, digest: str, entity_id: str, sealed) -> Secret | None:
        sealed = bytes(sealed)
        try:
            plain = self._aead.decrypt(sealed[:NONCE], sealed[NONCE:],
                                       _binding(digest, entity_id))
            salt, value = json.loads(plain)
            secret = Secret(digest, salt, value)
            return secret if secret.holds() else None
        except (InvalidTag, ValueError, TypeError, AttributeError):
            return None

    def _lookup(self, value: str) -> str:
        return hmac.new(self._lookup_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def _adopt_clear_rows(self) -> int:
        """Move release 0.1.0's clear ``secrets`` rows into the vault, then delete them.

        Each value goes under the record of the first event (in log order) that
        carries its digest; a value no held event carries, or one that does not
        match its digest, is dropped. The rows are deleted with
        ``secure_delete`` so their bytes are overwritten, not only unlinked.
        """
        conn = self.db.conn
        if conn.execute("select 1 from secrets limit 1").fetchone() is None:
            return 0
        owners: dict[str, str] = {}
        for event in store.all_events(self.db, order="pos"):
            for digest in sealing.digests_in(event.body):
                owners.setdefault(digest, event.entity_id)
        secure = conn.execute("pragma secure_delete").fetchone()[0]
        conn.execute("pragma secure_delete = on")
        kept = 0
        try:
            with self.db.atomic():
                for digest, salt, value in conn.execute(
                        "select digest, salt, value from secrets").fetchall():
                    secret = Secret(digest, salt, value)
                    try:
                        holds = secret.holds()
                    except (ValueError, TypeError, AttributeError):  # a salt that is not hex
                        holds = False
                    if holds and digest in owners:
                        kept += self.keep(secret, owners[digest])
                conn.execute("delete from secrets")
        finally:
            conn.execute(f"pragma secure_delete = {int(secure)}")
        if not conn.in_transaction:
            conn.execute("pragma wal_checkpoint(truncate)")
        return kept


def adopt_clear_rows(db) -> bool:
    """Move release 0.1.0's clear values into a vault that has no data key yet.

    This needs no private key: the data key is new and its wrap is sealed to
    the public key in ``meta``. When the vault already has a key the rows
    wait for ``Vault.unlock`` (which needs the keys); returns whether they moved.
    """
    if db.conn.execute("select 1 from secrets limit 1").fetchone() is None:
        return True
    public = store.get_meta(db, "encryption")
    if public is None or db.conn.execute(
            "select 1 from meta where key like ? limit 1", [WRAP_PREFIX + "%"]).fetchone() \
            or db.conn.execute("select 1 from vault limit 1").fetchone():
        return False
    key = os.urandom(32)
    Vault(db, key, unsaved_wrap=(WRAP_PREFIX + public,
                                 sealing.seal_to(public, key, WRAP_BINDING).hex())
          )._adopt_clear_rows()
    return True


def drop_other_wraps(db, public_hex: str) -> int:
    """Forget the data key's wraps for every key but ``public_hex`` (after a rotation
    finished); nothing is dropped unless ``public_hex`` has one."""
    if store.get_meta(db, WRAP_PREFIX + public_hex) is None:
        return 0
    return db.conn.execute("delete from meta where key like ? and key != ?",
                           [WRAP_PREFIX + "%", WRAP_PREFIX + public_hex]).rowcount


def _open_wrap(encryption: X25519PrivateKey, wrapped: str) -> bytes:
    try:
        key = sealing.open_box(encryption, bytes.fromhex(wrapped), WRAP_BINDING)
    except (sealing.BoxError, ValueError):
        key = b""
    if len(key) != 32:
        raise KeyError_(N_("the vault's data key does not open with this node's keys: the "
                           "node's settings table is damaged; restore the node from a backup"))
    return key


def _binding(digest: str, entity_id: str) -> bytes:
    return json.dumps([ROW_DOMAIN, digest, entity_id]).encode("utf-8")
