"""Certificates: a node's keys bound to an area prefix and a level.

A certificate is a signed document of kind "certificate" (see ``signed``):
canonical bytes signed by its issuer (the parent node); a root signs its own.
It travels, and is kept in the node's meta table, in the one wire form of a
signed document, ``[base64 bytes, base64 signature]``; a chain is a list of
those. Its scope is the area prefix: a parent may only certify a prefix
inside its own.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from . import areas, keys, signed, store
from .errors import InvalidInput, XinfangError
from .i18n import N_, Message

KIND = "certificate"
CERT_DOMAIN = signed.KINDS[KIND].domain
MAX_CHAIN = 8
FIELDS = ("subject", "encryption", "area", "level", "name", "issuer")


class TrustError(XinfangError):
    """A certificate, chain or enrolment that cannot be trusted."""


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

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    def signature_valid(self) -> bool:
        return signed.signature_valid(KIND, self.issuer, self.raw, self.signature)

    @classmethod
    def issue(cls, issuer: keys.NodeKeys, *, subject: str, encryption: str, area: str,
              level: str, name: str) -> "Certificate":
        content = {"v": 1, "subject": subject, "encryption": encryption, "area": area,
                   "level": level, "name": name, "issuer": issuer.author}
        return cls.from_document(signed.sign(issuer, KIND, content))

    @classmethod
    def parse(cls, raw: bytes, signature: bytes) -> "Certificate":
        return cls.from_document(signed.parse(KIND, raw, signature))

    @classmethod
    def from_document(cls, document: signed.Signed) -> "Certificate":
        values, problem = signed.string_fields(document, FIELDS)
        if problem:
            raise InvalidInput(N_("the certificate {problem}"), problem=problem)
        return cls(document.raw, document.signature, *values)

    def to_wire(self) -> list[str]:
        """The one wire form of a signed document (see ``signed``)."""
        return signed.to_wire(self.raw, self.signature)

    @classmethod
    def from_wire(cls, data: Any) -> "Certificate":
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


def validate_chain(chain: list[Certificate]) -> None:
    """Each certificate signed by the next, inside its scope; the last self-signed."""
    if not chain or len(chain) > MAX_CHAIN:
        raise TrustError(N_("a chain has 1 to {limit} certificates, not {count}"),
                         limit=MAX_CHAIN, count=len(chain))
    for cert, issuer in zip(chain, chain[1:] + [chain[-1]]):
        keys.check_signing_key(cert.subject)
        keys.check_encryption_key(cert.encryption)
        if cert.issuer != issuer.subject:
            raise TrustError(N_("certificate of {name} is issued by {issuer}, not by the next "
                                "in the chain"), name=cert.name,
                             issuer=keys.fingerprint(cert.issuer))
        if not cert.signature_valid():
            raise TrustError(N_("certificate of {name} has a signature that does not verify"),
                             name=cert.name)
        if cert is not issuer and not (cert.area.startswith(issuer.area)
                                       and len(cert.area) > len(issuer.area)):
            raise TrustError(N_("certificate of {name} claims area {area}, wider than or equal "
                                "to its issuer {issuer}'s scope {scope}"), name=cert.name,
                             area=cert.area, issuer=issuer.name, scope=issuer.area)
        areas.check_code(cert.area, areas.level(cert.level))
    if not chain[-1].self_signed:
        raise TrustError(N_("the chain does not end in a self-signed root certificate"))


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


@attrs.define
class Authority:
    """Who may write about what, as this node's trust data says; cached per use."""

    db: Any
    _scopes: dict[str, Certificate | None] = attrs.Factory(dict)

    @property
    def root(self) -> str | None:
        return store.get_meta(self.db, "root_author")

    def scope(self, author: str) -> Certificate | None:
        """The author's certificate if its chain leads to the pinned root, else None."""
        if author not in self._scopes:
            chain = chain_of(self.db, author)
            try:
                validate_chain(chain)
                ok = chain[-1].subject == self.root
            except (TrustError, InvalidInput):
                ok = False
            self._scopes[author] = chain[0] if ok else None
        return self._scopes[author]

    def is_ancestor(self, ancestor: str, author: str) -> bool:
        return any(c.issuer == ancestor for c in chain_of(self.db, author))

    def forget(self) -> None:
        self._scopes.clear()
