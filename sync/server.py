"""Serving a node over HTTP: the WSGI application of its routes (``NodeApp``), waitress
with its limits for ``xinfang serve``, and a server on a thread.

Kept apart from the sync protocol (``http``) because it is about sockets,
threads and status lines, not about what a sync request may do.
"""

from __future__ import annotations

import contextlib
import errno
import html
import json
import threading
import weakref
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl

import attrs

from xinfang.core.errors import Explained, ServeError, XinfangError
from xinfang.core.i18n import N_, Message, _, language_scope
from xinfang.core.node import Node
from xinfang.core.routes import Request, find_route

from . import peers
from .trust import own_certificate

MAX_REQUEST_BYTES = 16 * 1024 * 1024
#: the status lines of the refusals
BAD_REQUEST, UNAUTHORIZED, FORBIDDEN = "400 Bad Request", "401 Unauthorized", "403 Forbidden"
NOT_FOUND, CONFLICT, TOO_LARGE = "404 Not Found", "409 Conflict", "413 Payload Too Large"
#: the heading of an error page, by status line
ERROR_TITLES = {BAD_REQUEST: N_("The request cannot be done"), FORBIDDEN: N_("Not allowed"),
                NOT_FOUND: N_("Page not found")}


#: who the request being served came from and what it did, for the request log
NOTE = threading.local()


class Refused(Explained):
    """A request refused with an HTTP status; the message is rendered in the server's
    language when the answer is written."""

    def __init__(self, status: str, message: str, **args):
        super().__init__(message, **args)
        self.status = status


@attrs.define
class NodeApp:
    """The node's WSGI application: every registered route, one lock.

    SQLite has one writer and the node one connection, so requests are
    served one at a time; a handler's ``XinfangError`` is a 400 with its
    message, never a 500.
    """

    node: Node
    log: Callable[[str], None] | None = None
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def __call__(self, environ, start_response):
        NOTE.peer, NOTE.detail = None, ""
        try:
            status, headers, data = self._serve(environ)
        except (Refused, XinfangError) as exc:
            status = getattr(exc, "status", BAD_REQUEST)
            NOTE.detail = NOTE.detail or str(exc)
            data = json.dumps({"error": str(exc)}, ensure_ascii=False).encode("utf-8")
            headers = [("Content-Type", "application/json; charset=utf-8")]
        except PageError as exc:  # a page route's, or a browser's unknown path
            status, headers, data = exc.answer
        if self.log is not None:  # one line: who, what, the answer, what moved
            self.log(f"{peers.now()} {NOTE.peer or environ.get('REMOTE_ADDR') or '?'} "
                     f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} "
                     f"{status.split()[0]} {NOTE.detail}".rstrip())
        start_response(status, [*headers, ("Content-Length", str(len(data)))])
        return [data]

    def _serve(self, environ):
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET")
        request = Request(method, path, dict(parse_qsl(environ.get("QUERY_STRING", ""))),
                          {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                           if k.startswith("HTTP_")}, b"", environ.get("REMOTE_ADDR"))
        if environ.get("CONTENT_TYPE"):
            request.headers["content-type"] = environ["CONTENT_TYPE"]
        route, params = find_route(self.node.registry.routes.values(), path)
        if route is None or method not in route.methods:
            known = _(", ").join(" ".join((*r.methods, r.path))
                                 for r in self.node.registry.routes.values())
            refusal = Refused(NOT_FOUND, N_("this node does not serve {method} {path}; it "
                                            "serves: {known}"), method=method, path=path,
                              known=known)
            if self._under_a_page(path) and request.accepts_html():
                raise PageError(error_page(request, NOT_FOUND, Message(
                    N_("there is no page {path} here"), path=path))) from None
            raise refusal
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Refused(BAD_REQUEST, N_("Content-Length is not a number")) from None
        if length > MAX_REQUEST_BYTES:
            raise Refused(TOO_LARGE,
                          N_("the request is {length} bytes, over the limit of {limit}"),
                          length=length, limit=MAX_REQUEST_BYTES)
        request = attrs.evolve(request, params=params,
                               body=environ["wsgi.input"].read(length) if length else b"")
        with self.lock:
            if not route.page:
                response = route.handler(self.node, request)
            else:
                with language_scope(request.language()):
                    try:
                        response = route.handler(self.node, request)
                    except (Refused, XinfangError) as exc:
                        NOTE.detail = str(exc)
                        raise PageError(error_page(request, getattr(exc, "status", BAD_REQUEST),
                                                   exc)) from None
        return (f"{response.status} {HTTPStatus(response.status).phrase}",
                [("Content-Type", response.content_type), *response.headers], response.data)

    def _under_a_page(self, path: str) -> bool:
        """Whether ``path`` lies under a page route's prefix (every path, when ``/`` is a
        page): a browser asking for it gets a 404 page rather than the JSON list."""
        return any(r.page and (not r.prefix or path == r.prefix
                               or path.startswith(r.prefix + "/"))
                   for r in self.node.registry.routes.values())


class PageError(Exception):
    """An error answered as an HTML page: ``answer`` is (status line, headers, body)."""

    def __init__(self, answer):
        super().__init__(answer[0])
        self.answer = answer


_PAGE = ("<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">"
         "<title>{title}</title></head>\n<body><h1>{title}</h1>\n<p>{message}</p>\n"
         "<p><a href=\"/\">{home}</a></p></body></html>\n")


def error_page(request: Request, status: str, message) -> tuple[str, list, bytes]:
    """A page route's error as a plain HTML page in the request's language: the status
    and the message (escaped). The web view renders its own richer pages; this is what
    every page route gets from the kernel."""
    with language_scope(request.language()) as lang:
        body = _PAGE.format(lang="zh-CN" if lang == "zh_CN" else lang,
                            title=html.escape(_(ERROR_TITLES.get(status, status))),
                            message=html.escape(str(message)), home=html.escape(_("Home page")))
    return status, [("Content-Type", "text/html; charset=utf-8")], body.encode("utf-8")


#: Open connections at once (waitress's ``connection_limit``; it counts the listening
#: socket and its wake-up pipe too). Requests are served one at a time (one SQLite
#: writer) and a child holds one connection at a time, so more open connections only
#: wait; 64 lets the children of a township or a county all connect at once, while
#: bounding the descriptors and spooled bodies (up to ``MAX_REQUEST_BYTES`` each) that
#: half-sent requests can pin. A connection over the limit waits in the listen backlog
#: until one closes; it is not refused.
CONNECTION_LIMIT = 64
#: Seconds a connection may stay silent before it is closed (``channel_timeout``). A
#: child's ``Client`` gives up after 30 s without a byte (its ``timeout``), so a
#: connection silent that long serves no genuine child; waitress's default, 120 s, let
#: a few silent connections hold every place for two minutes.
IDLE_SECONDS = 30
#: How often silent and overdue connections are looked for (``cleanup_interval``): one
#: closes at most this much after its time is up; a pass over the open connections is cheap.
CLEANUP_SECONDS = 5
#: Seconds a request may take to arrive in full, however steadily it trickles: the idle
#: limit alone lets a sender keep a place for ever with a byte every 29 s. A push of a
#: full page (4 MiB of events) arrives within it over a 56 kbit/s line.
REQUEST_SECONDS = 600


@attrs.frozen
class Limits:
    """How many connections a server holds and how long it waits for one (the
    constants above; tests pass small ones). Not options of ``xinfang serve``: they
    follow from the protocol (one request at a time, the client's timeout, the page
    limit), not from a site's set-up."""

    connections: int = CONNECTION_LIMIT
    idle_seconds: int = IDLE_SECONDS
    cleanup_seconds: int = CLEANUP_SECONDS
    request_seconds: int = REQUEST_SECONDS

    def adjustments(self) -> dict[str, int]:
        return {"connection_limit": self.connections, "channel_timeout": self.idle_seconds,
                "cleanup_interval": self.cleanup_seconds}


def make_server(home: Path, host: str, port: int, passphrase: str | None = None, threads: int = 4,
                pm=None, log: Callable[[str], None] | None = None, limits: Limits = Limits()):
    """A waitress server for the node at ``home`` (call ``.run()`` to serve), with the
    plugins ``pm`` holds (by default the installed ones, as every command has); ``log``
    gets one line per request."""
    from waitress.server import create_server

    if type(port) is not int or not 0 <= port <= 65535:
        raise ServeError(N_("port {port} is not valid: give a port number from 0 to 65535, "
                            "e.g. --port 8765"), port=port)
    node = Node.open(home, passphrase=passphrase, pm=pm)
    try:
        own_certificate(node)
        node.keys  # fail now on a wrong passphrase, not at the first request
        server = create_server(NodeApp(node, log=log), host=host, port=port, threads=threads,
                               max_request_body_size=MAX_REQUEST_BYTES, **limits.adjustments())
    except BaseException as exc:
        node.close()
        if not isinstance(exc, (OSError, ValueError)):  # waitress: ValueError for a bad host
            raise
        hint = (N_("the port is in use or not allowed: choose another --port, or stop the "
                   "program that uses it") if getattr(exc, "errno", None) in (
            errno.EADDRINUSE, errno.EACCES) else
                N_("check --host (an address of this machine, e.g. 0.0.0.0)"))
        why = getattr(exc, "strerror", None) or exc
        raise ServeError(N_("cannot serve on {host}:{port}: {why}; {hint}"), host=host,
                         port=port, why=str(why), hint=Message(hint)) from None
    _bound_arrival(server, limits.request_seconds)
    server.xinfang_node = node  # closed by whoever stops the server
    return server


def _bound_arrival(server, seconds: int) -> None:
    """Close a connection whose request has been arriving for more than ``seconds``.

    Waitress closes only silent connections; this adds a deadline to its periodic
    pass (``maintenance``, run by every listening socket over its own connections).
    A request is timed from the first pass that sees it half-read (waitress makes a
    new parser for each request), so the deadline is kept to within a cleanup
    interval; requests already read in full, being served, are never cut.
    """
    from waitress.server import BaseWSGIServer

    started: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    listeners = getattr(server, "map", None) or server._map  # several addresses, or one

    for listener in [s for s in listeners.values() if isinstance(s, BaseWSGIServer)]:
        def maintenance(now, listener=listener, idle=listener.maintenance) -> None:
            idle(now)
            for channel in list(listener.active_channels.values()):
                parser = channel.request
                if parser is not None and now - started.setdefault(parser, now) > seconds:
                    channel.will_close = True

        listener.maintenance = maintenance


@attrs.define
class BackgroundServer:
    """A waitress server on its own thread, for the demo and tests.

    It is stopped from inside its own loop (through waitress's trigger):
    closing its sockets from another thread races the loop's ``select`` and
    can close a descriptor number some other server has already reused.
    """

    home: Path
    host: str = "127.0.0.1"
    port: int = 0
    threads: int = 4
    pm: Any = None
    limits: Limits = Limits()
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.effective_port}"

    def start(self) -> "BackgroundServer":
        self.server = make_server(self.home, self.host, self.port, threads=self.threads,
                                  pm=self.pm, limits=self.limits)
        self.thread = threading.Thread(target=self.server.run, daemon=True,
                                       name=f"xinfang-serve-{self.home.name}")
        self.thread.start()
        return self

    def stop(self) -> None:
        server = self.server
        trigger = server.trigger

        def shutdown() -> None:  # runs in the server's own loop thread
            for channel in list(server._map.values()):
                if channel is not trigger:
                    channel.close()
            trigger.del_channel()  # nothing left to watch: the loop ends

        # the trigger's descriptor may already be gone (seen once in thousands of stops,
        # under load): its loop cannot be woken then, and ends with its select on that
        # descriptor; the thread is a daemon, so the join below is bounded either way
        with contextlib.suppress(OSError):
            trigger.pull_trigger(shutdown)
        self.thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        trigger.close()
        server.xinfang_node.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
