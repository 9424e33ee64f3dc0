"""Sync over a real tree of nodes (DESIGN invariants 3, 4 and 5).

A county, two townships and three villages, each a real node directory with
its own database and keys, certified down the tree, exchange signed events
by bundle files, over HTTP (a waitress server per parent) and by pages
handed over directly, some of them dropped, reordered or applied twice.
A hypothesis state machine interleaves that with case work (concurrent
steps included), bundles carried late or never, and restarts, and checks
after every step that

(a) each node's views are a fold of exactly its own log,
(b) each node holds only what its scope allows, and
(c) nothing a node ever held is lost;

and after a full sweep (a rule, and the end of every run) that

(d) one sweep up and down carried everything, and every node holds exactly
    what its scope allows of everything made anywhere and agrees with the
    county about it (cases, history, deadlines, conflicts).

Plain tests below pin the single stories: a bundle followed by HTTP (and
the reverse) continues from the same frontier, a cut-off pull resumes with
exactly the remainder, a quiet sync moves and reads nothing, an assignment
travels county → township → village and the answer travels back, villages
never see each other's cases, and a revocation reaches the revoked key's
descendants.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, note, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import SharedClock, synthetic_id
from plugins import inspection
from xinfang.core import fold, policy, records, store, verify
from xinfang.core.errors import StepRefused
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.core.sealing import Secret
from xinfang.demo.county import AGREE
from xinfang.plugins.cases import api, views
from xinfang.core import scope
from xinfang.sync import bundle, envelope, receive, send, trust, wire
from xinfang.sync.http import Client, SyncError
from xinfang.sync.server import BackgroundServer

TODAY = dt.date(2026, 11, 22)
COUNTY, T1, T2 = "431202", "431202101", "431202102"
V1, V2, V3 = "431202101201", "431202101202", "431202102201"
#: (area, level, name, parent area), parents first.
TREE = [
    (COUNTY, "county", "测试县信访局", None),
    (T1, "township", "测试一镇信访办", COUNTY),
    (T2, "township", "测试二镇信访办", COUNTY),
    (V1, "village", "测试一镇一村信访站", T1),
    (V2, "village", "测试一镇二村信访站", T1),
    (V3, "village", "测试二镇一村信访站", T2),
]
AREAS = [area for area, *_ in TREE]
LEVEL = {area: level for area, level, _, _ in TREE}
PARENT = {area: parent for area, _, _, parent in TREE if parent}
#: (child, parent) for every link of the tree, villages last.
EDGES = [(child, parent) for child, parent in PARENT.items()]
#: a second entity type (安全检查) lives only here: the townships relay it unfolded
WITH_INSPECTIONS = (COUNTY, V1, V3)
#: the village whose key the county may revoke in a run
REVOCABLE = V2


def plugins_at(area: str) -> list:
    return [inspection] if area in WITH_INSPECTIONS else []

PEOPLE = [("赵某甲", 1), ("钱某乙", 2), ("孙某丙", 3)]
#: values that pass each step's fields and guards on TODAY (forward gets its
#: to_area from the case).
STEP_VALUES = {
    "accept": {},
    "forward": {"mode": "assign"},
    "answer": {"outcome": "explain"},
    "close": {},
    "withdraw": {},
    "reject": {"reason": "属诉讼途径", "legal_channel": "litigation"},
}


# -- builders -------------------------------------------------------------------


class Blanks:
    """Node directories exactly as ``Node.init`` leaves them, one per area.

    A fresh fold copies one (a third of the cost of ``Node.init``); it is a
    node of the same level and area that has never held an event and has no
    certificate, so ``ingest`` folds the events without any sync checks.
    """

    _tmp: tempfile.TemporaryDirectory | None = None
    _made: set[str] = set()

    @classmethod
    def copy(cls, area: str, home: Path) -> Node:
        if cls._tmp is None:
            cls._tmp = tempfile.TemporaryDirectory(prefix="xinfang-blank-")
        template = Path(cls._tmp.name) / area
        if area not in cls._made:
            Node.init(template, level=LEVEL[area], area=area, name="核对用空白节点",
                      pm=get_plugin_manager(plugins_at(area))).close()
            cls._made.add(area)
        shutil.copytree(template, home)
        return Node.open(home, pm=get_plugin_manager(plugins_at(area)))


def enrol(child: Node, parent: Node) -> None:
    """The enrolment round trip, through the real sealed files' contents."""
    request = trust.EnrolmentRequest.from_json(trust.make_request(child).to_json())
    sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(parent, request))
    trust.import_certificate(child, envelope.open_(child.keys, sealed, "enrolment").payload)


class Tree:
    """The six nodes, their homes, bundle carrying and one HTTP server per parent."""

    def __init__(self, base: Path, clock: SharedClock | None = None):
        self.base = base
        self.clock = clock or SharedClock()
        self.nodes: dict[str, Node] = {}
        self.servers: dict[str, BackgroundServer] = {}
        self.sequence = 0
        for area, level, name, parent in TREE:
            node = Node.init(base / area, level=level, area=area, name=name,
                             root=parent is None, pm=get_plugin_manager(plugins_at(area)))
            node.operator = "测试员"
            self.nodes[area] = self.clock.attach(node)
            if parent:
                enrol(node, self.nodes[parent])

    def __getitem__(self, area: str) -> Node:
        return self.nodes[area]

    # -- work ----------------------------------------------------------------

    def register(self, at: str, area: str | None = None, serial: int = 1,
                 received: str = "2026-03-01", name: str = "赵某甲") -> str:
        data = api.CaseInput(petitioners=[api.PetitionerInput(name, synthetic_id(serial))],
                             channel="来访", category="劳动社保", kind="申诉求决",
                             request="请求依法处理（测试）", received=received, area=area)
        return api.register_case(self.nodes[at], data, today=TODAY)

    def step(self, at: str, case_id: str, name: str, **values) -> str:
        return api.take_step(self.nodes[at], case_id, name, values, today=TODAY)

    # -- transports ----------------------------------------------------------

    def export(self, source: str, target: str) -> tuple[Path, bundle.ExportSummary]:
        self.sequence += 1
        path = self.base / "bundles" / f"{self.sequence:04d}-{source}-to-{target}.xfb"
        path.parent.mkdir(exist_ok=True)
        summary = bundle.export_bundle(self.nodes[source], self.nodes[target].info.name, path)
        return path, summary

    def carry(self, source: str, target: str) -> bundle.ImportSummary:
        path, _ = self.export(source, target)
        return bundle.import_bundle(self.nodes[target], path)

    def url(self, parent: str) -> str:
        """The parent's HTTP address; its server starts on first use and runs until close."""
        if parent not in self.servers:
            self.servers[parent] = BackgroundServer(
                self.base / parent, threads=2, pm=get_plugin_manager(plugins_at(parent))).start()
        return self.servers[parent].url

    def http(self, child: str):
        return Client(self.nodes[child], self.url(PARENT[child])).sync()

    def restart(self, area: str) -> None:
        self.nodes[area].close()
        node = Node.open(self.base / area, pm=get_plugin_manager(plugins_at(area)))
        node.operator = "测试员"
        self.nodes[area] = self.clock.attach(node)

    def cut_off(self, source: str, target: str) -> bool:
        """Whether ``source`` holds a revocation of ``target``'s key: it sends it nothing."""
        return self.nodes[source].db.execute(
            "select 1 from revocations where subject = ? and kind = 'revoke'",
            [self.nodes[target].info.author]).fetchone() is not None

    def sweep(self, transport: str) -> int:
        """Every link up (villages first), then every link down; events applied. A link
        one end knows the other's key revoked on is not used."""
        moved = 0
        ups = [e for e in EDGES if len(e[0]) == 12] + [e for e in EDGES if len(e[0]) == 9]
        for child, parent in ups:
            if self.cut_off(child, parent) or self.cut_off(parent, child):
                continue
            if transport == "http":
                summary = self.http(child)
                moved += summary.pushed + summary.pulled
            else:
                moved += self.carry(child, parent).applied
        for child, parent in reversed(ups):
            if self.cut_off(child, parent) or self.cut_off(parent, child):
                continue  # asked again: the way down may just have brought the revocation
            if transport == "http":
                summary = self.http(child)
                moved += summary.pushed + summary.pulled
            else:
                moved += self.carry(parent, child).applied
        return moved

    def sync_until_quiet(self, transport: str = "bundle", limit: int = 4) -> list[int]:
        counts = []
        for _ in range(limit):
            counts.append(self.sweep(transport))
            if counts[-1] == 0:
                return counts
        raise AssertionError(f"the tree never went quiet over {transport}: events moved per "
                             f"sweep {counts}")

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        for node in self.nodes.values():
            node.close()


@pytest.fixture
def tree(tmp_path):
    built = Tree(tmp_path)
    yield built
    built.close()


# -- what a node holds -----------------------------------------------------------


def held(node: Node) -> dict[str, tuple[str, str]]:
    """Event id -> (entity, area) for every event in the node's log."""
    return {i: (entity, area) for i, entity, area in
            node.db.execute("select id, entity, area from events")}


def secrets_of(node: Node) -> list[Secret]:
    return [Secret(*row) for row in node.db.execute("select digest, salt, value from secrets")]


def fresh_digest(node: Node, workdir: Path) -> str:
    """The views a never-synced node of the same area folds from this node's log."""
    home = workdir / f"fresh-{time.monotonic_ns()}"
    fresh = Blanks.copy(node.info.area, home)
    try:
        with fresh.db.atomic():  # the trust data the events are judged by
            for cert in store.all_certificates(node.db):
                store.remember_certificate(fresh.db, cert)
            store.set_meta(fresh.db, "root_author", store.get_meta(node.db, "root_author"))
        fresh.ingest(list(store.all_events(node.db)), secrets_of(node))
        return fold.views_digest(fresh.db, fresh.registry)
    finally:
        fresh.close()
        shutil.rmtree(home)


def conflicts_in(node: Node, entities: set[tuple[str, str]]) -> list[tuple]:
    rows = node.db.execute("select event_id, entity, entity_id, order_key, type, reason "
                           "from conflicts order by event_id").fetchall()
    return [r for r in rows if (r[1], r[2]) in entities]


def agreement(tree: Tree, area: str) -> list[str]:
    """What node ``area`` and the county disagree on, for the entities in its scope."""
    node, county = tree[area], tree[COUNTY]
    mine = {(entity, entity_id) for entity, entity_id, a in
            node.db.execute("select entity, entity_id, area from events")
            if scope.in_scope(entity, a, area) and node.registry.entity_type(entity)}
    problems = []
    if conflicts_in(node, mine) != conflicts_in(county, mine):
        problems.append(f"{area}: conflicts differ from the county's")
    for table, query in AGREE.items():
        if node.db.execute(query, [area + "%"]).fetchall() != \
                county.db.execute(query, [area + "%"]).fetchall():
            problems.append(f"{area}: {table} differs from the county's")
    records = ("select id, area, status, topic, facts, updated from inspections "
               "where area like ? order by id")
    if area in WITH_INSPECTIONS:
        if node.db.execute(records, [area + "%"]).fetchall() != \
                county.db.execute(records, [area + "%"]).fetchall():
            problems.append(f"{area}: inspections differ from the county's")
    else:
        held_here = {i for (i,) in node.db.execute(
            "select entity_id from held_entities where entity = 'inspection'")}
        folded_above = {i for (i,) in county.db.execute(
            "select id from inspections where area like ?", [area + "%"])}
        if held_here != folded_above:
            problems.append(f"{area}: holds {len(held_here)} inspections, the county folds "
                            f"{len(folded_above)} of its area")
    return problems


def excluded(node: Node) -> set[str]:
    return {e.event_id for e in verify.excluded_events(node.db)}


# -- the state machine --------------------------------------------------------------


class SyncTree(RuleBasedStateMachine):
    """Six real nodes and a model: every event ever made, every event each node held."""

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="xinfang-sync-")
        self.tree = Tree(Path(self.tmp.name) / "tree")
        #: every event ever made anywhere: id -> (entity, area).
        self.created: dict[str, tuple[str, str]] = {}
        #: every event each node has held at some point.
        self.ever_held: dict[str, set[str]] = {area: set() for area in AREAS}
        #: bundles written and not yet carried (a USB stick in a pocket).
        self.pocket: list[tuple[Path, str]] = []
        self.fresh_digests: dict[tuple[str, frozenset[str]], str] = {}
        self.page_size = wire.MAX_PAGE_EVENTS
        #: REVOCABLE's last good seq once the county revoked it
        self.revoked_after: int | None = None
        for area in AREAS:  # the trust.certify each parent logged enrolling its children
            self.made_by(area)

    def teardown(self):
        """Every run ends with a full sweep, so (d) is checked after any history."""
        try:
            if sys.exc_info()[0] is None:  # not while a failure is on its way out
                self.full_sweep("bundle")
        finally:
            wire.MAX_PAGE_EVENTS = self.page_size
            self.tree.close()
            self.tmp.cleanup()

    @initialize(size=st.sampled_from([2, 3, 500]), data=st.data())
    def offline_work_before_any_sync(self, size, data):
        """Small pages make the few events of a run span several pages; every run
        starts with cases registered here and there, so syncs have work at once."""
        wire.MAX_PAGE_EVENTS = size
        note(f"pages of at most {size} events")
        event(f"pages of at most {size} events")
        for _ in range(data.draw(st.integers(1, 3), label="offices registering offline")):
            self.register_case(data)

    # -- work --------------------------------------------------------------

    def made_by(self, area: str) -> None:
        node = self.tree[area]
        for event_id, entity, event_area in node.db.execute(
                "select id, entity, area from events where author = ?", [node.info.author]):
            self.created.setdefault(event_id, (entity, event_area))

    def writers(self) -> list[str]:
        """The nodes that may still sign: not the revoked one once it heard of it."""
        return [a for a in AREAS if not (a == REVOCABLE and self.revoked_after is not None)]

    def revoked_later(self) -> set[str]:
        """Events REVOCABLE signed after the point the county revoked it at."""
        if self.revoked_after is None:
            return set()
        author = self.tree[REVOCABLE].info.author
        return {i for (i,) in self.tree[REVOCABLE].db.execute(
            "select id from events where author = ? and seq > ?", [author, self.revoked_after])}

    @rule(data=st.data())
    def register_case(self, data):
        """A node registers one to a few cases, for its own area or one below."""
        at = data.draw(st.sampled_from(self.writers()), label="registering node")
        for _ in range(data.draw(st.integers(1, 3), label="how many")):
            area = data.draw(st.sampled_from([a for a in AREAS if a.startswith(at)]),
                             label="area")
            name, serial = data.draw(st.sampled_from(PEOPLE), label="petitioner")
            day = data.draw(st.integers(0, 200), label="received, days after 2026-01-05")
            received = (dt.date(2026, 1, 5) + dt.timedelta(days=day)).isoformat()
            case_id = self.tree.register(at, area, serial, received, name)
            note(f"{at} registers {case_id} for {area}")
        self.made_by(at)

    def possible_steps(self, area: str) -> list[tuple[str, str]]:
        node = self.tree[area]
        lifecycle = node.registry.lifecycle(views.ENTITY)
        found = []
        for (case_id,) in node.db.execute("select id from cases order by id").fetchall():
            view = api.guard_view(node, case_id)
            for step in lifecycle.allowed(view["status"]):
                if step.name not in STEP_VALUES:
                    continue
                values = {"date": TODAY.isoformat(), **self.values(step.name, view, area)}
                try:
                    lifecycle.check(view, step.name, values)
                except StepRefused:
                    continue
                found.append((case_id, step.name))
        return found

    @staticmethod
    def values(step: str, view, at: str) -> dict:
        values = dict(STEP_VALUES[step])
        if step == "forward":
            # assign down to the case's area; a node assigns in its own area to a unit
            if len(view["area"]) > len(at):
                values["to_area"] = view["area"]
            else:
                values["unit"] = "属地责任单位"
            if len(at) == 12:  # a village may not 交办 (assign); it transfers (转送)
                values["mode"] = "transfer"
        return values

    @rule(data=st.data())
    def plan_or_inspect(self, data):
        """The second entity type: a node with the plugin plans an inspection or moves one."""
        at = data.draw(st.sampled_from(WITH_INSPECTIONS), label="inspecting node")
        node = self.tree[at]
        movable = [(i, s) for i, s in node.db.execute(
            "select id, status from inspections where status != 'closed' order by id")]
        if movable and data.draw(st.booleans(), label="move one"):
            entity_id, status = data.draw(st.sampled_from(movable), label="inspection")
            step = "inspect" if status == "planned" else "close"
            records.take_step(node, "inspection", entity_id, step, today=TODAY)
            note(f"{at} takes {step} on {entity_id}")
        else:
            area = data.draw(st.sampled_from([a for a in AREAS if a.startswith(at)]),
                             label="inspection area")
            entity_id = records.create(node, "inspection", {"topic": "河道护栏"}, area=area,
                                      today=TODAY)
            note(f"{at} plans {entity_id} for {area}")
        self.made_by(at)

    @rule(threshold=st.integers(2, 6))
    def change_policy(self, threshold):
        """The county changes the 集体访 threshold: it travels down and re-folds."""
        policy.set_policy(self.tree[COUNTY], "case.collective_threshold", threshold)
        note(f"county sets the collective threshold to {threshold}")
        self.made_by(COUNTY)

    @precondition(lambda self: self.revoked_after is None)
    @rule()
    def revoke_a_village(self):
        """The county revokes REVOCABLE's key after the last event it holds of it."""
        county = self.tree[COUNTY]
        author = self.tree[REVOCABLE].info.author
        if trust.certificate(county.db, author) is None:
            return  # the county has never heard of it: nothing to revoke yet
        seq, _ = store.feed_head(county.db, author, 0)
        county.append(Draft("trust.revoke", "trust", author, REVOCABLE,
                            {"epoch": 0, "seq": seq, "reason": "测试：村站电脑被盗"}))
        self.revoked_after = seq
        note(f"county revokes {REVOCABLE} after seq {seq}")
        event("a revocation")
        self.made_by(COUNTY)

    @rule(data=st.data())
    def take_step(self, data):
        at = data.draw(st.sampled_from(self.writers()), label="stepping node")
        possible = self.possible_steps(at)
        if not possible:
            return
        case_id, name = data.draw(st.sampled_from(possible), label="case and step")
        view = api.guard_view(self.tree[at], case_id)
        self.tree.step(at, case_id, name, **self.values(name, view, at))
        note(f"{at} takes {name} on {case_id}")
        self.made_by(at)

    def shared_cases(self) -> list[tuple[str, str, str]]:
        """(case, node, node): cases two related nodes both hold and may act on."""
        cases = {area: {i for (i,) in self.tree[area].db.execute("select id from cases")}
                 for area in AREAS}
        return [(case_id, lower, upper) for lower in AREAS for upper in AREAS
                if lower != upper and lower.startswith(upper)
                for case_id in sorted(cases[lower] & cases[upper])]

    @rule(data=st.data())
    def step_concurrently(self, data):
        """Two nodes act on one case before either hears of the other's step."""
        shared = self.shared_cases()
        if not shared:
            return
        case_id, lower, upper = data.draw(st.sampled_from(shared), label="shared case")
        for at in (lower, upper):
            if at not in self.writers():
                continue
            possible = [name for c, name in self.possible_steps(at) if c == case_id]
            if possible:
                name = data.draw(st.sampled_from(possible), label=f"step at {at}")
                view = api.guard_view(self.tree[at], case_id)
                self.tree.step(at, case_id, name, **self.values(name, view, at))
                note(f"{at} takes {name} on {case_id}")
                self.made_by(at)
        event("concurrent steps")

    # -- moving events --------------------------------------------------------

    @rule(edge=st.sampled_from(EDGES), up=st.booleans(), late=st.booleans())
    def carry_bundle(self, edge, up, late):
        """Carry a bundle now, or keep it to carry late, out of order, or never."""
        child, parent = edge
        source, target = (child, parent) if up else (parent, child)
        if self.tree.cut_off(source, target):
            with pytest.raises(trust.TrustError, match="不再向其导出数据包"):
                self.tree.export(source, target)
            return
        if late:
            path, _ = self.tree.export(source, target)
            self.pocket.append((path, target))
            return
        result = self.tree.carry(source, target)
        note(f"bundle {source} -> {target}: {result.applied} applied, "
             f"{len(result.refused)} refused")

    @precondition(lambda self: self.pocket)
    @rule(data=st.data())
    def carry_pocketed_bundle(self, data):
        index = data.draw(st.integers(0, len(self.pocket) - 1), label="pocketed bundle")
        path, target = self.pocket.pop(index)
        result = bundle.import_bundle(self.tree[target], path)
        note(f"late bundle {path.name}: {result.applied} applied")
        with pytest.raises(envelope.EnvelopeError, match="已于 .* 导入，无需再次导入"):
            bundle.import_bundle(self.tree[target], path)

    @rule(child=st.sampled_from([child for child, _ in EDGES]))
    def sync_http(self, child):
        if self.tree.cut_off(PARENT[child], child):  # a revoked key is served nothing
            with pytest.raises(SyncError, match="密钥已被吊销"):
                self.tree.http(child)
            return
        summary = self.tree.http(child)
        note(f"http {child}: pushed {summary.pushed}, pulled {summary.pulled}")

    def links_with_news(self) -> list[tuple[str, str]]:
        """(sender, receiver) for each link along which some event is missing."""
        found = []
        for child, parent in EDGES:
            for sender, receiver in ((child, parent), (parent, child)):
                if send.count_missing(self.tree[sender], receiver,
                                      wire.frontier(self.tree[receiver].db)):
                    found.append((sender, receiver))
        return found

    @rule(data=st.data())
    def apply_some_pages(self, data):
        """Pages lost, reordered or delivered twice on the way."""
        links = self.links_with_news()
        if not links:
            return
        source, target = data.draw(st.sampled_from(links), label="link")
        sender, receiver = self.tree[source], self.tree[target]
        built = list(send.pages_for(sender, target, wire.frontier(receiver.db)))
        order = data.draw(st.lists(st.integers(0, len(built) - 1), max_size=len(built) + 2),
                          label=f"pages delivered, of {len(built)}")
        event(f"pages built: {min(len(built), 4)}{'+' if len(built) > 4 else ''}, "
              f"delivered {'all in order' if order == list(range(len(built))) else 'otherwise'}")
        applied = sum(receive.apply_page(receiver, built[index], peer=sender.info.author).applied
                      for index in order)
        note(f"pages {source} -> {target}: delivered {order} of {len(built)}, "
             f"{applied} events applied")

    @rule(area=st.sampled_from(AREAS))
    def restart(self, area):
        self.tree.restart(area)

    @rule(transport=st.sampled_from(["bundle", "http"]))
    def full_sweep(self, transport):
        counts = self.tree.sync_until_quiet(transport)
        note(f"full sweep by {transport}: moved {counts}")
        assert len(counts) <= 2, f"one sweep up and down should carry everything: {counts}"
        event(f"full sweep moved {'nothing' if counts == [0] else 'events'}")
        if self.tree[COUNTY].db.execute("select count(*) from conflicts").fetchone()[0]:
            event("full sweep with a conflict to agree on")
        problems = []
        refused = self.revoked_later()
        for area in AREAS:
            if area == REVOCABLE and self.tree.cut_off(PARENT[area], area):
                continue  # sent nothing more once its parent knows it revoked: (a)-(c) hold
            holds = set(held(self.tree[area]))
            allowed = {i for i, (entity, a) in self.created.items()
                       if scope.in_scope(entity, a, area)}
            # what the revoked key signed after its point arrives nowhere new; a node
            # that held some before hearing of the revocation keeps them, excluded
            missing_ok = refused if area != REVOCABLE else set()
            if not holds <= allowed or not allowed - holds <= missing_ok or \
                    not holds & refused <= excluded(self.tree[area]):
                problems.append(f"{area} holds {len(holds)} events; its scope allows "
                                f"{len(allowed)} (missing {len(allowed - holds)}, extra "
                                f"{len(holds - allowed)})")
            problems.extend(agreement(self.tree, area))
        assert not problems, "\n".join(problems)

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def views_are_a_fold_of_exactly_the_own_log(self):
        for area in AREAS:
            node = self.tree[area]
            key = (area, frozenset(held(node)))
            if key not in self.fresh_digests:
                self.fresh_digests[key] = fresh_digest(node, Path(self.tmp.name))
            assert fold.views_digest(node.db, node.registry) == self.fresh_digests[key], \
                f"{area}'s views differ from a fresh fold of its own log"

    @invariant()
    def holds_only_what_its_scope_allows(self):
        for area in AREAS:
            outside = [(i, e, a) for i, (e, a) in held(self.tree[area]).items()
                       if not scope.in_scope(e, a, area)]
            assert not outside, f"{area} holds events outside its scope: {outside}"

    @invariant()
    def nothing_is_ever_lost(self):
        for area in AREAS:
            node = self.tree[area]
            holds = held(node)
            lost = self.ever_held[area] - set(holds)
            assert not lost, f"{area} lost {len(lost)} event(s) it once held"
            assert set(holds) <= set(self.created), f"{area} holds an event nobody made"
            self.ever_held[area] |= set(holds)
            both = node.db.execute("select event_id, reason from quarantine "
                                   "where event_id in (select id from events)").fetchall()
            assert not both, f"{area} holds events that are also in its quarantine: {both}"


TestSyncTree = SyncTree.TestCase
TestSyncTree.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow,
                                                        HealthCheck.data_too_large])


# -- single stories -------------------------------------------------------------------


def test_bundle_then_http_continue_from_the_same_frontier(tree):
    for serial in range(3):
        tree.register(V1, serial=serial + 1)
    assert tree.carry(V1, T1).applied == 3
    for serial in range(2):
        tree.register(V1, serial=serial + 10)
    tree.register(T1, V1, serial=20)
    summary = tree.http(V1)
    # pulled: the township's case, and its trust.certify of the village (logged at enrolment)
    assert (summary.pushed, summary.pulled) == (2, 2), "HTTP resent what the bundle carried"
    # and the township's next bundle down has nothing left to carry
    _, export = tree.export(T1, V1)
    assert export.events == 0
    assert set(held(tree[V1])) == set(held(tree[T1])) - {
        i for i, (e, a) in held(tree[T1]).items() if not a.startswith(V1)}


def test_http_then_bundle_continue_from_the_same_frontier(tree):
    for serial in range(3):
        tree.register(V1, serial=serial + 1)
    tree.register(T1, V1, serial=30)
    summary = tree.http(V1)
    assert (summary.pushed, summary.pulled) == (3, 2)  # and the township's trust.certify
    tree.register(V1, serial=40)
    tree.register(V1, serial=41)
    tree.register(T1, V1, serial=42)
    path, export = tree.export(V1, T1)
    assert export.events == 2, "the bundle resent what HTTP had pushed"
    assert bundle.import_bundle(tree[T1], path).applied == 2
    _, down = tree.export(T1, V1)
    assert down.events == 1, "the bundle down resent what HTTP had pulled"
    summary = tree.http(V1)
    assert (summary.pushed, summary.pulled) == (0, 1)


def register_many(tree: Tree, at: str, area: str, count: int) -> None:
    with tree[at].db.atomic():
        for serial in range(count):
            tree.register(at, area, serial=serial % 999 + 1)


def test_an_interrupted_pull_resumes_with_exactly_the_remainder(tree):
    register_many(tree, T1, V1, 1100)
    village = tree[V1]
    built = list(send.pages_for(tree[T1], V1, wire.frontier(village.db)))
    # 1100 cases and the township's trust.certify of the village, logged at enrolment
    assert [len(p.events) for p in built] == [500, 500, 101]
    # the link drops after the first page
    assert receive.apply_page(village, built[0], peer=tree[T1].info.author).applied == 500
    assert send.count_missing(tree[T1], V1, wire.frontier(village.db)) == 601
    again = receive.apply_page(village, built[0], peer=tree[T1].info.author)
    assert (again.applied, again.duplicates) == (0, 500)
    summary = tree.http(V1)
    assert (summary.pushed, summary.pulled) == (0, 601)
    assert len(held(village)) == 1101


def test_an_http_pull_cut_off_after_one_page_resumes(tree):
    register_many(tree, T1, V1, 1100)
    village = tree[V1]
    client = Client(village, tree.url(T1))
    reply = client.call({"op": "pull", "frontier": wire.frontier_to_wire(
        wire.frontier(village.db))})
    first = wire.Page.from_wire(reply["page"])
    assert receive.apply_page(village, first, peer=tree[T1].info.author).applied == 500
    summary = client.sync()
    assert (summary.pushed, summary.pulled) == (0, 601)  # with the township's trust.certify
    # a bundle afterwards carries nothing: the server noted the village's frontier
    _, export = tree.export(T1, V1)
    assert export.events == 0


def full_tree_with_work(tree: Tree) -> None:
    tree.register(V1, serial=1)
    tree.register(V2, serial=2)
    tree.register(V3, serial=3)
    tree.register(T1, V2, serial=4)
    tree.register(T2, T2, serial=5)
    tree.register(COUNTY, V1, serial=6)
    tree.register(COUNTY, V3, serial=7)
    tree.sync_until_quiet("bundle")
    tree.sync_until_quiet("http")


def test_a_second_sync_moves_nothing(tree):
    full_tree_with_work(tree)
    for child, parent in EDGES:
        summary = tree.http(child)
        assert (summary.pushed, summary.pulled, summary.rounds) == (0, 0, 1)
        for source, target in ((child, parent), (parent, child)):
            _, export = tree.export(source, target)
            assert export.events == 0, f"{source} -> {target} resent events"
            sent = send.pages_for(tree[source], target, wire.frontier(tree[target].db))
            assert sum(len(p.events) for p in sent) == 0


def vm_steps(node: Node, work) -> int:
    """SQLite virtual-machine steps (in thousands) that ``work`` makes on ``node``."""
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    node.db.conn.set_progress_handler(count, 1000)
    try:
        work()
    finally:
        node.db.conn.set_progress_handler(None, 0)
    return steps[0]


def test_a_quiet_sync_reads_nothing_of_a_neighbouring_village(tree):
    """Invariant 5: the cost of a sync follows the change, not the database.

    Once the township and village 1 agree, a sync between them has nothing to
    do, however large the neighbouring village's log at the township grows.
    """
    tree.register(V1, serial=1)
    register_many(tree, V2, V2, 20)
    tree.sync_until_quiet("bundle")
    township = tree[T1]

    def quiet_pages():
        return list(send.pages_for(township, V1, wire.frontier(tree[V1].db)))

    small = vm_steps(township, quiet_pages)
    register_many(tree, V2, V2, 1500)
    tree.sync_until_quiet("bundle")
    large = vm_steps(township, quiet_pages)
    assert large <= small + 5, (
        f"a quiet sync with village 1 cost {small}k SQLite steps when village 2 had 20 "
        f"events at the township, and {large}k when it had 1520; pages built: "
        f"{[(len(p.events), p.ranges) for p in quiet_pages()]}")
    assert quiet_pages() == []


def test_a_county_assignment_reaches_the_village_and_its_answer_comes_back(tree):
    case_id = tree.register(COUNTY, V1, serial=8)
    tree.step(COUNTY, case_id, "forward", mode="assign", to_area=V1, unit="属地村委会")
    # county -> township over HTTP, township -> village by bundle
    assert tree.http(T1).pulled == 2
    assert tree.carry(T1, V1).applied == 3  # and the township's trust.certify of the village
    case = api.get_case(tree[V1], case_id, reveal=False)
    assert (case.status, case.forwarded_to) == ("forwarded", V1)
    for other in (V2, V3, T2):
        assert tree[other].db.execute("select count(*) from cases where id = ?",
                                      [case_id]).fetchone()[0] == 0
    tree.step(V1, case_id, "accept")
    tree.step(V1, case_id, "answer", outcome="explain")
    assert tree.carry(V1, T1).applied == 2
    assert tree.carry(T1, COUNTY).applied == 2
    at_county = api.get_case(tree[COUNTY], case_id, reveal=False)
    assert at_county.status == "answered"
    assert [h["step"] for h in at_county.history][-2:] == ["accept", "answer"]
    assert at_county.history[-1]["node"] == tree[V1].info.name
    assert agreement(tree, V1) == []


def test_a_village_never_holds_another_village_case(tree):
    full_tree_with_work(tree)
    for area in (V1, V2, V3):
        areas_held = {a for _, a in held(tree[area]).values()}
        assert areas_held == {area}, f"{area} holds events of {areas_held - {area}}"
        cases = {a for (a,) in tree[area].db.execute("select area from cases")}
        assert cases == {area}
    # a page carrying a neighbour's event is refused for it, and nothing is applied
    neighbour = [e for e in store.all_events(tree[V2].db) if e.area == V2][0]
    page = wire.Page([neighbour], certs=trust.chain_of(tree[V2].db, tree[V2].info.author))
    result = receive.apply_page(tree[V1], page, peer=tree[T1].info.author)
    assert result.applied == 0
    assert "not for this node" in result.refused[0].reason
    assert neighbour.id not in held(tree[V1])
    # and the township's server will not answer for another village's scope
    client = Client(tree[V1], tree.url(T1))
    with pytest.raises(SyncError, match=f"只能读取本身区划 {V1} 内"):
        client.call({"op": "pull", "area": V2, "frontier": []})


def test_a_revocation_reaches_the_descendants_of_the_revoked_key(tree):
    tree.register(T1, V1, serial=1)
    tree.sync_until_quiet("bundle")
    township = tree[T1]
    last_good = store.feed_head(township.db, township.info.author, 0)[0]
    revoke = tree[COUNTY].append(Draft(
        "trust.revoke", "trust", township.info.author, T1,
        {"epoch": 0, "seq": last_good, "reason": "笔记本电脑遗失（测试）"}))
    # the stolen key goes on writing; village 1 hears of it first
    late = tree.register(T1, V1, serial=2)
    assert tree.carry(T1, V1).applied == 1
    with pytest.raises(SyncError, match="密钥已被吊销"):
        tree.http(T1)                         # the county serves the revoked key nothing more
    county = tree[COUNTY]                     # so the revocation reaches the township by hand
    for page in send.pages_for(county, T1, wire.frontier(township.db)):
        receive.apply_page(township, page, peer=county.info.author)
    assert tree.carry(T1, V1).applied == 1    # and is relayed to its villages
    assert tree.carry(T1, V2).applied == 1
    tree.sync_until_quiet("bundle")
    for area in (T1, V1, V2):
        node = tree[area]
        assert revoke.id in held(node), f"the revocation did not reach {area}"
        assert node.db.execute("select epoch, seq from revocations where subject = ?",
                               [township.info.author]).fetchone() == (0, last_good)
        assert node.db.execute("select count(*) from cases where id = ?",
                               [late]).fetchone()[0] == 0
    assert revoke.id not in held(tree[V3]), "a revocation in township 1 reached township 2"
    assert tree[COUNTY].db.execute("select count(*) from cases where id = ?",
                                   [late]).fetchone()[0] == 0
