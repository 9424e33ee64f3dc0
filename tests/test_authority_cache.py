"""Authority judged once per version of the trust data; protocol 2's compact frontiers.

A server keeps what each author's chain gives (``authority.trust_version``) until
the trust data changes: a certificate, a revocation or retirement, a frozen
feed, a ``trust`` event or the pinned root, written through its own connection
or committed by another. Each story below warms that memo with a real request,
changes the trust data the way it changes in an office (the server's own node,
or ``xinfang trust revoke`` / ``enroll sign`` beside ``xinfang serve``), and
checks the very next request. Then: the feeds a request reads are the feeds
the old scan would not have skipped, and a compact hello leads to the same
pages as the whole frontier did, exactly the events the parent lacks.

Real nodes, keys and a real waitress server on 127.0.0.1; names and ID numbers
are synthetic (see ``sync_helpers``).
"""

from __future__ import annotations

import contextlib
import io
import sqlite3

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import (build_tree, carry, enrol, error_of, event_ids, feed, fingerprint,
                          new_node, next_event, open_reply, post, register, signed_request,
                          sql, wire)
from xinfang.core import i18n, keys
from xinfang.core.authority import Authority
from xinfang.core.certs import Certificate, chain_of, chain_to_wire
from xinfang.core.event import Event
from xinfang.core.node import Draft
from xinfang.sync import envelope, peers, send, trust
from xinfang.sync.http import Client, SyncError
from xinfang.sync.server import BackgroundServer
from xinfang.sync.wire import PROTOCOL, frontier, frontier_from_wire, hello_frontier, summary

#: what a refusal of a certificate signed after its issuer's point says (zh_CN)
VOID = "吊销的密钥此后签发的证书一律无效"
REVOKED = "其密钥已被吊销"
SIGNATURE = "签名无效"
OUTSIDE = "超出辖区"
ROGUE_AREA, ROGUE_NAME = "431202101299", "冒充的示例九十九村信访站"


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path / "tree")
    yield built
    built.close()


def revoke(revoker, node, seq: int):
    return revoker.append(Draft("trust.revoke", "trust", node.info.author, node.info.area,
                                {"epoch": 0, "seq": seq, "reason": "测试：电脑被盗"}))


def writer(server: BackgroundServer, other, how: str):
    """The node that changes the trust data: the server's own (its connection), or
    another object over the same directory, as a command run beside the server is."""
    return server.server.xinfang_node if how == "the server's connection" else other


HOW = ["the server's connection", "another connection"]


def hello(node, url, parent=None) -> tuple[int, bytes]:
    return post(url, signed_request(node, {"op": "hello", "v": PROTOCOL, "frontier": []},
                                    parent=parent))


# -- the very next request ---------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_a_revoked_key_is_refused_on_the_very_next_request(tree, how):
    township, village = tree.township, tree.village
    register(village, 1)
    with BackgroundServer(township.home) as server:
        assert Client(village, server.url).sync().pushed == 1
        assert hello(village, server.url)[0] == 200  # judged, and kept
        revoke(writer(server, township, how), village, seq=1)
        status, body = hello(village, server.url)
        assert status == 403 and REVOKED in error_of(body)
        assert fingerprint(village) in error_of(body)
        with pytest.raises(SyncError, match=REVOKED):
            Client(village, server.url).sync()


@pytest.mark.parametrize("how", HOW)
def test_a_chain_voided_by_its_issuers_revocation_is_refused_on_the_very_next_request(
        tree, tmp_path, how):
    """The township's key is stolen; the thief certified a village of his own and logged
    nothing. Until the county hears of the theft, that village's chain is good, and
    the county's memo holds it as good; the revocation voids it at once."""
    county, township, village = tree.county, tree.township, tree.village
    register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    evil = new_node(tmp_path / "rogue", "village", ROGUE_AREA, ROGUE_NAME)
    forged = Certificate.issue(township.keys, subject=evil.info.author,
                               encryption=evil.info.encryption, area=ROGUE_AREA,
                               level="village", name=ROGUE_NAME)
    trust.import_certificate(evil, {"certificate": forged.to_wire(), "chain": chain_to_wire(
        chain_of(township.db, township.info.author))})
    try:
        with BackgroundServer(county.home) as server:
            assert hello(evil, server.url, parent=county)[0] == 200
            assert hello(village, server.url, parent=county)[0] == 200
            point = county.db.execute("select seq from feeds where author = ?",
                                      [township.info.author]).fetchone()[0]
            revoke(writer(server, county, how), township, seq=point)
            status, body = hello(evil, server.url, parent=county)
            assert status == 403 and VOID in error_of(body) and ROGUE_NAME in error_of(body)
            # the village the township certified in time is served as before
            assert hello(village, server.url, parent=county)[0] == 200
    finally:
        evil.close()


@pytest.mark.parametrize("how", HOW)
def test_a_newly_certified_child_is_served_at_once(tree, tmp_path, how):
    township, village = tree.township, tree.village
    register(village, 1)
    with BackgroundServer(township.home) as server:
        Client(village, server.url).sync()  # the memo holds the township's children
        newcomer = new_node(tmp_path / "newcomer", "village", "431202101203", "示例一镇新村信访站")
        try:
            enrol(newcomer, writer(server, township, how))
            register(newcomer, 2)
            assert Client(newcomer, server.url).sync().pushed == 1
            assert {e.id for e in feed(newcomer)} <= event_ids(township)
        finally:
            newcomer.close()


# -- the memo follows the certs table ------------------------------------------------


def test_a_scope_is_judged_again_after_the_certs_table_changes_rolls_back_or_is_changed_elsewhere(
        tree):
    township, village, sibling = tree.township, tree.village, tree.sibling
    db, subject = township.db, village.info.author
    row = db.execute("select * from certs where subject = ?", [subject]).fetchone()
    assert Authority(db).scope(subject).area == village.info.area  # judged, and kept

    with contextlib.suppress(ZeroDivisionError), db.atomic():
        db.execute("delete from certs where subject = ?", [subject])
        assert Authority(db).scope(subject) is None
        1 / 0  # the transaction rolls back, and the certificate is there again
    assert Authority(db).scope(subject).area == village.info.area

    with db.atomic():
        with contextlib.suppress(ZeroDivisionError), db.atomic():  # a savepoint
            db.execute("delete from certs where subject = ?", [subject])
            assert Authority(db).scope(subject) is None
            1 / 0
        assert Authority(db).scope(subject).area == village.info.area

    assert sql(township.home, "delete from certs where subject = ?", [subject]) == 1
    assert Authority(db).scope(subject) is None  # another connection's commit
    sql(township.home, "insert into certs values (?,?,?,?,?,?,?,?)", list(row))
    assert Authority(db).scope(subject).area == village.info.area

    # the same key, certified for the sibling's area by the same issuer: a good chain
    moved = Certificate.issue(township.keys, subject=subject, encryption=village.info.encryption,
                              area=sibling.info.area, level="village", name=village.info.name)
    db.execute("update certs set area = ?, raw = ?, sig = ? where subject = ?",
               [moved.area, moved.raw, moved.signature, subject])
    assert Authority(db).scope(subject).area == sibling.info.area
    index = Authority(db).index()
    assert index.valid[subject].area == sibling.info.area
    assert subject in index.overlapping(sibling.info.area)
    assert subject not in index.overlapping(village.info.area)


def test_a_cached_chain_is_not_trusted_over_http_once_the_certs_table_changes(tree):
    """The township's stored certificate for the village is replaced (by hand, through
    another connection) with a good one for the sibling's area: the very next push of
    the village's own case is judged against the new one."""
    township, village, sibling = tree.township, tree.village, tree.sibling
    register(village, 1)
    with BackgroundServer(township.home) as server:
        assert Client(village, server.url).sync().pushed == 1
        moved = Certificate.issue(township.keys, subject=village.info.author,
                                  encryption=village.info.encryption, area=sibling.info.area,
                                  level="village", name=village.info.name)
        sql(township.home, "update certs set area = ?, raw = ?, sig = ? where subject = ?",
            [moved.area, moved.raw, moved.signature, village.info.author])
        register(village, 2)
        status, body = post(server.url, signed_request(village, {
            "op": "push", "v": PROTOCOL, "page": wire(feed(village)[1:], certs_from=village)}))
        answer = open_reply(village, body)
    assert status == 200 and answer["applied"] == 0
    assert [OUTSIDE in i18n.show(reason) for _, reason in answer["refused"]] == [True]


# -- a stolen key, as before --------------------------------------------------------------


def test_a_stolen_village_key_is_refused_as_before_with_the_memo_warm(tree):
    township, village, sibling = tree.township, tree.village, tree.sibling
    register(village, 1)
    register(sibling, 1)
    with BackgroundServer(township.home) as server:
        Client(village, server.url).sync()
        Client(sibling, server.url).sync()
        held = event_ids(township)
        # in the sibling's area, signed with the stolen key
        outside = next_event(village, area=sibling.info.area,
                             entity_id=f"{sibling.info.area}-2026-00077")
        # naming the sibling as its author, signed with the stolen key
        forged = next_event(sibling, signer=village.keys)
        for event, reason in ((outside, OUTSIDE), (forged, SIGNATURE)):
            status, body = post(server.url, signed_request(village, {
                "op": "push", "v": PROTOCOL, "page": wire([event], certs_from=village)}))
            answer = open_reply(village, body)
            assert status == 200 and answer["applied"] == 0
            assert [event.id] == [r[0] for r in answer["refused"]]
            assert reason in i18n.show(answer["refused"][0][1])
        assert event_ids(township) == held
        revoke(server.server.xinfang_node, village, seq=1)
        status, body = post(server.url, signed_request(village, {
            "op": "push", "v": PROTOCOL, "page": wire([next_event(village)],
                                                      certs_from=village)}))
        assert status == 403 and REVOKED in error_of(body)
    assert not {outside.id, forged.id} & event_ids(township)


# -- the feeds a request reads ---------------------------------------------------------------


def feeds_by_the_old_scan(node, route, peer_frontier):
    """``send._feeds_to_send`` as it was: every feed read, every author judged."""
    authority = Authority(node.db)
    own_scope, me = node.info.area, node.info.author
    for author, epoch, top in node.db.execute("select author, epoch, max(seq, covered) from "
                                              "feeds order by author, epoch").fetchall():
        start = peer_frontier.get((author, epoch), 0)
        if top == start or not send._complete_for(authority.scope, author, me, own_scope,
                                                  route):
            continue
        cert = authority.scope(author)
        if cert is not None and not (cert.area.startswith(route.scope)
                                     or route.scope.startswith(cert.area)):
            continue
        if top > start:
            yield author, epoch, start, top
        elif top > 0 and cert is not None and (not cert.area.startswith(route.scope) or (
                route.only is not None and author != route.subject)):
            yield author, epoch, 0, top


def stranger_event(village, holder, serial: int) -> Event:
    """A registration by a key ``holder`` holds no certificate for, in ``village``'s
    area: what a trusted copy (``Node.ingest``) may hold, judged by no authority."""
    return Event.create(keys.NodeKeys.generate(), epoch=0, seq=1, prev=None,
                        hlc=holder.clock.tick(), type="case.register", entity="case",
                        entity_id=f"{village.info.area}-2026-{serial:05d}",
                        area=village.info.area, body=feed(village)[0].body)


def test_the_authors_without_a_scope_follow_the_feeds_held_through_a_rollback(tree):
    township, village = tree.township, tree.village
    register(village, 1)
    db = township.db
    one, two = stranger_event(village, township, 98), stranger_event(village, township, 99)
    before = Authority(db).unscoped()
    assert one.author not in before
    with contextlib.suppress(ZeroDivisionError), db.atomic():
        assert township.ingest([one]) == 1
        assert one.author in Authority(db).unscoped()
        1 / 0
    assert Authority(db).unscoped() == before
    assert township.ingest([two]) == 1  # a new feed, as the rolled-back one was
    assert Authority(db).unscoped() == before | {two.author}


@pytest.fixture(scope="module")
def held_tree(tmp_path_factory):
    """A township holding its own feed, both villages', a feed of a key it holds no
    certificate for (a trusted copy) and one whose stored certificate no longer reads."""
    base = tmp_path_factory.mktemp("held")
    built = build_tree(base / "tree")
    township = built.township
    for village in built.villages:
        register(village, 1)
        register(village, 2)
        carry(village, township, base)
    register(township, 3)
    assert township.ingest([stranger_event(built.village, township, 99)]) == 1
    return built


AREAS = ["431202101201", "431202101202", "431202101", "431202", "431202102", "43",
         "431202101203"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), scope=st.sampled_from(AREAS),
       lookups=st.sampled_from([0, send.FEED_LOOKUPS]))
def test_the_feeds_read_are_those_the_old_scan_would_send(held_tree, data, scope, lookups):
    township = held_tree.township
    feeds = frontier(township.db)
    peer_frontier = {}
    for (author, epoch), top in sorted(feeds.items()):
        choice = data.draw(st.sampled_from(["absent", "zero", "below", "equal", "above"]))
        if choice != "absent":
            peer_frontier[(author, epoch)] = {"zero": 0, "below": max(top - 1, 0),
                                              "equal": top, "above": top + 1}[choice]
    peer = data.draw(st.sampled_from([None, *held_tree.villages]))
    cert = None if peer is None else trust.certificate(township.db, peer.info.author)
    route = send.Route(township, scope, cert)
    with pytest.MonkeyPatch.context() as patch:  # one pass over the feeds, or lookups
        patch.setattr(send, "FEED_LOOKUPS", lookups)
        assert list(send._feeds_to_send(township, route, peer_frontier)) == list(
            feeds_by_the_old_scan(township, route, peer_frontier))


def test_an_author_whose_stored_certificate_does_not_read_is_read_like_one_without(held_tree):
    township = held_tree.township
    sibling = held_tree.sibling.info.author
    row = township.db.execute("select raw, sig from certs where subject = ?",
                              [sibling]).fetchone()
    township.db.execute("update certs set raw = ? where subject = ?", [b"garbage", sibling])
    try:
        index = Authority(township.db).index()
        assert sibling not in index.valid
        assert sibling in Authority(township.db).unscoped()
        for scope in AREAS:
            route = send.Route(township, scope)
            assert list(send._feeds_to_send(township, route, {})) == list(
                feeds_by_the_old_scan(township, route, {}))
    finally:
        township.db.execute("update certs set raw = ?, sig = ? where subject = ?",
                            [row[0], row[1], sibling])


# -- a compact hello sends exactly what is missing -----------------------------------------


class Stand:
    """A server's feeds table and nothing else: what a hello's frontier is read from."""

    def __init__(self, rows):
        self.db = sqlite_utils.Database(sqlite3.connect(":memory:"))
        self.db.execute("create table feeds (author text not null, epoch integer not null, "
                        "seq integer not null, head text not null, covered integer not null "
                        "default 0, primary key (author, epoch))")
        self.db.conn.executemany("insert into feeds values (?, ?, ?, '', ?)", rows)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("pair")
    built = build_tree(base / "tree", villages=1)
    for serial in range(1, 5):
        register(built.village, serial)
    carry(built.township, built.village, base)  # the village holds the township's feed too
    yield built
    built.close()


def seqs(top: int):
    return st.one_of(st.none(), st.integers(0, top + 2))


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_a_compact_hello_leads_to_exactly_the_events_the_parent_lacks(pair, data):
    village, township = pair.village, pair.township
    client = Client(village, "http://127.0.0.1:1")
    mine = frontier(village.db)
    stranger = "ab" * 32
    # what the parent holds: any seq of each of the village's feeds, and feeds it lacks
    held = {feed: data.draw(seqs(top), label=f"parent {feed[0][:6]}")
            for feed, top in sorted(mine.items())}
    held[(stranger, 0)] = data.draw(seqs(5), label="parent stranger")
    rows = [(a, e, s, data.draw(st.integers(0, s), label="covered") if s else 0)
            for (a, e), s in held.items() if s is not None]
    # what the village last heard: that, something else, or nothing
    told = data.draw(st.sampled_from(["as held", "other", "none"]))
    acked = ({(a, e): s for a, e, s, _ in rows} if told == "as held" else
             {} if told == "none" else {feed: data.draw(st.integers(0, 9)) for feed in held})
    with village.db.atomic():
        peers.record_ack(village, township.info.author, acked, "http")
    stand = Stand(rows)
    payload, known = client.hello_payload()
    theirs = frontier_from_wire(payload["frontier"])
    compact = hello_frontier(stand.db, theirs, payload["summary"], True)
    whole = hello_frontier(stand.db, theirs, None, False)
    assert "v" not in whole and frontier_from_wire(whole["frontier"]) == frontier(stand.db)

    parent_holds = frontier(stand.db)
    got = client.their_frontier(compact, known)
    assert got == {feed: seq for feed, seq in parent_holds.items() if feed in mine}
    assert client.their_frontier(whole, known) == parent_holds
    if told == "as held":
        assert compact["frontier"] == []  # the digest alone travelled
    assert len(compact["frontier"]) <= len(mine)

    def sent(theirs):
        return [e.id for page in send.pages_for(village, township.info.area, theirs)
                for e in page.events]

    lacking = [e.id for e in feed(village)
               if e.seq > parent_holds.get((village.info.author, 0), 0)]
    assert sent(got) == sent(parent_holds) == lacking


def test_a_compact_frontier_that_does_not_match_its_digest_is_refused(pair):
    client = Client(pair.village, "http://127.0.0.1:1")
    payload, known = client.hello_payload()
    with pytest.raises(SyncError, match="summary"):
        client.their_frontier({"v": PROTOCOL, "summary": summary({("ab" * 32, 0): 1}),
                               "frontier": [["ab" * 32, 0, 2]]}, known)
    with pytest.raises(SyncError, match="summary"):
        client.their_frontier({"v": PROTOCOL, "summary": 7, "frontier": []}, known)


class ReleaseOne(Client):
    """A client of release 1: its requests say no protocol version and hold no summary."""

    def request(self, payload):
        body = signed_request(self.node, {k: v for k, v in payload.items() if k != "summary"})
        return envelope.read_header(io.BytesIO(body), len(body))[1]["id"], body


class Recording(Client):
    """The protocol-2 client, keeping every answer it read."""

    def call(self, payload):
        answer = super().call(payload)
        self.answers = [*getattr(self, "answers", []), (payload["op"], answer)]
        return answer


def test_a_release_1_client_and_a_protocol_2_client_sync_alike_with_a_new_server(tree):
    township, village, sibling = tree.township, tree.village, tree.sibling
    for serial in (1, 2):
        register(village, serial)
        register(sibling, serial)
    with BackgroundServer(township.home) as server:
        new = Recording(village, server.url)
        assert new.sync().pushed == 2
        assert ReleaseOne(sibling, server.url).sync().pushed == 2
        again = Recording(village, server.url)
        assert again.sync().pushed == 0
    whole = frontier(township.db)
    pushes = [answer for op, answer in new.answers if op == "push"]
    assert pushes and all(answer["v"] == PROTOCOL for answer in pushes)
    assert all({(a, e) for a, e, _ in answer["frontier"]} == {(village.info.author, 0)}
               for answer in pushes)
    hellos = [answer for op, answer in again.answers if op == "hello"]
    assert hellos[0]["frontier"] == []  # nothing changed since: the digest alone
    for node in (village, sibling):
        assert {e.id for e in feed(node)} <= event_ids(township)
        status = {row.name: row for row in peers.status(node)}[township.info.name]
        assert status.pending == 0 and status.acknowledged == status.sent
    assert peers.ack(sibling, township.info.author) == whole  # release 1: the whole of it
    assert set(peers.ack(village, township.info.author)) <= set(frontier(village.db))
