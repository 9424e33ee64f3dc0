"""A compromised, enrolled village: its real key signs events naming a sibling's case.

Threat model (DESIGN invariant 3): a stolen village key can do nothing beyond
that village's own role and area. Each story below is one the stateful
machine (``test_sync_stateful.py``, rule ``a_stolen_key_signs``) found, made
by hand from a real enrolled key: village 1's key is stolen, village 2 (its
sibling under the same township) registers a case, and the thief hands the
township an event naming that case, signed with the stolen key and claiming
the thief's own area (the only area its certificate lets it claim: any other
is refused on arrival). The township relays it to the county, which holds the
thief's feed too.

The case lies outside the thief's area, so the event can only be a conflict
there: kept and listed, never applied (``kernel.reach``). It cannot be refused
on arrival: the event does not carry the case's area, and a node may hear of
the event before the case, so refusing would make what a node holds depend on
arrival order. Everything else the honest nodes show of the case is what they
would show had the event never been sent.
"""

from __future__ import annotations

import pytest

from sync_helpers import (TODAY, build_tree, carry, next_event, register, send_pages, views,
                          wire)
from xinfang.core import fold, policy, store, verify
from xinfang.core.hlc import Timestamp


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path)
    yield built
    built.close()


def a_sibling_case(tree, **overrides) -> str:
    """Village 2 registers a case and the township and the county hold it."""
    case_id = register(tree.sibling, serial=2, **overrides)
    carry(tree.sibling, tree.township, tree.base)
    return case_id


def stolen(tree, type: str, case_id: str, body: dict, hlc: Timestamp | None = None):
    """Village 1's next event, signed with its real key, naming ``case_id`` and claiming
    village 1's own area."""
    thief = tree.village
    if not store.feed_head(thief.db, thief.info.author, 0)[0]:
        register(thief, serial=1)  # next_event continues the feed the village wrote
    fields = {} if hlc is None else {"hlc": hlc.to_list()}
    return next_event(thief, type=type, entity="case", entity_id=case_id,
                      area=thief.info.area, body=body, **fields)


def hand_over(tree, events) -> None:
    """The thief's bundle to the township (its feed whole), then the township's to the
    county; both take every event."""
    thief = tree.village
    feed = [e for e in store.all_events(thief.db) if e.author == thief.info.author]
    summary = send_pages(thief, tree.township, [wire(feed + list(events), certs_from=thief)],
                         tree.base)
    assert not summary.refused, [r.reason for r in summary.refused]
    carry(tree.township, tree.county, tree.base)
    for node in (tree.township, tree.county):
        for event in events:
            assert node.db.execute("select 1 from events where id = ?",
                                   [event.id]).fetchone(), f"{node.info.area} refused it"


def case_row(node, case_id: str):
    return node.db.execute("select status, area from cases where id = ?",
                           [case_id]).fetchone()


def conflict_of(node, event) -> bool:
    return node.db.execute("select 1 from conflicts where event_id = ?",
                           [event.id]).fetchone() is not None


def without(node, forged) -> dict:
    """Every view row, less the conflict row of ``forged`` and the order keys of the
    records' last events (bookkeeping: which event a new one must sort after)."""
    dump = fold.dump_views(node.db, node.registry)
    dump["conflicts"] = [r for r in dump["conflicts"] if r[0] != forged.id]
    columns = [c.name for c in node.db["entity_heads"].columns]
    at = columns.index("order_key")
    dump["entity_heads"] = [r[:at] + r[at + 1:] for r in dump["entity_heads"]]
    return dump


def test_a_stolen_step_on_a_sibling_case_is_a_conflict_and_changes_nothing_else(tree):
    case_id = a_sibling_case(tree)
    register(tree.village, serial=1)  # the thief's feed so far, held everywhere
    hand_over(tree, [])
    forged = stolen(tree, "case.withdraw", case_id,
                    {"values": {"date": TODAY.isoformat()}, "by": "冒名者"})
    before = {n.info.area: without(n, forged) for n in (tree.township, tree.county)}
    hand_over(tree, [forged])
    for node in (tree.township, tree.county):
        assert case_row(node, case_id) == ("registered", tree.sibling.info.area)
        assert conflict_of(node, forged), f"{node.info.area} lists no conflict"
        after = without(node, forged)
        changed = [t for t in after if after[t] != before[node.info.area][t]]
        assert changed == [], f"{node.info.area}: the stolen step changed {changed}"
    # and the sibling, which never holds the thief's events, shows its case unchanged
    assert case_row(tree.sibling, case_id) == ("registered", tree.sibling.info.area)


def test_a_stolen_step_no_plugin_handles_cannot_hide_a_sibling_case(tree):
    """An event of a step no plugin handles is not judged on arrival but holds its
    record in the fold (a step of a newer release). Naming a sibling's case, it held
    that case out of the township's and the county's views; now the fold first asks
    whether the step could reach the case at all, and keeps it as a conflict."""
    case_id = a_sibling_case(tree)
    forged = stolen(tree, "case.frobnicate", case_id,
                    {"values": {"date": TODAY.isoformat()}, "by": "冒名者"})
    hand_over(tree, [forged])
    for node in (tree.township, tree.county):
        assert case_row(node, case_id) == ("registered", tree.sibling.info.area), \
            f"{node.info.area} no longer shows {case_id}"
        assert node.db.execute("select count(*) from held_entities").fetchone()[0] == 0
        assert conflict_of(node, forged)
        assert verify.rebuild(node, check_only=True).consistent


def test_a_step_no_plugin_handles_still_holds_a_record_it_reaches(tree):
    """The other side of the fix: the village's own step of a newer release, on its own
    case, still holds that case where no plugin can fold it, as before."""
    case_id = register(tree.village, serial=1)
    newer = next_event(tree.village, type="case.frobnicate", entity="case", entity_id=case_id,
                       area=tree.village.info.area,
                       body={"values": {"date": TODAY.isoformat()}, "by": "村站"})
    send_pages(tree.village, tree.township,
               [wire([*store.all_events(tree.village.db), newer], certs_from=tree.village)],
               tree.base)
    township = tree.township
    assert township.db.execute("select entity_id from held_entities").fetchall() == [(case_id,)]
    assert case_row(township, case_id) is None
    assert not conflict_of(township, newer)


def test_a_stolen_step_stamped_before_a_sibling_case_leaves_it_filed_under_its_area(tree):
    """A stolen step stamped before the case's registration sorts first; it is a
    conflict (no case yet), but it filed the case under the thief's area
    (``entity_heads.area``), so a policy the county then set for the sibling's area,
    which re-folds the cases filed there, left the case as it was at the township and
    the county. Now only a folded event files a record."""
    case_id = register(tree.sibling, serial=2, headcount=3)
    registered = next(store.events_of(tree.sibling.db, "case", case_id))
    forged = stolen(tree, "case.withdraw", case_id, {"values": {"date": "2026-03-06"}},
                    hlc=Timestamp(registered.hlc.wall_ms - 1000, 0))
    hand_over(tree, [forged])          # before the case reaches either
    carry(tree.sibling, tree.township, tree.base)
    carry(tree.township, tree.county, tree.base)
    sibling = tree.sibling.info.area
    for node in (tree.township, tree.county):
        assert node.db.execute("select area from entity_heads where entity = 'case' and "
                               "entity_id = ?", [case_id]).fetchone() == (sibling,)
    policy.set_policy(tree.county, "case.collective_threshold", 2, area=sibling)
    carry(tree.county, tree.township, tree.base)
    carry(tree.township, tree.sibling, tree.base)
    collective = "select collective from cases where id = ?"
    assert tree.sibling.db.execute(collective, [case_id]).fetchone() == (1,)
    for node in (tree.township, tree.county):
        assert node.db.execute(collective, [case_id]).fetchone() == (1,), \
            f"{node.info.area} did not re-fold {case_id} under the policy set for {sibling}"
        assert conflict_of(node, forged)
        assert verify.rebuild(node, check_only=True).consistent
