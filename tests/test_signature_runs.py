"""What a receiver takes and refuses of a run of one author's chain, signature by signature.

An event's Ed25519 signature covers ``EVENT_DOMAIN + raw``; ``raw`` names
``prev``, the id of the event before it, and an id is the SHA-256 of ``raw``
alone. So the signature of a run's last event authenticates what every
earlier event of the run *says*, but not the signatures the receiver keeps
beside them: a sender can replace an earlier event's signature with any 64
bytes and every link still holds. A receiver that checked only the last
signature of a run would store that event, and then ``log verify`` would
name it, ``Node.ingest`` of a copy would refuse the copy, and a peer it is
forwarded to would refuse it wherever it ends a page. Hence one check per
event (``Admission._check``), and the first test below.

Every event is built and signed by hand (``sync_helpers.next_event``), with
the village's real key or a stolen sibling's; the receiver is a real
township. The property at the end compares what ``apply_page`` takes and
refuses with the simple rule, checking every event, on random runs with
random corruptions: any faster path must pass it too.
"""

from __future__ import annotations

import itertools
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import (build_tree, copy_node, excluded_ids, feed, next_event,
                          quarantine, register, wire)
from xinfang.core import i18n, signatures, verify
from xinfang.core.event import EVENT_DOMAIN, Event
from xinfang.sync.receive import apply_page
from xinfang.sync.wire import Page

RUN = 6  # events of the hand-made run, after the village's own seq 1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tree whose village wrote seq 1, and a hand-made run continuing it (seq 2…7)."""
    base = tmp_path_factory.mktemp("runs")
    tree = build_tree(base / "tree")
    register(tree.village, 1)
    run = feed(tree.village) + chain(tree.village, RUN)
    yield tree, run, base
    tree.close()


@pytest.fixture
def receiver(world, tmp_path):
    """A fresh copy of the township, which holds nothing of the village's feed."""
    tree, _, _ = world
    node = copy_node(tree.township, tmp_path / "township")
    yield node
    node.close()


def chain(node, count: int) -> list[Event]:
    """``count`` events continuing ``node``'s feed, each linking to the one before,
    signed with its key; stored nowhere."""
    seq, prev = node.db.execute("select seq, head from feeds where author = ? and epoch = ?",
                                [node.info.author, node.info.epoch]).fetchone()
    events = []
    for _ in range(count):
        event = next_event(node, seq=seq + 1, prev=prev)
        events.append(event)
        seq, prev = event.seq, event.id
    return events


# -- corruptions ----------------------------------------------------------------


def signature_replaced(event: Event, run: list[Event]) -> Event:
    """The same bytes (so the same id) with a real signature of another event."""
    other = run[(run.index(event) + 1) % len(run)]
    return Event.parse(event.raw, other.signature)


def bytes_tampered(event: Event) -> Event:
    """One digit of the record number changed after signing: still canonical bytes."""
    old = event.entity_id.encode()
    new = old[:-1] + (b"1" if old[-1:] != b"1" else b"2")
    raw = event.raw.replace(b'"id":"' + old, b'"id":"' + new)
    assert raw != event.raw and len(raw) == len(event.raw)
    return Event.parse(raw, event.signature)


def forged(event: Event, thief) -> Event:
    """The same bytes signed with a stolen sibling village's key."""
    return Event.parse(event.raw, thief.keys.sign(EVENT_DOMAIN + event.raw))


def msgid(reason: str) -> str:
    """The catalogue message a stored reason was made from."""
    return json.loads(reason)["m"]


def kinds(result) -> list[tuple[int, str]]:
    """Each refusal of a page as (seq, the first words of its message)."""
    return [(r.seq, msgid(r.reason).split(":")[0]) for r in result.refused]


def held(node, tree) -> set[str]:
    """The ids of the village's events ``node`` holds."""
    return {e.id for e in feed(node, tree.village.info.author)}


def send(node, events, certs_from) -> object:
    return apply_page(node, Page.from_wire(wire(events, certs_from=certs_from)))


# -- the stories ----------------------------------------------------------------


def test_a_replaced_signature_is_refused_though_the_run_after_it_links_and_is_signed(
        world, receiver):
    tree, run, _ = world
    middle = 3
    bad = signature_replaced(run[middle], run)
    # what the chain does not cover: the id, every link and the last signature hold
    assert bad.id == run[middle].id and run[middle + 1].prev == bad.id
    assert run[-1].signature_valid() and not bad.signature_valid()
    result = send(receiver, run[:middle] + [bad] + run[middle + 1:], tree.village)
    assert result.applied == middle
    assert kinds(result) == [(bad.seq, "bad signature")] + [
        (e.seq, "gap") for e in run[middle + 1:]]
    assert held(receiver, tree) == {e.id for e in run[:middle]}
    assert verify.verify_log(receiver.db).ok
    # the genuine signature, sent later, is taken and the run with it
    result = send(receiver, run[middle:], tree.village)
    assert result.applied == len(run) - middle and not result.refused
    assert quarantine(receiver) == {}


@pytest.mark.parametrize("middle", range(1, RUN))
def test_tampering_any_middle_event_breaks_its_link_and_names_it(world, receiver, middle):
    tree, run, _ = world
    bad = bytes_tampered(run[middle])
    assert bad.id != run[middle].id and run[middle + 1].prev != bad.id
    result = send(receiver, run[:middle] + [bad] + run[middle + 1:], tree.village)
    assert result.applied == middle
    assert kinds(result)[0] == (bad.seq, "bad signature")
    assert result.refused[0].event_id == bad.id
    assert {e.id for e in run[:middle]} == held(receiver, tree)


def test_tampered_bytes_signed_again_with_a_stolen_sibling_key_are_named(world, receiver):
    tree, run, _ = world
    bad = forged(bytes_tampered(run[2]), tree.sibling)
    result = send(receiver, run[:2] + [bad] + run[3:], tree.village)
    assert result.applied == 2
    assert kinds(result)[0] == (bad.seq, "bad signature")


def test_tampered_bytes_signed_again_with_the_authors_stolen_key_break_the_next_link(
        world, receiver):
    """The author's own key may sign anything at seq 3: that event is the author's,
    and the genuine seq 4, which names the genuine seq 3, no longer links."""
    tree, run, _ = world
    tampered = bytes_tampered(run[2])
    resigned = Event.parse(tampered.raw,
                           tree.village.keys.sign(EVENT_DOMAIN + tampered.raw))
    result = send(receiver, run[:2] + [resigned] + run[3:], tree.village)
    assert result.applied == 3
    assert kinds(result) == [(4, "broken chain")] + [(e.seq, "gap") for e in run[4:]]


def test_a_run_whose_last_signature_is_bad_takes_the_events_before_it(world, receiver):
    tree, run, _ = world
    bad = Event.parse(run[-1].raw, os.urandom(64))
    result = send(receiver, run[:-1] + [bad], tree.village)
    assert result.applied == len(run) - 1
    assert kinds(result) == [(bad.seq, "bad signature")]
    assert msgid(quarantine(receiver)[bad.id]["reason"]).startswith("bad signature")


def test_a_fork_inside_a_page_is_kept_as_evidence_and_freezes_the_feed(world, receiver):
    tree, run, _ = world
    raw = bytes_tampered(run[2]).raw
    branch = Event.parse(raw, tree.village.keys.sign(EVENT_DOMAIN + raw))
    result = send(receiver, run[:3] + [branch], tree.village)
    assert kinds(result) == [(3, "fork")]
    assert receiver.db.execute("select seq from frozen_feeds where author = ?",
                               [tree.village.info.author]).fetchone() == (3,)
    assert run[2].id in excluded_ids(receiver)


def test_a_gap_refuses_the_rest_of_the_run_until_it_is_filled(world, receiver):
    tree, run, _ = world
    result = send(receiver, run[:2] + run[3:], tree.village)
    assert result.applied == 2
    assert kinds(result) == [(e.seq, "gap") for e in run[3:]]
    result = send(receiver, run[2:], tree.village)
    assert result.applied == len(run) - 2 and not result.refused
    assert quarantine(receiver) == {}


def test_a_run_split_across_pages_is_taken_page_by_page_in_either_order(world, receiver):
    tree, run, _ = world
    first, second = run[:3], run[3:]
    early = send(receiver, second, tree.village)
    assert early.applied == 0 and kinds(early) == [(e.seq, "gap") for e in second]
    assert send(receiver, first, tree.village).applied == len(first)
    assert send(receiver, second, tree.village).applied == len(second)
    assert held(receiver, tree) == {e.id for e in run} and quarantine(receiver) == {}


def test_duplicates_in_a_page_and_across_pages_change_nothing(world, receiver):
    tree, run, _ = world
    result = send(receiver, run[:3] + run[1:3] + run[3:], tree.village)
    assert (result.applied, result.duplicates, result.refused) == (len(run), 2, ())
    again = send(receiver, run, tree.village)
    assert (again.applied, again.duplicates, again.refused) == (0, len(run), ())
    # a held event with its signature replaced is a duplicate: the stored one stays
    stray = send(receiver, [signature_replaced(run[2], run)], tree.village)
    assert (stray.applied, stray.duplicates) == (0, 1)
    assert verify.verify_log(receiver.db).ok


# -- the property: a run is judged as its events one by one ----------------------

#: what may arrive in place of one event of the run
COPIES = {
    "as signed": ("good",),
    "dropped": (),
    "twice": ("good", "good"),
    "signature replaced": ("sig",),
    "signature replaced, then the genuine one": ("sig", "good"),
    "bytes tampered": ("raw",),
    "forged by a sibling": ("forged",),
    "forged, then the genuine one": ("forged", "good"),
}


def deliver(run, choices, thief) -> list[Event]:
    made = {"good": lambda e: e, "sig": lambda e: signature_replaced(e, run),
            "raw": bytes_tampered, "forged": lambda e: forged(e, thief)}
    return [made[copy](event) for event, choice in zip(run, choices)
            for copy in COPIES[choice]]


def one_by_one(pages: list[list[Event]]):
    """The simple rule for a whole feed: each event alone, in seq order within a page
    (a duplicate, then its signature, then the link to the head)."""
    held: dict[int, str] = {}
    refused_now: dict[str, str] = {}
    results = []
    for page in pages:
        applied, refused = 0, []
        for event in sorted(page, key=lambda e: e.seq):
            head = max(held, default=0)
            if held.get(event.seq) == event.id:
                continue
            if not event.signature_valid():
                why = "bad signature"
            elif event.seq in held:
                why = "fork"
            elif event.seq != head + 1:
                why = "gap"
            elif event.prev != held.get(head):
                why = "broken chain"
            else:
                held[event.seq] = event.id
                refused_now.pop(event.id, None)
                applied += 1
                continue
            refused.append((event.seq, why))
            refused_now[event.id] = why
        results.append((applied, refused))
    return results, set(held.values()), refused_now


@st.composite
def deliveries(draw):
    choices = draw(st.lists(st.sampled_from(sorted(COPIES)), min_size=RUN + 1,
                            max_size=RUN + 1))
    cuts = draw(st.lists(st.integers(0, 2 * (RUN + 1)), max_size=2))
    order = draw(st.permutations(range(len(cuts) + 1)))
    return choices, sorted(cuts), order


_homes = itertools.count()


@pytest.fixture(params=["signatures checked in turn", "signatures checked in threads"])
def verifying(request, monkeypatch):
    """Pages of any size have their signatures checked in threads (``core.signatures``),
    in three shares, or one by one."""
    if request.param.endswith("threads"):
        monkeypatch.setattr(signatures, "AT_LEAST", 1)
        monkeypatch.setattr(signatures, "workers", lambda: 3)
    else:
        monkeypatch.setattr(signatures, "workers", lambda: 1)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=deliveries())
def test_what_a_page_of_a_run_takes_and_refuses_is_what_checking_each_event_does(world, verifying,
                                                                                 drawn):
    tree, run, base = world
    choices, cuts, order = drawn
    events = deliver(run, choices, tree.sibling)
    bounds = [0, *(min(c, len(events)) for c in cuts), len(events)]
    pages = [events[a:b] for a, b in zip(bounds, bounds[1:])]
    pages = [pages[i] for i in order if i < len(pages)]
    expected, taken, refused = one_by_one(pages)
    node = copy_node(tree.township, base / f"receiver{next(_homes)}")
    try:
        got = [send(node, page, tree.village) for page in pages]
        assert [(r.applied, kinds(r)) for r in got] == expected, choices
        assert held(node, tree) == taken
        assert {k: msgid(v["reason"]).split(":")[0] for k, v in quarantine(node).items()} \
            == refused
        assert verify.verify_log(node.db).ok
    finally:
        node.close()


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.tuples(st.integers(0, RUN),
                                st.sampled_from(["good", "sig", "raw", "forged"])), max_size=120))
def test_signatures_checked_in_threads_are_those_each_event_checks_alone(world, picks):
    tree, run, _ = world
    made = {"good": lambda e: e, "sig": lambda e: signature_replaced(e, run),
            "raw": bytes_tampered, "forged": lambda e: forged(e, tree.sibling)}
    events = [made[how](run[index]) for index, how in picks]
    expected = {(e.raw, e.signature) for e in events if e.signature_valid()}
    assert signatures.valid(events) == expected
