"""A node's keys: Ed25519 to sign, X25519 to receive encrypted data.

Private keys live in PKCS#8 PEM files readable by the owner only, encrypted
with a passphrase when one is given. Public keys travel as 64 hex digits; the
fingerprint is a short string two operators can read to each other over the
phone to compare keys.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .errors import InvalidInput, KeyError_
from .i18n import N_, Message

_RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


def public_hex(public_key) -> str:
    return public_key.public_bytes(**_RAW).hex()


def fingerprint(public_key_hex: str) -> str:
    """Five groups of four base32 letters: 100 bits, enough to compare aloud."""
    digest = hashlib.sha256(b"xinfang-fingerprint-v1\x00" + bytes.fromhex(public_key_hex)).digest()
    letters = base64.b32encode(digest)[:20].decode("ascii")
    return "-".join(letters[i:i + 4] for i in range(0, 20, 4))


def load_verify_key(public_key_hex: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(public_key_hex)
        if len(raw) == 32:
            return Ed25519PublicKey.from_public_bytes(raw)
        why: Message | str = Message(N_("not 32 bytes"))
    except ValueError as exc:
        why = str(exc)
    raise InvalidInput(N_("not an Ed25519 public key ({why}): {key}"), why=why,
                       key=repr(public_key_hex))


def verify(public_key_hex: str, signature: bytes, message: bytes) -> bool:
    try:
        load_verify_key(public_key_hex).verify(signature, message)
    except (InvalidSignature, InvalidInput):
        return False
    return True


@attrs.frozen
class NodeKeys:
    """The private keys of one node, loaded into memory."""

    signing: Ed25519PrivateKey = attrs.field(repr=False)
    encryption: X25519PrivateKey = attrs.field(repr=False)

    @property
    def author(self) -> str:
        """The node's identity in the log: its Ed25519 public key, in hex."""
        return public_hex(self.signing.public_key())

    @property
    def encryption_public(self) -> str:
        return public_hex(self.encryption.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.signing.sign(message)

    @classmethod
    def generate(cls) -> "NodeKeys":
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    def save(self, directory: Path, passphrase: str | None) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        algorithm = (
            serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
            if passphrase
            else serialization.NoEncryption()
        )
        for name, key in (("signing.pem", self.signing), ("encryption.pem", self.encryption)):
            data = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
            )
            _write_private(directory / name, data)

    @classmethod
    def load(cls, directory: Path, passphrase: str | None) -> "NodeKeys":
        signing = _load_private(directory / "signing.pem", passphrase)
        encryption = _load_private(directory / "encryption.pem", passphrase)
        if not isinstance(signing, Ed25519PrivateKey) or not isinstance(encryption, X25519PrivateKey):
            raise KeyError_(N_("key files in {directory} are not an Ed25519 and an X25519 key"),
                           directory=str(directory))
        return cls(signing, encryption)


def keys_need_passphrase(directory: Path) -> bool:
    try:
        head = (directory / "signing.pem").read_bytes()[:64]
    except OSError:
        return False
    return b"ENCRYPTED" in head


def _write_private(path: Path, data: bytes) -> None:
    """Create the file owner-only from the first byte, never chmod after."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _load_private(path: Path, passphrase: str | None):
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyError_(N_("key file {path} is missing; is this a node directory?"),
                        path=str(path)) from None
    encrypted = b"ENCRYPTED" in data[:64]
    if encrypted and not passphrase:
        raise KeyError_(N_("key file {path} is protected by a passphrase: give it with "
                           "--passphrase or the XINFANG_PASSPHRASE environment variable"),
                        path=str(path))
    try:
        return serialization.load_pem_private_key(
            data, password=passphrase.encode("utf-8") if encrypted else None
        )
    except (ValueError, TypeError):
        if encrypted:
            raise KeyError_(N_("wrong passphrase for key file {path}"), path=str(path)) from None
        raise KeyError_(N_("key file {path} is damaged or not a private key"),
                        path=str(path)) from None


# -- refusing weak public keys -------------------------------------------------
#
# A public key of small order makes signatures or shared secrets meaningless
# (any message verifies, or every peer derives the same key). Enrolment
# refuses them; the arithmetic below is just enough of edwards25519 to test
# whether 8·P is the identity.

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
#: u-coordinates of the small-order points of curve25519, reduced mod p.
_X25519_SMALL_ORDER = frozenset({
    0, 1, _P - 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
})


def _ed_decode(raw: bytes) -> tuple[int, int] | None:
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    sign = raw[31] >> 7
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y


def _ed_double(point: tuple[int, int]) -> tuple[int, int]:
    x, y = point
    t = _D * x * x * y * y % _P
    return ((2 * x * y) * pow(1 + t, _P - 2, _P) % _P,
            (y * y + x * x) * pow(1 - t, _P - 2, _P) % _P)


@functools.lru_cache(maxsize=4096)
def check_signing_key(public_key_hex: str) -> None:
    """Refuse an Ed25519 public key that is malformed or of small order."""
    raw = bytes.fromhex(public_key_hex) if _is_hex(public_key_hex, 64) else b""
    point = _ed_decode(raw) if len(raw) == 32 else None
    if point is None:
        raise InvalidInput(N_("signing key {key}… is not a valid Ed25519 point"),
                           key=public_key_hex[:16])
    for _ in range(3):
        point = _ed_double(point)
    if point == (0, 1):
        raise InvalidInput(N_("signing key {key}… has small order and is refused"),
                           key=public_key_hex[:16])


@functools.lru_cache(maxsize=4096)
def check_encryption_key(public_key_hex: str) -> None:
    """Refuse an X25519 public key of small order (it would fix the shared secret)."""
    if not _is_hex(public_key_hex, 64):
        raise InvalidInput(N_("encryption key {key}… is not 32 bytes of hex"),
                           key=public_key_hex[:16])
    u = int.from_bytes(bytes.fromhex(public_key_hex), "little") & ((1 << 255) - 1)
    if u % _P in _X25519_SMALL_ORDER:
        raise InvalidInput(N_("encryption key {key}… has small order and is refused"),
                           key=public_key_hex[:16])


def _is_hex(text: str, length: int) -> bool:
    return isinstance(text, str) and len(text) == length and all(c in "0123456789abcdef" for c in text)
