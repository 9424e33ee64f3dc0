"""Serving a node over HTTP with waitress: ``xinfang serve``, and a server on a thread.

Kept apart from the protocol (``http``) because it is about sockets and
threads, not about what a request may do.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any, Callable

import attrs

from xinfang.core.errors import ServeError
from xinfang.core.i18n import N_, Message
from xinfang.core.node import Node

from .http import MAX_REQUEST_BYTES, NodeApp
from .trust import own_certificate


def make_server(home: Path, host: str, port: int, passphrase: str | None = None, threads: int = 4,
                pm=None, log: Callable[[str], None] | None = None):
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
                               max_request_body_size=MAX_REQUEST_BYTES)
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
    server.xinfang_node = node  # closed by whoever stops the server
    return server


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
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.effective_port}"

    def start(self) -> "BackgroundServer":
        self.server = make_server(self.home, self.host, self.port, threads=self.threads,
                                  pm=self.pm)
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

        trigger.pull_trigger(shutdown)
        self.thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        trigger.close()
        server.xinfang_node.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
