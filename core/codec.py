"""The canonical encoding: the exact bytes an author signs.

An event is encoded once, by its author, and every node stores and forwards
those bytes; nothing is re-serialised to be verified. The encoding is JSON
restricted so that each value has exactly one byte form:

* values: strings, integers within ±(2**53 - 1), booleans, null, lists and
  maps with string keys; no floats (dates and decimals travel as strings);
* maps: keys sorted by code point (the same as UTF-8 byte order), no
  duplicates;
* no white space; separators ``,`` and ``:``;
* strings: UTF-8, never ``\\u``-escaped except the characters JSON requires
  (``"`` and ``\\`` as ``\\"`` and ``\\\\``; ``\\b \\f \\n \\r \\t`` by name;
  other controls below U+0020 as lower-case ``\\u00xx``); lone surrogates are
  refused.

``decode`` accepts only bytes that ``encode`` would produce: it parses, then
re-encodes and compares, so a second byte form of the same value (extra
space, escaped letter, reordered keys) is refused rather than silently given a
second event id.

Nesting is limited to ``MAX_DEPTH`` levels of lists and maps, on both sides:
``encode`` refuses a deeper value and ``decode`` refuses deeper bytes before
parsing them (a scan of the brackets outside strings), so a hand-made
``[[[[…`` ten thousand deep is a named ``EncodingError``, never a
``RecursionError``, and whether bytes decode never depends on how deep the
caller's stack is (the parser's own recursion limit made it so). The deepest
document xinfang writes is a bundle page's fork evidence (payload, pages,
page, forks, pair, wire form: six levels; an event is four), so 32 leaves
plugins room and stays far below Python's recursion limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import EncodingError
from .i18n import N_

MAX_SAFE_INT = 2**53 - 1
#: the most lists and maps nested in one another (the outermost one is level 1)
MAX_DEPTH = 32

#: a JSON string, or a run of characters that are neither brackets nor quotes
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+')
#: an innermost pair of brackets
_PAIR = re.compile(r"\[\]|\{\}")
#: more openers in a row than the limit allows
_OPENERS = re.compile(r"[\[{]{%d}" % (MAX_DEPTH + 1))


def _too_deep(path: str) -> EncodingError:
    return EncodingError(N_("lists and maps nested deeper than {limit} levels at {path}"),
                         limit=MAX_DEPTH, path=path)


def _check(value: Any, path: str, depth: int = 0) -> None:
    if value is None or value is True or value is False:
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise EncodingError(N_("integer at {path} is outside ±(2**53-1): {value}"),
                                path=path, value=value)
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodingError(N_("string at {path} holds a lone surrogate"),
                                path=path) from None
        return
    if isinstance(value, (list, tuple, dict)) and depth >= MAX_DEPTH:
        raise _too_deep(path)
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(N_("map key at {path} is not a string: {key}"),
                                    path=path, key=repr(key))
            _check(key, f"{path}.<key>")
            _check(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, float):
        raise EncodingError(N_("float at {path} ({value}): write decimals and dates as strings"),
                            path=path, value=repr(value))
    raise EncodingError(N_("value at {path} has type {type}, which the canonical encoding "
                           "does not carry"), path=path, type=type(value).__name__)


def encode(value: Any) -> bytes:
    """Return the one canonical byte form of ``value``."""
    _check(value, "$")
    return json.dumps(
        value,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    ).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EncodingError(N_("duplicate map key {key}"), key=repr(key))
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise EncodingError(N_("float {text} is not allowed; decimals travel as strings"), text=text)


def _no_constant(text: str) -> Any:
    raise EncodingError(N_("{text} is not allowed in the canonical encoding"), text=text)


def _check_depth(text: str) -> None:
    """Refuse text nested deeper than ``MAX_DEPTH`` before the parser descends into it.

    Strings and everything but brackets are cut away (in C, by one regular
    expression); each pass then removes the innermost ``[]`` and ``{}`` pairs,
    so well-formed text of depth d is gone after d passes. A pair still there
    after ``MAX_DEPTH`` passes, or more openers in a row than that in what
    will not pair up, is a container nested deeper. Other brackets that do not
    match are left to the parser, which says where.
    """
    skeleton = _NOT_BRACKETS.sub("", text)
    for _ in range(MAX_DEPTH):
        shorter = _PAIR.sub("", skeleton)
        if shorter == skeleton:
            break
        skeleton = shorter
    if _PAIR.search(skeleton) or _OPENERS.search(skeleton):
        raise EncodingError(N_("lists and maps nested deeper than {limit} levels"),
                            limit=MAX_DEPTH)


def decode(data: bytes) -> Any:
    """Parse canonical bytes, refusing any byte form ``encode`` would not make."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(N_("expected bytes, got {type}"), type=type(data).__name__)
    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(N_("not UTF-8 at byte {position}"), position=exc.start) from None
    _check_depth(text)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except EncodingError:
        raise
    except (ValueError, RecursionError) as exc:
        raise EncodingError(N_("malformed encoding: {error}"), error=str(exc)) from None
    if encode(value) != data:
        raise EncodingError(N_("bytes are not in canonical form "
                               "(white space, key order or escaping differs)"))
    return value
