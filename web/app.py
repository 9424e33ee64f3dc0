"""The web view's machinery: templates, the session and CSRF checks around every page,
login, logout, the language choice, the stylesheet and ``xinfang web``.

Every page is a kernel ``Route`` with ``page=True`` (registered through
``xinfang_routes`` in ``plugin.py``), served by the node's own ``NodeApp``
beside sync. ``page()`` wraps a handler: no live session sends the browser to
``/login``; a POST without the session's CSRF token (the hidden field
``csrf``) is a 403 page and changes nothing; the role check is the handler's
(``Forbidden``, 403; ``Page.require_sight`` for the pages that show records);
a ``NotFound`` is a 404 page and any other ``XinfangError`` a 400 page with
its message, so a handler only catches what it answers otherwise (its form
again); the node's operator is the session's user for the request.

Language: the ``xinfang_lang`` cookie (set by the form ``POST /lang``), else the
browser's ``Accept-Language``, else the node's language (``XINFANG_LANG``, the
locale, zh_CN); the kernel applies it around every page route
(``Request.language``), through the same catalogue as the CLI. Template text
is not extracted from templates: it lives in ``LABELS`` (msgids) and reaches
templates translated, as ``t.name``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import attrs
import click
import jinja2

from xinfang.cli.base import command, listening
from xinfang.core import areas, i18n
from xinfang.core.errors import InvalidInput, NotFound, XinfangError
from xinfang.core.i18n import N_, _
from xinfang.core.routes import LANGUAGE_COOKIE, Request, Response, Route

from . import accounts, sessions, users
from .accounts import LoginFailed, LoginFormRefused, LoginThrottled
from .sessions import CookiePolicy, Session

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
COOKIES = CookiePolicy()
HTML = "text/html; charset=utf-8"
#: sent with every page: nothing from elsewhere, no framing, no caching of case data
PAGE_HEADERS = (("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                 "frame-ancestors 'none'; form-action 'self'"),
                ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                ("Cache-Control", "no-store"), ("Referrer-Policy", "same-origin"))

#: every text the templates show, as msgids (templates are not extracted: text is here)
LABELS = {
    "app": N_("Petition work desk"), "home": N_("Home page"), "dashboard": N_("Dashboard"),
    "cases": N_("Case list"), "register": N_("Register a case"), "logout": N_("Log out"),
    "login": N_("Log in"), "user": N_("User"), "password": N_("Password"),
    "language": N_("Language"), "switch": N_("Switch"), "signed_in_as": N_("Signed in as"),
    "month": N_("Month"), "figures": N_("Figures for the month"),
    "overdue_count": N_("Overdue cases"), "open_conflicts": N_("Open conflicts"),
    "quarantined": N_("Quarantined events"), "held": N_("Held records"),
    "trend": N_("Monthly trend (12 months)"), "area": N_("Area"), "status": N_("Status"),
    "category": N_("Category"), "channel": N_("Channel"), "kind": N_("Request type"),
    "overdue_only": N_("Only overdue"), "search": N_("Search the request text"),
    "filter": N_("Filter"), "case_number": N_("Case number"), "people": N_("People"),
    "received": N_("Received"), "request": N_("Request"), "flags": N_("Flags"),
    "no_cases": N_("No cases match."), "any": N_("(any)"), "petitioners": N_("Petitioners"),
    "reveal": N_("Show the petitioners (written to the access log)"),
    "not_shown": N_("Petitioners are not shown; showing them is written to the access log."),
    "deadlines": N_("Deadlines"), "history": N_("History"), "conflicts": N_("Conflicts"),
    "steps": N_("Steps"), "take": N_("Take this step"), "name": N_("Name"),
    "id_number": N_("ID number"), "phone": N_("Phone"), "address": N_("Address"),
    "representative": N_("[representative]"), "start": N_("Start"), "due": N_("Due"),
    "state": N_("State"), "date": N_("Date"), "step": N_("Step"), "operator": N_("Operator"),
    "details": N_("Details"), "headcount": N_("Headcount"), "petitioner": N_("Petitioner"),
    "save": N_("Register"), "no_steps": N_("No step can be taken now."),
    "error": N_("The request cannot be done"), "forbidden": N_("Not allowed"),
    "not_found": N_("Page not found"), "total": N_("Total"), "reason": N_("Reason"),
    "repeat_of": N_("repeat of"), "required": N_("required"), "yes": N_("yes"), "no": N_("no"),
    "overdue": N_("overdue"), "met_on": N_("met"), "not_yet_due": N_("not yet due"),
}




def add_labels(labels: dict[str, str]) -> None:
    """Make ``labels`` (name -> msgid) readable as ``t.name`` in every template; a name
    already taken for another text is a mistake in the code (``ValueError``)."""
    for name, msgid in labels.items():
        if LABELS.setdefault(name, msgid) != msgid:
            raise ValueError(name, LABELS[name])  # a clash in the code: the name is taken


@attrs.frozen
class MenuItem:
    path: str
    #: a msgid, shown translated
    label: str
    #: the ``users`` action a role needs to see the entry (None: everyone logged in)
    action: str | None = None
    #: entries are shown by order, then as added
    order: int = 50


MENU: list[MenuItem] = [MenuItem("/", N_("Dashboard"), order=0),
                        MenuItem("/cases", N_("Case list"), order=10),
                        MenuItem("/cases/new", N_("Register a case"), users.REGISTER, order=11)]


def add_menu(path: str, label: str, action: str | None = None, order: int = 50) -> None:
    """Add an entry to the top menu (once: adding a path again changes nothing)."""
    if all(item.path != path for item in MENU):
        MENU.append(MenuItem(path, label, action, order))


def menu_for(node, user) -> list[tuple[str, str]]:
    """(path, label) of the menu entries ``user`` may open on ``node``, in order: an entry
    whose page no plugin of the node serves is not shown (a module adds its entries once
    per process, which may serve nodes with different plugins)."""
    if user is None:
        return []
    served = node.registry.routes_by_path
    shown = sorted((item for item in MENU if item.path in served
                    and (item.action is None or user.may(item.action))),
                   key=lambda item: item.order)
    return [(item.path, _(item.label)) for item in shown]


#: each language by its own name, as a language menu shows them
LANGUAGE_NAMES = (("zh_CN", "中文"), ("en", "English"))  # i18n: identifier


class Labels:
    """``LABELS`` in the request's language, read by templates as ``t.cases``."""

    def __getattr__(self, name: str) -> str:
        try:
            return _(LABELS[name])
        except KeyError:
            raise AttributeError(name) from None


TEMPLATES = jinja2.FileSystemLoader([str(HERE / "templates")])
ENV = jinja2.Environment(loader=TEMPLATES, autoescape=True, undefined=jinja2.StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True)


def add_templates(directory: Path) -> None:
    """Search ``directory`` for templates too, after the web view's own."""
    if str(directory) not in TEMPLATES.searchpath:
        TEMPLATES.searchpath.append(str(directory))


class Forbidden(XinfangError):
    """The user's role may not do this here: a 403 page."""


@attrs.define
class Page:
    """One request to a page: the node, the request, the session (None on /login)."""

    node: Any
    request: Request
    session: Session | None = None
    _form: dict[str, str] | None = None

    @property
    def user(self):
        return self.session.user if self.session else None

    @property
    def form(self) -> dict[str, str]:
        if self._form is None:
            self._form = self.request.form()
        return self._form

    def require(self, allowed: bool) -> None:
        if not allowed:
            raise Forbidden(N_("your role ({role}) may not do this here"),
                            role=self.user.role.label if self.user else "—")

    @property
    def home_area(self) -> str:
        """The area the user works for, within this node's jurisdiction (else the node's own
        area), so no page defaults to an area this node holds nothing of."""
        area = self.user.area
        return area if self.node.in_jurisdiction(area) else self.node.info.area

    def sees_records(self) -> bool:
        """Whether the role sees cases and records at all (its own area's, or all)."""
        return self.user.may(users.VIEW_AREA) or self.user.may(users.VIEW_ALL)

    def require_sight(self, area: str | None = None) -> None:
        """403 unless the role sees records, and (given) unless the user may see ``area``:
        the check every page that shows records makes before reading them."""
        self.require(self.sees_records())
        if area is not None and not self.user.may_see(area):
            raise Forbidden(N_("area {area} is outside your area {own}"), area=area,
                            own=self.user.area)

    def asked_area(self) -> str:
        """The ``area`` the query asks for (default ``home_area``), if the user may see it:
        an area this node does not hold is bad input (400), one outside the user's a 403."""
        asked = (self.request.query.get("area") or "").strip()
        if not asked:
            return self.home_area
        areas.check_code(asked)
        if not self.node.in_jurisdiction(asked):
            raise InvalidInput(N_("area {area} is outside this node's jurisdiction {own}"),
                               area=asked, own=self.node.info.area)
        self.require(self.user.may_see(asked))
        return asked

    def render(self, template: str, status: int = 200, headers=(), **values) -> Response:
        language = i18n.language()
        body = ENV.get_template(template).render(
            t=Labels(), _=_, user=self.user, csrf=self.session.csrf if self.session else "",
            lang=language, html_lang="zh-CN" if language == "zh_CN" else language,
            languages=LANGUAGE_NAMES, path=self.request.path, menu=menu_for(self.node, self.user),
            node=self.node.info, **values)
        return Response(body, status=status, content_type=HTML,
                        headers=(*PAGE_HEADERS, *headers))


def typed(form: dict[str, str], prefix: str) -> dict[str, str]:
    """The values a form gives for fields named ``prefix…`` (a step's ``f.date``), without
    the empty ones: what the API is given, as the CLI gives only the options typed."""
    return {k[len(prefix):]: v.strip() for k, v in form.items()
            if k.startswith(prefix) and v.strip()}


def redirect(location: str, headers=()) -> Response:
    return Response(b"", status=303, content_type=HTML,
                    headers=(("Location", location), *PAGE_HEADERS, *headers))


def error(page: Page, status: int, message: str) -> Response:
    title = {400: "error", 403: "forbidden", 404: "not_found"}.get(status, "error")
    return page.render("error.html", status=status, title=getattr(Labels(), title),
                       message=message)


def page(handler: Callable[[Page], Response]) -> Callable[[Any, Request], Response]:
    """A handler of a page that needs a session (see the module's docstring)."""
    @functools.wraps(handler)
    def serve(node, request: Request) -> Response:
        current = sessions.session(node, request.cookies.get(COOKIES.name))
        if current is None:
            return redirect("/login?next=" + quote(request.path))
        context = Page(node, request, current)
        if request.method == "POST" and not sessions.check_csrf(current,
                                                                context.form.get("csrf")):
            return error(context, 403, _("the form's security token is missing or wrong: "
                                         "reload the page and send the form again"))
        with sessions.acting_as(node, current):
            try:
                return handler(context)
            except Forbidden as exc:
                return error(context, 403, str(exc))
            except NotFound as exc:  # what the path names is not here
                return error(context, 404, str(exc))
            except XinfangError as exc:
                return error(context, 400, str(exc))
    return serve


# -- login, logout, language, stylesheet --------------------------------------------


def _local(path: str | None) -> str:
    """A path on this site only (``/cases``), so a link cannot send the browser away."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _login_form(context: Page, target: str, status: int = 200, message: str | None = None,
                name: str = "") -> Response:
    """The login form with a fresh token, in its hidden field and in a short-lived cookie
    (``sessions.login_token``: no session needed)."""
    token = sessions.login_token(context.node)
    return context.render("login.html", status=status, message=message, name=name,
                          next=target, login_csrf=token,
                          headers=(("Set-Cookie", COOKIES.login_header(token)),))


def login(node, request: Request) -> Response:
    context = Page(node, request)
    target = _local(request.query.get("next") or context.form.get("next"))
    if request.method == "GET":
        return _login_form(context, target)
    name, password = context.form.get("name", ""), context.form.get("password", "")
    try:
        accounts.check_login_form(node, request.cookies.get(sessions.LOGIN_COOKIE),
                                  context.form.get("csrf"))  # before any password
        opened = accounts.authenticate(node, name, password, request.remote or "?")
    except LoginFormRefused as exc:
        return _login_form(context, target, 403, str(exc), name)
    except (LoginFailed, LoginThrottled) as exc:
        status = 429 if isinstance(exc, LoginThrottled) else 401
        return _login_form(context, target, status, str(exc), name)
    return redirect(target, headers=(("Set-Cookie", COOKIES.header(opened.token)),))


@page
def logout(context: Page) -> Response:
    sessions.logout(context.node, context.session.token)
    return redirect("/login", headers=(("Set-Cookie", COOKIES.clearing_header()),))


def choose_language(node, request: Request) -> Response:
    """Remember the browser's language in a cookie (a preference, no session needed)."""
    form = request.form()
    chosen = i18n.normalize(form.get("lang")) or i18n.DEFAULT
    cookie = (f"{LANGUAGE_COOKIE}={chosen}; "  # i18n: identifier
              "Path=/; SameSite=Strict; Max-Age=31536000")
    return redirect(_local(form.get("next")), headers=(("Set-Cookie", cookie),))


def static(node, request: Request) -> Response:
    name = request.params["name"]
    shipped = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    if name not in shipped:
        return Response(_("there is no page {path} here").format(path=request.path),
                        status=404, content_type="text/plain; charset=utf-8")
    kind = {"css": "text/css; charset=utf-8", "svg": "image/svg+xml"}.get(
        name.rsplit(".", 1)[-1], "application/octet-stream")
    return Response(shipped[name].read_bytes(), content_type=kind,
                    headers=(("Cache-Control", "max-age=3600"),
                             ("X-Content-Type-Options", "nosniff")))


def routes() -> list[Route]:
    from . import dashboard, pages, records, reports, status

    return [
        Route("web.login", "/login", login, ("GET", "POST"), N_("Log in"), page=True),
        Route("web.logout", "/logout", logout, ("POST",), N_("Log out"), page=True),
        Route("web.lang", "/lang", choose_language, ("POST",), N_("Language"), page=True),
        Route("web.static", "/static/{name:[A-Za-z0-9_-]+\\.[a-z]+}", static,
              label=N_("Stylesheet"), page=True),
        *dashboard.routes(), *pages.routes(), *reports.routes(), *records.routes(),
        *status.routes(),
    ]


# -- xinfang web ----------------------------------------------------------------------


@command("web", help=N_("Serve the web view (and sync: the same server) over HTTP; log "
                              "in with an account from `xinfang user add`."))
@listening(8780)
@click.pass_context
def web_command(ctx, host, port):
    """``xinfang serve`` with the web view's port: one server, one ``NodeApp``."""
    from xinfang.cli.sync_commands import serve

    click.echo(_("The web view: open http://{host}:{port}/ in a browser and log in").format(
        host=host, port=port), err=True)
    ctx.invoke(serve, host=host, port=port)
