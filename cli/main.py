"""The ``xinfang`` command line: a thin shell over ``xinfang.core`` and plugins.

Every command opens the node, calls one library function and prints the
result; library errors become one-line messages and a non-zero exit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import click
import pluggy

from xinfang import __version__
from xinfang.core import store
from xinfang.core import verify as verify_mod
from xinfang.core.keys import fingerprint
from xinfang.core.errors import XinfangError
from xinfang.core.node import Node, default_home
from xinfang.app import plugin_manager
from xinfang.core.plugins import Registry

from .base import App, Group, pass_app
from .output import advance, emit, json_option, progress
from .entities import add_entity_groups
from .admin_commands import ADMIN_COMMANDS
from .kernel_commands import COMMANDS as KERNEL_COMMANDS
from .sync_commands import COMMANDS


class _Root(Group):
    """The root group: also a file name with a NUL character in it is a one-line error."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValueError as exc:
            if "null byte" not in str(exc):
                raise
            raise click.UsageError("文件名或路径中含有空字符 (NUL)：请检查输入的文件名") from None


def build_cli(pm: pluggy.PluginManager | None = None) -> click.Group:
    """Build the command line for the plugins ``pm`` holds (a fresh set by default)."""
    pm = pm or plugin_manager()

    @click.group(cls=_Root)
    @click.option("--home", type=click.Path(path_type=Path), envvar="XINFANG_HOME",
                  help=f"Node directory [env XINFANG_HOME; default {default_home()}].")
    @click.option("--passphrase", envvar="XINFANG_PASSPHRASE",
                  help="Passphrase of the node's key files [env XINFANG_PASSPHRASE].")
    @click.option("--operator", envvar="XINFANG_OPERATOR",
                  help="Who is operating, recorded in case history [env XINFANG_OPERATOR; "
                       "default the login name].")
    @click.version_option(__version__, prog_name="xinfang")
    @click.pass_context
    def cli(ctx: click.Context, home, passphrase, operator):
        """xinfang: 信访事项 offline-first case work and sync."""
        ctx.obj = App(home or default_home(), passphrase, operator, pm)

    for command in (init, node_group, log_group, rebuild, demo, *COMMANDS, *KERNEL_COMMANDS, *ADMIN_COMMANDS):
        cli.add_command(command)
    registry = Registry.collect(pm)
    pm.hook.xinfang_register_commands(cli=cli, registry=registry)
    add_entity_groups(cli, registry)
    return cli


@click.command()
@click.option("--level", required=True,
              help="village/村, township/乡镇, county/县, city/市 or province/省.")
@click.option("--area", required=True, help="统计用区划代码 of the right length for the level.")
@click.option("--name", required=True, help="The office's name, e.g. 某某村信访站.")
@click.option("--root", is_flag=True, help="This node is the trust anchor (self-signed).")
@click.option("--ask-passphrase", is_flag=True,
              help="Prompt for a passphrase to encrypt the key files.")
@json_option
@pass_app
def init(app: App, level, area, name, root, ask_passphrase, as_json):
    """Create a node: database, keys and (for a root) its certificate."""
    passphrase = app.passphrase
    if ask_passphrase and not passphrase:
        passphrase = click.prompt("Passphrase for the key files", hide_input=True,
                                  confirmation_prompt=True)
    with Node.init(app.home, level=level, area=area, name=name, root=root,
                   passphrase=passphrase, pm=app.pm) as node:
        _show_node(node, as_json, created=True)


@click.group("node", cls=Group)
def node_group():
    """This node's identity and epoch."""


@node_group.command("show")
@json_option
@pass_app
def node_show(app: App, as_json):
    """Print the node and its key fingerprint."""
    with app.open_node() as node:
        _show_node(node, as_json)


@node_group.command("new-epoch")
@json_option
@pass_app
def node_new_epoch(app: App, as_json):
    """Start a new epoch: run this after restoring the node from a backup."""
    with app.open_node() as node:
        epoch = node.new_epoch()
        emit({"epoch": epoch}, as_json, lambda d: f"新纪元 epoch {d['epoch']} 已开始")


def _show_node(node: Node, as_json: bool, created: bool = False) -> None:
    info = node.info
    events = node.db.execute("select count(*) from events").fetchone()[0]
    data = {"home": str(node.home), "name": info.name, "level": info.level, "area": info.area,
            "root": info.root, "fingerprint": info.fingerprint, "author": info.author,
            "encryption_key": info.encryption, "epoch": info.epoch, "events": events,
            "keys_encrypted": node.keys_encrypted, "created": info.created}
    cert = node.certificate
    root = store.get_meta(node.db, "root_author")
    parent = cert.issuer if cert and not cert.self_signed else None
    data.update({"certified": cert is not None and cert.subject == info.author,
                 "root_fingerprint": fingerprint(root) if root else None,
                 "parent": node.author_name(parent) if parent else None})

    def text(d):
        lines = [("已创建节点" if created else "节点") + f"：{d['name']}",
                 f"  层级 level   {info.level_label} ({d['level']})",
                 f"  区划 area    {d['area']}",
                 f"  指纹 fingerprint  {d['fingerprint']}",
                 f"  根节点 root  {'是' if d['root'] else '否'}",
                 f"  纪元 epoch   {d['epoch']}",
                 f"  事件 events  {d['events']}",
                 f"  密钥加密     {'是' if d['keys_encrypted'] else '否'}",
                 f"  证书 certificate  {'有效' if d['certified'] else '尚未注册（xinfang enroll request）'}"
                 + (f"，上级 {d['parent']}" if d["parent"] else ""),
                 f"  根指纹 root  {d['root_fingerprint'] or '—'}",
                 f"  目录 home    {d['home']}"]
        return "\n".join(lines)

    emit(data, as_json, text)


@click.group("log", cls=Group)
def log_group():
    """The event log."""


@log_group.command("verify")
@json_option
@pass_app
def log_verify(app: App, as_json):
    """Re-check every event's hash, chain and signature."""
    with app.open_node() as node:
        total = node.db.execute("select count(*) from events").fetchone()[0]
        with progress("校验事件", total, not as_json) as bar:
            report = verify_mod.verify_log(node.db, advance(bar))
    data = {"ok": report.ok, "events": report.events, "feeds": report.feeds,
            "secrets": report.secrets, "problems": [p.describe() for p in report.problems],
            "excluded": [attrs.asdict(e) for e in report.excluded]}

    def text(d):
        excluded = (f"\n其中 {len(d['excluded'])} 条事件已被排除在视图之外（吊销或分叉之后，"
                    "仍保留在日志中）" if d["excluded"] else "")
        if d["ok"]:
            return (f"日志完好：{d['events']} 条事件、{d['feeds']} 条作者链、{d['secrets']} 个"
                    "密封值全部校验通过 (log verified)" + excluded)
        first = d["problems"][0]
        more = f"\n另有 {len(d['problems']) - 1} 处问题" if len(d["problems"]) > 1 else ""
        return f"日志有问题 (log damaged): {len(d['problems'])} problem(s); first: {first}{more}"

    emit(data, as_json, text)
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--check", is_flag=True, help="Only report differences; keep the stored views.")
@json_option
@pass_app
def rebuild(app: App, check, as_json):
    """Re-fold every view from the log and report differences from the stored views."""
    with app.open_node() as node:
        total = node.db.execute("select count(*) from events").fetchone()[0]
        with progress("重建视图", total, not as_json) as bar:
            report = verify_mod.rebuild(node, check_only=check, progress=advance(bar))
    data = {"events": report.events, "tables": report.tables, "consistent": report.consistent,
            "written": report.written,
            "differences": [{"table": d.table, "only_stored": [list(r) for r in d.only_stored],
                             "only_rebuilt": [list(r) for r in d.only_rebuilt]}
                            for d in report.differences]}

    def text(d):
        head = f"已从 {d['events']} 条事件重建 {d['tables']} 个视图表"
        if d["consistent"]:
            return head + "：与存储的视图完全一致 (views consistent)"
        lines = [head + f"：{len(d['differences'])} 个表与存储的视图不同 (views differed)" +
                 ("，已按日志改正" if d["written"] else "（--check：未写入）")]
        for diff in d["differences"]:
            lines.append(f"  {diff['table']}: {len(diff['only_stored'])} row(s) only in the stored "
                         f"view, {len(diff['only_rebuilt'])} only in the rebuilt view")
            for row in diff["only_stored"][:3]:
                lines.append(f"    stored:  {row}")
            for row in diff["only_rebuilt"][:3]:
                lines.append(f"    rebuilt: {row}")
        return "\n".join(lines)

    emit(data, as_json, text)
    if check and not report.consistent:
        sys.exit(1)


@click.command()
@click.option("--keep", type=click.Path(path_type=Path),
              help="Build the demo in this directory and keep it, instead of a temporary one.")
@pass_app
def demo(app: App, keep):
    """A county, 3 townships and 9 villages syncing by bundle and HTTP (synthetic data)."""
    from xinfang.demo.county import run_demo

    if not run_demo(keep, app.pm):
        sys.exit(1)


def main() -> None:
    """The console entry point: no traceback reaches the user unless asked for."""
    import os

    try:
        command = build_cli()
        command(prog_name="xinfang", standalone_mode=True)
    except XinfangError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line, keep the detail on request
        if os.environ.get("XINFANG_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(exc).__name__}: {exc}); this is a bug in "
                   "xinfang: run again with XINFANG_DEBUG=1 and report the traceback", err=True)
        sys.exit(2)


