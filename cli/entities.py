"""``xinfang <entity> …``: commands generated for every lifecycle entity type.

From what a plugin declares (creation fields, states, steps, extension
fields) the kernel's commands are made here: create (named after the
creation step), ``list`` with filters, ``show``, and one command per step,
each a thin shell over ``xinfang.core.kernel``. A plugin may replace any of
them with its own (the case plugin keeps its own ``register``, ``list`` and
``show``) and still get the generated step commands.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from xinfang.core import kernel, records
from xinfang.core.entities import EntityType, Field, Step
from xinfang.core.errors import InvalidInput

from .base import App, Group, pass_app
from .output import emit, json_option, table

#: ``(node, entity_id, step_name, values) -> event id``: how a step command takes its step
TakeStep = Callable[[Any, str, str, dict[str, Any]], str]
#: ``(node, entity_id) -> dict``: what a step command prints afterwards
Summary = Callable[[Any, str], dict[str, Any]]


def parse_assignments(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    """``name=value`` pairs from repeated options."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{what} {pair!r} 应写作 名称=值 (name=value)")
        result[key.strip()] = value
    return result


def field_option(field: Field, registry) -> click.Option:
    help_text = field.label + (f"：{field.help}" if field.help else "")
    if field.choices:
        help_text += "（" + " / ".join(c.label for c in registry.vocabulary(field.choices)) + "）"
    return click.Option([f"--{field.name.replace('_', '-')}", field.name], required=False,
                        help=help_text + ("［必填］" if field.required else ""))


def _record_summary(node, entity: str, entity_id: str) -> dict[str, Any]:
    data = records.get(node, entity, entity_id).to_dict()
    data.pop("history")
    data.pop("conflicts")
    return data


def step_command(entity_type: EntityType, step: Step, registry,
                 take: TakeStep | None = None, summary: Summary | None = None) -> click.Command:
    """One command for one step: an option per field, ``--json``."""
    params: list[click.Parameter] = [click.Argument(["entity_id"])]
    params.extend(field_option(field, registry) for field in step.fields)
    params.append(click.Option(["--json", "as_json"], is_flag=True, help="以 JSON 输出 (print JSON)."))
    entity = entity_type.name

    @pass_app
    def callback(app: App, entity_id: str, as_json: bool, **values):
        given = {k: v for k, v in values.items() if v is not None}
        with app.open_node() as node:
            if take is not None:
                take(node, entity_id, step.name, given)
            else:
                records.take_step(node, entity, entity_id, step.name, given)
            data = (summary or (lambda n, i: _record_summary(n, entity, i)))(node, entity_id)
        emit(data, as_json,
             lambda d: f"{d['id']}：{step.label}完成，当前状态 {d['status_label']}")

    return click.Command(step.name.replace("_", "-"), params=params, callback=callback,
                         help=f"{step.label} ({step.name}).")


def create_command(entity_type: EntityType, registry) -> click.Command:
    create = entity_type.create
    params: list[click.Parameter] = [field_option(f, registry) for f in create.fields]
    params.append(click.Option(["--area"], help="区划代码 [默认本节点的区划]."))
    params.append(click.Option(["--field", "fields"], multiple=True,
                               help="插件增加的字段：名称=值，可重复."))
    params.append(click.Option(["--json", "as_json"], is_flag=True, help="以 JSON 输出 (print JSON)."))

    @pass_app
    def callback(app: App, area, fields, as_json, **values):
        given = {k: v for k, v in values.items() if v is not None}
        with app.open_node() as node:
            entity_id = records.create(node, entity_type.name, given, area=area,
                                      fields=parse_assignments(fields, "--field"))
            data = _record_summary(node, entity_type.name, entity_id)
        emit(data, as_json, lambda d: f"已{create.label} {d['id']}（{d['status_label']}）")

    return click.Command(create.name.replace("_", "-"), params=params, callback=callback,
                         help=f"{create.label}：新建一条{entity_type.label}.")


def list_command(entity_type: EntityType, registry) -> click.Command:
    date = kernel.date_field(entity_type)

    @click.command("list")
    @click.option("--status", help="状态，如 " + "、".join(
        s.label for s in registry.lifecycle(entity_type.name).states.values()))
    @click.option("--area", help="区划代码前缀.")
    @click.option("--from", "since", help="起始日期 YYYY-MM-DD" + (f"（按{date.label}）" if date else ""))
    @click.option("--to", "until", help="截止日期 YYYY-MM-DD.")
    @click.option("--where", "where", multiple=True, help="按字段筛选：名称=值，可重复.")
    @json_option
    @pass_app
    def list_(app: App, status, area, since, until, where, as_json):
        filters = records.RecordFilter(status=status, area=area, since=since, until=until,
                                      values=parse_assignments(where, "--where"))
        with app.open_node() as node:
            rows = [r.to_dict() for r in records.list_records(node, entity_type.name, filters)]
        columns = [f for f in entity_type.create.fields if f.kind != "text" or f is date]

        def text(rs):
            if not rs:
                return f"没有符合条件的{entity_type.label}"
            body = table([[r["id"], r["status_label"], r["area"],
                           *(r["values"].get(f.name) for f in columns)] for r in rs],
                         ["编号", "状态", "区划", *(f.label for f in columns)])
            return f"{body}\n共 {len(rs)} 条"

        emit(rows, as_json, text)

    list_.help = f"列出{entity_type.label}，可筛选."
    return list_


def record_text(record: dict[str, Any], entity_type: EntityType, node=None) -> str:
    lines = [f"{entity_type.label} {record['id']}  【{record['status_label']}】  区划 {record['area']}"]
    for field in entity_type.create.fields:
        value = record["values"].get(field.name)
        if value is not None:
            shown = records.value_text(node, field, value) if node is not None else value
            lines.append(f"  {field.label} {shown}")
    for name, value in record["fields"].items():
        lines.append(f"  {name} {value}")
    return "\n".join(lines + history_lines(record))


def history_lines(record: dict[str, Any]) -> list[str]:
    """办理经过 and 冲突 of a record or case, as every ``show`` prints them."""
    lines = ["办理经过:"]
    for h in record["history"]:
        lines.append(f"  {h['date']}  {h['label']}  → {h['status_label']}  {h['node']}/{h['operator']}"
                     + (f"  {h['summary']}" if h["summary"] else ""))
    if record["conflicts"]:
        lines.append("冲突 (conflicts):")
        for conflict in record["conflicts"]:
            lines.append(f"  {conflict['type']}: {conflict['reason']}")
    return lines


def show_command(entity_type: EntityType, registry) -> click.Command:
    @click.command("show")
    @click.argument("entity_id")
    @json_option
    @pass_app
    def show(app: App, entity_id, as_json):
        with app.open_node() as node:
            record = records.get(node, entity_type.name, entity_id).to_dict()
            text = record_text(record, entity_type, node)
        emit(record, as_json, lambda _: text)

    show.help = f"一条{entity_type.label}的全部信息和办理经过."
    return show


def build_entity_group(entity_type: EntityType, registry, *, name: str | None = None,
                       overrides: tuple[click.Command, ...] = (), take: TakeStep | None = None,
                       summary: Summary | None = None, help: str | None = None) -> click.Group:
    """The ``xinfang <entity>`` group; ``overrides`` replace generated commands by name."""
    group = Group(name or entity_type.command or entity_type.name,
                  help=help or f"{entity_type.label}：{entity_type.create.label}、列出、查看、办理.")
    for command in (create_command(entity_type, registry), list_command(entity_type, registry),
                    show_command(entity_type, registry)):
        group.add_command(command)
    for step in registry.lifecycle(entity_type.name).steps.values():
        group.add_command(step_command(entity_type, step, registry, take, summary))
    for command in overrides:
        group.add_command(command)
    return group


def add_entity_groups(cli: click.Group, registry) -> None:
    """A generated group for each lifecycle entity type no plugin gave commands for."""
    for entity_type in registry.entity_types.values():
        name = entity_type.command
        if entity_type.lifecycle_entity and name and name not in cli.commands:
            cli.add_command(build_entity_group(entity_type, registry))
