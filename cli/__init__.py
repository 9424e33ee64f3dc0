"""The ``xinfang`` command: a thin shell over the Python API.

What a plugin's commands need (``xinfang_register_commands``) is re-exported
here, so a plugin never imports from the modules behind it.
"""

from .base import App, Group, pass_app
from .output import emit, json_option, table

__all__ = ["App", "Group", "pass_app", "emit", "json_option", "table"]
