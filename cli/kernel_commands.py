"""Commands over the kernel: loaded plugins, held records, synced policy, reports."""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import click

from xinfang.core import held as held_mod
from xinfang.core import policy, reports
from xinfang.core.plugins import Registry, plugin_infos

from .base import App, Group, pass_app
from .entities import parse_assignments
from .output import emit, json_option, table


@click.command("plugins")
@json_option
@pass_app
def plugins_command(app: App, as_json):
    """已加载的插件：版本、实现的钩子、记录类型、报表和路由."""
    infos = [attrs.asdict(p) for p in plugin_infos(Registry.collect(app.pm))]
    emit(infos, as_json, lambda rows: table(
        [[r["name"], r["version"], "、".join(r["entity_types"]) or "—",
          "、".join(r["reports"]) or "—", "、".join(r["routes"]) or "—",
          " ".join(h.removeprefix("xinfang_") for h in r["hooks"])] for r in rows],
        ["插件", "版本", "记录类型", "报表", "路由", "钩子"]))


@click.command("held")
@json_option
@pass_app
def held_command(app: App, as_json):
    """本节点暂存未处理的记录（缺少插件或策略代码），按类型列出."""
    with app.open_node() as node:
        rows = [attrs.asdict(g) for g in held_mod.held(node)]
    emit(rows, as_json, lambda rs: table(
        [[r["entity"], r["entities"], r["events"], "、".join(r["authors"]), r["reason"]]
         for r in rs], ["记录类型", "记录数", "事件数", "写入节点", "原因"])
        if rs else "没有暂存的记录 (nothing held)")


@click.group("policy", cls=Group)
def policy_group():
    """策略：各节点折叠视图时所依据的同步设定."""


@policy_group.command("show")
@click.option("--area", help="查看某区划适用的策略 [默认本节点区划].")
@json_option
@pass_app
def policy_show(app: App, area, as_json):
    """列出每项策略在本区划的现行值、设定层级和版本."""
    with app.open_node() as node:
        rows = [attrs.asdict(v) for v in policy.policy_in_force(node, area)]
        version = policy.policy_version(node.db)
    emit({"version": version, "policy": rows} if as_json else rows, as_json, lambda rs: table(
        [[r["label"], r["key"], r["value"], "默认" if r["default"] else r["area"],
          r["version"] or "", r["set_by"] or ""] for r in rs],
        ["策略", "键", "现行值", "设定区划", "版本", "设定节点"]) + f"\n策略版本 {version}")


@policy_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--area", help="适用区划 [默认本节点区划].")
@json_option
@pass_app
def policy_set(app: App, key, value, area, as_json):
    """设定一项策略（根节点，或获下放的节点为本辖区设定），随同步下发."""
    with app.open_node() as node:
        event = policy.set_policy(node, key, value, area)
        shown = next(v for v in policy.policy_in_force(node, area) if v.key == key)
    emit({"key": key, "value": shown.value, "area": shown.area, "version": shown.version,
          "event": event.id}, as_json,
         lambda d: f"已设定策略 {d['key']} = {d['value']}（区划 {d['area']}，第 {d['version']} 版），"
                   "同步后下级节点按此重新折叠")


@click.group("report", cls=Group)
def report_group():
    """报表：插件登记的统计与台账."""


@report_group.command("list")
@json_option
@pass_app
def report_list(app: App, as_json):
    """列出可用的报表及其参数."""
    registry = Registry.collect(app.pm)
    rows = [{"name": r.name, "label": r.label, "description": r.description,
             "params": [{"name": p.name, "label": p.label, "required": p.required}
                        for p in r.params]} for r in registry.reports.values()]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], r["label"], "、".join(p["name"] for p in r["params"]) or "—",
          r["description"]] for r in rs], ["报表", "名称", "参数", "说明"]) if rs else "没有报表")


@report_group.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, help="报表参数：名称=值，可重复.")
@click.option("--format", "fmt", default="text", show_default=True, help="text / json / csv …")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="写入文件 [默认输出到屏幕].")
@pass_app
def report_run(app: App, name, params, fmt, out):
    """运行一份报表，按所选格式输出."""
    with app.open_node() as node:
        result = reports.run_report(node, name, parse_assignments(params, "--param"))
        data = reports.render(node.registry, result, fmt)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"无法写入 {out}：{exc.strerror}") from None
    click.echo(f"已写出 {out}（{len(result.rows)} 行）", err=True)


COMMANDS = (plugins_command, held_command, policy_group, report_group)
