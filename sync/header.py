"""An envelope's errors, the kinds of xinfang file, and the envelope header.

The header is the part of an envelope (``envelope``) read before anything
is verified, so every field of it is type-checked here, and a file that is
not an envelope, or is one of another kind or of the old format, is named
for what it is.
"""

from __future__ import annotations

import io
import struct
from typing import Any, BinaryIO

from xinfang.core import codec, keys
from xinfang.core.errors import EncodingError, InvalidInput, XinfangError
from xinfang.core.i18n import N_, Message

MAGIC = b"XINFANG-ENVELOPE-2\n"
#: the format of release 0.1.0 (OLD_RELEASE), recognised only to be refused by name
MAGIC_1 = b"XINFANG-ENVELOPE-1\n"
OLD_RELEASE = "0.1.0"
VERSION = 2
#: a header is a few fixed fields (two keys, an id, a timestamp): 1 KiB would do
MAX_HEADER = 16 * 1024
#: the fields of 64 or 32 hex digits; ``sent`` (milliseconds) is on HTTP requests only
HEX_FIELDS = {"from": 64, "to": 64, "ephemeral": 64, "id": 32}
KINDS = ("bundle", "enrolment", "request", "response")


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
    if not data.startswith((MAGIC, MAGIC_1)):
        return None
    try:
        return read_header(io.BytesIO(data), len(data))[1]["kind"]
    except EnvelopeError:
        return None


def wrong_file(kind: str, wanted: str) -> EnvelopeError:
    """The error for a file of ``kind`` given where a ``wanted`` one belongs."""
    return EnvelopeError(N_("this is {this}, not {wanted}: use the command it is for"),
                         this=describe(kind), wanted=Message(NAMES[wanted]))


def old_format(kind: str) -> EnvelopeError:
    """The error for an envelope of release 0.1.0's format."""
    return EnvelopeError(N_("this is {this} in the envelope format of xinfang {release}, which "
                            "this release no longer reads because it cannot be checked before "
                            "it is unpacked: have it written again with this release, or read "
                            "it with xinfang {release}"),
                         this=describe(kind), release=OLD_RELEASE)


def read_header(handle: BinaryIO, size: int) -> tuple[int, dict[str, Any], bytes]:
    """(format version, header, header bytes) from the start of ``handle``.

    A format 2 header has every field checked; of a format 1 header only the
    kind is read, to say what the old file is.
    """
    start = handle.read(len(MAGIC))
    if start not in (MAGIC, MAGIC_1):
        if what_file(start + handle.read(4096)) == "enrolment_request":
            raise EnvelopeError(N_("this is {this}, not a bundle or certificate file"),
                                this=describe("enrolment_request"))
        raise EnvelopeError(N_("not an xinfang bundle or certificate file (wrong magic bytes "
                               "at the start); check which file was given"))
    length = handle.read(4)
    if len(length) < 4:
        raise EnvelopeError(N_("the file is cut short: it ends at byte {size}, inside the "
                               "header length; copy the file again"), size=size)
    (header_len,) = struct.unpack(">I", length)
    if header_len > MAX_HEADER:
        raise EnvelopeError(N_("the header length {size} is over the limit of {limit} bytes"),
                            size=header_len, limit=MAX_HEADER)
    header_bytes = handle.read(header_len)
    if len(header_bytes) < header_len:
        raise EnvelopeError(N_("the file is cut short: it ends at byte {size}, inside the "
                               "header; copy the file again"), size=size)
    try:
        header = codec.decode(header_bytes)
    except EncodingError as exc:
        raise EnvelopeError(N_("damaged header: {reason}"), reason=exc.message) from None
    if start == MAGIC_1:
        if not isinstance(header, dict) or header.get("kind") not in KINDS:
            raise EnvelopeError(N_("damaged header: fields are missing"))
        return 1, header, header_bytes
    check_header(header)
    return VERSION, header, header_bytes


def check_header(header: Any) -> None:
    """Every field present, of its type, and no other: a malformed one is named."""
    required = {"v", "kind", *HEX_FIELDS}
    if not isinstance(header, dict) or not required <= set(header):
        raise EnvelopeError(N_("damaged header: fields are missing"))
    for name in sorted(set(header) - required - {"sent"}):
        raise EnvelopeError(N_("damaged header: unknown field {field}"), field=name)
    if type(header["v"]) is not int or header["v"] != VERSION:
        raise EnvelopeError(N_("damaged header: the format version is {version}, not {wanted}"),
                            version=repr(header["v"]), wanted=VERSION)
    if header["kind"] not in KINDS:
        raise EnvelopeError(N_("damaged header: the kind {kind} is none of {kinds}"),
                            kind=repr(header["kind"]), kinds=", ".join(KINDS))
    for name, length in HEX_FIELDS.items():
        value = header[name]
        if not (isinstance(value, str) and len(value) == length
                and all(c in "0123456789abcdef" for c in value)):
            raise EnvelopeError(N_("damaged header: field {field} is not {length} hex digits"),
                                field=name, length=length)
    if "sent" in header and not (type(header["sent"]) is int and header["sent"] >= 0):
        raise EnvelopeError(N_("damaged header: field {field} is not a whole number"),
                            field="sent")
    try:
        keys.check_signing_key(header["from"])
        keys.check_encryption_key(header["ephemeral"])
    except InvalidInput as exc:
        raise EnvelopeError(N_("damaged header: {reason}"), reason=exc.message) from None
