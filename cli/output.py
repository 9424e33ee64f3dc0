"""Shared CLI pieces: the ``--json`` option, printing and progress.

This is the edge where text reaches a terminal, so it is where text from other
nodes (case numbers, requests, names, units, reasons) is made safe to print,
once for every command: ``emit`` makes each string of the data one line
without control or bidirectional characters (``reports.terminal_safe``)
before the command's text function sees it, and checks the whole text again;
``table`` cells are made safe by ``reports.text_table``. JSON keeps every
value exactly (a program reads it): ``json.dumps`` escapes C0 controls, and
``json_text`` also escapes DEL, C1 controls and the bidirectional characters,
which it would print raw, so a terminal shown ``--json`` acts on none either.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import Any, Callable

import click

from xinfang.core.i18n import N_, Message
from xinfang.core.reports import UNSAFE, terminal_safe, text_table

from .texts import option


def json_option(func):
    return option("--json", "as_json", is_flag=True,
                  help=N_("Print JSON on stdout instead of text."))(func)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json_text(data))
    else:
        click.echo(terminal_safe(text(cleaned(data)), lines=True))


def echo(text: str, err: bool = False, lines: bool = True) -> None:
    """Print a line built outside ``emit`` (``lines=False``: one line, as a log's)."""
    click.echo(terminal_safe(text, lines=lines), err=err)


def cleaned(data: Any) -> Any:
    """``data`` with every string and map key one safe line (``reports.terminal_safe``):
    what a text function formats, so a value cannot start a line of its own."""
    if isinstance(data, str):
        return terminal_safe(data)
    if isinstance(data, dict):
        return {cleaned(k): cleaned(v) for k, v in data.items()}
    if isinstance(data, list) or type(data) is tuple:
        return type(data)(cleaned(v) for v in data)
    return data


def _json_escape(match: re.Match) -> str:
    char = match.group()
    return char if char == "\n" else f"\\u{ord(char):04x}"


def json_text(data: Any) -> str:
    """Indented JSON with no raw control or bidirectional character: the same values.

    ``json.dumps`` escapes what is below U+0020 inside strings, so a raw
    newline left is the indentation's; the rest of ``UNSAFE`` can only be
    inside a string, where ``\\uXXXX`` is the same character to a JSON reader.
    """
    return UNSAFE.sub(_json_escape, json.dumps(data, ensure_ascii=False, indent=2, default=str))


def message_text(message: Message) -> str:
    """``message`` in the reader's language with each of its values one safe line (an
    error names a certificate or a file another node wrote)."""
    args = {k: message_text(v) if isinstance(v, Message)
            else v if isinstance(v, (int, float)) else terminal_safe(str(v))
            for k, v in message.args.items()}
    return terminal_safe(str(Message(message.msgid, **args)), lines=True)


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain aligned table; wide (CJK) characters count as two columns; each cell one
    safe line (``reports.text_table``)."""
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
