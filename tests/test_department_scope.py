"""A department node: the resettlement bureau, certified for the county's area with a
filter (the ledger entities, and cases of category 库区移民), which is part of its
signed certificate, decides what it gets and what it may write, and narrows at
each level.

The tree is real: a county (the root), the bureau's node, a township whose node
has no ledger plugin (it holds and forwards disputes it cannot read), and two
villages. Each flow runs by bundle and by HTTP.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xinfang.app import DEFAULT_PLUGINS
from xinfang.core import codec, policy, signed
from xinfang.core.certs import KIND, Certificate, TrustError, validate_chain
from xinfang.core.errors import InvalidEvent, InvalidInput
from xinfang.core.event import EVENT_DOMAIN, Event
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.core.scope import Filter, Judge
from xinfang.plugins.ledger import api as ledger
from xinfang.sync import envelope, send, trust, wire
from xinfang.sync.http import Client

from sync_helpers import (COUNTY, OPERATOR, TOWNSHIP, VILLAGES, carry, deliver, enrol,
                          event_ids, feed, new_node, next_event, quarantine, register,
                          send_pages, serve, views)

BUREAU = "示例县移民局"
RESETTLEMENT = "resettlement"
#: what the bureau's certificate lets it get and write
BUREAU_FILTER = Filter.make(["dispute", "project", "target", "case"],
                            {"case": {"category": [RESETTLEMENT]}})
DAY = dt.date(2026, 11, 20)
DISPUTE = {"date": "2026-11-02", "kind": "resettlement", "summary": "移民补偿款分配争议",
           "risk": "medium", "people": 3}
OUTSIDE = "outside the department's filter"


def certify(child: Node, parent: Node, only: Filter | None) -> None:
    """``enrol`` with a department filter."""
    request = trust.EnrolmentRequest.from_json(trust.make_request(child).to_json())
    sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(parent, request, only=only))
    trust.import_certificate(child, envelope.open_(child.keys, sealed, "enrolment").payload)


def forge(node: Node, **fields) -> Event:
    """An event signed by ``node``'s key at the next place of its feed, stored nowhere
    (``next_event`` for a node that may have written nothing yet)."""
    head = node.db.execute("select seq, head from feeds where author = ? and epoch = ?",
                           [node.info.author, node.info.epoch]).fetchone() or (0, None)
    content = {"v": 1, "author": node.info.author, "epoch": node.info.epoch,
               "seq": head[0] + 1, "prev": head[1], "hlc": node.clock.tick().to_list(),
               **{("id" if k == "entity_id" else k): v for k, v in fields.items()}}
    raw = codec.encode(content)
    return Event.parse(raw, node.keys.sign(EVENT_DOMAIN + raw))


def without_ledger():
    """The plugins of a township office that never installed the ledger plugin."""
    return get_plugin_manager(entry_points=False,
                              defaults=[p for p in DEFAULT_PLUGINS if "ledger" not in p])


@pytest.fixture
def county_tree(tmp_path):
    county = new_node(tmp_path / "county", "county", *COUNTY, root=True)
    bureau = new_node(tmp_path / "bureau", "county", COUNTY[0], BUREAU)
    certify(bureau, county, BUREAU_FILTER)
    township = Node.init(tmp_path / "township", level="township", area=TOWNSHIP[0],
                         name=TOWNSHIP[1], pm=without_ledger())
    township.operator = OPERATOR
    enrol(township, county)
    villages = []
    for area, name in VILLAGES:
        village = new_node(tmp_path / f"village-{area}", "village", area, name)
        enrol(village, township)
        villages.append(village)
    nodes = {"county": county, "bureau": bureau, "township": township, "v1": villages[0],
             "v2": villages[1]}
    yield nodes
    for node in nodes.values():
        node.close()


def up(child: Node, parent: Node, via: str, tmp_path) -> None:
    """One sync of ``child`` with its parent: a bundle each way, or an HTTP sync."""
    if via == "bundle":
        carry(child, parent, tmp_path)
        carry(parent, child, tmp_path)
    else:
        with serve(parent) as url:
            Client(child, url).sync()


def case_ids(node: Node) -> set[str]:
    return {row[0] for row in node.db.execute("select distinct entity_id from events "
                                              "where entity = 'case'")}


def gather(nodes, via, tmp_path) -> None:
    """Villages up to the township, the township up to the county, the bureau with it."""
    for village in (nodes["v1"], nodes["v2"]):
        up(village, nodes["township"], via, tmp_path)
    up(nodes["township"], nodes["county"], via, tmp_path)
    up(nodes["bureau"], nodes["county"], via, tmp_path)


# -- the certificate ----------------------------------------------------------------


def test_a_certificate_without_a_filter_has_the_wire_form_it_always_had(county_tree):
    county, village = county_tree["county"], county_tree["v1"]
    cert = Certificate.issue(county.keys, subject=village.info.author,
                             encryption=village.info.encryption, area=village.info.area,
                             level="village", name="示例村")
    old_form = signed.sign(county.keys, KIND, {
        "v": 1, "subject": village.info.author, "encryption": village.info.encryption,
        "area": village.info.area, "level": "village", "name": "示例村",
        "issuer": county.keys.author})
    assert (cert.raw, cert.signature) == (old_form.raw, old_form.signature)
    assert cert.only is None and "only" not in codec.decode(cert.raw)


def test_the_filter_is_signed_into_the_bureau_certificate(county_tree):
    bureau = county_tree["bureau"]
    cert = bureau.certificate
    assert cert.area == county_tree["county"].info.area
    assert cert.only == BUREAU_FILTER
    assert codec.decode(cert.raw)["only"] == {
        "entities": ["case", "dispute", "project", "target"],
        "match": {"case": {"category": [RESETTLEMENT]}}}
    # altering the filter breaks the issuer's signature
    content = dict(codec.decode(cert.raw), only={"entities": ["case"]})
    forged = Certificate.parse(codec.encode(content), cert.signature)
    assert not forged.signature_valid()


@pytest.mark.parametrize("only", [
    "case", {"entities": "case"}, {"entities": []}, {"entities": ["case", "case"]},
    {"entities": ["Case!"]}, {"entities": ["case"], "match": {"dispute": {"kind": ["a"]}}},
    {"entities": ["case"], "match": {"case": {"category": []}}},
    {"entities": ["case"], "match": {"case": {"category": [1]}}},
    {"entities": ["case"], "unknown": 1},
])
def test_a_malformed_filter_is_a_named_refusal(county_tree, only):
    county, bureau = county_tree["county"], county_tree["bureau"]
    content = {"v": 1, "subject": bureau.info.author, "encryption": bureau.info.encryption,
               "area": county.info.area, "level": "county", "name": BUREAU,
               "issuer": county.keys.author, "only": only}
    with pytest.raises(InvalidInput) as caught:
        Certificate.from_document(signed.sign(county.keys, KIND, content))
    assert "“only” field" in caught.value.message.args["problem"].msgid


def test_the_same_area_as_the_issuer_needs_a_filter(county_tree, tmp_path):
    county = county_tree["county"]
    office = new_node(tmp_path / "office", "county", county.info.area, "示例县某局")
    request = trust.make_request(office)
    with pytest.raises(TrustError) as caught:
        trust.sign_request(county, request)
    assert "only a department may share it" in caught.value.message.msgid
    plain = Certificate.issue(county.keys, subject=office.info.author,
                              encryption=office.info.encryption, area=county.info.area,
                              level="county", name="示例县某局")
    with pytest.raises(TrustError) as caught:
        validate_chain([plain, county.certificate])
    assert "wider than or equal" in caught.value.message.msgid
    office.close()


def test_a_filtered_certificate_cannot_certify_a_wider_filter(county_tree, tmp_path):
    county, bureau = county_tree["county"], county_tree["bureau"]
    section = new_node(tmp_path / "section", "county", county.info.area, "移民局信访股")
    request = trust.make_request(section)
    wider = [Filter.make(["dispute", "project", "target", "case"]),  # every case
             Filter.make(["dispute", "supervision"]),  # an entity it lacks
             Filter.make(["case"], {"case": {"category": [RESETTLEMENT, "labour"]}})]
    for only in [None, *wider]:
        with pytest.raises(TrustError):
            trust.sign_request(bureau, request, only=only)
    # signed by hand with the bureau's key, such a chain is refused where chains are checked
    forged = Certificate.issue(bureau.keys, subject=section.info.author,
                               encryption=section.info.encryption, area=county.info.area,
                               level="county", name="移民局信访股", only=wider[0])
    chain = [forged, bureau.certificate, county.certificate]
    with pytest.raises(TrustError) as caught:
        validate_chain(chain)
    assert "narrows at each level" in caught.value.message.msgid
    # and on arrival: the county keeps no such certificate, and refuses its holder's event
    event = forge(section, type="dispute.add", entity="dispute",
                       entity_id=f"{county.info.area}-2026-00001", area=county.info.area,
                       body={**DISPUTE, "fields": {}, "by": OPERATOR})
    page = wire.Page([event], (), chain, ()).to_wire()
    summary = send_pages(bureau, county, [page], tmp_path)
    assert summary.applied == 0
    assert "unknown author" in quarantine(county)[event.id]["reason"]
    # a narrower filter is fine, and so is the same one
    narrower = Filter.make(["case"], {"case": {"category": [RESETTLEMENT]}})
    assert trust.sign_request(bureau, request, only=narrower)["certificate"]
    assert trust.sign_request(bureau, request, only=BUREAU_FILTER)["certificate"]
    section.close()


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_a_filter_within_another_passes_nothing_the_other_refuses(data):
    """``within`` is what narrowing means: every record the narrower passes, the wider
    passes too (judged over a small world of records and values)."""
    entities = ["case", "dispute", "target"]
    values = ["resettlement", "labour", "land"]

    def filters():
        chosen = data.draw(st.lists(st.sampled_from(entities), min_size=1, unique=True))
        match = {e: {"category": data.draw(st.lists(st.sampled_from(values), min_size=1,
                                                     unique=True))}
                 for e in chosen if data.draw(st.booleans())}
        return Filter.make(chosen, match)

    narrow, wide = filters(), filters()

    class World(Judge):
        def value(self, entity, entity_id, name):
            return entity_id

    if narrow.within(wide):
        for entity in entities:
            for value in values:
                if World(None, narrow).passes(entity, value):
                    assert World(None, wide).passes(entity, value)


# -- what the bureau gets -----------------------------------------------------------------


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_the_bureau_gets_resettlement_cases_and_ledger_records_only(county_tree, via,
                                                                    tmp_path):
    nodes = county_tree
    county, bureau, township, v1, v2 = (nodes[k] for k in ("county", "bureau", "township",
                                                            "v1", "v2"))
    moved = register(v1, 1, category=RESETTLEMENT, request="请求落实移民后扶资金")
    labour = register(v1, 2)  # 劳动社保
    other_village = register(v2, 3, category="land")
    from xinfang.plugins.cases import api as cases

    cases.take_step(v1, moved, "accept", {"date": "2026-03-10"}, today=DAY)
    cases.take_step(v1, labour, "accept", {"date": "2026-03-10"}, today=DAY)
    dispute = ledger.add_dispute(v2, DISPUTE, today=DAY)
    policy.set_policy(county, "case.collective_threshold", 4)
    gather(nodes, via, tmp_path)

    # the township has no ledger plugin, yet holds and forwards the dispute
    assert township.registry.entity_type("dispute") is None
    dispute_events = {e.id for e in feed(v2) if e.entity == "dispute"}
    assert len(dispute_events) == 1
    assert dispute_events <= event_ids(township) and dispute_events <= event_ids(county)
    # the county holds everything; the bureau exactly the resettlement case and the dispute
    assert case_ids(county) == {moved, labour, other_village}
    assert case_ids(bureau) == {moved}
    moved_events = {e.id for e in feed(v1) if e.entity_id == moved}
    assert len(moved_events) == 2  # registered and accepted
    # with the county's own step on it (the ID-number tag it writes on arrival)
    at_county = {row[0] for row in county.db.execute(
        "select id from events where entity = 'case' and entity_id = ?", [moved])}
    assert len(at_county) == 3 and moved_events < at_county
    assert {row[0] for row in bureau.db.execute("select id from events where entity = "
                                                "'case'")} == at_county
    assert not {e.id for e in feed(v1) if e.entity_id == labour} & event_ids(bureau)
    assert dispute_events <= event_ids(bureau)
    assert ledger_ids(bureau) == {dispute}
    # control events always: the county's policy, the township's certificates of villages
    control = {e.id for e in feed(county) if e.entity == "policy"} | {
        e.id for e in feed(township) if e.entity == "trust"}
    assert len(control) == 3 and control <= event_ids(bureau)
    assert not quarantine(bureau)
    # 3 events of the resettlement case, the dispute, the policy, 2 certificates: 7, and
    # nothing else is counted as owed to the bureau, from the start or now
    assert len(event_ids(bureau)) == 7
    assert send.count_missing(county, bureau.info.area, {}, peer=bureau.certificate) == 7
    assert send.count_missing(county, bureau.info.area, wire.frontier(bureau.db),
                              peer=bureau.certificate) == 0


def ledger_ids(node: Node) -> set[str]:
    return {row[0] for row in node.db.execute("select entity_id from events where entity = "
                                              "'dispute'")}


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_target_the_bureau_writes_reaches_the_township_through_the_county(
        county_tree, via, tmp_path):
    nodes = county_tree
    county, bureau, township = nodes["county"], nodes["bureau"], nodes["township"]
    target = ledger.set_target(bureau, township.info.area,
                               {"year": 2026, "no_mass": True, "max_skipped": 2,
                                "min_resolution": 90}, today=DAY)
    assert target == f"{township.info.area}-2026-target"
    up(bureau, county, via, tmp_path)
    up(township, county, via, tmp_path)
    written = {e.id for e in feed(bureau) if e.entity == "target"}
    assert len(written) == 1
    assert written <= event_ids(county) and written <= event_ids(township)
    assert county.db.execute("select count(*) from ledger_targets").fetchone()[0] == 1
    assert not quarantine(county) and not quarantine(township)


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_the_bureau_frontier_claims_do_not_make_the_county_skip_events(county_tree, via,
                                                                      tmp_path):
    nodes = county_tree
    county, bureau, v1 = nodes["county"], nodes["bureau"], nodes["v1"]
    register(v1, 1, category=RESETTLEMENT)
    register(v1, 2)
    gather(nodes, via, tmp_path)
    before, held = views(county), event_ids(county)
    up(bureau, county, via, tmp_path)
    assert views(county) == before and event_ids(county) == held
    # the bureau completes only its own feed for the county: no range of anyone else's
    ledger.add_dispute(bureau, {**DISPUTE, "summary": "移民局排查"}, area=v1.info.area,
                       today=DAY)
    pages = list(send.pages_for(bureau, county.info.area, wire.frontier(county.db),
                                peer=county.certificate))
    assert {e.author for p in pages for e in p.events} == {bureau.info.author}
    assert {r[0] for p in pages for r in p.ranges} == {bureau.info.author}
    # a later case in the village still reaches the county after the bureau's sync
    later = register(v1, 3)
    gather(nodes, via, tmp_path)
    assert later in case_ids(county) and later not in case_ids(bureau)


def test_a_filtered_sender_vouching_for_a_village_feed_is_refused(county_tree, tmp_path):
    """A stolen bureau key claims a range of the village's feed to the county: the page
    is refused whole, as a claim it cannot know."""
    nodes = county_tree
    county, bureau, v1 = nodes["county"], nodes["bureau"], nodes["v1"]
    register(v1, 1, category=RESETTLEMENT)
    gather(nodes, "bundle", tmp_path)
    claim = (v1.info.author, 0, 0, 99)
    page = wire.Page([], (), [], [claim]).to_wire()
    frontier_before = wire.frontier(county.db)
    with pytest.raises(wire.PageError) as caught:
        send_pages(bureau, county, [page], tmp_path)
    assert "which it cannot know" in caught.value.message.msgid
    assert wire.frontier(county.db) == frontier_before


# -- what the bureau may write ---------------------------------------------------------


@pytest.mark.parametrize("via", ["bundle", "http"])
def test_a_stolen_bureau_key_writing_outside_the_filter_is_refused(county_tree, via,
                                                                   tmp_path):
    nodes = county_tree
    county, bureau, v1 = nodes["county"], nodes["bureau"], nodes["v1"]
    moved = register(v1, 1, category=RESETTLEMENT)
    labour = register(v1, 2)
    gather(nodes, via, tmp_path)
    register_body = next(e for e in feed(v1) if e.entity_id == moved).body
    step_body = {"values": {"date": "2026-03-10"}, "by": OPERATOR}
    forged = {
        "a step on a labour case": forge(
            bureau, type="case.accept", entity="case", entity_id=labour, area=v1.info.area,
            body=step_body),
        "a register of another category": forge(
            bureau, type="case.register", entity="case",
            entity_id=f"{county.info.area}-2026-00077", area=county.info.area,
            body={**register_body, "category": "labour"}),
        "a step on a case the county does not hold": forge(
            bureau, type="case.accept", entity="case",
            entity_id=f"{v1.info.area}-2026-00099", area=v1.info.area, body=step_body),
        "an entity outside the filter": forge(
            bureau, type="policy_note.add", entity="supervision", entity_id="x-1",
            area=county.info.area, body={"by": OPERATOR}),
    }
    for what, event in forged.items():
        applied, refused = deliver(bureau, county, [event], via, tmp_path)
        assert applied == 0, what
        assert OUTSIDE in quarantine(county)[event.id]["reason"], what
        assert refused[event.id]
    # the same key on the resettlement case is accepted: the filter, not the key, refused
    good = forge(bureau, type="case.accept", entity="case", entity_id=moved,
                      area=v1.info.area, body=step_body)
    assert deliver(bureau, county, [good], via, tmp_path) == (1, {})


def test_the_bureau_refuses_to_author_outside_its_filter(county_tree):
    bureau = county_tree["bureau"]
    with pytest.raises(InvalidEvent) as caught:
        register(bureau, 5)  # 劳动社保
    assert OUTSIDE in caught.value.message.msgid
    assert not feed(bureau)
    assert register(bureau, 6, category=RESETTLEMENT)


# -- the command ---------------------------------------------------------------------------


def test_enroll_sign_takes_the_filter_and_refuses_bad_values_in_one_line(county_tree,
                                                                         tmp_path):
    from click.testing import CliRunner

    from xinfang.cli.main import build_cli

    county = county_tree["county"]
    office = new_node(tmp_path / "office", "county", county.info.area, "示例县移民局二")
    request_file = tmp_path / "office.request"
    request_file.write_text(trust.make_request(office).to_json(), encoding="utf-8")
    runner = CliRunner()
    cli = build_cli(county.pm)
    base = ["--home", str(county.home), "enroll", "sign", str(request_file)]
    for bad in (["--only", "case.category=resettlement"],
                ["--only-entities", "case", "--only", "category"],
                ["--only-entities", "Case!"]):
        result = runner.invoke(cli, [*base, *bad, "--out", str(tmp_path / "bad.cert")])
        assert result.exit_code != 0 and "Traceback" not in result.output
        line = result.output.strip()
        assert "\n" not in line and any("\u4e00" <= c <= "\u9fff" for c in line), line
    out = tmp_path / "office.cert"
    result = runner.invoke(cli, [*base, "--only-entities", "dispute,project,target,case",
                                 "--only", "case.category=resettlement", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = envelope.open_(office.keys, out.read_bytes(), "enrolment").payload
    assert Certificate.from_wire(payload["certificate"]).only == BUREAU_FILTER
    office.close()
