"""Helpers for sync tests: a small certified tree of real nodes, and ways to move data.

Everything is real: each node is a directory with its own SQLite database
and key files, certificates are signed down the tree exactly as ``xinfang
enroll request/sign/import`` does it, bundles are sealed files on disk and
the HTTP server is waitress on the loopback address. Nothing is mocked.

    tree = build_tree(tmp_path)                   # county -> township -> 2 villages
    register(tree.village, serial=1)              # a case with synthetic data
    carry(tree.village, tree.township, tmp_path)  # one bundle file, exported and imported
    exchange(tree.village, tree.township, tmp_path)  # a bundle each way
    with serve(tree.township) as url:             # waitress in a thread
        Client(tree.village, url).sync()

``send_pages`` seals a *hand-made* bundle (pages the sender's log need not
hold), for feeding a receiver bad input through the real import path;
``post`` sends raw bytes to a server and returns the status and body, for
requests a well-behaved ``Client`` would never make.

Names, area codes and ID numbers are synthetic (region 990000 is assigned to
no place).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Iterator

import attrs

from xinfang.core import codec, fold, i18n, keys, verify
from xinfang.core.event import EVENT_DOMAIN, Event
from xinfang.core.keys import NodeKeys
from xinfang.core.node import DB_NAME, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.sync import bundle, envelope, trust
from xinfang.sync.wire import Page, frontier, frontier_to_wire
from xinfang.sync.http import PATH
from xinfang.sync.server import BackgroundServer

COUNTY = ("431202", "示例县信访局")
TOWNSHIP = ("431202101", "示例一镇信访办")
VILLAGES = (("431202101201", "示例一镇示例一村信访站"), ("431202101202", "示例一镇示例二村信访站"))
OPERATOR = "测试员"
#: a fixed "today" for case steps; received dates are earlier in the same year
TODAY = dt.date(2026, 11, 22)


synthetic_id = synthetic


@attrs.define
class Tree:
    """A county (the trust root), one township and its villages, all certified."""

    base: Path
    county: Node
    township: Node
    villages: list[Node]

    @property
    def village(self) -> Node:
        return self.villages[0]

    @property
    def sibling(self) -> Node:
        return self.villages[1]

    @property
    def nodes(self) -> list[Node]:
        return [self.county, self.township, *self.villages]

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.close()


def new_node(home: Path, level: str, area: str, name: str, root: bool = False,
             plugins: Iterable[Any] = ()) -> Node:
    node = Node.init(home, level=level, area=area, name=name, root=root,
                     pm=get_plugin_manager(plugins))
    node.operator = OPERATOR
    return node


def enrol(child: Node, parent: Node) -> None:
    """The enrolment round trip: request file, parent's signature, sealed certificate back."""
    request = trust.EnrolmentRequest.from_json(trust.make_request(child).to_json())
    sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(parent, request))
    trust.import_certificate(child, envelope.open_(child.keys, sealed, "enrolment").payload)


def build_tree(base: Path, villages: int = 2, plugins: Iterable[Any] = ()) -> Tree:
    """County (root) -> township -> ``villages`` villages under ``base``."""
    base = Path(base)
    county = new_node(base / "county", "county", *COUNTY, root=True, plugins=plugins)
    township = new_node(base / "township", "township", *TOWNSHIP, plugins=plugins)
    enrol(township, county)
    made = []
    for area, name in VILLAGES[:villages]:
        village = new_node(base / f"village-{area}", "village", area, name, plugins=plugins)
        enrol(village, township)
        made.append(village)
    return Tree(base, county, township, made)


def register(node: Node, serial: int = 1, request: str = "请求追讨拖欠工资",
             received: str = "2026-03-05", **overrides) -> str:
    """Register a case with a synthetic petitioner; returns the case number."""
    values = dict(
        petitioners=[api.PetitionerInput(f"赵某{serial}", synthetic_id(serial),
                                         f"1380000{serial:04d}", "示例村一组")],
        channel="来访", category="劳动社保", kind="申诉求决", request=request,
        received=received)
    values.update(overrides)
    return api.register_case(node, api.CaseInput(**values), today=TODAY)


# -- looking at a node ----------------------------------------------------------


def views(node: Node) -> str:
    """The digest of every view table: equal digests mean identical views."""
    return fold.views_digest(node.db, node.registry)


def event_ids(node: Node) -> set[str]:
    return {row[0] for row in node.db.execute("select id from events")}


def excluded_ids(node: Node) -> set[str]:
    """Events the log keeps but the views leave out (past a revocation or a fork)."""
    return {e.event_id for e in verify.excluded_events(node.db)}


def feed(node: Node, author: str | None = None, epoch: int = 0) -> list[Event]:
    """The events of one feed (default: the node's own) held by ``node``, by sequence."""
    author = author or node.info.author
    return [Event.parse(raw, sig) for raw, sig in node.db.execute(
        "select raw, sig from events where author = ? and epoch = ? order by seq",
        [author, epoch])]


def quarantine(node: Node) -> dict[str, dict[str, Any]]:
    """The quarantine table by event id: author, epoch, seq, reason, peer, reported."""
    return {row[0]: {"author": row[1], "epoch": row[2], "seq": row[3], "reason": row[4],
                     "peer": row[5], "reported": row[6]}
            for row in node.db.execute("select event_id, author, epoch, seq, reason, peer, "
                                       "reported from quarantine")}


def peer_refusals(node: Node, peer: Node | None = None) -> dict[str, str]:
    """What peers reported refusing of this node's sending: event id -> reason."""
    if peer is None:
        rows = node.db.execute("select event_id, reason from peer_refusals")
    else:
        rows = node.db.execute("select event_id, reason from peer_refusals where peer = ?",
                               [peer.info.author])
    return dict(rows.fetchall())


def copy_node(node: Node, home: Path) -> Node:
    """A second node object over a copy of ``node``'s directory (keys and database).

    The database is copied with SQLite's backup API, so the copy is consistent
    even while ``node`` holds it open in WAL mode.
    """
    home = Path(home)
    home.mkdir(parents=True)
    shutil.copytree(node.home / "keys", home / "keys")
    target = sqlite3.connect(str(home / "xinfang.db"))
    try:
        node.db.conn.backup(target)
    finally:
        target.close()
    copy = Node.open(home, pm=node.pm)
    copy.operator = node.operator
    return copy


# -- moving data -----------------------------------------------------------------


_counter = iter(range(1_000_000))


def bundle_path(directory: Path, source: Node, target: Node) -> Path:
    return Path(directory) / f"{source.info.area}-to-{target.info.area}-{next(_counter)}.xfb"


def carry(source: Node, target: Node, directory: Path) -> bundle.ImportSummary:
    """Export a bundle from ``source`` to ``target`` and import it there."""
    path = bundle_path(directory, source, target)
    bundle.export_bundle(source, target.info.name, path)
    return bundle.import_bundle(target, path)


def exchange(a: Node, b: Node, directory: Path) -> tuple[bundle.ImportSummary,
                                                         bundle.ImportSummary]:
    """A bundle from ``a`` to ``b`` and one back: the 'next exchange' that reports refusals."""
    return carry(a, b, directory), carry(b, a, directory)


def seal_pages(sender: Node, receiver: Node, wires: list[dict[str, Any]],
               refused: list[list[str]] = ()) -> bytes:
    """A bundle from ``sender`` holding exactly the page wires given (made by hand)."""
    payload = {
        "pages": list(wires),
        "frontier": frontier_to_wire(frontier(sender.db)),
        "refused": [list(r) for r in refused],
        "chain": [c.to_wire() for c in trust.chain_of(sender.db, sender.info.author)],
    }
    return envelope.seal(sender.keys, receiver.info.author, receiver.info.encryption,
                         bundle.KIND, payload)


def send_pages(sender: Node, receiver: Node, wires: list[dict[str, Any]],
               directory: Path) -> bundle.ImportSummary:
    """Write a hand-made bundle to a file and import it at ``receiver``."""
    path = bundle_path(directory, sender, receiver)
    path.write_bytes(seal_pages(sender, receiver, wires))
    return bundle.import_bundle(receiver, path)


def wire(events: Iterable, certs_from: Node | None = None,
         ranges: Iterable[tuple[str, int, int, int]] = ()) -> dict[str, Any]:
    """The wire form of a page of ``events``, with the authors' chains from ``certs_from``."""
    events = list(events)
    certs = {}
    if certs_from is not None:
        for author in sorted({e.author for e in events}):
            for cert in trust.chain_of(certs_from.db, author):
                certs[cert.subject] = cert
    return Page(events, (), certs.values(), ranges).to_wire()


# -- HTTP ------------------------------------------------------------------------


@contextlib.contextmanager
def serve(node: Node) -> Iterator[str]:
    """Serve ``node``'s directory with waitress on a thread of this process; yield its URL."""
    with BackgroundServer(node.home) as server:
        yield server.url


def signed_request(node: Node, payload: dict[str, Any], sent_ms: int | None = None,
                   parent: Node | None = None) -> bytes:
    """The body ``Client.call`` would send (signed by ``node``, sealed to its parent).

    ``sent_ms`` overrides the timestamp (milliseconds since the epoch).
    """
    if parent is not None:
        to, encryption = parent.info.author, parent.info.encryption
    else:
        cert = trust.certificate(node.db, node.certificate.issuer)
        to, encryption = cert.subject, cert.encryption
    payload = {**payload, "chain": [c.to_wire() for c in trust.chain_of(node.db,
                                                                         node.info.author)]}
    sent = int(time.time() * 1000) if sent_ms is None else sent_ms
    return envelope.seal(node.keys, to, encryption, "request", payload, extra={"sent": sent})


def post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST raw bytes to ``url`` + the sync path; (HTTP status, response body)."""
    request = urllib.request.Request(url.rstrip("/") + PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def error_of(body: bytes) -> str:
    """The message of a refused request's JSON answer."""
    return json.loads(body.decode("utf-8"))["error"]


def open_reply(node: Node, body: bytes) -> Any:
    """The payload of a server's sealed answer to ``node``."""
    return envelope.open_(node.keys, body, "response").payload


def deliver(sender, receiver, events, via: str, tmp_path) -> tuple[int, dict[str, str]]:
    """``events`` in one page from ``sender`` to its parent ``receiver``, by bundle or by
    HTTP push: how many were applied, and the reasons of those refused (shown)."""
    page = wire(events, certs_from=sender)
    if via == "bundle":
        summary = send_pages(sender, receiver, [page], tmp_path)
        return summary.applied, {r.event_id: i18n.show(r.reason) for r in summary.refused}
    with serve(receiver) as url:
        status, body = post(url, signed_request(sender, {"op": "push", "page": page}))
    assert status == 200, body
    answer = open_reply(sender, body)
    return answer["applied"], {event_id: i18n.show(reason) for event_id, reason in
                               answer["refused"]}


def sql(home: Path, statement: str, params=()) -> int:
    """Run one statement on a node's database through a separate connection, as
    someone editing the file by hand would; returns the rows it changed."""
    conn = sqlite3.connect(home / DB_NAME)
    try:
        with conn:
            return conn.execute(statement, params).rowcount
    finally:
        conn.close()


def fingerprint(node: Node) -> str:
    return keys.fingerprint(node.info.author)


# -- making events by hand -------------------------------------------------------


def next_event(node: Node, *, signer: NodeKeys | None = None, seq: int | None = None,
               prev: str | None = None, **fields) -> Event:
    """The event ``node`` would write next, signed but stored nowhere.

    ``fields`` override type, entity, entity_id, area and body; by default it
    is a valid ``case.register`` in the node's own area (the node must have
    written one event already). ``signer`` signs the
    bytes while the event still names ``node`` as its author (a forgery).
    """
    head_seq, head_id = node.db.execute(
        "select seq, head from feeds where author = ? and epoch = ?",
        [node.info.author, node.info.epoch]).fetchone() or (0, None)
    if seq is None:
        seq, prev = head_seq + 1, head_id
    content = {
        "v": 1, "author": node.info.author, "epoch": node.info.epoch, "seq": seq, "prev": prev,
        "hlc": node.clock.tick().to_list(), "type": "case.register", "entity": "case",
        "id": f"{node.info.area}-2026-{90000 + seq}", "area": node.info.area,
        "body": feed(node)[0].body,  # a valid case.register body the node wrote
    }
    content.update({("id" if k == "entity_id" else k): v for k, v in fields.items()})
    raw = codec.encode(content)
    return Event.parse(raw, (signer or node.keys).sign(EVENT_DOMAIN + raw))


def sign_raw(signer: NodeKeys, raw: bytes) -> list[str]:
    """A page wire entry for ``raw`` bytes signed by ``signer`` (no checks at all)."""
    signature = signer.sign(EVENT_DOMAIN + raw)
    return [base64.b64encode(raw).decode(), base64.b64encode(signature).decode()]
