"""Click in the reader's language: help, usage words, metavars, headings and wrapping.

Commands are built before the command line is parsed, so before ``--lang``
is known. Their texts are therefore kept as msgids and read through the
catalogue when shown; click's own words come from the same catalogue
through gettext's global domain (``core/i18n.set_language``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import click

from xinfang.core.i18n import N_, _
from xinfang.core.reports import text_width


#: A help text: a msgid (``N_("...")``), or a function composing one when shown.
Help = "str | Callable[[], str] | None"


def translated(text: Any) -> Any:
    """A help text in the current language, at the moment it is shown.

    Commands are built before the command line is parsed, so before
    ``--lang`` is known: they keep the msgid and translate when asked.
    """
    if callable(text):
        return text()
    return _(text) if text else text


#: the texts a command or parameter keeps as msgids and shows translated
TRANSLATED = ("help", "short_help", "epilog", "prompt", "options_metavar", "subcommand_metavar")

#: click's metavars (its parameter types' names, upper-cased) and ours
METAVARS = (N_("TEXT"), N_("INTEGER"), N_("INTEGER RANGE"), N_("FLOAT"), N_("FLOAT RANGE"),
            N_("BOOLEAN"), N_("PATH"), N_("FILE"), N_("FILENAME"), N_("DIRECTORY"), N_("DATE"))
#: click's usage words: ``options_metavar`` and the ``subcommand_metavar`` of each kind of group
USAGE_WORDS = (N_("[OPTIONS]"), N_("COMMAND [ARGS]..."), N_("[COMMAND] [ARGS]..."),
               N_("COMMAND1 [ARGS]... [COMMAND2 [ARGS]...]..."),
               N_("[COMMAND1] [ARGS]... [COMMAND2 [ARGS]...]..."))
HELP_OPTION_HELP = N_("Show this message and exit.")
#: a word click translates by a variable, ``_(extra["required"])``, which extraction misses
CLICK_WORDS = (N_("required"),)


class _Translated:
    """Texts kept as msgids (``TRANSLATED``), read translated."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in TRANSLATED:
            return translated(value)
        return value


#: the type names click's conversion errors interpolate ("'x' is not a valid integer.")
TYPE_NAMES = (N_("integer"), N_("integer range"), N_("float"), N_("float range"), N_("file"),
              N_("directory"), N_("path"))
NAMED_TYPES = (click.Path, click.types.IntParamType, click.types.FloatParamType)
NUL_IN_NAME = N_("A file name or path contains a NUL character: check the file names given")


def type_name(param_type: click.ParamType) -> str:
    """A type's English name, its msgid.

    Click names a ``Path`` through its catalogue when the type is built,
    before ``--lang`` is known, so that name is read from the type's settings.
    """
    if isinstance(param_type, click.Path):
        return ("file" if param_type.file_okay and not param_type.dir_okay else
                "directory" if param_type.dir_okay and not param_type.file_okay else "path")
    return param_type.name


def type_metavar(param_type: click.ParamType) -> str:
    """A type's metavar in the current language: ``PATH`` → 路径."""
    return _(type_name(param_type).upper())


class _Converting:
    """A parameter whose type's conversion errors name the type in the current language."""

    def type_cast_value(self, ctx: click.Context, value: Any) -> Any:
        param_type = self.type
        if not isinstance(param_type, NAMED_TYPES):
            return super().type_cast_value(ctx, value)
        english = type_name(param_type)
        param_type.name = _(english)
        try:
            return super().type_cast_value(ctx, value)
        except ValueError as exc:  # os.stat() of a name with NUL in it
            if "null byte" not in str(exc):
                raise
            raise click.BadParameter(_(NUL_IN_NAME), ctx=ctx, param=self) from None
        finally:
            param_type.name = english


#: what a line of Chinese text does not start with: punctuation, not text
NO_LINE_START = frozenset("，。、；：？！）］】》」』”’…,.;:?!)]")  # i18n: identifier


def _wide(text: str) -> bool:
    return text_width(text) != len(text)


def wrap_wide(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, Chinese broken between characters.

    Click's wrapping counts a character as one column and breaks only at
    spaces; Chinese takes two columns a character and has no spaces.
    """
    tokens = re.findall(r"\s+|[^\s\u1100-\uffff]+|.", " ".join(text.splitlines()))
    lines, line = [], ""
    for token in tokens:
        if token.isspace() and not line:
            continue
        if (line and not token.isspace() and token[0] not in NO_LINE_START
                and text_width(line + token) > width):
            lines.append(line.rstrip())
            line = token
        else:
            line += token
    return [*lines, line.rstrip()] if line.strip() else lines or [""]


def _paragraphs(text: str) -> list[tuple[int, bool, str]]:
    """Click's paragraphs: (indent, keep as it is (a ``\\b`` line first), text)."""
    found, lines, indent = [], [], None
    for line in [*text.expandtabs().splitlines(), ""]:
        if line:
            if indent is None:
                indent = len(line) - len(line.lstrip())
            lines.append(line.lstrip() if not lines else line)
        elif lines:
            raw = lines[0].strip() == "\b"
            found.append((indent or 0, raw, "\n".join(lines[1:]) if raw else " ".join(lines)))
            lines, indent = [], None
    return found


class _Formatter(click.HelpFormatter):
    """Click's help layout, punctuated and wrapped as the language needs.

    Headings (``Options:``) are read from the catalogue (``选项：``), and
    columns and lines are measured in display columns, not characters.
    """

    def write_heading(self, heading: str) -> None:
        self.write(" " * self.current_indent + _("{heading}:").format(heading=heading) + "\n")

    def _wrapped(self, text: str, width: int) -> list[str]:
        if not _wide(text):
            return click.formatting.wrap_text(text, width, preserve_paragraphs=True).splitlines()
        found: list[str] = []
        for indent, raw, paragraph in _paragraphs(text):
            if found:
                found.append("")
            lines = paragraph.splitlines() if raw else wrap_wide(paragraph, width - indent)
            found += [" " * indent + line for line in lines]
        return found

    def write_text(self, text: str) -> None:
        if not _wide(text):
            return super().write_text(text)
        indent = " " * self.current_indent
        lines = self._wrapped(text, self.width - self.current_indent)
        self.write("\n".join(indent + line if line else "" for line in lines) + "\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(row[0], row[1] if len(row) > 1 else "") for row in rows]
        first_col = min(max((text_width(first) for first, _second in rows), default=0),
                        col_max) + col_spacing
        indent = " " * self.current_indent
        for first, second in rows:
            self.write(indent + first)
            if not second:
                self.write("\n")
                continue
            if text_width(first) <= first_col - col_spacing:
                self.write(" " * (first_col - text_width(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = self._wrapped(second, max(self.width - first_col - 2, 10)) or [""]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write((" " * (first_col + self.current_indent) + line if line else "")
                           + "\n")


class Context(click.Context):
    formatter_class = _Formatter


class _TranslatedCommand(_Translated):
    """A command's texts, usage words, headings and ``--help`` in the reader's language."""

    context_class = Context

    def get_help_option(self, ctx: click.Context):
        """``--help`` whose help is translated when shown, not when first parsed."""
        names = self.get_help_option_names(ctx)
        if getattr(self, "_help_option", None) is None and names and self.add_help_option:
            storage = getattr(click.core, "_HELP_OPTION_STORAGE_NAME", None)
            click.help_option(*names, *([storage] if storage else []), cls=Option,
                              help=HELP_OPTION_HELP)(self)
            self._help_option = self.params.pop()
        return super().get_help_option(ctx)


class Command(_TranslatedCommand, click.Command):
    """A command whose texts are read from the catalogue in the user's language."""


class Option(_Converting, _Translated, click.Option):
    """An option whose help is read from the catalogue; help may be composed when shown."""

    def __init__(self, *args, help: Help = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = help

    def make_metavar(self, ctx: click.Context) -> str:
        """Click's metavar (``TEXT``, ``PATH``), or the one given, in the current language."""
        if self.metavar is not None:
            return _(self.metavar)
        metavar = self.type.get_metavar(param=self, ctx=ctx)
        if metavar is None:
            metavar = type_metavar(self.type)
        if self.nargs != 1:
            metavar += "..."
        return metavar


class Argument(_Converting, _Translated, click.Argument):
    """An argument whose metavar (``metavar=N_("CASE_ID")``) is shown in the current language.

    A metavar without a msgid is shown as it is.
    """

    @property
    def human_readable_name(self) -> str:
        return _(self.metavar if self.metavar is not None else self.name.upper())

    def make_metavar(self, ctx: click.Context) -> str:
        if self.metavar is not None:
            return _(self.metavar)
        var = self.type.get_metavar(param=self, ctx=ctx) or _(self.name.upper())
        already_bracketed = var.startswith("[") and var.endswith("]")
        if getattr(self, "deprecated", False):
            var += "!"
        if not self.required and not already_bracketed:
            var = f"[{var}]"
        if self.nargs != 1:
            var += "..."
        return var


option = functools.partial(click.option, cls=Option)
argument = functools.partial(click.argument, cls=Argument)
