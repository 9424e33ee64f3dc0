"""One message catalogue for every string a user reads, Chinese first.

Messages are written in English in the code (the gettext *msgid*) and
translated by the catalogue ``locale/<lang>/LC_MESSAGES/xinfang.po``, compiled
to ``.mo`` beside it; zh_CN is the default and ``en`` shows the msgids. The
standard library's gettext reads the compiled catalogue at run time, so the
command line starts without Babel; Babel extracts, updates and compiles.

Three kinds of call, for three moments:

- ``_("...{name}...").format(name=...)`` where the text is shown now;
- ``N_("...")`` where the text is defined now and shown later (help texts,
  column headers): it only marks the msgid, the place that shows it calls
  ``_()``;
- ``Message(N_("..."), name=...)`` where the text is *stored*: fold code
  writes conflict, hold and quarantine reasons into views, and views must
  not depend on the language of the node that folded them. A ``Message``
  is stored as canonical JSON and rendered in the reader's language by
  ``show()``.

Plugins keep their own catalogue (their own gettext domain) and hand it to
the kernel through ``xinfang_message_catalogs``; ``_()`` looks in the
kernel's catalogue first, then in each plugin's.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import json
import os
import string
from pathlib import Path
from typing import Any, Iterator

import attrs

DOMAIN = "xinfang"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT = "zh_CN"
LANGUAGES = ("zh_CN", "en")
#: the environment variables gettext reads, most specific first
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@attrs.frozen
class Catalog:
    """A plugin's gettext domain and the ``locale`` directory holding its ``.mo`` files."""

    domain: str
    localedir: Path = attrs.field(converter=Path)


_state: dict[str, Any] = {"language": None, "translation": None, "catalogs": []}


def normalize(value: str | None) -> str | None:
    """``zh_CN.UTF-8``, ``zh-cn``, ``zh`` → ``zh_CN``; ``en_US`` → ``en``; others → None.

    ``C`` and ``POSIX`` name no language, so a server or CI machine without a
    locale falls through to the default.
    """
    if not value:
        return None
    for part in value.split(":"):
        code = part.split(".")[0].split("@")[0].replace("-", "_").lower()
        if code.startswith("zh"):
            return "zh_CN"
        if code.startswith("en"):
            return "en"
    return None


def resolve(requested: str | None = None) -> str:
    """The language to use: asked for, ``XINFANG_LANG``, the locale, else zh_CN."""
    for value in (requested, os.environ.get("XINFANG_LANG"),
                  *(os.environ.get(name) for name in LOCALE_VARIABLES)):
        language = normalize(value)
        if language:
            return language
    return DEFAULT


def language() -> str:
    if _state["language"] is None:
        _state["language"] = resolve()
    return _state["language"]


def set_language(requested: str | None = None) -> str:
    """Use ``requested`` (or what the environment says) for every message from now on.

    The language is also given to gettext's global domain, so click's own
    texts (``Usage:``, ``Missing option``) come from the same catalogue.
    """
    chosen = resolve(requested)
    _state["language"] = chosen
    _state["translation"] = None
    _gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    _gettext.textdomain(DOMAIN)
    os.environ["LANGUAGE"] = chosen
    return chosen


@contextlib.contextmanager
def language_scope(requested: str | None = None) -> Iterator[str]:
    """Set the language for one command; restore the process's own afterwards.

    Without the restore, a command run with ``--lang en`` inside a test
    process would leave ``LANGUAGE=en`` behind for the next one.
    """
    saved = (_state["language"], _state["translation"], os.environ.get("LANGUAGE"),
             _gettext.textdomain())
    try:
        yield set_language(requested)
    finally:
        _state["language"], _state["translation"] = saved[0], saved[1]
        if saved[2] is None:
            os.environ.pop("LANGUAGE", None)
        else:
            os.environ["LANGUAGE"] = saved[2]
        _gettext.textdomain(saved[3])


def add_catalogs(catalogs: list[Catalog]) -> None:
    """Append plugin catalogues (once each) behind the kernel's."""
    for catalog in catalogs:
        if catalog not in _state["catalogs"]:
            _state["catalogs"].append(catalog)
            _state["translation"] = None


def translation() -> _gettext.NullTranslations:
    if _state["translation"] is None:
        chosen = [language()]
        found = _gettext.translation(DOMAIN, str(LOCALE_DIR), chosen, fallback=True)
        for catalog in _state["catalogs"]:
            found.add_fallback(_gettext.translation(catalog.domain, str(catalog.localedir),
                                                    chosen, fallback=True))
        _state["translation"] = found
    return _state["translation"]


def gettext(message: str) -> str:
    return translation().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translation().ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; it is translated where it is shown."""
    return message


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields of a message, which its translation must keep."""
    return {name.split(".")[0].split("[")[0] for _lit, name, _spec, _conv
            in string.Formatter().parse(text) if name}


@attrs.frozen
class Message:
    """A message kept for later: a msgid and its values, rendered in the reader's language."""

    msgid: str
    args: dict[str, Any] = attrs.field(factory=dict)

    def __init__(self, msgid: str, **args: Any):
        self.__attrs_init__(msgid, args)

    def __str__(self) -> str:
        """The text in the current language; formatted only when there are values,
        so a message without any may hold braces."""
        text = gettext(self.msgid)
        if not self.args:
            return text
        values = {k: str(v) if isinstance(v, Message) else v for k, v in self.args.items()}
        return text.format(**values)

    def to_json(self) -> dict[str, Any]:
        return {"m": self.msgid, "a": {k: v.to_json() if isinstance(v, Message) else v
                                       for k, v in self.args.items()}}

    def stored(self) -> str:
        """The language-independent text a view keeps."""
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Message":
        args = {k: cls.from_json(v) if _is_message(v) else v for k, v in data["a"].items()}
        return cls(data["m"], **args)


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"m", "a"}


def stored(reason: "str | Message") -> str:
    """What to write into a view for ``reason``."""
    return reason.stored() if isinstance(reason, Message) else str(reason)


def show(text: str | None) -> str | None:
    """A stored reason in the current language (a plain stored text as it is)."""
    if not text or not text.startswith('{"a":'):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return str(Message.from_json(data)) if _is_message(data) else text
