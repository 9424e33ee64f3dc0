"""The HTTP server's limits: connections and idle time, writes for the unknown,
answers bound to requests, revoked keys.

An attacker holds the network, or a key: one it made itself, or a real
enrolled key that was revoked. Each test sends what such an attacker would,
by hand, to a real waitress server over the loopback address (or to the
real ``SyncEndpoint`` with a simulated clock, where time must pass), and
checks what is refused, with what reason, and that nothing was written.
Nodes, keys, certificates and bundles are real; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest

from sync_helpers import (COUNTY, build_tree, carry, enrol, error_of, feed, new_node, post,
                          register, signed_request, wire)
from xinfang.core import store
from xinfang.core.certs import Certificate
from xinfang.core.errors import Explained
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Draft
from xinfang.sync import envelope, http, peers, server, trust
from xinfang.sync.http import Client, SyncEndpoint, SyncError
from xinfang.sync.server import BackgroundServer, Limits

TOWNSHIP2 = ("431202102", "示例二镇信访办")
VILLAGE3 = ("431202102201", "示例二镇示例一村信访站")


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path)
    yield built
    built.close()


def dump(node) -> list[str]:
    """Every table of the node's database, row by row, as SQL."""
    return list(node.db.conn.iterdump())


def request_rows(node) -> int:
    low, high = peers.REQUEST_IDS
    return node.db.execute("select count(*) from seen_envelopes where id >= ? and id < ?",
                           [low, high]).fetchone()[0]


def wait_for(condition, what: str, seconds: float = 20.0) -> None:
    """Poll ``condition`` until it holds (a wait, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def half_sent(url: str) -> socket.socket:
    """A connection that announces a request body and sends only its first bytes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST {http.PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/"
                 f"octet-stream\r\nContent-Length: 100000\r\n\r\nXINFANG".encode())
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(20)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


# -- connections -------------------------------------------------------------------


def test_the_server_runs_with_the_documented_limits(tree):
    with BackgroundServer(tree.township.home) as running:
        adj = running.server.adj
        assert (adj.connection_limit, adj.channel_timeout, adj.cleanup_interval) == (
            server.CONNECTION_LIMIT, server.IDLE_SECONDS, server.CLEANUP_SECONDS)
    # a genuine child gives up on a silent socket no later than the server does
    assert attrs.fields(Client).timeout.default <= server.IDLE_SECONDS


def test_half_sent_connections_over_the_limit_do_not_starve_a_genuine_child(tree, caplog):
    """Four half-sent requests against a server that holds two connections (the
    limit of 4 counts its listening socket and its wake-up pipe): the two it holds
    fall silent and are closed, then the two that waited in the backlog, and the
    child's sync, which waited behind them, completes."""
    village, township = tree.village, tree.township
    case = register(village, 1)
    limits = Limits(connections=4, idle_seconds=1, cleanup_seconds=1, request_seconds=600)
    with caplog.at_level(logging.INFO, logger="waitress"), \
            BackgroundServer(township.home, limits=limits) as running:
        attackers = [half_sent(running.url) for _ in range(4)]
        wait_for(lambda: running.server.in_connection_overflow, "the limit was reached")
        summary = Client(village, running.url).sync()
        assert all(closed_by_server(sock) for sock in attackers)
        for sock in attackers:
            sock.close()
    assert summary.pushed == 1
    assert township.db.execute("select count(*) from cases where id = ?", [case]).fetchone()[0]
    assert any("connection limit" in r.getMessage() for r in caplog.records)


def test_a_request_trickled_past_its_deadline_is_cut_off_for_a_genuine_child(tree):
    """A sender that never falls silent (a byte every 0.2 s, the idle limit is 1 s)
    holds the server's one connection until the arrival deadline cuts it off."""
    village, township = tree.village, tree.township
    register(village, 1)
    limits = Limits(connections=3, idle_seconds=1, cleanup_seconds=1, request_seconds=2)
    cut = threading.Event()
    with BackgroundServer(township.home, limits=limits) as running:
        attacker = half_sent(running.url)
        wait_for(lambda: running.server.in_connection_overflow, "the trickler holds the place")

        def trickle() -> None:
            for _ in range(300):  # a minute at most
                try:
                    attacker.sendall(b"A")
                except OSError:
                    cut.set()
                    return
                time.sleep(0.2)

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        summary = Client(village, running.url).sync()
        sender.join(timeout=90)
        attacker.close()
    assert cut.is_set(), "the trickling connection was never cut off"
    assert summary.pushed == 1


# -- no writes for the unknown -----------------------------------------------------


def _other_township_village(tree):
    """A real node certified by the county in another township: genuine, not below
    ``tree.township``, and its certificates are new to it."""
    township2 = new_node(tree.base / "township2", "township", *TOWNSHIP2)
    enrol(township2, tree.county)
    village3 = new_node(tree.base / "village3", "village", *VILLAGE3)
    enrol(village3, township2)
    return township2, village3


def _attacker_requests(tree, other):
    township, village = tree.township, tree.village
    attacker = NodeKeys.generate()
    fake_root = Certificate.issue(attacker, subject=attacker.author,
                                  encryption=attacker.encryption_public, area=COUNTY[0],
                                  level="county", name="冒充的县")
    genuine_chain = [c.to_wire() for c in trust.chain_of(village.db, village.info.author)]

    def sealed(keys, chain, op="hello"):
        return envelope.seal(keys, township.info.author, township.info.encryption, "request",
                             {"op": op, "frontier": [], "chain": chain},
                             extra={"sent": int(time.time() * 1000)})

    return {
        "a key of its own, no chain": sealed(attacker, []),
        "a key of its own, a self-made root": sealed(attacker, [fake_root.to_wire()]),
        "a key of its own, a real village's chain": sealed(attacker, genuine_chain),
        "a key of its own, a push": sealed(attacker, [], op="push"),
        "a certified node of another township": signed_request(
            other, {"op": "hello", "frontier": []}, parent=township),
        "a certified node of another township, a pull": signed_request(
            other, {"op": "pull", "frontier": []}, parent=township),
    }


def test_a_request_from_a_node_not_certified_below_writes_nothing(tree):
    township = tree.township
    township2, village3 = _other_township_village(tree)
    try:
        requests = _attacker_requests(tree, village3)
        before = dump(township)
        with serve_node(township) as url:
            for what, body in requests.items():
                status, answer = post(url, body)
                assert status == 403, (what, answer)
                assert "不是本节点下属的已认证节点" in error_of(answer), what
                status, answer = post(url, body)  # the same again: no row remembered it
                assert status == 403, (what, answer)
        assert dump(township) == before
        # the other township's genuine certificates were offered, and not kept
        assert trust.certificate(township.db, village3.info.author) is None
    finally:
        township2.close()
        village3.close()


def test_a_replay_of_a_genuine_request_is_refused_and_the_table_stays_bounded(tree, tmp_path):
    """Time passes on the endpoint's clock: one request a minute for 40 minutes
    leaves only the requests of the last ten minutes (twice the five-minute
    window) in ``seen_envelopes``; a bundle's id is never pruned."""
    village, township = tree.village, tree.township
    register(village, 1)
    carry(village, township, tmp_path)
    bundle_rows = township.db.execute("select * from seen_envelopes").fetchall()
    assert len(bundle_rows) == 1
    start = time.time()
    now = [start]
    endpoint = SyncEndpoint(township, clock=lambda: now[0])
    keep = http.REPLAY_KEEP_SECONDS // 60 + 1

    def hello(at: float) -> bytes:
        return signed_request(village, {"op": "hello", "frontier": []},
                              sent_ms=int(at * 1000))

    def refused(body: bytes) -> str:
        with pytest.raises(Explained) as caught:
            endpoint.handle(body)
        return caught.value.status

    bodies = []
    for minute in range(40):
        now[0] = start + minute * 60
        bodies.append(hello(now[0]))
        endpoint.handle(bodies[-1])
        assert request_rows(township) == min(minute + 1, keep), minute
        assert refused(bodies[-1]) == http.CONFLICT  # a replay within the window
    assert refused(bodies[-6]) == http.UNAUTHORIZED  # forgotten: refused by its timestamp
    assert township.db.execute("select * from seen_envelopes where id not like 'http:%'"
                               ).fetchall() == bundle_rows
    # a request stamped four minutes ahead stays remembered past its own time
    ahead = hello(now[0] + 240)
    endpoint.handle(ahead)
    now[0] += 480
    assert refused(ahead) == http.CONFLICT


# -- answers bound to requests -----------------------------------------------------


class ReplayingRelay:
    """A relay on the path: it passes the first request to the parent, records the
    answer, and gives that answer back for every later request."""

    def __init__(self, upstream: str):
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if relay.recorded is None:
                    relay.recorded = post(upstream, body)
                relay.replayed += 1
                status, answer = relay.recorded
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                """Quiet: the test reads the answers, not the server's log."""

        self.recorded: tuple[int, bytes] | None = None
        self.replayed = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ReplayingRelay":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_an_answer_replayed_by_a_relay_for_another_request_is_refused(tree):
    village, township = tree.village, tree.township
    case = register(township, 7, area=village.info.area)
    held = {r[0] for r in village.db.execute("select id from events")}
    with serve_node(township) as url, ReplayingRelay(url) as relay:
        with pytest.raises(SyncError, match="为另一个请求所作") as caught:
            Client(village, relay.url).sync()
    assert relay.replayed == 2  # the hello was answered, the pull got the hello's answer
    assert relay.url in str(caught.value)
    assert {r[0] for r in village.db.execute("select id from events")} == held
    assert not village.db.execute("select 1 from cases where id = ?", [case]).fetchone()


def test_the_client_takes_an_answer_only_for_the_request_it_answers(tree):
    village, township = tree.village, tree.township
    register(township, 7, area=village.info.area)
    with serve_node(township) as url:
        client = Client(village, url)
        pull = {"op": "pull", "frontier": []}
        first_id, first = client.request(pull)
        old_answer = client.post(first)
        second_id, _second = client.request(pull)
        assert client.answer(old_answer, first_id)["page"] is not None
        with pytest.raises(SyncError, match="为另一个请求所作"):
            client.answer(old_answer, second_id)
        assert envelope.open_(village.keys, old_answer, "response").payload["request"] == \
            first_id


# -- revoked keys ------------------------------------------------------------------


def test_a_revoked_village_gets_nothing_more_over_http(tree, tmp_path):
    village, township, sibling = tree.village, tree.township, tree.sibling
    register(village, 1)
    carry(village, township, tmp_path)
    last_good = store.feed_head(township.db, village.info.author, 0)[0]
    township.append(Draft("trust.revoke", "trust", village.info.author, village.info.area,
                          {"epoch": 0, "seq": last_good, "reason": "测试：村站电脑被盗"}))
    register(township, 8, area=village.info.area)  # something it would otherwise pull
    later = register(village, 2)
    requests = {"hello": {"op": "hello", "frontier": []},
                "pull": {"op": "pull", "frontier": []},
                "push": {"op": "push", "page": wire(feed(village), certs_from=village)}}
    before = dump(township)
    with serve_node(township) as url:
        for op, payload in requests.items():
            status, answer = post(url, signed_request(village, payload))
            assert status == 403, (op, answer)
            reason = error_of(answer)
            assert "密钥已被吊销" in reason and "trust.revoke" in reason, reason
            assert f"纪元 0 序号 {last_good}" in reason and village.info.name in reason
        with pytest.raises(SyncError, match="密钥已被吊销"):
            Client(village, url).sync()
        assert dump(township) == before
        assert Client(sibling, url).sync().rounds >= 1  # the others are served as before
    assert not township.db.execute("select 1 from cases where id = ?", [later]).fetchone()


def test_a_retired_key_gets_nothing_over_http_and_its_successor_syncs(tree, tmp_path):
    village, township = tree.village, tree.township
    register(village, 1)
    old_keys = village.keys
    old_chain = [c.to_wire() for c in trust.chain_of(village.db, village.info.author)]
    trust.rotate_keys(village)
    enrol(village, township)
    carry(village, township, tmp_path)  # the retirement reaches the township
    body = envelope.seal(old_keys, township.info.author, township.info.encryption, "request",
                         {"op": "pull", "frontier": [], "chain": old_chain},
                         extra={"sent": int(time.time() * 1000)})
    with serve_node(township) as url:
        status, answer = post(url, body)
        assert status == 403 and "密钥已停用" in error_of(answer), error_of(answer)
        assert Client(village, url).sync().rounds >= 1


@contextlib.contextmanager
def serve_node(node):
    with BackgroundServer(node.home) as running:
        yield running.url
