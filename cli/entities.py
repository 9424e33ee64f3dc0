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

from xinfang.core import i18n, kernel, records
from xinfang.core.entities import EntityType, Field, Step
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _

from .base import App, Argument, Command, Group, Option, argument, command, option, pass_app
from .texts import Help
from .output import cleaned, emit, json_option, table

#: ``(node, entity_id, step_name, values) -> event id``: how a step command takes its step
TakeStep = Callable[[Any, str, str, dict[str, Any]], str]
#: ``(node, entity_id) -> dict``: what a step command prints afterwards
Summary = Callable[[Any, str], dict[str, Any]]


#: the headers of ``list`` before the creation fields' labels
LIST_HEADERS = (N_("ID"), N_("State"), N_("Area"))
JSON_HELP = N_("Print JSON on stdout instead of text.")
ENTITY_ID = N_("ENTITY_ID")


def enumeration(items) -> str:
    """Items listed as the language lists them (with 、 in Chinese)."""
    return _(", ").join(items)


def parse_assignments(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    """``name=value`` pairs from repeated options."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(N_("{option} “{pair}” should be written as name=value"),
                               option=what, pair=pair)
        result[key.strip()] = value
    return result


def field_option(field: Field, registry) -> Option:
    """An option for a field; its help (the field's label, help, choices) is composed when
    shown, since the field's help is a plugin's msgid and the language is not known yet."""
    choices = (" / ".join(c.label for c in registry.vocabulary(field.choices))
               if field.choices else "")

    def help_text() -> str:
        text = (_("{label}: {help}").format(label=field.label, help=_(field.help))
                if field.help else field.label)
        if choices:
            text = _("{text} ({choices})").format(text=text, choices=choices)
        return _("{text} [required]").format(text=text) if field.required else text

    return Option([f"--{field.name.replace('_', '-')}", field.name], required=False,
                  help=help_text)


def _record_summary(node, entity: str, entity_id: str) -> dict[str, Any]:
    data = records.get(node, entity, entity_id).to_dict()
    data.pop("history")
    data.pop("conflicts")
    return data


def step_command(entity_type: EntityType, step: Step, registry,
                 take: TakeStep | None = None, summary: Summary | None = None) -> click.Command:
    """One command for one step: an option per field, ``--json``."""
    params: list[click.Parameter] = [Argument(["entity_id"], metavar=ENTITY_ID)]
    params.extend(field_option(field, registry) for field in step.fields)
    params.append(Option(["--json", "as_json"], is_flag=True, help=JSON_HELP))
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
        emit(data, as_json, lambda d: _("{id}: {step} done, now {status}").format(
            id=d["id"], step=step.label, status=d["status_label"]))

    return Command(step.name.replace("_", "-"), params=params, callback=callback,
                   help=lambda: _("{step}: take this step for one {entity}.").format(
                       step=step.label, entity=entity_type.label))


def create_command(entity_type: EntityType, registry) -> click.Command:
    create = entity_type.create
    params: list[click.Parameter] = [field_option(f, registry) for f in create.fields]
    params.append(Option(["--area"], help=N_("Area code [default: this node's area].")))
    params.append(Option(["--field", "fields"], multiple=True,
                         help=N_("A field a plugin added: name=value; may be repeated.")))
    params.append(Option(["--json", "as_json"], is_flag=True, help=JSON_HELP))

    @pass_app
    def callback(app: App, area, fields, as_json, **values):
        given = {k: v for k, v in values.items() if v is not None}
        with app.open_node() as node:
            entity_id = records.create(node, entity_type.name, given, area=area,
                                      fields=parse_assignments(fields, "--field"))
            data = _record_summary(node, entity_type.name, entity_id)
        emit(data, as_json, lambda d: _("Recorded {step}: {id} ({status})").format(
            step=create.label, id=d["id"], status=d["status_label"]))

    return Command(create.name.replace("_", "-"), params=params, callback=callback,
                   help=lambda: _("{step}: add a new {entity}.").format(
                       step=create.label, entity=entity_type.label))


def list_command(entity_type: EntityType, registry) -> click.Command:
    date = kernel.date_field(entity_type)
    states = [s.label for s in registry.lifecycle(entity_type.name).states.values()]

    @command("list", help=lambda: _("List {entity} records, optionally filtered.").format(
        entity=entity_type.label))
    @option("--status", help=lambda: _("State, e.g. {states}.").format(
        states=enumeration(states)))
    @option("--area", help=N_("Area code prefix."))
    @option("--from", "since", help=lambda: (
        _("Start date YYYY-MM-DD (by {field}).").format(field=date.label) if date
        else _("Start date YYYY-MM-DD.")))
    @option("--to", "until", help=N_("End date YYYY-MM-DD."))
    @option("--where", "where", multiple=True,
            help=N_("Filter by field: name=value; may be repeated."))
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
                return _("No {entity} matches.").format(entity=entity_type.label)
            body = table([[r["id"], r["status_label"], r["area"],
                           *(r["values"].get(f.name) for f in columns)] for r in rs],
                         [*(_(h) for h in LIST_HEADERS), *(f.label for f in columns)])
            return body + "\n" + _("{count} in all").format(count=len(rs))

        emit(rows, as_json, text)

    return list_


def record_text(record: dict[str, Any], entity_type: EntityType, node=None) -> str:
    lines = [_("{entity} {id}  [{status}]  area {area}").format(
        entity=entity_type.label, id=record["id"], status=record["status_label"],
        area=record["area"])]
    for field in entity_type.create.fields:
        value = record["values"].get(field.name)
        if value is not None:
            shown = records.value_text(node, field, value) if node is not None else value
            lines.append(f"  {field.label} {shown}")
    for name, value in record["fields"].items():
        lines.append(f"  {name} {value}")
    return "\n".join(lines + history_lines(record))


def history_lines(record: dict[str, Any]) -> list[str]:
    """The history and conflicts of a record or case, as every ``show`` prints them."""
    lines = [_("History:")]
    for h in record["history"]:
        lines.append(f"  {h['date']}  {h['label']}  → {h['status_label']}  {h['node']}/{h['operator']}"
                     + (f"  {h['summary']}" if h["summary"] else ""))
    if record["conflicts"]:
        lines.append(_("Conflicts:"))
        for conflict in record["conflicts"]:
            lines.append(f"  {conflict['type']}: {i18n.show(conflict['reason'])}")
    return lines


def shown_conflicts(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its conflicts' stored reasons in the reader's language."""
    return {**record, "conflicts": [{**c, "reason": i18n.show(c["reason"])}
                                    for c in record["conflicts"]]}


def show_command(entity_type: EntityType, registry) -> click.Command:
    @command("show", help=lambda: _("Everything about one {entity}, with its history.").format(
        entity=entity_type.label))
    @argument("entity_id", metavar=ENTITY_ID)
    @json_option
    @pass_app
    def show(app: App, entity_id, as_json):
        with app.open_node() as node:
            record = shown_conflicts(records.get(node, entity_type.name, entity_id).to_dict())
            text = record_text(cleaned(record), entity_type, node)  # made while open
        emit(record, as_json, lambda _d: text)

    return show


def build_entity_group(entity_type: EntityType, registry, *, name: str | None = None,
                       overrides: tuple[click.Command, ...] = (), take: TakeStep | None = None,
                       summary: Summary | None = None, help: Help = None) -> click.Group:
    """The ``xinfang <entity>`` group; ``overrides`` replace generated commands by name."""
    group = Group(name or entity_type.command or entity_type.name,
                  help=help or (lambda: _("{entity}: {create}, list, show, take steps.").format(
                      entity=entity_type.label, create=entity_type.create.label)))
    for generated in (create_command(entity_type, registry), list_command(entity_type, registry),
                      show_command(entity_type, registry)):
        group.add_command(generated)
    for step in registry.lifecycle(entity_type.name).steps.values():
        if not step.note:  # a note is signed by the node itself, never typed by a person
            group.add_command(step_command(entity_type, step, registry, take, summary))
    for override in overrides:
        group.add_command(override)
    return group


def add_entity_groups(cli: click.Group, registry) -> None:
    """A generated group for each lifecycle entity type no plugin gave commands for."""
    for entity_type in registry.entity_types.values():
        name = entity_type.command
        if entity_type.lifecycle_entity and name and name not in cli.commands:
            cli.add_command(build_entity_group(entity_type, registry))
