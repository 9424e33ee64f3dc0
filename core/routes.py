"""Web routes a plugin registers: what ``xinfang serve`` answers besides sync.

A route is a path, the methods it takes and a handler ``(node, request) ->
Response``; the node's WSGI application (``xinfang.sync.server.NodeApp``)
dispatches to it. Handlers raise ``XinfangError`` for bad input, which the
application answers as 400 with the message, never 500.

A path is matched exactly first; then a path with one ``{name}`` segment
(``/cases/{id}``, ``/cases/{id}/step``) matches any one segment in its place,
or only those matching a regular expression when written ``{name:regex}``
(``/cases/{id:[0-9-]+}``), and the handler finds the segment in
``request.params``. A route with ``page=True`` answers HTML to a browser: the
application then answers its ``XinfangError`` as an HTML page (400, the
message in the request's language), and a browser's request for an unknown
path as a 404 page; every other route keeps JSON errors.
"""

from __future__ import annotations

import re
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qsl

import attrs

#: the cookie naming the language a browser chose (``zh_CN`` or ``en``)
LANGUAGE_COOKIE = "xinfang_lang"
_SEGMENT = re.compile(r"\A\{([a-z_][a-z0-9_]*)(?::(.+))?\}\Z")


@attrs.frozen
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    remote: str | None = None
    #: the values of the path's ``{name}`` segment (``{"id": "431202-2026-100001"}``)
    params: dict[str, str] = attrs.Factory(dict)

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies of the ``Cookie`` header (a header that cannot be read: none)."""
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a
        name given twice); any other body: empty."""
        kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def accepts_html(self) -> bool:
        """Whether the caller is a browser asking for a page (``Accept: text/html``)."""
        return "text/html" in self.headers.get("accept", "")

    def language(self) -> str | None:
        """The language the caller asked for: the ``xinfang_lang`` cookie, else the first
        language of ``Accept-Language`` (None: the node's own)."""
        from .i18n import normalize

        chosen = normalize(self.cookies.get(LANGUAGE_COOKIE))
        if chosen:
            return chosen
        first = self.headers.get("accept-language", "").split(",")[0].split(";")[0]
        return normalize(first.strip())


@attrs.frozen
class Response:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def data(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@attrs.frozen
class Route:
    name: str
    path: str
    handler: Callable[[Any, Request], Response] = attrs.field(eq=False)
    methods: tuple[str, ...] = attrs.field(default=("GET",), converter=tuple)
    #: a msgid (``N_("...")``), shown translated where routes are listed
    label: str = ""
    #: whether the route answers HTML pages (errors too are then pages, not JSON)
    page: bool = False

    def match(self, path: str) -> dict[str, str] | None:
        """The ``{name}`` value if ``path`` is this route's pattern, else None (an exact
        path matches with no values)."""
        mine, given = self.path.split("/"), path.split("/")
        if len(mine) != len(given):
            return None
        found: dict[str, str] = {}
        for want, got in zip(mine, given):
            pattern = _SEGMENT.match(want)
            if pattern is None:
                if want != got:
                    return None
            elif not got or (pattern.group(2) and not re.fullmatch(pattern.group(2), got)):
                return None
            else:
                found[pattern.group(1)] = got
        return found

    @property
    def patterned(self) -> bool:
        return any(_SEGMENT.match(part) for part in self.path.split("/"))

    @property
    def prefix(self) -> str:
        """The first segment of the path (``/cases`` of ``/cases/{id}``; ``/`` alone has
        none): a page route's prefix makes unknown paths under it 404 pages."""
        first = self.path.split("/")[1] if self.path.count("/") else ""
        return f"/{first}" if first and not _SEGMENT.match(first) else ""


def find_route(routes, path: str) -> tuple[Route | None, dict[str, str]]:
    """The route serving ``path``: an exact path first, then a pattern (in the order
    the routes were registered); ``(None, {})`` if none."""
    routes = list(routes)
    for route in routes:
        if not route.patterned and route.path == path:
            return route, {}
    for route in routes:
        if route.patterned:
            found = route.match(path)
            if found is not None:
                return route, found
    return None, {}
