"""The root's tag search looks only at what may have changed, and misses nothing.

After every sync the root tags the petitioners whose ID numbers it has just
come to hold (``tags.tag_jurisdiction``). It no longer reads every petitioner
it holds: it looks at the registrations and sealed values that arrived since
its last look, and at the cases it saw that still wait (stamped ahead of its
clock, or not folded). The full search (``tags.untagged`` over every case)
is the reference: after any run of registrations, clocks set ahead, trusted
copies that bring events without their sealed values, and bundles, it must
find nothing left to tag, and no case is tagged twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import seeded_keys
from sync_helpers import build_tree, carry, synthetic_id
from xinfang.core import store
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api, tags

DAY_MS = 86_400_000
OPERATIONS = ["register", "register", "register_ahead", "register_at_county",
              "up", "copy_up", "copy_up", "county_clock_on"]


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """A county, a township and two villages, made once; each example copies them."""
    base = tmp_path_factory.mktemp("tag-search")
    with seeded_keys("tag-search"):
        tree = build_tree(base / "tree")
    made = [node.home for node in tree.nodes]
    for node in tree.nodes:
        node.db.execute("pragma wal_checkpoint(truncate)")
    tree.close()
    return made


class Run:
    """The drawn operations on copies of the tree; the root's search checked after each
    sync against the full one."""

    def __init__(self, homes: list[Path], root: Path, data):
        pm = get_plugin_manager()
        self.nodes = []
        for index, home in enumerate(homes):
            shutil.copytree(home, root / f"node{index}")
            self.nodes.append(Node.open(root / f"node{index}", pm=pm))
        self.county, self.township, *self.villages = self.nodes
        self.root, self.data = root, data
        self.day = 1

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def draw(self, strategy, label: str):
        return self.data.draw(strategy, label=label)

    def register_at(self, node: Node, area: str | None = None) -> None:
        people = self.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True),
                           "petitioners")
        numbered = self.draw(st.sampled_from([True, True, True, False]), "with ID numbers")
        self.day = min(self.day + 1, 28)
        api.register_case(node, api.CaseInput(
            petitioners=[api.PetitionerInput(f"赵某{p}", synthetic_id(p) if numbered else None)
                         for p in people],
            channel="来访", category="劳动社保", kind="申诉求决", request="请求追讨拖欠工资",
            received=f"2026-03-{self.day:02d}", **({"area": area} if area else {})))

    def register(self) -> None:
        self.register_at(self.draw(st.sampled_from(self.villages), "village"))

    def register_ahead(self) -> None:
        """A village whose clock runs days ahead registers: the root waits for it."""
        village = self.draw(st.sampled_from(self.villages), "village ahead")
        days = self.draw(st.integers(2, 5), "days ahead")  # past the drift the root follows
        real = village.clock.now_ms
        village.clock.now_ms = lambda: real() + days * DAY_MS
        try:
            self.register_at(village)
        finally:
            village.clock.now_ms = real

    def register_at_county(self) -> None:
        self.register_at(self.county, self.villages[0].info.area)

    def up(self) -> None:
        """Bundles up the tree: the root's received hook tags as it imports."""
        for village in self.villages:
            carry(village, self.township, self.root)
        carry(self.township, self.county, self.root)
        self.check()

    def copy_up(self) -> None:
        """The township's events given to the root as a trusted copy: events without
        their sealed values and without the received hook; a later bundle brings both."""
        self.county.ingest(list(store.all_events(self.township.db)))

    def county_clock_on(self) -> None:
        days = self.draw(st.integers(1, 6), "days the root's clock moves on")
        real = self.county.clock.now_ms
        self.county.clock.now_ms = lambda: real() + days * DAY_MS
        self.up()

    def check(self) -> None:
        assert tags.untagged(self.county) == {}, "the full search finds cases left untagged"
        tagged = [row[0] for row in self.county.db.execute(
            "select entity_id from events where type = ?", [tags.TYPE])]
        assert len(tagged) == len(set(tagged)), "a case tagged twice"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_roots_search_since_its_last_look_leaves_nothing_the_full_search_would_tag(
        homes, tmp_path_factory, data):
    run = Run(homes, tmp_path_factory.mktemp("example"), data)
    try:
        for operation in data.draw(st.lists(st.sampled_from(OPERATIONS), min_size=3,
                                            max_size=12), label="operations"):
            getattr(run, operation)()
        run.up()
    finally:
        run.close()


def test_a_sync_bringing_nothing_new_looks_at_no_case(tmp_path):
    """The search's cost follows what arrived, not what the root holds."""
    tree = build_tree(tmp_path / "tree")
    try:
        for serial in range(1, 6):
            api.register_case(tree.village, api.CaseInput(
                petitioners=[api.PetitionerInput(f"赵某{serial}", synthetic_id(serial))],
                channel="来访", category="劳动社保", kind="申诉求决", request="请求追讨拖欠工资",
                received="2026-03-05"))
        carry(tree.village, tree.township, tmp_path)
        carry(tree.township, tree.county, tmp_path)
        assert len(set(r[0] for r in tree.county.db.execute(
            "select entity_id from events where type = ?", [tags.TYPE]))) == 5
        assert tags.Search.resume(tree.county).cases == []
        seen: list[str] = []
        tree.county.db.conn.set_trace_callback(seen.append)
        try:
            assert tags.tag_jurisdiction(tree.county) == []
        finally:
            tree.county.db.conn.set_trace_callback(None)
        plans = {sql: " / ".join(row[3] for row in tree.county.db.execute(
            "explain query plan " + sql)) for sql in seen if sql.lstrip().startswith("select")}
        reading_all = {sql: plan for sql, plan in plans.items()
                       if "events_entity" in plan or any(f"SCAN {table}" in plan for table in (
                           "events", "cases", "case_petitioners", "vault"))}
        assert not reading_all, reading_all
    finally:
        tree.close()


def test_an_id_number_sealed_after_its_registration_arrived_is_tagged_when_it_comes(tmp_path):
    """A trusted copy gives the root the registrations without their sealed ID numbers;
    the bundle that brings the ID numbers later adds no event of those cases."""
    tree = build_tree(tmp_path / "tree")
    try:
        case = api.register_case(tree.village, api.CaseInput(
            petitioners=[api.PetitionerInput("赵某1", synthetic_id(1))], channel="来访",
            category="劳动社保", kind="申诉求决", request="请求追讨拖欠工资",
            received="2026-03-05"))
        carry(tree.village, tree.township, tmp_path)
        tree.county.ingest(list(store.all_events(tree.township.db)))
        assert tags.tag_jurisdiction(tree.county) == []  # nothing to tag it with yet
        carry(tree.township, tree.county, tmp_path)
        assert [r[0] for r in tree.county.db.execute(
            "select entity_id from events where type = ?", [tags.TYPE])] == [case]
    finally:
        tree.close()
