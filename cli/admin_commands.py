"""Looking after a node: backup and restore, and the access log (read by ``core.access``)."""

from __future__ import annotations

from pathlib import Path

import attrs
import click

from xinfang.core import access
from xinfang.core import backup as backup_mod
from xinfang.core.i18n import N_, _
from xinfang.core.node import Node

from .base import App, argument, command, option, pass_app
from .output import emit, json_option, table


def _passphrase(given: str | None, app: App, confirm: bool) -> str:
    return given or app.passphrase or click.prompt(
        _("Passphrase for the keys in the backup"), hide_input=True, confirmation_prompt=confirm)


@command("backup", help=N_(
    "Back up this node: a consistent copy of its database (also while the node runs), "
    "optionally with its private keys, encrypted."))
@option("--out", required=True, type=click.Path(path_type=Path),
        help=N_("The backup file (a new file, e.g. village-20260301.xfbak)."))
@option("--with-keys", is_flag=True,
        help=N_("Back up the private keys too (encrypted with a passphrase); otherwise copy "
                "the `keys/` directory by hand when restoring."))
@option("--passphrase", "key_passphrase",
        help=N_("Passphrase to encrypt the private keys in the backup [default: --passphrase "
                "/ XINFANG_PASSPHRASE, else asked]."))
@json_option
@pass_app
def backup_command(app: App, out, with_keys, key_passphrase, as_json):
    with app.open_node() as node:
        passphrase = _passphrase(key_passphrase, app, confirm=True) if with_keys else None
        if node.passphrase is None:  # key files under the same passphrase open with it too
            node.passphrase = passphrase
        summary = backup_mod.backup(node, out, with_keys=with_keys, passphrase=passphrase)
    emit(attrs.asdict(summary), as_json, lambda d: (_(
        "Backed up {name} to {path}: {events} events, {bytes} bytes, with the private keys "
        "encrypted") if d["with_keys"] else _(
        "Backed up {name} to {path}: {events} events, {bytes} bytes, without the private keys "
        "(copy the `keys/` directory by hand when restoring)")).format(
        name=d["name"], path=d["path"], events=d["events"], bytes=d["bytes"]))


@command("restore", help=N_(
    "Restore a node from a backup file into a new directory and start a new epoch (so it "
    "does not fork from the original node)."))
@argument("backup_file", type=click.Path(path_type=Path), metavar=N_("BACKUP_FILE"))
@option("--home", "target", type=click.Path(path_type=Path),
        help=N_("Restore into this new directory [default: --home / XINFANG_HOME]."))
@option("--passphrase", "key_passphrase",
        help=N_("The passphrase the private keys were encrypted with at backup [default: "
                "--passphrase / XINFANG_PASSPHRASE, else asked]."))
@json_option
@pass_app
def restore_command(app: App, backup_file, target, key_passphrase, as_json):
    manifest = backup_mod.read_manifest(backup_file)
    passphrase = (_passphrase(key_passphrase, app, confirm=False) if manifest["with_keys"]
                  else key_passphrase or app.passphrase)
    with backup_mod.restore(backup_file, target or app.home, passphrase, pm=app.pm) as node:
        data = _restored(node)
    emit(data, as_json, lambda d: (_(
        "Restored {name} ({area}) to {home}: {events} events, new epoch {epoch}; it can go on "
        "writing without forking from the original node; its private keys are encrypted with "
        "that passphrase, give it with --passphrase or XINFANG_PASSPHRASE from now on")
        if d["keys_encrypted"] else _(
        "Restored {name} ({area}) to {home}: {events} events, new epoch {epoch}; it can go on "
        "writing without forking from the original node")).format(
        name=d["name"], area=d["area"], home=d["home"], events=d["events"], epoch=d["epoch"]))


def _restored(node: Node) -> dict:
    info = node.info
    events = node.db.execute("select count(*) from events").fetchone()[0]
    return {"home": str(node.home), "name": info.name, "area": info.area, "epoch": info.epoch,
            "events": events, "keys_encrypted": node.keys_encrypted}


ACCESS_HEADERS = (N_("Time"), N_("Operator"), N_("Type"), N_("Object"), N_("What"))


@command("access-log", help=N_(
    "The access log: who looked at the petitioners' identity of which case and when, "
    "searched by identity, or changed a user account of the web view."))
@option("--case", "case_id", help=N_("Only the reads of this case."))
@option("--user", "who", help=N_("Only what this operator or web user did."))
@json_option
@pass_app
def access_log_command(app: App, case_id, who, as_json):
    with app.open_node() as node:
        rows = [attrs.asdict(e) for e in access.entries(node, access.AccessFilter(case_id, who))]
    emit(rows, as_json, lambda rs: table(
        [[r["at"], r["who"], r["entity"], r["entity_id"], r["what"]] for r in rs],
        [_(h) for h in ACCESS_HEADERS]) + "\n" + _("{count} in all").format(count=len(rs))
        if rs else _("No reads are logged."))


ADMIN_COMMANDS = (backup_command, restore_command, access_log_command)
