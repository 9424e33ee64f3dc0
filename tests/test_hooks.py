"""Each hook a plugin author relies on, taking effect on real nodes.

The example plugin in CONTRIBUTING.md exercises every hook too (tests/test_docs.py);
these tests pin one behaviour per hook with the smallest plugin that shows it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import types
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click
import pluggy
import pytest
from click.testing import CliRunner

from conftest import COUNTY, TOWNSHIP, VILLAGE, case_input
from xinfang import hookimpl
from xinfang.app import plugin_manager
from xinfang.cli import pass_app
from xinfang.cli.main import build_cli
from xinfang.core import areas, fold, policy, store
from xinfang.core.entities import EntityType
from xinfang.core.errors import InvalidEvent, InvalidInput, PluginError
from sqlite_utils.migrations import Migrations
from xinfang.core.node import Draft
from xinfang.core.plugins import Registry, get_plugin_manager
from xinfang.core.policy import PolicyKey
from xinfang.core.reports import Column, Param, Renderer, Report
from xinfang.core.routes import Response, Route
from xinfang.core.transports import Transport
from xinfang.plugins.cases import api
from xinfang.sync import bundle, envelope, peers, trust
from xinfang.sync.server import BackgroundServer

TODAY = dt.date(2026, 3, 1)


class Ledger:
    """A plugin-owned entity: one 台账 row per dispute, synced like a case."""

    @staticmethod
    def _schema(db):
        db.execute("create table ledger_rows (id text primary key, area text, risk text)")

    @staticmethod
    def _apply(ctx, event):
        ctx.db.conn.execute("insert or replace into ledger_rows values (?, ?, ?)",
                            [event.entity_id, event.area, event.body["risk"]])

    @staticmethod
    def _reset(ctx, entity_id):
        ctx.db.conn.execute("delete from ledger_rows where id = ?", [entity_id])

    @hookimpl
    def xinfang_entity_types(self):
        migrations = Migrations("ledger")
        migrations(name="0001")(self._schema)
        return [EntityType("ledger", "矛盾纠纷排查台账", ("ledger_rows",), migrations,
                           self._apply, self._reset)]


def test_a_plugin_entity_type_is_folded_and_rebuilt_like_a_case(make_node):
    node = make_node(plugins=[Ledger()])
    node.append(Draft("ledger.screen", "ledger", "L1", VILLAGE, {"risk": "高"}))
    assert node.db.execute("select risk from ledger_rows where id = 'L1'").fetchone() == ("高",)
    from xinfang.core.verify import rebuild
    assert rebuild(node).consistent


def test_two_plugins_registering_one_entity_name_is_a_start_up_error():
    with pytest.raises(PluginError, match="记录类型“ledger”登记了两次"):
        Registry.collect(get_plugin_manager([Ledger(), Ledger()]))


class NoTestCases:
    @hookimpl
    def xinfang_validate_event(self, event, node):
        if event.type == "case.register" and "测试拒收" in event.body.get("request", ""):
            raise InvalidEvent("requests marked 测试拒收 are refused by this county's rule")


def test_a_validating_plugin_refuses_before_anything_is_written(make_node):
    node = make_node(plugins=[NoTestCases()])
    before = node.db.execute("select count(*) from events").fetchone()[0]
    with pytest.raises(InvalidEvent, match="测试拒收"):
        api.register_case(node, case_input(request="测试拒收"), today=TODAY)
    assert node.db.execute("select count(*) from events").fetchone()[0] == before


def test_a_validating_plugin_refuses_the_same_event_on_arrival(make_node):
    source = make_node()
    api.register_case(source, case_input(request="测试拒收"), today=TODAY)
    events = list(store.all_events(source.db))
    strict = make_node(plugins=[NoTestCases()])
    with pytest.raises(InvalidEvent, match="测试拒收"):
        strict.ingest(events)
    assert strict.db.execute("select count(*) from events").fetchone()[0] == 0


class Watch:
    """Rows derived from another plugin's entity: one per step taken on a case."""

    @staticmethod
    def _schema(db):
        db.execute("create table case_watch (case_id text, event_id text primary key)")

    @hookimpl
    def xinfang_entity_types(self):
        migrations = Migrations("watch")
        migrations(name="0001")(self._schema)
        return [EntityType("watch", "关注", ("case_watch",), migrations,
                           lambda ctx, e: None, lambda ctx, i: None)]

    @hookimpl
    def xinfang_event_applied(self, context, event):
        if event.entity == "case":
            context.db.conn.execute("insert into case_watch values (?, ?)",
                                    [event.entity_id, event.id])

    @hookimpl
    def xinfang_entity_reset(self, context, entity, entity_id):
        if entity == "case":
            context.db.conn.execute("delete from case_watch where case_id = ?", [entity_id])


def test_derived_rows_follow_an_out_of_order_arrival_through_the_reset_hook(make_node):
    source = make_node(plugins=[Watch()])
    case_id = api.register_case(source, case_input(), today=TODAY)
    api.take_step(source, case_id, "accept", {"date": "2026-01-06"}, today=TODAY)
    api.take_step(source, case_id, "answer", {"date": "2026-01-07", "outcome": "explain"},
                  today=TODAY)
    events = list(store.all_events(source.db))
    late = make_node(plugins=[Watch()])
    for event in reversed(events):       # each arrival before the earlier ones: re-folds
        late.ingest([event])
    rows = {r[0] for r in late.db.execute("select event_id from case_watch")}
    assert rows == {e.id for e in events}
    assert fold.views_digest(late.db, late.registry) == fold.views_digest(source.db, source.registry)


class Hello:
    @hookimpl
    def xinfang_register_commands(self, cli, registry):
        @cli.command("hello")
        @pass_app
        def hello(app):
            """Say which node this is."""
            with app.open_node() as node:
                click.echo(f"你好，{node.info.name}")


def test_a_plugin_command_runs_against_the_node(invoke):
    invoke("init", "--level", "village", "--area", VILLAGE, "--name", "测试村")
    result = invoke("hello", plugins=[Hello()])
    assert result.exit_code == 0 and result.output.strip() == "你好，测试村"
    assert "hello" not in CliRunner().invoke(build_cli(get_plugin_manager()), ["--help"]).output


class ReleaseUpward:
    @hookimpl
    def xinfang_outgoing(self, event, destination, node):
        return True if event.entity == "case" else None


def _tree(make_node, plugins=()):
    county = make_node(level="county", area=COUNTY, name="测试县", root=True, plugins=plugins)
    town = make_node(level="township", area=TOWNSHIP, name="测试镇", plugins=plugins)
    request = trust.make_request(town)
    sealed = envelope.seal(county.keys, request.subject, request.encryption, "enrolment",
                           trust.sign_request(county, request))
    trust.import_certificate(town, envelope.open_(town.keys, sealed, "enrolment").payload)
    return county, town


@pytest.mark.parametrize("plugins, name_at_county", [((), None), ((ReleaseUpward(),), "赵某甲")])
def test_release_hook_decides_whether_identity_travels_upward(make_node, tmp_path, plugins,
                                                              name_at_county):
    county, town = _tree(make_node, plugins)
    case_id = api.register_case(town, case_input(area=VILLAGE), today=TODAY)
    path = tmp_path / "up.xfb"
    bundle.export_bundle(town, "测试县", path)
    bundle.import_bundle(county, path)
    assert api.get_case(county, case_id).petitioners[0].name == name_at_county


class NameAndIdUpward:
    """Names and ID numbers of every case go up; phones and addresses do not."""

    @hookimpl
    def xinfang_outgoing(self, event, destination, node):
        if event.type != "case.register" or destination.area.startswith(event.area):
            return None
        return {p[k] for p in event.body["petitioners"] for k in ("name", "id_number") if k in p}


def test_outgoing_hook_may_release_only_some_sealed_values(make_node, tmp_path):
    county, town = _tree(make_node, (NameAndIdUpward(),))
    case_id = api.register_case(town, case_input(area=VILLAGE), today=TODAY)
    path = tmp_path / "up.xfb"
    bundle.export_bundle(town, "测试县", path)
    bundle.import_bundle(county, path)
    person = api.get_case(county, case_id).petitioners[0]
    assert (person.name, person.phone, person.address) == ("赵某甲", None, None)
    assert person.id_number is not None


# -- xinfang_addhooks: a plugin's own hooks -------------------------------------------

hookspec = pluggy.HookspecMarker("xinfang")


class SlipHooks:
    @hookspec
    def xinfang_visit_slip(self, case_id):
        """Return lines to print on the 接访 slip of ``case_id``."""


class VisitSlips:
    """Owns the hook, and prints the slip with what every plugin adds."""

    @hookimpl
    def xinfang_addhooks(self, pluginmanager):
        pluginmanager.add_hookspecs(SlipHooks)

    @staticmethod
    def slip(node, case_id):
        return [f"接访单 {case_id}"] + [line for found in reversed(
            node.pm.hook.xinfang_visit_slip(case_id=case_id)) for line in found]


class BringId:
    @hookimpl
    def xinfang_visit_slip(self, case_id):
        return ["请携带身份证件"]


class BringDocuments:
    @hookimpl
    def xinfang_visit_slip(self, case_id):
        return ["请携带相关材料原件"]


def test_a_plugin_adds_a_hook_that_another_plugin_implements(make_node):
    # the implementations come before and after the plugin that adds the hook
    node = make_node(plugins=[BringId(), VisitSlips(), BringDocuments()])
    case_id = api.register_case(node, case_input(), today=TODAY)
    assert VisitSlips.slip(node, case_id) == [f"接访单 {case_id}", "请携带身份证件",
                                              "请携带相关材料原件"]
    assert not hasattr(plugin_manager().hook, "xinfang_visit_slip")  # only where it is added


class Mistyped:
    @hookimpl
    def xinfang_validate_events(self, event, node):
        raise InvalidEvent("never called: there is no such hook")


def test_a_mistyped_hook_name_stops_start_up_with_a_plugin_error():
    with pytest.raises(PluginError, match="xinfang_validate_events"):
        plugin_manager([Mistyped()])
    with pytest.raises(PluginError, match="xinfang_validate_events"):
        get_plugin_manager([Mistyped()])


class OptionalSlip:
    @hookimpl(optionalhook=True)
    def xinfang_visit_slip(self, case_id):
        return ["请提前十分钟到达"]


def test_implementing_the_hook_of_an_absent_plugin_needs_optionalhook(make_node):
    with pytest.raises(PluginError, match="xinfang_visit_slip"):
        plugin_manager([BringId()])  # VisitSlips, which adds the hook, is not installed
    make_node(plugins=[OptionalSlip()])  # marked optional: the node starts without it
    node = make_node(plugins=[OptionalSlip(), VisitSlips()])
    assert VisitSlips.slip(node, "X")[1:] == ["请提前十分钟到达"]


# -- xinfang_policy_keys: settings the fold reads, as synced policy --------------------

class ReliefThreshold:
    @hookimpl
    def xinfang_policy_keys(self):
        return [PolicyKey("relief.review_threshold", "须集体研究的救助金额（元）", 5000,
                          kind="int", minimum=1)]


def _policy_row(invoke, key, **kwargs) -> dict:
    result = invoke("policy", "show", "--json", plugins=[ReliefThreshold()], **kwargs)
    assert result.exit_code == 0, result.output
    return {row["key"]: row for row in json.loads(result.stdout)["policy"]}[key]


def test_a_declared_policy_key_shows_with_its_default_and_is_set_at_the_root(invoke):
    with_key = [ReliefThreshold()]
    assert invoke("init", "--level", "county", "--area", COUNTY, "--name", "测试县", "--root",
                  plugins=with_key).exit_code == 0
    row = _policy_row(invoke, "relief.review_threshold")
    assert (row["label"], row["value"], row["default"], row["version"]) == \
        ("须集体研究的救助金额（元）", 5000, True, 0)
    result = invoke("policy", "set", "relief.review_threshold", "8000", "--json", plugins=with_key)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["value"] == 8000
    row = _policy_row(invoke, "relief.review_threshold")
    assert (row["value"], row["default"], row["area"], row["version"], row["set_by"]) == \
        (8000, False, COUNTY, 1, "测试县")
    from xinfang.core.node import Node
    with Node.open(invoke.home, pm=plugin_manager(with_key)) as node:
        assert node.context.policy("relief.review_threshold", VILLAGE) == 8000  # what folds read
    bad = invoke("policy", "set", "relief.review_threshold", "0", plugins=with_key)
    assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1
    unknown = invoke("policy", "set", "relief.review_threshold", "8000")  # without the plugin
    assert unknown.exit_code != 0 and "没有名为“relief.review_threshold”的策略" in unknown.output


def test_a_node_that_is_not_the_root_cannot_set_a_policy_key(invoke, tmp_path):
    home = tmp_path / "village"
    with_key = [ReliefThreshold()]
    assert invoke("init", "--level", "village", "--area", VILLAGE, "--name", "测试村",
                  home_dir=home, plugins=with_key).exit_code == 0
    result = invoke("policy", "set", "relief.review_threshold", "8000", home_dir=home,
                    plugins=with_key)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "错误：策略 relief.review_threshold 只能由根节点设定（未下放给本级）；请在根节点运行 "
        "`xinfang policy set relief.review_threshold …`"]
    row = _policy_row(invoke, "relief.review_threshold", home_dir=home)
    assert (row["value"], row["default"]) == (5000, True)  # nothing was written


# -- xinfang_reports and xinfang_renderers -----------------------------------------------

def _by_channel(node, status=None):
    rows = node.db.execute("select channel, count(*) from cases where ? is null or status = ? "
                           "group by channel order by channel", [status, status]).fetchall()
    return [{"channel": node.registry.label("case.channel", c), "cases": n} for c, n in rows]


class ByChannel:
    @hookimpl
    def xinfang_reports(self):
        return [Report("case.by_channel", "按信访形式统计",
                       (Column("channel", "信访形式"), Column("cases", "件数")), _by_channel,
                       (Param("status", "状态（代码）"),))]


def _tsv(result):
    columns = result.report.columns
    lines = ["\t".join(c.label for c in columns)]
    lines += ["\t".join(str(row.get(c.name, "")) for c in columns) for row in result.rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


class Tsv:
    @hookimpl
    def xinfang_renderers(self):
        return [Renderer("tsv", "制表符分隔", "tsv", _tsv)]


REGISTER = ("case", "register", "-p", "name=赵某甲", "--channel", "来访", "--category",
            "劳动社保", "--request", "请求追讨拖欠工资", "--received", "2026-01-05")


def _county_with_cases(invoke, plugins):
    assert invoke("init", "--level", "county", "--area", COUNTY, "--name", "测试县", "--root",
                  plugins=plugins).exit_code == 0
    for channel in ("来访", "来访", "来信"):
        result = invoke(*REGISTER[:5], channel, *REGISTER[6:], plugins=plugins)
        assert result.exit_code == 0, result.output


def test_a_plugin_report_runs_through_the_cli_as_csv_json_and_text(invoke):
    plugins = [ByChannel()]
    _county_with_cases(invoke, plugins)
    run = ("report", "run", "case.by_channel", "--format")
    csv = invoke(*run, "csv", plugins=plugins)
    assert csv.exit_code == 0, csv.output
    assert csv.stdout_bytes.decode("utf-8").splitlines() == ["\ufeff信访形式,件数", "来信,1",
                                                              "来访,2"]
    data = json.loads(invoke(*run, "json", plugins=plugins).stdout)
    assert (data["report"], data["params"]) == ("case.by_channel", {"status": None})
    assert data["rows"] == [{"channel": "来信", "cases": 1}, {"channel": "来访", "cases": 2}]
    text = invoke(*run, "text", plugins=plugins).stdout.splitlines()
    assert text[0] == "按信访形式统计" and text[1].split() == ["信访形式", "件数"]
    assert [line.split() for line in text[3:]] == [["来信", "1"], ["来访", "2"]]
    none = invoke("report", "run", "case.by_channel", "--param", "status=closed", "--format",
                  "json", plugins=plugins)
    assert json.loads(none.stdout)["rows"] == []
    listed = json.loads(invoke("report", "list", "--json", plugins=plugins).stdout)
    assert "case.by_channel" in [r["name"] for r in listed]
    wrong = invoke("report", "run", "case.by_channel", "--param", "month=1", plugins=plugins)
    assert wrong.exit_code != 0 and "没有参数 month" in wrong.output


def test_a_plugin_renderer_adds_a_report_format(invoke):
    plugins = [ByChannel(), Tsv()]
    _county_with_cases(invoke, plugins)
    result = invoke("report", "run", "case.by_channel", "--format", "tsv", plugins=plugins)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["信访形式\t件数", "来信\t1", "来访\t2"]
    built_in = invoke("report", "run", "case.status", "--format", "tsv", plugins=[Tsv()])
    assert built_in.stdout.splitlines()[1:] == ["已登记\t劳动社保\t3\t3"]
    without = invoke("report", "run", "case.by_channel", "--format", "tsv", plugins=[ByChannel()])
    assert without.exit_code != 0
    message = without.output.strip()
    assert message.startswith("错误：没有名为“tsv”的输出格式") and "(csv)" in message
    assert len(message.splitlines()) == 1
    with pytest.raises(PluginError, match="输出格式“tsv”登记了两次"):
        Registry.collect(plugin_manager([Tsv(), types.SimpleNamespace(
            xinfang_renderers=hookimpl(lambda: [Renderer("tsv", "又一个", "tsv", _tsv)]))]))


# -- xinfang_routes: pages the node serves -----------------------------------------------

def _open_cases(node, request):
    area = areas.check_code(request.query.get("area", node.info.area))  # bad input: 400
    (count,) = node.db.execute("select count(*) from cases where area like ? || '%' and "
                               "status not in ('closed', 'withdrawn')", [area]).fetchone()
    return Response(json.dumps({"area": area, "open": count}, ensure_ascii=False),
                    content_type="application/json; charset=utf-8")


class OpenCases:
    @hookimpl
    def xinfang_routes(self):
        return [Route("case.open", "/cases/open", _open_cases, label="在办信访事项")]


@pytest.fixture
def served(make_node):
    """A node with one case, served by waitress on a thread with the route's plugin;
    yields a GET (or other method) that returns status, content type and JSON."""
    node = make_node(level="county", area=COUNTY, name="测试县", root=True,
                     plugins=[OpenCases()])
    api.register_case(node, case_input(area=VILLAGE), today=TODAY)
    node.close()

    def get(path, method="GET"):
        request = urllib.request.Request(server.url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers["Content-Type"], \
                    json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], json.loads(exc.read())

    with BackgroundServer(node.home, pm=plugin_manager([OpenCases()])) as server:
        yield get


def test_a_plugin_route_answers_through_the_node_web_app(served):
    assert served("/cases/open") == (200, "application/json; charset=utf-8",
                                     {"area": COUNTY, "open": 1})
    assert served(f"/cases/open?area={TOWNSHIP}")[2] == {"area": TOWNSHIP, "open": 1}
    assert served("/cases/open?area=431203")[2] == {"area": "431203", "open": 0}


def test_an_unknown_path_or_bad_input_gets_a_json_error_never_500(served):
    status, kind, body = served("/cases/closed")
    assert (status, kind) == (404, "application/json; charset=utf-8")
    assert "GET /cases/open" in body["error"] and "POST /v1/sync" in body["error"]
    status, _, body = served("/cases/open", method="POST")
    assert status == 404 and "POST /cases/open" in body["error"]
    status, _, body = served("/cases/open?" + urllib.parse.urlencode({"area": "县城"}))
    assert status == 400 and "只能由数字组成" in body["error"]


# -- xinfang_transports: ways to move events --------------------------------------------

def _to_folder(node, peer, folder):
    to = peers.resolve(node, peer)
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / f"{node.info.area}-to-{to.area}-{secrets.token_hex(4)}.xfb"
    return bundle.export_bundle(node, peer, path)


def _from_folder(node, folder):
    done = []
    for path in sorted(Path(folder).glob(f"*-to-{node.info.area}-*.xfb")):
        done.append(bundle.import_bundle(node, path))
        path.unlink()
    return done


class SharedFolder:
    @hookimpl
    def xinfang_transports(self):
        return [Transport("folder", "共享文件夹 (shared folder)", send=_to_folder,
                          receive=_from_folder)]


def test_the_registry_holds_bundle_http_and_a_plugin_transport(invoke):
    assert set(Registry.collect(plugin_manager()).transports) == {"bundle", "http"}
    transports = Registry.collect(plugin_manager([SharedFolder()])).transports
    assert set(transports) == {"bundle", "http", "folder"}
    assert transports["folder"].label == "共享文件夹 (shared folder)"
    assert callable(transports["folder"].send) and callable(transports["folder"].receive)
    assert transports["http"].receive is None  # HTTP receives through its route
    listed = json.loads(invoke("plugins", "--json", plugins=[SharedFolder()]).stdout)
    assert sorted(p["name"] == "xinfang.sync.plugin" for p in listed
                  if "xinfang_transports" in p["hooks"]) == [False, True]
    with pytest.raises(PluginError, match="传输方式“folder”登记了两次"):
        Registry.collect(plugin_manager([SharedFolder(), SharedFolder()]))


def test_a_plugin_transport_moves_events_between_real_nodes(make_node, tmp_path):
    county, town = _tree(make_node, (SharedFolder(),))
    case_id = api.register_case(town, case_input(area=VILLAGE), today=TODAY)
    transports = town.registry.transports
    folder = tmp_path / "share"
    summary = transports["folder"].send(town, "测试县", folder)
    assert summary.events >= 1
    (imported,) = transports["folder"].receive(county, folder)
    assert imported.applied == summary.events and list(folder.iterdir()) == []
    assert api.get_case(county, case_id).status == "registered"
    # the built-in bundle transport, found by name in the same registry
    api.take_step(town, case_id, "accept", {"date": "2026-01-06"}, today=TODAY)
    transports["bundle"].send(town, "测试县", tmp_path / "stick.xfb")
    county.registry.transports["bundle"].receive(county, tmp_path / "stick.xfb")
    assert api.get_case(county, case_id).status == "accepted"


def test_a_hook_implemented_with_a_wrong_argument_name_is_a_one_line_plugin_error():
    class WrongArgument:
        @hookimpl
        def xinfang_vocabulary(self, nme):
            return None

    with pytest.raises(PluginError, match="实现钩子有误") as caught:
        get_plugin_manager([WrongArgument()])
    assert "\n" not in str(caught.value) and "nme" in str(caught.value)
