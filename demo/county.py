"""``xinfang demo``: a county with 4 townships and 11 villages, and its 移民局 (a
department node), synced two ways; the resettlement township is ``resettlement``'s.

Everything is real: separate node directories and databases, certificates
signed down the tree, bundle files written and read, and a waitress HTTP
server on the loopback address. Names and ID numbers are synthetic.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from xinfang.core import clock, fold, i18n
from xinfang.core.i18n import _, ngettext
from xinfang.core.node import Node
from xinfang.app import plugin_manager as get_plugin_manager
from xinfang.plugins import settlements
from xinfang.plugins.cases import api
from xinfang.core import scope
from xinfang.sync import bundle, envelope, trust
from xinfang.sync.http import Client, SyncError
from xinfang.sync.server import BackgroundServer

from . import month, resettlement, supervise
from .synthetic import (CATEGORIES, COUNTY, GIVEN, OPERATOR, REFERRED, REPEATED, REQUEST,
                        TOWNSHIPS, UNIT, VILLAGES, WITHDRAWN, person, synthetic_id)

def say(text: str = "", **style) -> None:
    click.secho(text, **style)


def heading(text: str, first: bool = False) -> None:
    say(("" if first else "\n") + f"== {text} ==", bold=True)


def run_demo(keep: Path | None, pm=None, web: tuple[str, int] | None = None) -> bool:
    """Build the county, sync it, print the county's view; True if every check holds.
    With ``web`` (host, port), then serve the county's web view until Ctrl-C."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xinfang-demo-") as tmp:
        base = Path(keep) if keep else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        world = World(base)
        world.build()
        world.register_cases()
        world.sync_round(_("First sync round: village to township by USB bundle, township "
                           "to county by HTTP; the line of township three is down"),
                         down={"431202103"})
        world.county_work()
        world.sync_round(_("Second sync round: township three reports by USB bundle instead, "
                           "then goes on by HTTP once the line is back"),
                         bundle_up={"431202103"})
        world.village_work()
        resettlement.work(world)
        world.sync_until_quiet()
        ok = world.report()
        ok = world.statistics() and ok
        ok = resettlement.report(world) and ok
        world.close()
        seconds = f"{time.monotonic() - started:.1f}"
        if keep:
            done = _("Took {seconds} s; the node directories are in {base} (kept)")
        else:
            done = _("Took {seconds} s; the node directories are in {base} "
                     "(deleted when the demo ends)")
        say("\n" + done.format(seconds=seconds, base=base))
        if web is not None:
            from . import web as web_view

            web_view.serve(base, *web, pm=pm)
        return ok


class World:
    def __init__(self, base: Path):
        self.base = base
        self.nodes: dict[str, Node] = {}
        self.today = clock.today()
        self.server = None
        self.url = ""
        self.bundle_bytes = 0
        self.identities: set[str] = set()
        #: how each node's plugin manager is made (a fresh fold uses the same plugins)
        self.plugins: dict[str, object] = {}
        self.bureau: Node | None = None

    # -- set-up --------------------------------------------------------------

    def node(self, area: str, level: str, name: str, root: bool = False,
             plugins=get_plugin_manager, home: str | None = None) -> Node:
        node = Node.init(self.base / (home or area), level=level, area=area, name=name,
                         root=root, pm=plugins())
        node.operator = OPERATOR
        if home is None:
            self.nodes[area] = node
            self.plugins[area] = plugins
        return node

    def build(self) -> None:
        heading(_("Set up the nodes and issue their certificates down the tree"), first=True)
        county = self.node(COUNTY[0], "county", COUNTY[1], root=True)
        for town_area, town_name in TOWNSHIPS:
            town = self.node(town_area, "township", town_name)
            self.enrol(town, county)
            for i in (1, 2, 3):
                village = self.node(f"{town_area}20{i}", "village",
                                    f"{town_name[:4]}{VILLAGES[i - 1]}")
                self.enrol(village, town)
        resettlement.build(self)
        say(_("County root node {name}, fingerprint {fingerprint}; {count} nodes below it have "
              "imported their certificates and pinned that fingerprint").format(
            name=county.info.name, fingerprint=county.info.fingerprint,
            count=len(self.nodes) - 1))
        self.server = BackgroundServer(self.base / COUNTY[0]).start()
        self.url = self.server.url
        say(_("The county node serves sync at {url} (waitress)").format(url=self.url))

    def enrol(self, child: Node, parent: Node, only: scope.Filter | None = None) -> None:
        request = trust.EnrolmentRequest.from_json(trust.make_request(child).to_json())
        sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                               trust.sign_request(parent, request, only=only))
        trust.import_certificate(child, envelope.open_(child.keys, sealed, "enrolment").payload)

    # -- work ----------------------------------------------------------------

    def register_cases(self) -> None:
        heading(_("The villages register cases offline"))
        serial = 0
        total = 0
        for area, node in self.nodes.items():
            if len(area) != 12:
                continue
            for k in range(3):
                serial += 1
                people = [api.PetitionerInput(person(serial, GIVEN[k]),
                                              synthetic_id(serial), f"1380000{serial:04d}",
                                              representative=(k == 1))]
                if k == 1 and serial % 2:
                    people += [api.PetitionerInput(person(serial + j, f"{GIVEN[4]}{j}"))
                               for j in range(1, 5)]
                self.identities |= {p.name for p in people} | {p.id_number for p in people
                                                               if p.id_number}
                received = month.day(self.today, serial % 7 + 3 * k)  # in its first 13 days
                category = CATEGORIES[serial % len(CATEGORIES)]
                api.register_case(node, api.CaseInput(
                    petitioners=people, channel=("visit", "letter", "online")[k],
                    category=category, kind="appeal",
                    request=REQUEST.format(
                        category=node.registry.label("case.category", category), serial=serial),
                    received=received.isoformat()), today=self.today)
                total += 1
        # the same petitioner goes on to a neighbouring village: 重复访 seen only above
        api.register_case(self.nodes["431202101202"], api.CaseInput(
            petitioners=[api.PetitionerInput(person(1, GIVEN[0]), synthetic_id(1))],
            channel="visit", category=CATEGORIES[1], kind="appeal", request=REPEATED,
            received=month.day(self.today, 14).isoformat()), today=self.today)
        villages = sum(1 for area in self.nodes if len(area) == 12)
        say(_("The {villages} villages registered {count} cases; one petitioner raised the same "
              "problem in two neighbouring villages").format(villages=villages, count=total + 1))

    def county_work(self) -> None:
        heading(_("The county petition bureau assigns cases, and registers one itself and "
                  "assigns it to a village"))
        county = self.nodes[COUNTY[0]]
        assigned = []
        for case in api.list_cases(county, api.CaseFilter(status="registered"))[:4]:
            api.take_step(county, case.id, "forward", {
                "mode": "assign", "to_area": case.area, "unit": UNIT,
                "date": month.after(case.received, month.FORWARD)}, today=self.today)
            assigned.append(case.id)
        received = month.day(self.today, 12).isoformat()
        case_id = api.register_case(county, api.CaseInput(
            petitioners=[api.PetitionerInput(person(8, GIVEN[1]), synthetic_id(90))],
            channel="referred", category="resettlement", kind="appeal", request=REFERRED,
            received=received, area="431202102201"), today=self.today)
        api.take_step(county, case_id, "forward", {
            "mode": "assign", "to_area": "431202102201",
            "date": month.after(received, month.FORWARD)}, today=self.today)
        self.assigned = assigned + [case_id]
        say(_("Assigned: {cases}").format(cases=_(", ").join(self.assigned)))

    def village_work(self) -> None:
        heading(_("Villages and townships handle the assigned cases; the county and a village "
                  "act on the same case at once (making a conflict)"))
        county = self.nodes[COUNTY[0]]
        cases = [api.get_case(county, case_id, reveal=False) for case_id in self.assigned]
        month.answer(self.nodes[cases[0].area], cases[0].id, cases[0].received, self.today)
        # within the month: 受理 and 答复, 办结, and for some a rating and a 回访 (息访 or not)
        for case, (leader, rating, ceased) in zip(cases[1:], month.HANDLING):
            month.answer(self.nodes[case.area], case.id, case.received, self.today, leader)
            month.finish(self.nodes[case.area], case.id, case.received, self.today, rating,
                         ceased)
        contested = cases[0]
        closed = month.after(contested.received, month.CLOSE)
        api.take_step(self.nodes[contested.area], contested.id, "close", {"date": closed},
                      today=self.today)
        api.take_step(county, contested.id, "withdraw", {"reason": WITHDRAWN, "date": closed},
                      today=self.today)
        steps = self.nodes[COUNTY[0]].registry.lifecycle("case").steps
        say(_("{case}: the village has taken the step {close}, and at the same time the county "
              "has registered the step {withdraw}").format(
            case=contested.id, close=steps["close"].label, withdraw=steps["withdraw"].label))

    # -- syncing -------------------------------------------------------------

    def townships(self):
        return [(a, n) for a, n in self.nodes.items() if len(a) == 9]

    def villages_of(self, town: str):
        return [(a, n) for a, n in self.nodes.items() if len(a) == 12 and a.startswith(town)]

    def carry(self, source: Node, target: Node) -> int:
        path = self.base / f"{source.info.area}-to-{target.info.area}-{time.monotonic_ns()}.xfb"
        summary = bundle.export_bundle(source, target.info.name, path)
        self.bundle_bytes += summary.bytes
        result = bundle.import_bundle(target, path)
        return result.applied

    def http(self, town: Node) -> str:
        try:
            summary = Client(town, self.url).sync()
            return _("HTTP: {pushed} events sent, {pulled} received").format(
                pushed=summary.pushed, pulled=summary.pulled)
        except SyncError as exc:
            return _("HTTP failed: {error}").format(error=exc)

    def sync_round(self, title: str, down: set[str] = frozenset(),
                   bundle_up: set[str] = frozenset()) -> None:
        heading(title)
        county = self.nodes[COUNTY[0]]
        for town_area, town in self.townships():
            up = sum(self.carry(v, town) for _area, v in self.villages_of(town_area))
            if town_area in down:
                line = self.http_down(town)
            elif town_area in bundle_up:
                sent = self.carry(town, county)
                returned = self.carry(county, town)
                line = _("USB bundle: {sent} events reported up, {returned} sent back by the "
                         "county; {http}").format(sent=sent, returned=returned,
                                                  http=self.http(town))
            else:
                line = self.http(town)
            back = sum(self.carry(town, v) for _area, v in self.villages_of(town_area))
            say("  " + _("{town}: {up} events from the villages' bundles; {line}; {back} sent "
                         "down to the villages").format(town=town.info.name, up=up, line=line,
                                                        back=back))

    def http_down(self, town: Node) -> str:
        try:
            Client(town, "http://127.0.0.1:9").sync()
        except SyncError as exc:
            return _("the line is down ({error}…); the data stays on this node and goes "
                     "next time").format(error=str(exc)[:40])
        return "?"

    def sync_until_quiet(self) -> None:
        heading(_("Sync everything until no node has anything new"))
        for sweep in range(1, 6):
            moved = 0
            for town_area, town in self.townships():
                moved += sum(self.carry(v, town) for _area, v in self.villages_of(town_area))
                summary = Client(town, self.url).sync()
                moved += summary.pushed + summary.pulled
            for town_area, town in self.townships():
                moved += sum(self.carry(town, v) for _area, v in self.villages_of(town_area))
            say("  " + ngettext("Sweep {sweep}: {moved} event moved",
                                "Sweep {sweep}: {moved} events moved", moved).format(
                sweep=sweep, moved=moved))
            if moved == 0:
                return

    # -- the county's view and the checks --------------------------------------

    def report(self) -> bool:
        county = self.nodes[COUNTY[0]]
        heading(_("The county petition bureau's view"))
        rows = county.db.execute(
            "select substr(area, 1, 9), status, count(*) from cases group by 1, 2 "
            "order by 1, 2").fetchall()
        lifecycle = county.registry.lifecycle("case")
        names = {a: n.info.name for a, n in self.nodes.items()}
        for town, status, count in rows:
            say(f"  {names.get(town, town):<10} {lifecycle.label(status):<6} "
                + ngettext("{count} case", "{count} cases", count).format(count=count))
        comma = _(", ")
        overdue = api.list_cases(county, api.CaseFilter(overdue=True))
        say(ngettext("Overdue (under supervision): {count} case {cases}",
                     "Overdue (under supervision): {count} cases {cases}", len(overdue)).format(
            count=len(overdue),
            cases=comma.join(c.id for c in overdue[:5]) + ("…" if len(overdue) > 5 else "")))
        repeats = api.list_cases(county, api.CaseFilter(repeat=True))
        say(ngettext("Repeat petitions: {count} case {cases}",
                     "Repeat petitions: {count} cases {cases}", len(repeats)).format(
            count=len(repeats), cases=comma.join(f"{c.id}←{c.repeat_of}" for c in repeats)))
        conflicts = settlements.list_conflicts(county)
        say(_("Conflicts: {count}").format(count=len(conflicts)))
        for conflict in conflicts:
            say("  " + _("{case} {type}: {reason}").format(
                case=conflict.entity_id, type=conflict.type, reason=i18n.show(conflict.reason)))
        quarantined = county.db.execute("select count(*) from quarantine").fetchone()[0]
        say(ngettext("Quarantine: {count} event", "Quarantine: {count} events",
                     quarantined).format(count=quarantined))
        shown = api.get_case(county, repeats[0].id) if repeats else None
        if shown:
            person = shown.petitioners[0]
            number = person.id_number
            say(_("The county sees the petitioner of {case} as: {name}; ID number {number} "
                  "(sealed to the county alone, to find repeat petitions)").format(
                case=shown.id, name=person.name or _("(name not uploaded; only a digest is kept)"),
                number=f"{number[:6]}{'*' * 8}{number[-4:]}" if number else "—"))
        return self.check()

    def statistics(self) -> bool:
        return month.statistics(self) and supervise.supervision(self)

    def check(self) -> bool:
        """Every node holds exactly the events its scope allows, and views agree."""
        everything = {}
        for node in self.nodes.values():
            for event_id, entity, area in node.db.execute("select id, entity, area from events"):
                everything[event_id] = (entity, area)
        problems = []
        for area, node in self.nodes.items():
            held = {row[0] for row in node.db.execute("select id from events")}
            allowed = {i for i, (entity, a) in everything.items()
                       if scope.in_scope(entity, a, area)}
            if held != allowed:
                problems.append(_("{node} holds {held} events, but its jurisdiction allows "
                                  "{allowed}").format(node=node.info.name, held=len(held),
                                                      allowed=len(allowed)))
            if not self.folds_alike(node, area, self.plugins[area]):
                problems.append(_("The views of {node} differ from a fresh fold of its "
                                  "log").format(node=node.info.name))
        county = self.nodes[COUNTY[0]]
        for area, node in self.nodes.items():
            for table, query in AGREE.items():
                mine = node.db.execute(query, [area + "%"]).fetchall()
                if mine != county.db.execute(query, [area + "%"]).fetchall():
                    problems.append(_("{node} and the county disagree on {table}").format(
                        node=node.info.name, table=table))
        leaks = [p.name for p in self.base.glob("*.xfb")
                 if any(i.encode() in p.read_bytes() for i in self.identities)]
        if leaks:
            problems.append(_("The bundles {bundles} contain a petitioner's name or ID "
                              "number").format(bundles=_(", ").join(leaks)))
        if problems:
            say(_("Checks failed:") + "\n  " + "\n  ".join(problems), fg="red", bold=True)
            return False
        say(_("Checks passed: each of the {nodes} nodes holds exactly the events its jurisdiction "
              "allows ({events} in the whole county), its views equal a fresh fold of its log, "
              "and its cases' states, histories and deadlines agree with the county's; none of "
              "the {bundles} bundles holds any petitioner's name or ID number").format(
            nodes=len(self.nodes), events=len(everything),
            bundles=len(list(self.base.glob("*.xfb")))),
            fg="green", bold=True)
        return True

    def folds_alike(self, node: Node, home: str, plugins) -> bool:
        """Whether ``node``'s views equal a fresh fold of its log with the same plugins."""
        fresh = Node.init(self.base / "check" / home, level=node.info.level,
                          area=node.info.area, name="check", pm=plugins())
        fresh.ingest([e for e in _events(node)])
        alike = fold.views_digest(fresh.db, fresh.registry) == fold.views_digest(node.db,
                                                                                 node.registry)
        fresh.close()
        return alike

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        for node in [*self.nodes.values(), *([self.bureau] if self.bureau else [])]:
            node.close()


#: what every node must hold identically for the cases in its scope. 重复访 and
#: 初信初访 are left out on purpose: they are judged from the cases a node may
#: see, and a village cannot see its neighbour's earlier case.
AGREE = {
    "cases": "select id, area, status, channel, headcount, category, kind, request, received, "
             "collective, unit, leader, handler, forwarded_to, rating, fields, facts, updated "
             "from cases where area like ? order by id",
    "case_history": "select * from entity_history where entity = 'case' and entity_id in "
                    "(select id from cases where area like ?) order by entity_id, ord",
    "case_deadlines": "select * from case_deadlines where case_id in (select id from cases "
                      "where area like ?) order by case_id, kind",
}


def _events(node: Node):
    from xinfang.core import store

    return store.all_events(node.db)
