"""Adversarial sync (DESIGN invariants 2, 3, 5, 6 and 7).

Every bad input below is REFUSED, COUNTED and REPORTED WITH ITS REASON:

* refused: nothing of it reaches the receiver's views; the good events in
  the same page still apply, so the receiver's views end exactly as those of
  a copy of it that was sent only the good events;
* counted: the import summary / push answer lists it, and ``sync status``
  counts it under 'refused_from_peer';
* reported: the receiver's ``quarantine`` table (``xinfang quarantine list``)
  holds it with its reason, and where a transport carried it, the next
  exchange tells the sender, whose ``peer_refusals`` table (``xinfang sync
  status`` 'refused_by_peer') then shows it.

A whole page or file that cannot be parsed (damaged bundle, oversized or
non-canonical event, too many events) is refused as a whole, with an error
naming what was wrong and nothing applied.

Real nodes in temporary directories, real Ed25519/X25519 keys, real bundle
files and a real waitress server on 127.0.0.1; nothing is mocked. Names and
ID numbers are synthetic.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import (COUNTY, OPERATOR, TODAY, Tree, build_tree, carry, copy_node, enrol,
                          error_of, event_ids, excluded_ids, feed, fingerprint, new_node,
                          next_event, open_reply, peer_refusals, post, quarantine, register,
                          send_pages, serve, sign_raw, signed_request, synthetic_id, views, wire)
from xinfang.cli.main import build_cli
from xinfang.core import codec, i18n, verify
from xinfang.core.certs import Certificate
from xinfang.core.errors import InvalidEvent, InvalidInput, NotFound
from xinfang.core.event import MAX_EVENT_BYTES, Event
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api
from xinfang.sync import bundle, envelope, trust
from xinfang.sync.envelope import EnvelopeError
from xinfang.sync.http import Client
from xinfang.sync.receive import apply_page
from xinfang.sync.send import pages_for
from xinfang.sync.wire import MAX_PAGE_BYTES, MAX_PAGE_EVENTS, Page, PageError, frontier

#: small-order points: the identity (0, 1), (0, -1) of order 2, and u = 0 / u = p - 1
IDENTITY = "01" + "00" * 31
MINUS_ONE = "ec" + "ff" * 30 + "7f"
ZERO = "00" * 32


@pytest.fixture
def tree(tmp_path) -> Tree:
    built = build_tree(tmp_path / "tree")
    yield built
    built.close()


def apply_good_only(reference: Node, good: list[Event], certs_from: Node) -> None:
    if good:
        result = apply_page(reference, Page.from_wire(wire(good, certs_from=certs_from)))
        assert not result.refused, result.refused


def cli_json(node: Node, *args: str):
    """The real ``xinfang`` command against ``node``'s directory, ``--json`` output."""
    result = CliRunner().invoke(build_cli(get_plugin_manager()),
                                ["--home", str(node.home), "--operator", OPERATOR, *args,
                                 "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def status_of(node: Node, peer: Node) -> dict:
    """The ``xinfang sync status --json`` row about ``peer``."""
    rows = [r for r in cli_json(node, "sync", "status") if r["area"] == peer.info.area]
    assert len(rows) == 1, rows
    return rows[0]


# -- bad events, delivered over a bundle and over HTTP ---------------------------


def forged_signature(tree: Tree):
    """Signed by the sibling village's key, naming this village as its author."""
    return next_event(tree.village, signer=tree.sibling.keys), "签名无效"


def altered_body(tree: Tree):
    """The village's real next event, one character of the body changed after signing."""
    register(tree.village, 2, request="请求追讨拖欠工资二")
    real = feed(tree.village)[-1]
    raw = real.raw.replace("工资二".encode(), "工资三".encode())
    assert raw != real.raw and len(raw) == len(real.raw)
    return Event.parse(raw, real.signature), "签名无效"


def outside_area(tree: Tree):
    """A village key writing a case for the sibling village's area."""
    return next_event(tree.village, area=tree.sibling.info.area,
                      entity_id=f"{tree.sibling.info.area}-2026-90002"), "超出辖区"


def gap(tree: Tree):
    """Seq 3 of the village's feed without seq 2."""
    register(tree.village, 2)
    register(tree.village, 3)
    return feed(tree.village)[2], "缺号："


BAD_EVENTS = [forged_signature, altered_body, outside_area, gap]


@pytest.mark.parametrize("via", ["bundle", "http"])
@pytest.mark.parametrize("make_bad", BAD_EVENTS, ids=[f.__name__ for f in BAD_EVENTS])
def test_bad_event_is_refused_counted_and_reported(tree, tmp_path, make_bad, via):
    village, township = tree.village, tree.township
    register(village, 1)
    good = [feed(village)[0]]
    bad, reason = make_bad(tree)
    assert bad.author == village.info.author and bad.id not in event_ids(township)
    reference = copy_node(township, tmp_path / "reference")
    page = wire([*good, bad], certs_from=village)

    if via == "bundle":
        summary = send_pages(village, township, [page], tmp_path)
        assert summary.applied == 1
        refused = {r.event_id: r.reason for r in summary.refused}
    else:
        with serve(township) as url:
            status, body = post(url, signed_request(village, {"op": "push", "page": page}))
            assert status == 200, body
            answer = open_reply(village, body)
        assert answer["applied"] == 1
        refused = dict(answer["refused"])

    # refused, with its reason, and counted
    assert list(refused) == [bad.id]
    assert reason in i18n.show(refused[bad.id])
    # reported: the receiver's quarantine (and the CLI's list of it) names the reason
    row = quarantine(township)[bad.id]
    assert reason in i18n.show(row["reason"]) and row["peer"] == village.info.author
    assert (row["author"], row["epoch"], row["seq"]) == (bad.author, bad.epoch, bad.seq)
    listed = {r["event_id"]: r for r in cli_json(township, "quarantine", "list")}
    assert reason in listed[bad.id]["reason"]
    assert listed[bad.id]["author_name"] == village.info.name
    assert status_of(township, village)["refused_from_peer"] == 1
    # nothing of the bad event reached the views; the good event in the page did
    apply_good_only(reference, good, village)
    assert views(township) == views(reference)
    assert bad.id not in event_ids(township) and good[0].id in event_ids(township)
    reference.close()

    # the next exchange tells the sender
    assert peer_refusals(village) == {}
    if via == "bundle":
        carry(township, village, tmp_path)
    else:
        # the report arrives with the parent's hello, before anything is pushed
        # (a push of the missing events would heal a gap in the same sync)
        with serve(township) as url:
            client = Client(village, url)
            client._reports(client.call({"op": "hello", "frontier": []}))
    assert reason in i18n.show(peer_refusals(village, township)[bad.id])
    assert status_of(village, township)["refused_by_peer"] == 1


# -- revocation ------------------------------------------------------------------


def test_revoked_key_is_refused_everywhere_after_the_last_good_event(tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    first = register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    before_late = copy_node(township, tmp_path / "township-before-late-event")

    # seq 2 reaches the township before anyone knows the key is compromised
    late = register(village, 2, request="被盗用密钥写入的诉求")
    late_event = feed(village)[1]
    assert carry(village, township, tmp_path).applied == 1
    assert api.get_case(township, late, reveal=False).id == late

    county.append(Draft("trust.revoke", "trust", village.info.author, village.info.area,
                        {"epoch": 0, "seq": 1, "reason": "测试：村站电脑被盗"}))
    county_views = views(county)

    # the township relays seq 2 up: the county, which wrote the revocation, refuses it
    up = carry(township, county, tmp_path)
    assert [r.event_id for r in up.refused] == [late_event.id]
    assert "密钥已吊销" in i18n.show(up.refused[0].reason)
    assert "密钥已吊销" in i18n.show(quarantine(county)[late_event.id]["reason"])
    assert views(county) == county_views

    # the revocation travels down: the township keeps the seq 2 it holds in its log,
    # excluded from the views (the log is never rewritten), and hears that the county
    # refused it
    down = carry(county, township, tmp_path)
    assert down.applied == 2  # the revocation, and the county's case.tag of the first case
    assert late_event.id in excluded_ids(township)
    excluded = {e.event_id: e.reason for e in verify.excluded_events(township.db)}
    assert "密钥已吊销" in i18n.show(excluded[late_event.id])
    assert "密钥已吊销" in i18n.show(peer_refusals(township, county)[late_event.id])
    with pytest.raises(NotFound):
        api.get_case(township, late, reveal=False)
    # exactly as if seq 2 had never arrived: a copy from before it, sent the same pages
    for page in pages_for(county, township.info.area, frontier(before_late.db)):
        assert not apply_page(before_late, page).refused
    assert views(township) == views(before_late)
    before_late.close()

    # what the key signed up to the point stays valid on both
    for node in (township, county):
        assert api.get_case(node, first, reveal=False).id == first
        assert feed(node, village.info.author)[0].seq == 1

    # a later event of the revoked key is refused, counted and reported back
    later = next_event(village, seq=3, prev=late_event.id)
    township_views = views(township)
    summary = send_pages(village, township, [wire([late_event, later], certs_from=village)],
                         tmp_path)
    assert summary.applied == 0
    # seq 2 the township holds already (excluded): a duplicate; seq 3 is refused
    assert {r.event_id for r in summary.refused} == {later.id}
    assert all("密钥已吊销" in i18n.show(r.reason) for r in summary.refused)
    assert views(township) == township_views
    assert status_of(township, village)["refused_from_peer"] == 1
    county_views = views(county)
    direct = apply_page(county, Page.from_wire(wire([late_event, later],
                                                    certs_from=village)))
    assert direct.applied == 0 and all("密钥已吊销" in i18n.show(r.reason)
                                       for r in direct.refused)
    assert views(county) == county_views
    # and nothing more is exported to the revoked key, whose holder may be the thief
    with pytest.raises(trust.TrustError, match="不再向其导出数据包"):
        carry(township, village, tmp_path)


# -- certificates ----------------------------------------------------------------


def test_certificate_wider_than_its_issuer_is_refused(tree, tmp_path):
    county, township = tree.county, tree.township
    rogue = NodeKeys.generate()
    outside = "431202102201"  # a village under another township
    for area, level in ((outside, "village"), ("431202", "county"), ("431202101", "township")):
        wide = Certificate.issue(township.keys, subject=rogue.author,
                                 encryption=rogue.encryption_public, area=area, level=level,
                                 name="越权签发的村站")
        chain = [wide, *trust.chain_of(county.db, township.info.author)]
        with pytest.raises(trust.TrustError, match="宽于或等于其签发者"):
            trust.validate_chain(chain)

    wide = Certificate.issue(township.keys, subject=rogue.author,
                             encryption=rogue.encryption_public, area=outside, level="village",
                             name="越权签发的村站")
    hlc = county.clock.tick()
    event = Event.create(rogue, epoch=0, seq=1, prev=None, hlc=hlc, type="case.register",
                         entity="case", entity_id=f"{outside}-2026-00001", area=outside,
                         body=_register_body(tree))
    county_views = views(county)
    page = Page([event], (), [wide, *trust.chain_of(county.db, township.info.author)]).to_wire()
    summary = send_pages(township, county, [page], tmp_path)
    assert summary.applied == 0
    assert len(summary.refused) == 1 and "作者不明" in i18n.show(summary.refused[0].reason)
    assert trust.Authority(county.db).scope(rogue.author) is None
    assert "作者不明" in i18n.show(quarantine(county)[event.id]["reason"])
    assert views(county) == county_views
    carry(county, township, tmp_path)
    assert "作者不明" in i18n.show(peer_refusals(township, county)[event.id])

    # an honest parent refuses to sign it in the first place
    request = trust.EnrolmentRequest(b"{}", b"", rogue.author, rogue.encryption_public,
                                     outside, "village", "越权签发的村站")
    with pytest.raises(trust.TrustError, match="不在本节点辖区 431202101 之内"):
        trust.sign_request(township, request)


def test_wide_certificate_for_a_real_key_does_not_shadow_its_genuine_certificate(tree, tmp_path):
    """A rogue township names a real village of another township in a too-wide
    certificate and gets it to the county first; the genuine chain that comes
    later through the village's own township must still be honoured."""
    county = tree.county
    township2 = new_node(tmp_path / "township2", "township", "431202102", "示例二镇信访办")
    enrol(township2, county)
    village3 = new_node(tmp_path / "village3", "village", "431202102201", "示例二镇示例一村信访站")
    enrol(village3, township2)
    try:
        case_id = register(village3, 7)
        wide = Certificate.issue(tree.township.keys, subject=village3.info.author,
                                 encryption=village3.info.encryption, area=village3.info.area,
                                 level="village", name="冒名的村站")
        page = Page([], (), [wide]).to_wire()
        send_pages(tree.township, county, [page], tmp_path)
        assert trust.Authority(county.db).scope(village3.info.author) is None

        carry(village3, township2, tmp_path)
        summary = carry(township2, county, tmp_path)
        assert summary.refused == (), [r.reason for r in summary.refused]
        assert summary.applied == 2  # the case, and township2's trust.certify of village3
        assert api.get_case(county, case_id, reveal=False).area == village3.info.area
    finally:
        township2.close()
        village3.close()


def test_uncertified_callers_chain_does_not_shadow_a_genuine_certificate(tree, tmp_path):
    """Anyone who can reach the county's port sends a request carrying a chain
    of their own: a self-signed 'root' and a certificate for a real village's
    public key (public keys travel in clear, in every bundle header). The
    request is refused (403), and must leave nothing behind: the village's
    genuine chain, arriving later through its township, is still honoured."""
    county, township, village = tree.county, tree.township, tree.village
    attacker = NodeKeys.generate()
    fake_root = Certificate.issue(attacker, subject=attacker.author,
                                  encryption=attacker.encryption_public, area=COUNTY[0],
                                  level="county", name="冒充的县")
    fake = Certificate.issue(attacker, subject=village.info.author,
                             encryption=village.info.encryption, area=village.info.area,
                             level="village", name="冒名的村站")
    chain = [c.to_wire() for c in (fake, fake_root)]
    body = envelope.seal(attacker, county.info.author, county.info.encryption, "request",
                         {"op": "hello", "frontier": [], "chain": chain},
                         extra={"sent": int(time.time() * 1000)})
    with serve(county) as url:
        status, answer = post(url, body)
    assert status == 403 and "不是本节点下属的已认证节点" in error_of(answer)

    case_id = register(village, 1)
    carry(village, township, tmp_path)
    summary = carry(township, county, tmp_path)
    assert summary.refused == (), [r.reason for r in summary.refused]
    assert api.get_case(county, case_id, reveal=False).area == village.info.area


def _register_body(tree: Tree) -> dict:
    register(tree.sibling, 50)
    return feed(tree.sibling)[-1].body


@pytest.mark.parametrize("subject, encryption, what", [
    (IDENTITY, None, "签名密钥"), (MINUS_ONE, None, "签名密钥"), (ZERO, None, "签名密钥"),
    (None, IDENTITY, "加密密钥"), (None, MINUS_ONE, "加密密钥"),
    (None, ZERO, "加密密钥"),
])
def test_small_order_keys_are_refused_at_enrolment(tree, subject, encryption, what):
    township = tree.township
    honest = NodeKeys.generate()
    subject = subject or honest.author
    encryption = encryption or honest.encryption_public
    request = trust.EnrolmentRequest(b"{}", b"", subject, encryption, "431202101209", "village",
                                     "弱密钥村站")
    certs_before = township.db.execute("select count(*) from certs").fetchone()[0]
    with pytest.raises(InvalidInput, match=f"{what} .* 的阶过小，不予接受"):
        trust.sign_request(township, request)
    assert township.db.execute("select count(*) from certs").fetchone()[0] == certs_before


def test_identity_key_request_whose_signature_verifies_is_still_refused(tree):
    """With the identity point as public key, S = 1 and R = the base point verify
    any message: the request file passes its signature check, and only the
    small-order check stands between it and a certificate."""
    content = {"v": 1, "subject": IDENTITY, "encryption": NodeKeys.generate().encryption_public,
               "area": "431202101209", "level": "village", "name": "弱密钥村站"}
    raw = codec.encode(content)
    base_point = bytes.fromhex("58" + "66" * 31)
    signature = base_point + (1).to_bytes(32, "little")
    text = json.dumps({"enrolment_request": [base64.b64encode(raw).decode(),
                                             base64.b64encode(signature).decode()]})
    request = trust.EnrolmentRequest.from_json(text)  # any signature "verifies" for this key
    with pytest.raises(InvalidInput, match="阶过小"):
        trust.sign_request(tree.township, request)
    assert trust.certificate(tree.township.db, IDENTITY) is None


# -- replays ---------------------------------------------------------------------


def test_replayed_page_changes_nothing(tree):
    village, township = tree.village, tree.township
    register(village, 1)
    register(village, 2)
    page = Page.from_wire(wire(feed(village), certs_from=village))
    first = apply_page(township, page, peer=village.info.author)
    assert (first.applied, first.duplicates, first.refused) == (2, 0, ())
    state = (views(township), frontier(township.db), event_ids(township))
    again = apply_page(township, page, peer=village.info.author)
    assert (again.applied, again.duplicates, again.refused) == (0, 2, ())
    assert (views(township), frontier(township.db), event_ids(township)) == state
    assert quarantine(township) == {}


def test_replayed_bundle_is_refused(tree, tmp_path):
    register(tree.village, 1)
    path = tmp_path / "once.xfb"
    bundle.export_bundle(tree.village, tree.township.info.name, path)
    assert bundle.import_bundle(tree.township, path).applied == 1
    state = views(tree.township)
    with pytest.raises(EnvelopeError, match="已于 .* 导入，无需再次导入"):
        bundle.import_bundle(tree.township, path)
    assert views(tree.township) == state


def test_replayed_signed_http_request_is_refused_409(tree):
    village, township = tree.village, tree.township
    register(village, 1)
    body = signed_request(village, {"op": "push", "page": wire(feed(village), certs_from=village)})
    with serve(township) as url:
        status, answer = post(url, body)
        assert status == 200 and open_reply(village, answer)["applied"] == 1
        state = (views(township), event_ids(township))
        status, answer = post(url, body)
    assert status == 409
    assert "重放的请求" in error_of(answer)
    assert (views(township), event_ids(township)) == state


@pytest.mark.parametrize("skew_seconds", [-600, 600])
def test_request_with_a_timestamp_ten_minutes_off_is_refused_401(tree, skew_seconds):
    village, township = tree.village, tree.township
    register(village, 1)
    state = (views(township), event_ids(township))
    sent = int((time.time() + skew_seconds) * 1000)
    body = signed_request(village, {"op": "push", "page": wire(feed(village), certs_from=village)},
                          sent_ms=sent)
    with serve(township) as url:
        status, answer = post(url, body)
    assert status == 401
    assert "时间戳" in error_of(answer)
    assert (views(township), event_ids(township)) == state


# -- forks and gaps --------------------------------------------------------------


def _fork(tree: Tree, tmp_path: Path) -> tuple[Node, Event, Event]:
    """The village and a copy of its directory each write their own seq 2."""
    village = tree.village
    register(village, 1)
    copy = copy_node(village, tmp_path / "village-copy")
    register(village, 2, request="甲：请求解决宅基地纠纷")
    register(copy, 2, request="乙：请求追讨土地补偿款")
    a, b = feed(village)[1], feed(copy)[1]
    assert (a.author, a.epoch, a.seq) == (b.author, b.epoch, b.seq) and a.id != b.id
    return copy, a, b


def test_fork_is_quarantined_as_evidence_and_freezes_the_feed(tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    copy, a, b = _fork(tree, tmp_path)
    first = feed(village)[0]
    carry(township, county, tmp_path)

    # the township sees a then b, by bundle; the county sees b then a, page by page
    assert carry(village, township, tmp_path).applied == 2
    summary = carry(copy, township, tmp_path)
    assert [r.event_id for r in summary.refused] == [b.id]
    assert "分叉" in i18n.show(summary.refused[0].reason)
    for event in (b, a):
        apply_page(county, Page.from_wire(wire([first, event], certs_from=village)))

    for node in (township, county):
        held = quarantine(node)
        assert {a.id, b.id} <= set(held) | excluded_ids(node), node.info.name
        assert any("分叉" in i18n.show(held[e]["reason"]) for e in (a.id, b.id) if e in held)
        # the log keeps the branch it stored, excluded from the views
        assert not {a.id, b.id} & (event_ids(node) - excluded_ids(node))
        assert {a.id, b.id} & event_ids(node) <= excluded_ids(node)
        assert node.db.execute("select seq from frozen_feeds where author = ?",
                               [village.info.author]).fetchone() == (2,)
    assert views(township) == views(county)

    # frozen from the fork point: a later event of either branch is refused too
    register(village, 3)
    summary = carry(village, township, tmp_path)
    assert summary.applied == 0
    assert "作者链冻结" in i18n.show(summary.refused[-1].reason)
    # and the sender hears of the fork at the next exchange
    carry(township, village, tmp_path)
    reported = peer_refusals(village, township)
    assert "作者链冻结" in i18n.show(reported[feed(village)[2].id])
    copy.close()


def test_fork_evidence_reaches_a_node_that_already_holds_one_branch(tree, tmp_path):
    """The township relays branch a to the county, then sees branch b. Both
    hold the same feed, so both must end frozen with the same views."""
    county, township, village = tree.county, tree.township, tree.village
    copy, a, b = _fork(tree, tmp_path)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    assert a.id in event_ids(county)
    carry(copy, township, tmp_path)
    for _ in range(2):
        carry(township, county, tmp_path)
        carry(county, township, tmp_path)
    assert a.id in excluded_ids(township)
    assert a.id in excluded_ids(county), "the county still shows the forked branch"
    assert views(county) == views(township)
    copy.close()


def test_gap_is_refused_then_filled(tree, tmp_path):
    village, township = tree.village, tree.township
    for serial in (1, 2, 3):
        register(village, serial)
    one, two, three = feed(village)
    reference = copy_node(township, tmp_path / "reference")
    summary = send_pages(village, township, [wire([one, three], certs_from=village)], tmp_path)
    assert summary.applied == 1
    assert [(r.event_id, "缺号：" in i18n.show(r.reason)) for r in summary.refused] \
        == [(three.id, True)]
    assert "应为序号 2" in i18n.show(quarantine(township)[three.id]["reason"])
    apply_good_only(reference, [one], village)
    assert views(township) == views(reference)
    reference.close()
    carry(township, village, tmp_path)
    assert "缺号" in i18n.show(peer_refusals(village, township)[three.id])

    # later: seq 2, then seq 3 again
    assert send_pages(village, township, [wire([two], certs_from=village)], tmp_path).applied == 1
    assert send_pages(village, township, [wire([three], certs_from=village)],
                      tmp_path).applied == 1
    assert quarantine(township) == {}
    assert {one.id, two.id, three.id} <= event_ids(township)
    # and once the township acknowledges holding it, the sender's refusal is over
    carry(township, village, tmp_path)
    assert three.id not in peer_refusals(village, township)


# -- damaged and misaddressed bundles --------------------------------------------


def _small_bundle(tree: Tree, tmp_path: Path) -> bytes:
    register(tree.village, 1)
    path = tmp_path / "small.xfb"
    bundle.export_bundle(tree.village, tree.township.info.name, path)
    return path.read_bytes()


def test_bundle_for_another_node_is_refused_naming_it(tree, tmp_path):
    _small_bundle(tree, tmp_path)
    path = tmp_path / "small.xfb"
    for wrong in (tree.sibling, tree.county):
        state = (views(wrong), event_ids(wrong))
        with pytest.raises(EnvelopeError, match="这是发给另一个节点") as caught:
            bundle.import_bundle(wrong, path)
        assert fingerprint(tree.township) in str(caught.value)
        assert (views(wrong), event_ids(wrong)) == state
    assert bundle.import_bundle(tree.township, path).applied == 1


def test_bundle_truncated_at_every_offset_is_refused(tree, tmp_path):
    data = _small_bundle(tree, tmp_path)
    township = tree.township
    state = (views(township), event_ids(township))
    cut = tmp_path / "cut.xfb"
    for offset in range(len(data)):
        cut.write_bytes(data[:offset])
        with pytest.raises(EnvelopeError):
            bundle.import_bundle(township, cut)
    cut.write_bytes(data + b"\0")
    with pytest.raises(EnvelopeError, match="数据末尾之后多出 1 个字节"):
        bundle.import_bundle(township, cut)
    assert (views(township), event_ids(township)) == state
    assert township.db.execute("select count(*) from seen_envelopes").fetchone()[0] == 0
    cut.write_bytes(data)
    assert bundle.import_bundle(township, cut).applied == 1


def test_bundle_with_any_bit_flipped_is_refused(tree, tmp_path):
    data = _small_bundle(tree, tmp_path)
    township = tree.township
    state = (views(township), event_ids(township))
    flipped = tmp_path / "flipped.xfb"

    def refused(index: int, bit: int) -> None:
        damaged = bytearray(data)
        damaged[index] ^= 1 << bit
        flipped.write_bytes(bytes(damaged))
        with pytest.raises(EnvelopeError):
            bundle.import_bundle(township, flipped)

    for index in range(len(data)):  # every byte once, the bit varying with the position
        refused(index, index % 8)

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(index=st.integers(0, len(data) - 1), bit=st.integers(0, 7))
    def any_flip(index, bit):
        refused(index, bit)

    any_flip()
    assert (views(township), event_ids(township)) == state


# -- oversized and malformed input -----------------------------------------------


def test_oversized_event_is_refused(tree, tmp_path):
    village, township = tree.village, tree.township
    register(village, 1)
    good = feed(village)[0]
    big_body = {**good.body, "request": "长" * (MAX_EVENT_BYTES // 3 + 10)}
    with pytest.raises(InvalidEvent, match="上限为 65536"):
        Event.create(village.keys, epoch=0, seq=2, prev=good.id, hlc=village.clock.tick(),
                     type="case.register", entity="case", entity_id="431202101201-2026-00002",
                     area=village.info.area, body=big_body)
    content = {**codec.decode(good.raw), "seq": 2, "prev": good.id,
               "id": "431202101201-2026-00002", "body": big_body}
    raw = codec.encode(content)
    assert len(raw) > MAX_EVENT_BYTES
    page = wire([good], certs_from=village)
    page["events"].append(sign_raw(village.keys, raw))
    state = (views(township), event_ids(township))

    with pytest.raises(PageError, match=f"事件有 {len(raw)} 字节；上限为 65536"):
        send_pages(village, township, [page], tmp_path)
    with serve(township) as url:
        status, answer = post(url, signed_request(village, {"op": "push", "page": page}))
    assert status == 400 and "上限为 65536" in error_of(answer)
    assert (views(township), event_ids(township)) == state


def test_page_with_too_many_events_is_refused(tree, tmp_path):
    village, township = tree.village, tree.township
    register(village, 1)
    page = wire(feed(village), certs_from=village)
    page["events"] = page["events"] * (MAX_PAGE_EVENTS + 1)
    state = (views(township), event_ids(township))
    with pytest.raises(PageError, match=f"数据页含 {MAX_PAGE_EVENTS + 1} 条事件，上限为"):
        Page.from_wire(page)
    with pytest.raises(PageError, match="上限为 500 条"):
        send_pages(village, township, [page], tmp_path)
    with serve(township) as url:
        status, answer = post(url, signed_request(village, {"op": "push", "page": page}))
    assert status == 400 and "上限为 500 条" in error_of(answer)
    assert (views(township), event_ids(township)) == state


def test_page_over_the_byte_limit_is_refused(tree, tmp_path):
    """Under 500 events, but each near the event limit: over MAX_PAGE_BYTES in all."""
    village, township = tree.village, tree.township
    register(village, 1)
    body = {**feed(village)[0].body, "request": "x" * (MAX_EVENT_BYTES - 2048)}
    events = feed(village)
    while sum(len(e.raw) for e in events) <= MAX_PAGE_BYTES:
        events.append(next_event(village, seq=len(events) + 1, prev=events[-1].id, body=body))
    assert len(events) < MAX_PAGE_EVENTS
    state = (views(township), event_ids(township))
    with pytest.raises(PageError, match=f"上限为 {MAX_PAGE_BYTES} 字节"):
        send_pages(village, township, [wire(events, certs_from=village)], tmp_path)
    assert (views(township), event_ids(township)) == state


def _non_canonical(raw: bytes) -> dict[str, bytes]:
    content = codec.decode(raw)
    reordered = dict(sorted(content.items(), reverse=True))
    return {
        "white space": json.dumps(content, ensure_ascii=False, sort_keys=True).encode(),
        "reordered keys": json.dumps(reordered, ensure_ascii=False,
                                     separators=(",", ":")).encode(),
        "escaped letters": json.dumps(content, ensure_ascii=True, sort_keys=True,
                                      separators=(",", ":")).encode(),
        "trailing newline": raw + b"\n",
    }


def test_non_canonical_event_bytes_are_refused(tree, tmp_path):
    village, township = tree.village, tree.township
    register(village, 1)
    register(village, 2)
    good, second = feed(village)
    state = (views(township), event_ids(township))
    with serve(township) as url:
        for what, raw in _non_canonical(second.raw).items():
            assert raw != second.raw and json.loads(raw) == json.loads(second.raw), what
            page = wire([good], certs_from=village)
            page["events"].append(sign_raw(village.keys, raw))  # validly signed, wrong form
            with pytest.raises(PageError, match="不是规范形式"):
                send_pages(village, township, [page], tmp_path)
            status, answer = post(url, signed_request(village, {"op": "push", "page": page}))
            assert status == 400, what
            assert "不是规范形式" in error_of(answer), what
    assert (views(township), event_ids(township)) == state


def _damage_recipient(data: bytes, recipient: Node) -> bytes:
    """Change the first hex digit of the envelope header's "to" field to a non-hex letter."""
    at = data.index(recipient.info.author.encode())
    assert data[at - 6:at] == b'"to":"'
    return data[:at] + b"z" + data[at + 1:]


def test_bundle_with_a_damaged_recipient_field_is_refused_as_damaged(tree, tmp_path):
    data = _damage_recipient(_small_bundle(tree, tmp_path), tree.township)
    path = tmp_path / "damaged.xfb"
    path.write_bytes(data)
    with pytest.raises(EnvelopeError):
        bundle.import_bundle(tree.township, path)


MALFORMED_REQUESTS = {
    "page not a page": lambda tree: signed_request(tree.village, {"op": "push",
                                                                  "page": "not a page"}),
    "frontier not a list": lambda tree: signed_request(tree.village, {"op": "hello",
                                                                      "frontier": 7}),
    "unknown operation": lambda tree: signed_request(tree.village, {"op": "steal"}),
    "empty body": lambda tree: b"",
    "truncated envelope": lambda tree: b"XINFANG-ENVELOPE-1\n\0\0\0",
    "not an envelope": lambda tree: b"GET / HTTP/1.0",
    "payload not a map": lambda tree: envelope.seal(
        tree.village.keys, tree.township.info.author, tree.township.info.encryption, "request",
        ["op", "hello"], extra={"sent": int(time.time() * 1000)}),
    "damaged recipient": lambda tree: _damage_recipient(
        signed_request(tree.village, {"op": "hello", "frontier": []}), tree.township),
}


@pytest.mark.parametrize("what", list(MALFORMED_REQUESTS))
def test_malformed_request_gets_a_clear_400(tree, what):
    body = MALFORMED_REQUESTS[what](tree)
    state = (views(tree.township), event_ids(tree.township))
    with serve(tree.township) as url:
        status, answer = post(url, body)
    assert status == 400, (what, answer)
    assert error_of(answer)
    assert (views(tree.township), event_ids(tree.township)) == state


# -- what a village may read -----------------------------------------------------


def test_village_cannot_read_a_sibling_villages_cases(tree, tmp_path):
    county, township, village, sibling = tree.county, tree.township, tree.village, tree.sibling
    own = register(village, 1)
    theirs = register(sibling, 2, request="邻村的诉求")
    carry(sibling, township, tmp_path)
    carry(township, county, tmp_path)
    assigned = api.register_case(county, api.CaseInput(
        petitioners=[api.PetitionerInput("钱某乙")], channel="来信", category="劳动社保",
        kind="申诉求决", request="县里交办邻村的事项", received="2026-04-01", area=sibling.info.area), today=TODAY)
    api.take_step(county, assigned, "forward", {"mode": "assign", "to_area": sibling.info.area},
                  today=TODAY)
    carry(county, township, tmp_path)
    assert {theirs, assigned} <= {r[0] for r in township.db.execute("select id from cases")}

    with serve(township) as url:
        for op in ("pull", "hello"):
            for area in (sibling.info.area, township.info.area, COUNTY[0]):
                status, answer = post(url, signed_request(
                    village, {"op": op, "frontier": [], "area": area}))
                assert status == 403, (op, area)
                assert f"只能读取本身区划 {village.info.area} 内" in error_of(answer)
        summary = Client(village, url).sync()
    assert summary.pushed == 1
    cases = {r[0] for r in village.db.execute("select id from cases")}
    assert own in cases and not {theirs, assigned} & cases
    areas = {r[0] for r in village.db.execute("select area from events")}
    assert areas == {village.info.area}
    # nor the sibling's petitioners' identities, which travel as sealed values
    held = {village.vault.value(d) for (d,) in village.db.execute("select digest from vault")}
    assert "赵某1" in held and not {"赵某2", "钱某乙", synthetic_id(2)} & held


def test_a_node_told_of_its_own_fork_keeps_its_log_and_writes_on_in_a_new_epoch(tree, tmp_path):
    """The forker (restored from a copy) must not drop its own events and reuse
    their numbers; it starts a new epoch, whose events the others accept."""
    township, village = tree.township, tree.village
    copy, a, b = _fork(tree, tmp_path)
    carry(village, township, tmp_path)
    carry(copy, township, tmp_path)                 # the township sees the fork
    own_before = event_ids(village)
    carry(township, village, tmp_path)              # the evidence comes back down
    assert own_before <= event_ids(village)
    assert village.info.epoch == 1
    case_id = register(village, 3)
    assert carry(village, township, tmp_path).applied == 1
    assert case_id in {c.id for c in api.list_cases(township)}
    copy.close()


def test_a_node_whose_key_was_revoked_refuses_to_sign_and_says_how_to_recover(tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    county.append(Draft("trust.revoke", "trust", village.info.author, village.info.area,
                        {"epoch": 0, "seq": 1, "reason": "测试：密钥泄露"}))
    carry(county, township, tmp_path)
    # no bundle is exported to a revoked key: the revocation reaches the village by hand
    send_pages(township, village, [p.to_wire() for p in pages_for(
        township, village.info.area, frontier(village.db))], tmp_path)
    before = event_ids(village)
    with pytest.raises(InvalidEvent, match="enroll rotate"):
        register(village, 2)
    assert event_ids(village) == before
    # after rotating to a new key and enrolling it, the village writes again
    request = trust.rotate_keys(village)
    enrol_payload = trust.sign_request(township, request)
    sealed = envelope.seal(township.keys, request.subject, request.encryption, "enrolment",
                           enrol_payload)
    trust.import_certificate(village, envelope.open_(village.keys, sealed, "enrolment").payload)
    register(village, 3)
    assert carry(village, township, tmp_path).applied >= 1


def test_a_retired_key_cannot_be_certified_again_and_its_successor_is_the_only_neighbour(
        tree, tmp_path):
    township, village = tree.township, tree.village
    old_request = trust.make_request(village)
    register(village, 1)
    new_request = trust.rotate_keys(village)
    sealed = envelope.seal(township.keys, new_request.subject, new_request.encryption,
                           "enrolment", trust.sign_request(township, new_request))
    trust.import_certificate(village, envelope.open_(village.keys, sealed, "enrolment").payload)
    carry(village, township, tmp_path)              # the retirement reaches the township
    with pytest.raises(trust.TrustError, match="已被吊销或停用"):
        trust.sign_request(township, old_request)
    from xinfang.sync import peers
    assert peers.resolve(township, village.info.name).subject == village.info.author
    assert [s.fingerprint for s in peers.status(township) if s.name == village.info.name] == [
        fingerprint(village)]
