"""What a node knows of each peer: its certificate, acknowledgements, refusals.

The acknowledged frontier is what the peer itself last said it holds; a
sender never trusts its own memory of what it sent.
"""

from __future__ import annotations

import datetime as dt
import json

import attrs

from xinfang.core import keys
from xinfang.core.certs import Certificate
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_, Message, _

from . import receive, send, wire
from .trust import Authority, TrustError, certificate, own_certificate


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def resolve(node, name_or_key: str) -> Certificate:
    """A neighbour (parent or child) by name, fingerprint, key or key prefix."""
    mine = own_certificate(node)
    neighbours = [c for c in (certificate(node.db, row[0]) for row in node.db.execute(
        "select subject from certs where (issuer = ? or subject = ?) and subject not in "
        "(select subject from revocations where kind = 'retire')",
        [mine.subject, mine.issuer]))
        if c is not None and c.subject != mine.subject]
    wanted = name_or_key.strip()
    found = [c for c in neighbours if wanted in (c.name, keys.fingerprint(c.subject))
             or (len(wanted) >= 8 and c.subject.startswith(wanted.lower()))]
    if len(found) != 1:
        names = _(", ").join(_("{name} ({fingerprint})").format(
            name=c.name, fingerprint=keys.fingerprint(c.subject)) for c in neighbours)
        raise NotFound(N_("more than one neighbour matches “{wanted}”; this node's parent and "
                          "children: {names}") if found else
                       N_("no neighbour matches “{wanted}”; this node's parent and children: "
                          "{names}"), wanted=name_or_key, names=names or _("none yet"))
    if Authority(node.db).scope(found[0].subject) is None:
        raise TrustError(N_("the certificate chain of {name} does not lead to the trusted root"),
                         name=found[0].name)
    return found[0]


def check_url(url: str) -> str:
    """The parent's address, refused at once unless it is an http(s) URL with a host."""
    from urllib.parse import urlsplit

    fix = Message(N_("write it as --url http://host:port, e.g. http://10.0.0.2:8765"))
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(N_("cannot reach the parent: the address {url} does not begin with "
                              "http:// or https://; {fix}"), url=url, fix=fix)
    try:
        parts.port
    except ValueError:
        raise InvalidInput(N_("cannot reach the parent: the port of the address {url} is not a "
                              "number from 0 to 65535; {fix}"), url=url, fix=fix) from None
    if not parts.hostname:
        raise InvalidInput(N_("cannot reach the parent: the address {url} has no host name; "
                              "{fix}"), url=url, fix=fix)
    return url.strip()


#: where HTTP requests' ids are kept in ``seen_envelopes``: a bundle carries no timestamp, so
#: its id is kept bare and for ever; a request's id is kept under this prefix only while its
#: timestamp could still be accepted (``remember_request``), so the table stays bounded.
#: The two strings bound the prefix's range of the primary key, read without a scan.
REQUEST_IDS = ("http:", "http;")


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(
        timespec="milliseconds")


def request_seen(node, envelope_id: str) -> bool:
    return node.db.execute("select 1 from seen_envelopes where id = ?",
                           [REQUEST_IDS[0] + envelope_id]).fetchone() is not None


def remember_request(node, envelope_id: str, sender: str, sent_ms: int, now_ms: int,
                     keep_ms: int) -> None:
    """Keep a served request's id, and forget those stamped more than ``keep_ms`` ago.

    A row is dated by the request's own timestamp, not by its arrival: a request
    stamped ahead of the server's clock stays acceptable until its own time plus
    the window, so a row dated by arrival would be forgotten while the request
    could still be replayed. Once a row is older than the window the timestamp
    check refuses the request anyway; ``keep_ms`` may exceed the window so that a
    clock stepped back (an NTP correction) does not reopen it.
    """
    node.db.execute("delete from seen_envelopes where id >= ? and id < ? and at < ?",
                    [*REQUEST_IDS, _utc(now_ms - keep_ms)])
    node.db.execute("insert into seen_envelopes (id, sender, at) values (?,?,?)",
                    [REQUEST_IDS[0] + envelope_id, sender, _utc(sent_ms)])


def revocation(node, author: str) -> tuple[str, int, int] | None:
    """(``revoke`` or ``retire``, epoch, seq) if this node holds a ``trust.revoke`` or
    ``trust.retire`` for the key ``author``, else None."""
    row = node.db.execute("select kind, epoch, seq from revocations where subject = ?",
                          [author]).fetchone()
    return (row[0], row[1], row[2]) if row else None


def ack(node, peer: str) -> wire.Frontier:
    """What the peer last said it holds; nothing yet is the column's default, ``{}``."""
    row = node.db.execute("select ack from peers where author = ?", [peer]).fetchone()
    stored = json.loads(row[0]) if row else None
    return wire.frontier_from_wire(stored) if stored else {}


def record_ack(node, peer: str, frontier: wire.Frontier, transport: str) -> None:
    """Store what the peer says it holds; refusals of events it now holds are over.

    Only the open refusals are looked at (a handful), never the log, so an
    acknowledgement costs the same whatever the size of the store.
    """
    for event_id, author, epoch, seq in node.db.execute(
            "select r.event_id, e.author, e.epoch, e.seq from peer_refusals r join events e "
            "on e.id = r.event_id where r.peer = ?", [peer]).fetchall():
        if frontier.get((author, epoch), 0) >= seq:
            node.db.execute("delete from peer_refusals where peer = ? and event_id = ?",
                            [peer, event_id])
    node.db.execute(
        "insert into peers (author, ack, last_sync, last_transport) values (?,?,?,?) "
        "on conflict (author) do update set ack = excluded.ack, last_sync = excluded.last_sync, "
        "last_transport = excluded.last_transport, last_error = null",
        [peer, json.dumps(wire.frontier_to_wire(frontier)), now(), transport])


def record_sent(node, peer: str, count: int) -> None:
    node.db.execute("insert into peers (author, sent) values (?, ?) on conflict (author) do "
                    "update set sent = sent + excluded.sent", [peer, count])


def record_error(node, peer: str, message: str) -> None:
    node.db.execute("insert into peers (author, last_error) values (?, ?) on conflict (author) "
                    "do update set last_error = excluded.last_error", [peer, message])


def refusals_to_report(node, peer: str) -> list[list[str]]:
    rows = node.db.execute("select event_id, reason from quarantine where peer = ? and "
                           "reported = 0", [peer]).fetchall()
    return [list(r) for r in rows]


def mark_reported(node, peer: str, event_ids: list[str]) -> None:
    for event_id in event_ids:
        node.db.execute("update quarantine set reported = 1 where peer = ? and event_id = ?",
                        [peer, event_id])


def record_refusals(node, peer: str, refused: list[list[str]]) -> None:
    """Refusals a peer reported of events this node sent it."""
    for event_id, reason in refused:
        node.db.execute("insert into peer_refusals (peer, event_id, reason) values (?,?,?) "
                        "on conflict (peer, event_id) do update set reason = excluded.reason",
                        [peer, str(event_id), str(reason)])


@attrs.frozen
class PeerStatus:
    """One row of ``xinfang sync status``, in events.

    ``sent`` counts the events this node has sent the peer (a page sent twice
    counts twice); ``acknowledged`` those of them the peer says it holds: the
    events of this node's log the peer's last acknowledged frontier covers,
    capped by ``sent`` (the peer's own events are in that frontier too, and
    were never sent), so it never exceeds ``sent``; ``pending`` what the peer
    still lacks of what this node would send it; ``received`` the events
    this node took from the peer; ``refused_by_peer`` / ``refused_from_peer``
    the events refused either way. ``relation`` is ``parent`` or ``child``, the
    same in every language (the command line shows it translated), and
    ``last_error`` a stored message (``i18n.show`` renders it).
    """

    name: str
    fingerprint: str
    relation: str
    area: str
    sent: int
    received: int
    acknowledged: int
    pending: int
    refused_by_peer: int
    refused_from_peer: int
    last_sync: str | None
    last_transport: str | None
    last_error: str | None


def status(node) -> list[PeerStatus]:
    mine = own_certificate(node)
    result = []
    rows = node.db.execute("select subject from certs where (issuer = ? or subject = ?) "
                           "and subject != ? and subject not in (select subject from "
                           "revocations where kind = 'retire') order by area",
                           [mine.subject, mine.issuer, mine.subject]).fetchall()
    for (subject,) in rows:
        cert = certificate(node.db, subject)
        peer = node.db.execute("select sent, received, last_sync, last_transport, last_error "
                               "from peers where author = ?", [subject]).fetchone()
        acked = ack(node, subject)
        pending = send.count_missing(node, cert.area, acked, peer=cert)
        held = sum(min(s, receive.frontier_of(node.db, a, e)) for (a, e), s in acked.items())
        sent = peer[0] if peer else 0
        result.append(PeerStatus(
            name=cert.name, fingerprint=keys.fingerprint(subject),
            relation="parent" if subject == mine.issuer else "child", area=cert.area,
            sent=sent, received=peer[1] if peer else 0, acknowledged=min(sent, held),
            pending=pending,
            refused_by_peer=node.db.execute("select count(*) from peer_refusals where peer = ?",
                                            [subject]).fetchone()[0],
            refused_from_peer=node.db.execute("select count(*) from quarantine where peer = ?",
                                              [subject]).fetchone()[0],
            last_sync=peer[2] if peer else None, last_transport=peer[3] if peer else None,
            last_error=peer[4] if peer else None))
    return result
