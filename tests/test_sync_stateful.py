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

A seventh village's key is stolen: the thief signs events of every type, for
any record and any area, at any place of the key's feed (forks included), and
hands them to its township by bundle or HTTP push; after every step

(e) on every node, every record outside that village's area (its row, history,
    conflicts, deadlines, policy and trust state) is what a fold of the node's
    log without the stolen events gives.

A stolen event that names a record outside the key's area, claiming the key's
own area (the only one its certificate lets it claim), is *kept as a
conflict* there: listed, never applied (``kernel.reach``). That is the design,
not a leak: the event does not carry the record's area, and a node may hold
the event before the record, so refusing it on arrival would make what a
node holds depend on arrival order (invariant 4), and dropping it would hide
the attempt from the people who settle conflicts. So (e) leaves out the
stolen events' own conflict rows, and the order key of a record's latest
event (bookkeeping of which event a new one must sort after), and nothing
else. The stories the machine found are pinned by hand in
``test_compromised_village.py``.

Plain tests below pin the single stories: a bundle followed by HTTP (and
the reverse) continues from the same frontier, a cut-off pull resumes with
exactly the remainder, a quiet sync moves and reads nothing, an assignment
travels county → township → village and the answer travels back, villages
never see each other's cases, and a revocation reaches the revoked key's
descendants.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, note, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import SharedClock, seeded_keys, synthetic_id
from plugins import inspection
from sync_helpers import send_pages, wire as page_wire
from xinfang.core import fold, i18n, policy, records, store, verify
from xinfang.core.errors import StepRefused
from xinfang.core.event import Event
from xinfang.core.hlc import Timestamp
from xinfang.core.node import Draft, Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.core.sealing import Secret
from xinfang.demo.county import AGREE
from xinfang.plugins.cases import api, lifecycle as case_lifecycle, views
from xinfang.plugins.supervision import leaders, orders
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


def frozen(node: Node) -> frozenset[tuple]:
    """The feeds fork evidence froze here: trust data the views follow besides the log."""
    return frozenset(node.db.execute("select author, epoch, seq from frozen_feeds").fetchall())


def secrets_of(node: Node) -> list[Secret]:
    return [node.vault.get(d) for (d,) in node.db.execute("select digest from vault")]


@contextlib.contextmanager
def fresh_fold(node: Node, workdir: Path, leave_out: frozenset[str] = frozenset()):
    """A never-synced node of the same area that folded this node's log, less the events
    ``leave_out`` names, judged by the same trust data (certificates, the pinned root and
    the feeds fork evidence froze)."""
    home = workdir / f"fresh-{time.monotonic_ns()}"
    fresh = Blanks.copy(node.info.area, home)
    try:
        with fresh.db.atomic():  # the trust data the events are judged by
            for cert in store.all_certificates(node.db):
                store.remember_certificate(fresh.db, cert)
            store.set_meta(fresh.db, "root_author", store.get_meta(node.db, "root_author"))
            for row in node.db.execute("select author, epoch, seq, reason from frozen_feeds"):
                fresh.db.execute("insert into frozen_feeds (author, epoch, seq, reason) "
                                 "values (?,?,?,?)", list(row))
        fresh.ingest([e for e in store.all_events(node.db) if e.id not in leave_out],
                     secrets_of(node))
        yield fresh
    finally:
        fresh.close()
        shutil.rmtree(home)


def fresh_digest(node: Node, workdir: Path) -> str:
    """The views a never-synced node of the same area folds from this node's log."""
    with fresh_fold(node, workdir) as fresh:
        return fold.views_digest(fresh.db, fresh.registry)


def conflicts_in(node: Node, entities: set[tuple[str, str]],
                 events: set[str] | None = None) -> list[tuple]:
    rows = node.db.execute("select event_id, entity, entity_id, order_key, type, reason "
                           "from conflicts order by event_id").fetchall()
    return [r for r in rows if (r[1], r[2]) in entities and (events is None or r[0] in events)]


def agreement(tree: Tree, area: str, thief: str | None = None,
              apart: set[str] = frozenset()) -> list[str]:
    """What node ``area`` and the county disagree on, for the entities in its scope.

    Conflicts are compared for the events both hold: an event of a stolen key
    (``thief``) may name a record outside the area it claims, and is then a conflict
    where it is held, the county, and not where it is not, the record's own node.
    Records ``apart`` names are left out (the county cannot hold all of them)."""
    node, county = tree[area], tree[COUNTY]
    mine = {(entity, entity_id) for entity, entity_id, a in
            node.db.execute("select entity, entity_id, area from events")
            if scope.in_scope(entity, a, area) and node.registry.entity_type(entity)}
    problems = []
    both = set(held(node)) & set(held(county))
    if conflicts_in(node, mine, both) != conflicts_in(county, mine, both):
        problems.append(f"{area}: conflicts differ from the county's")
    ids = set(apart)
    for table, query in AGREE.items():
        here, there = ([r for r in n.db.execute(query, [area + "%"]).fetchall()
                        if not ids & set(r[:2])] for n in (node, county))
        if here != there:
            problems.append(f"{area}: {table} differs from the county's")
    records = ("select id, area, status, topic, facts, updated from inspections "
               "where area like ? order by id")
    if area in WITH_INSPECTIONS:
        if node.db.execute(records, [area + "%"]).fetchall() != \
                county.db.execute(records, [area + "%"]).fetchall():
            problems.append(f"{area}: inspections differ from the county's")
    else:
        # a relay holds what it cannot fold; the county folds it, in this area (a stolen
        # key's step on an unknown inspection, or on one elsewhere, is no record here)
        honest = {i for (i,) in county.db.execute(
            "select entity_id from events where entity = 'inspection' and author != ?",
            [thief or ""])}
        held_here = {i for (i,) in node.db.execute(
            "select entity_id from held_entities where entity = 'inspection'")} & honest
        folded_above = {i for (i,) in county.db.execute(
            "select id from inspections where area like ?", [area + "%"])} & honest
        if held_here != folded_above:
            problems.append(f"{area}: holds {len(held_here)} inspections, the county folds "
                            f"{len(folded_above)} of its area")
    return problems


def excluded(node: Node) -> set[str]:
    return {e.event_id for e in verify.excluded_events(node.db)}


# -- a stolen key ----------------------------------------------------------------------

#: a village of township 1 whose key is stolen: enrolled, then never used by its office
#: (it syncs with no one, its log stays empty); only the thief signs with its key, and
#: hands what it signs to the township, by bundle or by HTTP push
STOLEN = "431202101203"
CASE_STEPS = [step.name for step in (*case_lifecycle.STEPS, case_lifecycle.FOLLOW_UP,
                                     leaders.STEP)]
ORDER_STEPS = [step.name for step in orders.STEPS]
#: what the thief signs: every type a plugin here folds, and two no plugin handles (an
#: unknown step of a known record type, and an unknown record type)
STOLEN_TYPES = ["case.register", *(f"case.{name}" for name in CASE_STEPS), "inspection.plan",
                "inspection.inspect", "policy.set", "trust.revoke", "trust.retire",
                "trust.certify", "case.frobnicate", "survey.create", "order.issue",
                *(f"order.{name}" for name in ORDER_STEPS)]
#: values that pass each case step's fields (on a case in a state that allows the step)
THIEF_VALUES = {
    "forward": {"mode": "transfer", "unit": "盗用者指定单位"}, "accept": {},
    "reject": {"reason": "属诉讼途径", "legal_channel": "litigation"},
    "refuse": {"reason": "重复信访"}, "extend": {"days": 10, "reason": "情况复杂"},
    "answer": {"outcome": "explain"}, "close": {}, "rate": {"rating": "satisfied"},
    "request_review": {}, "answer_review": {"outcome": "upheld"}, "request_rereview": {},
    "answer_rereview": {"outcome": "upheld"}, "finalize": {}, "withdraw": {},
    "object": {"reason": "不属本单位职责"}, "follow_up": {"result": "未再信访", "ceased": True},
    "baoan": {"leader": "盗用者指定领导"},
}
ORDER_VALUES = {"respond": {"result": "盗用者回复"}, "close": {},
                "redo": {"reason": "盗用者重办", "due": "2026-12-31"}}
assert set(THIEF_VALUES) == set(CASE_STEPS), "a case step the thief cannot sign"
THIEF_DATES = ["2025-12-31", "2026-02-01", TODAY.isoformat(), "2099-12-31"]
#: the area an event claims: its own most often (what it can sign for), else a sibling's,
#: the township's or the county's
THIEF_AREAS = [STOLEN] * 7 + [V1, V2, T1, COUNTY]
#: a stamp before every event of a run (the shared clock starts on 2026-03-01)
PAST_MS = int(dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
#: what the stolen key's events came to, over one run of the machine (``TestSyncTree``)
STOLEN_TALLY: collections.Counter = collections.Counter()


def stolen_village(tree: Tree) -> Node:
    """The village whose key is stolen, enrolled under township 1 (which logs the
    trust.certify); the thief signs with ``.keys``."""
    thief = Node.init(tree.base / STOLEN, level="village", area=STOLEN,
                      name="测试一镇三村信访站", pm=get_plugin_manager())
    tree.nodes[STOLEN] = tree.clock.attach(thief)
    enrol(thief, tree[T1])
    return thief


def entity_areas(node: Node) -> dict[tuple[str, str], str]:
    """(entity, id) -> the area the node files each record it holds under."""
    found = dict(((e, i), a) for e, i, a in node.db.execute(
        "select entity, entity_id, area from held_entities"))
    found.update(((e, i), a) for e, i, a in node.db.execute(
        "select entity, entity_id, area from entity_heads"))
    return found


def _owner(table: str, row: dict, tables: dict[str, str]) -> tuple[str, str] | None:
    """The record a view row belongs to; None for a table of no one record."""
    if "entity" in row and "entity_id" in row:
        return row["entity"], row["entity_id"]
    if table in tables:
        return tables[table], row["id"]
    if "case_id" in row:
        return "case", row["case_id"]
    if table in ("policy_values", "policy_history"):
        return "policy", policy.entity_id(row["key"], row["area"])
    if table == "revocations":
        return "trust", row["subject"]
    if table == "exclusions":
        return "exclusion", row["author"]
    return None


def outside_views(node: Node, outside: set[tuple[str, str]], thief: str,
                  stolen: set[str]) -> dict[str, list[tuple]]:
    """Every view row of the records in ``outside``, as (record, row), less what the
    stolen key's events are in them themselves: their own conflict rows (a stolen event
    that claims the thief's area for a record elsewhere is kept as a conflict where it
    is held) and the order key of a record's latest event. The area a record is filed
    under (``entity_areas``) and repeat links (``repeat_links``) are compared apart, and
    the exclusions of the stolen key itself not at all; rows of no one record are kept
    whole."""
    tables = {t.table: t.name for t in node.registry.entity_types.values() if t.table}
    dump = {}
    for table in fold.view_tables(node.registry):
        columns = [c.name for c in node.db[table].columns]
        kept = []
        for values in node.db.execute(f"select * from [{table}]"):
            row = dict(zip(columns, values))
            if table == "conflicts" and row["event_id"] in stolen:
                continue
            owner = _owner(table, row, tables)
            if owner is not None and owner[0] == "exclusion":
                if owner[1] == thief:
                    continue
            elif owner is not None and owner not in outside:
                continue
            for column in {"entity_heads": ["order_key", "area"], "held_entities": ["area"],
                           "cases": ["repeat_of", "first_petition"]}.get(table, []):
                row.pop(column)
            kept.append((owner, tuple(sorted(row.items()))))
        dump[table] = sorted(kept, key=repr)
    return dump


def repeat_links(node: Node) -> dict[str, tuple]:
    return {i: (r, f) for i, r, f in node.db.execute(
        "select id, repeat_of, first_petition from cases")}


def reference_of(node: Node, thief: str, stolen: set[str]) -> tuple:
    """What ``outside_differences`` compares with, from a fold without the stolen events."""
    areas = entity_areas(node)
    outside = {k for k, a in areas.items() if not a.startswith(STOLEN)}
    return areas, outside_views(node, outside, thief, stolen), repeat_links(node)


def outside_differences(node: Node, reference: tuple, thief: str,
                        stolen: set[str]) -> list[str]:
    """What differs between ``node``'s views and ``reference`` (from a fold of its log
    without the stolen events) for the records outside the stolen key's area."""
    areas, theirs, links = reference
    outside = {k for k, a in areas.items() if not a.startswith(STOLEN)}
    problems = []
    areas_here = entity_areas(node)
    new = sorted(k for k, a in areas_here.items()
                 if not a.startswith(STOLEN) and k not in areas)
    if new:
        problems.append(f"records outside {STOLEN} that only the stolen events make: {new}")
    for key in sorted(outside):
        # the area a record is filed under is compared for lifecycle records, where it is
        # the record's own area and a policy set there re-folds by it; a trust, policy or
        # settlement record gathers events of several areas (a key's record its issuer's
        # trust.certify and its ancestors' revocations), and no policy re-folds by its
        # filing, which is the area of the last event folded into it
        entity_type = node.registry.entity_type(key[0])
        if areas_here.get(key) == areas[key] or (
                key in areas_here and not (entity_type and entity_type.lifecycle_entity)):
            continue
        problems.append(f"{key} is filed under {areas_here.get(key)}, not {areas[key]}")
    mine = outside_views(node, outside, thief, stolen)
    for table in sorted(set(mine) | set(theirs)):
        here = {row for _, row in mine.get(table, [])}
        there = {row for _, row in theirs.get(table, [])}
        if here != there:
            problems.append(f"{table}: without the stolen events {sorted(there - here)[:3]}, "
                            f"with them {sorted(here - there)[:3]}")
    areas_now = dict(node.db.execute("select id, area from cases").fetchall())
    for case_id, link in repeat_links(node).items():
        if ("case", case_id) not in outside or links.get(case_id, link) == link:
            continue
        if link[0] is not None and areas_now.get(link[0], "").startswith(STOLEN):
            # 重复访 is found across areas by the petitioners' ID tags, which every
            # enrolled node can make: a case the thief registers in its own area is an
            # earlier petition of the same person like any other (domain.md)
            event("stolen key: a case it registered makes a case elsewhere a repeat")
            continue
        problems.append(f"case {case_id}: repeat link {links.get(case_id)} became {link}")
    return problems


# -- the state machine --------------------------------------------------------------


class SyncTree(RuleBasedStateMachine):
    """Six real nodes and a model: every event ever made, every event each node held."""

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="xinfang-sync-")
        with seeded_keys("sync-tree"):  # so that hypothesis can replay a run exactly
            self.tree = Tree(Path(self.tmp.name) / "tree")
            self.thief = stolen_village(self.tree)
        #: every event ever made anywhere: id -> (entity, area).
        self.created: dict[str, tuple[str, str]] = {}
        #: every event each node has held at some point.
        self.ever_held: dict[str, set[str]] = {area: set() for area in AREAS}
        #: bundles written and not yet carried (a USB stick in a pocket).
        self.pocket: list[tuple[Path, str]] = []
        #: (area, events held, feeds frozen) -> the digest of a fresh fold of that log
        self.fresh_digests: dict[tuple[str, frozenset[str], frozenset], str] = {}
        self.page_size = wire.MAX_PAGE_EVENTS
        #: REVOCABLE's last good seq once the county revoked it
        self.revoked_after: int | None = None
        self.thief_serial = 0
        #: (area, events held, feeds frozen) -> what a fold of that log without the stolen
        #: events gives
        self.references: dict[tuple[str, frozenset[str], frozenset], tuple] = {}
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
            area = data.draw(st.sampled_from([a for a in [*AREAS, STOLEN]
                                              if a.startswith(at)]), label="area")
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
        for area in AREAS:  # and what nodes sign of themselves on arrival (the root's tags)
            self.made_by(area)
        problems = []
        refused = self.revoked_later()
        # what the stolen key signed that the township took and then set apart (past a
        # fork, or its own trust.retire) goes no further than where it is held
        thief = self.thief.info.author
        set_apart = {e.event_id for e in verify.excluded_events(self.tree[T1].db)
                     if e.author == thief}
        # nor what the county cannot take of the stolen feed: the township holds what it
        # has no plugin to judge (an inspection event), the county refuses it if invalid,
        # and then every later event of the feed as a gap
        first = self.tree[COUNTY].db.execute(
            "select min(seq) from quarantine where author = ?", [thief]).fetchone()[0]
        blocked = set() if first is None else {i for (i,) in self.tree[T1].db.execute(
            "select id from events where author = ? and seq >= ?", [thief, first])}
        # the records of its area those touch the township and the county see
        # differently for good (a divergence inside the stolen key's area)
        apart = {entity_id for (entity_id,) in self.tree[T1].db.execute(
            f"select entity_id from events where id in ({','.join('?' * len(blocked))})",
            sorted(blocked))} - {entity_id for (entity_id,) in self.tree[T1].db.execute(
                "select entity_id from events where author != ? and area not like ?",
                [thief, STOLEN + "%"])}
        for area in AREAS:
            if area == REVOCABLE and self.tree.cut_off(PARENT[area], area):
                continue  # sent nothing more once its parent knows it revoked: (a)-(c) hold
            holds = set(held(self.tree[area]))
            allowed = {i for i, (entity, a) in self.created.items()
                       if scope.in_scope(entity, a, area)}
            # what the revoked key signed after its point arrives nowhere new; a node
            # that held some before hearing of the revocation keeps them, excluded
            missing_ok = (refused if area != REVOCABLE else set()) | set_apart | (
                blocked if area == COUNTY else set())
            if not holds <= allowed or not allowed - holds <= missing_ok or \
                    not holds & (refused | set_apart) <= excluded(self.tree[area]):
                problems.append(f"{area} holds {len(holds)} events; its scope allows "
                                f"{len(allowed)} (missing {len(allowed - holds)}, extra "
                                f"{len(holds - allowed)})")
            problems.extend(agreement(self.tree, area, thief, apart))
        assert not problems, "\n".join(problems)

    # -- a stolen key -------------------------------------------------------------

    def made_by_thief(self) -> None:
        for event_id, entity, area in self.tree[T1].db.execute(
                "select id, entity, area from events where author = ?",
                [self.thief.info.author]):
            self.created.setdefault(event_id, (entity, area))

    def known_ids(self, entity: str) -> tuple[list[str], list[str]]:
        """Ids of records of ``entity`` the township holds: in the stolen key's area
        (made there by anyone, the thief included), and elsewhere."""
        own, elsewhere = set(), set()
        for entity_id, area, author, kind in self.tree[T1].db.execute(
                "select entity_id, area, author, type from events where entity = ?", [entity]):
            if area.startswith(STOLEN):
                if author != self.thief.info.author or kind in ("case.register",
                                                                "inspection.plan"):
                    own.add(entity_id)
            elif author != self.thief.info.author:
                elsewhere.add(entity_id)
        return sorted(own), sorted(elsewhere)

    def draw_id(self, data, entity: str, creation: bool) -> str:
        """A record id: a new number of the thief's own, one of its records, one of a
        sibling's, the township's or the county's (the records a step elsewhere would
        change), or one made up."""
        own, elsewhere = self.known_ids(entity)
        choices = ["a new number of its own"] * (3 if creation else 1) + ["its own"] * (
            0 if not own else 1 if creation else 2) + ["elsewhere"] * (
            0 if not elsewhere else 1 if creation else 4) + ["made up"] + [
            "another office's next number"] * (2 if creation and entity == "case" else 0)
        which = data.draw(st.sampled_from(choices), label=f"{entity} id")
        if which == "another office's next number":
            # squatting the number the victim gives out next: had it been taken, the
            # victim's next registration would collide with it everywhere
            victim = data.draw(st.sampled_from([V2, T1, COUNTY]), label="squatted office")
            return records.next_id(self.tree[victim], entity, 2026)
        if which == "a new number of its own":
            self.thief_serial += 1
            return f"{STOLEN}-2026-{self.thief_serial:05d}"
        if which == "its own":
            return data.draw(st.sampled_from(own), label="its own record")
        if which == "elsewhere":
            return data.draw(st.sampled_from(elsewhere), label="a record elsewhere")
        return data.draw(st.sampled_from([f"{V1}-2026-09999", f"{STOLEN}-2026-100001",
                                          f"{STOLEN}-2025-00001", "无编号"]), label="made up")

    def real_events(self, kind: str) -> list[Event]:
        """Honest events of type ``kind`` the township holds: bodies that pass."""
        return [Event.parse(raw, sig) for raw, sig in self.tree[T1].db.execute(
            "select raw, sig from events where type = ? and author != ? order by order_key "
            "limit 12",
            [kind, self.thief.info.author])]

    def stolen_content(self, data, target: tuple[str, str, str] | None = None
                       ) -> tuple[str, str, str, str, dict]:
        """(type, entity, id, area, body) of one event the thief signs: a body copied from
        a real event of the type or made to pass, as it is or with a field changed; for
        ``target`` (entity, id, area), an event of any type of that record."""
        kind = data.draw(st.sampled_from([t for t in STOLEN_TYPES if target is None
                                          or t.partition(".")[0] == target[0]]), label="type")
        entity, _, step = kind.partition(".")
        area = data.draw(st.sampled_from(THIEF_AREAS if target is None else
                                         [STOLEN] * 3 + [target[2]]), label="area")

        def pick(entity: str, creation: bool) -> str:
            return self.draw_id(data, entity, creation) if target is None else target[1]

        real = self.real_events(kind)
        model = (data.draw(st.sampled_from(real), label="after a real event")
                 if real and data.draw(st.booleans(), label="copy a real body") else None)
        body = copy.deepcopy(model.body) if model else None
        change = "none"
        if kind == "case.register":
            entity_id = pick("case", creation=True)
            body = body or {"channel": "visit", "category": "labour", "kind": "appeal",
                            "request": "盗用密钥登记", "received": "2026-03-01", "headcount": 1,
                            "petitioners": [{"name": "ab" * 32}], "by": "盗用者"}
            change = data.draw(st.sampled_from(["none", "none", "received", "headcount",
                                                "category", "no request", "extra"]),
                               label="change")
            if change == "received":
                body["received"] = data.draw(st.sampled_from(
                    ["2025-06-01", "2026-01-01", "2026-12-31", "2026-02-30"]), label="received")
            elif change == "headcount":
                body["headcount"] = data.draw(st.sampled_from([9, 0]), label="headcount")
            elif change == "category":
                body["category"] = "land"
            elif change == "no request":
                body.pop("request")
            elif change == "extra":
                body["盗用"] = "1"
        elif kind == "order.issue":
            # a village may supervise no one: every order it signs is refused on arrival
            entity_id = pick("order", creation=True)
            own, elsewhere = self.known_ids("case")
            named = data.draw(st.lists(st.sampled_from(own + elsewhere or ["无编号"]),
                                       min_size=1, max_size=3), label="cases")
            body = {"date": TODAY.isoformat(), "due": TODAY.isoformat(), "required": "盗用者督办",
                    "cases": sorted(set(named)), "fields": {}, "by": "盗用者"}
        elif entity in ("case", "inspection", "order") and kind not in ("inspection.plan",
                                                                         "case.frobnicate"):
            entity_id = pick(entity, creation=False)
            values = {"case": THIEF_VALUES, "order": ORDER_VALUES}.get(entity, {})
            body = body or {"values": {"date": TODAY.isoformat(), **values.get(step, {})},
                            "by": "盗用者"}
            values = body["values"]
            change = data.draw(st.sampled_from(["none", "none", "to_area", "date", "outcome",
                                                "extra"]), label="change")
            if change == "to_area":
                values["to_area"] = data.draw(st.sampled_from(THIEF_AREAS), label="to_area")
                values["mode"] = data.draw(st.sampled_from(["transfer", "assign"]),
                                           label="mode")
            elif change == "date":
                values["date"] = data.draw(st.sampled_from(THIEF_DATES), label="date")
            elif change == "outcome":
                values["outcome"] = data.draw(st.sampled_from(
                    ["support", "reject", "redo", "upheld", "无此意见"]), label="outcome")
            elif change == "extra":
                body["盗用"] = "1"
        elif kind == "inspection.plan":
            entity_id = pick("inspection", creation=True)
            body = {"topic": "盗用密钥计划的检查", "by": "盗用者"}
        elif kind == "policy.set":
            key = data.draw(st.sampled_from(["case.collective_threshold", policy.DELEGATED,
                                             "case.repeat_window_days"]), label="policy key")
            value = data.draw(st.sampled_from(
                {"case.collective_threshold": [2, 9, 1], "case.repeat_window_days": [1, 3650],
                 policy.DELEGATED: [["case.collective_threshold"], [policy.DELEGATED]]}[key]),
                label="value")
            where = data.draw(st.sampled_from([area, area, V1, COUNTY]), label="id's area")
            if target is not None:
                key, _, where = target[1].rpartition("@")
            entity_id, body = policy.entity_id(key, where), {"key": key, "value": value}
        elif kind == "trust.certify" and model:
            entity_id = model.entity_id if target is None else target[1]
        elif entity == "trust":
            keys = [self.tree[a].info.author for a in (STOLEN, V1, V2, T1, COUNTY)]
            entity_id = data.draw(st.sampled_from(keys), label="key") if target is None \
                else target[1]
            if kind == "trust.revoke":
                body = {"epoch": 0, "seq": data.draw(st.integers(0, 3), label="revoked after"),
                        "reason": "盗用者吊销"}
            elif kind == "trust.retire":
                body = {"successor": data.draw(st.sampled_from(keys), label="successor")}
            else:
                body = {"certificate": "ab" * 32}
        elif kind == "case.frobnicate":
            entity_id = pick("case", creation=False)
            body = {"values": {"date": TODAY.isoformat()}, "by": "盗用者"}
        else:  # a record type no plugin here knows
            entity_id = pick("case", creation=False)
            body = {"topic": "盗用者的新类型", "by": "盗用者"}
        note(f"the thief signs {kind} {entity_id} in {area}"
             f"{' after a real body' if model else ''}, changed: {change}")
        return kind, entity, entity_id, area, body

    def records_elsewhere(self) -> list[tuple[str, str, str]]:
        """(entity, id, area) of the records outside the stolen key's area the township
        holds events of by others: cases, inspections, policy, certified keys."""
        return self.tree[T1].db.execute(
            "select entity, entity_id, area from events where author != ? and area not like ? "
            "group by entity, entity_id, area order by min(order_key)",
            [self.thief.info.author, STOLEN + "%"]).fetchall()

    @rule(data=st.data())
    def a_stolen_key_signs(self, data):
        """The thief signs one to four events with the stolen village key, each at the
        next place of the feed as the township holds it (or at a gap, with a broken
        link, or at a place it signed before: a fork), and hands them to the township,
        one by one or together. Whatever the township takes travels on; outside the
        key's area nothing may change (``a_stolen_key_changes_nothing_outside_its_area``)."""
        self.sign_stolen(data, None)

    @rule(data=st.data())
    def a_stolen_key_names_a_record_elsewhere(self, data):
        """The same, aimed at one record outside the key's area the township holds: a
        sibling's, the township's or the county's case most often, else an inspection, a
        policy or a certified key (while there is none, any event, as above)."""
        found = self.records_elsewhere()
        kinds = sorted({entity for entity, _, _ in found})
        target = None
        if kinds:
            kind = data.draw(st.sampled_from(kinds + ["case"] * 3 if "case" in kinds else kinds),
                             label="record type")
            target = tuple(data.draw(st.sampled_from([r for r in found if r[0] == kind]),
                                     label="record"))
        self.sign_stolen(data, target)

    @rule(data=st.data())
    def a_stolen_key_squats_the_next_number(self, data):
        """The key registers, in its own area, the number a sibling village or the
        township gives out next; then that office registers and its case reaches the
        township. Taken, the squatter would turn the honest case into a conflict."""
        bodies = self.real_events("case.register")
        victims = [area for area in (V2, T1) if area in self.writers()]  # not revoked
        if not bodies or not victims:
            return
        victim = data.draw(st.sampled_from(victims), label="squatted office")
        number = records.next_id(self.tree[victim], "case", 2026)
        seq, head = store.feed_head(self.tree[T1].db, self.thief.info.author, 0)
        signed = Event.create(self.thief.keys, epoch=0, seq=seq + 1,
                              prev=None if seq == 0 else head, hlc=self.thief.clock.tick(),
                              type="case.register", entity="case", entity_id=number,
                              area=STOLEN, body=bodies[0].body)
        self.hand_over([signed], data.draw(st.booleans(), label="by HTTP push"))
        name, serial = data.draw(st.sampled_from(PEOPLE), label="petitioner")
        assert self.tree.register(victim, victim, serial, "2026-03-05", name) == number
        if victim != T1:
            self.tree.carry(victim, T1)
        note(f"the stolen key squats {number}; {victim} registers it")
        event("stolen key: squats another office's next number")
        self.made_by(victim)
        self.made_by(T1)

    def sign_stolen(self, data, target: tuple[str, str, str] | None) -> None:
        township, thief = self.tree[T1], self.thief
        author = thief.info.author
        together = data.draw(st.booleans(), label="in one delivery")
        by_http = data.draw(st.booleans(), label="by HTTP push")
        batch: list[Event] = []
        for _ in range(data.draw(st.integers(1, 4), label="events")):
            seq, head = (batch[-1].seq, batch[-1].id) if batch else \
                store.feed_head(township.db, author, 0)
            chain = data.draw(st.sampled_from(["next"] * 20 + ["gap", "broken link", "fork"]),
                              label="place in the feed")
            if chain == "fork" and seq:
                seq = data.draw(st.integers(0, seq - 1), label="forked after seq")
                head = township.db.execute("select id from events where author = ? and "
                                           "seq = ?", [author, seq]).fetchone()
                head = head[0] if head else None
            elif chain == "gap":
                seq += 1
            elif chain == "broken link" and seq:
                head = "f" * 64
            else:
                chain = "next"
            kind, entity, entity_id, area, body = self.stolen_content(data, target)
            when = data.draw(st.sampled_from(["now", "now", "now", "past", "future"]),
                             label="stamp")
            stamp = {"now": thief.clock.tick(), "past": Timestamp(PAST_MS, 0),
                     "future": Timestamp(self.tree.clock.now + 30 * 86_400_000, 0)}[when]
            signed = Event.create(thief.keys, epoch=0, seq=seq + 1,
                                  prev=None if seq == 0 else head or "0" * 64, hlc=stamp,
                                  type=kind, entity=entity, entity_id=entity_id, area=area,
                                  body=body)
            note(f"at seq {seq + 1} ({chain}), stamped {when}")
            if together:
                batch.append(signed)
            else:
                self.hand_over([signed], by_http)
        if batch:
            self.hand_over(batch, by_http)

    def hand_over(self, events: list[Event], by_http: bool) -> None:
        township, thief = self.tree[T1], self.thief
        size = wire.MAX_PAGE_EVENTS
        pages = [page_wire(events[i:i + size], certs_from=thief)
                 for i in range(0, len(events), size)]
        if by_http and township.db.execute("select 1 from revocations where subject = ?",
                                           [thief.info.author]).fetchone():
            # the key retired itself (or was revoked): the server takes nothing from it
            with pytest.raises(SyncError, match="密钥已"):
                Client(thief, self.tree.url(T1)).call({"op": "push", "page": pages[0]})
            note(f"the township's server refuses the retired key's {len(events)} event(s)")
            self.tally(events)
            return
        if by_http:
            client = Client(thief, self.tree.url(T1))
            replies = [client.call({"op": "push", "page": page}) for page in pages]
            applied = sum(reply["applied"] for reply in replies)
            refused = [i18n.show(r[1]) for reply in replies for r in reply["refused"]]
        else:
            (self.tree.base / "stolen").mkdir(exist_ok=True)
            summary = send_pages(thief, township, pages, self.tree.base / "stolen")
            applied, refused = summary.applied, [i18n.show(r.reason) for r in summary.refused]
        note(f"the thief hands {len(events)} event(s) to {T1} by "
             f"{'HTTP' if by_http else 'bundle'}: {applied} taken, refused: {refused}")
        self.made_by_thief()
        self.tally(events)

    def tally(self, events: list[Event]) -> None:
        """Count what each stolen event came to at the township (``TestSyncTree``)."""
        db = self.tree[T1].db
        for signed in events:
            if db.execute("select 1 from events where id = ?", [signed.id]).fetchone() is None:
                outcome = "refused"
                reason = db.execute("select reason from quarantine where event_id = ?",
                                    [signed.id]).fetchone()
                why = i18n.show(reason[0]).split("：")[0] if reason else "not kept"
                STOLEN_TALLY[f"refused: {why}"] += 1
            else:
                outcome = "taken"
                elsewhere = db.execute(
                    "select 1 from events where entity = ? and entity_id = ? and author != ? "
                    "and area not like ?", [signed.entity, signed.entity_id,
                                            self.thief.info.author, STOLEN + "%"]).fetchone()
                if elsewhere:
                    STOLEN_TALLY["taken, naming a record elsewhere"] += 1
                    if db.execute("select 1 from conflicts where event_id = ?",
                                  [signed.id]).fetchone():
                        STOLEN_TALLY["kept as a conflict on a record elsewhere"] += 1
                    event("stolen key: taken, naming a record elsewhere")
            STOLEN_TALLY[outcome] += 1
            event(f"stolen key: {signed.type.partition('.')[0]} event {outcome}")

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def views_are_a_fold_of_exactly_the_own_log(self):
        for area in AREAS:
            node = self.tree[area]
            key = (area, frozenset(held(node)), frozen(node))
            if key not in self.fresh_digests:
                self.fresh_digests[key] = fresh_digest(node, Path(self.tmp.name))
            assert fold.views_digest(node.db, node.registry) == self.fresh_digests[key], \
                f"{area}'s views differ from a fresh fold of its own log"

    @invariant()
    def a_stolen_key_changes_nothing_outside_its_area(self):
        """Every record outside the stolen key's area, its history, conflicts, deadlines,
        policy and trust state, is on each node what a fold of the node's log without
        any stolen event gives."""
        thief = self.thief.info.author
        for area in AREAS:
            node = self.tree[area]
            stolen = frozenset(i for (i,) in node.db.execute(
                "select id from events where author = ?", [thief]))
            if not stolen:
                continue  # its views are a fold of its own log, which nothing stolen is in
            key = (area, frozenset(held(node)), frozen(node))
            if key not in self.references:
                with fresh_fold(node, Path(self.tmp.name), stolen) as reference:
                    self.references[key] = reference_of(reference, thief, set(stolen))
            problems = outside_differences(node, self.references[key], thief, set(stolen))
            assert not problems, (f"{area}: the stolen key's {len(stolen)} event(s) changed "
                                  f"views outside {STOLEN}:\n" + "\n".join(problems))

    @invariant()
    def holds_only_what_its_scope_allows(self):
        for area in AREAS:
            outside = [(i, e, a) for i, (e, a) in held(self.tree[area]).items()
                       if not scope.in_scope(e, a, area)]
            assert not outside, f"{area} holds events outside its scope: {outside}"

    @invariant()
    def nothing_is_ever_lost(self):
        for area in AREAS:
            self.made_by(area)
        for area in AREAS:
            node = self.tree[area]
            holds = held(node)
            lost = self.ever_held[area] - set(holds)
            assert not lost, f"{area} lost {len(lost)} event(s) it once held"
            assert set(holds) <= set(self.created), f"{area} holds an event nobody made"
            self.ever_held[area] |= set(holds)
            # fork evidence from a peer is quarantined whole (Admission.take_fork_evidence),
            # the branch this node holds, excluded, too
            both = node.db.execute(
                "select q.event_id, q.reason from quarantine q join events e on e.id = "
                "q.event_id where not exists (select 1 from frozen_feeds f where f.author = "
                "e.author and f.epoch = e.epoch and f.seq = e.seq)").fetchall()
            assert not both, f"{area} holds events that are also in its quarantine: {both}"


class TestSyncTree(SyncTree.TestCase):
    """The machine; and, over the whole run, the stolen key's events must have been both
    taken and refused, and taken naming records outside its area (most kept as conflicts
    there), or the invariant about them compared nothing. ``XINFANG_SYNC_EXAMPLES`` runs
    more examples."""

    settings = settings(max_examples=int(os.environ.get("XINFANG_SYNC_EXAMPLES", 25)),
                        stateful_step_count=20, deadline=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

    def runTest(self):
        STOLEN_TALLY.clear()
        super().runTest()
        print(f"what the stolen key's events came to: {dict(STOLEN_TALLY)}")
        for outcome in ("taken", "refused", "taken, naming a record elsewhere",
                        "kept as a conflict on a record elsewhere"):
            assert STOLEN_TALLY[outcome], (f"no stolen event was {outcome} in the whole run: "
                                           f"{dict(STOLEN_TALLY)}")

    runTest.is_hypothesis_test = True
    runTest._hypothesis_state_machine_class = SyncTree


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


# -- a stolen key, single stories ------------------------------------------------------


def stolen_event(thief: Node, township: Node, kind: str, entity_id: str, body: dict,
                 hlc: Timestamp | None = None) -> Event:
    """The thief's next event, as far as the township holds its feed, claiming its area."""
    seq, head = store.feed_head(township.db, thief.info.author, 0)
    return Event.create(thief.keys, epoch=0, seq=seq + 1, prev=head,
                        hlc=hlc or thief.clock.tick(), type=kind,
                        entity=kind.partition(".")[0], entity_id=entity_id, area=STOLEN,
                        body=body)


def hand_over(tree: Tree, thief: Node, events: list[Event]) -> bundle.ImportSummary:
    (tree.base / "stolen").mkdir(exist_ok=True)
    return send_pages(thief, tree[T1], [page_wire(events, certs_from=thief)],
                      tree.base / "stolen")


def test_the_comparison_outside_the_stolen_area_leaves_out_only_the_stolen_events(tree):
    """What ``a_stolen_key_changes_nothing_outside_its_area`` compares: a stolen step on a
    sibling's case is a conflict at the township and changes nothing it compares; an
    honest step on that case changes what it compares."""
    thief = stolen_village(tree)
    case_id = tree.register(V1, serial=1)
    tree.carry(V1, T1)
    township = tree[T1]
    reference = reference_of(township, thief.info.author, set())
    forged = stolen_event(thief, township, "case.withdraw", case_id,
                          {"values": {"date": TODAY.isoformat(), "reason": "冒名撤回"}})
    assert hand_over(tree, thief, [forged]).applied == 1
    assert township.db.execute("select 1 from conflicts where event_id = ?",
                               [forged.id]).fetchone()
    assert outside_differences(township, reference, thief.info.author, {forged.id}) == []
    tree.step(T1, case_id, "accept")
    found = outside_differences(township, reference, thief.info.author, {forged.id})
    assert {line.split(":")[0] for line in found} >= {"cases", "entity_history"}, found
