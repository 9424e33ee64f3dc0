"""File bundles: one sealed file per hop, for a USB stick.

A bundle holds the pages the receiver lacks (by the frontier it last
acknowledged), the sender's own frontier (which acknowledges what arrived
from the receiver), the refusals the sender has to report, and the sender's
certificate chain. Everything is checked before the first page is applied;
pages are then applied one transaction each, so an import cut off half way
resumes when the same file is imported again, and a fully imported bundle
is refused as a replay.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from xinfang.core.certs import chain_from_wire, chain_to_wire
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_

from . import envelope, peers, receive, send, wire
from .trust import Authority, TrustError, admit, chain_of, own_certificate, validate_chain

KIND = "bundle"


@attrs.frozen
class ExportSummary:
    path: str
    peer: str
    events: int
    pages: int
    bytes: int


@attrs.frozen
class ImportSummary:
    sender: str
    pages: int
    applied: int
    duplicates: int
    refused: tuple[receive.Refusal, ...]
    refused_by_sender: int


def _check_out(path: Path) -> None:
    """Refuse, before any work, a bundle path that cannot be written as a new file."""
    if path.is_dir():
        raise InvalidInput(N_("cannot write the bundle: {path} is a directory; give another "
                              "--out file name, for example {example}"),
                           path=str(path), example=str(path / "out.xfb"))
    if not path.parent.is_dir():
        raise InvalidInput(N_("cannot write the bundle {path}: the directory {directory} does "
                              "not exist; create it first, or give another --out file name"),
                           path=str(path), directory=str(path.parent))


def export_bundle(node, peer_name: str, path: Path, progress=None) -> ExportSummary:
    """``progress(done, total)`` hears of each page, in events."""
    path = Path(path)
    _check_out(path)
    peer = peers.resolve(node, peer_name)
    acked = peers.ack(node, peer.subject)
    total = send.count_missing(node, peer.area, acked) if progress else 0
    built = []
    for page in send.pages_for(node, peer.area, acked, release=send.outgoing_rule(node, peer)):
        built.append(page)
        if progress:
            progress(sum(len(p.events) for p in built), total)
    reports = peers.refusals_to_report(node, peer.subject)
    payload = {
        "pages": [p.to_wire() for p in built],
        "frontier": wire.frontier_to_wire(wire.frontier(node.db)),
        "refused": reports,
        "chain": chain_to_wire(chain_of(node.db, node.info.author)),
    }
    data = envelope.seal(node.keys, peer.subject, peer.encryption, KIND, payload)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(N_("cannot write the bundle {path}: {reason}; check that the place "
                              "is writable and has space enough, or give another --out file "
                              "name"), path=str(path), reason=exc.strerror or str(exc)) from None
    count = sum(len(p.events) for p in built)
    with node.db.atomic():
        peers.record_sent(node, peer.subject, count)
        peers.mark_reported(node, peer.subject, [r[0] for r in reports])
    return ExportSummary(str(path), peer.name, count, len(built), len(data))


def import_bundle(node, path: Path, progress=None) -> ImportSummary:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise envelope.EnvelopeError(N_("cannot read the bundle {path}: {reason}; check the "
                                        "file name"), path=str(path),
                                     reason=exc.strerror) from None
    opened = envelope.open_(node.keys, data, KIND)
    sender = opened.header["from"]
    seen = node.db.execute("select at from seen_envelopes where id = ?",
                           [opened.header["id"]]).fetchone()
    if seen:
        raise envelope.AlreadyImported(N_("the bundle {path} was already imported on {at}; "
                                          "importing it again changes nothing"),
                                       seen[0], path=str(path))
    payload = opened.payload
    if not isinstance(payload, dict):
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed (not a map)"))
    try:
        chain = chain_from_wire(payload["chain"])
    except KeyError:
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed (it has no "
                                        "certificate chain)")) from None
    except InvalidInput as exc:
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed: {reason}"),
                                     reason=exc.message) from None
    try:
        parsed = [wire.Page.from_wire(p) for p in payload["pages"]]
        sender_frontier = wire.frontier_from_wire(payload["frontier"])
        refused_reports = [[str(a), str(b)] for a, b in payload["refused"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed ({reason})"),
                                     reason=str(exc)) from None
    validate_chain(chain)
    if not chain or chain[0].subject != sender:
        raise TrustError(N_("the bundle's certificate chain is not the sender's"))
    with node.db.atomic():
        admit(node.db, chain)
    sender_cert = Authority(node.db).scope(sender)
    mine = own_certificate(node)
    if sender_cert is None or sender not in (mine.issuer,) and sender_cert.issuer != mine.subject:
        raise TrustError(N_("the bundle comes from a node that is neither this node's parent "
                            "nor one of its children, or whose chain does not lead to the "
                            "trusted root"))
    applied = duplicates = 0
    refused: list[receive.Refusal] = []
    total, done = sum(len(p.events) for p in parsed), 0
    for page in parsed:
        result = receive.apply_page(node, page, peer=sender)
        applied += result.applied
        duplicates += result.duplicates
        refused.extend(result.refused)
        done += len(page.events)
        if progress:
            progress(done, total)
    with node.db.atomic():
        peers.record_ack(node, sender, sender_frontier, "bundle")
        peers.record_refusals(node, sender, refused_reports)
        node.db.execute("insert into seen_envelopes (id, sender, at) values (?,?,?)",
                        [opened.header["id"], sender, peers.now()])
    return ImportSummary(sender_cert.name, len(parsed), applied, duplicates, tuple(refused),
                         len(refused_reports))
