"""What every ``xinfang`` command is built on: the context object and the group.

``App`` says how to open this invocation's node, ``pass_app`` hands it to a
command and ``Group`` turns library errors into one-line messages; the
command, option and argument classes that read their texts in the user's
language are in ``texts`` and re-exported here. The main
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
from xinfang.core.i18n import N_, _
from xinfang.core.node import Node

from .output import message_text
from .texts import Argument, Command, Option, _TranslatedCommand, argument, option


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


class Group(_TranslatedCommand, click.Group):
    """A group that reports library errors as one line, never a traceback."""

    command_class = Command
    group_class = type

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except XinfangError as exc:  # its values may be another node's text
            raise click.ClickException(message_text(exc.message)) from None
        except sqlite3.OperationalError as exc:
            raise click.ClickException(_(
                "database error: {error} (is another xinfang process writing to this node?)"
            ).format(error=exc)) from None
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(_(
                "the node's database is damaged ({error}); restore it from a backup and run "
                "`xinfang node new-epoch`").format(error=exc)) from None


def command(*args, **kwargs):
    """``click.command`` making an xinfang ``Command``."""
    return click.command(*args, cls=kwargs.pop("cls", Command), **kwargs)


def group(*args, **kwargs):
    """``click.group`` making an xinfang ``Group``."""
    return click.group(*args, cls=kwargs.pop("cls", Group), **kwargs)


__all__ = ["App", "Argument", "Command", "Group", "Option", "argument", "command", "group",
           "option", "pass_app", "LANG_HELP"]

LANG_HELP = N_("Language of messages: zh_CN (default) or en [env XINFANG_LANG].")


#: ``--host`` help for a server the office's browsers open (the web view)
FOR_BROWSERS = N_("Address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 (or the "
                  "office network's address) for the office's browsers.")


def listening(port: int, host_help: str = FOR_BROWSERS):
    """``--host`` and ``--port`` of a command that serves HTTP, alike wherever one does."""
    def decorate(function):
        function = option("--port", default=port, show_default=True,
                          type=click.IntRange(0, 65535),
                          help=N_("TCP port, 0–65535 (0: any free port)."))(function)
        return option("--host", default="127.0.0.1", show_default=True,
                      help=host_help)(function)
    return decorate
