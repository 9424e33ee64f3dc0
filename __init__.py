"""xinfang: an offline-first, plugin-based sync framework for 信访 case work.

A plugin writes ``from xinfang import hookimpl`` and implements hooks from
``xinfang.core.hookspecs``; see CONTRIBUTING.md.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("xinfang")

__all__ = ["hookimpl", "__version__"]
