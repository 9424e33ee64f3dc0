"""Keys, the node directory and the hybrid logical clock."""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import COUNTY, VILLAGE, case_input
from xinfang.core import codec
from xinfang.core.certs import Certificate
from xinfang.core.errors import InvalidEvent, InvalidInput, KeyError_, NodeError
from xinfang.core.event import Event
from xinfang.core.hlc import MAX_COUNTER, HybridClock, Timestamp
from xinfang.core.keys import NodeKeys, fingerprint
from xinfang.core.node import DB_NAME, KEYS_DIR, Node, default_home
from xinfang.core.verify import verify_log
from xinfang.plugins.cases import api

TODAY = dt.date(2026, 3, 1)
FINGERPRINT = re.compile(r"\A[A-Z2-7]{4}(-[A-Z2-7]{4}){4}\Z")


def init(home, **overrides) -> Node:
    args = dict(level="village", area=VILLAGE, name="测试村信访站")
    args.update(overrides)
    return Node.init(home, **args)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- creating a node -----------------------------------------------------------


def test_init_creates_database_and_owner_only_key_files(tmp_path):
    home = tmp_path / "node"
    init(home).close()
    assert (home / DB_NAME).is_file()
    for name in ("signing.pem", "encryption.pem"):
        assert mode(home / KEYS_DIR / name) == 0o600, name
    assert mode(home / KEYS_DIR) & 0o077 == 0
    assert mode(home) & 0o077 == 0


def test_key_files_are_owner_only_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        init(tmp_path / "node").close()
    finally:
        os.umask(old)
    for name in ("signing.pem", "encryption.pem"):
        assert mode(tmp_path / "node" / KEYS_DIR / name) == 0o600


def test_init_records_identity_that_open_reads_back(tmp_path):
    home = tmp_path / "node"
    with init(home, name="  示例村信访站 ") as node:
        author = node.keys.author
    with Node.open(home) as node:
        info = node.info
        assert (info.name, info.level, info.area, info.epoch, info.root) == (
            "示例村信访站", "village", VILLAGE, 0, False)
        assert info.author == author == node.keys.author
        assert info.encryption == node.keys.encryption_public


def test_init_accepts_the_chinese_level_label(tmp_path):
    with init(tmp_path / "node", level="县", area=COUNTY) as node:
        assert node.info.level == "county"


def test_init_accepts_an_existing_empty_directory(tmp_path):
    home = tmp_path / "node"
    home.mkdir()
    init(home).close()
    assert (home / DB_NAME).exists()


def test_init_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path):
    home = tmp_path / "node"
    home.mkdir()
    (home / "notes.txt").write_text("旧文件")
    with pytest.raises(NodeError, match="不为空"):
        init(home)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]
    assert (home / "notes.txt").read_text() == "旧文件"


def test_init_refuses_to_overwrite_an_existing_node(tmp_path):
    home = tmp_path / "node"
    with init(home) as node:
        author = node.info.author
    with pytest.raises(NodeError):
        init(home)
    with Node.open(home) as node:
        assert node.keys.author == author


@pytest.mark.parametrize("level", ["district", "", "Village", "区"])
def test_init_refuses_an_unknown_level_listing_the_known_ones(tmp_path, level):
    with pytest.raises(InvalidInput, match="没有.*这一层级.*village"):
        init(tmp_path / "node", level=level)
    assert not (tmp_path / "node").exists()


@pytest.mark.parametrize("level, area", [
    ("village", "431202101"),       # a township code for a village
    ("village", "4312021012011"),   # 13 digits
    ("township", VILLAGE),
    ("county", "4312"),
    ("province", "431"),
])
def test_init_refuses_an_area_code_of_the_wrong_length_for_the_level(tmp_path, level, area):
    with pytest.raises(InvalidInput, match="区划代码.*位"):
        init(tmp_path / "node", level=level, area=area)
    assert not (tmp_path / "node").exists()


@pytest.mark.parametrize("area", ["43120210120X", "4312021012-1", "４３１２０２", " 431202", ""])
def test_init_refuses_an_area_code_with_non_digits(tmp_path, area):
    with pytest.raises(InvalidInput, match="只能由数字组成"):
        init(tmp_path / "node", level="county" if len(area) <= 7 else "village", area=area)
    assert not (tmp_path / "node").exists()


def test_init_refuses_an_empty_name(tmp_path):
    with pytest.raises(InvalidInput, match="name"):
        init(tmp_path / "node", name="   ")
    assert not (tmp_path / "node").exists()


# -- passphrase ----------------------------------------------------------------


def test_passphrase_encrypts_both_key_files(tmp_path):
    home = tmp_path / "node"
    init(home, passphrase="村里的口令").close()
    for name in ("signing.pem", "encryption.pem"):
        data = (home / KEYS_DIR / name).read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), name


def test_without_passphrase_key_files_are_plain(tmp_path):
    home = tmp_path / "node"
    with init(home) as node:
        assert not node.keys_encrypted
    assert (home / KEYS_DIR / "signing.pem").read_bytes().startswith(
        b"-----BEGIN PRIVATE KEY-----")


def test_open_with_the_right_passphrase_loads_the_keys(tmp_path):
    home = tmp_path / "node"
    with init(home, passphrase="村里的口令") as node:
        author = node.info.author
    with Node.open(home, passphrase="村里的口令") as node:
        assert node.keys_encrypted
        assert node.keys.author == author
        api.register_case(node, case_input(), today=TODAY)
        assert verify_log(node.db).ok


def test_wrong_passphrase_is_reported_as_wrong(tmp_path):
    home = tmp_path / "node"
    init(home, passphrase="村里的口令").close()
    with Node.open(home, passphrase="别的口令") as node:
        with pytest.raises(KeyError_, match="口令错误"):
            node.keys


def test_missing_passphrase_says_how_to_give_one(tmp_path):
    home = tmp_path / "node"
    init(home, passphrase="村里的口令").close()
    with Node.open(home) as node:
        with pytest.raises(KeyError_, match="passphrase") as caught:
            node.keys
    message = str(caught.value)
    assert "--passphrase" in message and "XINFANG_PASSPHRASE" in message


def test_damaged_key_file_is_reported_not_a_traceback(tmp_path):
    home = tmp_path / "node"
    init(home).close()
    (home / KEYS_DIR / "signing.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    with Node.open(home) as node:
        with pytest.raises(KeyError_, match="已损坏"):
            node.keys


def test_keys_of_another_node_are_refused(tmp_path):
    init(tmp_path / "a").close()
    init(tmp_path / "b").close()
    for name in ("signing.pem", "encryption.pem"):
        (tmp_path / "a" / KEYS_DIR / name).write_bytes(
            (tmp_path / "b" / KEYS_DIR / name).read_bytes())
    with Node.open(tmp_path / "a") as node:
        with pytest.raises(NodeError, match="不属于本节点"):
            node.keys


# -- certificate ---------------------------------------------------------------


def test_root_node_has_a_valid_self_signed_certificate(tmp_path):
    home = tmp_path / "node"
    init(home, level="county", area=COUNTY, name="示例县信访局", root=True).close()
    with Node.open(home) as node:
        cert = node.certificate
        info = node.info
        assert info.root
        assert cert is not None
        assert cert.self_signed
        assert cert.signature_valid()
        assert (cert.subject, cert.issuer, cert.encryption) == (
            info.author, info.author, info.encryption)
        assert (cert.area, cert.level, cert.name) == (COUNTY, "county", "示例县信访局")


def test_root_certificate_with_altered_bytes_does_not_verify(tmp_path):
    with init(tmp_path / "node", level="county", area=COUNTY, root=True) as node:
        cert = node.certificate
    widened = codec.decode(cert.raw)
    widened["area"], widened["level"] = "4312", "city"  # well formed, so it parses
    forged = Certificate.parse(codec.encode(widened), cert.signature)
    assert forged.area == "4312"
    assert not forged.signature_valid()


def test_non_root_node_has_no_certificate(node):
    assert node.certificate is None
    assert not node.info.root


# -- opening -------------------------------------------------------------------


def test_open_refuses_a_missing_directory(tmp_path):
    with pytest.raises(NodeError, match="xinfang init"):
        Node.open(tmp_path / "nowhere")


def test_open_refuses_a_directory_without_a_database(tmp_path):
    home = tmp_path / "node"
    init(home).close()
    (home / DB_NAME).unlink()
    with pytest.raises(NodeError, match="没有节点"):
        Node.open(home)


def test_open_reports_a_database_overwritten_with_garbage_as_damaged(tmp_path):
    home = tmp_path / "node"
    init(home).close()
    size = (home / DB_NAME).stat().st_size
    (home / DB_NAME).write_bytes(bytes(range(256)) * (size // 256 + 1))
    with pytest.raises(NodeError, match="已损坏"):
        Node.open(home)


def test_open_reports_an_empty_database_file_as_not_a_node(tmp_path):
    home = tmp_path / "node"
    init(home).close()
    (home / DB_NAME).write_bytes(b"")
    with pytest.raises(NodeError, match="已损坏|没有节点身份"):
        Node.open(home)


def _overwrite_pages(path, tables: tuple[str, ...]) -> None:
    """Write garbage over every page of ``tables`` (and their indexes), nothing else."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("pragma page_size").fetchone()[0]
    pages = [row[0] for row in conn.execute(
        "select pageno from dbstat where name in (select name from sqlite_schema "
        f"where tbl_name in ({','.join('?' * len(tables))}))", tables)]
    conn.close()
    assert pages
    with open(path, "r+b") as handle:
        for page in pages:
            handle.seek((page - 1) * page_size)
            handle.write(b"\xa5" * page_size)


def test_open_reports_a_database_with_damaged_event_pages_as_damaged(tmp_path):
    # The meta table is intact, so the database opens, but the log is not
    # readable: this must still be a NodeError saying the database is
    # damaged, not a raw sqlite3.DatabaseError traceback.
    home = tmp_path / "node"
    with init(home) as node:
        for _ in range(3):
            api.register_case(node, case_input(), today=TODAY)
    _overwrite_pages(home / DB_NAME, ("events",))
    with pytest.raises(NodeError, match="已损坏"):
        Node.open(home)


# -- default home --------------------------------------------------------------


def test_xinfang_home_sets_the_default_node_directory(tmp_path, monkeypatch):
    home = tmp_path / "from-env"
    monkeypatch.setenv("XINFANG_HOME", str(home))
    assert default_home() == home
    init(None).close()
    assert (home / DB_NAME).exists()
    with Node.open() as node:
        assert node.home == home
        assert node.info.area == VILLAGE


def test_without_xinfang_home_the_default_is_under_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("XINFANG_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_home() == tmp_path / "data" / "xinfang"


# -- fingerprint ---------------------------------------------------------------


def test_fingerprint_is_five_groups_of_four_and_stable(tmp_path):
    home = tmp_path / "node"
    with init(home) as node:
        first = node.info.fingerprint
        author = node.info.author
    assert FINGERPRINT.match(first), first
    with Node.open(home) as node:
        assert node.info.fingerprint == first
    assert fingerprint(author) == first


def test_fingerprints_of_different_keys_differ():
    prints = {fingerprint(NodeKeys.generate().author) for _ in range(20)}
    assert len(prints) == 20
    assert all(FINGERPRINT.match(p) for p in prints)


# -- epochs --------------------------------------------------------------------


def test_new_epoch_starts_a_fresh_chain_at_seq_one(node):
    api.register_case(node, case_input(), today=TODAY)
    api.register_case(node, case_input(), today=TODAY)
    assert node.new_epoch() == 1
    api.register_case(node, case_input(), today=TODAY)
    row = node.db.execute(
        "select raw, sig from events order by pos desc limit 1").fetchone()
    event = Event.parse(row[0], row[1])
    assert (event.epoch, event.seq, event.prev) == (1, 1, None)
    assert event.signature_valid()
    report = verify_log(node.db)
    assert report.ok and report.feeds == 2 and report.events == 3


def test_new_epoch_survives_reopening(tmp_path):
    home = tmp_path / "node"
    with init(home) as node:
        api.register_case(node, case_input(), today=TODAY)
        node.new_epoch()
    with Node.open(home) as node:
        assert node.info.epoch == 1
        api.register_case(node, case_input(), today=TODAY)
        epochs = node.db.execute("select epoch, seq from events order by pos").fetchall()
    assert epochs == [(0, 1), (1, 1)]


def test_chain_links_each_event_to_the_previous_one(node):
    for _ in range(3):
        api.register_case(node, case_input(), today=TODAY)
    rows = node.db.execute("select id, seq, prev from events order by seq").fetchall()
    assert [r[1] for r in rows] == [1, 2, 3]
    assert rows[0][2] is None
    assert rows[1][2] == rows[0][0] and rows[2][2] == rows[1][0]


# -- hybrid logical clock ------------------------------------------------------


class FakeWall:
    def __init__(self, readings):
        self.readings = list(readings)

    def __call__(self) -> int:
        return self.readings.pop(0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=40))
def test_tick_is_strictly_increasing_whatever_the_wall_clock_does(readings):
    clock = HybridClock(now_ms=FakeWall(readings))
    stamps = [clock.tick() for _ in readings]
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    assert all(s.wall_ms >= r for s, r in zip(stamps, readings))


def test_tick_follows_the_wall_clock_when_it_moves_forward():
    clock = HybridClock(now_ms=FakeWall([1000, 1000, 2000]))
    assert clock.tick() == Timestamp(1000, 0)
    assert clock.tick() == Timestamp(1000, 1)
    assert clock.tick() == Timestamp(2000, 0)


def test_tick_after_the_wall_clock_goes_backwards_stays_ahead():
    clock = HybridClock(now_ms=FakeWall([5000, 4000, 3000]))
    first = clock.tick()
    assert clock.tick() == Timestamp(5000, 1)
    assert clock.tick() == Timestamp(5000, 2)
    assert first < Timestamp(5000, 1)


def test_observe_moves_the_clock_past_a_later_timestamp():
    clock = HybridClock(now_ms=FakeWall([1000, 1000]))
    clock.tick()
    seen = Timestamp(9_000, 7)
    clock.observe(seen)
    assert clock.tick() > seen


def test_observe_of_an_earlier_timestamp_does_not_move_the_clock_back():
    clock = HybridClock(now_ms=FakeWall([5000, 5000]))
    before = clock.tick()
    clock.observe(Timestamp(10, 0))
    assert clock.tick() > before


def test_tick_after_observing_a_maximal_counter_is_still_a_valid_event_time():
    # An event from a peer may carry any counter up to MAX_COUNTER; the next
    # local tick must be later AND still be a timestamp an event may carry.
    keys = NodeKeys.generate()
    clock = HybridClock(now_ms=FakeWall([1000]))
    seen = Timestamp(1000, MAX_COUNTER)
    clock.observe(seen)
    stamp = clock.tick()
    assert stamp > seen
    assert stamp.counter <= MAX_COUNTER
    event = Event.create(keys, epoch=0, seq=1, prev=None, hlc=stamp, type="case.note",
                         entity="case", entity_id="x", area=VILLAGE, body={})
    assert event.hlc == stamp


def test_event_after_reopening_sorts_after_the_last_even_if_the_wall_clock_went_back(tmp_path):
    home = tmp_path / "node"
    with init(home) as node:
        api.register_case(node, case_input(), today=TODAY)
        last = node.db.execute("select max(order_key) from events").fetchone()[0]
    with Node.open(home) as node:
        node.clock.now_ms = lambda: 0   # the machine's clock was reset to 1970
        api.register_case(node, case_input(), today=TODAY)
        newest = node.db.execute(
            "select order_key from events order by pos desc limit 1").fetchone()[0]
    assert newest > last


def test_event_refuses_a_counter_above_the_maximum():
    with pytest.raises(InvalidEvent, match="hlc"):
        Event.create(NodeKeys.generate(), epoch=0, seq=1, prev=None,
                     hlc=Timestamp(1000, MAX_COUNTER + 1), type="case.note", entity="case",
                     entity_id="x", area=VILLAGE, body={})
