"""同人 tags that no node can test an ID number against, and 重复访 found through them.

An ID number has little entropy (region, birth date, serial), so whoever holds
the key of a tag can try every plausible number against it. Each node tags
its registrations under its own key, which never leaves it; the county at the
root of the tree, the one node sent every ID number (sealed to it alone),
adds jurisdiction tags under its key with a ``case.tag`` event. Every test
runs on real enrolled nodes (county -> township -> two villages) moving real
bundles and HTTP requests; names and ID numbers are synthetic.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import (TODAY, VILLAGES, build_tree, carry, deliver, enrol, event_ids,
                          new_node, next_event, quarantine, register, serve, synthetic_id,
                          views)
from xinfang import hookimpl
from xinfang.core import fold, i18n, sealing, store, verify
from xinfang.core.errors import InvalidEvent
from xinfang.core.node import Draft, Node
from xinfang.plugins.cases import api
from xinfang.sync.http import Client

VIAS = ["bundle", "http"]
HEX64 = re.compile(rb"[0-9a-f]{64}")
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree")
    yield made
    made.close()


# -- moving and looking ------------------------------------------------------------


def up_and_down(tree, via: str, tmp_path: Path) -> None:
    """Both villages to the township, the township to the county and back, then the
    township to both villages: what a day's syncs do, by bundle or by HTTP."""
    villages, township, county = tree.villages, tree.township, tree.county
    if via == "bundle":
        for village in villages:
            carry(village, township, tmp_path)
        carry(township, county, tmp_path)
        carry(county, township, tmp_path)
        for village in villages:
            carry(township, village, tmp_path)
        return
    with serve(township) as township_url, serve(county) as county_url:
        for village in villages:
            Client(village, township_url).sync()
        Client(township, county_url).sync()  # the county tags while serving the push
        for village in villages:
            Client(village, township_url).sync()


def flags(node: Node, case_id: str) -> tuple[str | None, bool]:
    case = api.get_case(node, case_id, reveal=False)
    return case.repeat_of, case.first_petition


def person(serial: int, name: str | None = None) -> api.PetitionerInput:
    return api.PetitionerInput(name or f"赵某{serial}", synthetic_id(serial))


def case_tag_events(node: Node) -> list[tuple[str, str]]:
    return node.db.execute("select entity_id, author from events where type = 'case.tag' "
                           "order by entity_id").fetchall()


def tags_held(node: Node) -> set[str]:
    """Every tag the node's store holds: in the views and in the bodies of its events."""
    found = {row[0] for row in node.db.execute("select tag from case_tags")}
    found |= {row[0] for row in node.db.execute(
        "select id_tag from case_petitioners where id_tag is not null")}
    for (raw,) in node.db.execute("select raw from events where type in ('case.register', "
                                  "'case.tag')"):
        found |= set(HEX32.findall(raw.decode("utf-8", "replace")))
    return found


def keys_held(node: Node) -> set[str]:
    """Everything in the node's store that could serve as a key: every 64-hex string in
    any table (meta included), the private keys in its key files and the vault's key."""
    candidates: set[str] = set()
    conn = sqlite3.connect(str(node.home / "xinfang.db"))
    try:
        for (table,) in conn.execute("select name from sqlite_master where type = 'table'"):
            for row in conn.execute(f"select * from [{table}]"):
                for cell in row:
                    data = cell.encode("utf-8") if isinstance(cell, str) else cell
                    if isinstance(data, bytes):
                        candidates |= {m.decode() for m in HEX64.findall(data)}
    finally:
        conn.close()
    keys = node.keys
    candidates.add(keys.signing.private_bytes_raw().hex())
    candidates.add(keys.encryption.private_bytes_raw().hex())
    candidates.add(node.vault._key.hex())
    for path in (node.home / "keys").iterdir():
        candidates |= {m.decode() for m in HEX64.findall(path.read_bytes())}
    return candidates


# -- no node but the root can test a guess ----------------------------------------


def test_no_key_in_a_townships_store_makes_any_tag_it_holds_from_the_true_id_number(
        tree, tmp_path):
    """The township holds both villages' own tags and the county's jurisdiction tags of
    the same person, yet nothing it holds (meta, vault, key files, any table) is a key
    under which a tag it holds equals the tag of the true ID number; the county's and
    the villages' keys are (the check would find them)."""
    v1, v2, township, county = *tree.villages, tree.township, tree.county
    register(v1, 1)
    register(v2, 1, received="2026-04-01")
    register(v2, 2)
    up_and_down(tree, "bundle", tmp_path)
    ids = [synthetic_id(1), synthetic_id(2)]
    held = tags_held(township)
    assert len(case_tag_events(township)) == 3
    for owner in (county, v1, v2):  # the tags it holds are made under these keys
        assert sealing.match_tag(owner.match_key, ids[0]) in held
    candidates = keys_held(township)
    assert township.match_key in candidates and len(candidates) > 20
    testable = {(key[:8], number) for key in candidates for number in ids
                if sealing.match_tag(key, number) in held}
    assert testable == set()
    for number in ids:
        assert township.vault.digests_of_value(number) == []


def test_enrolment_leaves_every_node_its_own_match_key(tree):
    keys = [node.match_key for node in tree.nodes]
    assert len(set(keys)) == len(keys) == 4
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


def test_a_match_key_an_older_parent_still_sends_is_ignored(tmp_path):
    county = new_node(tmp_path / "county", "county", "431202", "示例县信访局", root=True)
    village = new_node(tmp_path / "village", "village", *VILLAGES[0])
    own = village.match_key
    from xinfang.sync import envelope, trust

    request = trust.EnrolmentRequest.from_json(trust.make_request(village).to_json())
    answer = {**trust.sign_request(county, request), "match_key": county.match_key}
    assert "match_key" not in trust.sign_request(county, request)
    sealed = envelope.seal(county.keys, request.subject, request.encryption, "enrolment",
                           answer)
    trust.import_certificate(village, envelope.open_(village.keys, sealed,
                                                     "enrolment").payload)
    assert village.match_key == own != county.match_key
    county.close()
    village.close()


# -- 重复访 across villages, at a village, across enrolment ------------------------


@pytest.mark.parametrize("via", VIAS)
def test_one_person_at_two_villages_is_a_repeat_at_the_county_and_below_without_the_id_number(
        tree, tmp_path, via):
    v1, v2, township, county = *tree.villages, tree.township, tree.county
    first = register(v1, 1, received="2026-03-05")
    second = register(v2, 1, received="2026-03-10")
    other = register(v2, 5, received="2026-03-11")
    for village in (v1, v2):
        carry(village, township, tmp_path)
    # the villages' own tags differ: the township alone cannot link them
    assert flags(township, second) == (None, True)
    up_and_down(tree, via, tmp_path)
    for node in (county, township):
        assert flags(node, first) == (None, True)
        assert flags(node, second) == (first, False)
        assert flags(node, other) == (None, True)
    assert [a for _, a in case_tag_events(township)] == [county.info.author] * 3
    assert flags(v2, second) == (None, True)  # v2 holds no case of v1 to repeat
    number = synthetic_id(1)
    assert len(county.vault.digests_of_value(number)) == 2  # the ID number alone went up
    assert county.vault.digests_of_value("赵某1") == []
    assert township.vault.digests_of_value(number) == []
    digests = {c: {p["id_seal"] for p in county.db.query(
        "select id_seal from case_petitioners where case_id = ?", [c])} for c in (first, second)}
    assert v1.vault.of_entity(second, digests[second]) == []
    assert v2.vault.of_entity(first, digests[first]) == []
    assert held_boxes(township) and all(r == county.info.author for r in held_boxes(township))
    for node in tree.nodes:
        assert verify.rebuild(node, check_only=True).consistent


def held_boxes(node: Node) -> list[str]:
    return [row[0] for row in node.db.execute("select recipient from held_boxes")]


def test_one_person_twice_at_a_village_is_a_repeat_there_without_any_sync(tree):
    village = tree.village
    first = register(village, 3, received="2026-02-01")
    second = register(village, 3, received="2026-05-01")
    assert flags(village, second) == (first, False)
    (tag,) = {row[0] for row in village.db.execute("select id_tag from case_petitioners")}
    assert tag == sealing.match_tag(village.match_key, synthetic_id(3))
    assert case_tag_events(village) == []


def test_a_repeat_registered_after_enrolment_matches_the_case_from_before_it(tree, tmp_path):
    """Enrolment keeps the village's key, so its own tags before and after agree; at the
    county both cases get the same jurisdiction tag."""
    township, county = tree.township, tree.county
    village = new_node(tmp_path / "late", "village", "431202101203", "示例一镇示例三村信访站")
    key = village.match_key
    before = register(village, 4, received="2026-01-10")
    enrol(village, township)
    assert village.match_key == key
    after = register(village, 4, received="2026-06-10")
    assert flags(village, after) == (before, False)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    assert flags(county, after) == (before, False)
    assert {c for c, _ in case_tag_events(county)} == {before, after}
    carry(county, township, tmp_path)
    carry(township, village, tmp_path)
    assert flags(village, after) == (before, False)
    assert verify.rebuild(village, check_only=True).consistent
    village.close()


def test_the_countys_own_registration_and_a_villages_of_one_person_link_at_once(tree, tmp_path):
    """The county's own tag is under its key already: a case it registers needs no
    case.tag, and links with a village's case as soon as the village's is tagged."""
    v1, township, county = tree.village, tree.township, tree.county
    own = register(county, 6, received="2026-02-01", area=v1.info.area)
    theirs = register(v1, 6, received="2026-02-20")
    carry(v1, township, tmp_path)
    carry(township, county, tmp_path)
    assert flags(county, theirs) == (own, False)
    assert [c for c, _ in case_tag_events(county)] == [theirs]
    found = api_find(county, 6)
    assert found == {own, theirs}
    carry(township, county, tmp_path)  # nothing new: tagged once only
    assert len(case_tag_events(county)) == 1


def api_find(node: Node, serial: int) -> set[str]:
    from xinfang.plugins.cases import find

    return {f.case.id for f in find.find_cases(node, id_number=synthetic_id(serial))}


# -- only the root may tag ----------------------------------------------------------


def forged_tag(thief: Node, case_id: str, area: str, tag: str = "0" * 32):
    return next_event(thief, type="case.tag", entity_id=case_id, area=area,
                      body={"values": {"tags": f"0:{tag}"}})


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("thief_at", ["township", "village"])
def test_a_case_tag_signed_with_a_stolen_township_or_village_key_is_refused_on_arrival(
        tree, tmp_path, via, thief_at):
    """A thief could tag two people alike to fake a 重复访 (or tag under a key it knows,
    to test guesses by proxy): the tag is refused, quarantined, and links nothing."""
    v1, township, county = tree.village, tree.township, tree.county
    first = register(v1, 1)
    second = register(v1, 2, received="2026-04-01")
    carry(v1, township, tmp_path)
    carry(township, county, tmp_path)
    thief, receiver = (township, county) if thief_at == "township" else (v1, township)
    (tag,) = receiver.db.execute("select id_tag from case_petitioners where case_id = ?",
                                 [first]).fetchone()  # accepted, it would link the two
    event = forged_tag(thief, second, v1.info.area, tag)
    before = views(receiver)
    applied, refused = deliver(thief, receiver, [event], via, tmp_path)
    assert applied == 0 and list(refused) == [event.id]
    assert "case.tag" in refused[event.id] and thief.info.name in refused[event.id]
    assert event.id in quarantine(receiver) and event.id not in event_ids(receiver)
    assert views(receiver) == before
    assert flags(receiver, second) == (None, True)


def test_the_root_cannot_sign_a_malformed_tag_and_a_tag_past_the_petitioners_is_a_conflict(
        tree, tmp_path):
    v1, township, county = tree.village, tree.township, tree.county
    case_id = register(v1, 1)
    carry(v1, township, tmp_path)
    carry(township, county, tmp_path)
    for bad in ("0:" + "A" * 32, "0:abc", "1:" + "a" * 32 + " 0:" + "b" * 32, "x", ""):
        with pytest.raises(InvalidEvent, match="case.tag"):
            county.append(Draft("case.tag", "case", case_id, v1.info.area,
                                {"values": {"tags": bad}}))
    event = county.append(Draft("case.tag", "case", case_id, v1.info.area,
                                {"values": {"tags": "3:" + "c" * 32}}))
    (reason,) = county.db.execute("select reason from conflicts where event_id = ?",
                                  [event.id]).fetchone()
    assert "4" in i18n.show(reason) and "1" in i18n.show(reason)
    assert not county.db.execute("select 1 from case_tags where tag = ?",
                                 ["c" * 32]).fetchone()


# -- the hook, at every call site --------------------------------------------------


class Received:
    """Records each ``xinfang_received`` call: which node, how many events were new."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def xinfang_received(self, node, applied):
        self.calls.append((node.info.name, applied))


def test_the_received_hook_runs_after_a_bundle_import_and_on_both_sides_of_http(tmp_path):
    recorder = Received()
    tree = build_tree(tmp_path / "tree", villages=1, plugins=[recorder])
    try:
        v1, township, county = tree.village, tree.township, tree.county
        register(v1, 1)
        carry(v1, township, tmp_path)
        assert recorder.calls == [(township.info.name, 1)]
        recorder.calls.clear()
        with serve(county) as url:  # the server opens the node with the built-in plugins
            Client(township, url).sync()
        assert (township.info.name, 1) in recorder.calls  # the county's case.tag, pulled
        assert {name for name, _ in recorder.calls} == {township.info.name}
        assert len(case_tag_events(township)) == 1
    finally:
        tree.close()


def test_the_built_in_received_hook_tags_at_the_http_server_as_it_applies_a_push(tree):
    v1, township, county = tree.village, tree.township, tree.county
    case_id = register(v1, 8)
    with serve(township) as township_url, serve(county) as county_url:
        Client(v1, township_url).sync()
        summary = Client(township, county_url).sync()
    assert summary.pushed >= 1 and summary.pulled == 1
    assert [c for c, _ in case_tag_events(township)] == [case_id]


# -- any order of arrival folds alike ---------------------------------------------


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The events of a small day at the county: one person at both villages and at the
    county itself, another twice at one village, a step, and the county's tags; with
    the views of folding them in log order."""
    base = tmp_path_factory.mktemp("scenario")
    tree = build_tree(base / "tree")
    try:
        v1, v2, township, county = *tree.villages, tree.township, tree.county
        names = {"a1": register(v1, 1, received="2026-03-01"),
                 "b1": register(v1, 2, received="2026-03-02"),
                 "a2": register(v2, 1, received="2026-03-03"),
                 "b2": register(v1, 2, received="2026-03-04"),
                 "a3": register(county, 1, received="2026-03-05", area=v2.info.area)}
        api.take_step(v2, names["a2"], "accept", {"date": "2026-03-06"}, today=TODAY)
        for village in (v1, v2):
            carry(village, township, base)
        carry(township, county, base)
        events = [e for e in store.all_events(county.db) if e.entity == "case"]
        assert sum(e.type == "case.tag" for e in events) == 4
        expected = {"a2": names["a1"], "b2": names["b1"], "a3": names["a2"]}
        for name, earlier in expected.items():
            assert flags(county, names[name]) == (earlier, False)
        reference, repeats = fresh_fold(base / "reference",
                                        sorted(events, key=lambda e: e.order_key))
        assert {names[n]: repeats[names[n]] for n in expected} == {
            names[n]: earlier for n, earlier in expected.items()}
        return events, reference
    finally:
        tree.close()


_homes = itertools.count()


def fresh_fold(home: Path, events) -> tuple[str, dict]:
    """A fresh node given ``events`` one at a time: its views' digest and repeat links."""
    node = new_node(home, "county", "431202", "副本")
    try:
        for event in events:
            assert node.ingest([event]) == 1
        found = {row[0]: row[1] for row in node.db.execute("select id, repeat_of from cases")}
        return fold.views_digest(node.db, node.registry), found
    finally:
        node.close()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arrival_order_of_registrations_and_tags_folds_the_same_views(scenario, tmp_path,
                                                                          data):
    """A tag may arrive before its registration (a conflict, until the registration
    re-folds the case) and an earlier case after a later one: the views end alike."""
    events, reference = scenario
    shuffled = data.draw(st.permutations(events))
    digest, _ = fresh_fold(tmp_path / f"fresh-{next(_homes)}", shuffled)
    assert digest == reference


def test_a_registration_from_a_clock_set_ahead_is_tagged_once_the_roots_clock_passes_it(
        tree, tmp_path):
    """A village whose wall clock runs ten days ahead registers a repeat. The root
    does not sign a tag that would sort before the registration (a conflict, and
    one more on every sync); it tags once its own clock has passed it, once."""
    v1, v2, township, county = *tree.villages, tree.township, tree.county
    first = register(v1, 1, received="2026-03-05")
    real = v2.clock.now_ms
    v2.clock.now_ms = lambda: real() + 10 * 86_400_000
    ahead = register(v2, 1, received="2026-03-10")
    for _ in range(2):
        up_and_down(tree, "bundle", tmp_path)
    assert [c for c, _ in case_tag_events(county)] == [first]
    assert county.db.execute("select count(*) from conflicts").fetchone()[0] == 0
    assert flags(county, ahead) == (None, True)
    county_real = county.clock.now_ms
    county.clock.now_ms = lambda: county_real() + 11 * 86_400_000
    up_and_down(tree, "bundle", tmp_path)
    up_and_down(tree, "bundle", tmp_path)
    assert sorted(c for c, _ in case_tag_events(county)) == sorted([first, ahead])
    assert county.db.execute("select count(*) from conflicts").fetchone()[0] == 0
    assert flags(county, ahead) == (first, False)
    assert flags(township, ahead) == (first, False)
