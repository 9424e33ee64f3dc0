"""The trust chain: enrolment, certificates, the pinned root, authority.

A new node sends its parent an enrolment request (its keys, area and level,
signed with its own key to prove it holds it). The parent checks that the
requested scope lies strictly inside its own and signs a certificate; the
node imports it with the parent's chain up to the root, whose fingerprint it
pins. From then on an author may write about an area only if its chain of
certificates, each inside its issuer's scope, leads to the pinned root.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from xinfang.core import areas, keys, signed, store
from xinfang.core.authority import Authority
from xinfang.core.certs import (CERTIFY, MAX_CHAIN, Certificate, TrustError,
                                certificate, chain_from_wire, chain_of, chain_to_wire,
                                check_root, field_problem, validate_chain, void_reason)
from xinfang.core.errors import InvalidInput
from xinfang.core.scope import Filter, grant_problem
from xinfang.core.i18n import N_

KIND = "enrolment"
REQUEST_DOMAIN = signed.KINDS[KIND].domain
#: the key of the enrolment request file's one entry, the request's wire form
REQUEST_KEY = "enrolment_request"
FIELDS = ("subject", "encryption", "area", "level", "name")
#: the reason a ``trust.retire`` of ``rotate_keys`` gives: event data, so English;
#: ``trust_list`` shows it translated
ROTATION_REASON = N_("key rotation")


@attrs.frozen
class EnrolmentRequest:
    raw: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    subject: str
    encryption: str
    area: str
    level: str
    name: str

    @classmethod
    def from_document(cls, document: signed.Signed) -> "EnrolmentRequest":
        problem = field_problem(document.content, FIELDS, exact=False)
        if problem:
            raise TrustError(N_("not an enrolment request file (the request {problem})"),
                             problem=problem)
        return cls(document.raw, document.signature,
                   *(document.content[name] for name in FIELDS))

    def signature_valid(self) -> bool:
        return signed.signature_valid(KIND, self.subject, self.raw, self.signature)

    def to_wire(self) -> list[str]:
        """The one wire form of a signed document (see ``signed``)."""
        return signed.to_wire(self.raw, self.signature)

    def to_json(self) -> str:
        """The request file: a JSON map whose one entry is the request's wire form."""
        return json.dumps({REQUEST_KEY: self.to_wire()}, indent=1)

    @classmethod
    def from_file(cls, path) -> "EnrolmentRequest":
        """Read a request file; a certificate, a bundle or anything else is named as such."""
        from . import envelope

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise TrustError(N_("cannot read the enrolment request file {path}: {reason}"),
                             path=str(path), reason=exc.strerror) from None
        kind = envelope.what_file(data)
        if kind not in (None, "enrolment_request"):
            raise TrustError(N_("{path} is {this}, not an enrolment request file (the one "
                                "`xinfang enroll request` writes)"),
                             path=str(path), this=envelope.describe(kind))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TrustError(N_("{path} is not an enrolment request file (the JSON file "
                                "`xinfang enroll request` writes); check which file was given"),
                             path=str(path)) from None
        return cls.from_json(text)

    @classmethod
    def from_json(cls, text: str) -> "EnrolmentRequest":
        try:
            data = json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:  # or nested too deep
            raise TrustError(N_("not an enrolment request file (not JSON: {reason})"),
                             reason=str(exc)) from None
        if not isinstance(data, dict) or REQUEST_KEY not in data:
            raise TrustError(N_("not an enrolment request file (it has no {key} entry)"),
                             key=REQUEST_KEY)
        if "signature" in data:
            raise TrustError(N_("this enrolment request file was written by an older release; "
                                "run `xinfang enroll request` again on the new node"))
        try:
            request = cls.from_document(signed.from_wire(KIND, data[REQUEST_KEY]))
        except signed.SignedError as exc:
            raise TrustError(N_("not an enrolment request file ({reason})"),
                             reason=exc.message) from None
        if not request.signature_valid():
            raise TrustError(N_("the enrolment request's signature does not verify: it was "
                                "altered, or not made by the key it names"))
        return request


def make_request(node) -> EnrolmentRequest:
    info = node.info
    content = {"v": 1, "subject": info.author, "encryption": info.encryption,
               "area": info.area, "level": info.level, "name": info.name}
    return EnrolmentRequest.from_document(signed.sign(node.keys, KIND, content))


def own_certificate(node) -> Certificate:
    cert = node.certificate
    if cert is None:
        raise TrustError(N_("this node has no certificate yet: run `xinfang enroll request`, "
                            "have the parent run `xinfang enroll sign`, then `xinfang enroll "
                            "import` the file it gives back"))
    return cert


def sign_request(parent, request: EnrolmentRequest, only: Filter | None = None) -> dict[str, Any]:
    """The parent's side: certify a child whose scope lies strictly inside its own,
    or, with a department filter ``only`` (``Filter.make``), inside or equal to it.

    Under a filtered parent the child must get a filter no wider than the
    parent's (``scope.grant_problem``).

    The parent logs the certificate's digest as a ``trust.certify`` event in the
    same transaction: should its key be revoked later, that event, lying before
    the revocation point, is what keeps this certificate valid (``certs``). The
    root logs none: it is the pinned anchor, which no revocation can cut
    (``certs.void_reason``).
    """
    parent_cert = own_certificate(parent)
    if parent.db.execute("select 1 from revocations where subject = ?",
                         [request.subject]).fetchone():
        raise TrustError(N_("the key of {name} ({fingerprint}) was revoked or retired; it "
                            "cannot be certified again: the node must run `xinfang enroll "
                            "rotate` and send the new request"),
                         name=request.name, fingerprint=keys.fingerprint(request.subject))
    keys.check_signing_key(request.subject)
    keys.check_encryption_key(request.encryption)
    level = areas.level(request.level)
    areas.check_code(request.area, level)
    if request.area == parent_cert.area and only is None:
        raise TrustError(N_("{name} asks for this node's own area {area}: only a department "
                            "may share it, certified with a filter (`xinfang enroll sign "
                            "--only-entities …`)"), name=request.name, area=request.area)
    if not (request.area.startswith(parent_cert.area) and (
            len(request.area) > len(parent_cert.area) or only is not None)):
        raise TrustError(N_("{name} asks for area {area}, which is not inside this node's "
                            "scope {scope}: a parent can only certify a narrower scope than "
                            "its own"), name=request.name, area=request.area,
                         scope=parent_cert.area)
    if only is not None and not isinstance(only, Filter):
        raise TrustError(N_("a department filter is made with Filter.make, not given as "
                            "{type}"), type=type(only).__name__)
    cert = Certificate.issue(parent.keys, subject=request.subject, encryption=request.encryption,
                             area=request.area, level=level.name, name=request.name, only=only)
    problem = grant_problem(cert, parent_cert)
    if problem:
        raise TrustError(problem)
    from xinfang.core.node import Draft

    with parent.db.atomic():
        remember(parent.db, cert)
        if not parent_cert.self_signed:
            parent.append(Draft(CERTIFY, "trust", cert.subject, cert.area,
                                {"certificate": cert.digest}))
    # no match key goes with it: each node tags ID numbers under its own (plugins/cases/tags.py)
    return {"certificate": cert.to_wire(),
            "chain": chain_to_wire(chain_of(parent.db, parent_cert.subject))}


def parse_filter(entities: str | None, matches=()) -> Filter | None:
    """A department filter as typed: ``dispute,project,case`` and ``case.category=a,b``
    items (``enroll sign --only-entities … --only …``); None for neither."""
    if not entities:
        if matches:
            raise InvalidInput(N_("--only needs --only-entities: name the entity types the "
                                  "department may get first"))
        return None
    match: dict[str, dict[str, list[str]]] = {}
    for item in matches:
        target, _, values = str(item).partition("=")
        entity, _, name = target.partition(".")
        if not (entity and name and values) or name in match.get(entity, {}):
            raise InvalidInput(N_("“{item}” is not ENTITY.FIELD=VALUE,VALUE (each field once), "
                                  "e.g. case.category=resettlement"), item=str(item))
        match.setdefault(entity.strip(), {})[name.strip()] = [
            v.strip() for v in values.split(",") if v.strip()]
    return Filter.make([e.strip() for e in entities.split(",") if e.strip()], match)


def import_certificate(node, data: dict[str, Any],
                       root_fingerprint: str | None = None) -> Certificate:
    """The child's side: check the certificate and chain, pin the root, store them.

    The root must be the one pinned already, and match ``root_fingerprint`` and
    any fingerprint given at ``init`` (``certs.check_root``); otherwise nothing is
    written.
    """
    if not isinstance(data, dict) or not {"certificate", "chain"} <= data.keys():
        raise TrustError(N_("not a certificate file from `xinfang enroll sign` (it has no "
                            "certificate and chain)"))
    try:
        cert = Certificate.from_wire(data["certificate"])
        chain = chain_from_wire(data["chain"])
    except InvalidInput as exc:
        raise TrustError(N_("not a certificate file from `xinfang enroll sign` ({reason})"),
                         reason=exc.message) from None
    info = node.info
    if (cert.subject, cert.encryption, cert.area, cert.level) != (
            info.author, info.encryption, info.area, info.level):
        raise TrustError(N_("this certificate is for another node or another scope "
                            "({name}, {area}); it does not match this node's keys"),
                         name=cert.name, area=cert.area)
    validate_chain([cert, *chain], node.db)
    root = chain[-1] if chain else cert
    check_root(node.db, root.subject, root_fingerprint)
    with node.db.atomic():
        for item in (cert, *chain):
            remember(node.db, item)
        store.set_meta(node.db, "root_author", root.subject)
        store.set_meta(node.db, "certificate", cert.to_json())
        store.set_meta(node.db, "parent", cert.issuer)
        # a "match_key" an older parent sends is ignored: the node keeps its own, so no
        # node but the root can test an ID number against the jurisdiction's tags
    return root


remember = store.remember_certificate


def admit(db, certs) -> list[Certificate]:
    """Keep the certificates whose chain leads to the pinned root; return them.

    A certificate that does not lead there is not stored, so nobody can
    plant one for a real node's key and shadow its genuine certificate. One
    that a revocation voids is kept like any other (``Authority.scope``
    refuses its holder, and says why). A stored one stays if it is valid, or
    if a revocation voided it and this log holds events of its key: the fold
    excluded those (``revocation._void_below``) and they keep the meaning
    they were taken in with; that node moves to a new key. Any other stored
    one is replaced by the one offered.
    """
    offered = {c.subject: c for c in certs}
    root = store.get_meta(db, "root_author")
    admitted = []
    for cert in offered.values():
        chain, current = [], cert
        while current is not None and len(chain) < MAX_CHAIN:
            chain.append(current)
            if current.self_signed:
                break
            current = offered.get(current.issuer) or certificate(db, current.issuer)
        try:
            validate_chain(chain)
        except (TrustError, InvalidInput):
            continue
        if chain[-1].subject != root:
            continue
        stored = certificate(db, cert.subject)
        if stored is not None and stored.raw == cert.raw and stored.signature == cert.signature:
            admitted.append(cert)  # held already: writing it again would change nothing
            continue
        if stored is not None and stored.raw != cert.raw and _keeps(db, cert.subject):
            continue  # a valid certificate is already held for this key
        db.execute("delete from certs where subject = ?", [cert.subject])
        remember(db, cert)
        admitted.append(cert)
    return admitted


def _keeps(db, subject: str) -> bool:
    """Whether the stored certificate of ``subject`` stays whatever else is offered."""
    authority = Authority(db)
    if authority.scope(subject) is not None:
        return True
    return authority.rooted(subject) and db.execute(
        "select 1 from events where author = ? limit 1", [subject]).fetchone() is not None


def rotate_keys(node, passphrase: str | None = None) -> EnrolmentRequest:
    """Retire this node's keys for new ones; returns the new key's enrolment request.

    The old key signs a ``trust.retire`` event naming its successor, so every
    node refuses anything the old key might sign later (a stolen laptop). The
    new keys are written beside the old ones first and swapped in after the
    database has switched, so a crash in between leaves both on disk and
    ``Node.keys`` finishes the swap. The vault's data key gets a wrap for the
    new encryption key in the same transaction as the switch, so identity
    stays readable whichever way a rotation is cut off; the old key's wrap is
    dropped once the new keys are in place.
    """
    import shutil

    from xinfang.core.keys import NodeKeys
    from xinfang.core.node import KEYS_DIR, Draft
    from xinfang.core.vault import drop_other_wraps

    old = node.keys
    vault = node.vault  # before anything is written: it needs the keys (and passphrase)
    new = NodeKeys.generate()
    staging = node.home / (KEYS_DIR + ".next")
    if staging.exists():
        shutil.rmtree(staging)
    new.save(staging, passphrase if passphrase is not None else node.passphrase)
    revoked = node.db.execute("select 1 from revocations where subject = ?",
                              [old.author]).fetchone() or void_reason(
        node.db, chain_of(node.db, old.author))
    with node.db.atomic():
        vault.wrap_for(new.encryption_public)
        if not revoked:  # a revoked key, or a void certificate, is refused already
            node.append(Draft("trust.retire", "trust", old.author, node.info.area,
                              {"successor": new.author, "reason": ROTATION_REASON}))
        store.set_meta(node.db, "author", new.author)
        store.set_meta(node.db, "encryption", new.encryption_public)
        store.set_meta(node.db, "epoch", "0")
        store.set_meta(node.db, "previous_author", old.author)
    finish_rotation(node.home)
    node._keys = new
    node._vault = None  # opened again with the new key, when next needed
    drop_other_wraps(node.db, new.encryption_public)
    return make_request(node)


def finish_rotation(home) -> None:
    """Swap the staged keys in (``keys`` to ``keys.retired-<time>``, ``keys.next`` to
    ``keys``); cut off between the two renames, ``Node.keys`` finishes it."""
    from xinfang.core.node import KEYS_DIR

    staging, current = home / (KEYS_DIR + ".next"), home / KEYS_DIR
    if staging.exists():
        if current.exists():
            retired = home / f"{KEYS_DIR}.retired-{int(__import__('time').time())}"
            while retired.exists():
                retired = retired.with_name(retired.name + "-1")
            current.rename(retired)
        staging.rename(current)
