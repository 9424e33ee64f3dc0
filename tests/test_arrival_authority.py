"""Every authoring rule is re-checked on arrival: what a stolen key may not do.

An attacker holds a real enrolled village or township key. Each test builds
the events by hand (``next_event``), signs them with that key and sends them
the way an attacker would, in a bundle file and by an HTTP push, to the real
parent node. Two kinds of outcome:

* a rule that depends only on the event and its author's certificate (whose
  number a registration takes, where a case may be forwarded, who may 交办)
  is a **refusal**: the event is quarantined with its reason and nothing of
  it is stored or folded;
* a rule that depends on the case (its area, who answered it) is decided by
  the fold: the event is stored and relayed but **kept as a conflict** with
  its reason, never applied, alike on every node and in any arrival order.
"""

from __future__ import annotations

import pytest

from sync_helpers import COUNTY as COUNTY_NODE, TOWNSHIP as TOWNSHIP_NODE
from sync_helpers import (TODAY, VILLAGES, build_tree, carry, deliver, enrol, event_ids, feed,
                          new_node, next_event, quarantine, register, send_pages, views)
from xinfang.core import i18n, store, verify
from xinfang.core.errors import InvalidEvent, StepRefused
from xinfang.core.event import Event
from xinfang.core.node import Draft
from xinfang.plugins.cases import api, lifecycle
from xinfang.sync import envelope, trust
from xinfang.sync.send import pages_for
from xinfang.sync.wire import frontier

COUNTY, TOWNSHIP = COUNTY_NODE[0], TOWNSHIP_NODE[0]
VILLAGE, SIBLING = VILLAGES[0][0], VILLAGES[1][0]
VIAS = ["bundle", "http"]
DATE = "2026-03-20"
#: valid values of every step of the case lifecycle, so only authority can refuse them
VALUES = {
    "forward": {"date": DATE, "mode": "transfer", "unit": "镇司法所"},
    "accept": {"date": DATE},
    "reject": {"date": DATE, "reason": "属诉讼事项", "legal_channel": "litigation"},
    "refuse": {"date": DATE, "reason": "同一事项已终结"},
    "extend": {"date": DATE, "days": 10, "reason": "情况复杂"},
    "answer": {"date": DATE, "outcome": "explain"},
    "close": {"date": DATE},
    "rate": {"date": DATE, "rating": "satisfied"},
    "request_review": {"date": DATE},
    "answer_review": {"date": DATE, "outcome": "upheld"},
    "request_rereview": {"date": DATE},
    "answer_rereview": {"date": DATE, "outcome": "upheld"},
    "finalize": {"date": DATE},
    "withdraw": {"date": DATE, "reason": "冒名撤回"},
    "object": {"date": DATE, "reason": "冒名退回"},
}


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree")
    yield made
    made.close()


# -- sending what an attacker made -------------------------------------------------


def forged(thief, *specs: dict) -> list:
    """Events signed by hand with ``thief``'s key, one after another on its feed."""
    seq, prev = store.feed_head(thief.db, thief.info.author, thief.info.epoch)
    events = []
    for fields in specs:
        seq += 1
        events.append(next_event(thief, seq=seq, prev=prev, **fields))
        prev = events[-1].id
    return events


def registration(node, number: str, area: str | None = None) -> dict:
    """A ``case.register`` numbered ``number``, with a valid body a node wrote."""
    body = next(e.body for e in feed(node) if e.type == "case.register")
    return {"entity_id": number, "area": area or node.info.area, "body": body}


def step_event(case_id: str, step: str, area: str, values: dict | None = None) -> dict:
    return {"type": f"case.{step}", "entity_id": case_id, "area": area,
            "body": {"values": values or VALUES[step], "by": "盗用密钥"}}


def assert_refused(receiver, event, refused: dict[str, str], *words: str) -> None:
    """Refused with a reason naming what was wrong, quarantined, and nowhere else."""
    assert list(refused) == [event.id]
    for word in words:
        assert word in refused[event.id], refused[event.id]
    assert all(word in i18n.show(quarantine(receiver)[event.id]["reason"]) for word in words)
    assert event.id not in event_ids(receiver)


def conflict_reasons(node, events) -> dict[str, str]:
    ids = [e.id for e in events]
    return {event_id: reason for event_id, reason in node.db.execute(
        f"select event_id, reason from conflicts where event_id in ({','.join('?' * len(ids))})",
        ids)}


def case_state(node, case_id: str) -> tuple:
    case = api.get_case(node, case_id, reveal=False)
    return case.status, [h["step"] for h in case.history], case.forwarded_to, case.unit


# -- a step on a case outside the author's scope --------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_every_step_a_village_key_signs_on_a_sibling_village_case_is_a_conflict_everywhere(
        tree, tmp_path, via):
    """The thief puts its own area on each event, so each passes the scope check on
    arrival; the case's area decides in the fold, on the township and the county."""
    thief, victim, township, county = tree.sibling, tree.village, tree.township, tree.county
    register(thief, 1)
    target = register(victim, 2)
    for node in (thief, victim):
        carry(node, township, tmp_path)
    assert set(VALUES) == {s.name for s in lifecycle.STEPS}
    before = case_state(township, target)
    events = forged(thief, *(step_event(target, step, SIBLING) for step in VALUES))
    applied, refused = deliver(thief, township, events, via, tmp_path)
    assert (applied, refused) == (len(events), {})       # stored and relayed, never folded
    carry(township, county, tmp_path)
    for node in (township, county):
        assert case_state(node, target) == before
        reasons = conflict_reasons(node, events)
        assert set(reasons) == {e.id for e in events}
        for reason in map(i18n.show, reasons.values()):
            assert SIBLING in reason and VILLAGE in reason and "区划" in reason, reason
        assert verify.rebuild(node, check_only=True).consistent
    assert conflict_reasons(township, events) == conflict_reasons(county, events)


@pytest.mark.parametrize("via", VIAS)
def test_a_step_naming_the_sibling_villages_area_is_refused_on_arrival(tree, tmp_path, via):
    thief, victim, township = tree.sibling, tree.village, tree.township
    register(thief, 1)
    target = register(victim, 2)
    for node in (thief, victim):
        carry(node, township, tmp_path)
    before = views(township)
    (event,) = forged(thief, step_event(target, "withdraw", VILLAGE))
    applied, refused = deliver(thief, township, [event], via, tmp_path)
    assert applied == 0
    assert_refused(township, event, refused, "超出辖区", VILLAGE)
    assert views(township) == before


@pytest.mark.parametrize("via", VIAS)
def test_a_village_key_cannot_step_its_townships_own_case(tree, tmp_path, via):
    thief, township, county = tree.village, tree.township, tree.county
    register(thief, 1)
    target = register(township, 2)                         # the township's own area
    carry(thief, township, tmp_path)
    (event,) = forged(thief, step_event(target, "withdraw", VILLAGE))
    assert deliver(thief, township, [event], via, tmp_path) == (1, {})
    carry(township, county, tmp_path)
    for node in (township, county):
        assert api.get_case(node, target, reveal=False).status == "registered"
        (reason,) = conflict_reasons(node, [event]).values()
        assert TOWNSHIP in i18n.show(reason) and VILLAGE in i18n.show(reason)


# -- case numbers -------------------------------------------------------------------


def squat_sibling(tree):
    """A village key numbers a case under the sibling village's area code."""
    return tree.sibling, f"{VILLAGE}-2026-00002", SIBLING, ("编号", VILLAGE, SIBLING)


def squat_next_epoch(tree):
    """Its own area, but the serial of epoch 1's range, which a restored node will use."""
    return tree.village, f"{VILLAGE}-2026-100001", VILLAGE, ("100001", "纪元 0", "99999")


def squat_other_year(tree):
    """Its own area and range, a year the registration is not dated in."""
    return tree.village, f"{VILLAGE}-2027-00009", VILLAGE, ("2027", "2026")


def squat_odd_width(tree):
    return tree.village, f"{VILLAGE}-2026-9", VILLAGE, ("9", "00001")


def squat_no_number(tree):
    return tree.village, "第3号", VILLAGE, ("第3号", "区划-年份-序号")


SQUATS = [squat_sibling, squat_next_epoch, squat_other_year, squat_odd_width, squat_no_number]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("make", SQUATS, ids=[f.__name__ for f in SQUATS])
def test_a_village_key_taking_a_number_not_its_own_is_refused_on_arrival(tree, tmp_path, make,
                                                                          via):
    thief, number, area, words = make(tree)
    register(thief, 1)
    carry(thief, tree.township, tmp_path)
    before = views(tree.township)
    (event,) = forged(thief, registration(thief, number, area))
    applied, refused = deliver(thief, tree.township, [event], via, tmp_path)
    assert applied == 0
    assert_refused(tree.township, event, refused, *words)
    assert views(tree.township) == before


@pytest.mark.parametrize("via", VIAS)
def test_a_township_key_cannot_take_a_number_of_a_village_in_its_area(tree, tmp_path, via):
    """The village's area lies in the township's scope, so only the number stops it; the
    village then registers that number itself without a conflict anywhere."""
    township, county, village = tree.township, tree.county, tree.village
    register(village, 1)
    register(township, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    before = views(county)
    number = f"{VILLAGE}-2026-00002"
    (event,) = forged(township, registration(township, number, VILLAGE))
    applied, refused = deliver(township, county, [event], via, tmp_path)
    assert applied == 0
    assert_refused(county, event, refused, number, TOWNSHIP)
    assert views(county) == before
    assert register(village, 2) == number
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    assert api.get_case(county, number, reveal=False).status == "registered"
    assert county.db.execute("select count(*) from conflicts").fetchone()[0] == 0


def test_a_high_number_of_another_key_for_the_same_area_does_not_move_this_nodes_numbering(
        tree, tmp_path):
    """A second key certified for the village's area (as a stolen township key could
    certify one) takes the last serial of the range: valid for it, but the village's
    own numbering goes on from its own numbers, not from 99999 (used up)."""
    village, township = tree.village, tree.township
    assert register(village, 1) == f"{VILLAGE}-2026-00001"
    carry(village, township, tmp_path)
    other = new_node(tmp_path / "other", "village", VILLAGE, "示例一村另一工作站")
    enrol(other, township)
    fields = registration(village, f"{VILLAGE}-2026-99999")   # its first event, by hand
    squat = Event.create(other.keys, epoch=0, seq=1, prev=None, hlc=other.clock.tick(),
                         type="case.register", entity="case", **fields)
    assert deliver(other, township, [squat], "bundle", tmp_path) == (1, {})
    carry(township, village, tmp_path)
    assert f"{VILLAGE}-2026-99999" in {c.id for c in api.list_cases(village)}
    assert register(village, 2) == f"{VILLAGE}-2026-00002"
    other.close()


def test_after_a_rotation_the_new_key_numbers_on_from_the_old_keys_numbers(tree, tmp_path):
    village, township = tree.village, tree.township
    assert register(village, 1) == f"{VILLAGE}-2026-00001"
    rotate_and_enrol(village, township)
    assert register(village, 2) == f"{VILLAGE}-2026-00002"
    carry(village, township, tmp_path)
    assert {c.id for c in api.list_cases(township)} == {f"{VILLAGE}-2026-00001",
                                                         f"{VILLAGE}-2026-00002"}
    assert township.db.execute("select count(*) from conflicts").fetchone()[0] == 0


def test_numbers_a_stolen_key_took_after_its_revocation_point_do_not_count_for_the_successor(
        tree, tmp_path):
    """The thief's last-serial registration reached the village itself, as its own next
    event. Once the county revokes the key before it, the village's new key numbers on
    from the village's genuine numbers."""
    village, township, county = tree.village, tree.township, tree.county
    register(village, 1)
    carry(village, township, tmp_path)
    (squat,) = forged(village, registration(village, f"{VILLAGE}-2026-99999"))
    assert deliver(village, township, [squat], "bundle", tmp_path)[0] == 1
    carry(township, village, tmp_path)
    assert squat.id in event_ids(village)
    carry(township, county, tmp_path)                     # the county knows the key
    county.append(Draft("trust.revoke", "trust", village.info.author, VILLAGE,
                        {"epoch": 0, "seq": 1, "reason": "测试：密钥被盗"}))
    carry(county, township, tmp_path)
    # no bundle is exported to a revoked key: the revocation reaches the village by hand
    send_pages(township, village, [p.to_wire() for p in pages_for(
        township, VILLAGE, frontier(village.db))], tmp_path)
    rotate_and_enrol(village, township)
    assert register(village, 2) == f"{VILLAGE}-2026-00002"


def rotate_and_enrol(node, parent) -> None:
    """``xinfang enroll rotate`` at ``node``, the new key certified by ``parent``."""
    request = trust.rotate_keys(node)
    sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(parent, request))
    trust.import_certificate(node, envelope.open_(node.keys, sealed, "enrolment").payload)


# -- forwarding and assigning ----------------------------------------------------------


def forward_to_another_township(tree):
    return tree.township, {"mode": "assign", "to_area": "431202102201"}, ("431202102201",
                                                                          TOWNSHIP)


def forward_up_to_the_county(tree):
    return tree.township, {"mode": "transfer", "to_area": COUNTY}, (COUNTY, TOWNSHIP)


def forward_to_its_own_area(tree):
    return tree.township, {"mode": "assign", "to_area": TOWNSHIP}, (TOWNSHIP, "以下")


def forward_to_no_area(tree):
    return tree.township, {"mode": "assign", "to_area": "镇东片"}, ("镇东片", "区划代码")


def assign_by_a_village(tree):
    return tree.village, {"mode": "assign", "unit": "村委会"}, ("村", "交办", "转送")


FORWARDS = [forward_to_another_township, forward_up_to_the_county, forward_to_its_own_area,
            forward_to_no_area, assign_by_a_village]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("make", FORWARDS, ids=[f.__name__ for f in FORWARDS])
def test_a_forward_outside_the_authors_area_or_by_a_level_that_may_not_assign_is_refused(
        tree, tmp_path, make, via):
    thief, values, words = make(tree)
    parent = tree.county if thief is tree.township else tree.township
    target = register(tree.village, 1)
    carry(tree.village, tree.township, tmp_path)
    if thief is tree.township:
        register(thief, 2)                                 # the township's feed has a head
    carry(thief, parent, tmp_path)
    before = views(parent)
    (event,) = forged(thief, step_event(target, "forward", VILLAGE, {"date": DATE, **values}))
    applied, refused = deliver(thief, parent, [event], via, tmp_path)
    assert applied == 0
    assert_refused(parent, event, refused, "转送交办", *words)
    assert views(parent) == before


def test_a_certified_village_is_refused_an_assignment_before_signing_and_may_transfer(tree):
    village = tree.village
    case_id = register(village, 1)
    before = event_ids(village)
    with pytest.raises(InvalidEvent, match="村.*交办"):
        api.take_step(village, case_id, "forward", {"mode": "交办", "unit": "村委会"},
                      today=TODAY)
    assert event_ids(village) == before
    api.take_step(village, case_id, "forward", {"mode": "转送", "unit": "镇司法所"}, today=TODAY)
    assert api.get_case(village, case_id, reveal=False).status == "forwarded"


# -- level authority: 复查 by the level above, 复核 above that ------------------------------


def answered(tree, tmp_path, by=None) -> str:
    """A village case accepted and answered by ``by`` (the village), at the township."""
    by = by or tree.village
    case_id = register(tree.village, 1)
    carry(tree.village, tree.township, tmp_path)
    api.take_step(by, case_id, "accept", {"date": "2026-03-10"}, today=TODAY)
    api.take_step(by, case_id, "answer", {"date": "2026-03-10", "outcome": "explain"},
                  today=TODAY)
    if by is tree.village:
        carry(tree.village, tree.township, tmp_path)
    return case_id


def test_a_village_cannot_review_its_own_answer_and_is_told_who_may(tree, tmp_path):
    village = tree.village
    case_id = answered(tree, tmp_path)
    before = event_ids(village)
    with pytest.raises(StepRefused) as caught:
        api.take_step(village, case_id, "request_review", {"date": DATE}, today=TODAY)
    message = str(caught.value)
    assert "复查申请" in message and VILLAGE in message and TOWNSHIP in message, message
    assert event_ids(village) == before
    assert api.guard_view(tree.township, case_id)["taken_by"]["answer"] == {
        "area": VILLAGE, "level": "village"}


def test_a_township_cannot_review_its_own_answer_the_county_may(tree, tmp_path):
    township, county = tree.township, tree.county
    case_id = answered(tree, tmp_path, by=township)
    with pytest.raises(StepRefused, match=f"{COUNTY}(?!\\d)"):
        api.take_step(township, case_id, "request_review", {"date": DATE}, today=TODAY)
    carry(township, county, tmp_path)
    api.take_step(county, case_id, "request_review", {"date": DATE}, today=TODAY)
    assert api.get_case(county, case_id, reveal=False).status == "review_requested"


@pytest.mark.parametrize("via", VIAS)
def test_a_review_signed_with_the_answering_villages_key_is_a_conflict_everywhere(
        tree, tmp_path, via):
    village, township, county = tree.village, tree.township, tree.county
    case_id = answered(tree, tmp_path)
    events = forged(village, step_event(case_id, "request_review", VILLAGE))
    assert deliver(village, township, events, via, tmp_path) == (1, {})
    carry(township, county, tmp_path)
    for node in (township, county):
        assert api.get_case(node, case_id, reveal=False).status == "answered"
        (reason,) = map(i18n.show, conflict_reasons(node, events).values())
        assert "复查申请" in reason and TOWNSHIP in reason, reason
        assert verify.rebuild(node, check_only=True).consistent


def reviewed(tree, tmp_path) -> str:
    """Answered by the village, reviewed by the township, at the county."""
    township = tree.township
    case_id = answered(tree, tmp_path)
    api.take_step(township, case_id, "request_review", {"date": "2026-03-15"}, today=TODAY)
    api.take_step(township, case_id, "answer_review", {"date": "2026-03-18", "outcome": "维持"},
                  today=TODAY)
    carry(township, tree.county, tmp_path)
    return case_id


def test_the_statutory_path_village_answer_township_review_county_rereview_and_final(
        tree, tmp_path):
    county, township, village = tree.county, tree.township, tree.village
    case_id = reviewed(tree, tmp_path)
    with pytest.raises(StepRefused, match=f"{COUNTY}(?!\\d)"):  # 复核 is not the reviewer's
        api.take_step(township, case_id, "request_rereview", {"date": DATE}, today=TODAY)
    for step, values in (("request_rereview", {}), ("answer_rereview", {"outcome": "维持"}),
                         ("finalize", {})):
        api.take_step(county, case_id, step, {"date": DATE, **values}, today=TODAY)
    carry(county, township, tmp_path)
    carry(township, village, tmp_path)
    for node in (county, township, village):
        case = api.get_case(node, case_id, reveal=False)
        assert case.status == "final" and case.conflicts == ()
        assert verify.rebuild(node, check_only=True).consistent
    assert api.guard_view(village, case_id)["taken_by"]["answer_review"] == {
        "area": TOWNSHIP, "level": "township"}


@pytest.mark.parametrize("via", VIAS)
def test_a_stolen_township_key_cannot_take_the_rereview_nor_finalize(tree, tmp_path, via):
    county, township = tree.county, tree.township
    case_id = reviewed(tree, tmp_path)
    rereview = forged(township, step_event(case_id, "request_rereview", VILLAGE))
    assert deliver(township, county, rereview, via, tmp_path) == (1, {})
    assert api.get_case(county, case_id, reveal=False).status == "review_answered"
    (reason,) = map(i18n.show, conflict_reasons(county, rereview).values())
    assert "复核申请" in reason and COUNTY in reason and TOWNSHIP in reason, reason
    for step, values in (("request_rereview", {}), ("answer_rereview", {"outcome": "维持"})):
        api.take_step(county, case_id, step, {"date": DATE, **values}, today=TODAY)
    carry(county, township, tmp_path)
    final = forged(township, step_event(case_id, "finalize", VILLAGE))
    assert deliver(township, county, final, via, tmp_path) == (1, {})
    assert api.get_case(county, case_id, reveal=False).status == "rereview_answered"
    (reason,) = map(i18n.show, conflict_reasons(county, final).values())
    assert "终结" in reason and COUNTY in reason, reason


def test_who_may_review_is_decided_alike_in_any_arrival_order(tree, tmp_path):
    """A fresh node with the county's trust data, given the county's log in reverse
    order, folds the same views: the forged review is the same conflict."""
    county, township, village = tree.county, tree.township, tree.village
    case_id = answered(tree, tmp_path)
    events = forged(village, step_event(case_id, "request_review", VILLAGE))
    deliver(village, township, events, "bundle", tmp_path)
    api.take_step(township, case_id, "request_review", {"date": DATE}, today=TODAY)
    carry(township, county, tmp_path)
    fresh = new_node(tmp_path / "fresh", "county", COUNTY, "测试县信访局")
    with fresh.db.atomic():
        for cert in store.all_certificates(county.db):
            store.remember_certificate(fresh.db, cert)
        store.set_meta(fresh.db, "root_author", store.get_meta(county.db, "root_author"))
    for event in reversed(list(store.all_events(county.db))):
        fresh.ingest([event])
    assert views(fresh) == views(county)
    assert set(conflict_reasons(fresh, events)) == {events[0].id}
    assert api.get_case(fresh, case_id, reveal=False).status == "review_requested"
    fresh.close()
