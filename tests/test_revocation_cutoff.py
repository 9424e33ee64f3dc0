"""A revoked key certifies nobody after its point; the root a node trusts can be typed in.

A certificate is a signed document, not an event: whoever holds a key can sign
one that looks as old as he likes. So an issuer logs every certificate it
signs as a ``trust.certify`` event in its own hash-chained feed, and once its
key is revoked (or retired) at a point, a certificate it issued counts only
if that event lies at or before the point (``certs.issued_in_time``). Each
story here steals or loses a real enrolled key, builds what the thief would
send by hand, sends it the way he would (bundle through the revoked township,
bundle of his own, HTTP), and checks that it is refused with the reason, that
nothing of it reaches the views, and that the honest nodes certified before
the point keep syncing.

Names, area codes and ID numbers are synthetic (see ``sync_helpers``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sync_helpers import (build_tree, carry, copy_node, enrol, error_of, event_ids,
                          excluded_ids, feed, fingerprint, new_node, next_event, post,
                          quarantine, register, send_pages, serve, signed_request, views, wire)
from xinfang.core import codec, fold, i18n, keys, signed, store, verify
from xinfang.core.authority import Authority
from xinfang.core.certs import (CERTIFY, FIELDS, Certificate, TrustError,
                                chain_from_wire, chain_of, chain_to_wire, validate_chain)
from xinfang.core.errors import InvalidEvent, InvalidInput, NotFound
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Draft, Node
from xinfang.plugins.cases import api
from xinfang.sync import envelope, trust
from xinfang.sync.receive import apply_page
from xinfang.sync.trust_list import trust_list
from xinfang.sync.wire import Page, PageError

#: what every refusal of a certificate signed after its issuer's point says (zh_CN)
VOID = "吊销的密钥此后签发的证书一律无效"
ROGUE_AREA, ROGUE_NAME = "431202101299", "冒充的示例九十九村信访站"


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path / "tree", villages=1)
    yield built
    built.close()


def head(holder: Node, node: Node, epoch: int = 0) -> int:
    """The last seq of ``node``'s feed that ``holder`` holds."""
    return store.feed_head(holder.db, node.info.author, epoch)[0]


def revoke(county: Node, node: Node, seq: int, reason: str = "测试：乡镇电脑被盗"):
    return county.append(Draft("trust.revoke", "trust", node.info.author, node.info.area,
                               {"epoch": 0, "seq": seq, "reason": reason}))


def rogue(base: Path, issuer: Node, area: str = ROGUE_AREA, name: str = ROGUE_NAME,
          level: str = "village") -> tuple[Node, Certificate]:
    """A real node certified by ``issuer``'s (stolen) key, holding that certificate."""
    node = new_node(base / f"rogue-{area}", level, area, name)
    cert = Certificate.issue(issuer.keys, subject=node.info.author,
                             encryption=node.info.encryption, area=area, level=level, name=name)
    trust.import_certificate(node, {"certificate": cert.to_wire(),
                                    "chain": chain_to_wire(chain_of(issuer.db,
                                                                    issuer.info.author))})
    return node, cert


def logged(issuer: Node, cert: Certificate):
    """The ``trust.certify`` the thief signs with ``issuer``'s key after its last event."""
    return next_event(issuer, type=CERTIFY, entity="trust", entity_id=cert.subject,
                      area=cert.area, body={"certificate": cert.digest})


def views_but_exclusions(node: Node) -> dict:
    """Every view but ``exclusions``, which also names keys whose events a node holds."""
    dump = fold.dump_views(node.db, node.registry)
    dump.pop("exclusions")
    return dump


# -- the stolen township key ---------------------------------------------------------


def test_a_revoked_townships_stolen_key_cannot_certify_a_new_village(tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    first = register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    point = head(county, township)  # the township's trust.certify of the village is in it
    assert point == 1
    revoke(county, township, point)

    # the thief certifies a village of his own, and even logs it, after the point
    evil, cert = rogue(tmp_path, township)
    case_id = register(evil, 1, request="冒名村站写入的诉求")
    certify = logged(township, cert)
    county_views, county_events = views(county), event_ids(county)

    # by bundle, through the revoked township
    summary = send_pages(township, county, [wire([certify], certs_from=township),
                                            wire(feed(evil), certs_from=evil)], tmp_path)
    assert summary.applied == 0
    refused = {r.event_id: i18n.show(r.reason) for r in summary.refused}
    assert set(refused) == {certify.id, *(e.id for e in feed(evil))}
    assert "密钥已吊销" in refused[certify.id]
    for event in feed(evil):
        assert VOID in refused[event.id]
        assert township.info.name in refused[event.id]
        assert f"纪元 0 序号 {point}" in refused[event.id]
        assert VOID in i18n.show(quarantine(county)[event.id]["reason"])
    assert Authority(county.db).scope(evil.info.author) is None
    assert VOID in str(Authority(county.db).refusal(evil.info.author))

    # by a bundle of its own: refused whole, before anything is written
    with pytest.raises(TrustError, match=VOID):
        send_pages(evil, county, [wire(feed(evil), certs_from=evil)], tmp_path)

    # by HTTP, calling the county directly
    with serve(county) as url:
        for payload in ({"op": "hello", "frontier": []},
                        {"op": "push", "page": wire(feed(evil), certs_from=evil)}):
            status, body = post(url, signed_request(evil, payload, parent=county))
            assert status == 403
            assert VOID in error_of(body) and ROGUE_NAME in error_of(body)
    assert views(county) == county_views and event_ids(county) == county_events
    with pytest.raises(NotFound):
        api.get_case(county, case_id, reveal=False)

    # the village certified before the point keeps syncing
    second = register(village, 2)
    carry(village, township, tmp_path)
    up = carry(township, county, tmp_path)
    assert (up.applied, up.refused) == (1, ())
    for case in (first, second):
        assert api.get_case(county, case, reveal=False).area == village.info.area
    assert Authority(county.db).scope(village.info.author).area == village.info.area
    with serve(county) as url:
        status, _ = post(url, signed_request(village, {"op": "hello", "frontier": []},
                                             parent=county))
    assert status == 200
    listed = {c["name"]: c for c in trust_list(county).certificates}
    assert listed[ROGUE_NAME]["void"] and not listed[village.info.name]["void"]
    evil.close()


def test_a_rogue_village_taken_in_before_the_revocation_leaves_the_views_in_either_order(
        tree, tmp_path):
    """The theft is found late: the county has taken the rogue village's cases in
    already. The revocation takes them out of the views, exactly as a county that
    hears of the revocation first refuses them, and a rebuild agrees."""
    county, township, village = tree.county, tree.township, tree.village
    honest = register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    point = head(county, township)
    other = copy_node(county, tmp_path / "county-copy")

    evil, cert = rogue(tmp_path, township)
    case_id = register(evil, 1, request="冒名村站写入的诉求")
    certify = logged(township, cert)
    stolen = [wire([certify], certs_from=township), wire(feed(evil), certs_from=evil)]
    for page in stolen:  # before anyone knows: the township's key is still good
        assert apply_page(county, Page.from_wire(page)).refused == ()
    assert api.get_case(county, case_id, reveal=False).area == ROGUE_AREA

    revocation = revoke(county, township, point)
    with pytest.raises(NotFound):
        api.get_case(county, case_id, reveal=False)
    excluded = {e.event_id: e.reason for e in verify.excluded_events(county.db)}
    assert {e.id for e in feed(evil)} <= set(excluded)
    assert all(VOID in excluded[e.id] for e in feed(evil))
    assert certify.id in excluded  # the thief's own record lies after the point
    assert api.get_case(county, honest, reveal=False).area == village.info.area
    assert verify.rebuild(county, check_only=True).consistent

    # the other order: the revocation first, then the same pages
    assert apply_page(other, Page.from_wire(wire([revocation]))).refused == ()
    for page in stolen:
        result = apply_page(other, Page.from_wire(page))
        assert result.applied == 0 and len(result.refused) == len(page["events"])
    assert views_but_exclusions(other) == views_but_exclusions(county)
    other.close()
    evil.close()


def test_an_honest_certificate_logged_by_the_point_counts_whenever_its_record_arrives(
        tree, tmp_path):
    """The township reports the theft by telephone ("nothing after our seq 2 is
    ours") before its seq 2, the certificate of a new village, reached the county.
    The village's cases leave the county's views until that record arrives, then
    come back; the village keeps syncing."""
    county, township = tree.county, tree.township
    carry(township, county, tmp_path)
    assert head(county, township) == 1
    newcomer = new_node(tmp_path / "village-203", "village", "431202101203", "示例一镇示例三村信访站")
    enrol(newcomer, township)  # the township's seq 2
    case_id = register(newcomer, 1)
    assert apply_page(county, Page.from_wire(wire(feed(newcomer),
                                                  certs_from=newcomer))).refused == ()
    revoke(county, township, 2)
    with pytest.raises(NotFound):  # the county cannot tell it from a forgery yet
        api.get_case(county, case_id, reveal=False)

    carry(newcomer, township, tmp_path)
    carry(township, county, tmp_path)  # seq 2 arrives: the certificate was logged in time
    assert api.get_case(county, case_id, reveal=False).area == newcomer.info.area
    assert not {e.id for e in feed(newcomer)} & excluded_ids(county)
    assert verify.rebuild(county, check_only=True).consistent
    later = register(newcomer, 2)
    carry(newcomer, township, tmp_path)
    assert carry(township, county, tmp_path).applied == 1
    assert api.get_case(county, later, reveal=False).id == later
    newcomer.close()


def test_a_certificate_on_a_forked_branch_of_the_revoked_key_is_void(tree, tmp_path):
    """The county was told "seq 2 is our last good one" before it held seq 2, so
    the thief signs a seq 2 of his own, certifying his village, and gets it there
    first. When the genuine seq 2 arrives the feed forks and freezes from seq 2,
    and no certificate logged there counts: the thief's, and (a cost stated in
    the design) the honest one at the same place."""
    county, township = tree.county, tree.township
    carry(township, county, tmp_path)
    stolen = copy_node(township, tmp_path / "stolen-laptop")
    newcomer = new_node(tmp_path / "village-203", "village", "431202101203", "示例一镇示例三村信访站")
    enrol(newcomer, township)  # the genuine seq 2
    evil, cert = rogue(tmp_path, stolen)
    forged = logged(stolen, cert)  # the thief's seq 2
    revoke(county, township, 2)
    assert apply_page(county, Page.from_wire(wire([forged], certs_from=stolen))).refused == ()
    case_id = register(evil, 1)
    assert apply_page(county, Page.from_wire(wire(feed(evil), certs_from=evil))).refused == ()
    assert api.get_case(county, case_id, reveal=False).area == ROGUE_AREA

    summary = carry(township, county, tmp_path)
    assert any("分叉" in i18n.show(r.reason) for r in summary.refused)
    with pytest.raises(NotFound):
        api.get_case(county, case_id, reveal=False)
    excluded = {e.event_id: e.reason for e in verify.excluded_events(county.db)}
    assert all(VOID in excluded[e.id] for e in feed(evil))
    assert Authority(county.db).scope(newcomer.info.author) is None
    assert verify.rebuild(county, check_only=True).consistent
    for node in (stolen, newcomer, evil):
        node.close()


def test_a_village_certified_after_the_point_refuses_to_sign_and_recovers_with_a_new_key(
        tree, tmp_path):
    """An honest certificate signed after the point the county names is void too
    (nobody can tell it from the thief's): its village is told so when it writes,
    and writes again once it has a new key from the township's new key."""
    county, township = tree.county, tree.township
    carry(township, county, tmp_path)
    point = head(county, township)
    late = new_node(tmp_path / "village-204", "village", "431202101204", "示例一镇示例四村信访站")
    enrol(late, township)  # after the point the county is about to name
    revocation = revoke(county, township, point)
    # no bundle goes to a revoked key: the revocation reaches the township's office and
    # the village by whatever route (here a page of the county's feed, as any route ends)
    down = wire([revocation], certs_from=county, ranges=[(county.info.author, 0, 0,
                                                          revocation.seq)])
    for node in (township, late):
        assert apply_page(node, Page.from_wire(down)).applied == 1
    before = event_ids(late)
    with pytest.raises(InvalidEvent, match="enroll rotate") as refused:
        register(late, 1)
    assert VOID in str(refused.value)
    assert event_ids(late) == before
    # a revoked key certifies nobody, even on its own honest node
    with pytest.raises(InvalidEvent, match="吊销"):
        trust.sign_request(township, trust.make_request(late))

    def certify(child: Node, parent: Node, request) -> None:
        sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                               trust.sign_request(parent, request))
        trust.import_certificate(child, envelope.open_(child.keys, sealed, "enrolment").payload)

    certify(township, county, trust.rotate_keys(township))
    certify(late, township, trust.rotate_keys(late))
    case_id = register(late, 1)
    assert carry(late, township, tmp_path).applied >= 1
    carry(township, county, tmp_path)
    assert api.get_case(county, case_id, reveal=False).area == late.info.area
    late.close()


# -- key rotation --------------------------------------------------------------------


def test_a_rotated_townships_old_certificates_stay_and_its_old_key_certifies_no_more(
        tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    first = register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    old = copy_node(township, tmp_path / "stolen-laptop")  # the old key, kept by a thief
    request = trust.rotate_keys(township)
    sealed = envelope.seal(county.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(county, request))
    trust.import_certificate(township, envelope.open_(township.keys, sealed, "enrolment").payload)
    assert carry(township, county, tmp_path).refused == ()  # the retirement, signed by the old key
    point = county.db.execute("select epoch, seq, kind from revocations where subject = ?",
                              [old.info.author]).fetchone()
    assert point == (0, 2, "retire")

    # the village the old key certified before retiring is still certified everywhere
    assert Authority(county.db).scope(village.info.author) is not None
    assert api.get_case(county, first, reveal=False).area == village.info.area
    second = register(village, 2)
    with serve(county) as url:
        status, _ = post(url, signed_request(village, {"op": "push", "page": wire(
            feed(village)[1:], certs_from=village)}, parent=county))
    assert status == 200
    assert api.get_case(county, second, reveal=False).area == village.info.area

    # what the old key certifies now is void
    evil, cert = rogue(tmp_path, old)
    register(evil, 1)
    result = apply_page(county, Page.from_wire(wire(feed(evil), certs_from=evil)))
    assert result.applied == 0
    assert all("停用的密钥此后签发的证书一律无效" in i18n.show(r.reason) for r in result.refused)
    evil.close()
    old.close()


@pytest.mark.parametrize("level", ["village", "township"])
def test_revoking_a_key_before_its_own_retirement_settles_and_folds_the_same_in_any_order(
        tree, tmp_path, level):
    """The county revokes a key at a point before the key's own ``trust.retire``: the
    revocation puts the retirement past the point, though both are events of the one
    trust entity. Appending it once re-folded that entity for ever (each re-fold folded
    the retirement before the revocation and took the value it passed through for a
    change). Now it settles: the earlier point holds, the retirement is excluded, what
    the key signed by the point stays, and the views, ``exclusions`` included, are
    those of a rebuild and of the same events folded newest first, where the
    revocation comes before the retirement and the retirement is never folded."""
    county, township, village = tree.county, tree.township, tree.village
    node, parent = (village, township) if level == "village" else (township, county)
    blank = copy_node(county, tmp_path / "blank")
    case_id = register(village, 1)
    carry(village, township, tmp_path)
    old = node.info.author
    request = trust.rotate_keys(node)  # the old key writes its trust.retire
    sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(parent, request))
    trust.import_certificate(node, envelope.open_(node.keys, sealed, "enrolment").payload)
    if node is village:
        carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    (retire,) = [e for e in feed(county, old) if e.type == "trust.retire"]
    assert (retire.epoch, retire.seq) == (0, 2)

    # the point is seq 1: the village's case, or the township's certificate of the village
    county.append(Draft("trust.revoke", "trust", old, node.info.area,  # returns: it settled
                        {"epoch": 0, "seq": 1, "reason": "测试：旧密钥早已被盗"}))
    assert county.db.execute("select epoch, seq, kind from revocations where subject = ?",
                             [old]).fetchone() == (0, 1, "revoke")
    assert county.db.execute("select epoch, seq from exclusions where author = ? and "
                             "source = 'revocation'", [old]).fetchall() == [(0, 1)]
    assert excluded_ids(county) == {retire.id}
    assert api.get_case(county, case_id, reveal=False).area == village.info.area
    assert verify.rebuild(county, check_only=True).consistent

    with blank.db.atomic():  # the certificates the events need
        for cert in store.all_certificates(county.db):
            store.remember_certificate(blank.db, cert)
    for event in reversed(list(store.all_events(county.db))):
        blank.ingest([event])
    assert fold.dump_views(blank.db, blank.registry) == fold.dump_views(county.db,
                                                                        county.registry)
    assert views(blank) == views(county)
    assert excluded_ids(blank) == {retire.id}
    blank.close()


def test_re_folding_that_never_settles_is_a_named_error_not_a_hang(tree, tmp_path,
                                                                    monkeypatch):
    """The safety net under the rule above: should fold code ever mark an entity again
    each time it is re-folded, the drain stops with ``FoldCycle`` naming the entities,
    and the append that started it is rolled back."""
    county, village = tree.county, tree.village
    case_id = register(village, 1)
    carry(village, tree.township, tmp_path)
    carry(tree.township, county, tmp_path)
    before, log = views(county), event_ids(county)
    refold = fold.refold

    def feeding_on_itself(ctx, entity, entity_id):
        refold(ctx, entity, entity_id)
        ctx.refold_later(entity, entity_id)  # the bug: a re-fold that marks itself

    monkeypatch.setattr(fold, "refold", feeding_on_itself)
    with pytest.raises(fold.FoldCycle) as raised:
        revoke(county, village, 0)
    assert raised.value.entities == [("case", case_id)]  # what the revocation re-folds
    assert "re-folding does not settle" in str(raised.value)
    assert views(county) == before and event_ids(county) == log


def test_enroll_rotate_end_to_end_on_the_command_line(tree, tmp_path, invoke):
    """``xinfang enroll rotate``, ``enroll sign`` by the parent, ``enroll import``:
    the new key writes, the parent logs its certificate, the county takes it."""
    county, township, village = tree.county, tree.township, tree.village
    register(village, 1)
    home = village.home
    village.close()
    request, cert = tmp_path / "rotated.request", tmp_path / "rotated.cert"
    for args, where in ((("enroll", "rotate", "--out", str(request)), home),
                        (("enroll", "sign", str(request), "--out", str(cert)), township.home),
                        (("enroll", "import", str(cert), "--root-fingerprint",
                          fingerprint(county)), home)):
        result = invoke(*args, home_dir=where)
        assert result.exit_code == 0, result.output
    village = Node.open(home, pm=township.pm)
    village.operator = township.operator
    try:
        case_id = register(village, 2)
        assert carry(village, township, tmp_path).refused == ()
        up = carry(township, county, tmp_path)
        assert up.refused == ()
        assert api.get_case(county, case_id, reveal=False).area == village.info.area
        certified = [e for e in feed(county, township.info.author) if e.type == CERTIFY]
        assert [e.entity_id for e in certified][-1] == village.info.author
    finally:
        village.close()


# -- a deeper tree: the void reaches every key below -----------------------------------


def test_keys_certified_below_a_void_certificate_are_void_too(tmp_path):
    city = new_node(tmp_path / "city", "city", "4312", "示例市信访局", root=True)
    county = new_node(tmp_path / "county", "county", "431202", "示例县信访局")
    enrol(county, city)
    nodes = [city, county]
    try:
        honest = new_node(tmp_path / "township", "township", "431202101", "示例一镇信访办")
        nodes.append(honest)
        enrol(honest, county)  # the county's seq 1, which the city holds
        assert apply_page(city, Page.from_wire(wire(feed(county), certs_from=county))).refused == ()
        point = head(city, county)
        assert point == 1
        township, _ = rogue(tmp_path, county, "431202109", "冒充的示例九镇信访办", "township")
        village, _ = rogue(tmp_path, township, "431202109201", "冒充的示例九镇一村信访站")
        nodes += [township, village]
        register(village, 1)
        pages = [wire(feed(village), certs_from=village)]
        other = copy_node(city, tmp_path / "city-copy")
        nodes.append(other)
        assert apply_page(city, Page.from_wire(pages[0])).refused == ()  # before the theft is known
        revocation = city.append(Draft("trust.revoke", "trust", county.info.author,
                                       county.info.area, {"epoch": 0, "seq": point,
                                                          "reason": "测试：县局电脑被盗"}))
        excluded = {e.event_id: e.reason for e in verify.excluded_events(city.db)}
        for event in feed(village):
            assert "冒充的示例九镇信访办 的证书" in excluded[event.id] and VOID in excluded[event.id]
        assert verify.rebuild(city, check_only=True).consistent
        apply_page(other, Page.from_wire(wire([revocation])))
        result = apply_page(other, Page.from_wire(pages[0]))
        assert result.applied == 0 and all(VOID in i18n.show(r.reason) for r in result.refused)
        assert views_but_exclusions(other) == views_but_exclusions(city)
        with city.db.atomic():  # the township the county certified in time stays certified
            assert trust.admit(city.db, chain_of(honest.db, honest.info.author))
        assert Authority(city.db).scope(honest.info.author) is not None
    finally:
        for node in nodes:
            node.close()


# -- the trust.certify record itself -------------------------------------------------


@pytest.mark.parametrize("body, entity_id", [
    ({"certificate": "xyz"}, None),
    ({"certificate": "ab" * 32, "area": "431202101201"}, None),
    ({"certificate": 7}, None),
    ({"certificate": "ab" * 32}, "not-a-key"),
])
def test_a_malformed_trust_certify_is_refused_by_name(tree, tmp_path, body, entity_id):
    county, township, village = tree.county, tree.township, tree.village
    carry(township, county, tmp_path)
    bad = next_event(township, type=CERTIFY, entity="trust",
                     entity_id=entity_id or village.info.author, area=village.info.area,
                     body=body)
    before = views(county)
    summary = send_pages(township, county, [wire([bad], certs_from=township)], tmp_path)
    assert [r.event_id for r in summary.refused] == [bad.id]
    assert "trust.certify 只写" in i18n.show(summary.refused[0].reason)
    assert views(county) == before


# -- pinning the root ------------------------------------------------------------------


def _certificate_file(invoke, township: Node, tmp_path: Path, area: str, name: str,
                      *init: str) -> Path:
    """``xinfang init`` a village at ``invoke.home``, its request signed by ``township``."""
    made = invoke("init", "--level", "village", "--area", area, "--name", name, *init)
    assert made.exit_code == 0, made.output
    request, cert = tmp_path / f"{area}.request", tmp_path / f"{area}.cert"
    assert invoke("enroll", "request", "--out", str(request)).exit_code == 0
    signed_ = invoke("enroll", "sign", str(request), "--out", str(cert), home_dir=township.home)
    assert signed_.exit_code == 0, signed_.output
    return cert


def _trust_rows(home: Path) -> tuple:
    with sqlite3.connect(str(home / "xinfang.db")) as db:
        return (sorted(db.execute("select key, value from meta")),
                sorted(db.execute("select subject, raw from certs")))


def test_enroll_import_refuses_a_root_other_than_the_fingerprint_given(tree, tmp_path, invoke):
    right = fingerprint(tree.county)
    wrong = keys.fingerprint(NodeKeys.generate().author)
    cert = _certificate_file(invoke, tree.township, tmp_path, "431202101205", "示例一镇示例五村信访站")
    before = _trust_rows(invoke.home)
    result = invoke("enroll", "import", str(cert), "--root-fingerprint", wrong)
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and right in line and wrong in line, line
    assert "未导入任何内容" in line and "Traceback" not in line
    assert _trust_rows(invoke.home) == before
    typo = invoke("enroll", "import", str(cert), "--root-fingerprint", "ABCD-EFGH")
    assert typo.exit_code != 0 and "不是密钥指纹" in typo.output
    assert _trust_rows(invoke.home) == before
    # typed in lower case, without the dashes: the same fingerprint
    done = invoke("enroll", "import", str(cert), "--root-fingerprint",
                  right.lower().replace("-", ""), "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["root_fingerprint"] == right


def test_init_pins_the_root_fingerprint_the_first_import_must_match(tree, tmp_path, invoke):
    right = fingerprint(tree.county)
    wrong = keys.fingerprint(NodeKeys.generate().author)
    cert = _certificate_file(invoke, tree.township, tmp_path, "431202101206", "示例一镇示例六村信访站",
                             "--root-fingerprint", wrong.lower())
    listed = invoke("trust", "list")
    assert listed.exit_code == 0 and wrong in listed.output, listed.output
    before = _trust_rows(invoke.home)
    assert ("root_fingerprint", wrong) in before[0]
    for extra in ((), ("--root-fingerprint", right)):
        result = invoke("enroll", "import", str(cert), *extra)
        assert result.exit_code != 0
        assert right in result.output and wrong in result.output, result.output
        assert _trust_rows(invoke.home) == before

    # pinned right, the import goes through without the option
    other = tmp_path / "other-village"
    cert = _certificate_file(lambda *a, **k: invoke(*a, home_dir=k.pop("home_dir", other), **k),
                             tree.township, tmp_path, "431202101207", "示例一镇示例七村信访站",
                             "--root-fingerprint", right)
    assert invoke("enroll", "import", str(cert), home_dir=other).exit_code == 0

    # a mistyped pin, or a pin on a root, makes no node at all
    for args in (("--level", "village", "--area", "431202101208", "--name", "示例八村",
                  "--root-fingerprint", "ABCD"),
                 ("--level", "county", "--area", "431203", "--name", "示例另一县", "--root",
                  "--root-fingerprint", right)):
        home = tmp_path / f"never-{args[3]}"
        result = invoke("init", *args, home_dir=home)
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        assert not home.exists()


# -- type-checking certificates on parse -----------------------------------------------


GOOD = {"v": 1, "subject": "", "encryption": "", "area": "431202101209", "level": "village",
        "name": "示例一镇示例九村信访站", "issuer": ""}
KEYLIKE = [None, 7, True, [], {}, "", "zz", "A" * 64, "0" * 63, "0" * 65, "g" * 64]
BAD = {"v": [None, 0, 2, True, "1", []],
       "subject": KEYLIKE, "encryption": KEYLIKE, "issuer": KEYLIKE,
       "area": [None, 7, [], "", "43120210120x", "4312021012091", "431202101", "四三一二"],
       "level": [None, 7, [], "", "hamlet", "村"],
       "name": [None, 7, [], "", "   ", "名" * 201, "示例\n村站", "示例\u202e站村"]}
CASES = [(field, value) for field, values in BAD.items() for value in values] + [
    ("missing", field) for field in ("v", *FIELDS)] + [("extra", "expires")]


def _content(issuer: NodeKeys, subject: NodeKeys, field: str, value) -> dict:
    content = {**GOOD, "subject": subject.author, "encryption": subject.encryption_public,
               "issuer": issuer.author}
    if field == "missing":
        del content[value]
    elif field == "extra":
        content[value] = "2027-01-01"
    else:
        content[field] = value
    return content


@pytest.mark.parametrize("field, value", CASES)
def test_a_malformed_certificate_field_is_a_named_refusal_everywhere(tree, field, value):
    township, village = tree.township, tree.village
    subject = NodeKeys.generate()
    document = signed.sign(township.keys, "certificate", _content(township.keys, subject,
                                                                  field, value))
    item = document.to_wire()
    chain = chain_to_wire(chain_of(township.db, township.info.author))
    with pytest.raises(InvalidInput, match="证书"):
        Certificate.from_wire(item)
    with pytest.raises(InvalidInput, match="证书链的第 1 张证书"):
        chain_from_wire([item, *chain])
    with pytest.raises(PageError):
        Page.from_wire({"events": [], "boxes": [], "certs": [item], "ranges": []})
    with pytest.raises(TrustError):
        trust.import_certificate(village, {"certificate": item, "chain": chain})
    with pytest.raises(TrustError):
        trust.import_certificate(village, {"certificate": chain_to_wire(
            chain_of(village.db, village.info.author))[0], "chain": [item, *chain[1:]]})
    request = signed.sign(subject, "enrolment", {
        k: v for k, v in _content(township.keys, subject, field, value).items()
        if k != "issuer"})
    if field not in ("issuer", "extra") and (field, value) != ("missing", "issuer"):
        with pytest.raises(TrustError, match="不是注册申请文件"):
            trust.EnrolmentRequest.from_json(json.dumps({"enrolment_request": request.to_wire()}))


@pytest.mark.parametrize("data", [None, 5, "chain", {"a": 1}, [[1, 2]], [["", ""]], [None],
                                  [["YQ==", "YQ=="]] * 9, [[codec.encode(1).hex(), ""]]])
def test_a_malformed_certificate_chain_is_a_named_refusal(tree, data):
    with pytest.raises(InvalidInput):
        chain_from_wire(data)
    with pytest.raises(TrustError):
        trust.import_certificate(tree.village, {"certificate": data, "chain": data})
    with pytest.raises(TrustError):
        trust.import_certificate(tree.village, {"certificate": chain_to_wire(
            chain_of(tree.village.db, tree.village.info.author))[0], "chain": data})
    for chain in ([], "x", [None], [1, 2]):
        with pytest.raises(TrustError):
            validate_chain(chain)


def test_a_stored_certificate_that_no_longer_parses_is_no_authority(tree):
    """A row this release cannot read (written by hand, or by a looser release)
    makes its key unknown, and never a crash in the middle of an admission."""
    county, village = tree.county, tree.village
    for raw in (b"garbage", codec.encode({"v": 1}), codec.encode([1, 2])):
        county.db.execute("delete from certs where subject = ?", [village.info.author])
        county.db.execute("insert into certs (subject, issuer, area, level, name, encryption, "
                          "raw, sig) values (?,?,?,?,?,?,?,?)",
                          [village.info.author, "x", "x", "x", "x", "x", raw, b"sig"])
        authority = Authority(county.db)
        assert authority.scope(village.info.author) is None
        assert authority.refusal(village.info.author) is None
        assert not authority.rooted(village.info.author)

