"""Bundles and envelopes under attack: authenticate first, stream, cap, type-check.

The attacker holds a stolen village key (a real enrolled key), a key of his
own, or a USB stick. Every file below is built by hand from the layout in
``sync/envelope.py`` (``hand_sealed``, its own implementation of format 2,
so the tests check the format as documented, not the code against itself)
and signed with a real key, then given to the real import: the library's,
or ``xinfang bundle import`` in a child process that reports its own peak
memory. Each is refused with a reason naming what was wrong, and
leaves the receiver's log, views, certificates and replay table as they were.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from functools import lru_cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sync_helpers import (COUNTY, build_tree, carry, event_ids, fingerprint, register,
                          seal_pages, views)
from xinfang.cli.main import build_cli
from xinfang.core import codec, keys
from xinfang.core.certs import Certificate, chain_of
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Draft, Node
from xinfang.sync import bundle, envelope, inflation, trust
from xinfang.sync.envelope import EnvelopeError
from xinfang.sync.wire import PageError, frontier, frontier_to_wire

#: the child's peak resident memory may not pass this (the bound promised: about 100 MB); an
#: ``xinfang node show`` peaks at about 42 MB of it
PEAK = 100 * 1024 * 1024
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8", "XINFANG_OPERATOR": "测试员",
       "XINFANG_LANG": "zh_CN"}


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree")
    yield made
    made.close()


# -- files made by hand ----------------------------------------------------------


def hand_sealed(sender: NodeKeys, receiver: Node, items: list[bytes], chain=None,
                credentials: bytes | None = None, header: dict | None = None,
                kind: str = "bundle") -> bytes:
    """An envelope of format 2, written from the layout in ``sync/envelope.py``.

    ``items`` are the plaintexts of sections 1.. exactly as they are sealed
    (zlib output, or anything else); the credentials section holds ``chain``
    (canonically encoded) unless ``credentials`` gives its bytes; ``header``
    overrides or adds header fields. Signed with ``sender``'s key.
    """
    ephemeral = X25519PrivateKey.generate()
    fields = {"v": 2, "kind": kind, "from": sender.author, "to": receiver.info.author,
              "id": os.urandom(16).hex(),
              "ephemeral": ephemeral.public_key().public_bytes(Encoding.Raw,
                                                               PublicFormat.Raw).hex()}
    fields.update(header or {})
    head = codec.encode({k: v for k, v in fields.items() if v is not None})
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(
        bytes.fromhex(receiver.info.encryption)))
    aead = ChaCha20Poly1305(HKDF(algorithm=hashes.SHA256(), length=32,
                                 salt=hashlib.sha256(head).digest(),
                                 info=b"xinfang-envelope-key-v2").derive(shared))
    if credentials is None:
        credentials = codec.encode({} if chain is None else {"chain": chain})
    out = b"XINFANG-ENVELOPE-2\n" + struct.pack(">I", len(head)) + head
    for number, plaintext in enumerate([credentials, *items]):
        sealed = aead.encrypt(number.to_bytes(12, "big"), plaintext, None)
        out += struct.pack(">I", len(sealed)) + sealed
    out += struct.pack(">I", 0)
    return out + sender.sign(b"xinfang-envelope-v2\x00" + hashlib.sha256(out).digest())


def chain_wire(node: Node) -> list:
    return [c.to_wire() for c in chain_of(node.db, node.info.author)]


def item(value) -> bytes:
    """A section's plaintext as an honest sender makes it."""
    return zlib.compress(codec.encode(value))


def head(node: Node, **fields) -> bytes:
    return item({"pages": [], "frontier": frontier_to_wire(frontier(node.db)), "refused": [],
                 **fields})


@lru_cache(maxsize=1)
def zlib_bomb(compressed: int = 256 * 1024) -> bytes:
    """A zlib stream of ``compressed`` bytes that inflates about 1000 times (to zeros)."""
    packer, zeros, out = zlib.compressobj(9), bytes(1 << 20), bytearray()
    while len(out) < compressed:
        out += packer.compress(zeros)
    return bytes(out + packer.flush())


def state(node: Node) -> tuple:
    """Everything an import could change: log, views, certificates, replay table."""
    return (event_ids(node), views(node),
            node.db.execute("select subject, raw from certs order by subject").fetchall(),
            node.db.execute("select id from seen_envelopes order by id").fetchall())


def import_file(node: Node, data: bytes, directory: Path):
    path = Path(directory) / f"hand-{os.urandom(4).hex()}.xfb"
    path.write_bytes(data)
    return bundle.import_bundle(node, path)


#: the child runs the real command line, then reports its peak memory: the high-water
#: mark of its own address space (``VmHWM``). Not ``wait4``'s ``ru_maxrss``: on Linux that
#: keeps the high-water mark of the process it was forked from, here the test runner.
CHILD = ("import atexit, os\n"
         "def peak():\n"
         "    with open('/proc/self/status') as status:\n"
         "        kib = next(l for l in status if l.startswith('VmHWM:')).split()[1]\n"
         "    with open(os.environ['PEAK_FILE'], 'w') as out:\n"
         "        out.write(kib)\n"
         "atexit.register(peak)\n"
         "from xinfang.cli.main import main\n"
         "main()\n")


def xinfang_peak(home: Path, *args: str, timeout: float = 300) -> tuple[int, str, int]:
    """Run the real ``xinfang`` in a child process: (exit code, output, its peak RSS in bytes)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("the peak memory of a process is read from /proc (Linux)")
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        proc = subprocess.run([sys.executable, "-c", CHILD, "--home", str(home), *args],
                              capture_output=True, timeout=timeout,
                              env={**ENV, "PEAK_FILE": str(peak_file)})
        output = (proc.stdout + proc.stderr).decode("utf-8")
        return proc.returncode, output, int(peak_file.read_text()) * 1024


# -- streaming, and the caps -----------------------------------------------------


@pytest.mark.parametrize("where", ["head", "page"])
def test_a_256_kib_zlib_bomb_from_a_stolen_key_is_refused_in_little_memory(tree, tmp_path,
                                                                           where):
    """The village's own enrolled key signs it; ``xinfang bundle import`` at the township
    refuses it by the ratio cap, having inflated 8 MiB of the ~256 MiB (about 54 MB at
    its peak when written)."""
    village, township = tree.village, tree.township
    bomb = zlib_bomb()
    assert len(bomb) >= 256 * 1024
    assert len(zlib.decompressobj().decompress(bomb[:4096], 1 << 20)) == 1 << 20
    items = [bomb] if where == "head" else [head(village, events=1), bomb]
    path = tmp_path / "bomb.xfb"
    path.write_bytes(hand_sealed(village.keys, township, items, chain_wire(village)))
    before = state(township)

    code, output, peak = xinfang_peak(township.home, "bundle", "import", str(path))
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误："), output
    assert "压缩炸弹" in lines[0] and f"超过真实内容所能达到的 {inflation.MAX_RATIO} 倍" \
        in lines[0], lines[0]
    assert peak < PEAK, f"the child peaked at {peak / 2**20:.0f} MiB"
    assert state(township) == before


def test_a_large_genuine_bundle_streams_through_xinfang_bundle_import(tree, tmp_path):
    """8 MiB, eight pages: imported whole, in the memory of one page, not of the file.

    Measured when written: this release peaks at about 57 MB, release 0.1.0
    (the whole file, then the whole payload inflated and parsed) at 134 MB.
    """
    village, township = tree.village, tree.township
    village.append_many(Draft("settlement.settle", "settlement", os.urandom(32).hex(),
                              village.info.area,
                              {"note": base64.b64encode(os.urandom(1500)).decode(),
                               "by": "测试员"}) for _ in range(4000))
    path = tmp_path / "large.xfb"
    summary = bundle.export_bundle(village, township.info.name, path)
    assert summary.pages >= 8 and summary.bytes > 8 * 1024 * 1024
    code, output, peak = xinfang_peak(township.home, "bundle", "import", str(path), "--json")
    assert code == 0, output
    assert json.loads(output)["applied"] == 4000
    assert peak < PEAK, f"the child peaked at {peak / 2**20:.0f} MiB"
    assert event_ids(village) <= event_ids(township)


def test_a_section_past_the_hard_cap_is_refused_whatever_its_ratio(tree, tmp_path):
    """Compressible only ~9 times, so the ratio cap never fires: the output cap does."""
    village, township = tree.village, tree.township
    packer = zlib.compressobj(6)
    data = b"".join(packer.compress(os.urandom(100) + bytes(924))  # 33 MiB in all
                    for _ in range(inflation.MAX_ITEM // 1024 + 1024)) + packer.flush()
    assert inflation.MAX_ITEM / len(data) < inflation.MAX_RATIO
    before = state(township)
    with pytest.raises(EnvelopeError, match=f"第 1 段解压后超过 {inflation.MAX_ITEM} 字节"):
        import_file(township, hand_sealed(village.keys, township, [data], chain_wire(village)),
                    tmp_path)
    assert state(township) == before


def test_the_ratio_cap_counts_the_whole_envelope_not_each_section():
    """Many sections, each under the floor, cannot add up to a bomb."""
    small = zlib.compress(bytes(2 * 1024 * 1024), 9)  # 2 MiB from ~2 KiB
    caps = inflation.Inflation()
    with pytest.raises(EnvelopeError, match="压缩炸弹"):
        for number in range(1, 100):
            caps.inflate(small, number)
    assert caps.given <= inflation.RATIO_FLOOR and number == 5
    genuine = inflation.Inflation()
    assert genuine.inflate(zlib.compress(os.urandom(3 << 20)), 1) and genuine.sections == 1


def test_a_page_that_does_not_parse_stops_the_import_there_and_it_resumes(tree, tmp_path):
    """Pages are applied as they are read: the ones before a bad page stay applied,
    the bundle is not marked imported, and the genuine bundle later completes it."""
    village, township = tree.village, tree.township
    register(village, 1)
    genuine = tmp_path / "genuine.xfb"
    bundle.export_bundle(village, township.info.name, genuine)
    opened = envelope.open_(township.keys, genuine.read_bytes(), "bundle")
    first = opened.more[0]
    bad = hand_sealed(village.keys, township, [head(village), item(first), item("no page")],
                      chain_wire(village))
    with pytest.raises(PageError):
        import_file(township, bad, tmp_path)
    assert event_ids(village) <= event_ids(township)
    assert township.db.execute("select count(*) from seen_envelopes").fetchone()[0] == 0
    summary = bundle.import_bundle(township, genuine)
    assert (summary.applied, summary.duplicates) == (0, 1)


# -- authenticate first ----------------------------------------------------------


def _foreign_chain(attacker: NodeKeys) -> list:
    """A well-formed chain for ``attacker``'s key under a root of the attacker's own."""
    fake_root = NodeKeys.generate()
    root = Certificate.issue(fake_root, subject=fake_root.author,
                             encryption=fake_root.encryption_public, area=COUNTY[0],
                             level="county", name="冒充的县")
    cert = Certificate.issue(fake_root, subject=attacker.author,
                             encryption=attacker.encryption_public, area="431202101",
                             level="township", name="冒充的镇")
    return [cert.to_wire(), root.to_wire()]


def test_a_bundle_from_a_key_nobody_certified_is_refused_before_anything_is_inflated(
        tree, tmp_path):
    """Its contents are not zlib at all: the refusal names the sender, not the
    contents, so nothing of them was inflated; the chain it offers is not kept."""
    attacker, township = NodeKeys.generate(), tree.township
    before = state(township)
    garbage = [os.urandom(4096)]
    for chain, says in ((_foreign_chain(attacker), "既不是本节点的上级"),
                        (None, "没有证书链")):
        with pytest.raises((trust.TrustError, EnvelopeError), match=says):
            import_file(township, hand_sealed(attacker, township, garbage, chain), tmp_path)
    assert state(township) == before


def test_a_bundle_from_an_enrolled_node_that_is_no_neighbour_is_refused_before_inflating(
        tree, tmp_path):
    """A stolen village key writing straight to the county, over its township's head."""
    village, county = tree.village, tree.county
    carry(tree.township, county, tmp_path)
    before = state(county)
    with pytest.raises(trust.TrustError, match="既不是本节点的上级"):
        import_file(county, hand_sealed(village.keys, county, [zlib_bomb()],
                                        chain_wire(village)), tmp_path)
    assert state(county) == before


def test_a_signature_by_another_key_is_refused_before_anything_is_decrypted(tree, tmp_path):
    village, township = tree.village, tree.township
    data = bytearray(hand_sealed(village.keys, township, [zlib_bomb()], chain_wire(village)))
    data[-64:] = NodeKeys.generate().sign(b"xinfang-envelope-v2\x00" + bytes(32))
    before = state(township)
    with pytest.raises(EnvelopeError, match="发送方的签名验证不通过"):
        import_file(township, bytes(data), tmp_path)
    assert state(township) == before


def test_open_checks_the_sender_before_it_inflates(tree):
    """``envelope.open_(…, check)``, as HTTP uses it: the check sees the header and the
    chain first, and its refusal is what the caller gets."""
    village, township = tree.village, tree.township
    data = hand_sealed(village.keys, township, [zlib_bomb()], chain_wire(village),
                       kind="request", header={"sent": 1})
    seen = []

    def check(header, credentials):
        seen.append((header["from"], credentials["chain"]))
        raise trust.TrustError("refused by the check")  # i18n: identifier

    with pytest.raises(trust.TrustError, match="refused by the check"):
        envelope.open_(township.keys, data, "request", check)
    assert seen == [(village.info.author, chain_wire(village))]
    with pytest.raises(EnvelopeError, match="压缩炸弹"):
        envelope.open_(township.keys, data, "request")


def test_a_bundle_of_release_0_1_0_is_refused_naming_the_release_that_reads_it(
        tree, tmp_path):
    header = codec.encode({"v": 1, "kind": "bundle", "from": tree.village.info.author,
                           "to": tree.township.info.author})
    path = tmp_path / "old.xfb"
    path.write_bytes(b"XINFANG-ENVELOPE-1\n" + struct.pack(">I", len(header)) + header
                     + struct.pack(">Q", 16) + bytes(16 + 64))
    assert envelope.what_file(path.read_bytes()) == "bundle"
    result = CliRunner().invoke(build_cli(), ["--home", str(tree.township.home), "bundle",
                                              "import", str(path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "xinfang 0.1.0" in lines[0] and "数据包" in lines[0], lines[0]


# -- every field type-checked ----------------------------------------------------

SMALL_ORDER = "01" + "00" * 31
HEADERS = {
    "version a string": ({"v": "2"}, "格式版本为 '2'"),
    "version 3": ({"v": 3}, "格式版本为 3"),
    "kind unknown": ({"kind": "pages"}, "文件类型 'pages'"),
    "kind a number": ({"kind": 7}, "文件类型 7"),
    "from not hex": ({"from": "z" * 64}, "字段 from 不是 64 位"),
    "from of small order": ({"from": SMALL_ORDER}, "阶过小"),
    "to too short": ({"to": "ab"}, "字段 to 不是 64 位"),
    "id a number": ({"id": 12345}, "字段 id 不是 32 位"),
    "ephemeral of small order": ({"ephemeral": SMALL_ORDER}, "阶过小"),
    "ephemeral missing": ({"ephemeral": None}, "缺少字段"),
    "sent negative": ({"sent": -1}, "字段 sent 不是非负整数"),
    "sent a string": ({"sent": "1700000000000"}, "字段 sent 不是非负整数"),
    "unknown field": ({"chain": []}, "未知字段 chain"),
}


@pytest.mark.parametrize("what", list(HEADERS))
def test_every_header_field_is_type_checked(tree, tmp_path, what):
    village, township = tree.village, tree.township
    fields, says = HEADERS[what]
    before = state(township)
    data = hand_sealed(village.keys, township, [head(village)], chain_wire(village),
                       header=fields)
    with pytest.raises(EnvelopeError, match=says):
        import_file(township, data, tmp_path)
    assert state(township) == before


def _heads(village: Node) -> dict:
    good = {"pages": [], "frontier": frontier_to_wire(frontier(village.db)), "refused": []}
    author = village.info.author
    return {
        "not a map": (["pages"], "不是映射"),
        "frontier missing": ({k: v for k, v in good.items() if k != "frontier"},
                             "缺少字段 frontier"),
        "pages not a list": ({**good, "pages": {"events": []}}, "字段 pages 不是列表"),
        "refused not a list": ({**good, "refused": "none"}, "字段 refused 不是列表"),
        "frontier entry short": ({**good, "frontier": [[author, 0]]}, "进度表第 1 项"),
        "frontier epoch a string": ({**good, "frontier": [[author, "0", 1]]}, "进度表第 1 项"),
        "frontier seq negative": ({**good, "frontier": [[author, 0, -1]]}, "进度表第 1 项"),
        "frontier seq a boolean": ({**good, "frontier": [[author, 0, True]]}, "进度表第 1 项"),
        "frontier author not a key": ({**good, "frontier": [["村", 0, 1]]}, "进度表第 1 项"),
        "refusal not a pair": ({**good, "refused": [["a" * 64]]}, "第 1 条拒收记录"),
        "refusal reason a number": ({**good, "refused": [["a" * 64, 7]]}, "第 1 条拒收记录"),
        "refusal id not an id": ({**good, "refused": [["x", "原因"]]}, "第 1 条拒收记录"),
        "events negative": ({**good, "events": -5}, "字段 events 不是非负整数"),
        "unknown field": ({**good, "chain": []}, "含有未知字段 chain"),
    }


def test_every_field_of_the_bundle_head_is_type_checked(tree, tmp_path):
    village, township = tree.village, tree.township
    register(village, 1)
    before = state(township)
    for what, (value, says) in _heads(village).items():
        data = hand_sealed(village.keys, township, [item(value)], chain_wire(village))
        with pytest.raises(EnvelopeError) as caught:
            import_file(township, data, tmp_path)
        message = str(caught.value)
        assert message.startswith("数据包内容格式有误") and says in message, (what, message)
    assert state(township) == before


@pytest.mark.parametrize("credentials, says", [
    (codec.encode([]), "不是至多含一条证书链的映射"),
    (codec.encode({"chain": [], "root": "x"}), "不是至多含一条证书链的映射"),
    (b"{\"chain\": []}", "身份凭据已损坏"),
    (codec.encode({"chain": "none"}), "证书链是至多"),
])
def test_the_credentials_section_is_type_checked(tree, tmp_path, credentials, says):
    village, township = tree.village, tree.township
    before = state(township)
    with pytest.raises(EnvelopeError, match=says):
        import_file(township, hand_sealed(village.keys, township, [head(village)],
                                          credentials=credentials), tmp_path)
    assert state(township) == before


def test_damaged_framing_is_named(tree, tmp_path):
    village, township = tree.village, tree.township
    good = hand_sealed(village.keys, township, [head(village)], chain_wire(village))
    at = len(b"XINFANG-ENVELOPE-2\n") + 4 + struct.unpack(">I", good[19:23])[0]
    tiny = good[:at] + struct.pack(">I", 3) + b"abc" + good[at:]
    huge = good[:at] + struct.pack(">I", envelope.MAX_SECTION + 1) + good[at + 4:]
    empty = hand_sealed(village.keys, township, [], chain_wire(village))
    for data, says in ((tiny, "第 0 段只有 3 字节"), (huge, f"超过上限 {envelope.MAX_SECTION}"),
                       (empty, "没有任何内容")):
        with pytest.raises(EnvelopeError, match=says):
            import_file(township, data, tmp_path)


def test_a_byte_changed_after_the_signature_was_checked_is_still_refused(tree, tmp_path):
    """A file rewritten between the check of its signature and the reading of its pages
    (a shared drive, a second process) meets each section's authentication tag."""
    village, township = tree.village, tree.township
    register(village, 1)
    path = tmp_path / "b.xfb"
    bundle.export_bundle(village, township.info.name, path)
    before = state(township)
    with open(path, "r+b") as handle:
        reader = envelope.Reader(handle, township.keys, "bundle")
        reader.credentials()
        handle.seek(-100, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-100, os.SEEK_END)
        handle.write(bytes([byte[0] ^ 1]))
        handle.flush()
        with pytest.raises(EnvelopeError, match="解密失败"):
            list(reader.items())
    assert state(township) == before


# -- no bundle for a revoked key -------------------------------------------------


def test_no_bundle_is_exported_to_a_revoked_node(tree, tmp_path):
    """Whoever holds the revoked key could read it: ``bundle export`` refuses, naming the
    node and the revocation, and writes nothing; the node's new key is served again."""
    county, township, village = tree.county, tree.township, tree.village
    register(village, 1)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    revoke = county.append(Draft("trust.revoke", "trust", village.info.author,
                                 village.info.area, {"epoch": 0, "seq": 1,
                                                     "reason": "测试：村站电脑被盗"}))
    carry(county, township, tmp_path)
    out = tmp_path / "usb" / "to-village.xfb"
    out.parent.mkdir()
    sent = township.db.execute("select sent from peers where author = ?",
                               [village.info.author]).fetchone()
    result = CliRunner().invoke(build_cli(), ["--home", str(township.home), "bundle", "export",
                                              "--to", village.info.name, "--out", str(out)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    for needle in (village.info.name, fingerprint(village), "吊销", "trust.revoke",
                   revoke.id[:16], "纪元 0 序号 1", "不再向其导出数据包"):
        assert needle in lines[0], (needle, lines[0])
    assert list(out.parent.iterdir()) == []
    assert township.db.execute("select sent from peers where author = ?",
                               [village.info.author]).fetchone() == sent

    request = trust.rotate_keys(village)  # the office recovers: a new key, certified anew
    payload = trust.sign_request(township, request)
    trust.import_certificate(village, envelope.open_(village.keys, envelope.seal(
        township.keys, request.subject, request.encryption, "enrolment", payload),
        "enrolment").payload)
    bundle.export_bundle(township, keys.fingerprint(request.subject), out)
    assert bundle.import_bundle(village, out).sender == township.info.name


# -- the one-piece form still reads ----------------------------------------------


def test_a_bundle_sealed_in_one_piece_reads_like_a_streamed_one(tree, tmp_path):
    """``envelope.seal`` of the whole payload (pages in the head, the chain lifted into
    the credentials) imports like ``export_bundle``'s page-per-section file."""
    village, township = tree.village, tree.township
    register(village, 1)
    streamed = tmp_path / "streamed.xfb"
    bundle.export_bundle(village, township.info.name, streamed)
    pages = list(envelope.open_(township.keys, streamed.read_bytes(), "bundle").more)
    one_piece = seal_pages(village, township, pages)
    opened = envelope.open_(township.keys, one_piece, "bundle")
    assert opened.more == () and opened.payload["pages"] == pages
    assert opened.payload["chain"] == chain_wire(village)
    assert import_file(township, one_piece, tmp_path).applied == 1
    assert bundle.import_bundle(township, streamed).duplicates == 1
