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
from xinfang.core.i18n import N_, Message

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

    def __init__(self, message: str, at: str, **args):
        super().__init__(message, at=at, **args)
        self.at = at


#: what each kind of file is called
NAMES = {"bundle": N_("a bundle"), "enrolment": N_("a certificate file"),
         "request": N_("an HTTP sync request"), "response": N_("an HTTP sync answer"),
         "enrolment_request": N_("an enrolment request file")}
#: what each kind of file is, and the command it is for
FILES = {"bundle": N_("a bundle (run `xinfang bundle import FILE` on the receiving node)"),
         "enrolment": N_("a certificate file (run `xinfang enroll import FILE` on the node "
                         "that asked for the certificate)"),
         "request": NAMES["request"], "response": NAMES["response"],
         "enrolment_request": N_("an enrolment request file (give it to the parent node, "
                                 "which runs `xinfang enroll sign FILE`)")}


def describe(kind: str) -> Message | str:
    """What a file of ``kind`` is and the command it is for, shown in the reader's language."""
    return Message(FILES[kind]) if kind in FILES else repr(kind)


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
    return EnvelopeError(N_("this is {this}, not {wanted}: use the command it is for"),
                         this=describe(kind), wanted=Message(NAMES[wanted]))


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
        raise EnvelopeError(N_("the file is {size} bytes, over the limit of {limit} bytes"),
                            size=len(data), limit=MAX_ENVELOPE)
    if not data.startswith(MAGIC):
        if what_file(data) == "enrolment_request":
            raise EnvelopeError(N_("this is {this}, not a bundle or certificate file"),
                                this=describe("enrolment_request"))
        raise EnvelopeError(N_("not an xinfang bundle or certificate file (wrong magic bytes "
                               "at the start); check which file was given"))
    offset = len(MAGIC)
    if len(data) < offset + 4:
        raise EnvelopeError(N_("the file is cut short: it ends at byte {size}, inside the "
                               "header length; copy the file again"), size=len(data))
    (header_len,) = struct.unpack_from(">I", data, offset)
    offset += 4
    if header_len > MAX_HEADER:
        raise EnvelopeError(N_("the header length {size} is over the limit of {limit} bytes"),
                            size=header_len, limit=MAX_HEADER)
    if len(data) < offset + header_len + 8:
        raise EnvelopeError(N_("the file is cut short: it ends at byte {size}, inside the "
                               "header; copy the file again"), size=len(data))
    header_bytes = data[offset:offset + header_len]
    offset += header_len
    (cipher_len,) = struct.unpack_from(">Q", data, offset)
    offset += 8
    expected = offset + cipher_len + 64
    if len(data) < expected:
        raise EnvelopeError(N_("the file is cut short: {size} bytes of {expected}; copy the "
                               "file again"), size=len(data), expected=expected)
    if len(data) > expected:
        raise EnvelopeError(N_("{extra} unexpected bytes after the end of the data"),
                            extra=len(data) - expected)
    try:
        header = codec.decode(header_bytes)
    except EncodingError as exc:
        raise EnvelopeError(N_("damaged header: {reason}"), reason=exc.message) from None
    if not isinstance(header, dict) or not {"from", "to", "id", "nonce", "ephemeral",
                                            "kind"} <= set(header):
        raise EnvelopeError(N_("damaged header: fields are missing"))
    for name, length in (("from", 64), ("to", 64), ("ephemeral", 64), ("nonce", 24), ("id", 32)):
        value = header[name]
        if not (isinstance(value, str) and len(value) == length
                and all(c in "0123456789abcdef" for c in value)):
            raise EnvelopeError(N_("damaged header: field {field} is not {length} hex digits"),
                                field=name, length=length)
    return header, header_bytes, data[offset:offset + cipher_len], data[expected - 64:expected]


def open_(recipient: keys.NodeKeys, data: bytes, kind: str) -> Opened:
    header, header_bytes, ciphertext, signature = read_header(data)
    if header["kind"] != kind:
        raise wrong_file(header["kind"], kind)
    if header["to"] != recipient.author:
        raise EnvelopeError(N_("addressed to another node (fingerprint {to}), not this one "
                               "({me})"), to=keys.fingerprint(header["to"]),
                            me=keys.fingerprint(recipient.author))
    if not keys.verify(header["from"], signature,
                       SIGN_DOMAIN + header_bytes + hashlib.sha256(ciphertext).digest()):
        raise EnvelopeError(N_("the sender's signature does not verify: the file was altered "
                               "or forged"))
    try:
        shared = recipient.encryption.exchange(
            X25519PublicKey.from_public_bytes(bytes.fromhex(header["ephemeral"])))
        plaintext = ChaCha20Poly1305(_derive(shared, header_bytes)).decrypt(
            bytes.fromhex(header["nonce"]), ciphertext, header_bytes)
    except (InvalidTag, ValueError):
        raise EnvelopeError(N_("decryption failed: the contents were altered")) from None
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(plaintext, MAX_PLAINTEXT)
        if inflater.unconsumed_tail:
            raise EnvelopeError(N_("the contents expand beyond {limit} bytes"),
                                limit=MAX_PLAINTEXT)
        payload = codec.decode(raw)
    except zlib.error as exc:
        raise EnvelopeError(N_("damaged contents: {reason}"), reason=str(exc)) from None
    except EncodingError as exc:
        raise EnvelopeError(N_("damaged contents: {reason}"), reason=exc.message) from None
    return Opened(header, payload)


def _derive(shared: bytes, header: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(header).digest(),
                info=KDF_INFO).derive(shared)
