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
from xinfang.core import areas, certs, i18n, store
from xinfang.core import verify as verify_mod
from xinfang.core.i18n import N_, _, ngettext
from xinfang.core.keys import fingerprint
from xinfang.core.errors import XinfangError
from xinfang.core.node import Node, default_home
from xinfang.core.reports import text_width
from xinfang.app import plugin_manager
from xinfang.core.plugins import Registry

from .base import LANG_HELP, App, Group, command, group, listening, option, pass_app
from .texts import NUL_IN_NAME
from .output import advance, emit, json_option, progress
from .entities import add_entity_groups
from .admin_commands import ADMIN_COMMANDS
from .kernel_commands import COMMANDS as KERNEL_COMMANDS
from .sync_commands import COMMANDS


class _Root(Group):
    """The root group: also a file name with a NUL character in it is a one-line error."""

    def main(self, *args, **kwargs):
        """Every invocation starts in the environment's language and leaves it as it was."""
        with i18n.language_scope():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValueError as exc:
            if "null byte" not in str(exc):
                raise
            raise click.UsageError(_(NUL_IN_NAME)) from None


def _use_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        i18n.set_language(value)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Click's ``--version``, its line read from the catalogue when shown, not when built."""
    if value and not ctx.resilient_parsing:
        click.echo(_("%(prog)s, version %(version)s") % {"prog": "xinfang",
                                                          "version": __version__})
        ctx.exit()


def _home_help() -> str:
    return _("Node directory [env XINFANG_HOME; default {home}].").format(home=default_home())


def build_cli(pm: pluggy.PluginManager | None = None) -> click.Group:
    """Build the command line for the plugins ``pm`` holds (a fresh set by default)."""
    pm = pm or plugin_manager()

    @group("xinfang", cls=_Root, help=N_("xinfang: offline-first work on petition cases, "
                                         "synced between offices."))
    @option("--lang", type=click.Choice(i18n.LANGUAGES), is_eager=True, expose_value=False,
            callback=_use_language, help=LANG_HELP)
    @option("--home", type=click.Path(path_type=Path), envvar="XINFANG_HOME", help=_home_help)
    @option("--passphrase", envvar="XINFANG_PASSPHRASE",
            help=N_("Passphrase of the node's key files [env XINFANG_PASSPHRASE]."))
    @option("--operator", envvar="XINFANG_OPERATOR",
            help=N_("Who is operating, recorded in case history [env XINFANG_OPERATOR; "
                    "default the login name]."))
    @option("--version", is_flag=True, expose_value=False, is_eager=True,
            callback=_show_version, help=N_("Show the version and exit."))
    @click.pass_context
    def cli(ctx: click.Context, home, passphrase, operator):
        ctx.obj = App(home or default_home(), passphrase, operator, pm)

    for sub in (init, node_group, log_group, rebuild, demo, *COMMANDS, *KERNEL_COMMANDS,
                *ADMIN_COMMANDS):
        cli.add_command(sub)
    registry = Registry.collect(pm)
    pm.hook.xinfang_register_commands(cli=cli, registry=registry)
    add_entity_groups(cli, registry)
    return cli


def _level_help() -> str:
    """The levels by name and label, as ``Node.init`` takes either."""
    levels = " ".join(f"{lv.name}/{lv.label}" for lv in areas.LEVELS.values())
    return _("The node's level: {levels}.").format(levels=levels)


@command(help=N_("Create a node: database, keys and (for a root) its certificate."))
@option("--level", required=True, help=_level_help)
@option("--area", required=True,
        help=N_("The statistical area code, of the length the level requires."))
@option("--name", required=True,
        help=N_("The office's name, e.g. Moumou Village Petition Office."))
@option("--root", is_flag=True, help=N_("This node is the trust anchor (self-signed)."))
@option("--root-fingerprint",
        help=N_("The root's fingerprint as its office reads it out: the first `enroll "
                "import` must end there."))
@option("--ask-passphrase", is_flag=True,
        help=N_("Prompt for a passphrase to encrypt the key files."))
@json_option
@pass_app
def init(app: App, level, area, name, root, root_fingerprint, ask_passphrase, as_json):
    pin = certs.root_pin(root_fingerprint, root)
    passphrase = app.passphrase
    if ask_passphrase and not passphrase:
        passphrase = click.prompt(_("Passphrase for the key files"), hide_input=True,
                                  confirmation_prompt=True)
    with Node.init(app.home, level=level, area=area, name=name, root=root,
                   passphrase=passphrase, pm=app.pm) as node:
        if pin:
            certs.pin_root(node.db, pin)
        _show_node(node, as_json, created=True)


@group("node", help=N_("This node's identity and epoch."))
def node_group():
    pass


@node_group.command("show", help=N_("Print the node and its key fingerprint."))
@json_option
@pass_app
def node_show(app: App, as_json):
    with app.open_node() as node:
        _show_node(node, as_json)


@node_group.command("new-epoch",
                    help=N_("Start a new epoch: run this after restoring the node from a backup."))
@json_option
@pass_app
def node_new_epoch(app: App, as_json):
    with app.open_node() as node:
        epoch = node.new_epoch()
        emit({"epoch": epoch}, as_json,
             lambda d: _("New epoch {epoch} started.").format(epoch=d["epoch"]))


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
        yes, no = _("yes"), _("no")
        certificate = (_("valid") if d["certified"] else
                       _("not enrolled yet (`xinfang enroll request`)"))
        if d["parent"]:
            certificate = _("{certificate}, issued by {parent}").format(
                certificate=certificate, parent=d["parent"])
        rows = [(_("Level"), f"{info.level_label} ({d['level']})"),
                (_("Area"), d["area"]),
                (_("Fingerprint"), d["fingerprint"]),
                (_("Root node"), yes if d["root"] else no),
                (_("Epoch"), d["epoch"]),
                (_("Events"), d["events"]),
                (_("Keys encrypted"), yes if d["keys_encrypted"] else no),
                (_("Certificate"), certificate),
                (_("Root fingerprint"), d["root_fingerprint"] or "—"),
                (_("Home"), d["home"])]
        head = (_("Created node: {name}") if created else _("Node: {name}")).format(name=d["name"])
        return "\n".join([head, *_aligned(rows)])

    emit(data, as_json, text)


def _aligned(rows: list[tuple[str, object]]) -> list[str]:
    """``  label  value`` lines, the values in one column (wide characters count twice)."""
    width = max(text_width(label) for label, _value in rows)
    return [f"  {label}{' ' * (width - text_width(label))}  {value}" for label, value in rows]


@group("log", help=N_("The event log."))
def log_group():
    pass


@log_group.command("verify", help=N_("Re-check every event's hash, chain and signature, "
                                     "and every sealed value the node keeps."))
@json_option
@pass_app
def log_verify(app: App, as_json):
    from xinfang.core.vault import PassphraseNeeded

    with app.open_node() as node:
        try:
            vault = node.vault
        except PassphraseNeeded:  # the log is checked all the same; the values are not
            vault = None
        total = node.db.execute("select count(*) from events").fetchone()[0]
        with progress(_("Checking events"), total, not as_json) as bar:
            report = verify_mod.verify_log(node.db, advance(bar), vault)
    data = {"ok": report.ok, "events": report.events, "feeds": report.feeds,
            "secrets": report.secrets, "secrets_checked": report.secrets_checked,
            "problems": [p.describe() for p in report.problems],
            "excluded": [attrs.asdict(e) for e in report.excluded]}

    def text(d):
        excluded = len(d["excluded"])
        if d["ok"]:
            if d["secrets_checked"]:
                lines = [_("Log intact: {events} events, {feeds} author feeds and {secrets} "
                           "sealed values all verified.").format(
                               events=d["events"], feeds=d["feeds"], secrets=d["secrets"])]
            else:
                lines = [_("Log intact: {events} events and {feeds} author feeds verified; "
                           "the {secrets} sealed values were not checked, since the node's "
                           "keys have a passphrase: give it with --passphrase or "
                           "XINFANG_PASSPHRASE to check them too.").format(
                               events=d["events"], feeds=d["feeds"], secrets=d["secrets"])]
            if excluded:
                lines.append(ngettext(
                    "{count} of the events is excluded from the views (it came after a "
                    "revocation or a fork; it stays in the log).",
                    "{count} of the events are excluded from the views (they came after a "
                    "revocation or a fork; they stay in the log).",
                    excluded).format(count=excluded))
            return "\n".join(lines)
        count = len(d["problems"])
        lines = [ngettext("Log damaged: {count} problem: {first}",
                          "Log damaged: {count} problems; the first: {first}",
                          count).format(count=count, first=d["problems"][0])]
        if count > 1:
            lines.append(ngettext("{count} more problem.", "{count} more problems.",
                                  count - 1).format(count=count - 1))
        if not d["secrets_checked"]:
            lines.append(_("The {secrets} sealed values were not checked: give the passphrase "
                           "with --passphrase or XINFANG_PASSPHRASE to check them too.").format(
                               secrets=d["secrets"]))
        return "\n".join(lines)

    emit(data, as_json, text)
    if not report.ok:
        sys.exit(1)


@command(help=N_("Re-fold every view from the log and report differences from the stored "
                 "views."))
@option("--check", is_flag=True, help=N_("Only report differences; keep the stored views."))
@json_option
@pass_app
def rebuild(app: App, check, as_json):
    with app.open_node() as node:
        total = node.db.execute("select count(*) from events").fetchone()[0]
        with progress(_("Rebuilding views"), total, not as_json) as bar:
            report = verify_mod.rebuild(node, check_only=check, progress=advance(bar))
    data = {"events": report.events, "tables": report.tables, "consistent": report.consistent,
            "written": report.written,
            "differences": [{"table": d.table, "only_stored": [list(r) for r in d.only_stored],
                             "only_rebuilt": [list(r) for r in d.only_rebuilt]}
                            for d in report.differences]}

    def text(d):
        values = {"events": d["events"], "tables": d["tables"], "count": len(d["differences"])}
        if d["consistent"]:
            return _("Rebuilt {tables} view tables from {events} events: the same as the stored "
                     "views.").format(**values)
        if d["written"]:
            head = _("Rebuilt {tables} view tables from {events} events: {count} differed from "
                     "the stored views and were corrected from the log.")
        else:
            head = _("Rebuilt {tables} view tables from {events} events: {count} differ from "
                     "the stored views (--check: nothing written).")
        lines = [head.format(**values)]
        for diff in d["differences"]:
            lines.append("  " + _("{table}: {stored} rows only in the stored view, {rebuilt} only "
                                  "in the rebuilt view").format(
                table=diff["table"], stored=len(diff["only_stored"]),
                rebuilt=len(diff["only_rebuilt"])))
            lines += ["    " + _("stored: {row}").format(row=row)
                      for row in diff["only_stored"][:3]]
            lines += ["    " + _("rebuilt: {row}").format(row=row)
                      for row in diff["only_rebuilt"][:3]]
        return "\n".join(lines)

    emit(data, as_json, text)
    if check and not report.consistent:
        sys.exit(1)


@command(help=N_("A county, 4 townships and 11 villages syncing by bundle and HTTP (synthetic "
                 "data); with --web, then its web view."))
@option("--keep", type=click.Path(path_type=Path),
        help=N_("Build the demo in this directory and keep it, instead of a temporary one."))
@option("--web", is_flag=True,
        help=N_("Then serve the county's web view, with a 领导 and a 经办人 login printed, "
                "until Ctrl-C."))
@listening(8780)
@pass_app
def demo(app: App, keep, web, host, port):
    from xinfang.demo.county import run_demo

    if not run_demo(keep, app.pm, web=(host, port) if web else None):
        sys.exit(1)


def main() -> None:
    """The console entry point: no traceback reaches the user unless asked for."""
    import os

    try:
        command = build_cli()
        command(prog_name="xinfang", standalone_mode=True)
    except XinfangError as exc:
        click.echo(_("Error: {message}").format(message=exc), err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line, keep the detail on request
        if os.environ.get("XINFANG_DEBUG"):
            raise
        click.echo(_("Error: internal error ({kind}: {error}); this is a bug in xinfang: run "
                     "again with XINFANG_DEBUG=1 and report the traceback").format(
            kind=type(exc).__name__, error=exc), err=True)
        sys.exit(2)


