"""``xinfang demo``: a county with 3 townships and 9 villages, synced two ways.

Everything is real: separate node directories and databases, certificates
signed down the tree, bundle files written and read, and a waitress HTTP
server on the loopback address. Names and ID numbers are synthetic.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import click

from xinfang.core import fold
from xinfang.core.node import Node
from xinfang.app import plugin_manager as get_plugin_manager
from xinfang.plugins import settlements
from xinfang.plugins.cases import api
from xinfang.core import scope
from xinfang.sync import bundle, envelope, trust
from xinfang.sync.http import BackgroundServer, Client, SyncError

from .synthetic import GIVEN, SURNAMES, synthetic_id

COUNTY = ("431202", "示例县信访局")
TOWNSHIPS = [("431202101", "示例一镇信访办"), ("431202102", "示例二镇信访办"),
             ("431202103", "示例三镇信访办")]
CATEGORIES = ["劳动社保", "库区移民", "国土资源", "邻里纠纷", "城乡建设"]


def say(text: str = "", **style) -> None:
    click.secho(text, **style)


def run_demo(keep: Path | None, pm=None) -> bool:
    """Build the county, sync it, print the county's view; True if every check holds."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xinfang-demo-") as tmp:
        base = Path(keep) if keep else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        world = World(base)
        world.build()
        world.register_cases()
        world.sync_round("第一轮同步：村→镇（U盘数据包），镇→县（HTTP），三镇线路中断", down={"431202103"})
        world.county_work()
        world.sync_round("第二轮同步：三镇改用U盘数据包上报，线路恢复后继续HTTP", bundle_up={"431202103"})
        world.village_work()
        world.sync_until_quiet()
        ok = world.report()
        world.close()
        say(f"\n用时 {time.monotonic() - started:.1f} 秒；节点目录 {base}"
            + ("（已保留）" if keep else "（演示结束后删除）"))
        return ok


class World:
    def __init__(self, base: Path):
        self.base = base
        self.nodes: dict[str, Node] = {}
        self.today = dt.date.today()
        self.server = None
        self.url = ""
        self.bundle_bytes = 0
        self.identities: set[str] = set()

    # -- set-up --------------------------------------------------------------

    def node(self, area: str, level: str, name: str, root: bool = False) -> Node:
        node = Node.init(self.base / area, level=level, area=area, name=name, root=root,
                         pm=get_plugin_manager())
        node.operator = "演示员"
        self.nodes[area] = node
        return node

    def build(self) -> None:
        say("== 建立节点并逐级签发证书 ==", bold=True)
        county = self.node(COUNTY[0], "county", COUNTY[1], root=True)
        for town_area, town_name in TOWNSHIPS:
            town = self.node(town_area, "township", town_name)
            self.enrol(town, county)
            for i in (1, 2, 3):
                village = self.node(f"{town_area}20{i}", "village",
                                    f"{town_name[:4]}示例{'一二三'[i - 1]}村信访站")
                self.enrol(village, town)
        say(f"县级根节点 {county.info.name}，指纹 {county.info.fingerprint}；"
            f"{len(self.nodes) - 1} 个下级节点已导入证书并固定该指纹")
        self.server = BackgroundServer(self.base / COUNTY[0]).start()
        self.url = self.server.url
        say(f"县级节点已在 {self.url} 提供同步服务（waitress）")

    def enrol(self, child: Node, parent: Node) -> None:
        request = trust.EnrolmentRequest.from_json(trust.make_request(child).to_json())
        sealed = envelope.seal(parent.keys, request.subject, request.encryption, "enrolment",
                               trust.sign_request(parent, request))
        trust.import_certificate(child, envelope.open_(child.keys, sealed, "enrolment").payload)

    # -- work ----------------------------------------------------------------

    def register_cases(self) -> None:
        say("\n== 各村离线登记信访事项 ==", bold=True)
        serial = 0
        total = 0
        for area, node in self.nodes.items():
            if len(area) != 12:
                continue
            for k in range(3):
                serial += 1
                people = [api.PetitionerInput(f"{SURNAMES[serial % 16]}某{GIVEN[k]}",
                                              synthetic_id(serial), f"1380000{serial:04d}",
                                              representative=(k == 1))]
                if k == 1 and serial % 2:
                    people += [api.PetitionerInput(f"{SURNAMES[(serial + j) % 16]}某戊{j}")
                               for j in range(1, 5)]
                self.identities |= {p.name for p in people} | {p.id_number for p in people
                                                               if p.id_number}
                received = self.today - dt.timedelta(days=70 - 10 * k - serial % 7)
                api.register_case(node, api.CaseInput(
                    petitioners=people, channel=("来访", "来信", "网上信访")[k],
                    category=CATEGORIES[serial % len(CATEGORIES)], kind="申诉求决",
                    request=f"反映{CATEGORIES[serial % len(CATEGORIES)]}问题（示例{serial}）",
                    received=received.isoformat()), today=self.today)
                total += 1
        # the same petitioner goes on to a neighbouring village: 重复访 seen only above
        api.register_case(self.nodes["431202101202"], api.CaseInput(
            petitioners=[api.PetitionerInput("钱某甲", synthetic_id(1))], channel="来访",
            category=CATEGORIES[1], kind="申诉求决", request="再次反映同一问题（示例）",
            received=(self.today - dt.timedelta(days=5)).isoformat()), today=self.today)
        say(f"9 个村共登记 {total + 1} 件，其中一名信访人在相邻两村重复反映同一问题")

    def county_work(self) -> None:
        say("\n== 县信访局交办案件、直接登记一件并交办到村 ==", bold=True)
        county = self.nodes[COUNTY[0]]
        assigned = []
        for case in api.list_cases(county, api.CaseFilter(status="registered"))[:4]:
            api.take_step(county, case.id, "forward", {"mode": "assign", "to_area": case.area,
                                                       "unit": "属地村委会"}, today=self.today)
            assigned.append(case.id)
        case_id = api.register_case(county, api.CaseInput(
            petitioners=[api.PetitionerInput("冯某乙", synthetic_id(90))], channel="上级转交办",
            category="库区移民", kind="申诉求决", request="移民后扶资金发放问题（市转交，示例）",
            received=self.today.isoformat(), area="431202102201"), today=self.today)
        api.take_step(county, case_id, "forward", {"mode": "assign", "to_area": "431202102201"},
                      today=self.today)
        self.assigned = assigned + [case_id]
        say("交办：" + "、".join(self.assigned))

    def village_work(self) -> None:
        say("\n== 村、镇办理交办案件；县与村并发处理同一件（制造一个冲突）==", bold=True)
        for case_id in self.assigned:
            village = self.nodes[api.get_case(self.nodes[COUNTY[0]], case_id, reveal=False).area]
            api.take_step(village, case_id, "accept", {"unit": "属地村委会"}, today=self.today)
            api.take_step(village, case_id, "answer", {"outcome": "explain"}, today=self.today)
        contested = self.assigned[0]
        village = self.nodes[api.get_case(self.nodes[COUNTY[0]], contested, reveal=False).area]
        api.take_step(village, contested, "close", {}, today=self.today)
        api.take_step(self.nodes[COUNTY[0]], contested, "withdraw",
                      {"reason": "信访人电话告知撤回（示例）"}, today=self.today)
        say(f"{contested}：村里已办结，县里同时登记撤回")

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
            return f"HTTP 上传 {summary.pushed} 条、下载 {summary.pulled} 条"
        except SyncError as exc:
            return f"HTTP 失败：{exc}"

    def sync_round(self, title: str, down: set[str] = frozenset(),
                   bundle_up: set[str] = frozenset()) -> None:
        say(f"\n== {title} ==", bold=True)
        county = self.nodes[COUNTY[0]]
        for town_area, town in self.townships():
            up = sum(self.carry(v, town) for _, v in self.villages_of(town_area))
            if town_area in down:
                line = self.http_down(town)
            elif town_area in bundle_up:
                line = (f"U盘上报 {self.carry(town, county)} 条，县回传 {self.carry(county, town)} 条；"
                        + self.http(town))
            else:
                line = self.http(town)
            back = sum(self.carry(town, v) for _, v in self.villages_of(town_area))
            say(f"  {town.info.name}：收村数据包 {up} 条；{line}；下发村 {back} 条")

    def http_down(self, town: Node) -> str:
        try:
            Client(town, "http://127.0.0.1:9").sync()
        except SyncError as exc:
            return f"线路中断（{str(exc)[:40]}…），数据留在本地，下次继续"
        return "?"

    def sync_until_quiet(self) -> None:
        say("\n== 全面同步，直到各节点无新数据 ==", bold=True)
        for sweep in range(1, 6):
            moved = 0
            for town_area, town in self.townships():
                moved += sum(self.carry(v, town) for _, v in self.villages_of(town_area))
                summary = Client(town, self.url).sync()
                moved += summary.pushed + summary.pulled
            for town_area, town in self.townships():
                moved += sum(self.carry(town, v) for _, v in self.villages_of(town_area))
            say(f"  第 {sweep} 遍：移动 {moved} 条事件")
            if moved == 0:
                return

    # -- the county's view and the checks --------------------------------------

    def report(self) -> bool:
        county = self.nodes[COUNTY[0]]
        say("\n== 县信访局视图 ==", bold=True)
        rows = county.db.execute(
            "select substr(area, 1, 9), status, count(*) from cases group by 1, 2 "
            "order by 1, 2").fetchall()
        lifecycle = county.registry.lifecycle("case")
        names = {a: n.info.name for a, n in self.nodes.items()}
        for town, status, count in rows:
            say(f"  {names.get(town, town):<10} {lifecycle.label(status):<6} {count} 件")
        overdue = api.list_cases(county, api.CaseFilter(overdue=True))
        say(f"超期未办（督查督办）：{len(overdue)} 件 " + "、".join(c.id for c in overdue[:5])
            + ("…" if len(overdue) > 5 else ""))
        repeats = api.list_cases(county, api.CaseFilter(repeat=True))
        say(f"重复访：{len(repeats)} 件 " + "、".join(f"{c.id}←{c.repeat_of}" for c in repeats))
        conflicts = settlements.list_conflicts(county)
        say(f"冲突：{len(conflicts)} 件")
        for conflict in conflicts:
            say(f"  {conflict.entity_id} {conflict.type}：{conflict.reason}")
        quarantined = county.db.execute("select count(*) from quarantine").fetchone()[0]
        say(f"隔离区：{quarantined} 条")
        shown = api.get_case(county, repeats[0].id) if repeats else None
        if shown:
            say(f"县级查看 {shown.id} 的信访人：{shown.petitioners[0].name or '（身份信息未上传，仅存摘要）'}")
        return self.check()

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
                problems.append(f"{node.info.name} holds {len(held)} events, its scope allows "
                                f"{len(allowed)}")
            fresh = Node.init(self.base / "check" / area, level=node.info.level, area=area,
                              name="check", pm=get_plugin_manager())
            fresh.ingest([e for e in _events(node)])
            if fold.views_digest(fresh.db, fresh.registry) != fold.views_digest(node.db, node.registry):
                problems.append(f"{node.info.name}'s views differ from a fresh fold of its log")
            fresh.close()
        county = self.nodes[COUNTY[0]]
        for area, node in self.nodes.items():
            for table, query in AGREE.items():
                mine = node.db.execute(query, [area + "%"]).fetchall()
                if mine != county.db.execute(query, [area + "%"]).fetchall():
                    problems.append(f"{node.info.name} and the county disagree on {table}")
        leaks = [p.name for p in self.base.glob("*.xfb")
                 if any(i.encode() in p.read_bytes() for i in self.identities)]
        if leaks:
            problems.append(f"bundle(s) {', '.join(leaks)} contain a petitioner's name or ID")
        if problems:
            say("检查未通过：\n  " + "\n  ".join(problems), fg="red", bold=True)
            return False
        say(f"检查通过：{len(self.nodes)} 个节点各自恰好持有其辖区应有的事件（全县共 {len(everything)} 条），"
            "视图等于其日志的重新折叠，案件状态、办理经过与期限与县级一致；"
            f"{len(list(self.base.glob('*.xfb')))} 个数据包中检索不到任何信访人姓名或身份证号 "
            "(every node holds exactly the state its scope allows; all nodes agree)",
            fg="green", bold=True)
        return True

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        for node in self.nodes.values():
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
