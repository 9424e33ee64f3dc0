"""Malformed input, wherever an attacker can put it: a named refusal, never a crash.

An attacker holding a stolen enrolled key, a USB stick or the network can
hand a node any bytes, and any value inside correctly signed and sealed
bytes. Every parser it reaches (the canonical decoder, events, certificates
and chains, pages and their secrets, envelopes, bundle files and the HTTP
endpoint) must answer with an ``XinfangError`` subclass, which the CLI shows
as one line and the server as a 400-family answer, and never with an
``AttributeError``, ``TypeError``, ``KeyError``, ``ValueError`` or
``RecursionError`` (a traceback, or a 500).

The property tests start from a real document (an event a node wrote, its
certificate, a page, a bundle's payload, an envelope's header) and change one
part of it to an arbitrary value, re-signing and re-sealing with the real
keys so the change reaches the code behind the signature checks. Text from
other nodes is then printed by the CLI without terminal control sequences.
"""

from __future__ import annotations

import copy
import http.server
import io
import json
import sys
import threading
import time
import zlib

import pytest
from hypothesis import (HealthCheck, currently_in_test_context, event, given,
                        settings, strategies as st)

from xinfang.cli.output import json_text
from xinfang.core import certs, codec, policy, signed
from xinfang.core.errors import EncodingError, XinfangError
from xinfang.core.event import EVENT_DOMAIN, Event
from xinfang.core.i18n import N_
from xinfang.core.reports import UNSAFE
from xinfang.plugins.cases import api
from xinfang.sync import bundle, envelope, receive, send, trust, wire
from xinfang.sync.http import Client

from sync_helpers import (build_tree, carry, feed, next_event, post, register, seal_pages,
                          serve, signed_request, synthetic_id)
from sync_helpers import wire as sync_wire

SOME = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=60, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MAX = codec.MAX_SAFE_INT
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
#: values that get past a type check and trip the next one
tricky = st.sampled_from([
    "", "0", "zz", "00" * 32, "ff" * 32, "00" * 12, "a" * 300, "4312", "431202101201",
    "village", "AAAA", "AA==", "====", "case", "case.register", -1, 0, 1, 2, MAX, -MAX,
    True, False, None, [], {}, [[]], ["", ""], ["AA==", "AA=="], [1, 2, 3, 4], {"m": "x", "a": 1},
])
scalars = st.none() | st.booleans() | st.integers(-MAX, MAX) | text | tricky
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(text | tricky.filter(lambda v: isinstance(v, str)),
                                        inner, max_size=4), max_leaves=12)

#: what a refusal may be (a subclass of XinfangError); anything else is a bug
REFUSED = XinfangError


def refused_or_parsed(parse, *args):
    """Call ``parse``; a named refusal is a correct answer, any other exception fails."""
    try:
        result = parse(*args)
    except REFUSED as exc:
        counted(f"{parse.__name__}: {type(exc).__name__}")
        return None
    counted(f"{parse.__name__}: taken")
    return result


def counted(outcome: str) -> None:
    """What ``--hypothesis-show-statistics`` lists: how far the examples got."""
    if currently_in_test_context():
        event(outcome)


# -- changing one part of a real document ----------------------------------------------


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key in sorted(value):
            yield from paths(value[key], (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def changed(value, path, how, new):
    """A copy of ``value`` with the part at ``path`` replaced, deleted, or given a sibling."""
    value = copy.deepcopy(value)
    if not path:
        return new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = new
    elif how == "add":
        parent.insert(last, new)
    else:
        parent[last] = new
    return value


@st.composite
def mutated(draw, base):
    """``base`` (a JSON-like value) with one part of it changed to an arbitrary value."""
    path = draw(st.sampled_from(list(paths(base))))
    how = draw(st.sampled_from(["replace", "replace", "delete", "add"] if path else ["replace"]))
    return changed(base, path, how, draw(values))


# -- sealing by hand, with any header, credentials and contents -------------------------


def hand_sealed(sender, receiver, kind: str, *, credentials=None, items=(), sections=(),
                header=None) -> bytes:
    """An envelope sealed and signed with ``sender``'s real keys by the module's own
    ``Sealer``, holding what no honest node seals: ``header`` entries over the real
    ones, any ``credentials``, ``items`` (encoded and compressed as usual) and then
    ``sections``, raw bytes sealed as they are (neither compressed nor canonical)."""
    out = io.BytesIO()
    sealer = envelope.Sealer(out, sender.keys, receiver.info.author, receiver.info.encryption,
                             kind, {} if credentials is None else credentials, header)
    for item in items:
        sealer.add(item)
    for raw in sections:
        sealer._section(raw)  # the one way to seal bytes that are not an encoded item
    sealer.close()
    return out.getvalue()


# -- one certified tree for the whole module ----------------------------------------------


class Shown:
    """A fixture's value with a short repr, so hypothesis's report of a failing example
    names the input, not every attribute of three nodes."""

    def __init__(self, value, name: str):
        self._value, self._name = value, name

    def __getattr__(self, attr):
        return getattr(self._value, attr)

    def __repr__(self) -> str:
        return self._name


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("malformed")
    made = build_tree(base)
    register(made.village, serial=1)
    register(made.village, serial=2)
    carry(made.village, made.township, base)
    yield Shown(made, "<county, township, village>")
    made.close()


def page_base(tree) -> dict:
    """A real page from the village with every part filled: events, sealed boxes, the
    certificate chain, a range and a pair of events as fork evidence."""
    events = feed(tree.village)
    boxes = send.outgoing_rule(tree.village, tree.township.certificate).boxes(events)
    chain = trust.chain_of(tree.village.db, tree.village.info.author)
    return {"events": [e.to_wire() for e in events], "boxes": [b.to_wire() for b in boxes][:2],
            "certs": [c.to_wire() for c in chain],
            "ranges": [[tree.village.info.author, 0, 0, len(events)]],
            "forks": [[events[0].to_wire(), events[1].to_wire()]]}


# -- the canonical decoder ---------------------------------------------------------------


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


@pytest.mark.parametrize("raw", [
    nested(10_000), nested(10_000, b'{"a":', b"}").replace(b":}", b":1}", 1),
    b"[" * 10_000, b'{"a":' * 10_000, b"[{" * 5_000 + b"}]" * 5_000,
    nested(codec.MAX_DEPTH + 1)], ids=["lists", "maps", "unclosed", "unclosed-maps", "mixed",
                                       "one-too-deep"])
def test_decode_refuses_nesting_deeper_than_the_limit_with_a_named_error(raw):
    with pytest.raises(EncodingError, match=str(codec.MAX_DEPTH)):
        codec.decode(raw)


def test_decode_takes_the_deepest_nesting_the_limit_allows_and_brackets_inside_strings():
    value: list = ["[[[[{{{{" * 40]
    for _ in range(codec.MAX_DEPTH - 1):
        value = [value]
    assert codec.decode(codec.encode(value)) == value


def test_encode_refuses_a_value_nested_deeper_than_decode_would_take():
    value: list = []
    for _ in range(codec.MAX_DEPTH):
        value = [value]
    with pytest.raises(EncodingError, match=str(codec.MAX_DEPTH)):
        codec.encode(value)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(EncodingError):
        codec.encode(deep)


def test_bytes_nested_under_the_recursion_limit_decode_alike_from_any_call_stack():
    """Bytes nested 900 deep parsed from a shallow stack and were refused from a deep one
    (the parser ran out of recursion): whether a node took them hung on its own call
    stack. Now both are the same named refusal."""
    raw = nested(900)

    def descend(levels: int):
        return descend(levels - 1) if levels else codec.decode(raw)

    for levels in (0, sys.getrecursionlimit() - 300):
        with pytest.raises(EncodingError, match=str(codec.MAX_DEPTH)):
            descend(levels)


def test_the_deepest_document_xinfang_writes_is_well_within_the_limit(tree):
    def depth(value) -> int:
        if isinstance(value, (list, dict)):
            items = value.values() if isinstance(value, dict) else value
            return 1 + max((depth(v) for v in items), default=0)
        return 0

    path = tree.base / "depth.xfb"
    bundle.export_bundle(tree.township, tree.village.info.name, path)
    payload = envelope.open_(tree.village.keys, path.read_bytes(), "bundle").payload
    payload["pages"] = [page_base(tree)]  # with fork evidence, the deepest part
    deepest = max(depth(payload), *(depth(e.body) + 1 for e in feed(tree.village)))
    assert deepest <= 8 < codec.MAX_DEPTH


@SOME
@given(st.binary(max_size=300))
def test_decode_of_any_bytes_is_a_value_or_an_encoding_error(raw):
    try:
        value = codec.decode(raw)
    except EncodingError as exc:
        assert str(exc)  # a named error that says what is wrong, never another exception
    else:
        assert codec.encode(value) == raw  # what it takes is canonical: it encodes back alike


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=4), max_leaves=20)


@SOME
@given(json_like, st.booleans())
def test_decode_of_any_json_text_is_a_value_or_an_encoding_error(value, compact):
    text = json.dumps(value, ensure_ascii=not compact,
                      separators=(",", ":") if compact else None)
    try:
        decoded = codec.decode(text.encode("utf-8"))
    except EncodingError as exc:
        assert str(exc)  # refused (not canonical, too deep, a float …) by name
    else:
        assert decoded == value


# -- events and certificates ---------------------------------------------------------------


@SOME
@given(st.binary(max_size=200), st.binary(max_size=80))
def test_event_parse_of_any_bytes_is_refused_by_name(raw, signature):
    assert refused_or_parsed(Event.parse, raw, signature) is None


@SOME
@given(st.data())
def test_an_event_with_any_field_changed_parses_or_is_refused_by_name(tree, data):
    event = feed(tree.village)[1]
    content = data.draw(mutated(codec.decode(event.raw)))
    try:
        raw = codec.encode(content)
    except EncodingError:
        return
    signature = tree.village.keys.sign(EVENT_DOMAIN + raw)
    refused_or_parsed(Event.parse, raw, signature)
    refused_or_parsed(Event.from_wire, signed.to_wire(raw, signature))


@SOME
@given(values)
def test_any_value_as_an_event_or_certificate_wire_form_is_refused_by_name(value):
    refused_or_parsed(Event.from_wire, value)
    refused_or_parsed(certs.Certificate.from_wire, value)
    refused_or_parsed(certs.chain_from_wire, value)


@SOME
@given(st.data())
def test_a_certificate_with_any_field_changed_is_refused_by_name(tree, data):
    """Re-signed by the real issuer, so the change reaches the checks of the chain."""
    chain = trust.chain_of(tree.village.db, tree.village.info.author)
    content = data.draw(mutated(codec.decode(chain[0].raw)))
    try:
        raw = codec.encode(content)
    except EncodingError:
        return
    forged = signed.to_wire(raw, tree.township.keys.sign(certs.CERT_DOMAIN + raw))
    wires = [forged, *(c.to_wire() for c in chain[1:])]
    parsed = refused_or_parsed(certs.chain_from_wire, wires)
    if parsed is not None:
        refused_or_parsed(certs.validate_chain, parsed)


# -- pages and their secrets ---------------------------------------------------------------


@SOME
@given(values)
def test_any_value_as_a_page_is_refused_by_name(value):
    refused_or_parsed(wire.Page.from_wire, value)
    refused_or_parsed(wire.frontier_from_wire, value)


@SOME
@given(st.data())
def test_a_page_with_any_part_changed_parses_or_is_refused_by_name(tree, data):
    refused_or_parsed(wire.Page.from_wire, data.draw(mutated(page_base(tree))))


@SOME
@given(st.data())
def test_a_page_with_a_changed_sealed_box_is_refused_by_name_or_applied(tree, data):
    """Boxes are opened by the receiver's key: a changed one is refused or dropped."""
    base = page_base(tree)
    boxes = data.draw(mutated(base["boxes"]))
    page = refused_or_parsed(wire.Page.from_wire, {**base, "boxes": boxes})
    if page is not None:
        refused_or_parsed(receive.apply_page, tree.township, page, tree.village.info.author)


# -- enrolment files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def enrolling(tmp_path_factory):
    """A tree of its own: a parent that signs what it is given changes its own store."""
    made = build_tree(tmp_path_factory.mktemp("enrolling"), villages=1)
    yield Shown(made, "<county, township, village>")
    made.close()


@SOME
@given(st.binary(max_size=300) | st.sampled_from([b"[" * 100_000, b'{"a":' * 100_000,
                                                   b'{"enrolment_request":' + b"[" * 100_000]))
def test_any_file_given_to_enroll_sign_is_refused_by_name(enrolling, raw):
    path = enrolling.base / "random.request"
    path.write_bytes(raw)
    with pytest.raises(REFUSED):
        trust.EnrolmentRequest.from_file(path)


@SOME
@given(st.data())
def test_an_enrolment_request_with_any_field_changed_is_refused_by_name(enrolling, data):
    """Re-signed by the requesting key, as a forger would, then signed by the parent."""
    content = data.draw(mutated(codec.decode(trust.make_request(enrolling.village).raw)))
    try:
        raw = codec.encode(content)
    except EncodingError:
        return
    wire_form = signed.to_wire(raw, enrolling.village.keys.sign(
        signed.KINDS[trust.KIND].domain + raw))
    request = refused_or_parsed(trust.EnrolmentRequest.from_json,
                                json.dumps({trust.REQUEST_KEY: wire_form}))
    if request is not None:
        refused_or_parsed(trust.sign_request, enrolling.township, request)


@SOME
@given(st.data())
def test_a_certificate_file_with_any_part_changed_is_refused_by_name(enrolling, data):
    request = trust.make_request(enrolling.village)
    payload = trust.sign_request(enrolling.township, request)
    refused_or_parsed(trust.import_certificate, enrolling.village, data.draw(mutated(payload)))


# -- envelopes and bundles -----------------------------------------------------------------


@SOME
@given(st.binary(max_size=400))
def test_any_bytes_as_an_envelope_are_refused_by_name(tree, raw):
    for data in (raw, envelope.MAGIC + raw, envelope.MAGIC + raw[:4] + b"{}" + raw[4:]):
        refused_or_parsed(envelope.open_, tree.township.keys, data, "bundle")
        refused_or_parsed(envelope.what_file, data)


HEADER_FIELDS = ["v", "kind", "from", "to", "id", "ephemeral", "sent"]


@SOME
@given(st.dictionaries(st.sampled_from(HEADER_FIELDS) | text, values, min_size=1, max_size=2))
def test_an_envelope_with_any_header_field_changed_is_refused_by_name(tree, changes):
    try:
        sealed = hand_sealed(tree.village, tree.township, "bundle", header=changes,
                             items=[{"pages": []}])
    except EncodingError:
        return
    refused_or_parsed(envelope.open_, tree.township.keys, sealed, "bundle")
    refused_or_parsed(envelope.what_file, sealed)


@SOME
@given(values, st.lists(st.binary(max_size=200), max_size=2), st.booleans())
def test_any_credentials_and_contents_in_a_sealed_envelope_are_refused_by_name(
        tree, credentials, sections, compress):
    sections = [zlib.compress(raw) if compress else raw for raw in sections]
    sealed = hand_sealed(tree.village, tree.township, "bundle", credentials=credentials,
                         sections=sections)
    refused_or_parsed(envelope.open_, tree.township.keys, sealed, "bundle")
    path = tree.base / "sections.xfb"
    path.write_bytes(sealed)
    refused_or_parsed(bundle.import_bundle, tree.township, path)


@FEW
@given(st.binary(max_size=400))
def test_any_file_given_to_bundle_import_is_refused_by_name(tree, raw):
    path = tree.base / "random.xfb"
    for data in (raw, envelope.MAGIC + raw):
        path.write_bytes(data)
        with pytest.raises(REFUSED):
            bundle.import_bundle(tree.township, path)


def bundle_head(tree, pages) -> dict:
    """What a bundle from the village holds first: pages, frontier, refusals, its chain."""
    return {"pages": pages, "frontier": wire.frontier_to_wire(wire.frontier(tree.village.db)),
            "refused": [], "chain": [c.to_wire() for c in trust.chain_of(
                tree.village.db, tree.village.info.author)]}


def imported(tree, sealed: bytes) -> None:
    path = tree.base / "changed.xfb"
    path.write_bytes(sealed)
    refused_or_parsed(bundle.import_bundle, tree.township, path)


@FEW
@given(st.data())
def test_a_bundle_from_a_real_child_with_any_part_changed_is_refused_by_name(tree, data):
    """The chain travels as the credentials, checked before the rest is opened."""
    payload = data.draw(mutated(bundle_head(tree, [page_base(tree)])))
    try:
        sealed = envelope.seal(tree.village.keys, tree.township.info.author,
                               tree.township.info.encryption, bundle.KIND, payload)
    except EncodingError:
        return
    imported(tree, sealed)


@FEW
@given(st.data())
def test_a_bundle_whose_later_page_has_any_part_changed_is_refused_by_name(tree, data):
    """Pages after the first item are read one at a time, after the head."""
    head = bundle_head(tree, [])
    chain = head.pop("chain")
    page = data.draw(mutated(page_base(tree)))
    try:
        sealed = hand_sealed(tree.village, tree.township, bundle.KIND,
                             credentials={"chain": chain}, items=[head, page])
    except EncodingError:
        return
    imported(tree, sealed)


# -- HTTP ------------------------------------------------------------------------------------


REFUSALS = {400, 401, 403, 409, 413}


@pytest.fixture(scope="module")
def server(tree):
    with serve(tree.township) as url:
        yield url


def refused_properly(status: int, body: bytes) -> None:
    counted(f"HTTP {status}")
    assert status in REFUSALS, (status, body[:300])
    assert isinstance(json.loads(body.decode("utf-8"))["error"], str)


@FEW
@given(st.binary(max_size=400))
def test_any_body_posted_is_refused_with_a_400_family_json_error(server, raw):
    for body in (raw, envelope.MAGIC + raw):
        refused_properly(*post(server, body))


def sealed_request(sender, receiver, payload) -> bytes:
    """A request as a client seals it, with the payload as given (its chain too)."""
    return envelope.seal(sender.keys, receiver.info.author, receiver.info.encryption, "request",
                         payload, extra={"sent": int(time.time() * 1000)})


def request_bases(tree) -> list[dict]:
    chain = [c.to_wire() for c in trust.chain_of(tree.village.db, tree.village.info.author)]
    frontier = wire.frontier_to_wire(wire.frontier(tree.village.db))
    return [{"op": "hello", "frontier": frontier, "chain": chain},
            {"op": "pull", "frontier": frontier, "area": tree.village.info.area, "chain": chain},
            {"op": "push", "page": page_base(tree), "chain": chain}]


def answered(status: int, body: bytes) -> None:
    """Taken (a sealed answer) or refused with a 400-family JSON error; never a 500."""
    if status == 200:
        counted("HTTP 200")
        assert body.startswith(envelope.MAGIC)
    else:
        refused_properly(status, body)


@FEW
@given(st.dictionaries(text | st.sampled_from(["op", "page", "frontier", "area", "chain"]),
                       values, max_size=4))
def test_a_valid_envelope_around_any_payload_is_answered_never_with_a_500(tree, server,
                                                                         payload):
    answered(*post(server, signed_request(tree.village, payload)))


@FEW
@given(st.data())
def test_a_real_request_with_any_part_changed_is_answered_never_with_a_500(tree, server, data):
    base = data.draw(st.sampled_from(request_bases(tree)))
    payload = data.draw(mutated(base))
    try:
        body = sealed_request(tree.village, tree.township, payload)
    except EncodingError:
        return
    answered(*post(server, body))


# -- a hostile parent: what a sync client reads ------------------------------------------


class HostileParent:
    """A server holding the township's real keys that answers a child's sync requests
    with what it is told to: sealed answers built from ``answers`` (by operation, the
    answers an honest parent gives), or a bare status and body."""

    def __init__(self, tree):
        township = tree.township
        frontier = wire.frontier_to_wire(wire.frontier(township.db))
        self.keys, self.child = township.keys, tree.village.info
        self.answers = {
            "hello": {"chain": [c.to_wire() for c in trust.chain_of(township.db,
                                                                    township.info.author)],
                      "frontier": frontier, "pending": 0, "refused": []},
            "push": {"applied": 0, "duplicates": 0, "refused": [], "frontier": frontier},
            "pull": {"page": None, "refused": []}}
        self.bare: tuple[int, bytes] | None = None
        parent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, data = parent.reply(body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                """Quiet: the test reads the answers, not the server's log."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, body: bytes) -> tuple[int, bytes]:
        if self.bare is not None:
            return self.bare
        opened = envelope.open_(self.keys, body, "request")
        answer = self.answers[opened.payload["op"]]
        if isinstance(answer, dict):  # the id of the request answered, as a parent signs it
            answer = {**answer, "request": opened.header["id"]}
        return 200, envelope.seal(self.keys, self.child.author, self.child.encryption,
                                  "response", answer)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    made = build_tree(tmp_path_factory.mktemp("hostile"), villages=1)
    register(made.village, serial=1)  # something to push in every round
    parent = HostileParent(made)
    yield Shown(made, "<county, township, village>"), parent
    parent.close()
    made.close()


def synced(tree, parent, answers=None, bare=None):
    honest = copy.deepcopy(parent.answers)
    parent.answers.update(answers or {})
    parent.bare = bare
    try:
        return refused_or_parsed(lambda: Client(tree.village, parent.url, timeout=10).sync())
    finally:
        parent.answers, parent.bare = honest, None


@pytest.mark.parametrize("bare", [
    (400, b'{"error":' + b"[" * 100_000), (400, b"[" * 100_000), (400, b'{"error":[1]}'),
    (500, b"\xff\xfe"), (200, b""), (200, envelope.MAGIC + b"\0" * 40)],
    ids=["deep-error", "deep-body", "error-not-text", "not-utf8", "empty", "framing"])
def test_a_hostile_answer_to_a_sync_client_is_a_named_error(hostile, bare):
    tree, parent = hostile
    assert synced(tree, parent, bare=bare) is None


def test_the_hostile_parent_answers_like_an_honest_one_unless_told_otherwise(hostile):
    tree, parent = hostile
    assert synced(tree, parent) is not None


def shape(op, answer, name, bug=True):
    """One answer of the wrong shape (``bug``: one ``Client.call`` checks, ``http.ANSWERS``;
    otherwise one ``wire`` refuses)."""
    return pytest.param(op, answer, id=name)


@pytest.mark.parametrize("op, answer", [
    shape("hello", {"pending": 0, "refused": []}, "hello-no-frontier"),
    shape("hello", {"frontier": [], "pending": "many", "refused": []}, "hello-pending-text"),
    shape("hello", {"frontier": [], "pending": 0, "refused": [[1]]}, "hello-refused-short"),
    shape("hello", {"frontier": [], "pending": 0, "refused": 7}, "hello-refused-int"),
    shape("push", {"applied": "all", "duplicates": 0, "refused": [], "frontier": []},
          "push-applied-text"),
    shape("push", {"applied": 0, "duplicates": 0, "refused": [], "frontier": {}},
          "push-frontier-map", bug=False),
    shape("push", {"applied": 0, "duplicates": 0, "refused": []}, "push-no-frontier"),
    shape("push", {"applied": 0, "duplicates": 0, "refused": 5, "frontier": []},
          "push-refused-int"),
    shape("pull", {"refused": []}, "pull-no-page"),
    shape("pull", {"page": 3, "refused": []}, "pull-page-int", bug=False),
])
def test_an_answer_of_the_wrong_shape_from_a_real_parent_is_a_named_error(hostile, op, answer):
    tree, parent = hostile
    assert synced(tree, parent, {op: answer}) is None


@settings(FEW)
@given(st.data())
def test_a_real_parent_s_answer_with_any_part_changed_is_taken_or_a_named_error(hostile, data):
    tree, parent = hostile
    op = data.draw(st.sampled_from(sorted(parent.answers)))
    synced(tree, parent, {op: data.draw(mutated(
        {k: v for k, v in parent.answers[op].items() if k != "chain"}))})


# -- terminal output -------------------------------------------------------------------------

#: clears the screen, returns to the start of the line, rings, reverses what follows
HOSTILE = "\x1b[2J\r\x07\u202e"
FAKE_LINE = "已受理，无需处理"
#: the characters of HOSTILE a terminal acts on
CONTROLS = set("\x1b\r\x07\u202e")


def test_text_from_another_node_is_printed_without_control_sequences(tmp_path, invoke):
    """A village writes a request text and a petitioner name made to attack a terminal;
    at the county, ``case list`` and ``case show`` (text and JSON) print none of it."""
    tree = build_tree(tmp_path)
    try:
        policy.set_policy(tree.county, "case.release_identity_upward", True)
        carry(tree.county, tree.township, tmp_path)
        carry(tree.township, tree.village, tmp_path)
        person = api.PetitionerInput(f"赵某{HOSTILE}甲", synthetic_id(7), "13800000007",
                                     f"示例村{HOSTILE}一组")
        case_id = register(tree.village, serial=7, petitioners=[person],
                           request=f"请求追讨{HOSTILE}拖欠工资\n{FAKE_LINE}\t完")
        carry(tree.village, tree.township, tmp_path)
        carry(tree.township, tree.county, tmp_path)
        assert api.get_case(tree.county, case_id).petitioners[0].name == person.name
    finally:
        tree.close()
    home = tree.county.home
    for args in (("case", "list"), ("case", "show", case_id)):
        result = invoke(*args, home_dir=home)
        assert result.exit_code == 0, result.output
        assert case_id in result.output
        assert not (CONTROLS | {"\t"}) & set(result.output)
        assert not any(line.startswith(FAKE_LINE) for line in result.output.splitlines())
    shown = invoke("case", "show", case_id, home_dir=home).output
    assert "请求追讨\ufffd[2J \ufffd\ufffd拖欠工资 " + FAKE_LINE in shown
    assert "赵某\ufffd[2J \ufffd\ufffd甲" in shown
    as_json = invoke("case", "show", case_id, "--json", home_dir=home).output
    assert not CONTROLS & set(as_json)
    case = json.loads(as_json)
    assert case["request"] == f"请求追讨{HOSTILE}拖欠工资\n{FAKE_LINE}\t完"
    assert case["petitioners"][0]["name"] == person.name


def test_a_refusal_quoting_another_node_s_text_is_printed_without_control_sequences(
        tmp_path, invoke):
    """A stolen village key numbers a case ``…ESC[2J…``: the township refuses it, and
    the reason, which quotes the number, is printed clean by ``bundle import`` and
    ``quarantine list``."""
    tree = build_tree(tmp_path)
    try:
        register(tree.village, serial=1)
        carry(tree.village, tree.township, tmp_path)
        forged = next_event(tree.village, entity_id=f"431202101201-2026-{HOSTILE}\n{FAKE_LINE}")
        path = tmp_path / "forged.xfb"
        path.write_bytes(seal_pages(tree.village, tree.township,
                                    [sync_wire([forged], certs_from=tree.village)]))
    finally:
        tree.close()
    outputs = [invoke(*args, home_dir=tree.township.home)
               for args in (("bundle", "import", str(path)), ("quarantine", "list"),
                            ("quarantine", "list", "--json"))]
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert not CONTROLS & set(result.output)
        assert not any(line.startswith(FAKE_LINE) for line in result.output.splitlines())
    assert "2026-\ufffd[2J \ufffd\ufffd " + FAKE_LINE in outputs[1].output
    [row] = json.loads(outputs[2].output)
    assert HOSTILE in row["reason"]


@SOME
@given(text, st.sampled_from(["\x1b", "\x7f", "\x85", "\x9b", "\u202e", "\u2066", "\u2028",
                              "\u200f", "\n", "\r"]))
def test_json_output_keeps_every_value_and_prints_no_control_or_bidi_character(value, char):
    """``json.dumps`` escapes C0 controls but prints DEL, C1 controls (U+009B is CSI)
    and bidirectional characters raw; ``--json`` escapes them too, and a JSON reader
    gets the same value."""
    data = {f"k{char}": [f"{value}{char}{value}", 1, None]}
    printed = json_text(data)
    assert not UNSAFE.search(printed.replace("\n", ""))
    assert json.loads(printed) == data


def test_an_error_naming_another_node_s_text_is_printed_as_one_clean_line():
    """The CLI prints a refusal's values as one safe line each (``Group.invoke``): a
    certificate's name or a reason another node wrote cannot draw on the terminal."""
    from click.testing import CliRunner

    from xinfang.cli.base import group

    @group()
    def cli():
        """A root group for the one command under test."""

    @cli.command("go")
    def go():
        raise certs.TrustError(N_("certificate of {name} has a signature that does not verify"),
                               name=f"示例{HOSTILE}村\n{FAKE_LINE}")

    result = CliRunner().invoke(cli, ["go"])
    assert result.exit_code == 1
    assert "示例\ufffd[2J \ufffd\ufffd村 " + FAKE_LINE in result.output
    assert not CONTROLS & set(result.output)
    assert len(result.output.strip().splitlines()) == 1
