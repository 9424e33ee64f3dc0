"""Transports a plugin registers: ways to move signed events to a neighbour.

The file bundle (a USB stick) and HTTP are the built-in ones (registered by
``xinfang.sync.plugin``); the commands find them by name in the registry.
``send(node, peer, target)`` moves what the peer lacks (to a file path, or a
URL for HTTP) and ``receive(node, source)`` takes what came, where the
transport has a receiving side of its own (HTTP receives through its route).
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from .i18n import N_


@attrs.frozen
class Transport:
    name: str
    #: a msgid (``N_("...")``), shown translated where transports are listed
    label: str
    send: Callable[..., Any] = attrs.field(eq=False)
    receive: Callable[..., Any] | None = attrs.field(default=None, eq=False)


def find(registry, name: str) -> Transport:
    """The registered transport ``name``, or a clear error naming those there are."""
    return registry.lookup("transports", name, N_("transport"))
