"""Shared CLI pieces: the ``--json`` option, printing and progress."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click


def json_option(func):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON on stdout instead of text.")(func)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text(data))


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain aligned table; wide (CJK) characters count as two columns."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    cells = [[("" if c is None else str(c)) for c in row] for row in [headers, *rows]]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c + " " * (widths[i] - width(c)) for i, c in enumerate(row)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def progress(label: str, total: int):
    """A progress bar on stderr when it is a terminal, nothing otherwise."""
    return click.progressbar(length=total, label=label, file=sys.stderr,
                             show_pos=True) if sys.stderr.isatty() and total > 1000 else _Quiet()


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        """Nothing to draw when stderr is not a terminal (or the work is short)."""
