"""Commands over the kernel: loaded plugins, held records, synced policy, reports."""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import click

from xinfang.core import held as held_mod
from xinfang.core import i18n, policy, reports
from xinfang.core.i18n import N_, _
from xinfang.core.plugins import Registry, plugin_infos

from .base import App, argument, command, group, option, pass_app
from .entities import enumeration, parse_assignments
from .output import emit, json_option, table

PLUGIN_HEADERS = (N_("Plugin"), N_("Version"), N_("Record types"), N_("Reports"),
                  N_("Routes"), N_("Hooks"))
HELD_HEADERS = (N_("Record type"), N_("Record count"), N_("Event count"), N_("Written by"),
                N_("Reason"))
POLICY_HEADERS = (N_("Policy"), N_("Key"), N_("Value in force"), N_("Set for area"),
                  N_("Version"), N_("Set by"))
REPORT_HEADERS = (N_("Report"), N_("Title"), N_("Parameters"), N_("Description"))


def headers(msgids: tuple[str, ...]) -> list[str]:
    return [_(h) for h in msgids]


@command("plugins", help=N_(
    "Loaded plugins: their versions, the hooks they implement, record types, reports and "
    "routes."))
@json_option
@pass_app
def plugins_command(app: App, as_json):
    infos = [attrs.asdict(p) for p in plugin_infos(Registry.collect(app.pm))]
    emit(infos, as_json, lambda rows: table(
        [[r["name"], r["version"], enumeration(r["entity_types"]) or "—",
          enumeration(r["reports"]) or "—", enumeration(r["routes"]) or "—",
          " ".join(h.removeprefix("xinfang_") for h in r["hooks"])] for r in rows],
        headers(PLUGIN_HEADERS)))


@command("held", help=N_(
    "Records this node holds without folding them (a plugin or policy code is missing), "
    "by type."))
@json_option
@pass_app
def held_command(app: App, as_json):
    with app.open_node() as node:
        rows = [{**attrs.asdict(g), "reason": i18n.show(g.reason)} for g in held_mod.held(node)]
    emit(rows, as_json, lambda rs: table(
        [[r["entity"], r["entities"], r["events"], enumeration(r["authors"]), r["reason"]]
         for r in rs], headers(HELD_HEADERS))
        if rs else _("Nothing is held."))


@group("policy", help=N_("Policy: the synced settings every node folds its views by."))
def policy_group():
    """The policy commands."""


@policy_group.command("show", help=N_(
    "List each policy's value in force for this area, the level it was set at, and its "
    "version."))
@option("--area", help=N_("Show the policy that applies to this area [default: this node's "
                          "area]."))
@json_option
@pass_app
def policy_show(app: App, area, as_json):
    with app.open_node() as node:
        rows = [{**attrs.asdict(v), "label": _(v.label)}
                for v in policy.policy_in_force(node, area)]
        version = policy.policy_version(node.db)
    emit({"version": version, "policy": rows} if as_json else rows, as_json, lambda rs: table(
        [[r["label"], r["key"], r["value"], _("default") if r["default"] else r["area"],
          r["version"] or "", r["set_by"] or ""] for r in rs],
        headers(POLICY_HEADERS)) + "\n" + _("Policy version {version}").format(version=version))


@policy_group.command("set", help=N_(
    "Set one policy (at the root, or at a node it was delegated to, for its own "
    "jurisdiction); it travels down with sync."))
@argument("key", metavar=N_("KEY"))
@argument("value", metavar=N_("VALUE"))
@option("--area", help=N_("The area it applies to [default: this node's area]."))
@json_option
@pass_app
def policy_set(app: App, key, value, area, as_json):
    with app.open_node() as node:
        event = policy.set_policy(node, key, value, area)
        shown = next(v for v in policy.policy_in_force(node, area) if v.key == key)
    emit({"key": key, "value": shown.value, "area": shown.area, "version": shown.version,
          "event": event.id}, as_json,
         lambda d: _("Policy {key} set to {value} (area {area}, version {version}); after "
                     "sync the nodes below fold their views again by it").format(
             key=d["key"], value=d["value"], area=d["area"], version=d["version"]))


@group("report", help=N_("Reports: the statistics and ledgers plugins registered."))
def report_group():
    """The report commands."""


@report_group.command("list", help=N_("List the available reports and their parameters."))
@json_option
@pass_app
def report_list(app: App, as_json):
    registry = Registry.collect(app.pm)
    rows = [{"name": r.name, "label": _(r.label),
             "description": _(r.description) if r.description else "",
             "params": [{"name": p.name, "label": _(p.label), "required": p.required}
                        for p in r.params]} for r in registry.reports.values()]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], r["label"], enumeration(p["name"] for p in r["params"]) or "—",
          r["description"]] for r in rs], headers(REPORT_HEADERS)) if rs else _("No reports."))


@report_group.command("run", help=N_("Run one report and print it in the chosen format."))
@argument("name", metavar=N_("REPORT"))
@option("--period", help=N_("The period, for reports that take one: a month 2026-11, a "
                            "quarter 2026-Q4, a year 2026 or a range 2026-03-01..2026-05-31."))
@option("--area", help=N_("The area, for reports that take one [default: this node's area]."))
@option("--param", "params", multiple=True,
        help=N_("A report parameter: name=value; may be repeated."))
@option("--format", "fmt", default="text",
        help=N_("Output format [text|json|csv|xlsx], or another one a plugin adds; `text` by "
                "default."))
@option("--out", type=click.Path(dir_okay=False, path_type=Path),
        help=N_("Write to this file [default: the screen]."))
@pass_app
def report_run(app: App, name, period, area, params, fmt, out):
    given = parse_assignments(params, "--param")
    for key, value in (("period", period), ("area", area)):
        if value is not None:
            if key in given:
                raise click.ClickException(_("give {name} once: as --{name} or as --param "
                                         "{name}=…, not both").format(name=key))
            given[key] = value
    write_report(app, name, given, fmt, out)


def write_report(app: App, name: str, given: dict[str, str], fmt: str,
                 out: Path | None) -> None:
    """Run report ``name`` and write it in format ``fmt`` to ``out`` or the screen: what
    ``report run`` does, for a plugin's own command over one of its reports."""
    with app.open_node() as node:
        reports.find(node.registry, name)
        renderer = node.registry.lookup("renderers", fmt, N_("output format"))
        if renderer.binary and out is None:
            raise click.ClickException(_("the {format} format is a binary file, not for the "
                                     "screen: give --out FILE").format(format=fmt))
        result = reports.run_report(node, name, given)
        data = renderer.render(result)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(_("cannot write {path}: {error}").format(
            path=out, error=exc.strerror)) from None
    click.echo(_("Wrote {path} ({rows} rows)").format(path=out, rows=len(result.rows)), err=True)


DESCRIBE_HEADERS = (N_("Parameter"), N_("Title"), N_("Required"), N_("Default"))
DEFINITION_HEADERS = (N_("Figure"), N_("Title"), N_("Definition"))


@report_group.command("describe", help=N_(
    "Describe one report: its parameters, its columns and what each figure means."))
@argument("name", metavar=N_("REPORT"))
@json_option
@pass_app
def report_describe(app: App, name, as_json):
    report = reports.find(Registry.collect(app.pm), name)
    data = {"name": report.name, "label": _(report.label),
            "description": _(report.description) if report.description else "",
            "params": [{"name": p.name, "label": _(p.label), "required": p.required,
                        "default": None if p.default is None else str(p.default)}
                       for p in report.params],
            "columns": [{"name": c.name, "label": _(c.label), "kind": c.kind}
                        for c in report.columns],
            "definitions": [{"name": d.name, "label": _(d.label),
                             "definition": _(d.definition)} for d in report.definitions]}

    def text(d) -> str:
        parts = [f"{d['label']} ({d['name']})"]
        if d["description"]:
            parts.append(d["description"])
        parts += ["", table([[p["name"], p["label"], _("yes") if p["required"] else _("no"),
                              p["default"] or "—"] for p in d["params"]],
                            headers(DESCRIBE_HEADERS)) if d["params"] else _("No parameters.")]
        if d["definitions"]:
            parts += ["", _("Definitions:")]
            parts += [f"- {x['label']} ({x['name']}){_(': ')}{x['definition']}"
                      for x in d["definitions"]]
        return "\n".join(parts)

    emit(data, as_json, text)


COMMANDS = (plugins_command, held_command, policy_group, report_group)
