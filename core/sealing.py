"""Sealed values: sensitive fields carried as salted digests, and boxes that
carry their clear values to one reader.

A petitioner's name, ID number, phone and address never enter signed event
bytes in clear. The event carries ``sha256(SEAL_DOMAIN + salt + value)``; the
salt and value (a ``Secret``) are kept beside the log in the node's vault
(``core.vault``) and travel only where policy releases them. The signature
therefore covers the value (a released value can be checked against its
digest) without the log revealing it, and a random 128-bit salt stops a
digest from being reversed by trying every ID number.

A released value travels as a *box* (``seal_to``): sealed to the X25519 key
of the one office that may read it, with the digest, the entity it belongs
to and the reader bound in as associated data. Relays on the way hold and
forward the box without being able to open it, and a box cannot be moved to
another entity or another reader.

``match_tag`` keys the 同人 tags: HMAC under a key only the tagging node
holds (see ``xinfang.plugins.cases.tags``), so a node that does not hold it
cannot test a guessed ID number against a tag.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEAL_DOMAIN = b"xinfang-seal-v1\x00"
MATCH_DOMAIN = b"xinfang-match-v1\x00"
BOX_DOMAIN = b"xinfang-box-v1\x00"
#: ephemeral public key, then ciphertext with its 16-byte tag
BOX_OVERHEAD = 32 + 16


@attrs.frozen
class Secret:
    digest: str
    salt: str = attrs.field(repr=False)
    value: str = attrs.field(repr=False)

    def holds(self) -> bool:
        return digest_of(self.salt, self.value) == self.digest


def digest_of(salt_hex: str, value: str) -> str:
    return hashlib.sha256(SEAL_DOMAIN + bytes.fromhex(salt_hex) + value.encode("utf-8")).hexdigest()


def seal(value: str) -> Secret:
    salt = os.urandom(16).hex()
    return Secret(digest_of(salt, value), salt, value)


def digests_in(value: Any) -> set[str]:
    """Every 64-hex string in an event body: the digests it may seal."""
    found: set[str] = set()
    if isinstance(value, dict):
        for item in value.values():
            found |= digests_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= digests_in(item)
    elif isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        found.add(value)
    return found


def match_tag(match_key_hex: str, value: str) -> str:
    return hmac.new(bytes.fromhex(match_key_hex), MATCH_DOMAIN + value.encode("utf-8"),
                    hashlib.sha256).hexdigest()[:32]


class BoxError(Exception):
    """A box that does not open with this key and these bindings."""


def seal_to(recipient_public_hex: str, plaintext: bytes, bound: bytes) -> bytes:
    """Encrypt ``plaintext`` so only the holder of the X25519 private key behind
    ``recipient_public_hex`` can read it; ``bound`` must be given again to open it."""
    ephemeral = X25519PrivateKey.generate()
    public = ephemeral.public_key().public_bytes_raw()
    recipient = X25519PublicKey.from_public_bytes(bytes.fromhex(recipient_public_hex))
    key = _box_key(ephemeral.exchange(recipient), public, bytes.fromhex(recipient_public_hex))
    return public + ChaCha20Poly1305(key).encrypt(bytes(12), plaintext, BOX_DOMAIN + bound)


def open_box(private: X25519PrivateKey, box: bytes, bound: bytes) -> bytes:
    """The plaintext of a box sealed to ``private``'s public key with ``bound``."""
    if len(box) < BOX_OVERHEAD:
        raise BoxError()
    public, ciphertext = box[:32], box[32:]
    own = private.public_key().public_bytes_raw()
    try:
        key = _box_key(private.exchange(X25519PublicKey.from_public_bytes(public)), public, own)
        return ChaCha20Poly1305(key).decrypt(bytes(12), ciphertext, BOX_DOMAIN + bound)
    except (InvalidTag, ValueError):
        raise BoxError() from None


def _box_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    # a fresh ephemeral key per box, so the fixed nonce is never reused under one key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=BOX_DOMAIN).derive(shared)
