"""The xinfang application: which plugins it ships, and its plugin manager.

The core knows no workflow; the list of built-in plugins belongs here, to
the application. They are registered exactly as a third party's: by module,
under the same names as their entry points in ``pyproject.toml``, so a node
opened through either path loads the same set.
"""

from __future__ import annotations

from typing import Any, Iterable

import pluggy

from xinfang.core.plugins import get_plugin_manager

DEFAULT_PLUGINS = (
    "xinfang.plugins.cases.plugin",
    "xinfang.plugins.settlements",
    "xinfang.plugins.stats.plugin",
    "xinfang.plugins.zero_report.plugin",
    "xinfang.plugins.supervision.plugin",
    "xinfang.plugins.ledger.plugin",
    "xinfang.sync.plugin",
    "xinfang.web.plugin",
)


def plugin_manager(extra: Iterable[Any] = (), entry_points: bool = True) -> pluggy.PluginManager:
    """The core's plugins, the built-in ones, the installed ones, those named in
    ``XINFANG_PLUGINS``, then ``extra``: the later, the earlier it answers a
    ``firstresult`` hook."""
    return get_plugin_manager(extra, entry_points=entry_points, defaults=DEFAULT_PLUGINS)
