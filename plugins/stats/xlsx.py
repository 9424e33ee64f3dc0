"""An Excel workbook of any report, laid out as offices keep their 报表.

The first sheet has a title row, the header lines (填报单位, 统计期间), the
column headers, the rows and the 合计 row, then the further tables and the
notes; numbers stay numbers (rates in percent format) so the office can
add to them, the header row is frozen and columns are as wide as their
text. A result with a trend gets a second sheet with the series and a chart.
Any ``ReportResult`` renders: nothing here knows the statistics plugin.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from xinfang.core.i18n import N_, _
from xinfang.core.reports import (Change, Ratio, Renderer, ReportResult, header_line,
                                  text_width)

PERCENT = "0.0%"
POINTS = '+0.0%;-0.0%;0.0%'
THIN = Side(style="thin", color="999999")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
#: Excel's limit on a sheet name, and the characters it refuses in one
SHEET_NAME = 31
BAD_SHEET = str.maketrans({c: " " for c in "[]:*?/\\"})


def _cell_value(value: Any) -> tuple[Any, str | None]:
    """A value as the cell holds it, and its number format."""
    if isinstance(value, Ratio):
        return value.value, PERCENT
    if isinstance(value, Change):
        return value.value, PERCENT if value.unit == "percent" else POINTS
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, (int, float)) or value is None:
        return value, None
    return str(value), None


def _shown_width(value: Any) -> int:
    if isinstance(value, (Ratio, Change)):
        return 8
    return text_width("" if value is None else str(value))


class _Sheet:
    """Writes tables one under another, remembering how wide each column got."""

    def __init__(self, sheet):
        self.sheet = sheet
        self.row = 1
        self.widths: dict[int, int] = {}

    def line(self, text: str, bold: bool = False, size: int | None = None,
             across: int = 1) -> None:
        cell = self.sheet.cell(self.row, 1, text)
        cell.font = Font(bold=bold, size=size or 11)
        if across > 1:
            self.sheet.merge_cells(start_row=self.row, start_column=1, end_row=self.row,
                                   end_column=across)
            cell.alignment = Alignment(horizontal="center")
        self.row += 1

    def table(self, columns, rows, total=None) -> int:
        """Write a header row and the rows; returns the header's row number."""
        header = self.row
        for index, column in enumerate(columns, 1):
            cell = self.sheet.cell(header, index, _(column.label))
            cell.font = Font(bold=True)
            cell.fill = HEAD_FILL
            cell.border = BOX
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            self._width(index, min(text_width(cell.value), 24))
        self.row += 1
        for values in [*rows, *([total] if total else [])]:
            for index, column in enumerate(columns, 1):
                raw = values.get(column.name)
                value, number_format = _cell_value(raw)
                cell = self.sheet.cell(self.row, index, value)
                cell.border = BOX
                if number_format:
                    cell.number_format = number_format
                if values is total:
                    cell.font = Font(bold=True)
                self._width(index, _shown_width(raw))
            self.row += 1
        return header

    def _width(self, index: int, width: int) -> None:
        self.widths[index] = max(self.widths.get(index, 0), width)

    def finish(self) -> None:
        for index, width in self.widths.items():
            self.sheet.column_dimensions[get_column_letter(index)].width = min(width + 2, 60)


def _sheet_title(text: str) -> str:
    return text.translate(BAD_SHEET)[:SHEET_NAME] or "Sheet"


def render(result: ReportResult) -> bytes:
    book = Workbook()
    main = _Sheet(book.active)
    main.sheet.title = _sheet_title(_(result.report.label))
    columns = result.columns
    main.line(result.heading, bold=True, size=14, across=max(len(columns), 1))
    for label, value in result.header:
        main.line(header_line(label, value))
    for paragraph in result.preamble:
        main.line(paragraph)
    header = main.table(columns, result.rows, result.total)
    main.sheet.freeze_panes = main.sheet.cell(header + 1, 1)
    for extra in result.tables:
        main.row += 1
        main.line(_(extra.label), bold=True)
        main.table(extra.columns, extra.rows)
    if result.notes:
        main.row += 1
        main.line(_("Notes:"), bold=True)
        for note in result.notes:
            main.line(note)
    main.finish()
    if result.trend is not None and result.trend.rows:
        _trend_sheet(book, result.trend)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _trend_sheet(book, trend) -> None:
    """The series and two charts: the counts as bars, the rates as lines."""
    sheet = _Sheet(book.create_sheet(_sheet_title(_(trend.label))))
    header = sheet.table(trend.columns, trend.rows)
    sheet.sheet.freeze_panes = sheet.sheet.cell(header + 1, 2)
    sheet.finish()
    last = header + len(trend.rows)
    months = Reference(sheet.sheet, min_col=1, min_row=header + 1, max_row=last)
    anchor = 2
    for kind, chart_class, title in (("count", BarChart, N_("Counts by month")),
                                     ("ratio", LineChart, N_("Rates by month"))):
        indexes = [i for i, c in enumerate(trend.columns, 1) if c.kind == kind]
        if not indexes:
            continue
        chart = chart_class()
        chart.title = _(title)
        chart.height, chart.width = 8, 18
        for index in indexes:
            chart.add_data(Reference(sheet.sheet, min_col=index, min_row=header, max_row=last),
                           titles_from_data=True)
        chart.set_categories(months)
        if kind == "ratio":
            chart.y_axis.number_format = PERCENT
        sheet.sheet.add_chart(chart, f"{get_column_letter(len(trend.columns) + 2)}{anchor}")
        anchor += 18


XLSX = Renderer("xlsx", N_("Excel workbook (xlsx)"), "xlsx", render, binary=True)
