"""The administrator's pages: the access log and the node's user accounts.

``/access-log`` is ``xinfang access-log`` (``core.access``) newest first, a
hundred rows a page, filtered by case and by user; it needs
``view_access_log``. ``/users`` is ``xinfang user …`` (``accounts``): the
accounts, and forms to add one, disable or enable one and give one a new
password, with the CLI's validation and messages; it needs ``manage_users``.
Each change is written to the access log under the session's user (the
node's operator for the request), as the CLI writes it under ``--operator``.
The last enabled administrator cannot be disabled (``LastAdministrator``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from xinfang.core import access
from xinfang.core.errors import InvalidInput, XinfangError
from xinfang.core.i18n import N_, _
from xinfang.core.routes import Response, Route

from . import accounts, users
from .app import Page, add_labels, add_menu, page, redirect

add_labels({
    "adm_access_log": N_("Access log"), "adm_case": N_("Case number"),
    "adm_who": N_("User or operator"), "adm_time": N_("Time"), "adm_type": N_("Type"),
    "adm_object": N_("Object"), "adm_what": N_("What"), "adm_none": N_("No reads are logged."),
    "adm_newer": N_("Newer"), "adm_older": N_("Older"),
    "adm_users": N_("Users"), "adm_role": N_("Role"), "adm_created": N_("Created"),
    "adm_enabled": N_("enabled"), "adm_disabled": N_("disabled"),
    "adm_disable": N_("Disable"), "adm_enable": N_("Enable"),
    "adm_new_password": N_("New password"), "adm_repeat": N_("Repeat the password"),
    "adm_set_password": N_("Set the password"), "adm_add": N_("Add a user"),
    "adm_add_button": N_("Add"), "adm_area_default": N_("empty: this node's area"),
    "adm_no_users": N_("No users."),
})
add_menu("/users", N_("Users"), users.MANAGE_USERS, 60)
add_menu("/access-log", N_("Access log"), users.VIEW_ACCESS_LOG, 61)


# -- the access log ---------------------------------------------------------------------


def _page_link(query: access.AccessFilter, number: int) -> str:
    values = {"case": query.case_id or "", "who": query.who or "", "page": number}
    return "/access-log?" + urlencode({k: v for k, v in values.items() if v})


@page
def access_log_page(context: Page) -> Response:
    context.require(context.user.may(users.VIEW_ACCESS_LOG))
    query = context.request.query
    only = access.AccessFilter((query.get("case") or "").strip(),
                               (query.get("who") or "").strip())
    found = access.read_page(context.node, only, access.page_number(query.get("page")))
    return context.render(
        "admin_access_log.html", title=_("Access log"), found=found, only=only,
        total=_("{count} in all").format(count=found.total),
        newer=_page_link(only, found.number - 1) if found.number > 1 else None,
        older=_page_link(only, found.number + 1) if found.number < found.pages else None)


# -- users ------------------------------------------------------------------------------

#: what ``/users?done=…`` says about the user it names, in the CLI's words
DONE = {"added": accounts.ADDED_LINE, "disabled": accounts.USER_LINE,
        "enabled": accounts.USER_LINE, "password": accounts.PASSWORD_LINE}


def _done_message(context: Page) -> str | None:
    query = context.request.query
    line = DONE.get(query.get("done", ""))
    found = users.find_user(context.node.db, query.get("name", "")) if line else None
    if found is None:
        return None
    return accounts.describe(found.to_json(), line)


def _users_page(context: Page, status: int = 200, error: str | None = None,
                failed: str | None = None, values: dict | None = None) -> Response:
    return context.render(
        "admin_users.html", status=status, title=_("Users"),
        rows=accounts.list_users(context.node), roles=list(users.ROLES.values()),
        error=error, failed=failed, values=values or {},
        message=None if error else _done_message(context))


@page
def users_page(context: Page) -> Response:
    context.require(context.user.may(users.MANAGE_USERS))
    return _users_page(context)


def _repeated_password(form: dict[str, str]) -> str:
    password = form.get("password", "")
    if password != form.get("repeat", ""):
        raise InvalidInput(N_("the two passwords differ: type the same password twice"))
    return password


def _add(context: Page) -> str:
    form = context.form
    name = form.get("name", "").strip()
    found, area = accounts.check_new_user(context.node, name, form.get("role", ""),
                                          form.get("area", "").strip() or None)
    accounts.add_user(context.node, name, found, _repeated_password(form), area)
    return name


def _passwd(context: Page) -> str:
    name = context.form.get("name", "")
    accounts.get_user(context.node, name)
    accounts.set_password(context.node, name, _repeated_password(context.form))
    return name


def _disable(context: Page) -> str:
    return accounts.disable(context.node, context.form.get("name", "")).name


def _enable(context: Page) -> str:
    return accounts.enable(context.node, context.form.get("name", "")).name


#: each form's path: what it does, and what ``/users?done=`` then says
ACTIONS = {"add": (_add, "added"), "passwd": (_passwd, "password"),
           "disable": (_disable, "disabled"), "enable": (_enable, "enabled")}


def _action(name: str):
    """The handler of the form ``/users/{name}``: the change, then the list again."""
    change, done = ACTIONS[name]

    @page
    def handle(context: Page) -> Response:
        context.require(context.user.may(users.MANAGE_USERS))
        try:
            changed = change(context)
        except XinfangError as exc:
            values = {k: v for k, v in context.form.items()
                      if k not in ("csrf", "password", "repeat")}
            return _users_page(context, 400, str(exc), name, values)
        return redirect("/users?" + urlencode({"done": done, "name": changed}))

    handle.__name__ = f"users_{name}"
    return handle


def routes() -> list[Route]:
    labels = {"add": N_("Add a user"), "passwd": N_("Set the password"),
              "disable": N_("Disable"), "enable": N_("Enable")}
    return [
        Route("web.access_log", "/access-log", access_log_page, label=N_("Access log"),
              page=True),
        Route("web.users", "/users", users_page, label=N_("Users"), page=True),
        *(Route(f"web.users_{name}", f"/users/{name}", _action(name), ("POST",),
                labels[name], page=True) for name in ACTIONS),
    ]
