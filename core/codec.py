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
"""

from __future__ import annotations

import json
from typing import Any

from .errors import EncodingError
from .i18n import N_

MAX_SAFE_INT = 2**53 - 1


def _check(value: Any, path: str) -> None:
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
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(N_("map key at {path} is not a string: {key}"),
                                    path=path, key=repr(key))
            _check(key, f"{path}.<key>")
            _check(item, f"{path}.{key}")
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


def decode(data: bytes) -> Any:
    """Parse canonical bytes, refusing any byte form ``encode`` would not make."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(N_("expected bytes, got {type}"), type=type(data).__name__)
    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(N_("not UTF-8 at byte {position}"), position=exc.start) from None
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
