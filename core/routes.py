"""Web routes a plugin registers: what ``xinfang serve`` answers besides sync.

A route is a path, the methods it takes and a handler ``(node, request) ->
Response``; the node's WSGI application (``xinfang.sync.http.NodeApp``)
dispatches to it. Handlers raise ``XinfangError`` for bad input, which the
application answers as 400 with the message, never 500.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs


@attrs.frozen
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    remote: str | None = None


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
