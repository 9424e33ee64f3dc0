"""The web view as a plugin: its commands and its pages.

Registered like the built-in plugins (``app.DEFAULT_PLUGINS`` and an entry
point of the same name): its pages come through ``xinfang_routes`` exactly
as a third party's would (``app.routes``: every one a ``page=True`` route of
the node's ``NodeApp``, beside sync), and a node without the plugin has no
accounts commands and no pages.
"""

from __future__ import annotations

from xinfang import hookimpl


@hookimpl
def xinfang_register_commands(cli, registry):
    from .app import web_command
    from .commands import user_group

    cli.add_command(user_group)
    cli.add_command(web_command)


@hookimpl
def xinfang_routes():
    from .app import routes

    return routes()
