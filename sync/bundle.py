"""File bundles: one sealed file per hop, for a USB stick.

A bundle is an envelope (``envelope``) whose credentials are the sender's
certificate chain, whose first item is the head (the sender's frontier,
which acknowledges what arrived from the receiver, the refusals the sender
has to report, and how many events follow) and whose later items are the
pages the receiver lacks (by the frontier it last acknowledged), one page
an item.

Both ends stream: export writes each page as it is read from the log, and
import holds one page at a time, so neither needs more memory for a larger
bundle. Import checks the whole file's signature, then the sender
(certified under the pinned root, a parent or a child) before it inflates
a byte; pages are then applied one transaction each, so an import cut off
half way resumes when the same file is imported again, and a fully
imported bundle is refused as a replay. A file cut short or changed before
the import applies nothing (its signature fails); one that fails or
changes during it (a USB stick pulled out) stops between two pages, like a
page that does not parse: the pages before stay applied, no page is
applied in part, and the bundle is not marked imported.

What an import keeps besides the page in hand is bounded too: the summary
lists the first ``LISTED`` refusals (the quarantine keeps them all), and
the head of an exported bundle reports at most ``MAX_REPORTS`` refusals
(the rest go in the next bundle).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import attrs

from xinfang.core import keys
from xinfang.core.certs import Certificate, chain_from_wire, chain_to_wire
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, Message

from . import envelope, peers, receive, send, wire
from .trust import Authority, TrustError, admit, chain_of, own_certificate, validate_chain

KIND = "bundle"
#: the head's fields: ``pages`` (pages carried in the head itself, as a bundle made in
#: one piece has them), ``frontier``, ``refused``, and ``events``, the number of events
#: in all the pages (only for progress: the receiver counts what arrives)
HEAD_FIELDS = ("pages", "frontier", "refused", "events")
HEX = frozenset("0123456789abcdef")
#: refusals an import summary lists: every one is in the quarantine (``xinfang quarantine
#: list``), so a bundle of refused events, however large, costs the memory of this many
LISTED = 1000
#: refusals one bundle's head reports back to the sender; the head is one section read
#: whole, and 10,000 reasons are about 3 MB of it. The rest go in the next bundle.
MAX_REPORTS = 10_000


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
    #: the first ``LISTED`` refusals, of ``refused_count``
    refused: tuple[receive.Refusal, ...]
    refused_count: int
    refused_by_sender: int


# -- export ----------------------------------------------------------------------


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


def revocation(db, subject: str) -> tuple[int, int, str] | None:
    """(epoch, seq, event id) of the ``trust.revoke`` folded for ``subject``, if any."""
    row = db.execute("select epoch, seq, event_id from revocations where subject = ? and "
                     "kind = 'revoke'", [subject]).fetchone()
    return tuple(row) if row else None


def _refuse_revoked(node, peer: Certificate) -> None:
    """No bundle for a node whose key is revoked: whoever holds the key now would read it."""
    revoked = revocation(node.db, peer.subject)
    if revoked:
        raise TrustError(N_("{name} ({fingerprint}) had its key revoked (trust.revoke, event "
                            "{event}…): nothing it signs after epoch {epoch} seq {seq} is "
                            "accepted, and bundles are no longer exported to it, since whoever "
                            "holds that key could read them; once the node has a new key "
                            "(`xinfang enroll rotate` there, certified by its parent), export to "
                            "the new key's fingerprint"),
                         name=peer.name, fingerprint=keys.fingerprint(peer.subject),
                         epoch=revoked[0], seq=revoked[1], event=revoked[2][:16])


def export_bundle(node, peer_name: str, path: Path, progress=None) -> ExportSummary:
    """``progress(done, total)`` hears of each page, in events."""
    path = Path(path)
    _check_out(path)
    peer = peers.resolve(node, peer_name)
    _refuse_revoked(node, peer)
    acked = peers.ack(node, peer.subject)
    total = send.count_missing(node, peer.area, acked, peer=peer)
    reports = peers.refusals_to_report(node, peer.subject)[:MAX_REPORTS]
    head = {"pages": [], "frontier": wire.frontier_to_wire(wire.frontier(node.db)),
            "refused": reports, "events": total}
    credentials = {"chain": chain_to_wire(chain_of(node.db, node.info.author))}
    tmp = path.with_name(path.name + ".part")
    count = pages = 0
    try:
        with open(tmp, "wb") as handle:
            sealer = envelope.Sealer(handle, node.keys, peer.subject, peer.encryption, KIND,
                                     credentials)
            sealer.add(head)
            for page in send.pages_for(node, peer.area, acked,
                                       release=send.outgoing_rule(node, peer)):
                sealer.add(page.to_wire())
                count, pages = count + len(page.events), pages + 1
                if progress:
                    progress(count, max(total, count))
            size = sealer.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(N_("cannot write the bundle {path}: {reason}; check that the place "
                              "is writable and has space enough, or give another --out file "
                              "name"), path=str(path), reason=exc.strerror or str(exc)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with node.db.atomic():
        peers.record_sent(node, peer.subject, count)
        peers.mark_reported(node, peer.subject, [r[0] for r in reports])
    return ExportSummary(str(path), peer.name, count, pages, size)


# -- import ----------------------------------------------------------------------


def import_bundle(node, path: Path, progress=None) -> ImportSummary:
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise envelope.EnvelopeError(N_("cannot read the bundle {path}: {reason}; check the "
                                        "file name"), path=str(path),
                                     reason=exc.strerror) from None
    with handle:
        reader = envelope.Reader(handle, node.keys, KIND)
        header = reader.header
        seen = node.db.execute("select at from seen_envelopes where id = ?",
                               [header["id"]]).fetchone()
        if seen:
            raise envelope.AlreadyImported(N_("the bundle {path} was already imported on {at}; "
                                              "importing it again changes nothing"),
                                           seen[0], path=str(path))
        sender = authenticate(node, header["from"], reader.credentials())
        items = reader.items(_parse)
        head = next(items)
        inline = [wire.Page.from_wire(p) for p in head.pop("pages")]
        total = head.get("events", sum(len(p.events) for p in inline))
        summary = _apply(node, sender, _pages(inline, items), total, progress)
    with node.db.atomic():
        peers.record_ack(node, sender.subject, wire.frontier_from_wire(head["frontier"]),
                         "bundle")
        peers.record_refusals(node, sender.subject, head["refused"])
        node.db.execute("insert into seen_envelopes (id, sender, at) values (?,?,?)",
                        [header["id"], sender.subject, peers.now()])
    node.pm.hook.xinfang_received(node=node, applied=summary.applied)
    return attrs.evolve(summary, refused_by_sender=len(head["refused"]))


def authenticate(node, sender: str, credentials: dict[str, Any]) -> Certificate:
    """The sender's certificate, once its chain and its place in the tree are checked.

    Runs before a byte of the payload is inflated or parsed: a file from a key
    nobody here certified costs no more than hashing it. A revoked key's bundle
    is still taken, event by event: what it signed after its point is refused
    and quarantined as evidence, as on any other path.
    """
    if "chain" not in credentials:
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed (it has no "
                                        "certificate chain)"))
    try:
        chain = chain_from_wire(credentials["chain"])
    except InvalidInput as exc:
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed: {reason}"),
                                     reason=exc.message) from None
    validate_chain(chain, node.db)
    if chain[0].subject != sender:
        raise TrustError(N_("the bundle's certificate chain is not the sender's"))
    with node.db.atomic():
        admit(node.db, chain)
    cert = Authority(node.db).scope(sender)
    mine = own_certificate(node)
    if cert is None or sender != mine.issuer and cert.issuer != mine.subject:
        raise TrustError(N_("the bundle comes from a node that is neither this node's parent "
                            "nor one of its children, or whose chain does not lead to the "
                            "trusted root"))
    return cert


def _parse(number: int, item: Any) -> Any:
    """Item 1 is the head, every later one a page."""
    return parse_head(item) if number == 1 else wire.Page.from_wire(item)


def _pages(inline: list[wire.Page], pages: Iterator[wire.Page]) -> Iterator[wire.Page]:
    """The head's own pages, then the later items', each let go once applied."""
    while inline:
        yield inline.pop(0)
    yield from pages


def _apply(node, sender: Certificate, pages: Iterable[wire.Page], total: int,
           progress) -> ImportSummary:
    applied = duplicates = done = count = refusals = 0
    refused: list[receive.Refusal] = []
    for page in pages:
        result = receive.apply_page(node, page, peer=sender.subject)
        applied += result.applied
        duplicates += result.duplicates
        refusals += len(result.refused)
        refused.extend(result.refused[:LISTED - len(refused)])
        done, count = done + len(page.events), count + 1
        del page, result  # before the next is read: one page in memory at a time
        if progress:
            progress(done, max(total, done))
    return ImportSummary(sender.name, count, applied, duplicates, tuple(refused), refusals, 0)


# -- the head --------------------------------------------------------------------


def parse_head(item: Any) -> dict[str, Any]:
    """The head, every field type-checked: a malformed one is named, nothing applied."""
    if not isinstance(item, dict):
        raise envelope.EnvelopeError(N_("the bundle's contents are malformed (not a map)"))
    for name in sorted(set(item) - set(HEAD_FIELDS)):
        raise _malformed(N_("it has an unknown field {field}"), field=name)
    for name in HEAD_FIELDS[:3]:
        if name not in item:
            raise _malformed(N_("the field {field} is missing"), field=name)
        if not isinstance(item[name], list):
            raise _malformed(N_("the field {field} is not a list"), field=name)
    for number, entry in enumerate(item["frontier"], 1):
        if not (isinstance(entry, list) and len(entry) == 3 and _hex64(entry[0])
                and all(type(v) is int and v >= 0 for v in entry[1:])):
            raise _malformed(N_("frontier entry {number} is not [author key, epoch, sequence "
                                "number]"), number=number)
    for number, entry in enumerate(item["refused"], 1):
        if not (isinstance(entry, list) and len(entry) == 2 and _hex64(entry[0])
                and isinstance(entry[1], str)):
            raise _malformed(N_("refusal {number} is not [event id, reason]"), number=number)
    if "events" in item and not (type(item["events"]) is int and item["events"] >= 0):
        raise _malformed(N_("the field {field} is not a whole number"), field="events")
    return item


def _malformed(problem: str, **values) -> envelope.EnvelopeError:
    return envelope.EnvelopeError(N_("the bundle's contents are malformed: {reason}"),
                                  reason=Message(problem, **values))


def _hex64(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX
