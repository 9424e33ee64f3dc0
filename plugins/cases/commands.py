"""``xinfang case …``: registering, listing and moving 信访事项.

The kernel generates the group and one command per lifecycle step, so a step
a plugin adds gets its command, options and help without CLI code; this
module replaces only ``register``, ``list`` and ``show``, which know about
petitioners, flags and deadlines.
"""

from __future__ import annotations

import click

from xinfang.cli import App, emit, json_option, pass_app, table
from xinfang.cli.entities import build_entity_group, history_lines, parse_assignments
from xinfang.core.errors import InvalidInput
from xinfang.core.plugins import Registry

from . import api, find as find_mod

_PETITIONER_KEYS = {"name": "name", "姓名": "name", "id": "id_number", "身份证号": "id_number",
                    "phone": "phone", "电话": "phone", "address": "address", "地址": "address"}
_REP_WORDS = {"rep", "representative", "代表"}


def parse_petitioner(text: str) -> api.PetitionerInput:
    """``name=王某,id=…,phone=…,address=…,rep`` (Chinese keys work too).

    Only the ASCII comma separates parts, so an address may hold "，".
    """
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part in _REP_WORDS:
            values["representative"] = True
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _PETITIONER_KEYS:
            raise InvalidInput(f"cannot read petitioner part {part!r}: write "
                               "name=…,id=…,phone=…,address=…[,rep]")
        values[_PETITIONER_KEYS[key.strip()]] = value.strip()
    if "name" not in values:
        raise InvalidInput(f"petitioner {text!r} has no name=…")
    return api.PetitionerInput(**values)


def build_case_group(registry: Registry) -> click.Group:
    """A fresh ``case`` group for the steps ``registry`` holds."""
    return build_entity_group(
        registry.entity_type(api.ENTITY), registry, name="case", overrides=(register, list_, show, find),
        take=lambda node, case_id, step, given: api.take_step(node, case_id, step, given),
        summary=lambda node, case_id: _summary(api.get_case(node, case_id, reveal=False)),
        help="信访事项：登记、列出、查看，并按办理流程逐步办理.")


@click.command("register")
@click.option("-p", "--petitioner", "petitioners", multiple=True, required=True,
              help="信访人: name=…,id=…,phone=…,address=…[,rep]; repeat for each person.")
@click.option("--channel", required=True, help="信访形式, e.g. 来访 or visit.")
@click.option("--category", required=True, help="问题类别, e.g. 劳动社保 or labour.")
@click.option("--kind", default="appeal", show_default=True,
              help="诉求类型: 建议意见 / 检举控告 / 申诉求决.")
@click.option("--request", "request_text", required=True, help="诉求: what is asked for.")
@click.option("--received", help="登记日期 YYYY-MM-DD [default today].")
@click.option("--headcount", type=int, help="人数 [default the number of petitioners].")
@click.option("--area", help="问题属地 area code [default this node's].")
@click.option("--field", "fields", multiple=True, help="A plugin's case field: name=value.")
@json_option
@pass_app
def register(app: App, petitioners, channel, category, kind, request_text, received, headcount,
             area, fields, as_json):
    """登记: register a 信访事项."""
    data = api.CaseInput(
        petitioners=[parse_petitioner(p) for p in petitioners], channel=channel,
        category=category, kind=kind, request=request_text, received=received,
        headcount=headcount, area=area, fields=parse_assignments(fields, "--field"))
    with app.open_node() as node:
        case_id = api.register_case(node, data)
        case = api.get_case(node, case_id, reveal=False)
    emit(_summary(case), as_json, lambda d: f"已登记 {d['id']}  {_flags_text(d)}".rstrip())


@click.command("list")
@click.option("--status", help="状态, e.g. 办理中 or accepted.")
@click.option("--category", help="问题类别.")
@click.option("--area", help="区划 prefix.")
@click.option("--channel", help="信访形式.")
@click.option("--overdue", is_flag=True, help="Only cases with an overdue deadline (超期).")
@click.option("--due-within", type=int, help="Only cases with a deadline within N days.")
@click.option("--repeat/--no-repeat", default=None, help="Only 重复访 (or only not).")
@click.option("--collective/--no-collective", default=None, help="Only 集体访 (or only not).")
@click.option("--from", "received_from", help="登记日期从 YYYY-MM-DD 起（含）.")
@click.option("--to", "received_to", help="登记日期到 YYYY-MM-DD 止（含）.")
@click.option("--handler", help="办理人（包含此文字）.")
@click.option("--unit", help="责任单位（包含此文字）.")
@json_option
@pass_app
def list_(app: App, status, category, area, channel, overdue, due_within, repeat, collective,
          received_from, received_to, handler, unit, as_json):
    """List cases, filtered."""
    filters = api.CaseFilter(status=status, category=category, area=area, channel=channel,
                             overdue=overdue, due_within=due_within, repeat=repeat,
                             collective=collective, received_from=received_from,
                             received_to=received_to, handler=handler, unit=unit)
    with app.open_node() as node:
        cases = [_summary(c) for c in api.list_cases(node, filters)]
    emit(cases, as_json, _list_text)


def _list_text(rows: list[dict]) -> str:
    if not rows:
        return "没有符合条件的信访事项 (no cases)"
    body = table([[r["id"], r["status_label"], r["channel"], r["category"], r["headcount"],
                   r["received"], r["area"], _flags_text(r)] for r in rows],
                 ["编号", "状态", "形式", "类别", "人数", "登记日期", "属地", "标记"])
    return f"{body}\n共 {len(rows)} 件"


@click.command("find")
@click.option("--name", help="信访人姓名（须本节点持有明文）.")
@click.option("--id-number", help="信访人身份证号（无明文时按同人标记查找）.")
@json_option
@pass_app
def find(app: App, name, id_number, as_json):
    """按信访人姓名或身份证号查找信访事项（每次查找都记入查阅记录）."""
    with app.open_node() as node:
        found = find_mod.find_cases(node, name=name, id_number=id_number)
    rows = [dict(_summary(f.case), found_by=f.by) for f in found]
    emit(rows, as_json, _list_text)


@click.command("show")
@click.argument("case_id")
@json_option
@pass_app
def show(app: App, case_id, as_json):
    """A case with its petitioners, deadlines and full history (reading is logged)."""
    with app.open_node() as node:
        case = api.get_case(node, case_id).to_dict()
        case["fields_text"] = api.fields_text(node, case["fields"])
    emit(case, as_json, _case_text)


def _summary(case: api.Case) -> dict:
    data = case.to_dict()
    for key in ("petitioners", "deadlines", "history", "conflicts"):
        data.pop(key)
    return data


def _flags_text(case: dict) -> str:
    flags = []
    for late in case.get("overdue", ()):
        flags.append(f"超期:{late['label']}{late['days']}天")
    if case["collective"]:
        flags.append("集体访")
    if case["repeat_of"]:
        flags.append(f"重复访←{case['repeat_of']}")
    elif case["first_petition"]:
        flags.append("初信初访")
    return " ".join(flags)


def _case_text(c: dict) -> str:
    lines = [f"信访事项 {c['id']}  【{c['status_label']}】  {_flags_text(c)}",
             f"  形式 {c['channel']}  类别 {c['category']}  诉求类型 {c['kind']}  人数 {c['headcount']}",
             f"  属地 {c['area']}  登记日期 {c['received']}",
             f"  诉求 {c['request']}"]
    for label, key in (("责任单位", "unit"), ("包案领导", "leader"), ("办理人", "handler"),
                       ("转送交办至", "forwarded_to"), ("满意度", "rating")):
        if c.get(key):
            lines.append(f"  {label} {c[key]}")
    for label, value in c.get("fields_text", c["fields"]).items():
        lines.append(f"  {label} {value}")
    lines.append("信访人:")
    for p in c["petitioners"]:
        parts = [p["name"] or "（未释放）", p["id_number"], p["phone"], p["address"]]
        lines.append("  " + "  ".join(x for x in parts if x) + ("  [代表]" if p["representative"] else ""))
    lines.append("期限:")
    for d in c["deadlines"]:
        state = f"已于 {d['met_on']} 完成" if d["met_on"] else ("超期" if d["overdue"] else "未到期")
        lines.append(f"  {d['label']:<8} {d['start']} → {d['due']}  {state}")
    return "\n".join(lines + history_lines(c))
