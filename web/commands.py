"""``xinfang user …``: the web view's local accounts, thin shells over ``accounts``.

Whoever can run commands on the node's directory administers its accounts,
as they administer everything else there. Passwords are asked twice with
hidden input, or read as one line from standard input (``--password-stdin``),
never taken as an option, where the shell's history and the process list
would keep them. Each change is written to the access log under
``--operator``; the last enabled administrator cannot be disabled.
"""

from __future__ import annotations

import sys

import click

from xinfang.cli import App, emit, group, json_option, option, pass_app, table
from xinfang.cli.base import argument
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _

from . import accounts
from .users import ROLES

USER_HEADERS = (N_("User"), N_("Role"), N_("Area"), N_("Status"), N_("Created"))
PASSWORD_STDIN_HELP = N_("Read the password as one line from standard input instead of "
                         "asking for it.")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput(N_("no password on standard input"))
        return line.rstrip("\r\n")
    return click.prompt(_("Password"), hide_input=True,
                        confirmation_prompt=_("Repeat the password"))


@group("user", help=N_("Local user accounts of this node's web view: they never sync."))
def user_group():
    """The account commands."""


@user_group.command("add", help=N_("Add a user of the web view, with a role and an area."))
@argument("name", metavar=N_("USER"))
@option("--role", "role_name", required=True,
        help=lambda: _("The user's role, by its word {labels} or its code {codes}.").format(
            labels="[" + "|".join(r.label for r in ROLES.values()) + "]",
            codes="[" + "|".join(ROLES) + "]"))
@option("--area", help=N_("The area the user works for, inside this node's jurisdiction "
                          "[default: this node's area]."))
@option("--password-stdin", is_flag=True, help=PASSWORD_STDIN_HELP)
@json_option
@pass_app
def add(app: App, name, role_name, area, password_stdin, as_json):
    with app.open_node() as node:
        found, area = accounts.check_new_user(node, name, role_name, area)
        password = _password(password_stdin)
        user = accounts.add_user(node, name, found, password, area)
    emit(user.to_json(), as_json, lambda u: accounts.describe(u, accounts.ADDED_LINE))


@user_group.command("passwd", help=N_("Give a user a new password; their sessions end."))
@argument("name", metavar=N_("USER"))
@option("--password-stdin", is_flag=True, help=PASSWORD_STDIN_HELP)
@json_option
@pass_app
def passwd(app: App, name, password_stdin, as_json):
    with app.open_node() as node:
        accounts.get_user(node, name)
        user = accounts.set_password(node, name, _password(password_stdin))
    emit(user.to_json(), as_json, lambda u: _(accounts.PASSWORD_LINE).format(name=u["name"]))


@user_group.command("disable", help=N_("Stop a user from logging in and end their sessions."))
@argument("name", metavar=N_("USER"))
@json_option
@pass_app
def disable(app: App, name, as_json):
    with app.open_node() as node:
        user = accounts.disable(node, name)
    emit(user.to_json(), as_json, accounts.describe)


@user_group.command("enable", help=N_("Let a disabled user log in again."))
@argument("name", metavar=N_("USER"))
@json_option
@pass_app
def enable(app: App, name, as_json):
    with app.open_node() as node:
        user = accounts.enable(node, name)
    emit(user.to_json(), as_json, accounts.describe)


@user_group.command("list", help=N_("List this node's users, their roles and areas."))
@json_option
@pass_app
def list_command(app: App, as_json):
    with app.open_node() as node:
        users = [u.to_json() for u in accounts.list_users(node)]
    emit(users, as_json, lambda rows: table(
        [[u["name"], f"{u['role_label']} ({u['role']})", u["area"],
          _("disabled") if u["disabled"] else _("enabled"), u["created"][:10]] for u in rows],
        [_(h) for h in USER_HEADERS]) if rows else _("No users."))
