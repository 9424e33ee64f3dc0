"""The statistics plugin's hook implementations: its reports and the xlsx format."""

from __future__ import annotations

from xinfang import hookimpl

from .reports import REPORTS
from .xlsx import XLSX


@hookimpl
def xinfang_reports():
    return REPORTS


@hookimpl
def xinfang_renderers():
    return [XLSX]


@hookimpl
def xinfang_entity_types():
    from .approval import REPORT_TYPE

    return [REPORT_TYPE]


@hookimpl
def xinfang_validate_event(event, node):
    from . import approval

    if event.entity == approval.ENTITY:
        approval.validate(event)


@hookimpl
def xinfang_register_commands(cli, registry):
    from .approval import add_commands

    add_commands(cli)
