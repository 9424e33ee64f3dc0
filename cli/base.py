"""What every ``xinfang`` command is built on: the context object and the group.

``App`` says how to open this invocation's node, ``pass_app`` hands it to a
command and ``Group`` turns library errors into one-line messages. The main
command line, the sync commands and plugins' commands all use them, so they
live here rather than in ``main``, which imports those commands.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import click
import pluggy

from xinfang.core.errors import XinfangError
from xinfang.core.node import Node


@attrs.define
class App:
    """The click context object: how to open this invocation's node."""

    home: Path
    passphrase: str | None
    operator: str | None
    pm: pluggy.PluginManager

    def open_node(self) -> Node:
        node = Node.open(self.home, passphrase=self.passphrase, pm=self.pm)
        if self.operator:
            node.operator = self.operator
        return node


pass_app = click.make_pass_decorator(App)


class Group(click.Group):
    """A group that reports library errors as one line, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except XinfangError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.OperationalError as exc:
            raise click.ClickException(f"database error: {exc} (is another xinfang "
                                       "process writing to this node?)") from None
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"the node's database is damaged ({exc}); restore it "
                                       "from a backup and run `xinfang node new-epoch`") from None
