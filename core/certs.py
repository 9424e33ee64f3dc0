"""Certificates: a node's keys bound to an area prefix and a level.

A certificate is a signed document of kind "certificate" (see ``signed``):
canonical bytes signed by its issuer (the parent node); a root signs its own.
It travels, and is kept in the node's meta table, in the one wire form of a
signed document, ``[base64 bytes, base64 signature]``; a chain is a list of
those. Its scope is the area prefix: a parent may only certify a prefix inside its
own, or its own with a department filter (``only``, see ``scope``).

When was it issued? A certificate is a signed document, not an event, so
whoever holds the issuer's key can sign one that looks as old as he likes.
The issuer therefore logs each certificate it signs as a ``trust.certify``
event naming the certificate's digest, in its own hash-chained feed. Once a
revocation (or retirement) names a last good (epoch, seq) of the issuer's
feed, a certificate it issued counts only if this node holds that event at
or before the point, on a feed not frozen there (``issued_in_time``). A
stolen key cannot backdate: at a position a node holds, a second event is a
fork, kept as evidence outside the log, and a fork freezes the feed from
that point, certificates included. The answer is a pure function of the
log, the frozen feeds and the folded revocations, whatever order things
arrived in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from typing import Any

import attrs

from . import areas, codec, keys, signed, store
from .scope import Filter, filter_problem, grant_problem
from .errors import InvalidInput, XinfangError
from .i18n import N_, Message

KIND = "certificate"
CERT_DOMAIN = signed.KINDS[KIND].domain
MAX_CHAIN = 8
FIELDS = ("subject", "encryption", "area", "level", "name", "issuer")
ONLY = "only"  # the optional field: a department's filter
#: the fields that are public keys in hex, and the longest office name accepted
KEY_FIELDS = ("subject", "encryption", "issuer")
MAX_NAME = 200
#: the event type an issuer logs for each certificate it signs
CERTIFY = "trust.certify"
#: the meta key of the root fingerprint typed at ``init`` / ``enroll import``
ROOT_FINGERPRINT = "root_fingerprint"

#: what a name may not hold: control and format characters, line and paragraph
#: separators, which would break a one-line message or reorder what it shows
_CONTROL = ("Cc", "Cf", "Zl", "Zp")
_HEX_KEY = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[A-Z2-7]{20}")


class TrustError(XinfangError):
    """A certificate, chain or enrolment that cannot be trusted."""


def field_problem(content: Any, names: tuple[str, ...], exact: bool = True,
                  optional: tuple[str, ...] = ()) -> Message | None:
    """What is wrong with a certificate's or enrolment request's content, or None.

    Every field is checked for its type and form here, once, when the
    document is read, so no later check meets a number where it expects a
    key, and a malformed document is a named refusal rather than a crash.
    ``exact`` refuses fields this release does not know: a certificate is a
    grant, and a field it cannot read might have narrowed it.
    """
    if not isinstance(content, dict):
        return Message(N_("is not a map of fields"))
    missing = [name for name in ("v", *names) if name not in content]
    if missing:
        return Message(N_("is missing fields {names}"), names=", ".join(missing))
    unknown = sorted(str(name) for name in content if name not in ("v", *names, *optional))
    if unknown and exact:
        return Message(N_("has unknown fields {names}"), names=", ".join(unknown))
    if type(content["v"]) is not int or content["v"] != 1:
        return Message(N_("has version {version}; this release reads version 1"),
                       version=repr(content["v"]))
    wrong = [name for name in names if not isinstance(content[name], str)]
    if wrong:
        return Message(N_("has fields {names} that are not strings"), names=", ".join(wrong))
    bad_keys = [name for name in KEY_FIELDS if name in names
                and not _HEX_KEY.fullmatch(content[name])]
    if bad_keys:
        return Message(N_("has fields {names} that are not 64 lowercase hex digits (a public "
                          "key)"), names=", ".join(bad_keys))
    level = areas.LEVELS.get(content["level"])
    if level is None:
        return Message(N_("names level {level}, which is none of {levels}"),
                       level=repr(content["level"]), levels=", ".join(areas.LEVELS))
    try:
        areas.check_code(content["area"], level)
    except InvalidInput as exc:
        return Message(N_("has a bad area: {error}"), error=exc.message)
    name = content["name"]
    if not name.strip() or len(name) > MAX_NAME or any(
            unicodedata.category(c) in _CONTROL for c in name):
        return Message(N_("has a name that is empty, longer than {limit} characters or holds "
                          "control characters"), limit=MAX_NAME)
    return filter_problem(content[ONLY]) if ONLY in optional and ONLY in content else None


@attrs.frozen
class Certificate:
    raw: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    subject: str
    encryption: str
    area: str
    level: str
    name: str
    issuer: str
    #: a department's filter, or None: the certificate passes all its area's records
    only: Filter | None = None

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    @property
    def digest(self) -> str:
        """What a ``trust.certify`` event names: the SHA-256 of the signed bytes."""
        return hashlib.sha256(self.raw).hexdigest()

    def signature_valid(self) -> bool:
        return signed.signature_valid(KIND, self.issuer, self.raw, self.signature)

    @classmethod
    def issue(cls, issuer: keys.NodeKeys, *, subject: str, encryption: str, area: str,
              level: str, name: str, only: Filter | None = None) -> "Certificate":
        content = {"v": 1, "subject": subject, "encryption": encryption, "area": area,
                   "level": level, "name": name, "issuer": issuer.author}
        if only is not None:  # absent, not null: an unfiltered certificate is unchanged
            content[ONLY] = only.to_content()
        return cls.from_document(signed.sign(issuer, KIND, content))

    @classmethod
    def parse(cls, raw: bytes, signature: bytes) -> "Certificate":
        return _parsed(bytes(raw), bytes(signature))

    @classmethod
    def from_document(cls, document: signed.Signed) -> "Certificate":
        content = document.content
        problem = field_problem(content, FIELDS, optional=(ONLY,))
        if problem:
            raise InvalidInput(N_("the certificate {problem}"), problem=problem)
        only = Filter.from_content(content[ONLY]) if ONLY in content else None
        return cls(document.raw, document.signature, *(content[name] for name in FIELDS),
                   only=only)

    def to_wire(self) -> list[str]:
        """The one wire form of a signed document (see ``signed``)."""
        return signed.to_wire(self.raw, self.signature)

    @classmethod
    def from_wire(cls, data: Any) -> "Certificate":
        if isinstance(data, (list, tuple)) and len(data) == 2 and all(
                type(part) is str for part in data):
            return _read_wire(*data)
        return cls.from_document(signed.from_wire(KIND, data))

    def to_json(self) -> str:
        """The wire form as JSON text, as the node's meta table keeps it."""
        return json.dumps(self.to_wire())

    @classmethod
    def from_json(cls, text: str) -> "Certificate":
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(N_("stored certificate is not JSON ({error})"), error=str(exc)) from None
        return cls.from_wire(data)


@functools.lru_cache(maxsize=8192)
def _parsed(raw: bytes, signature: bytes) -> Certificate:
    """A certificate read from its bytes: a pure function of them, so read once.

    Every request and every page names the same few chains; parsing one is a
    decode and a check of every field. A document that does not parse raises,
    and nothing is kept of it.
    """
    return Certificate.from_document(signed.parse(KIND, raw, signature))


@functools.lru_cache(maxsize=8192)
def _read_wire(raw: str, signature: str) -> Certificate:
    """A certificate from its wire form, read once: every request carries its caller's
    chain, the same few certificates each time."""
    return Certificate.from_document(signed.from_wire(KIND, [raw, signature]))


def chain_from_wire(data: Any) -> list[Certificate]:
    """Read a certificate chain as it travels: a list of certificate wire forms."""
    if not isinstance(data, (list, tuple)) or len(data) > MAX_CHAIN:
        got = (Message(N_("{count} items"), count=len(data)) if isinstance(data, (list, tuple))
               else type(data).__name__)
        raise signed.SignedError(N_("a certificate chain is a list of at most {limit} "
                                    "certificates, each [base64 bytes, base64 signature]; "
                                    "got {got}"), limit=MAX_CHAIN, got=got)
    chain = []
    for number, item in enumerate(data, 1):
        try:
            chain.append(Certificate.from_wire(item))
        except InvalidInput as exc:
            raise signed.SignedError(N_("certificate {number} of the chain: {error}"),
                                     number=number, error=exc.message) from None
    return chain


def chain_to_wire(chain: list[Certificate]) -> list[list[str]]:
    return [cert.to_wire() for cert in chain]


def validate_chain(chain: list[Certificate], db=None) -> None:
    """Each certificate signed by the next, inside its scope; the last self-signed.

    With ``db``, also none issued by a revoked or retired key after its point
    (``void_reason``): pass it wherever this node's trust data is at hand.
    """
    if not isinstance(chain, (list, tuple)) or not chain or len(chain) > MAX_CHAIN:
        raise TrustError(N_("a chain has 1 to {limit} certificates, not {count}"),
                         limit=MAX_CHAIN, count=len(chain) if isinstance(chain, (list, tuple))
                         else type(chain).__name__)
    if not all(isinstance(cert, Certificate) for cert in chain):
        raise TrustError(N_("a chain holds only certificates"))
    _check_links(tuple(chain))
    if db is not None:
        void = void_reason(db, chain)
        if void is not None:
            raise TrustError(void)


@functools.lru_cache(maxsize=8192)
def _check_links(chain: tuple[Certificate, ...]) -> None:
    """The part of ``validate_chain`` that reads nothing but the chain: keys, signatures,
    grants, area codes and the self-signed end.

    A pure function of the certificates' bytes, so a chain found good is not
    checked again (its signatures are most of a request's authority work);
    one found bad raises and is checked again whenever it is offered.
    """
    for cert, issuer in zip(chain, [*chain[1:], chain[-1]]):
        keys.check_signing_key(cert.subject)
        keys.check_encryption_key(cert.encryption)
        if cert.issuer != issuer.subject:
            raise TrustError(N_("certificate of {name} is issued by {issuer}, not by the next "
                                "in the chain"), name=cert.name,
                             issuer=keys.fingerprint(cert.issuer))
        if not cert.signature_valid():
            raise TrustError(N_("certificate of {name} has a signature that does not verify"),
                             name=cert.name)
        if cert is not issuer and grant_problem(cert, issuer):
            raise TrustError(grant_problem(cert, issuer))
        areas.check_code(cert.area, areas.level(cert.level))
    if not chain[-1].self_signed:
        raise TrustError(N_("the chain does not end in a self-signed root certificate"))


# -- revocation points -----------------------------------------------------------


@attrs.frozen
class Point:
    """A folded revocation or retirement: the last good (epoch, seq) of a key's feed."""

    epoch: int
    seq: int
    kind: str

    def holds(self, epoch: int, seq: int) -> bool:
        """Whether (epoch, seq) lies at or before the point (the fold keeps it)."""
        return (epoch, seq) <= (self.epoch, self.seq)


def revocation_of(db, key: str) -> Point | None:
    """The folded revocation of ``key``; None also where the sync layer's table is absent."""
    if not db.execute("select 1 from sqlite_master where type = 'table' and "
                      "name = 'revocations'").fetchone():
        return None
    row = db.execute("select epoch, seq, kind from revocations where subject = ?",
                     [key]).fetchone()
    return Point(*row) if row else None


def issued_in_time(db, cert: Certificate, point: Point) -> bool:
    """Whether this log holds the issuer's ``trust.certify`` of ``cert`` at or before
    ``point``, not past a fork: the one proof that it was signed before the key was
    lost."""
    for raw, epoch, seq in db.execute(
            "select raw, epoch, seq from events e where entity = 'trust' and entity_id = ? "
            "and author = ? and type = ? and area = ? and not exists (select 1 from "
            "frozen_feeds f where f.author = e.author and f.epoch = e.epoch and f.seq <= e.seq)",
            [cert.subject, cert.issuer, CERTIFY, cert.area]).fetchall():
        body = codec.decode(raw)["body"]  # a stored event: a map with a map body
        if point.holds(epoch, seq) and body.get("certificate") == cert.digest:
            return True
    return False


def void_reason(db, chain: list[Certificate]) -> Message | None:
    """Why a chain is void by a revocation, or None: some certificate in it was issued
    by a key revoked or retired before it, as far as this node's log can tell.

    The root's own certificates are not judged: the root is the anchor every node
    pinned, no ancestor can revoke it, and a lost root key is mended only by a
    new root, never by a point in its feed.
    """
    for cert, issuer in zip(chain, chain[1:]):
        if issuer.self_signed:
            break
        point = revocation_of(db, cert.issuer)
        if point is not None and not issued_in_time(db, cert, point):
            return void_message(cert, issuer.name, point)
    return None


def void_message(cert: Certificate, issuer: str, point: Point) -> Message:
    msgid = (N_("the certificate of {name} was issued by {issuer}, whose key was retired "
                "after epoch {epoch} seq {seq}, and that feed does not record issuing it by "
                "then: a retired key's later certificates are void") if point.kind == "retire"
             else N_("the certificate of {name} was issued by {issuer}, whose key was revoked "
                     "after epoch {epoch} seq {seq}, and that feed does not record issuing it "
                     "by then: a revoked key's later certificates are void"))
    return Message(msgid, name=cert.name, issuer=issuer, epoch=point.epoch, seq=point.seq)


# -- the pinned root -------------------------------------------------------------


def parse_fingerprint(text: Any) -> str:
    """A root fingerprint as typed (any case, with or without dashes or spaces),
    in the form ``keys.fingerprint`` prints, or ``InvalidInput``."""
    letters = re.sub(r"[\s-]", "", text).upper() if isinstance(text, str) else ""
    if not _FINGERPRINT.fullmatch(letters):
        raise InvalidInput(N_("“{text}” is not a key fingerprint: five groups of four letters "
                              "and digits, e.g. ABCD-EFGH-IJKL-MNOP-QRST, as `xinfang node show` "
                              "prints it on the root node"), text=str(text))
    return "-".join(letters[i:i + 4] for i in range(0, 20, 4))


def root_pin(text: str | None, root: bool = False) -> str | None:
    """The fingerprint ``init --root-fingerprint`` will pin, checked before the node is
    made, so a typing mistake leaves nothing behind."""
    if text is None:
        return None
    if root:
        raise InvalidInput(N_("a root node is its own trust anchor: --root-fingerprint is for "
                              "the nodes below it"))
    return parse_fingerprint(text)


def pin_root(db, fingerprint: str) -> None:
    """Keep the root fingerprint the first ``enroll import`` must end at."""
    store.set_meta(db, ROOT_FINGERPRINT, parse_fingerprint(fingerprint))


def check_root(db, root: str, given: str | None = None) -> None:
    """Refuse a root other than the one pinned: by key, or by a fingerprint typed now
    (``given``) or at ``init`` (kept in meta), so trust on first use is not the only
    protection."""
    pinned = store.get_meta(db, "root_author")
    if pinned and pinned != root:
        raise TrustError(N_("the chain ends at root {root}, but this node trusts root "
                            "{pinned}"), root=keys.fingerprint(root),
                         pinned=keys.fingerprint(pinned))
    for expected in (given, store.get_meta(db, ROOT_FINGERPRINT)):
        if expected and parse_fingerprint(expected) != keys.fingerprint(root):
            raise TrustError(N_("the certificate chain ends at root fingerprint {root}, not at "
                                "the expected {expected}; nothing was imported: check the "
                                "fingerprint with the root's office by telephone"),
                             root=keys.fingerprint(root), expected=parse_fingerprint(expected))


# -- this node's trust data ------------------------------------------------------


def certificate(db, subject: str) -> Certificate | None:
    row = db.execute("select raw, sig from certs where subject = ?", [subject]).fetchone()
    return Certificate.parse(row[0], row[1]) if row else None


def chain_of(db, subject: str) -> list[Certificate]:
    """``subject``'s certificate and its issuers up to a self-signed root."""
    chain = []
    current = subject
    while len(chain) < MAX_CHAIN:
        cert = certificate(db, current)
        if cert is None:
            break
        chain.append(cert)
        if cert.self_signed:
            break
        current = cert.issuer
    return chain
