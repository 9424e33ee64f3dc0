"""Bundles stream page by page; a file damaged before or during an import is refused cleanly.

A bundle is one envelope of format 2 (``sync/envelope.py``): each section
sealed on its own under its index, the whole file signed. The tests take a
genuine bundle of several pages and damage it the ways a USB stick, a
second process or a thief with the sender's key can, by hand from the
documented layout (``split``, ``signed``), then give it to the real import.

What they hold it to: a file reordered, cut short, padded or changed before
the import applies nothing and leaves the store as it was; one that
changes or stops being readable *during* the import applies exactly the
complete pages before the damage, one transaction each, and nothing after;
neither is marked imported, so the genuine file completes it and is then
refused as a replay.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
from pathlib import Path

import pytest

from sync_helpers import build_tree, event_ids, feed, next_event, peer_refusals, quarantine, \
    register, views, wire
from xinfang.core import i18n
from xinfang.core.event import Event
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Draft
from xinfang.sync import bundle, envelope
from xinfang.sync.envelope import AlreadyImported, EnvelopeError
from xinfang.sync.trust import chain_of
from xinfang.sync.wire import Page, PageError, frontier, frontier_to_wire

MAGIC = b"XINFANG-ENVELOPE-2\n"
SIGN_DOMAIN = b"xinfang-envelope-v2\x00"
#: the genuine bundle: this many events at 500 a page (``wire.MAX_PAGE_EVENTS``)
EVENTS = 1600
#: section 0 is the credentials, section 1 the head: page k is section k + 1
FIRST_PAGE = 2


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree")
    yield made
    made.close()


def settlements(node, count: int) -> None:
    node.append_many(Draft("settlement.settle", "settlement", os.urandom(16).hex(),
                           node.info.area, {"note": "测试", "by": "测试员"})
                     for _ in range(count))


@pytest.fixture
def genuine(tree, tmp_path) -> Path:
    """The village's bundle to the township: four pages."""
    settlements(tree.village, EVENTS)
    path = tmp_path / "genuine.xfb"
    assert bundle.export_bundle(tree.village, tree.township.info.name, path).pages == 4
    return path


# -- the layout, by hand ---------------------------------------------------------


def split(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(magic and header, each section with its length, the end mark and signature)."""
    at = len(MAGIC) + 4 + struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])[0]
    start, sections = data[:at], []
    while size := struct.unpack(">I", data[at:at + 4])[0]:
        sections.append(data[at:at + 4 + size])
        at += 4 + size
    return start, sections, data[at:]


def signed(signer: NodeKeys, start: bytes, sections: list[bytes]) -> bytes:
    """The sections framed and signed again, as a thief holding ``signer`` can."""
    body = start + b"".join(sections) + struct.pack(">I", 0)
    return body + signer.sign(SIGN_DOMAIN + hashlib.sha256(body).digest())


def flipped(section: bytes) -> bytes:
    middle = len(section) // 2
    return section[:middle] + bytes([section[middle] ^ 1]) + section[middle + 1:]


def page_ids(receiver, path: Path) -> list[set[str]]:
    """The event ids of each page of the bundle at ``path``, in order."""
    opened = envelope.open_(receiver.keys, path.read_bytes(), "bundle")
    return [{e.id for e in Page.from_wire(p).events} for p in opened.more]


def state(node) -> tuple:
    """Everything an import could change: log, views, certificates, replay table, acks."""
    return (event_ids(node), views(node),
            node.db.execute("select subject, raw from certs order by subject").fetchall(),
            node.db.execute("select id from seen_envelopes order by id").fetchall(),
            node.db.execute("select author, ack from peers order by author").fetchall())


def seen(node) -> int:
    return node.db.execute("select count(*) from seen_envelopes").fetchone()[0]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sealed(sender, receiver, pages: list[dict]) -> bytes:
    """A bundle written by the library's sealer from hand-made page wires, one a section."""
    out = io.BytesIO()
    sealer = envelope.Sealer(out, sender.keys, receiver.info.author, receiver.info.encryption,
                             bundle.KIND, {"chain": [c.to_wire() for c in
                                                     chain_of(sender.db, sender.info.author)]})
    sealer.add({"pages": [], "frontier": frontier_to_wire(frontier(sender.db)), "refused": [],
                "events": sum(len(p["events"]) for p in pages)})
    for page in pages:
        sealer.add(page)
    sealer.close()
    return out.getvalue()


def completes(receiver, path: Path, pages: list[set[str]], applied_before: int) -> None:
    """The genuine file applies the rest, then is refused as a replay."""
    summary = bundle.import_bundle(receiver, path)
    total = sum(len(p) for p in pages)
    assert (summary.applied, summary.duplicates) == (total - applied_before, applied_before)
    assert set().union(*pages) <= event_ids(receiver)
    with pytest.raises(AlreadyImported):
        bundle.import_bundle(receiver, path)


# -- round trip ------------------------------------------------------------------


def test_a_multi_page_bundle_round_trips_a_page_at_a_time(tree, genuine):
    township = tree.township
    seen_progress = []
    summary = bundle.import_bundle(township, genuine,
                                   progress=lambda done, total: seen_progress.append(done))
    assert (summary.pages, summary.applied, summary.duplicates) == (4, EVENTS, 0)
    assert (summary.refused, summary.refused_count) == ((), 0)
    assert seen_progress == [500, 1000, 1500, 1600]
    assert event_ids(tree.village) <= event_ids(township)
    assert seen(township) == 1
    back = tree.base / "back.xfb"
    bundle.export_bundle(township, tree.village.info.name, back)
    assert bundle.import_bundle(tree.village, back).sender == township.info.name


def test_export_writes_each_page_to_the_file_as_it_is_read(tree, tmp_path):
    """At the first page's progress the file on disk already holds that page, and far
    less than the whole bundle."""
    settlements(tree.village, EVENTS)
    path = tmp_path / "out.xfb"
    written = []
    summary = bundle.export_bundle(
        tree.village, tree.township.info.name, path,
        progress=lambda done, total: written.append(
            path.with_name(path.name + ".part").stat().st_size))
    assert len(written) == summary.pages == 4
    assert written == sorted(written) and 0 < written[0] < summary.bytes / 3


# -- damaged before the import: nothing applied ------------------------------------


def reordered(sections):
    return sections[:3] + [sections[4], sections[3]] + sections[5:]


def dropped(sections):
    return sections[:3] + sections[4:]


def duplicated(sections):
    return sections[:3] + [sections[2]] + sections[3:]


def tampered(sections):
    return sections[:3] + [flipped(sections[3])] + sections[4:]


SECTION_DAMAGE = [reordered, dropped, duplicated, tampered]


@pytest.mark.parametrize("damage", SECTION_DAMAGE, ids=[f.__name__ for f in SECTION_DAMAGE])
def test_pages_moved_dropped_repeated_or_altered_refuse_the_whole_file(tree, genuine,
                                                                       tmp_path, damage):
    township = tree.township
    start, sections, end = split(genuine.read_bytes())
    assert len(sections) == FIRST_PAGE + 4
    before = state(township)
    with pytest.raises(EnvelopeError, match="发送方的签名验证不通过：文件被改动过或系伪造"):
        bundle.import_bundle(township, write(tmp_path / "bad.xfb",
                                             start + b"".join(damage(sections)) + end))
    assert state(township) == before
    completes(township, genuine, page_ids(township, genuine), 0)


CUTS = {
    "in the middle of a page": (lambda data: data[:len(data) // 2], "文件不完整：.*位于第 \\d 段之中"),
    "after a whole page": (lambda data: b"".join([split(data)[0], *split(data)[1][:4]]),
                           "文件不完整：.*位于第 4 段之中"),
    "in the signature": (lambda data: data[:-10], "文件不完整：.*位于签名之中"),
    "with bytes after the end": (lambda data: data + bytes(10), "数据末尾之后多出 10 个字节"),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_file_cut_short_or_padded_before_the_import_applies_nothing(tree, genuine,
                                                                      tmp_path, cut):
    """A copy that stopped half way (a USB stick pulled out while copying) is refused
    before a page is read: its signature cannot be checked."""
    township = tree.township
    shorten, says = CUTS[cut]
    before = state(township)
    with pytest.raises(EnvelopeError, match=says):
        bundle.import_bundle(township, write(tmp_path / "cut.xfb",
                                             shorten(genuine.read_bytes())))
    assert state(township) == before
    completes(township, genuine, page_ids(township, genuine), 0)


# -- re-signed with the sender's key: each section's own tag refuses ----------------


def spliced(sections, other):
    """Page 2 taken from another genuine bundle of the same sender to the same receiver."""
    return sections[:3] + [other[3]] + sections[4:]


RESIGNED = [reordered, dropped, duplicated, tampered, spliced]


@pytest.mark.parametrize("damage", RESIGNED, ids=[f.__name__ for f in RESIGNED])
def test_a_thief_with_the_senders_key_cannot_move_pages_within_or_between_bundles(
        tree, genuine, tmp_path, damage):
    """The file verifies (signed again with the village's real key), so pages are taken
    until the first one out of place, whose tag fails under its index's nonce: exactly
    page 1 is applied, and the genuine file completes the import."""
    township, village = tree.township, tree.village
    start, sections, _ = split(genuine.read_bytes())
    other = tmp_path / "other.xfb"
    bundle.export_bundle(village, township.info.name, other)
    args = (sections, split(other.read_bytes())[1]) if damage is spliced else (sections,)
    pages = page_ids(township, genuine)
    before = event_ids(township)
    with pytest.raises(EnvelopeError, match="解密失败：内容已被改动"):
        bundle.import_bundle(township, write(tmp_path / "resigned.xfb",
                                             signed(village.keys, start, damage(*args))))
    assert event_ids(township) - before == pages[0]
    assert seen(township) == 0
    completes(township, genuine, pages, len(pages[0]))


# -- damaged during the import: exactly the pages before it -------------------------


def rewrite_after_check(monkeypatch, path: Path, data: bytes) -> None:
    """Replace the file's bytes once its signature has been checked and before its pages
    are read (a second process, a shared drive): ``authenticate`` runs in between."""
    real = bundle.authenticate

    def then_rewrite(*args):
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate()
        return real(*args)

    monkeypatch.setattr(bundle, "authenticate", then_rewrite)


DURING = {
    "cut in page 3": (lambda start, sections: start + b"".join(sections[:4]) + sections[4][:99],
                      "文件不完整：.*位于第 4 段之中", 2),
    "ended after page 2": (lambda start, sections: start + b"".join(sections[:4])
                           + struct.pack(">I", 0) + bytes(64), "读取期间文件被改动", 2),
    "pages 3 and 4 swapped": (lambda start, sections: start + b"".join(
        sections[:4] + [sections[5], sections[4]]), "解密失败：内容已被改动", 2),
    "page 1 altered": (lambda start, sections: start + b"".join(
        sections[:2] + [flipped(sections[2])] + sections[3:]), "解密失败：内容已被改动", 0),
}


@pytest.mark.parametrize("how", list(DURING))
def test_a_file_changed_during_the_import_applies_exactly_the_pages_before(
        tree, genuine, tmp_path, monkeypatch, how):
    township = tree.township
    damage, says, complete = DURING[how]
    data = genuine.read_bytes()
    start, sections, _ = split(data)
    pages = page_ids(township, genuine)
    before = event_ids(township)
    copy = write(tmp_path / "copy.xfb", data)
    rewrite_after_check(monkeypatch, copy, damage(start, sections))
    with pytest.raises(EnvelopeError, match=says):
        bundle.import_bundle(township, copy)
    monkeypatch.undo()
    assert event_ids(township) - before == set().union(set(), *pages[:complete])
    assert seen(township) == 0
    completes(township, genuine, pages, sum(len(p) for p in pages[:complete]))


class Stick:
    """A bundle file on a USB stick that can be pulled out: every read after that fails
    as the kernel reports it (EIO). Records the largest read and where each one ends."""

    def __init__(self, path: Path, pull_at: int | None = None):
        self._file = open(path, "rb")
        self.pulled, self.pull_at, self.largest, self.ends = False, pull_at, 0, []

    def read(self, count: int = -1) -> bytes:
        if self.pulled or (self.pull_at is not None and self._file.tell() + max(count, 0)
                           > self.pull_at):
            self.pulled = True
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        data = self._file.read(count)
        self.largest = max(self.largest, len(data))
        self.ends.append(self._file.tell())
        return data

    def seek(self, *args) -> int:
        return self._file.seek(*args)

    def tell(self) -> int:
        return self._file.tell()

    def __enter__(self) -> "Stick":
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def on_a_stick(monkeypatch, **options) -> list[Stick]:
    """``import_bundle`` opens its file on a ``Stick``; the list holds the one opened."""
    opened: list[Stick] = []

    def stick_open(path, mode="r", *args, **kwargs):
        assert mode == "rb"
        opened.append(Stick(Path(path), **options))
        return opened[-1]

    monkeypatch.setattr(bundle, "open", stick_open, raising=False)
    return opened


def test_a_stick_pulled_out_after_a_page_keeps_that_page_and_the_file_completes_it(
        tree, genuine, monkeypatch):
    township = tree.township
    pages = page_ids(township, genuine)
    before = event_ids(township)
    sticks = on_a_stick(monkeypatch)

    def pull(done: int, total: int) -> None:
        sticks[0].pulled = True

    with pytest.raises(EnvelopeError) as refused:
        bundle.import_bundle(township, genuine, progress=pull)
    assert "USB stick" in refused.value.message.msgid
    assert refused.value.message.args["reason"] == os.strerror(errno.EIO)
    monkeypatch.undo()
    assert event_ids(township) - before == pages[0]
    assert seen(township) == 0
    completes(township, genuine, pages, len(pages[0]))


def test_a_stick_pulled_out_while_the_file_is_checked_applies_nothing(tree, genuine,
                                                                      monkeypatch):
    township = tree.township
    before = state(township)
    on_a_stick(monkeypatch, pull_at=genuine.stat().st_size // 2)
    with pytest.raises(EnvelopeError) as refused:
        bundle.import_bundle(township, genuine)
    assert "USB stick" in refused.value.message.msgid
    monkeypatch.undo()
    assert state(township) == before
    completes(township, genuine, page_ids(township, genuine), 0)


def test_import_reads_the_file_a_section_at_a_time_and_applies_a_page_before_the_last_is_read(
        tree, genuine, monkeypatch):
    """What is held at once is one section, not the file: no read is larger than the
    largest section, the file is over three times that, and page 1 is applied before
    page 4 is read."""
    township = tree.township
    _, sections, _ = split(genuine.read_bytes())
    last_page_starts = genuine.stat().st_size - 4 - 64 - len(sections[-1])
    sticks = on_a_stick(monkeypatch)
    at_first_page = []
    bundle.import_bundle(township, genuine, progress=lambda done, total: at_first_page.append(
        sticks[0].tell()) if not at_first_page else None)
    largest = max(len(s) for s in sections)
    assert sticks[0].largest <= largest
    assert genuine.stat().st_size > 3 * largest
    assert at_first_page[0] <= last_page_starts
    assert max(sticks[0].ends) == genuine.stat().st_size  # the whole file was checked


# -- replay protection -----------------------------------------------------------


def test_a_bundle_imported_whole_is_refused_as_a_replay_under_any_name(tree, genuine,
                                                                       tmp_path):
    township = tree.township
    bundle.import_bundle(township, genuine)
    before = state(township)
    renamed = write(tmp_path / "renamed.xfb", genuine.read_bytes())
    for path in (genuine, renamed):
        with pytest.raises(AlreadyImported, match="已于 .* 导入，无需再次导入"):
            bundle.import_bundle(township, path)
    assert state(township) == before


# -- a stolen key ------------------------------------------------------------------


def test_a_stolen_keys_multi_page_bundle_is_judged_event_by_event(tree, tmp_path):
    """The thief's pages are taken one by one: its own feed's events apply, the event
    claiming the sibling's area is refused, quarantined and listed, and the bundle is
    marked imported, as a one-page bundle is (``test_sync_adversarial``)."""
    village, township = tree.village, tree.township
    register(village, 1)
    register(village, 2)
    good = feed(village)
    bad = next_event(village, area=tree.sibling.info.area,
                     entity_id=f"{tree.sibling.info.area}-2026-90003")
    data = sealed(village, township, [wire(good[:1], certs_from=village),
                                      wire(good[1:], certs_from=village),
                                      wire([bad], certs_from=village)])
    summary = bundle.import_bundle(township, write(tmp_path / "thief.xfb", data))
    assert (summary.pages, summary.applied, summary.refused_count) == (3, 2, 1)
    assert [r.event_id for r in summary.refused] == [bad.id]
    assert "超出辖区" in i18n.show(summary.refused[0].reason)
    assert bad.id in quarantine(township) and bad.id not in event_ids(township)
    assert {e.id for e in good} <= event_ids(township)
    assert seen(township) == 1


def test_a_bundle_from_a_key_nobody_certified_is_refused_before_a_page_is_read(
        tree, genuine, tmp_path):
    township = tree.township
    pages = envelope.open_(township.keys, genuine.read_bytes(), "bundle").more
    stranger = NodeKeys.generate()
    out = io.BytesIO()
    sealer = envelope.Sealer(out, stranger, township.info.author, township.info.encryption,
                             bundle.KIND, {})
    sealer.add({"pages": [], "frontier": [], "refused": []})
    for page in pages:
        sealer.add(page)
    sealer.close()
    before = state(township)
    with pytest.raises(EnvelopeError, match="没有证书链"):
        bundle.import_bundle(township, write(tmp_path / "stranger.xfb", out.getvalue()))
    assert state(township) == before


# -- what an import keeps besides the page in hand -----------------------------------


def forged(events: list[Event]) -> list[Event]:
    return [Event.parse(e.raw, bytes(64)) for e in events]


def test_the_summary_lists_the_first_refusals_and_counts_them_all(tree, tmp_path):
    """1,600 forged events over four pages: all refused and quarantined, counted, and
    the first ``LISTED`` of them listed."""
    village, township = tree.village, tree.township
    settlements(village, EVENTS)
    events = forged(feed(village))
    data = sealed(village, township, [wire(events[i:i + 500], certs_from=village)
                                      for i in range(0, EVENTS, 500)])
    summary = bundle.import_bundle(township, write(tmp_path / "forged.xfb", data))
    assert (summary.applied, summary.refused_count) == (0, EVENTS)
    assert len(summary.refused) == bundle.LISTED < EVENTS
    assert [r.event_id for r in summary.refused] == [e.id for e in events[:bundle.LISTED]]
    assert {e.id for e in events} <= set(quarantine(township))


def test_a_bundle_reports_at_most_max_reports_refusals_and_the_next_the_rest(
        tree, tmp_path, monkeypatch):
    village, township = tree.village, tree.township
    settlements(village, 700)
    events = forged(feed(village))
    bundle.import_bundle(township, write(tmp_path / "forged.xfb", sealed(
        village, township, [wire(events[:500], certs_from=village),
                            wire(events[500:], certs_from=village)])))
    monkeypatch.setattr(bundle, "MAX_REPORTS", 300)
    reported = []
    for number in range(4):
        back = tmp_path / f"back{number}.xfb"
        bundle.export_bundle(township, village.info.name, back)
        reported.append(bundle.import_bundle(village, back).refused_by_sender)
    assert reported == [300, 300, 100, 0]
    assert set(peer_refusals(village, township)) == {e.id for e in events}


def test_a_page_that_does_not_parse_mid_bundle_keeps_the_pages_before(tree, tmp_path):
    """As in ``test_bundle_limits``, with more pages: the import stops at the bad one."""
    village, township = tree.village, tree.township
    settlements(village, 1000)
    events = feed(village)
    data = sealed(village, township, [wire(events[:500], certs_from=village),
                                      {"events": "not a list"},
                                      wire(events[500:], certs_from=village)])
    with pytest.raises(PageError):
        bundle.import_bundle(township, write(tmp_path / "bad-page.xfb", data))
    held = event_ids(township)
    assert {e.id for e in events[:500]} <= held and not {e.id for e in events[500:]} & held
    assert seen(township) == 0
