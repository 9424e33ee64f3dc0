"""Sealed envelopes: what crosses a USB stick or an HTTP connection.

Only the addressed node can read an envelope, anyone can check who sent it,
and any changed, missing or added byte is refused before anything is
applied. It is read in the order that keeps a hostile file cheap, because a
stolen key or a USB stick is all an attacker needs to hand one over:

1. the framing and the header, every field type-checked;
2. the sender's Ed25519 signature over every byte, hashed as the file
   streams past, so a file of any size costs the memory of one buffer;
3. the credentials section (the sender's certificate chain), decrypted but
   never compressed, which the caller checks (``check``: enrolment, the
   pinned root, a neighbour) before one byte of the payload is inflated;
4. the payload, one section at a time, each inflated under a hard output
   cap and the whole envelope under a ratio cap (``Inflation``).

Format 2 (``MAGIC``)::

    "XINFANG-ENVELOPE-2\\n" | u32 n | header: n bytes of canonical JSON
    | u32 n (17 .. MAX_SECTION) | n bytes of section ciphertext   (repeated)
    | u32 0 | 64-byte signature

    header    = {v: 2, kind, from, to, id (16 random bytes), ephemeral [, sent]}
    key       = HKDF-SHA256(X25519(ephemeral, receiver), salt SHA-256(header), KDF_INFO)
    section i = ChaCha20-Poly1305(key, nonce = i as 12 bytes big-endian, no associated data)
    section 0 = credentials: canonical {"chain": [...]} or {}, not compressed
    section i = zlib(canonical item i) for i >= 1: the payload, one item or more
    signature = Ed25519(SIGN_DOMAIN + SHA-256(every byte before it))

The key hangs on the header, so a section cannot move to another envelope;
its index is its nonce, so it cannot move within one. So the file is read
twice, and neither read holds more than a section: the whole file's
signature (step 2) refuses a file reordered, cut short, padded or changed
anywhere before one section is opened, so such a file applies nothing;
then each section's own tag, under its index, refuses one moved, dropped,
repeated or altered after that check (a second process, a shared drive), a
read that fails is named (a USB stick taken out), and the file hashed
again on the way must match what was signed. A file damaged *during* an
import thus stops it between two sections: the items taken before the
damage stay taken (a bundle's pages, one transaction each), nothing after
it is, and no item is taken in part. No final-section flag is needed: the
end is where the signature, checked first, says it is. Format 1 (release
0.1.0) sealed the chain inside the one compressed payload, so it could not
be checked before inflating; it is refused, naming the release that reads it.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from typing import Any, BinaryIO, Callable, Iterator

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from xinfang.core import codec, keys
from xinfang.core.errors import EncodingError
from xinfang.core.i18n import N_

# the errors and the names of files are the envelope's: callers know them as ``envelope.…``
from .header import (FILES, MAGIC, NAMES, VERSION, AlreadyImported, EnvelopeError,  # noqa: F401
                     describe, old_format, read_header, what_file, wrong_file)
from .inflation import Inflation, compress

SIGN_DOMAIN = b"xinfang-envelope-v2\x00"
KDF_INFO = b"xinfang-envelope-key-v2"
#: a chain is at most ``certs.MAX_CHAIN`` (8) certificates of well under 2 KiB each
MAX_CREDENTIALS = 64 * 1024
#: one section is read into memory whole to be decrypted: the largest HTTP body
#: (``http.MAX_REQUEST_BYTES``), and far more than a page of events compresses to
MAX_SECTION = 16 * 1024 * 1024
#: a file is streamed, so this bounds the time spent hashing it, not memory
MAX_ENVELOPE = 4 * 1024 * 1024 * 1024
#: how much of a file is read at a time while hashing it
CHUNK = 1024 * 1024
TAG = 16
SIGNATURE = 64

#: what the caller checks of the header and the credentials (the sender's chain as it
#: travels) before any of the payload is inflated; it raises to refuse the sender
Check = Callable[[dict[str, Any], dict[str, Any]], None]


@attrs.frozen
class Opened:
    header: dict[str, Any]
    #: the first item, with the sender's chain back in its ``chain`` entry
    payload: Any
    #: the items after the first (a bundle's pages)
    more: tuple[Any, ...] = ()


# -- writing ---------------------------------------------------------------------


class Sealer:
    """Write one envelope to ``out``, an item at a time (a bundle's pages as they are read).

    ``credentials`` is ``{"chain": <the sender's chain as it travels>}``, or ``{}``.
    """

    def __init__(self, out: BinaryIO, sender: keys.NodeKeys, recipient_author: str,
                 recipient_encryption: str, kind: str, credentials: dict[str, Any],
                 extra: dict[str, Any] | None = None):
        ephemeral = X25519PrivateKey.generate()
        header = codec.encode({
            "v": VERSION, "kind": kind, "from": sender.author, "to": recipient_author,
            "id": os.urandom(16).hex(),
            "ephemeral": ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
            **(extra or {})})
        self._out, self._sender, self._digest, self._index, self.size = (
            out, sender, hashlib.sha256(), 0, 0)
        self._aead = ChaCha20Poly1305(_derive(ephemeral.exchange(
            X25519PublicKey.from_public_bytes(bytes.fromhex(recipient_encryption))), header))
        self._write(MAGIC + struct.pack(">I", len(header)) + header)
        self._section(codec.encode(credentials))

    def add(self, item: Any) -> None:
        self._section(compress(codec.encode(item)))

    def close(self) -> int:
        """Write the end and the signature; returns the envelope's size in bytes."""
        self._write(struct.pack(">I", 0))
        signature = self._sender.sign(SIGN_DOMAIN + self._digest.digest())
        self._out.write(signature)
        return self.size + len(signature)

    def _section(self, plaintext: bytes) -> None:
        if len(plaintext) + TAG > MAX_SECTION:
            raise EnvelopeError(N_("section {number} is {size} bytes, over the limit of {limit} "
                                   "bytes"), number=self._index, size=len(plaintext) + TAG,
                                limit=MAX_SECTION)
        sealed = self._aead.encrypt(_nonce(self._index), plaintext, None)
        self._write(struct.pack(">I", len(sealed)) + sealed)
        self._index += 1

    def _write(self, data: bytes) -> None:
        self._digest.update(data)
        self._out.write(data)
        self.size += len(data)


def seal(sender: keys.NodeKeys, recipient_author: str, recipient_encryption: str,
         kind: str, payload: Any, extra: dict[str, Any] | None = None) -> bytes:
    """An envelope of one item. A map's ``chain`` entry (every payload of the protocol
    carries the sender's chain there) travels as the credentials, to be checked first;
    ``open_`` puts it back."""
    credentials: dict[str, Any] = {}
    if isinstance(payload, dict) and "chain" in payload:
        payload = dict(payload)
        credentials["chain"] = payload.pop("chain")
    out = io.BytesIO()
    sealer = Sealer(out, sender, recipient_author, recipient_encryption, kind, credentials,
                    extra)
    sealer.add(payload)
    sealer.close()
    return out.getvalue()


# -- reading ---------------------------------------------------------------------


class Reader:
    """One envelope in a seekable binary file, checked in the order the module describes.

    Constructing it checks steps 1 and 2; ``credentials()`` is step 3 and
    ``items()`` step 4. Nothing the sender wrote is inflated or parsed as a
    payload before ``items()``.
    """

    def __init__(self, handle: BinaryIO, recipient: keys.NodeKeys, kind: str):
        self._handle = handle
        size = self._io(handle.seek, 0, os.SEEK_END)
        self._io(handle.seek, 0)
        if size > MAX_ENVELOPE:
            raise EnvelopeError(N_("the file is {size} bytes, over the limit of {limit} bytes"),
                                size=size, limit=MAX_ENVELOPE)
        version, header, header_bytes = self._io(read_header, handle, size)
        if version != VERSION:
            raise old_format(header["kind"])
        if header["kind"] != kind:
            raise wrong_file(header["kind"], kind)
        if header["to"] != recipient.author:
            raise EnvelopeError(N_("addressed to another node (fingerprint {to}), not this one "
                                   "({me})"), to=keys.fingerprint(header["to"]),
                                me=keys.fingerprint(recipient.author))
        self.header, self._size = header, size
        self._start = self._io(handle.tell)
        self._signed = self._verify(header_bytes)
        shared = recipient.encryption.exchange(
            X25519PublicKey.from_public_bytes(bytes.fromhex(header["ephemeral"])))
        self._aead = ChaCha20Poly1305(_derive(shared, header_bytes))
        self.inflation = Inflation()

    def _verify(self, header_bytes: bytes) -> bytes:
        """Step 2: walk the sections, hashing every byte, and check the signature."""
        digest = hashlib.sha256(MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes)
        number = 0
        while size := self._length(digest, number):
            for at in range(0, size, CHUNK):
                digest.update(self._read(min(CHUNK, size - at), number))
            number += 1
        signature = self._io(self._handle.read, SIGNATURE)
        if len(signature) < SIGNATURE:
            raise EnvelopeError(N_("the file is cut short: it ends at byte {size}, inside the "
                                   "signature; copy the file again"), size=self._size)
        extra = self._size - self._io(self._handle.tell)
        if extra:
            raise EnvelopeError(N_("{extra} unexpected bytes after the end of the data"),
                                extra=extra)
        if not keys.verify(self.header["from"], signature, SIGN_DOMAIN + digest.digest()):
            raise EnvelopeError(N_("the sender's signature does not verify: the file was altered "
                                   "or forged"))
        return digest.digest()

    def _length(self, digest, number: int) -> int:
        """The length of section ``number``, read where the file stands; 0 at the end."""
        length = self._read(4, number)
        digest.update(length)
        (size,) = struct.unpack(">I", length)
        if size > MAX_SECTION:
            raise EnvelopeError(N_("section {number} is {size} bytes, over the limit of "
                                   "{limit} bytes"), number=number, size=size, limit=MAX_SECTION)
        if 0 < size <= TAG:
            raise EnvelopeError(N_("damaged framing: section {number} is only {size} bytes"),
                                number=number, size=size)
        return size

    def _section(self, digest, size: int, number: int) -> bytes:
        """Section ``number``'s plaintext (``size`` bytes of ciphertext where the file stands)."""
        sealed = self._read(size, number)
        digest.update(sealed)
        try:
            return self._aead.decrypt(_nonce(number), sealed, None)
        except InvalidTag:
            raise EnvelopeError(N_("decryption failed: the contents were altered")) from None

    def _read(self, count: int, number: int) -> bytes:
        data = self._io(self._handle.read, count)
        if len(data) < count:
            raise EnvelopeError(N_("the file is cut short: it ends at byte {size}, inside "
                                   "section {number}; copy the file again"),
                                size=self._size, number=number)
        return data

    def _io(self, operation: Callable[..., Any], *args: Any) -> Any:
        """``operation(*args)`` on the file, whose failure (a USB stick pulled out, a bad
        sector) is named as such: it stops the import between two pages, never in one."""
        try:
            return operation(*args)
        except OSError as exc:
            raise EnvelopeError(N_("cannot read the file any further ({reason}); was the USB "
                                   "stick taken out? Nothing past the last complete page was "
                                   "applied: put the file back, or copy it again, and import "
                                   "it again to finish"),
                                reason=exc.strerror or str(exc)) from None

    def credentials(self) -> dict[str, Any]:
        """Step 3: the credentials section, decrypted, never inflated: ``{}`` or a chain."""
        self._io(self._handle.seek, self._start)
        size = self._length(hashlib.sha256(), 0)
        if not 0 < size <= MAX_CREDENTIALS + TAG:
            raise EnvelopeError(N_("damaged framing: the credentials section is missing or "
                                   "over {limit} bytes"), limit=MAX_CREDENTIALS)
        try:
            value = codec.decode(self._section(hashlib.sha256(), size, 0))
        except EncodingError as exc:
            raise EnvelopeError(N_("damaged credentials: {reason}"), reason=exc.message) from None
        if not isinstance(value, dict) or not set(value) <= {"chain"}:
            raise EnvelopeError(N_("damaged credentials: not a map with at most a chain"))
        return value

    def items(self, parse: Callable[[int, Any], Any] | None = None) -> Iterator[Any]:
        """Step 4: each item, decrypted, inflated under the caps and decoded, in order.

        ``parse(number, value)``, if given, turns item ``number`` (from 1) into what is
        yielded, so its decoded form is let go before the caller works on it. The
        file is hashed again as it is read: one changed since its signature was
        checked is refused when the last item is reached.
        """
        self._io(self._handle.seek, 0)
        digest = hashlib.sha256(self._io(self._handle.read, self._start))
        self._section(digest, self._length(digest, 0), 0)  # the credentials, read already
        number = 1
        while size := self._length(digest, number):
            raw = self.inflation.inflate(self._section(digest, size, number), number)
            try:
                value = codec.decode(raw)
            except EncodingError as exc:
                raise EnvelopeError(N_("damaged contents: {reason}"), reason=exc.message) from None
            del raw
            if parse is not None:
                value = parse(number, value)
            yield value
            del value
            number += 1
        if digest.digest() != self._signed:
            raise EnvelopeError(N_("the file changed while it was read; copy it again"))
        if number == 1:
            raise EnvelopeError(N_("damaged framing: the envelope holds no contents"))


def open_(recipient: keys.NodeKeys, data: bytes, kind: str, check: Check | None = None) -> Opened:
    """Open an envelope held in memory (an HTTP body, a certificate file).

    ``check(header, credentials)`` runs after the signature and before anything is
    inflated; it raises to refuse the sender.
    """
    reader = Reader(io.BytesIO(data), recipient, kind)
    credentials = reader.credentials()
    if check is not None:
        check(reader.header, credentials)
    items = list(reader.items())
    payload = items[0]
    if isinstance(payload, dict) and "chain" in credentials:
        payload = {**payload, "chain": credentials["chain"]}
    return Opened(reader.header, payload, tuple(items[1:]))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _derive(shared: bytes, header: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(header).digest(),
                info=KDF_INFO).derive(shared)
