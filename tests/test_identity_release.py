"""Petitioner identity goes only to the office that handles its own case, sealed
end to end: relays carry boxes they cannot open, and a digest copied into
another record releases nothing.

Real nodes on disk, bundles as files, HTTP through waitress; the relays'
stores are searched for the clear values byte by byte.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from xinfang.core import policy, sealing, store
from xinfang.plugins.cases import api
from xinfang.sync import boxes, send
from xinfang.sync.http import Client
from xinfang.sync.wire import frontier

from sync_helpers import (COUNTY, TODAY, TOWNSHIP, VILLAGES, build_tree, carry, enrol,
                          new_node, next_event, register, serve, synthetic_id)

CITY = ("4312", "示例市信访局")


def person(serial: int) -> api.PetitionerInput:
    return api.PetitionerInput(f"钱某{serial}", synthetic_id(serial), f"1390000{serial:04d}",
                               f"示例村{serial}组")


def register_for(node, area: str, serial: int) -> str:
    return api.register_case(node, api.CaseInput(
        petitioners=[person(serial)], channel="来访", category="劳动社保", kind="申诉求决",
        request="请求追讨拖欠工资", received="2026-03-05", area=area), today=TODAY)


def holds_in_clear(node, value: str) -> bool:
    """Whether ``value`` is anywhere in the node's vault, as the vault reads it."""
    return bool(node.vault.digests_of_value(value))


def store_bytes(node) -> bytes:
    node.db.execute("pragma wal_checkpoint(truncate)")
    return b"".join(p.read_bytes() for p in Path(node.home).glob("xinfang.db*"))


def assert_relay_cannot_read(relay, case_id: str, who: api.PetitionerInput) -> None:
    for value in (who.name, who.id_number, who.phone):
        assert not holds_in_clear(relay, value)
        assert value.encode("utf-8") not in store_bytes(relay)
    assert api.get_case(relay, case_id).petitioners[0].name is None
    held = relay.db.execute("select digest, recipient, box from held_boxes where entity_id = ?",
                            [case_id]).fetchall()
    assert held, "the relay holds the boxes it forwards"
    for digest, recipient, data in held:
        box = boxes.Box(digest, case_id, recipient, bytes(data))
        with pytest.raises(sealing.BoxError):
            sealing.open_box(relay.keys.encryption, box.data, box.binding())


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path)
    carry(made.county, made.township, tmp_path)  # the township's certificate events
    carry(made.township, made.village, tmp_path)
    carry(made.township, made.county, tmp_path)  # the county learns the villages' certificates
    yield made
    made.close()


def test_a_county_assignment_through_a_township_is_readable_by_the_village_only(tree, tmp_path):
    """Two hops: county to township over HTTP, township to village by bundle."""
    case_id = register_for(tree.county, tree.village.info.area, 41)
    api.take_step(tree.county, case_id, "forward", {"mode": "assign",
                                                    "to_area": tree.village.info.area,
                                                    "unit": "属地村委会"}, today=TODAY)
    with serve(tree.county) as url:
        Client(tree.township, url).sync()
    carry(tree.township, tree.village, tmp_path)

    seen = api.get_case(tree.village, case_id).petitioners[0]
    assert (seen.name, seen.id_number, seen.phone) == (person(41).name, person(41).id_number,
                                                       person(41).phone)
    assert_relay_cannot_read(tree.township, case_id, person(41))
    # the sibling village is not on the way and gets neither the case nor a box
    carry(tree.township, tree.sibling, tmp_path)
    assert not holds_in_clear(tree.sibling, person(41).name)
    assert tree.sibling.db.execute("select count(*) from held_boxes").fetchone()[0] == 0


def test_a_city_assignment_reaches_the_village_over_three_hops_readable_there_only(tmp_path):
    """Three hops: city to county to township (HTTP, bundle) to village (bundle)."""
    city = new_node(tmp_path / "city", "city", *CITY, root=True)
    county = new_node(tmp_path / "county", "county", *COUNTY)
    township = new_node(tmp_path / "township", "township", *TOWNSHIP)
    village = new_node(tmp_path / "village", "village", *VILLAGES[0])
    enrol(county, city)
    enrol(township, county)
    enrol(village, township)
    nodes = (city, county, township, village)
    try:
        for lower, upper in ((village, township), (township, county), (county, city)):
            carry(lower, upper, tmp_path)  # certificates travel up: the city knows the village
        case_id = register_for(city, village.info.area, 42)
        with serve(city) as url:
            Client(county, url).sync()
        carry(county, township, tmp_path)
        carry(township, village, tmp_path)

        assert api.get_case(village, case_id).petitioners[0].id_number == person(42).id_number
        for relay in (county, township):
            assert_relay_cannot_read(relay, case_id, person(42))
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.close()


def test_a_digest_copied_into_a_townships_own_record_releases_no_clear_value(tree, tmp_path):
    """A stolen township key copies the ID digest of a village's case into a
    registration of its own; nothing the county sends it afterwards opens to
    that value, even when the county resends every feed from its start."""
    case_id = register_for(tree.county, tree.village.info.area, 43)
    digest = tree.county.db.execute("select id_seal from case_petitioners where case_id = ?",
                                    [case_id]).fetchone()[0]
    carry(tree.county, tree.township, tmp_path)
    own = register_for(tree.township, tree.township.info.area, 44)
    body = next(iter(_events_of(tree.township, own))).body
    stolen = {**body, "petitioners": [{**body["petitioners"][0], "id_number": digest}]}
    forged = next_event(tree.township, body=stolen)
    assert tree.township.ingest([forged]) == 1
    assert carry(tree.township, tree.county, tmp_path).applied >= 1
    assert tree.county.db.execute("select count(*) from events where id = ?",
                                  [forged.id]).fetchone()[0] == 1

    release = send.outgoing_rule(tree.county, tree.township.certificate)
    assert release.boxes([forged]) == []
    everything = list(send.pages_for(tree.county, tree.township.info.area, {},
                                     release=release))
    assert any(e.id == forged.id for page in everything for e in page.events)
    to_township = [b for page in everything for b in page.boxes
                   if b.recipient == tree.township.info.author]
    assert all(b.digest != digest for b in to_township)
    assert all(b.recipient == tree.village.info.author  # the case's own office, through it
               for page in everything for b in page.boxes if b.digest == digest)
    carry(tree.county, tree.township, tmp_path)
    assert tree.township.vault.get(digest) is None
    assert not holds_in_clear(tree.township, person(43).id_number)


def test_a_box_beside_an_event_of_another_record_is_not_taken(tree, tmp_path):
    """A sender cannot slip a box in on a record that does not carry its digest."""
    case_id = register_for(tree.county, tree.village.info.area, 45)
    secret = tree.county.vault.of_entity(
        case_id, sealing.digests_in(next(iter(_events_of(tree.county, case_id))).body))[0]
    other = register_for(tree.county, tree.village.info.area, 46)
    moved = boxes.seal(secret, other, tree.village.certificate)
    taken = boxes.take(tree.village, [moved], list(_events_of(tree.county, other)),
                       tree.county.info.author)
    assert taken == 0 and tree.village.vault.get(secret.digest) is None
    # the same box beside its own record is taken
    right = boxes.seal(secret, case_id, tree.village.certificate)
    assert boxes.take(tree.village, [right], list(_events_of(tree.county, case_id)),
                      tree.county.info.author) == 1


def test_a_box_sealed_to_one_office_does_not_open_as_another(tree):
    case_id = register_for(tree.county, tree.village.info.area, 47)
    event = next(iter(_events_of(tree.county, case_id)))
    secret = tree.county.vault.of_entity(case_id, sealing.digests_in(event.body))[0]
    box = boxes.seal(secret, case_id, tree.village.certificate)
    readdressed = boxes.Box(box.digest, box.entity_id, tree.sibling.info.author, box.data)
    assert boxes.take(tree.sibling, [readdressed], [event], tree.county.info.author) == 0
    assert tree.sibling.vault.get(secret.digest) is None


def test_upward_release_by_policy_gives_each_office_above_its_own_box(tree, tmp_path):
    """With policy releasing identity upward, the township and the county each
    read a village's petitioner from a box sealed to it: the county's box
    crosses the township unopened."""
    policy.set_policy(tree.county, "case.release_identity_upward", True)
    carry(tree.county, tree.township, tmp_path)
    carry(tree.township, tree.village, tmp_path)
    case_id = register(tree.village, serial=48)
    carry(tree.village, tree.township, tmp_path)
    with serve(tree.county) as url:
        Client(tree.township, url).sync()
    assert api.get_case(tree.county, case_id).petitioners[0].name == "赵某48"
    assert api.get_case(tree.township, case_id).petitioners[0].name == "赵某48"
    held = {r for (r,) in tree.township.db.execute(
        "select recipient from held_boxes where entity_id = ?", [case_id])}
    assert held == {tree.county.info.author}


def _events_of(node, entity_id: str):
    return store.events_of(node.db, "case", entity_id)


def test_boxes_travel_only_in_the_page_of_their_record(tree):
    """A page of events without sealed digests carries no box at all."""
    release = send.outgoing_rule(tree.county, tree.township.certificate)
    pages = list(send.pages_for(tree.county, tree.township.info.area,
                                frontier(tree.township.db), release=release))
    assert all(page.boxes == () for page in pages)
    assert json.dumps([p.to_wire() for p in pages])  # and they still encode
