"""Events: signed once by the author, verified from the exact stored bytes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xinfang.core import codec
from xinfang.core.certs import CERT_DOMAIN
from xinfang.core.errors import InvalidEvent
from xinfang.core.event import EVENT_DOMAIN, MAX_EVENT_BYTES, Event
from xinfang.core.hlc import MAX_COUNTER, Timestamp
from xinfang.core.keys import NodeKeys

KEYS = NodeKeys.generate()
OTHER_KEYS = NodeKeys.generate()
PREV = "ab" * 32


def make(signer: NodeKeys = KEYS, **overrides) -> Event:
    args = dict(epoch=0, seq=2, prev=PREV, hlc=Timestamp(1_767_225_600_000, 3),
                type="case.register", entity="case", entity_id="431202101201-2026-00001",
                area="431202101201",
                body={"request": "请求追讨拖欠工资", "headcount": 2, "collective": False,
                      "petitioners": [{"name": "d" * 64, "representative": True}],
                      "note": None, "received": "2026-01-05"})
    args.update(overrides)
    return Event.create(signer, **args)


def content(**overrides) -> dict:
    """The decoded content of a well-formed event, to be spoiled by a test."""
    value = codec.decode(make().raw)
    value.update(overrides)
    return value


def parse_content(value: dict, signer: NodeKeys = KEYS) -> Event:
    raw = codec.encode(value)
    return Event.parse(raw, signer.sign(EVENT_DOMAIN + raw))


EVENT = make()


# -- round trip ----------------------------------------------------------------


def test_parsed_event_equals_the_created_one():
    parsed = Event.parse(EVENT.raw, EVENT.signature)
    assert parsed == EVENT
    assert parsed.raw == EVENT.raw
    assert parsed.body == EVENT.body
    assert (parsed.author, parsed.epoch, parsed.seq, parsed.prev, parsed.hlc) == (
        KEYS.author, 0, 2, PREV, Timestamp(1_767_225_600_000, 3))
    assert (parsed.type, parsed.entity, parsed.entity_id, parsed.area) == (
        "case.register", "case", "431202101201-2026-00001", "431202101201")


def test_event_id_is_the_sha256_of_the_raw_bytes():
    assert EVENT.id == hashlib.sha256(EVENT.raw).hexdigest()
    assert Event.parse(EVENT.raw, EVENT.signature).id == EVENT.id


def test_signature_of_a_created_event_verifies_after_parsing():
    assert EVENT.signature_valid()
    assert Event.parse(EVENT.raw, EVENT.signature).signature_valid()


def test_raw_bytes_are_canonical_and_carry_every_field():
    assert codec.encode(codec.decode(EVENT.raw)) == EVENT.raw
    assert sorted(codec.decode(EVENT.raw)) == sorted(
        ["area", "author", "body", "entity", "epoch", "hlc", "id", "prev", "seq", "type", "v"])


def test_same_content_signed_by_another_key_is_another_author_and_id():
    other = make(OTHER_KEYS)
    assert other.author == OTHER_KEYS.author != EVENT.author
    assert other.id != EVENT.id
    assert other.signature_valid()


def test_first_event_of_an_epoch_has_no_prev():
    first = make(seq=1, prev=None)
    assert Event.parse(first.raw, first.signature).prev is None


# -- tampering -----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_flipping_any_single_bit_of_the_raw_bytes_never_yields_a_valid_event(data):
    index = data.draw(st.integers(0, len(EVENT.raw) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    raw = bytearray(EVENT.raw)
    raw[index] ^= 1 << bit
    try:
        tampered = Event.parse(bytes(raw), EVENT.signature)
    except InvalidEvent:
        return
    assert tampered.id != EVENT.id
    assert not tampered.signature_valid()


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 63), st.integers(0, 7))
def test_flipping_any_bit_of_the_signature_makes_it_fail(index, bit):
    signature = bytearray(EVENT.signature)
    signature[index] ^= 1 << bit
    assert not Event.parse(EVENT.raw, bytes(signature)).signature_valid()


def test_signature_under_another_domain_prefix_does_not_verify():
    for prefix in (CERT_DOMAIN, b"", b"xinfang-event-v2\x00", b"xinfang-event-v1"):
        forged = KEYS.sign(prefix + EVENT.raw)
        assert not Event.parse(EVENT.raw, forged).signature_valid(), prefix


def test_signature_by_another_key_does_not_verify():
    forged = OTHER_KEYS.sign(EVENT_DOMAIN + EVENT.raw)
    assert not Event.parse(EVENT.raw, forged).signature_valid()


@pytest.mark.parametrize("signature", [b"", b"\x00" * 64, b"\x00" * 63, b"x" * 65])
def test_missing_or_malformed_signature_does_not_verify(signature):
    assert not Event.parse(EVENT.raw, signature).signature_valid()


def test_reencoded_bytes_with_a_changed_value_do_not_verify_under_the_old_signature():
    changed = codec.decode(EVENT.raw)
    changed["body"]["headcount"] = 3
    raw = codec.encode(changed)
    tampered = Event.parse(raw, EVENT.signature)
    assert tampered.id != EVENT.id
    assert not tampered.signature_valid()


# -- size limit ----------------------------------------------------------------


def _padded_body(total: int) -> dict:
    """A body whose event encodes to exactly ``total`` bytes."""
    base = len(make(body={"pad": ""}).raw)
    return {"pad": "x" * (total - base)}


def test_event_of_exactly_the_size_limit_is_accepted():
    event = make(body=_padded_body(MAX_EVENT_BYTES))
    assert len(event.raw) == MAX_EVENT_BYTES
    assert Event.parse(event.raw, event.signature).signature_valid()


def test_creating_an_oversized_event_is_refused_naming_the_limit():
    with pytest.raises(InvalidEvent, match=str(MAX_EVENT_BYTES)):
        make(body=_padded_body(MAX_EVENT_BYTES + 1))


def test_parsing_oversized_bytes_is_refused_naming_the_limit():
    raw = codec.encode(content(body=_padded_body(MAX_EVENT_BYTES + 1)))
    assert len(raw) == MAX_EVENT_BYTES + 1
    with pytest.raises(InvalidEvent, match=str(MAX_EVENT_BYTES)):
        Event.parse(raw, KEYS.sign(EVENT_DOMAIN + raw))


def test_parsing_huge_garbage_is_refused_by_size_before_decoding():
    with pytest.raises(InvalidEvent, match="上限"):
        Event.parse(b"\xff" * (MAX_EVENT_BYTES * 4), b"")


# -- malformed content ---------------------------------------------------------


@pytest.mark.parametrize("missing", ["area", "author", "body", "hlc", "prev", "seq", "v"])
def test_event_with_a_missing_field_is_refused(missing):
    value = content()
    del value[missing]
    with pytest.raises(InvalidEvent, match="字段必须恰好是") as caught:
        parse_content(value)
    # the message lists what the event carried, so the missing name is absent there
    assert f"'{missing}'" not in str(caught.value).split("实际为", 1)[1]


def test_event_with_an_extra_field_is_refused():
    with pytest.raises(InvalidEvent, match="字段"):
        parse_content(content(extra="x"))


@pytest.mark.parametrize("overrides, field", [
    (dict(seq=0), "seq"),
    (dict(seq=-1), "seq"),
    (dict(seq=True), "seq"),
    (dict(seq="2"), "seq"),
    (dict(epoch=-1), "epoch"),
    (dict(epoch=False), "epoch"),
    (dict(seq=1, prev=PREV), "prev"),
    (dict(seq=3, prev=None), "prev"),
    (dict(prev="AB" * 32), "prev"),
    (dict(author="AB" * 32), "author"),
    (dict(author="ab" * 31), "author"),
    (dict(author="zz" * 32), "author"),
    (dict(author=7), "author"),
    (dict(v=2), "格式版本"),
    (dict(hlc=[1, 2, 3]), "hlc"),
    (dict(hlc=[-1, 0]), "hlc"),
    (dict(hlc=[1, MAX_COUNTER + 1]), "hlc"),
    (dict(hlc=[True, 0]), "hlc"),
    (dict(type="Case.Register"), "type"),
    (dict(entity="case-x"), "entity"),
    (dict(id=""), "id"),
    (dict(id="x" * 129), "id"),
    (dict(area="43120a"), "area"),
    (dict(area="4312021012011"), "area"),
    (dict(area="４３"), "area"),
    (dict(body=[1]), "body"),
])
def test_malformed_event_content_is_refused_naming_the_field(overrides, field):
    with pytest.raises(InvalidEvent, match="事件格式错误") as caught:
        parse_content(content(**overrides))
    assert field in str(caught.value)


@pytest.mark.parametrize("overrides, field", [
    (dict(seq=0), "seq"),
    (dict(seq=1, prev=PREV), "prev"),
    (dict(area="43 12"), "area"),
    (dict(type=""), "type"),
])
def test_creating_a_malformed_event_is_refused_naming_the_field(overrides, field):
    with pytest.raises(InvalidEvent, match=field):
        make(**overrides)


def test_float_in_received_bytes_is_refused_as_invalid_event():
    raw = codec.encode(content()).replace(b'"headcount":2', b'"headcount":2.5')
    with pytest.raises(InvalidEvent, match="浮点数"):
        Event.parse(raw, KEYS.sign(EVENT_DOMAIN + raw))


def test_creating_an_event_with_a_float_in_its_body_is_refused_as_invalid_event():
    # Every other malformed event is InvalidEvent, from create and from parse
    # alike; a caller catching InvalidEvent must not see a different class here.
    with pytest.raises(InvalidEvent, match=r"body\.amount"):
        make(body={"amount": 12.5})


def test_non_canonical_event_bytes_are_refused_even_with_a_valid_signature():
    spaced = EVENT.raw.replace(b'"area":', b'"area": ', 1)
    with pytest.raises(InvalidEvent, match="规范形式"):
        Event.parse(spaced, KEYS.sign(EVENT_DOMAIN + spaced))


@pytest.mark.parametrize("raw", [b"[]", b'"event"', b"null", b"{}"])
def test_bytes_that_are_not_an_event_map_are_refused(raw):
    with pytest.raises(InvalidEvent):
        Event.parse(raw, b"")


# -- order ---------------------------------------------------------------------


def test_order_key_sorts_by_clock_then_author_epoch_and_seq():
    early = make(hlc=Timestamp(9, 0), seq=5)
    late_counter = make(hlc=Timestamp(9, 10), seq=1, prev=None)
    later_wall = make(hlc=Timestamp(100, 0), seq=1, prev=None)
    assert early.order_key < late_counter.order_key < later_wall.order_key
    same_clock_next_seq = make(hlc=Timestamp(9, 0), seq=6)
    assert early.order_key < same_clock_next_seq.order_key
