"""Named reports and the renderers that write them out.

A plugin registers a ``Report`` (``xinfang_reports``): a name, a label,
parameters, the columns of its rows and a ``compute(node, **params)`` that
reads the views and returns rows. Its label, its columns' and parameters'
labels and its description are msgids (``N_("...")``, from the plugin's own
catalogue): the renderers translate them when they write, so the rows and
the machine keys (column names) never depend on the language. A ``Renderer`` (``xinfang_renderers``)
turns a ``ReportResult`` into bytes: text tables, JSON and CSV are built in
here; a plugin adds others (xlsx) the same way. ``xinfang report run NAME --format F``
and the web view both go through ``run_report`` and ``render``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from typing import Any, Callable

import attrs

from xinfang import hookimpl

from .entities import listing
from .errors import InvalidInput
from .i18n import N_, _


@attrs.frozen
class Param:
    """A report parameter: given on the command line as ``--param name=value``."""

    name: str
    label: str
    required: bool = False
    default: Any = None
    convert: Callable[[str], Any] = attrs.field(default=str, eq=False)


#: what a column holds, so a renderer can format and total it: ``text``, ``count``
#: (an integer), ``ratio`` (a ``Ratio``), ``change`` (a ``Change``) or ``date``
COLUMN_KINDS = ("text", "count", "ratio", "change", "date")


@attrs.frozen
class Column:
    name: str
    label: str
    kind: str = attrs.field(default="text", validator=attrs.validators.in_(COLUMN_KINDS))


@attrs.frozen
class Ratio:
    """A rate with what it is made of: offices check a rate by its two counts, and a
    period with nothing to count has no rate (``value`` is None), not a division error."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def percent(self) -> str:
        return "—" if self.value is None else f"{100 * self.value:.1f}%"

    def __str__(self) -> str:
        return f"{self.percent()} ({self.numerator}/{self.denominator})"

    def to_json(self) -> dict[str, Any]:
        return {"numerator": self.numerator, "denominator": self.denominator,
                "value": self.value}


@attrs.frozen
class Change:
    """同比 / 环比: growth of a count (``percent``: 0.25 is +25%) or the difference of
    two rates (``points``: 0.05 is 5 percentage points); None when there is no base."""

    value: float | None
    unit: str = attrs.field(default="percent", validator=attrs.validators.in_(("percent",
                                                                                "points")))

    @classmethod
    def between(cls, current: Any, base: Any) -> "Change":
        if isinstance(current, Ratio):
            if current.value is None or base.value is None:
                return cls(None, "points")
            return cls(current.value - base.value, "points")
        return cls((current - base) / base if base else None, "percent")

    def __str__(self) -> str:
        if self.value is None:
            return "—"
        if self.unit == "points":
            return _("{change} points").format(change=f"{100 * self.value:+.1f}")
        return f"{100 * self.value:+.1f}%"

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit}


@attrs.frozen
class Definition:
    """What one figure of a report means: shown by ``xinfang report describe``."""

    name: str
    label: str
    definition: str


@attrs.frozen
class Report:
    name: str
    label: str
    columns: tuple[Column, ...] = attrs.field(converter=tuple)
    compute: Callable[..., Any] = attrs.field(eq=False)
    params: tuple[Param, ...] = attrs.field(default=(), converter=tuple)
    description: str = ""
    #: the definitions of the report's figures (msgids), for ``report describe``
    definitions: tuple[Definition, ...] = attrs.field(default=(), converter=tuple)
    #: whether an office may submit it upward for approval (``xinfang report submit``): it
    #: then takes the parameters ``period``, ``area`` and ``as_of`` (given as text, as on
    #: the command line), its rows are keyed by their first column and every figure is a
    #: count, a text or a ``Ratio``, so the office above can recompute and compare them
    submittable: bool = False


@attrs.frozen
class Table:
    """A further table of a result (a comparison, a trend): its labels are msgids."""

    name: str
    label: str
    columns: tuple[Column, ...] = attrs.field(converter=tuple)
    rows: tuple[dict[str, Any], ...] = attrs.field(converter=tuple)


@attrs.frozen
class Output:
    """What ``compute`` returns when a plain list of rows is not enough: an office's
    report has a title, a header (填报单位, 统计期间), a total row, notes saying what
    was left out, further tables and a trend for a chart. ``title``, the header's
    values and the notes are text already in the reader's language."""

    rows: tuple[dict[str, Any], ...] = attrs.field(converter=tuple)
    total: dict[str, Any] | None = None
    title: str | None = None
    header: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=tuple)
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    tables: tuple[Table, ...] = attrs.field(default=(), converter=tuple)
    #: a series by period (first column the period), drawn as a chart where a format can
    trend: Table | None = None
    #: the columns of these rows, when they differ from the report's (a breakdown's
    #: first column is named after what it breaks down by)
    columns: tuple[Column, ...] | None = None
    #: paragraphs before the tables, as a drafted document (a 通报) opens with its text
    preamble: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class ReportResult:
    report: Report
    params: dict[str, Any]
    rows: tuple[dict[str, Any], ...] = attrs.field(converter=tuple)
    total: dict[str, Any] | None = None
    title: str | None = None
    header: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=tuple)
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    tables: tuple[Table, ...] = attrs.field(default=(), converter=tuple)
    trend: Table | None = None
    result_columns: tuple[Column, ...] | None = None
    preamble: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.result_columns or self.report.columns

    @property
    def heading(self) -> str:
        """The title, or the report's label in the reader's language."""
        return self.title or _(self.report.label)

    def to_dict(self) -> dict[str, Any]:
        """Machine keys as they are; the labels in the reader's language."""
        def table(t: Table) -> dict[str, Any]:
            return {"name": t.name, "label": _(t.label), "columns": _columns(t.columns),
                    "rows": [_plain(r) for r in t.rows]}

        return {"report": self.report.name, "label": _(self.report.label),
                "title": self.heading, "params": _plain(self.params),
                "header": [{"label": k, "value": v} for k, v in self.header],
                "preamble": list(self.preamble),
                "columns": _columns(self.columns),
                "rows": [_plain(r) for r in self.rows],
                "total": _plain(self.total) if self.total is not None else None,
                "notes": list(self.notes), "tables": [table(t) for t in self.tables],
                "trend": table(self.trend) if self.trend is not None else None}


def _columns(columns) -> list[dict[str, str]]:
    return [{"name": c.name, "label": _(c.label), "kind": c.kind} for c in columns]


def _plain(value: Any) -> Any:
    """Values as JSON holds them: a rate keeps its numerator and denominator."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (Ratio, Change)):
        return value.to_json()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@attrs.frozen
class Renderer:
    name: str
    label: str
    extension: str
    render: Callable[[ReportResult], bytes] = attrs.field(eq=False)
    #: bytes not meant for a terminal (xlsx): written only to a file
    binary: bool = False


def find(registry, name: str) -> Report:
    return registry.lookup("reports", name, N_("report"))


def run_report(node, name: str, given: dict[str, str] | None = None) -> ReportResult:
    """Check the parameters, compute the rows: nothing is written."""
    report = find(node.registry, name)
    given = dict(given or {})
    known = {p.name: p for p in report.params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidInput(N_("report {report} has no parameter {names}; its parameters: "
                              "{params}"), report=_(report.label), names=listing(unknown),
                           params=listing(f"{_(p.label)}({p.name})" for p in report.params))
    params: dict[str, Any] = {}
    for param in report.params:
        if param.name in given:
            try:
                params[param.name] = param.convert(given[param.name])
            except (TypeError, ValueError) as exc:
                raise InvalidInput(N_("report parameter {param} ({name}) is wrong: {error}"),
                                   param=_(param.label), name=param.name, error=str(exc)) from None
        elif param.required:
            raise InvalidInput(N_("report {report} needs the parameter --param {name}=… ({param})"),
                               report=_(report.label), name=param.name, param=_(param.label))
        else:
            params[param.name] = param.default
    computed = report.compute(node, **params)
    if isinstance(computed, Output):
        return ReportResult(report, params, computed.rows, computed.total, computed.title,
                            computed.header, computed.notes, computed.tables, computed.trend,
                            computed.columns, computed.preamble)
    return ReportResult(report, params, computed)


def render(registry, result: ReportResult, fmt: str) -> bytes:
    return registry.lookup("renderers", fmt, N_("output format")).render(result)


#: characters a terminal may act on rather than show: C0 and C1 controls and DEL (ESC
#: starts colour, cursor and title sequences; CR overwrites a line; BEL rings) and the
#: bidirectional marks, embeddings, overrides and isolates that reorder what follows
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                    "\u2028\u2029]")
#: of those, the ones that break or space a line: shown as one space
_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029")


def _shown(match: re.Match) -> str:
    return " " if match.group() in _SPACES else "\ufffd"


def terminal_safe(text: str, lines: bool = False) -> str:
    """``text`` with nothing a terminal would act on: what to print of a value that may
    come from another node (a case number, a request, a name, a reason).

    Line breaks and tabs become a space, so a value cannot start a line that looks
    like the program's own; every other control or bidirectional character becomes
    U+FFFD, so it is seen that something was there. With ``lines``, ``\\n`` stays:
    for a whole output whose values were made safe one by one.
    """
    if lines:
        return "\n".join(UNSAFE.sub(_shown, line) for line in text.split("\n"))
    return UNSAFE.sub(_shown, text)


def text_width(text: str) -> int:
    """Columns a string takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def text_table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain aligned table; each cell made one safe line (``terminal_safe``), since
    cells hold what other nodes wrote and a newline in one would break the table."""
    cells = [[terminal_safe("" if c is None else str(c)) for c in row]
             for row in [headers, *rows]]
    widths = [max(text_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c + " " * (widths[i] - text_width(c)) for i, c in enumerate(row)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cell_text(value: Any) -> str:
    """A value as a text table or CSV shows it."""
    return "" if value is None else str(value)


def _table_lines(label: str | None, columns, rows, total=None) -> list[str]:
    body = [[cell_text(row.get(c.name)) for c in columns] for row in rows]
    if total is not None:
        body.append([cell_text(total.get(c.name)) for c in columns])
    lines = [label] if label else []
    return [*lines, text_table(body, [_(c.label) for c in columns])]


def header_line(label: str, value: str) -> str:
    """One line of a report's header: 填报单位：示例县信访局."""
    return _("{label}: {value}").format(label=label, value=value)


def _text(result: ReportResult) -> bytes:
    parts = [result.heading]
    parts += [header_line(label, terminal_safe(value)) for label, value in result.header]
    if result.preamble:
        parts += ["", *result.preamble, ""]
    parts += _table_lines(None, result.columns, result.rows, result.total)
    for extra in (*result.tables, *((result.trend,) if result.trend else ())):
        parts += ["", *_table_lines(_(extra.label), extra.columns, extra.rows)]
    if result.notes:
        parts += ["", _("Notes:"), *(f"- {note}" for note in result.notes)]
    return ("\n".join(parts) + "\n").encode("utf-8")


def _json(result: ReportResult) -> bytes:
    return json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str).encode("utf-8")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, Ratio):  # Excel reads "93.3%" as a number
        return "" if value.value is None else value.percent()
    return cell_text(value)


def _csv(result: ReportResult) -> bytes:
    """The main table first (header, rows, total), so a program reading the file gets it;
    further tables and the notes follow after a blank line, as an office's sheet has them."""
    out = io.StringIO()
    writer = csv.writer(out)

    def table(columns, rows) -> None:
        writer.writerow([_(c.label) for c in columns])
        for row in rows:
            writer.writerow([_csv_cell(row.get(c.name)) for c in columns])

    table(result.columns, [*result.rows, *([result.total] if result.total else [])])
    if result.preamble:
        writer.writerow([])
        for paragraph in result.preamble:
            writer.writerow([paragraph])
    for extra in (*result.tables, *((result.trend,) if result.trend else ())):
        writer.writerow([])
        writer.writerow([_(extra.label)])
        table(extra.columns, extra.rows)
    if result.notes:
        writer.writerow([])
        for note in result.notes:
            writer.writerow([note])
    # a byte-order mark, so Excel on a Chinese Windows PC opens it as UTF-8
    return ("\ufeff" + out.getvalue()).encode("utf-8")


RENDERERS = [
    Renderer("text", N_("text table"), "txt", _text),
    Renderer("json", N_("JSON"), "json", _json),
    Renderer("csv", N_("CSV (opens in Excel)"), "csv", _csv),
]


@hookimpl
def xinfang_renderers():
    return RENDERERS
