"""Signed documents: canonical bytes, a domain-separated signature, one wire form.

Events, certificates and enrolment requests are all the same thing: a map
encoded once into canonical bytes (see ``codec``), signed with Ed25519 over
``domain + bytes``, and kept and forwarded as exactly those bytes with their
signature. This module is the only place that makes, reads or carries them.

Why one form. Secure Scuttlebutt signed a JSON re-serialisation of each
message, whose exact bytes were defined by one implementation's
``JSON.stringify``; every other implementation had to reproduce those bytes
quirk for quirk, and each difference was a message that verified on one node
and not on another. The lesson: sign bytes you define exactly, keep them as
they were signed, and have one parser, so there is one piece of code to
harden. Here the bytes are the canonical encoding, ``decode`` refuses any
other byte form of the same value, and every signed document travels as::

    [base64 bytes, base64 signature]

(standard base64 with padding, as ``base64.b64encode`` writes it). The kind
is not in the wire form: the place a document is read from says which kind
it must be, and the kind's domain prefix makes a document signed as one kind
fail to verify as any other.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import attrs

from . import codec, keys
from .errors import EncodingError, InvalidInput
from .i18n import N_, Message, _


class SignedError(InvalidInput):
    """A signed document whose bytes or wire form cannot be read."""


@attrs.frozen
class Kind:
    name: str
    #: what messages call it (a msgid: ``Message(kind.label)`` is shown translated)
    label: str
    #: signed before the bytes, so a signature for one kind is none for another
    domain: bytes
    #: the largest encoding accepted, checked before decoding
    max_bytes: int


#: every kind of signed document; the prefixes are those of release 0.1.0,
#: byte for byte, so every signature made since still verifies.
KINDS = {k.name: k for k in (
    Kind("event", N_("event"), b"xinfang-event-v1\x00", 64 * 1024),
    Kind("certificate", N_("certificate"), b"xinfang-cert-v1\x00", 64 * 1024),
    Kind("enrolment", N_("enrolment request"), b"xinfang-enroll-v1\x00", 64 * 1024),
)}


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(_("unknown kind of signed document {name}; known: {known}").format(
            name=repr(name), known=", ".join(KINDS))) from None


@attrs.frozen
class Signed:
    """One signed document: ``raw`` and ``signature`` are what travels."""

    kind: str
    raw: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    #: ``raw`` decoded; derived, so left out of equality
    content: Any = attrs.field(eq=False, repr=False)

    def verify(self, public_key_hex: str) -> bool:
        """Whether ``public_key_hex`` signed these bytes as this kind."""
        return signature_valid(self.kind, public_key_hex, self.raw, self.signature)

    def to_wire(self) -> list[str]:
        return to_wire(self.raw, self.signature)

    @classmethod
    def from_wire(cls, kind: str, data: Any) -> "Signed":
        return from_wire(kind, data)


def sign(signer: keys.NodeKeys, kind: str, content: Any) -> Signed:
    """Encode ``content`` canonically and sign it as ``kind``."""
    k = kind_of(kind)
    try:
        raw = codec.encode(content)
    except EncodingError as exc:
        raise SignedError(N_("malformed {kind}: {error}"), kind=Message(k.label),
                          error=exc.message) from None
    _check_size(k, raw)
    return Signed(k.name, raw, signer.sign(k.domain + raw), content)


def parse(kind: str, raw: Any, signature: Any) -> Signed:
    """Read stored or received bytes; checks the encoding, not the signature."""
    k = kind_of(kind)
    for what, value in ((N_("bytes"), raw), (N_("signature"), signature)):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise SignedError(N_("the {what} of a signed {kind} must be bytes, not {type}"),
                              what=Message(what), kind=Message(k.label),
                              type=type(value).__name__)
    raw = bytes(raw)
    _check_size(k, raw)
    try:
        content = codec.decode(raw)
    except EncodingError as exc:
        raise SignedError(N_("malformed {kind} encoding: {error}"), kind=Message(k.label),
                          error=exc.message) from None
    return Signed(k.name, raw, bytes(signature), content)


def signature_valid(kind: str, public_key_hex: str, raw: bytes, signature: bytes) -> bool:
    """Whether ``public_key_hex`` signed ``raw`` as ``kind`` (for types that keep the bytes)."""
    return keys.verify(public_key_hex, signature, kind_of(kind).domain + raw)


def to_wire(raw: bytes, signature: bytes) -> list[str]:
    """The one wire form: ``[base64 bytes, base64 signature]``."""
    return [base64.b64encode(raw).decode("ascii"), base64.b64encode(signature).decode("ascii")]


def from_wire(kind: str, data: Any) -> Signed:
    """Read the wire form of a ``kind`` document; ``SignedError`` on anything else."""
    k = kind_of(kind)
    if not isinstance(data, (list, tuple)) or len(data) != 2:
        raise SignedError(N_("a signed {kind} travels as [base64 bytes, base64 signature]; "
                             "got {got}"), kind=Message(k.label), got=_describe(data))
    raw, signature = (_b64(k, what, text)
                      for what, text in zip((N_("bytes"), N_("signature")), data))
    return parse(k.name, raw, signature)


def _b64(kind: Kind, what: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise SignedError(N_("the {what} of a signed {kind} must be a base64 string, not {type}"),
                          what=Message(what), kind=Message(kind.label), type=type(text).__name__)
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        value = None
    if value is None or base64.b64encode(value).decode("ascii") != text:
        raise SignedError(N_("the {what} of a signed {kind} is not standard padded base64: "
                             "{text}"), what=Message(what), kind=Message(kind.label),
                          text=repr(_clip(text)))
    return value


def _check_size(kind: Kind, raw: bytes) -> None:
    if len(raw) > kind.max_bytes:
        raise SignedError(N_("{kind} is {size} bytes; the limit is {limit}"),
                          kind=Message(kind.label), size=len(raw), limit=kind.max_bytes)


#: what a wire form that is not one was, by type
_WHAT = {dict: N_("a map {value}"), str: N_("a string {value}"), bool: N_("a boolean {value}"),
         int: N_("a number {value}"), float: N_("a number {value}"), bytes: N_("bytes {value}")}


def _describe(data: Any) -> Message | str:
    if isinstance(data, (list, tuple)):
        if len(data) == 1:
            return Message(N_("a list of one item"))
        return Message(N_("a list of {count} items"), count=len(data))
    if data is None:
        return "null"
    value = _clip(repr(data))
    if type(data) in _WHAT:
        return Message(_WHAT[type(data)], value=value)
    return Message(N_("a {type} {value}"), type=type(data).__name__, value=value)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def string_fields(document: "Signed", names) -> tuple[list[str] | None, Message | None]:
    """The named string fields of a document's content, or what is wrong with them
    (said of the document: "the certificate {problem}")."""
    content = document.content
    if not isinstance(content, dict) or any(name not in content for name in names):
        return None, Message(N_("is missing fields"))
    wrong = [name for name in names if not isinstance(content[name], str)]
    if wrong:
        return None, Message(N_("has fields {names} that are not strings"),
                             names=", ".join(wrong))
    return [content[name] for name in names], None
