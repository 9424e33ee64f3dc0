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


@attrs.frozen
class Column:
    name: str
    label: str


@attrs.frozen
class Report:
    name: str
    label: str
    columns: tuple[Column, ...] = attrs.field(converter=tuple)
    compute: Callable[..., list[dict[str, Any]]] = attrs.field(eq=False)
    params: tuple[Param, ...] = attrs.field(default=(), converter=tuple)
    description: str = ""


@attrs.frozen
class ReportResult:
    report: Report
    params: dict[str, Any]
    rows: tuple[dict[str, Any], ...] = attrs.field(converter=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Machine keys as they are; the labels in the reader's language."""
        return {"report": self.report.name, "label": _(self.report.label), "params": self.params,
                "columns": [{"name": c.name, "label": _(c.label)} for c in self.report.columns],
                "rows": list(self.rows)}


@attrs.frozen
class Renderer:
    name: str
    label: str
    extension: str
    render: Callable[[ReportResult], bytes] = attrs.field(eq=False)


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
    return ReportResult(report, params, report.compute(node, **params))


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


def _text(result: ReportResult) -> bytes:
    columns = result.report.columns
    body = text_table([[row.get(c.name) for c in columns] for row in result.rows],
                      [_(c.label) for c in columns])
    return f"{_(result.report.label)}\n{body}\n".encode("utf-8")


def _json(result: ReportResult) -> bytes:
    return json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str).encode("utf-8")


def _csv(result: ReportResult) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_(c.label) for c in result.report.columns])
    for row in result.rows:
        writer.writerow(["" if row.get(c.name) is None else row.get(c.name)
                         for c in result.report.columns])
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
