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
