"""Shared CLI pieces: the ``--json`` option, printing and progress."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from xinfang.core.reports import text_table


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
    return text_table(rows, headers)


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
