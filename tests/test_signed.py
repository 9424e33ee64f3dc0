"""Signed documents: events, certificates and enrolment requests share one form.

Each kind is canonical bytes signed over its own domain prefix, and travels
as ``[base64 bytes, base64 signature]``. These tests check the round trip of
every kind, that a document of one kind is refused as another, that only
canonical bytes are read, that every malformed wire form is refused with a
named error and a message wherever one is read (the parser, a page, a bundle,
an HTTP request, an enrolment file), and that a node made by release 0.1.0
keeps its certificate after the migration to the one form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_helpers import build_tree, error_of, post, serve
from xinfang.cli.main import build_cli
from xinfang.core import codec, i18n, signed, store
from xinfang.core.certs import Certificate, TrustError, chain_from_wire, chain_of, validate_chain
from xinfang.core.errors import InvalidEvent, InvalidInput, NodeError
from xinfang.core.event import Event
from xinfang.core.hlc import Timestamp
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Node
from xinfang.core.signed import SignedError
from xinfang.sync import bundle, envelope, trust
from xinfang.sync.envelope import EnvelopeError
from xinfang.sync.wire import Page, PageError

KEYS = NodeKeys.generate()
DATA_0_1_0 = Path(__file__).parent / "data" / "node-0.1.0"


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path / "tree", villages=1)
    yield built
    built.close()


def an_event() -> Event:
    return Event.create(KEYS, epoch=0, seq=1, prev=None, hlc=Timestamp(1_767_225_600_000, 0),
                        type="case.register", entity="case", entity_id="431202101201-2026-00001",
                        area="431202101201", body={"request": "请求追讨拖欠工资"})


def a_certificate() -> Certificate:
    return Certificate.issue(KEYS, subject=KEYS.author, encryption=KEYS.encryption_public,
                             area="431202", level="county", name="示例县信访局")


def request_content() -> dict:
    return {"v": 1, "subject": KEYS.author, "encryption": KEYS.encryption_public,
            "area": "431202101201", "level": "village", "name": "示例一镇示例一村信访站"}


def a_request() -> trust.EnrolmentRequest:
    return trust.EnrolmentRequest.from_document(signed.sign(KEYS, "enrolment", request_content()))


def read_request(wire) -> trust.EnrolmentRequest:
    return trust.EnrolmentRequest.from_json(json.dumps({"enrolment_request": wire}))


MAKERS = {"event": an_event, "certificate": a_certificate, "enrolment": a_request}
READERS = {"event": Event.from_wire, "certificate": Certificate.from_wire,
           "enrolment": read_request}


# -- round trips -----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(signed.KINDS))
def test_each_kind_round_trips_through_the_one_wire_form(kind):
    document = MAKERS[kind]()
    wire = document.to_wire()
    assert wire == [base64.b64encode(document.raw).decode(),
                    base64.b64encode(document.signature).decode()]
    carried = json.loads(json.dumps(wire))
    assert READERS[kind](carried) == document
    generic = signed.from_wire(kind, carried)
    assert (generic.kind, generic.raw, generic.signature) == (kind, document.raw,
                                                             document.signature)
    assert generic.content == codec.decode(document.raw)
    assert generic.verify(KEYS.author)
    assert generic.to_wire() == wire == signed.Signed.from_wire(kind, wire).to_wire()


def test_the_domain_prefixes_are_those_of_release_0_1_0():
    assert {k: v.domain for k, v in signed.KINDS.items()} == {
        "event": b"xinfang-event-v1\x00", "certificate": b"xinfang-cert-v1\x00",
        "enrolment": b"xinfang-enroll-v1\x00"}


def test_a_certificate_has_one_wire_form_everywhere(tree, tmp_path):
    """Page, bundle chain, HTTP chain, enrolment file and the meta value alike."""
    township, village = tree.township, tree.village
    cert = village.certificate
    chain = chain_of(village.db, village.info.author)
    expected = [c.to_wire() for c in chain]
    assert chain[0] == cert
    assert json.loads(store.get_meta(village.db, "certificate")) == cert.to_wire()

    assert Page([], (), chain).to_wire()["certs"] == expected

    path = tmp_path / "up.xfb"
    bundle.export_bundle(village, township.info.name, path)
    assert envelope.open_(township.keys, path.read_bytes(), "bundle").payload["chain"] == expected

    with serve(township) as url:
        body = envelope.seal(village.keys, township.info.author, township.info.encryption,
                             "request", {"op": "hello", "frontier": [], "chain": expected},
                             extra={"sent": int(time.time() * 1000)})
        status, answer = post(url, body)
    assert status == 200
    hello = envelope.open_(village.keys, answer, "response").payload
    assert hello["chain"] == [c.to_wire() for c in chain_of(township.db, township.info.author)]

    rotated = trust.rotate_keys(village)
    payload = trust.sign_request(township, trust.EnrolmentRequest.from_json(rotated.to_json()))
    new = Certificate.from_wire(payload["certificate"])
    assert payload["certificate"] == new.to_wire()
    assert payload["chain"] == expected[1:]
    trust.import_certificate(village, payload)
    assert village.certificate == new
    assert json.loads(store.get_meta(village.db, "certificate")) == new.to_wire()


def test_the_enrolment_request_file_carries_the_wire_form(node):
    request = trust.make_request(node)
    data = json.loads(request.to_json())
    assert data == {"enrolment_request": request.to_wire()}
    assert trust.EnrolmentRequest.from_json(request.to_json()) == request
    assert request.signature_valid()


# -- domain separation -----------------------------------------------------------


@pytest.mark.parametrize("signed_as, read_as", [(a, b) for a in signed.KINDS
                                                for b in signed.KINDS if a != b])
def test_a_document_signed_as_one_kind_does_not_verify_as_another(signed_as, read_as):
    document = signed.sign(KEYS, signed_as, request_content())
    assert document.verify(KEYS.author)
    other = signed.from_wire(read_as, document.to_wire())
    assert other.content == document.content
    assert not other.verify(KEYS.author)


def test_an_enrolment_request_shaped_like_a_certificate_is_not_a_certificate():
    """A node signs its own request; with an "issuer" field it would read as a
    self-signed certificate, but the domain prefix keeps its signature from
    verifying as one."""
    document = signed.sign(KEYS, "enrolment", {**request_content(), "issuer": KEYS.author})
    cert = Certificate.from_wire(document.to_wire())
    assert cert.self_signed and not cert.signature_valid()
    with pytest.raises(TrustError, match="签名验证不通过"):
        validate_chain([cert])


def test_a_certificate_is_not_an_enrolment_request():
    with pytest.raises(TrustError, match="注册申请的签名验证不通过"):
        read_request(a_certificate().to_wire())


def test_an_event_is_not_a_certificate_nor_a_certificate_an_event():
    with pytest.raises(InvalidInput, match="证书缺少字段"):
        Certificate.from_wire(an_event().to_wire())
    with pytest.raises(InvalidEvent, match="事件格式错误：字段必须恰好是"):
        Event.from_wire(a_certificate().to_wire())


# -- canonical bytes -------------------------------------------------------------


def non_canonical(raw: bytes) -> dict[str, bytes]:
    content = codec.decode(raw)
    return {
        "white space": json.dumps(content, ensure_ascii=False, sort_keys=True).encode(),
        "reordered keys": json.dumps(dict(sorted(content.items(), reverse=True)),
                                     ensure_ascii=False, separators=(",", ":")).encode(),
        "escaped letters": json.dumps(content, sort_keys=True, separators=(",", ":")).encode(),
        "trailing newline": raw + b"\n",
    }


ERRORS = {"event": InvalidEvent, "certificate": InvalidInput, "enrolment": TrustError}


@pytest.mark.parametrize("kind", list(signed.KINDS))
@pytest.mark.parametrize("what", ["white space", "reordered keys", "escaped letters",
                                  "trailing newline"])
def test_non_canonical_bytes_are_refused_even_when_validly_signed(kind, what):
    raw = non_canonical(MAKERS[kind]().raw)[what]
    signature = KEYS.sign(signed.KINDS[kind].domain + raw)
    wire = signed.to_wire(raw, signature)
    with pytest.raises(SignedError, match="不是规范形式"):
        signed.parse(kind, raw, signature)
    with pytest.raises(SignedError, match="不是规范形式"):
        signed.from_wire(kind, wire)
    with pytest.raises(ERRORS[kind], match="不是规范形式"):
        READERS[kind](wire)


def test_oversized_documents_are_refused_before_decoding():
    limit = signed.KINDS["certificate"].max_bytes
    raw = b'"' + b"x" * limit + b'"'
    with pytest.raises(SignedError, match=f"证书有 {len(raw)} 字节；上限为 {limit}"):
        signed.parse("certificate", raw, b"")


# -- malformed wire forms --------------------------------------------------------

GOOD = a_certificate()
RAW64, SIG64 = GOOD.to_wire()


def _other_padding_bits(text: str) -> str:
    """The same bytes in base64 with non-zero padding bits (not the standard form)."""
    body = text.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(body[-1]) + 1]
    changed = body[:-1] + last + text[len(body):]
    assert base64.b64decode(changed) == base64.b64decode(text) and changed != text
    return changed


MALFORMED = {
    "null": None,
    "a string": RAW64,
    "a number": 7,
    "a dict": {"certificate": RAW64, "signature": GOOD.signature.hex()},
    "empty list": [],
    "one item": [RAW64],
    "three items": [RAW64, SIG64, SIG64],
    "bytes instead of str": [GOOD.raw, GOOD.signature],
    "numbers": [1, 2],
    "null items": [None, None],
    "nested list": [[RAW64], SIG64],
    "bad base64": ["!!not base64!!", SIG64],
    "unpadded base64": [RAW64, SIG64.rstrip("=")],
    "non-standard padding bits": [RAW64, _other_padding_bits(SIG64)],
    "url-safe alphabet": [RAW64.replace("+", "-").replace("/", "_") + "-_==", SIG64],
    "white space in base64": [RAW64[:8] + "\n" + RAW64[8:], SIG64],
    "non-ASCII text": ["证书", SIG64],
    "release 0.1.0 chain form": [GOOD.raw.decode("utf-8"), GOOD.signature.hex()],
    "base64 of bytes that are not the encoding": [base64.b64encode(b"\xff\xfe").decode(), SIG64],
    "base64 of nothing": ["", SIG64],
}


#: the malformed forms a JSON file or a sealed payload can hold (not bytes)
TRAVELLING = {what: value for what, value in MALFORMED.items()
              if what != "bytes instead of str"}


def _one_line_message(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message, message
    return message


@pytest.mark.parametrize("what", list(MALFORMED))
def test_malformed_wire_forms_are_refused_with_a_named_error(what):
    for kind in signed.KINDS:
        with pytest.raises(SignedError) as caught:
            signed.from_wire(kind, MALFORMED[what])
        message = _one_line_message(caught.value)
        assert f"已签名{i18n._(signed.KINDS[kind].label)}" in message or "编码" in message


def test_malformed_wire_messages_say_what_is_wrong():
    cases = {
        "a dict": "以 [base64 字节, base64 签名] 的形式传输；收到的是 映射 {'certificate'",
        "three items": "收到的是 含 3 项的列表",
        "bytes instead of str": "已签名证书的字节必须是 base64 字符串，不能是 bytes",
        "bad base64": "不是带填充的标准 base64",
        "unpadded base64": "已签名证书的签名不是带填充的标准 base64",
        "release 0.1.0 chain form": "已签名证书的字节不是带填充的标准 base64",
        "base64 of nothing": "证书的编码格式错误",
    }
    for what, expected in cases.items():
        with pytest.raises(SignedError, match=expected.replace("[", r"\[").replace("]", r"\]")):
            signed.from_wire("certificate", MALFORMED[what])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.binary(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(data=json_values | st.lists(st.text(alphabet="ABCab+/=0!", max_size=16), min_size=2,
                                   max_size=2))
def test_any_wire_value_is_read_or_refused_with_the_named_error(data):
    for kind in signed.KINDS:
        with pytest.raises(SignedError) as caught:
            signed.from_wire(kind, data)
        _one_line_message(caught.value)
    for read, error in ((Event.from_wire, InvalidEvent), (Certificate.from_wire, InvalidInput),
                        (chain_from_wire, InvalidInput)):
        try:
            read(data)
        except error as exc:
            _one_line_message(exc)


@pytest.mark.parametrize("what", list(MALFORMED))
def test_every_reader_of_a_certificate_refuses_a_malformed_one_clearly(what):
    broken = MALFORMED[what]
    with pytest.raises(InvalidInput):
        Certificate.from_wire(broken)
    with pytest.raises(SignedError, match="证书链的第 2 张证书："):
        chain_from_wire([GOOD.to_wire(), broken])
    with pytest.raises(InvalidEvent):
        Event.from_wire(broken)
    if what in TRAVELLING:
        with pytest.raises(TrustError, match="不是注册申请文件"):
            read_request(broken)
    with pytest.raises(TrustError, match="不是注册申请文件"):
        trust.EnrolmentRequest.from_json(json.dumps({"enrolment_request": [RAW64, None]}))
    with pytest.raises(PageError, match="数据页含格式错误的证书"):
        Page.from_wire({"events": [], "boxes": [], "certs": [broken], "ranges": []})
    with pytest.raises(PageError, match="数据页含格式错误的事件"):
        Page.from_wire({"events": [broken], "boxes": [], "certs": [], "ranges": []})


@pytest.mark.parametrize("chain", [None, "chain", {"0": [RAW64, SIG64]}, [[RAW64, SIG64]] * 9])
def test_a_chain_that_is_not_a_short_list_is_refused(chain):
    with pytest.raises(SignedError, match="证书链是至多 8 张证书的列表"):
        chain_from_wire(chain)


def test_enrolment_files_with_a_malformed_certificate_are_refused(tree):
    village = tree.village
    for what, broken in TRAVELLING.items():
        forms = [{"certificate": broken, "chain": []},
                 {"certificate": village.certificate.to_wire(), "chain": [broken]}, [broken]]
        if not isinstance(broken, list):  # some lists are chains, only of wrong certificates
            forms += [{"certificate": village.certificate.to_wire(), "chain": broken}, broken]
        for data in forms:
            with pytest.raises(TrustError, match="不是 `xinfang enroll sign` 写出的证书文件"):
                trust.import_certificate(village, data)
    with pytest.raises(TrustError, match="由旧版本写出"):
        trust.EnrolmentRequest.from_json(json.dumps(
            {"enrolment_request": RAW64, "signature": GOOD.signature.hex()}))


def _bundle_with_chain(sender: Node, receiver: Node, chain) -> bytes:
    payload = {"pages": [], "frontier": [], "refused": [], "chain": chain}
    return envelope.seal(sender.keys, receiver.info.author, receiver.info.encryption,
                         bundle.KIND, payload)


def test_a_bundle_with_a_broken_chain_entry_is_refused_in_one_line(tree, tmp_path):
    village, township = tree.village, tree.township
    good = [c.to_wire() for c in chain_of(village.db, village.info.author)]
    seen = township.db.execute("select count(*) from seen_envelopes").fetchone()
    for number, (what, broken) in enumerate(TRAVELLING.items()):
        path = tmp_path / f"broken-{number}.xfb"
        path.write_bytes(_bundle_with_chain(village, township, [good[0], broken, *good[2:]]))
        with pytest.raises(EnvelopeError) as caught:
            bundle.import_bundle(township, path)
        message = _one_line_message(caught.value)
        assert message.startswith("数据包内容格式有误：证书链的第 2 张证书："), \
            (what, message)
    path = tmp_path / "no-chain.xfb"
    path.write_bytes(_bundle_with_chain(village, township, {"chain": good}))
    with pytest.raises(EnvelopeError, match="证书链是至多"):
        bundle.import_bundle(township, path)
    assert township.db.execute("select count(*) from seen_envelopes").fetchone() == seen

    result = CliRunner().invoke(build_cli(), ["--home", str(township.home), "bundle", "import",
                                              str(tmp_path / "broken-0.xfb")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines == ["错误：数据包内容格式有误：证书链的第 2 张证书：已签名证书以 "
                     "[base64 字节, base64 签名] 的形式传输；收到的是 null"]


def test_an_http_request_with_a_broken_chain_entry_gets_a_clear_400(tree):
    village, township = tree.village, tree.township
    good = [c.to_wire() for c in chain_of(village.db, village.info.author)]
    with serve(township) as url:
        for what, broken in TRAVELLING.items():
            body = envelope.seal(village.keys, township.info.author, township.info.encryption,
                                 "request", {"op": "hello", "frontier": [],
                                             "chain": [good[0], broken]},
                                 extra={"sent": int(time.time() * 1000)})
            status, answer = post(url, body)
            assert status == 400, (what, answer)
            assert error_of(answer).startswith("证书链格式错误：证书链的第 2 张证书："), \
                (what, error_of(answer))


# -- the 0.1.0 meta value --------------------------------------------------------


def _digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["county", "village"])
def test_a_0_1_0_node_keeps_its_certificate_in_the_one_wire_form(name, tmp_path):
    before = _digests(DATA_0_1_0)
    home = tmp_path / name
    shutil.copytree(DATA_0_1_0 / name, home)
    with sqlite3.connect(home / "xinfang.db") as conn:
        old = json.loads(conn.execute("select value from meta where key = 'certificate'")
                         .fetchone()[0])
    conn.close()
    assert sorted(old) == ["certificate", "signature"]  # the 0.1.0 form

    node = Node.open(home)
    try:
        cert = node.certificate
        assert cert.raw == base64.b64decode(old["certificate"])
        assert cert.signature == bytes.fromhex(old["signature"])
        assert cert.signature_valid() and cert.subject == node.info.author
        assert json.loads(store.get_meta(node.db, "certificate")) == cert.to_wire()
        chain = chain_of(node.db, node.info.author)
        assert chain[0] == cert
        validate_chain(chain)
        assert chain[-1].subject == store.get_meta(node.db, "root_author")
        assert trust.own_certificate(node) == cert
    finally:
        node.close()
    again = Node.open(home)
    try:
        assert again.certificate == cert
    finally:
        again.close()
    assert _digests(DATA_0_1_0) == before


def test_a_stored_certificate_that_cannot_be_read_stops_the_migration_clearly(tmp_path):
    home = tmp_path / "county"
    shutil.copytree(DATA_0_1_0 / "county", home)
    with sqlite3.connect(home / "xinfang.db") as conn:
        conn.execute("update meta set value = ? where key = 'certificate'",
                     [json.dumps({"certificate": "!!", "signature": "zz"})])
    conn.close()
    with pytest.raises(NodeError, match="无法读取本节点保存的证书"):
        Node.open(home)
