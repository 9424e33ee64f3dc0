"""``xinfang case …``: registering, listing and moving 信访事项.

The kernel generates the group and one command per lifecycle step, so a step
a plugin adds gets its command, options and help without CLI code; this
module replaces only ``register``, ``list`` and ``show``, which know about
petitioners, flags and deadlines.
"""

from __future__ import annotations

import click

from xinfang.cli import App, emit, json_option, pass_app, table
from xinfang.cli.base import command, option
from xinfang.cli.entities import build_entity_group, history_lines, parse_assignments
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _, ngettext
from xinfang.core.plugins import Registry

from . import api, find as find_mod

#: the keys a petitioner part may be written with: input words, not messages
_PETITIONER_KEYS = {"name": "name", "姓名": "name",  # i18n: identifier
                    "id": "id_number", "身份证号": "id_number",  # i18n: identifier
                    "phone": "phone", "电话": "phone",  # i18n: identifier
                    "address": "address", "地址": "address"}  # i18n: identifier
_REP_WORDS = {"rep", "representative", "代表"}  # i18n: identifier


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
            raise InvalidInput(N_("cannot read petitioner part “{part}”: write "
                                  "name=…,id=…,phone=…,address=…[,rep]"), part=part)
        values[_PETITIONER_KEYS[key.strip()]] = value.strip()
    if "name" not in values:
        raise InvalidInput(N_("petitioner “{text}” has no name=…"), text=text)
    return api.PetitionerInput(**values)


def build_case_group(registry: Registry) -> click.Group:
    """A fresh ``case`` group for the steps ``registry`` holds."""
    return build_entity_group(
        registry.entity_type(api.ENTITY), registry, name="case", overrides=(register, list_, show, find),
        take=lambda node, case_id, step, given: api.take_step(node, case_id, step, given),
        summary=lambda node, case_id: _summary(api.get_case(node, case_id, reveal=False)),
        help=N_("Cases: register, list and show them, and take them through the handling steps."))


@command("register", help=N_("Register a case."))
@option("-p", "--petitioner", "petitioners", multiple=True, required=True,
        help=N_("A petitioner: name=…,id=…,phone=…,address=…[,rep]; repeat for each person."))
@option("--channel", required=True, help=N_("Channel: a code or its label, e.g. visit."))
@option("--category", required=True, help=N_("Category: a code or its label, e.g. labour."))
@option("--kind", default="appeal", show_default=True,
        help=N_("Kind of request: suggestion, report or appeal (a code or its label)."))
@option("--request", "request_text", required=True, help=N_("The request: what is asked for."))
@option("--received", help=N_("Date received, YYYY-MM-DD [default today]."))
@option("--headcount", type=int, help=N_("Number of people [default the number of petitioners]."))
@option("--area", help=N_("Area code of where the matter lies [default this node's]."))
@option("--went-to", help=N_("Level the petitioner went to: 村, 乡镇, 县, 市, 省 or 京 (a code or "
                             "its label) [default this node's level]."))
@option("--source", help=N_("Source: 群众自行, 上级交办, 国家信访信息系统转办 or 督办 (a code or "
                            "its label) [default 群众自行; 上级交办 for 上级转交办]."))
@option("--field", "fields", multiple=True, help=N_("A plugin's case field: name=value."))
@json_option
@pass_app
def register(app: App, petitioners, channel, category, kind, request_text, received, headcount,
             area, went_to, source, fields, as_json):
    """Petitioners, flags and the area check are the case's own, so not the generated create."""
    data = api.CaseInput(
        petitioners=[parse_petitioner(p) for p in petitioners], channel=channel,
        category=category, kind=kind, request=request_text, received=received,
        headcount=headcount, area=area, fields=parse_assignments(fields, "--field"),
        went_to=went_to, source=source)
    with app.open_node() as node:
        case_id = api.register_case(node, data)
        case = api.get_case(node, case_id, reveal=False)
    emit(_summary(case), as_json,
         lambda d: _("Registered {id}  {flags}").format(id=d["id"], flags=_flags_text(d)).rstrip())


@command("list", help=N_("List cases, filtered."))
@option("--status", help=N_("Status: a code or its label, e.g. accepted."))
@option("--category", help=N_("Category."))
@option("--area", help=N_("Area code prefix."))
@option("--channel", help=N_("Channel."))
@option("--overdue", is_flag=True, help=N_("Only cases with an overdue deadline."))
@option("--due-within", type=int, help=N_("Only cases with a deadline within N days."))
@option("--repeat/--no-repeat", default=None, help=N_("Only repeat petitions (or only not)."))
@option("--collective/--no-collective", default=None,
        help=N_("Only collective visits (or only not)."))
@option("--from", "received_from", help=N_("Received on or after YYYY-MM-DD."))
@option("--to", "received_to", help=N_("Received on or before YYYY-MM-DD."))
@option("--handler", help=N_("Handler (containing this text)."))
@option("--unit", help=N_("Responsible unit (containing this text)."))
@json_option
@pass_app
def list_(app: App, status, category, area, channel, overdue, due_within, repeat, collective,
          received_from, received_to, handler, unit, as_json):
    """Flags and deadlines filter here, which the generated list does not know."""
    filters = api.CaseFilter(status=status, category=category, area=area, channel=channel,
                             overdue=overdue, due_within=due_within, repeat=repeat,
                             collective=collective, received_from=received_from,
                             received_to=received_to, handler=handler, unit=unit)
    with app.open_node() as node:
        cases = [_summary(c) for c in api.list_cases(node, filters)]
    emit(cases, as_json, _list_text)


_LIST_HEADERS = (N_("Case number"), N_("Status"), N_("Channel"), N_("Category"),
                 N_("People"), N_("Received"), N_("Locality"), N_("Flags"))


def _list_text(rows: list[dict]) -> str:
    if not rows:
        return _("No cases match.")
    body = table([[r["id"], r["status_label"], r["channel"], r["category"], r["headcount"],
                   r["received"], r["area"], _flags_text(r)] for r in rows],
                 [_(h) for h in _LIST_HEADERS])
    total = ngettext("{count} case in all", "{count} cases in all", len(rows))
    return body + "\n" + total.format(count=len(rows))


@command("find", help=N_("Find cases by a petitioner's name or ID number (every search is "
                         "written to the access log)."))
@option("--name", help=N_("The petitioner's name (this node must hold the clear values)."))
@option("--id-number", help=N_("The petitioner's ID number (without the clear values, found "
                               "by the same-person tag)."))
@json_option
@pass_app
def find(app: App, name, id_number, as_json):
    """Searching is logged: who looked for whom is part of the access log."""
    with app.open_node() as node:
        found = find_mod.find_cases(node, name=name, id_number=id_number)
    rows = [dict(_summary(f.case), found_by=f.by) for f in found]
    emit(rows, as_json, _list_text)


@command("show", help=N_("A case with its petitioners, deadlines and full history (reading "
                         "is logged)."))
@click.argument("case_id")
@json_option
@pass_app
def show(app: App, case_id, as_json):
    """Reveals the petitioners, so reading is logged in the access log."""
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
        flags.append(_("overdue: {deadline} by {days} days").format(deadline=late["label"],
                                                                     days=late["days"]))
    if case["collective"]:
        flags.append(_("collective visit"))
    if case.get("skipped_level"):
        flags.append(_("level-skipping ({level})").format(level=case["went_to"]))
    if case["repeat_of"]:
        flags.append(_("repeat of {case}").format(case=case["repeat_of"]))
    elif case["first_petition"]:
        flags.append(_("first petition"))
    return " ".join(flags)


#: what ``show`` prints after the case's own values, when the case has them
_HANDLING = ((N_("Responsible unit"), "unit"), (N_("Leader in charge"), "leader"),
             (N_("Handler"), "handler"), (N_("Forwarded to"), "forwarded_to"),
             (N_("Satisfaction"), "rating"), (N_("Level gone to"), "went_to"),
             (N_("Source"), "source"), (N_("Copied units"), "copied"),
             (N_("How the case ended"), "ending"))


def _deadline_state(d: dict) -> str:
    if d["met_on"]:
        return _("met on {date}").format(date=d["met_on"])
    return _("overdue") if d["overdue"] else _("not yet due")


def _case_text(c: dict) -> str:
    lines = [_("Case {id}  [{status}]  {flags}").format(id=c["id"], status=c["status_label"],
                                                       flags=_flags_text(c)),
             "  " + _("channel {channel}  category {category}  kind {kind}  people {headcount}")
             .format(channel=c["channel"], category=c["category"], kind=c["kind"],
                     headcount=c["headcount"]),
             "  " + _("area {area}  received {received}").format(area=c["area"],
                                                                 received=c["received"]),
             "  " + _("request {request}").format(request=c["request"])]
    for label, key in _HANDLING:
        if c.get(key):
            lines.append(f"  {_(label)} {c[key]}")
    if c.get("follow_up"):
        f = c["follow_up"]
        lines.append("  " + _("follow-up {date}: {result} (petitioning ceased: {ceased})").format(
            date=f["date"], result=f["result"], ceased=_("yes") if f["ceased"] else _("no")))
    for label, value in c.get("fields_text", c["fields"]).items():
        lines.append(f"  {label} {value}")
    lines.append(_("Petitioners:"))
    for p in c["petitioners"]:
        parts = [p["name"] or _("(not released)"), p["id_number"], p["phone"], p["address"]]
        mark = "  " + _("[representative]") if p["representative"] else ""
        lines.append("  " + "  ".join(x for x in parts if x) + mark)
    lines.append(_("Deadlines:"))
    for d in c["deadlines"]:
        lines.append(f"  {d['label']:<8} {d['start']} → {d['due']}  {_deadline_state(d)}")
    return "\n".join(lines + history_lines(c))
