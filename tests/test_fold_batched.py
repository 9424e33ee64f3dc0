"""The fold a page at a time gives the views of the fold one event at a time.

``page_fold.apply_page`` folds each record's events of a page together, its
state in memory and written once (``record_fold.fold_run``); ``fold.apply``,
one event at a time, is the reference. Real nodes of a certified tree (county, township,
village) author random event sets: registrations and steps on a few cases in
their three areas, steps two nodes take before hearing of each other's,
policy changes (one naming a deadline rule no node has, which holds the
village's cases, and back), a step of a newer release and a code no plugin
lists (both held), re-used case numbers (conflicts), disputes and
supervision orders. Two copies of the county that hold the tree's
certificates and nothing else receive every event in the same random order,
with repeats: one page by page in random cuts, one event at a time. Their
views, held records and conflicts must be identical row for row.

On arrival (``Admission.batch``), the page fold must refuse what the fold one
at a time refuses: forged signatures, gaps, forks inside a page, events past
a revocation folded earlier in the same page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, settings, strategies as st

from conftest import SharedClock, seeded_keys
from sync_helpers import build_tree, copy_node, feed, next_event, register as register_case
import test_convergence as convergence
from test_convergence import arrivals, batches, case, person, registration, scratch
from xinfang.core import fold, record_fold, store
from xinfang.core.admission import Admission
from xinfang.core.errors import StepRefused, XinfangError
from xinfang.core.event import Event
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.core.policy import set_policy
from xinfang.plugins.cases import api, views
from xinfang.plugins.ledger import api as ledger
from xinfang.plugins.supervision import api as supervision
from xinfang.sync import trust

D = dt.date.fromisoformat
#: what each step takes, so that it is valid when its source state allows it: the
#: convergence machine's values, with 抄送 units and a 包案 leader named on the way
STEP_VALUES = {**convergence.STEP_VALUES,
               "forward": {**convergence.STEP_VALUES["forward"], "copied": "县信访局、镇司法所"},
               "accept": {**convergence.STEP_VALUES["accept"], "leader": "镇长甲"},
               "baoan": {"leader": "镇长乙", "duty": "包化解"}}
PEOPLE = [("赵某甲", 1), ("钱某乙", 2), ("孙某丙", 3)]
#: (key, value, where): synced policy the county sets; ``missing@1`` is no node's rule
POLICIES = [("case.repeat_window_days", "30", "county"),
            ("case.collective_threshold", "2", "county"),
            ("case.deadline_policy", "missing@1", "village"),
            ("case.deadline_policy", "statutory@1", "village"),
            ("case.copied_days", "10", "county"),
            ("supervision.escalate_days", "3", "county")]
#: the order a case is handled in when it goes the whole way: ``handle`` takes these,
#: so that answers, closing, ratings and reviews (and their deadlines) are folded too
MAIN_PATH = ["accept", "extend", "baoan", "answer", "close", "rate", "follow_up",
             "request_review", "answer_review", "request_rereview", "answer_rereview",
             "finalize"]
OPERATIONS = ["register", "register", "step", "desk", "desk", "handle", "handle",
              "concurrent", "concurrent",
              "exchange", "everyone", "policy", "newer_step", "numbered", "dispute", "order"]


class World:
    """The tree made once (seeded keys, so every run draws the same authors): its
    nodes' directories, and the county as it was before any case, holding every
    node's certificate: what each example copies."""

    def __init__(self):
        self.tmp = scratch()
        base = Path(self.tmp.name)
        with seeded_keys("fold-batched"):
            tree = build_tree(base / "tree", villages=1)
        # the county checks authority against the village's certificate too
        trust.admit(tree.county.db, trust.chain_of(tree.village.db, tree.village.info.author))
        self.pm = get_plugin_manager()
        self.homes = [node.home for node in (tree.county, tree.township, tree.village)]
        self.areas = [node.info.area for node in (tree.county, tree.township, tree.village)]
        self.blank = base / "blank"
        tree.county.db.execute("pragma wal_checkpoint(truncate)")
        tree.close()
        shutil.copytree(self.homes[0], self.blank)

    def nodes(self, root: Path, clock: SharedClock) -> list[Node]:
        made = []
        for index, home in enumerate(self.homes):
            shutil.copytree(home, root / f"author{index}")
            node = Node.open(root / f"author{index}", pm=self.pm)
            node.operator = "测试员"
            made.append(clock.attach(node))
        return made

    def fresh(self, home: Path) -> Node:
        shutil.copytree(self.blank, home)
        return Node.open(home, pm=self.pm)


@pytest.fixture(scope="module")
def world():
    made = World()
    yield made
    made.tmp.cleanup()


def events_of(node: Node) -> list[Event]:
    return list(store.all_events(node.db))


def everything(node: Node) -> dict[str, list[tuple]]:
    """Every view row, held records and conflicts included."""
    return fold.dump_views(node.db, node.registry)


class Author:
    """Runs drawn operations on the three author nodes; skips what a node refuses."""

    def __init__(self, nodes: list[Node], areas: list[str], data):
        self.nodes, self.areas, self.data = nodes, areas, data
        self.day = D("2026-01-05")
        self.serial = 0

    def later(self) -> str:
        self.day += dt.timedelta(days=self.data.draw(st.integers(0, 3), label="days later"))
        return self.day.isoformat()

    def pick(self, options, label: str):
        return self.data.draw(st.sampled_from(options), label=label)

    def cases(self, at: int) -> list[str]:
        node = self.nodes[at]
        return [case_id for case_id, area in node.db.execute(
            "select id, area from cases order by id") if node.in_jurisdiction(area)]

    def run(self, operation: str) -> None:
        try:
            getattr(self, operation)()
        except XinfangError as exc:  # a node refuses what it may not write: drawn again
            event(f"{operation} refused: {exc.message.msgid[:50]}")

    def register(self) -> None:
        for _ in range(self.data.draw(st.integers(1, 3), label="cases registered")):
            self.register_one()

    def register_one(self) -> None:
        at = self.pick([0, 1, 2], "registering node")
        area = self.pick(self.areas[at:], "area of the case")
        people = self.data.draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=2,
                                         unique=True), label="petitioners")
        received = self.later()
        data = case([person(*p) for p in people], self.pick(["劳动社保", "国土资源"], "category"),
                    received, headcount=len(people) + self.pick([0, 4], "more people"),
                    area=area)
        api.register_case(self.nodes[at], data, today=D(received))

    def step(self, at: int | None = None, case_id: str | None = None,
             along: bool = False) -> None:
        if at is None:
            holding = [i for i in range(3) if self.cases(i)]
            if not holding:
                return
            at = self.pick(holding, "stepping node")
        node = self.nodes[at]
        case_id = case_id or self.pick(self.cases(at), "case")
        view = api.guard_view(node, case_id)
        if view is None:
            return
        date = max(D(view["updated"]) + dt.timedelta(days=1), self.day).isoformat()
        lifecycle = node.registry.lifecycle(views.ENTITY)
        possible = []
        for candidate in lifecycle.allowed(view["status"]):
            try:
                lifecycle.check(view, candidate.name, {"date": date,
                                                       **STEP_VALUES[candidate.name]})
            except StepRefused:
                continue
            possible.append(candidate.name)
        if along:  # the next step or the one after it on the main path
            possible = sorted((n for n in possible if n in MAIN_PATH), key=MAIN_PATH.index)[:2]
        if possible:
            name = self.pick(possible, f"step at node {at}")
            event(f"step {name}")
            api.take_step(node, case_id, name, {"date": date, **STEP_VALUES[name]},
                          today=D(date))

    def desk(self) -> None:
        """A node takes a few steps on one case, one after the other."""
        self.steps_on_one_case(2, 5, along=False)

    def handle(self) -> None:
        """A node takes one of its cases a long way down the main path."""
        self.steps_on_one_case(3, 10, along=True)

    def steps_on_one_case(self, least: int, most: int, along: bool) -> None:
        holding = [i for i in range(3) if self.cases(i)]
        if holding:
            at = self.pick(holding, "node at its desk")
            case_id = self.pick(self.cases(at), "case on the desk")
            for _ in range(self.data.draw(st.integers(least, most), label="steps taken")):
                self.step(at, case_id, along=along)

    def concurrent(self) -> None:
        """Two nodes step one case, neither having heard of the other's step."""
        pairs = [(a, b) for a in range(3) for b in range(3)
                 if a < b and set(self.cases(a)) & set(self.cases(b))]
        if pairs:
            a, b = self.pick(pairs, "concurrent nodes")
            case_id = self.pick(sorted(set(self.cases(a)) & set(self.cases(b))), "shared case")
            for at in (a, b):
                with contextlib.suppress(XinfangError):
                    self.step(at, case_id)

    def exchange(self) -> None:
        source, dest = self.pick([(a, b) for a in range(3) for b in range(3) if a != b],
                                 "exchange")
        self.nodes[dest].ingest(events_of(self.nodes[source]))

    def everyone(self) -> None:
        """Every node hears of everything, as after a round of syncs."""
        pool = [e for node in self.nodes for e in events_of(node)]
        for node in self.nodes:
            node.ingest(pool)

    def policy(self) -> None:
        key, value, where = self.pick(POLICIES, "policy")
        set_policy(self.nodes[0], key, value, self.areas[0 if where == "county" else 2])

    def newer_step(self) -> None:
        """A step of a newer release: held where it reaches its case, else a conflict."""
        holding = [i for i in range(3) if self.cases(i)]
        if holding:
            at = self.pick(holding, "node of the newer step")
            case_id = self.pick(self.cases(at), "case of the newer step")
            area = self.nodes[at].db.execute("select area from cases where id = ?",
                                             [case_id]).fetchone()[0]
            self.nodes[at].append(Draft("case.reopen", views.ENTITY, case_id, area,
                                        {"values": {"date": self.later()}, "by": "测试员"}))

    def numbered(self) -> None:
        """A registration under a number the node picks: taken already (a conflict), or
        with a category no plugin lists (held)."""
        at = self.pick([0, 1, 2], "node picking a number")
        node = self.nodes[at]
        number = f"{node.info.area}-2026-{self.pick([1, 2, 3], 'serial'):05d}"
        category = self.pick(["labour", "space_debris"], "category code")
        registration(node, number, [self.pick(PEOPLE, "petitioner")], category, self.later())

    def dispute(self) -> None:
        at = self.pick([1, 2], "node screening a dispute")
        date = self.later()
        dispute_id = ledger.add_dispute(self.nodes[at], {
            "date": date, "kind": "land_compensation", "summary": "征地补偿纠纷",
            "risk": "medium", "due": (D(date) + dt.timedelta(days=20)).isoformat()},
            today=D(date))
        if self.data.draw(st.booleans(), label="dispute goes on"):
            ledger.step(self.nodes[at], "dispute", dispute_id, "start",
                        {"date": self.later(), "measures": "召开协调会", "mediation": "people"},
                        today=self.day)

    def order(self) -> None:
        """The county orders the township to report on a township case it holds."""
        cases = [c for c in self.cases(0) if c.startswith(self.areas[1] + "-")]
        if cases:
            date = self.later()
            supervision.issue(self.nodes[0], [self.pick(cases, "case ordered")],
                              (D(date) + dt.timedelta(days=10)).isoformat(), "报告办理结果",
                              date=date, today=D(date))


@contextlib.contextmanager
def counting_runs():
    """How many records folded in memory, and how many sent their page back."""
    counts = {"in memory": 0, "sent back": 0}
    original = record_fold.fold_run

    def counted(*args):
        try:
            original(*args)
        except record_fold.PageFallback:
            counts["sent back"] += 1
            raise
        counts["in memory"] += 1

    record_fold.fold_run = counted
    try:
        yield counts
    finally:
        record_fold.fold_run = original


def fold_both(world: World, root: Path, arrived: list[Event], pages: list[list[Event]]
              ) -> tuple[Node, Node]:
    """A copy of the blank county given the events one at a time, another page by page."""
    single, paged = world.fresh(root / "single"), world.fresh(root / "paged")
    for one in arrived:
        single.ingest([one])
    with counting_runs() as counts:
        for page in pages:
            paged.ingest(page)
    event(f"records folded in memory: {min(counts['in memory'], 10)}; pages sent back: "
          f"{min(counts['sent back'], 2)}")
    return single, paged


def assert_same_views(single: Node, paged: Node) -> None:
    mine, theirs = everything(paged), everything(single)
    for table in theirs:
        assert sorted(mine[table]) == sorted(theirs[table]), f"{table} differs"
    assert fold.views_digest(paged.db, paged.registry) == fold.views_digest(single.db,
                                                                            single.registry)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_event_sets_fold_page_by_page_to_the_views_of_one_at_a_time(world, data):
    with scratch() as tmp:
        root = Path(tmp)
        nodes = world.nodes(root, SharedClock())
        author = Author(nodes, world.areas, data)
        author.run("register")
        for operation in data.draw(st.lists(st.sampled_from(OPERATIONS), min_size=8,
                                            max_size=24), label="operations"):
            author.run(operation)
        pool = sorted({e.id: e for node in nodes for e in events_of(node)}.values(),
                      key=lambda e: e.order_key)
        for node in nodes:
            node.close()
        note("\n".join(f"{i}: {e.type} {e.entity_id} by {e.author[:8]} seq {e.seq}"
                       for i, e in enumerate(pool)))
        order = data.draw(arrivals(len(pool)), label="arrival order")
        cuts = data.draw(batches(order), label="pages")
        single, paged = fold_both(world, root, [pool[i] for i in order],
                                  [[pool[i] for i in page] for page in cuts])
        with single, paged:
            held = paged.db.execute("select count(*) from held_entities").fetchone()[0]
            conflicts = paged.db.execute("select count(*) from conflicts").fetchone()[0]
            event(f"held records: {min(held, 2)}; conflicts: {min(conflicts, 3)}")
            event(f"events: {len(pool) // 10 * 10}+")
            assert_same_views(single, paged)


# -- a page writes each record once ---------------------------------------------------


def statements(node: Node, action) -> list[str]:
    seen: list[str] = []
    node.db.conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        node.db.conn.set_trace_callback(None)
    return seen


def a_village_desk(world: World, root: Path, cases: int = 4) -> list[Event]:
    """A village registering ``cases`` cases and taking five steps on each."""
    nodes = world.nodes(root, SharedClock())
    village = nodes[2]
    numbers = [register_case(village, serial=n, received="2026-01-05")
               for n in range(1, cases + 1)]
    for name, values in [("accept", STEP_VALUES["accept"]), ("extend", STEP_VALUES["extend"]),
                         ("answer", STEP_VALUES["answer"]), ("close", {}),
                         ("rate", STEP_VALUES["rate"])]:
        for number in numbers:
            api.take_step(village, number, name, {"date": "2026-02-01", **values},
                          today=D("2026-02-01"))
    made = events_of(village)
    for node in nodes:
        node.close()
    return [e for e in made if e.entity == views.ENTITY]


def test_a_page_writes_each_case_row_and_its_deadlines_once(world):
    with scratch() as tmp:
        root = Path(tmp)
        page = a_village_desk(world, root)
        single, paged = world.fresh(root / "single"), world.fresh(root / "paged")
        with single, paged:
            one_at_a_time = statements(single, lambda: [single.ingest([e]) for e in page])
            at_once = statements(paged, lambda: paged.ingest(page))
            assert_same_views(single, paged)

        def count(found: list[str], start: str) -> int:
            return sum(1 for s in found if s.lstrip().lower().startswith(start))

        assert count(at_once, "insert into [cases]") == 4
        assert count(at_once, "update [cases]") == 0  # created in the page: written once
        assert count(at_once, "delete from case_deadlines") == 4
        assert count(at_once, "savepoint fold_event") == 0
        assert count(at_once, "select * from [cases]") <= 4
        assert count(one_at_a_time, "update [cases]") == 20
        assert count(one_at_a_time, "delete from case_deadlines") == 24
        assert len(at_once) < len(one_at_a_time) / 2


def test_a_page_continues_cases_folded_before_it(world):
    """The second half of a desk's events, folded onto the first half, page by page."""
    with scratch() as tmp:
        root = Path(tmp)
        made = a_village_desk(world, root)
        single, paged = world.fresh(root / "single"), world.fresh(root / "paged")
        with single, paged:
            for node in (single, paged):
                node.ingest(made[:10])
            for one in made[10:]:
                single.ingest([one])
            paged.ingest(made[10:])
            assert_same_views(single, paged)


# -- what sends a page back to the fold one at a time --------------------------------


def test_a_record_held_in_the_middle_of_a_page_folds_the_page_one_at_a_time(world,
                                                                            monkeypatch):
    """A registration with a code no plugin lists, with steps after it: the hold is
    found by plugin code once the record is in memory, so the page is folded again
    one event at a time, and ends as that fold does."""
    with scratch() as tmp:
        root = Path(tmp)
        nodes = world.nodes(root, SharedClock())
        village = nodes[2]
        register_case(village, serial=1, received="2026-01-05")
        number = f"{village.info.area}-2026-00002"
        registration(village, number, [PEOPLE[1]], "space_debris", "2026-01-06")
        village.append(Draft("case.accept", views.ENTITY, number, village.info.area,
                             {"values": {"date": "2026-01-07"}, "by": "测试员"}))
        made = events_of(village)
        for node in nodes:
            node.close()
        single, paged = world.fresh(root / "single"), world.fresh(root / "paged")
        with single, paged:
            for one in made:
                single.ingest([one])
            raised = []
            original = record_fold.fold_run

            def spying(*args):
                try:
                    original(*args)
                except record_fold.PageFallback:
                    raised.append(args[2][0].entity_id)
                    raise

            monkeypatch.setattr(record_fold, "fold_run", spying)
            paged.ingest(made)
            assert raised == [number]
            assert paged.db.execute("select entity_id from held_entities").fetchall() == [
                (number,)]
            assert_same_views(single, paged)


def test_a_conflict_inside_a_page_is_kept_without_leaving_the_page_fold(world, monkeypatch):
    """Two registrations of one number and a step the state refuses: the kernel's own
    refusals are kept as conflicts in memory, as the fold one at a time keeps them."""
    with scratch() as tmp:
        root = Path(tmp)
        nodes = world.nodes(root, SharedClock())
        village = nodes[2]
        first = register_case(village, serial=1, received="2026-01-05")
        registration(village, first, [PEOPLE[2]], "labour", "2026-01-06")
        village.append(Draft("case.close", views.ENTITY, first, village.info.area,
                             {"values": {"date": "2026-01-07"}, "by": "测试员"}))
        api.take_step(village, first, "accept", {"date": "2026-01-08"}, today=D("2026-01-08"))
        made = events_of(village)
        for node in nodes:
            node.close()
        single, paged = world.fresh(root / "single"), world.fresh(root / "paged")
        with single, paged:
            for one in made:
                single.ingest([one])
            original = record_fold.fold_run

            def strict(*args):
                try:
                    original(*args)
                except record_fold.PageFallback:  # pragma: no cover - the failure this test names
                    pytest.fail("a kernel refusal sent the page back to the fold one at a time")

            monkeypatch.setattr(record_fold, "fold_run", strict)
            paged.ingest(made)
            assert paged.db.execute("select count(*) from conflicts").fetchone()[0] == 2
            assert_same_views(single, paged)


# -- on arrival: the page fold refuses what the fold one at a time refuses ------------


def admit(node: Node, events: list[Event], batched: bool) -> list[str | None]:
    """Admit ``events`` as ``receive.apply_page`` does: one transaction, author order."""
    with node.db.atomic():
        admission = Admission(node)
        with admission.batch() if batched else contextlib.nullcontext():
            return [admission.admit(e) for e in sorted(events, key=lambda e: (
                e.author, e.epoch, e.seq))]


def test_arrivals_are_refused_alike_with_the_page_fold(tmp_path):
    """A forged signature, a gap, a fork inside the page, and the events of a village
    its township revoked earlier in the same admission."""
    with seeded_keys("fold-arrivals"):
        tree = build_tree(tmp_path / "tree")
    try:
        county, township, village = tree.county, tree.township, tree.village
        for n in range(1, 4):
            register_case(village, serial=n, received="2026-01-05")
        genuine = feed(village)
        forged = next_event(village, signer=township.keys, entity_id=f"{village.info.area}-"
                            "2026-90010")
        gap = next_event(village, seq=genuine[-1].seq + 3, prev=genuine[-1].id)
        fork = next_event(village, seq=genuine[-2].seq, prev=genuine[-3].id,
                          entity_id=f"{village.info.area}-2026-90011")
        trust.admit(county.db, trust.chain_of(village.db, village.info.author))
        revocation = township.append(Draft("trust.revoke", "trust", village.info.author,
                                           village.info.area,
                                           {"epoch": 0, "seq": genuine[1].seq,
                                            "reason": "测试：村电脑被盗"}))
        trust.admit(county.db, trust.chain_of(township.db, township.info.author))
        arriving = [*feed(township), *genuine, forged, gap, fork, revocation]
        results = {}
        for batched in (False, True):
            node = copy_node(county, tmp_path / f"county-{batched}")
            with node:
                reasons = admit(node, arriving, batched)
                again = admit(node, arriving, batched)
                results[batched] = (reasons, again, everything(node),
                                    node.db.execute("select event_id, reason from quarantine "
                                                    "order by event_id").fetchall(),
                                    node.db.execute("select author, epoch, seq from "
                                                    "frozen_feeds").fetchall())
        assert results[True] == results[False]
        reasons = results[True][0]
        refused = {json.loads(r)["m"].split(":")[0] for r in reasons if r not in (None,
                                                                                 "duplicate")}
        # the township's revocation sorts first here: folded at once, it refuses what follows
        assert refused == {"fork", "key revoked", "bad signature"}
        assert results[True][4] != [] and results[True][1].count(None) == 0
    finally:
        tree.close()
