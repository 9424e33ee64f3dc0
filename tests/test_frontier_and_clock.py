"""Claims no signature backs: frontier ranges, and clocks far in the future.

A page's ``ranges`` say how far a filtered feed is complete, on the
sender's word alone; an event's hybrid-clock timestamp is whatever its
author signed. Both are attacks waiting for a stolen key:

* a page claiming a feed its sender cannot know (a village claiming the
  county's feed at the township) is refused whole, and the county's later
  events still reach the township; a claim a parent may make but that runs
  past the feed's end (a stolen township key) is undone by the next honest
  sync; ranges that claim nothing or run past the largest sequence number
  are refused when the page is parsed;
* an event stamped near 2**53 is valid, but no node's clock follows it more
  than a day past its own wall clock, on arrival or on reopening, so the
  node goes on writing with increasing stamps that sort as written; a
  stamp at 2**53 - 1 would leave no later one and is refused as malformed;
* every part of a page and a frontier is type-checked: a malformed one is a
  named ``PageError``, never a ``TypeError`` or ``AttributeError``.

Everything is real: enrolled nodes, sealed bundles, waitress on loopback,
events and pages made by hand and signed with the nodes' own keys.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sync_helpers import (Tree, build_tree, carry, error_of, event_ids, feed, next_event, post,
                          quarantine, register, send_pages, serve, sign_raw, signed_request,
                          views, wire)
from xinfang.core import codec, store
from xinfang.core.errors import InvalidEvent
from xinfang.core.event import Event, order_key, order_key_ceiling, timestamp_of
from xinfang.core.hlc import MAX_COUNTER, MAX_DRIFT_MS, MAX_WALL_MS, HybridClock, Timestamp
from xinfang.core.hlc import wall_clock_ms
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Node
from xinfang.plugins.cases import api
from xinfang.sync import wire as wires
from xinfang.sync.http import Client
from xinfang.sync.wire import MAX_SEQ, Page, PageError, frontier, frontier_from_wire

TODAY = dt.date(2026, 11, 22)
HUGE = 10**12


@pytest.fixture
def tree(tmp_path) -> Tree:
    built = build_tree(tmp_path / "tree")
    yield built
    built.close()


def county_case(county: Node, area: str, request: str = "县里交办的事项") -> str:
    """A case the county registers for ``area``: an event of the county's feed there."""
    return api.register_case(county, api.CaseInput(
        petitioners=[api.PetitionerInput("钱某乙")], channel="来信", category="劳动社保",
        kind="申诉求决", request=request, received="2026-04-01", area=area), today=TODAY)


def case_ids(node: Node) -> set[str]:
    return {row[0] for row in node.db.execute("select id from cases")}


def county_feed(node: Node, county: Node) -> int:
    """How far ``node`` holds the county's feed, as its frontier says."""
    return frontier(node.db).get((county.info.author, 0), 0)


def stored_state(node: Node):
    """Everything a refused page must leave as it was."""
    return (views(node), event_ids(node), frontier(node.db), quarantine(node),
            node.db.execute("select * from feeds order by author, epoch").fetchall())


def claim(county: Node, end: int = HUGE, begin: int = 0) -> dict:
    """A page of no events declaring the county's feed complete up to ``end``."""
    return wire([], ranges=[(county.info.author, 0, begin, end)])


# -- frontier claims a page does not back ------------------------------------------------


def test_a_village_bundle_claiming_the_county_feed_is_refused_and_the_county_still_reaches_the_township(
        tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    county_case(county, township.info.area)
    carry(county, township, tmp_path)
    held = county_feed(township, county)
    assert held >= 1
    register(village, 1)
    before = stored_state(township)

    # a stolen village key claims the county's feed, beside one real event of its own
    own = feed(village)[-1]
    page = wire([own], certs_from=village, ranges=[(county.info.author, 0, 0, HUGE)])
    with pytest.raises(PageError) as refused:
        send_pages(village, township, [page], tmp_path)
    message = str(refused.value)
    assert "拒收数据页" in message and village.info.name in message
    assert county.info.name in message and str(HUGE) in message
    assert stored_state(township) == before, "a refused page changed the township's data"
    assert own.id not in event_ids(township)

    # the county's next events reach the township by a normal sync
    later = {county_case(county, township.info.area, "县里再次交办"),
             county_case(county, village.info.area, "县里交办村里的事项")}
    with serve(county) as url:
        assert Client(township, url).sync().pulled >= 2
    assert later <= case_ids(township)
    assert county_feed(township, county) == store.feed_head(county.db, county.info.author, 0)[0]


def test_a_village_http_push_claiming_the_county_feed_is_refused_400(tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    county_case(county, township.info.area)
    carry(county, township, tmp_path)
    before = stored_state(township)
    with serve(township) as url:
        status, body = post(url, signed_request(village, {"op": "push",
                                                          "page": claim(county)}))
    assert status == 400
    assert "拒收数据页" in error_of(body) and county.info.name in error_of(body)
    assert stored_state(township) == before

    later = county_case(county, township.info.area, "县里再次交办")
    assert carry(county, township, tmp_path).applied >= 1
    assert later in case_ids(township)


def test_the_township_key_cannot_claim_the_county_feed_at_the_county_nor_stop_its_pages(
        tree, tmp_path):
    """A stolen township key pushes a claim on the county's own feed, and pulls
    with a frontier claiming it up to 10**12, which the county keeps as the
    township's acknowledgement; the county's bundles still carry its news."""
    county, township = tree.county, tree.township
    county_case(county, township.info.area)
    carry(county, township, tmp_path)
    before = stored_state(county)
    bogus = [[county.info.author, 0, HUGE]]
    with serve(county) as url:
        status, body = post(url, signed_request(township, {"op": "push",
                                                           "page": claim(county)}))
        assert status == 400 and "拒收数据页" in error_of(body)
        status, _ = post(url, signed_request(township, {"op": "pull", "frontier": bogus}))
        assert status == 200
    assert stored_state(county) == before

    later = county_case(county, township.info.area, "县里再次交办")
    carry(county, township, tmp_path)  # built from the false acknowledgement
    assert later in case_ids(township)
    assert county_feed(township, county) == store.feed_head(county.db, county.info.author, 0)[0]


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_false_claim_from_a_stolen_parent_key_is_undone_by_the_next_honest_sync(
        tree, tmp_path, via):
    """The township may vouch for the county's feed at its village (it relays
    it), so its claim is taken; the honest township then finds the village
    claiming more than it holds and sends the feed again from its start."""
    county, township, village = tree.county, tree.township, tree.village
    first = county_case(county, village.info.area)
    carry(county, township, tmp_path)
    carry(township, village, tmp_path)
    assert first in case_ids(village)

    summary = send_pages(township, village, [claim(county, begin=county_feed(village, county))],
                         tmp_path)
    assert summary.refused == ()
    assert county_feed(village, county) == HUGE  # taken on the parent's word

    later = county_case(county, village.info.area, "县里再次交办")
    carry(county, township, tmp_path)
    if via == "bundle":
        carry(village, township, tmp_path)  # the village acknowledges its (false) frontier
        carry(township, village, tmp_path)
    else:
        with serve(township) as url:
            Client(village, url).sync()
    assert later in case_ids(village)
    head = store.feed_head(county.db, county.info.author, 0)[0]
    assert county_feed(village, county) == head
    # and the sync after that is quiet again
    with serve(township) as url:
        again = Client(village, url).sync()
    assert (again.pushed, again.pulled) == (0, 0)


def test_a_replayed_page_after_a_reset_takes_nothing_away(tree, tmp_path):
    """A range from seq 0 that ends below what the village holds lowers only the
    unbacked part of its frontier: nothing it holds is lost, and a later sync
    brings it back to the feed's end."""
    county, township, village = tree.county, tree.township, tree.village
    cases = {county_case(county, village.info.area, f"县里交办{n}") for n in range(3)}
    county_case(county, tree.sibling.info.area, "县里交办邻村的事项")  # not the village's
    carry(county, township, tmp_path)
    carry(township, village, tmp_path)
    head = store.feed_head(county.db, county.info.author, 0)[0]
    assert county_feed(village, county) == head
    held = event_ids(village)
    send_pages(township, village, [claim(county, end=1)], tmp_path)
    assert event_ids(village) == held and cases <= case_ids(village)
    highest = store.feed_head(village.db, county.info.author, 0)[0]
    assert county_feed(village, county) == highest < head  # back on the events it holds
    carry(village, township, tmp_path)
    assert carry(township, village, tmp_path).applied == 0
    assert county_feed(village, county) == head


@pytest.mark.parametrize("ranges, what", [
    ([["ab", 0, 0, 5]], "64 位十六进制"),
    ([[None, 0, 0, 5]], "64 位十六进制"),
    ([["a" * 64, 0, 0]], "不是 [作者, 纪元, 起点, 终点]"),
    ([["a" * 64, "0", 0, 5]], "不是 [作者, 纪元, 起点, 终点]"),
    ([["a" * 64, 0, True, 5]], "不是 [作者, 纪元, 起点, 终点]"),
    ([["a" * 64, 0, -1, 5]], "不是 [作者, 纪元, 起点, 终点]"),
    ([["a" * 64, -1, 0, 5]], "不是 [作者, 纪元, 起点, 终点]"),
    ([["a" * 64, 0, 0, 5.0]], "不是 [作者, 纪元, 起点, 终点]"),
    ([["a" * 64, 0, 0, MAX_SEQ + 1]], str(MAX_SEQ)),
    ([["a" * 64, 0, HUGE, HUGE]], "空范围"),
    ([["a" * 64, 0, 7, 3]], "空范围"),
    ([["a" * 64, 0, 0, 3], ["a" * 64, 0, 3, 5]], "重复列出"),
    ("ranges", "不是列表"),
    ([{"author": "a" * 64}], "不是 [作者, 纪元, 起点, 终点]"),
], ids=["short-author", "null-author", "three-parts", "text-epoch", "boolean", "negative-from",
        "negative-epoch", "float", "past-2**53", "empty-huge", "backwards", "twice", "not-a-list",
        "a-map"])
def test_a_malformed_range_refuses_the_page_by_name(ranges, what):
    data = {"events": [], "boxes": [], "certs": [], "ranges": ranges, "forks": []}
    with pytest.raises(PageError, match="数据页格式错误") as refused:
        Page.from_wire(data)
    assert what in str(refused.value)


def test_a_range_up_to_the_largest_sequence_number_parses():
    page = Page.from_wire({"events": [], "boxes": [], "certs": [],
                           "ranges": [["a" * 64, 0, 0, MAX_SEQ]]})
    assert page.ranges == (("a" * 64, 0, 0, MAX_SEQ),)


def test_malformed_ranges_are_refused_over_a_bundle_and_over_http(tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    before = stored_state(township)
    empty = {**claim(county), "ranges": [[county.info.author, 0, HUGE, HUGE]]}
    with pytest.raises(PageError, match="空范围"):
        send_pages(village, township, [empty], tmp_path)
    with serve(township) as url:
        status, body = post(url, signed_request(village, {"op": "push", "page": empty}))
    assert status == 400 and "空范围" in error_of(body)
    assert stored_state(township) == before


# -- every part of a page and a frontier, type-checked -------------------------------------


DIGEST, AUTHOR, DATA = "d" * 64, "a" * 64, "QUJD" * 20


@pytest.mark.parametrize("boxes, what", [
    ([[DIGEST, "510-2026-1", AUTHOR]], "四个字符串"),
    ([[DIGEST, "510-2026-1", AUTHOR, 5]], "四个字符串"),
    ([None], "四个字符串"),
    ([{"digest": DIGEST}], "四个字符串"),
    ([["D" * 64, "510-2026-1", AUTHOR, DATA]], "十六进制"),
    ([[DIGEST, "510-2026-1", "xyz", DATA]], "十六进制"),
    ([[DIGEST, "", AUTHOR, DATA]], "记录编号"),
    ([[DIGEST, "9" * 201, AUTHOR, DATA]], "记录编号"),
    ([[DIGEST, "510-2026-1", AUTHOR, "not base64!"]], "base64"),
    ([[DIGEST, "510-2026-1", AUTHOR, "QUJD"]], "太短"),
    ([[DIGEST, "510-2026-1", AUTHOR, "QUJD" * 10_000]], "字节"),
    ({"a": 1}, "不是列表"),
], ids=["three-parts", "number-data", "null", "a-map", "upper-case-digest", "bad-recipient",
        "empty-record", "long-record", "not-base64", "short-box", "long-box", "not-a-list"])
def test_a_malformed_sealed_box_refuses_the_page_by_name(boxes, what):
    data = {"events": [], "boxes": boxes, "certs": [], "ranges": []}
    with pytest.raises(PageError, match="数据页格式错误") as refused:
        Page.from_wire(data)
    assert what in str(refused.value)


@pytest.mark.parametrize("data, what", [
    (None, "映射"), ([], "映射"), ("page", "映射"),
    ({"boxes": [], "certs": [], "ranges": []}, "缺少“events”"),
    ({"events": [], "certs": [], "ranges": []}, "缺少“boxes”"),
    ({"events": {}, "boxes": [], "certs": [], "ranges": []}, "“events”不是列表"),
    ({"events": [], "boxes": [], "certs": "x", "ranges": []}, "“certs”不是列表"),
    ({"events": [], "boxes": [], "certs": [], "ranges": [], "forks": None}, "“forks”不是列表"),
    ({"events": [], "boxes": [], "certs": [], "ranges": [], "forks": [[1]]}, "分叉证据"),
    ({"events": [], "boxes": [], "certs": [], "ranges": [], "forks": [7]}, "分叉证据"),
])
def test_a_malformed_page_is_refused_by_name(data, what):
    with pytest.raises(PageError) as refused:
        Page.from_wire(data)
    assert what in str(refused.value)


@pytest.mark.parametrize("data", [
    None, {"a": 1}, "frontier", [["a" * 64, 0]], [["a" * 64, "0", 1]], [["a" * 64, 0, True]],
    [["a" * 64, 0, -1]], [["a" * 64, 0, MAX_SEQ + 1]], [["x", 0, 1]], [[None, 0, 1]],
    [["a" * 64, 0, 1], ["a" * 64, 0, 2]], [7],
])
def test_a_malformed_frontier_is_refused_by_name(data):
    with pytest.raises(PageError, match="同步进度格式错误"):
        frontier_from_wire(data)


def test_a_real_frontier_reads_back_as_it_was(tree, tmp_path):
    register(tree.village, 1)
    carry(tree.village, tree.township, tmp_path)
    held = frontier(tree.township.db)
    assert frontier_from_wire(wires.frontier_to_wire(held)) == held


def test_an_honest_sender_never_writes_an_empty_range(tree, tmp_path):
    """A page that fills up exactly at the end of one feed, with the next feed's
    first event waiting: the page carries no range for that next feed (there is
    nothing it could claim of it) and every page parses at the receiver."""
    county, township = tree.county, tree.township
    register(tree.village, 1)
    register(tree.sibling, 2)
    register(township, 3)
    carry(tree.village, township, tmp_path)
    carry(tree.sibling, township, tmp_path)
    nodes = sorted((township, tree.village, tree.sibling), key=lambda n: n.info.author)
    first, rest = nodes[0], nodes[1:]
    with first.db.atomic():
        while len(feed(first)) < wires.MAX_PAGE_EVENTS:
            register(first, len(feed(first)) % 999 + 1)
    if first is not township:
        carry(first, township, tmp_path)
    from xinfang.sync.send import pages_for
    pages = list(pages_for(township, county.info.area, frontier(county.db)))
    assert len(pages[0].events) == wires.MAX_PAGE_EVENTS
    assert {e.author for e in pages[0].events} == {first.info.author}
    assert [r[0] for r in pages[0].ranges] == [first.info.author]
    assert {e.author for e in pages[1].events} == {n.info.author for n in rest}
    for page in pages:
        assert Page.from_wire(page.to_wire()).ranges == page.ranges
    assert carry(township, county, tmp_path).applied == sum(len(p.events) for p in pages)


# -- clocks far in the future ------------------------------------------------------------


def far_case(author: Node, area: str, wall: int = MAX_WALL_MS, counter: int = 7) -> Event:
    """A valid ``case.register`` for ``area`` signed with ``author``'s real key, stamped
    ``wall`` milliseconds (the year 285,000 by default), stored nowhere."""
    body = next(e.body for e in feed(author) if e.type == "case.register")
    return next_event(author, hlc=[wall, counter], area=area, body=body)


def near_now(stamp: Timestamp, before: int) -> bool:
    """Stamped by this machine's clock (within the drift a peer may carry it)."""
    return before <= stamp.wall_ms <= wall_clock_ms() + MAX_DRIFT_MS


def test_a_far_future_event_is_valid_and_the_village_writes_on_in_order(tree, tmp_path):
    township, village = tree.township, tree.village
    register(township, 1, area=village.info.area)
    carry(township, village, tmp_path)
    start = wall_clock_ms()

    far = far_case(township, village.info.area)
    held = store.feed_head(village.db, township.info.author, 0)[0]
    summary = send_pages(township, village, [wire([far], certs_from=township,
                                                  ranges=[(township.info.author, 0, held,
                                                           far.seq)])], tmp_path)
    assert (summary.applied, summary.refused) == (1, ())
    assert far.entity_id in case_ids(village)  # valid: folded like any other
    assert near_now(village.clock.last, 0) and village.clock.last < far.hlc

    mine = [register(village, 1), register(village, 2, request="请求调解邻里纠纷")]
    api.take_step(village, mine[0], "accept", {}, today=TODAY)
    api.take_step(village, mine[0], "answer", {"outcome": "explain"}, today=TODAY)
    own = feed(village)
    assert len(own) == 4
    assert all(near_now(e.hlc, start) for e in own)
    assert [e.hlc for e in own] == sorted(e.hlc for e in own) and len({e.hlc for e in own}) == 4
    keys = [e.order_key for e in own]
    assert keys == sorted(keys) and max(keys) < far.order_key
    assert [e.id for e in store.all_events(village.db)][-1] == far.id
    assert api.get_case(village, mine[0], reveal=False).status == "answered"
    assert village.db.execute("select count(*) from conflicts").fetchone() == (0,)

    # reopened, the village restores its own last stamp, not the far one
    village.close()
    reopened = Node.open(village.home, pm=village.pm)
    tree.villages[0] = reopened
    assert own[-1].hlc <= reopened.clock.last < far.hlc
    register(reopened, 3)
    newest = feed(reopened)[-1]
    assert own[-1].order_key < newest.order_key < far.order_key and near_now(newest.hlc, start)

    # and its events travel up as usual
    carry(reopened, township, tmp_path)
    assert {e.id for e in feed(reopened)} <= event_ids(township)


def test_a_far_future_event_pushed_to_the_township_does_not_drag_its_clock_even_on_reopening(
        tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    register(village, 1)
    carry(village, township, tmp_path)
    far = far_case(village, village.info.area)
    with serve(township) as url:
        status, _ = post(url, signed_request(village, {"op": "push",
                                                       "page": wire([far], certs_from=village)}))
    assert status == 200
    assert far.id in event_ids(township)
    start = wall_clock_ms()

    township.close()
    reopened = Node.open(township.home, pm=township.pm)
    tree.township = reopened
    assert near_now(reopened.clock.last, 0)
    case_id = register(reopened, 2, area=village.info.area)
    stamped = feed(reopened)[-1]
    assert stamped.entity_id == case_id and near_now(stamped.hlc, start)
    assert stamped.order_key < far.order_key

    # the county takes both, and writes on near its own clock
    carry(reopened, county, tmp_path)
    assert {far.id, stamped.id} <= event_ids(county)
    assert near_now(county.clock.last, 0)
    county_case(county, village.info.area)
    assert near_now(feed(county)[-1].hlc, start)


def hand_made(author: Node, hlc) -> bytes:
    """The bytes of a ``case.register`` with any ``hlc``, never passed through a check."""
    event = feed(author)[0]
    content = codec.decode(event.raw)
    return codec.encode({**content, "seq": 2, "prev": event.id, "hlc": hlc,
                         "id": f"{author.info.area}-2026-90002"})


def test_an_hlc_at_2_53_minus_1_is_refused_as_malformed_everywhere(tree, tmp_path):
    township, village = tree.township, tree.village
    register(village, 1)
    carry(village, township, tmp_path)
    raw = hand_made(village, [MAX_WALL_MS + 1, 0])
    assert MAX_WALL_MS + 1 == codec.MAX_SAFE_INT == 2**53 - 1
    signed = sign_raw(village.keys, raw)

    with pytest.raises(InvalidEvent, match="hlc 时间 9007199254740991 之后已无可用的时间戳"):
        Event.from_wire(signed)
    with pytest.raises(InvalidEvent, match="hlc"):
        Event.create(village.keys, epoch=0, seq=1, prev=None, hlc=Timestamp(MAX_WALL_MS + 1),
                     type="case.note", entity="case", entity_id="x", area=village.info.area,
                     body={})
    before = stored_state(township)
    page = {"events": [signed], "boxes": [], "certs": [], "ranges": []}
    with pytest.raises(PageError, match="数据页含格式错误的事件.*hlc"):
        send_pages(village, township, [page], tmp_path)
    with serve(township) as url:
        status, body = post(url, signed_request(village, {"op": "push", "page": page}))
    assert status == 400 and "hlc 时间" in error_of(body)
    assert stored_state(township) == before
    # one step below is an event like any other
    assert Event.parse(hand_made(village, [MAX_WALL_MS, MAX_COUNTER]),
                       b"\0" * 64).hlc == Timestamp(MAX_WALL_MS, MAX_COUNTER)


def test_the_clock_follows_a_peer_only_within_the_drift():
    now = [1_000_000]
    clock = HybridClock(now_ms=lambda: now[0])
    clock.tick()
    clock.observe(Timestamp(now[0] + MAX_DRIFT_MS, 3))   # a machine a day fast: followed
    assert clock.last == Timestamp(now[0] + MAX_DRIFT_MS, 3)
    assert clock.tick() == Timestamp(now[0] + MAX_DRIFT_MS, 4)
    clock.observe(Timestamp(MAX_WALL_MS, MAX_COUNTER))   # the year 285,000: not followed
    assert clock.last == Timestamp(now[0] + MAX_DRIFT_MS, 4)
    now[0] += 2 * MAX_DRIFT_MS
    stamp = clock.tick()
    assert stamp == Timestamp(now[0], 0)
    # a server that never stamps, days after its last reading, still follows an honest clock
    now[0] += 3 * MAX_DRIFT_MS
    clock.observe(Timestamp(now[0] + 5, 0))
    assert clock.last == Timestamp(now[0] + 5, 0)


def test_a_node_restores_its_own_stamp_however_far_its_clock_went_back():
    clock = HybridClock(now_ms=lambda: 0)
    clock.read_wall()
    own = Timestamp(1_800_000_000_000, 9)
    clock.observe(own)
    assert clock.last == Timestamp(0, 0)  # from a peer, this would be decades ahead
    clock.restore(own)
    assert clock.tick() == Timestamp(own.wall_ms, 10)


def test_order_keys_of_far_walls_sort_after_near_ones_and_among_themselves():
    author = NodeKeys.generate().author
    walls = [0, 1_796_000_000_000, 10**15 - 1, 10**15, 10**15 + 1, 2**52, MAX_WALL_MS]
    stamps = [Timestamp(w, c) for w in walls for c in (0, MAX_COUNTER)]
    keys = [order_key(ts, author, 0, 1) for ts in stamps]
    assert keys == sorted(keys)
    assert [timestamp_of(k) for k in keys] == stamps
    for ts, key in zip(stamps, keys):
        assert key < order_key_ceiling(ts)
        later = [k for k in keys if timestamp_of(k) > ts]
        assert all(order_key_ceiling(ts) < k for k in later)
    # keys written before this change keep their form: 15 digits for every wall
    # time of this millennium
    assert order_key(Timestamp(1_796_000_000_000, 5), author, 0, 1).startswith(
        "001796000000000.0000000005.")
