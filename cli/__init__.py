"""The ``xinfang`` command: a thin shell over the Python API.

What a plugin's commands need (``xinfang_register_commands``) is re-exported
here, so a plugin never imports from the modules behind it.
"""

from .base import App, Argument, Command, Group, Option, argument, command, group, option, pass_app
from .output import emit, json_option, table

__all__ = ["App", "Argument", "Command", "Group", "Option", "argument", "command", "group",
           "option", "pass_app", "emit", "json_option", "table"]
