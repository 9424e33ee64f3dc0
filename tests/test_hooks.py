"""Each hook a plugin author relies on, taking effect on real nodes.

The example plugin in CONTRIBUTING.md exercises every hook too (tests/test_docs.py);
these tests pin one behaviour per hook with the smallest plugin that shows it.
"""

from __future__ import annotations

import datetime as dt

import click
import pytest
from click.testing import CliRunner

from conftest import COUNTY, TOWNSHIP, VILLAGE, case_input
from xinfang import hookimpl
from xinfang.cli import pass_app
from xinfang.cli.main import build_cli
from xinfang.core import fold, store
from xinfang.core.entities import EntityType
from xinfang.core.errors import InvalidEvent, PluginError
from sqlite_utils.migrations import Migrations
from xinfang.core.node import Draft
from xinfang.core.plugins import Registry, get_plugin_manager
from xinfang.plugins.cases import api
from xinfang.sync import bundle, envelope, trust

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
    with pytest.raises(PluginError, match="registered twice"):
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
