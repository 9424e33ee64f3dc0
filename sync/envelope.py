"""Sealed envelopes: what crosses a USB stick or an HTTP connection.

A payload is compressed, encrypted to the receiver's X25519 key (an
ephemeral key, HKDF-SHA256, ChaCha20-Poly1305 with the header as associated
data) and the header plus the ciphertext's hash are signed by the sender's
Ed25519 key. Only the addressed node can read it; anyone can check who sent
it; any changed, missing or added byte is refused before anything is applied.

Layout: MAGIC, u32 header length, header (canonical JSON), u64 ciphertext
length, ciphertext, 64-byte signature.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from xinfang.core import codec, keys
from xinfang.core.errors import EncodingError, XinfangError

MAGIC = b"XINFANG-ENVELOPE-1\n"
SIGN_DOMAIN = b"xinfang-envelope-v1\x00"
KDF_INFO = b"xinfang-envelope-key-v1"
MAX_HEADER = 16 * 1024
MAX_ENVELOPE = 512 * 1024 * 1024
MAX_PLAINTEXT = 1024 * 1024 * 1024


class EnvelopeError(XinfangError):
    """A bundle or HTTP body that is damaged, forged, misaddressed or replayed."""


class AlreadyImported(EnvelopeError):
    """A bundle this node has imported before (``at`` says when): nothing more to do."""

    def __init__(self, message: str, at: str):
        super().__init__(message)
        self.at = at


#: what each kind of file is, and the command it is for
FILES = {"bundle": "数据包（在收件节点运行 `xinfang bundle import FILE`）",
         "enrolment": "证书文件（在申请证书的节点运行 `xinfang enroll import FILE`）",
         "request": "HTTP 同步请求", "response": "HTTP 同步回答",
         "enrolment_request": "注册申请文件（交上级节点运行 `xinfang enroll sign FILE`）"}


def what_file(data: bytes) -> str | None:
    """Which kind of xinfang file ``data`` is (a key of ``FILES``), or None."""
    if data.lstrip()[:1] == b"{" and b'"enrolment_request"' in data[:4096]:
        return "enrolment_request"  # the JSON request file of ``trust.EnrolmentRequest``
    try:
        return read_header(data)[0]["kind"] if data.startswith(MAGIC) else None
    except EnvelopeError:
        return None


def wrong_file(kind: str, wanted: str) -> EnvelopeError:
    """The error for a file of ``kind`` given where a ``wanted`` one belongs."""
    return EnvelopeError(f"这是{FILES.get(kind, repr(kind))}，不是{FILES[wanted].split('（')[0]}："
                         f"请用它对应的命令 (this is a {kind!r} file, not a {wanted!r})")


@attrs.frozen
class Opened:
    header: dict[str, Any]
    payload: Any


def seal(sender: keys.NodeKeys, recipient_author: str, recipient_encryption: str,
         kind: str, payload: Any, extra: dict[str, Any] | None = None) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    nonce = os.urandom(12)
    header = codec.encode({
        "v": 1, "kind": kind, "from": sender.author, "to": recipient_author,
        "id": os.urandom(16).hex(), "nonce": nonce.hex(),
        "ephemeral": ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        **(extra or {}),
    })
    key = _derive(ephemeral.exchange(X25519PublicKey.from_public_bytes(
        bytes.fromhex(recipient_encryption))), header)
    plaintext = zlib.compress(codec.encode(payload), 6)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, header)
    signature = sender.sign(SIGN_DOMAIN + header + hashlib.sha256(ciphertext).digest())
    return (MAGIC + struct.pack(">I", len(header)) + header + struct.pack(">Q", len(ciphertext))
            + ciphertext + signature)


def read_header(data: bytes) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """Split and check the framing; returns (header, header bytes, ciphertext, signature)."""
    if len(data) > MAX_ENVELOPE:
        raise EnvelopeError(f"file is {len(data)} bytes, over the {MAX_ENVELOPE}-byte limit")
    if not data.startswith(MAGIC):
        if what_file(data) == "enrolment_request":
            raise EnvelopeError(f"这是{FILES['enrolment_request']}，不是数据包或证书 (this is an "
                                "enrolment request file)")
        raise EnvelopeError("not an xinfang bundle or certificate file (wrong magic bytes at "
                            "the start); check which file was given")
    offset = len(MAGIC)
    if len(data) < offset + 4:
        raise EnvelopeError(f"truncated: ends at byte {len(data)} inside the header length")
    (header_len,) = struct.unpack_from(">I", data, offset)
    offset += 4
    if header_len > MAX_HEADER:
        raise EnvelopeError(f"header length {header_len} is over the {MAX_HEADER}-byte limit")
    if len(data) < offset + header_len + 8:
        raise EnvelopeError(f"truncated: ends at byte {len(data)} inside the header")
    header_bytes = data[offset:offset + header_len]
    offset += header_len
    (cipher_len,) = struct.unpack_from(">Q", data, offset)
    offset += 8
    expected = offset + cipher_len + 64
    if len(data) < expected:
        raise EnvelopeError(f"truncated: {len(data)} bytes of {expected}; copy the file again")
    if len(data) > expected:
        raise EnvelopeError(f"{len(data) - expected} unexpected bytes after the end of the bundle")
    try:
        header = codec.decode(header_bytes)
    except EncodingError as exc:
        raise EnvelopeError(f"damaged header: {exc}") from None
    if not isinstance(header, dict) or not {"from", "to", "id", "nonce", "ephemeral",
                                            "kind"} <= set(header):
        raise EnvelopeError("damaged header: fields are missing")
    for name, length in (("from", 64), ("to", 64), ("ephemeral", 64), ("nonce", 24), ("id", 32)):
        value = header[name]
        if not (isinstance(value, str) and len(value) == length
                and all(c in "0123456789abcdef" for c in value)):
            raise EnvelopeError(f"damaged header: field {name!r} is not {length} hex digits")
    return header, header_bytes, data[offset:offset + cipher_len], data[expected - 64:expected]


def open_(recipient: keys.NodeKeys, data: bytes, kind: str) -> Opened:
    header, header_bytes, ciphertext, signature = read_header(data)
    if header["kind"] != kind:
        raise wrong_file(header["kind"], kind)
    if header["to"] != recipient.author:
        raise EnvelopeError(f"addressed to another node (fingerprint "
                            f"{keys.fingerprint(header['to'])}), not this one "
                            f"({keys.fingerprint(recipient.author)})")
    if not keys.verify(header["from"], signature,
                       SIGN_DOMAIN + header_bytes + hashlib.sha256(ciphertext).digest()):
        raise EnvelopeError("the sender's signature does not verify: the file was altered "
                            "or forged")
    try:
        shared = recipient.encryption.exchange(
            X25519PublicKey.from_public_bytes(bytes.fromhex(header["ephemeral"])))
        plaintext = ChaCha20Poly1305(_derive(shared, header_bytes)).decrypt(
            bytes.fromhex(header["nonce"]), ciphertext, header_bytes)
    except (InvalidTag, ValueError):
        raise EnvelopeError("decryption failed: the contents were altered") from None
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(plaintext, MAX_PLAINTEXT)
        if inflater.unconsumed_tail:
            raise EnvelopeError(f"contents expand beyond {MAX_PLAINTEXT} bytes")
        payload = codec.decode(raw)
    except (zlib.error, EncodingError) as exc:
        raise EnvelopeError(f"damaged contents: {exc}") from None
    return Opened(header, payload)


def _derive(shared: bytes, header: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(header).digest(),
                info=KDF_INFO).derive(shared)
