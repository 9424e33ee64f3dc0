"""Shared CLI pieces: the ``--json`` option, printing and progress."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Callable

import click

from xinfang.core.i18n import N_
from xinfang.core.reports import text_table

from .texts import option


def json_option(func):
    return option("--json", "as_json", is_flag=True,
                  help=N_("Print JSON on stdout instead of text."))(func)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text(data))


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain aligned table; wide (CJK) characters count as two columns."""
    return text_table(rows, headers)


def progress(label: str, total: int, enabled: bool = True):
    """A progress bar on stderr when it is a terminal (and not ``--json``), else nothing.

    ``label`` is shown as it is: the caller gives it translated, ``_("...")``.
    """
    if enabled and sys.stderr.isatty() and total > 1000:
        return click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
    return _Quiet()


@contextlib.contextmanager
def progress_to(label: str, enabled: bool = True):
    """A ``progress(done, total)`` callback whose bar appears once the library knows
    the total (a bundle's events), on a terminal only, and not with ``--json``."""
    state: dict[str, Any] = {"bar": None, "seen": 0}

    def moved(done: int, total: int | None = None) -> None:
        if not (enabled and sys.stderr.isatty()) or not total or total <= 1000:
            return
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr,
                                             show_pos=True)
            state["bar"].__enter__()
        state["bar"].update(done - state["seen"])
        state["seen"] = done

    try:
        yield moved
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


def advance(bar):
    """A ``progress(done)`` callback for the library that moves ``bar`` to ``done``."""
    seen = [0]

    def moved(done: int, total: int | None = None) -> None:
        bar.update(done - seen[0])
        seen[0] = done
    return moved


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        """Nothing to draw when stderr is not a terminal (or the work is short)."""
