"""The canonical encoding: one value, one byte form, and nothing else accepted.

Event ids are the SHA-256 of these bytes, so a value with two byte forms would
have two ids; ``decode`` must refuse every form ``encode`` would not make.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xinfang.core import codec
from xinfang.core.errors import EncodingError

MAX = 2**53 - 1

# Strings without surrogate code points: everything the encoding can carry.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-MAX, MAX) | text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=25,
)
containers = st.lists(values, min_size=1, max_size=5) | st.dictionaries(
    text, values, min_size=1, max_size=5)

FAST = settings(max_examples=60, deadline=None)


def _reinsert_reversed(value):
    """The same value with every map built in the opposite insertion order."""
    if isinstance(value, dict):
        return {k: _reinsert_reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reinsert_reversed(v) for v in value]
    return value


def _same_types(a, b) -> bool:
    """Equality that also tells True from 1 (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b))
    return a == b


# -- round trip and determinism ----------------------------------------------


@FAST
@given(values)
def test_decoding_the_encoding_gives_back_the_same_value_and_types(value):
    decoded = codec.decode(codec.encode(value))
    assert decoded == value
    assert _same_types(decoded, value)


@FAST
@given(values)
def test_encoding_does_not_depend_on_map_insertion_order(value):
    assert codec.encode(value) == codec.encode(_reinsert_reversed(value))
    assert codec.encode(value) == codec.encode(value)


@FAST
@given(values)
def test_encoded_bytes_are_utf8_json_that_reencode_to_themselves(value):
    raw = codec.encode(value)
    assert json.loads(raw.decode("utf-8")) == value
    assert codec.encode(codec.decode(raw)) == raw


def test_map_keys_are_sorted_by_code_point_and_non_ascii_is_not_escaped():
    raw = codec.encode({"z": 1, "é": 2, "\U0001F600": 3, "\uffff": 4, "A": 5, "信": 6})
    assert raw == '{"A":5,"z":1,"é":2,"信":6,"\uffff":4,"\U0001F600":3}'.encode("utf-8")


def test_control_characters_use_named_or_lower_case_escapes():
    assert codec.encode("\n\t\x1f\"\\") == b'"\\n\\t\\u001f\\"\\\\"'
    assert codec.decode(b'"\\n\\t\\u001f\\"\\\\"') == "\n\t\x1f\"\\"


def test_largest_safe_integers_round_trip():
    for n in (MAX, -MAX, 0):
        assert codec.decode(codec.encode(n)) == n


# -- decode refuses every other byte form --------------------------------------


@FAST
@given(containers)
def test_decode_refuses_the_same_value_with_white_space(value):
    spaced = json.dumps(value, ensure_ascii=False, sort_keys=True,
                        separators=(", ", ": ")).encode("utf-8")
    assume(spaced != codec.encode(value))
    with pytest.raises(EncodingError):
        codec.decode(spaced)


@FAST
@given(st.dictionaries(text, values, min_size=2, max_size=5))
def test_decode_refuses_maps_whose_keys_are_not_sorted(value):
    reordered = json.dumps(dict(sorted(value.items(), reverse=True)), ensure_ascii=False,
                           separators=(",", ":")).encode("utf-8")
    with pytest.raises(EncodingError):
        codec.decode(reordered)


@FAST
@given(text.filter(lambda s: any(ord(c) > 0x7F for c in s)))
def test_decode_refuses_non_ascii_written_as_u_escapes(value):
    escaped = json.dumps(value, ensure_ascii=True).encode("ascii")
    with pytest.raises(EncodingError):
        codec.decode(escaped)


@pytest.mark.parametrize("raw", [
    b' {"a":1}',            # leading space
    b'{"a":1} ',            # trailing space
    b'{"a":1}\n',           # trailing newline
    b'{"a": 1}',            # space after colon
    b'[1, 2]',              # space after comma
    b'{"b":1,"a":2}',       # keys out of order
    b'"\\u0041"',           # escaped letter A
    b'"\\u4fe1"',           # escaped CJK letter
    b'"\\/"',               # escaped solidus
    b'"\\u001F"',           # upper-case hex escape
    b'"\\u000a"',           # newline escaped by number instead of \\n
    b'-0',                  # negative zero
    b'\xef\xbb\xbf{}',      # byte-order mark
])
def test_decode_refuses_non_canonical_byte_forms(raw):
    with pytest.raises(EncodingError):
        codec.decode(raw)


def test_decode_refuses_duplicate_keys_naming_the_key():
    with pytest.raises(EncodingError, match="映射键 'a' 重复"):
        codec.decode(b'{"a":1,"a":1}')
    with pytest.raises(EncodingError, match="重复"):
        codec.decode(b'{"x":{"k":1,"k":2}}')


@pytest.mark.parametrize("raw", [b"1.0", b"[1.5]", b'{"a":-0.5}', b"1e5", b"1E5", b"2e0"])
def test_decode_refuses_floats(raw):
    with pytest.raises(EncodingError, match="浮点数"):
        codec.decode(raw)


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"a":-Infinity}'])
def test_decode_refuses_nan_and_infinity(raw):
    with pytest.raises(EncodingError):
        codec.decode(raw)


@pytest.mark.parametrize("n", [2**53, -(2**53), 2**64, -(10**30)])
def test_decode_refuses_integers_outside_the_safe_range(n):
    with pytest.raises(EncodingError, match="超出"):
        codec.decode(str(n).encode())
    with pytest.raises(EncodingError, match="超出"):
        codec.decode(b'{"n":%d}' % n)


@pytest.mark.parametrize("raw", [
    b'"\xff"',              # never valid in UTF-8
    b'"\xc0\xaf"',          # overlong encoding of "/"
    b'"\xed\xa0\x80"',      # a surrogate encoded as UTF-8
    b'"\xe4\xbf"',          # truncated multi-byte sequence
])
def test_decode_refuses_invalid_utf8(raw):
    with pytest.raises(EncodingError, match="UTF-8"):
        codec.decode(raw)


def test_decode_refuses_an_escaped_lone_surrogate():
    with pytest.raises(EncodingError, match="代理字符"):
        codec.decode(b'"\\ud800"')


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a":1', b"nul", b"'a'", b"[1,]"])
def test_decode_refuses_malformed_json_with_encoding_error(raw):
    with pytest.raises(EncodingError):
        codec.decode(raw)


def test_decode_refuses_absurd_nesting_with_encoding_error_not_a_crash():
    with pytest.raises(EncodingError):
        codec.decode(b"[" * 100_000 + b"]" * 100_000)


def test_decode_refuses_text_instead_of_bytes():
    with pytest.raises(EncodingError, match="字节串"):
        codec.decode('{"a":1}')


# -- encode refuses what the encoding does not carry ---------------------------


@pytest.mark.parametrize("value", ["\ud800", ["ok", "\udfff"], {"k": "a\ud83d"}, {"\udc00": 1}])
def test_encode_refuses_lone_surrogates(value):
    with pytest.raises(EncodingError, match="代理字符"):
        codec.encode(value)


@pytest.mark.parametrize("value", [1.0, [0.5], {"a": float("nan")}, float("inf")])
def test_encode_refuses_floats_naming_where(value):
    with pytest.raises(EncodingError, match=r"\$\S* 处是浮点数"):
        codec.encode(value)


def test_encode_names_the_path_of_a_bad_value():
    with pytest.raises(EncodingError, match=r"\$\.body\.amount"):
        codec.encode({"body": {"amount": 12.5}})


@pytest.mark.parametrize("n", [MAX + 1, -MAX - 1, 2**63])
def test_encode_refuses_integers_outside_the_safe_range(n):
    with pytest.raises(EncodingError, match="超出"):
        codec.encode({"n": n})


@pytest.mark.parametrize("value", [{1: "a"}, {None: 1}, b"bytes", {"s": {1, 2}}, object()])
def test_encode_refuses_types_it_does_not_carry(value):
    with pytest.raises(EncodingError):
        codec.encode(value)
