"""The log is immutable; exclusion is a view; the fold reads no clock.

A revocation or a fork never deletes or rewrites a row of ``events``: the
events past its point are *excluded*, a view the fold honours, derived from
events and fork evidence, so a rebuild reproduces it and ``log verify``
still checks (and names) every excluded event.
"""

from __future__ import annotations

import datetime as real_datetime
import json
import sys
import time as real_time
import types

import pytest

from sync_helpers import (build_tree, carry, copy_node, event_ids, excluded_ids, feed, register,
                          views)
from xinfang.core import i18n, store, verify
from xinfang.core.node import Draft, Node

LOG_COLUMNS = "pos, id, author, epoch, seq, prev, order_key, type, entity, entity_id, area, raw, sig"


def log_rows(node: Node) -> list[tuple]:
    return node.db.execute(f"select {LOG_COLUMNS} from events order by pos").fetchall()


def revoke(county: Node, village: Node, seq: int) -> None:
    """The county revokes the village's key after ``seq`` (it must hold the village's
    certificate, which arrives with the village's events)."""
    county.append(Draft("trust.revoke", "trust", village.info.author, village.info.area,
                        {"epoch": 0, "seq": seq, "reason": "测试：村站电脑被盗"}))


def revoke_after_one_of_two(tree, directory) -> None:
    """The village writes two cases, the township relays them, the county revokes
    the village after the first and the revocation reaches the township."""
    village, township, county = tree.village, tree.township, tree.county
    register(village, 1)
    register(village, 2)
    carry(village, township, directory)
    carry(township, county, directory)
    revoke(county, village, 1)
    carry(county, township, directory)


def test_a_revocation_excludes_later_events_without_touching_a_row_of_the_log(tmp_path):
    tree = build_tree(tmp_path)
    village, township, county = tree.village, tree.township, tree.county
    kept = register(village, 1)
    late = register(village, 2)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    before = log_rows(township)
    revoke(county, village, 1)
    carry(county, township, tmp_path)
    after = log_rows(township)
    assert after[:len(before)] == before                  # not one row changed or gone
    assert feed(township, village.info.author)[1].id in excluded_ids(township)
    assert {r[0] for r in township.db.execute("select id from cases")} == {kept}
    report = verify.verify_log(township.db)
    assert report.ok
    excluded = {e.event_id: e for e in report.excluded}
    assert set(excluded) == excluded_ids(township) and len(excluded) == 1
    assert "密钥已吊销" in i18n.show(next(iter(excluded.values())).reason)
    assert late not in {r[0] for r in township.db.execute("select id from cases")}
    tree.close()


def test_rebuild_and_arrival_order_reproduce_the_exclusion_from_the_events_alone(tmp_path):
    tree = build_tree(tmp_path)
    village, township, county = tree.village, tree.township, tree.county
    late = copy_node(township, tmp_path / "late")        # the same township, another history
    revoke_after_one_of_two(tree, tmp_path)
    stored = views(township)
    assert verify.rebuild(township).consistent and views(township) == stored
    # the copy hears of the revocation first: it refuses seq 2 on arrival instead
    carry(county, late, tmp_path)
    carry(village, late, tmp_path)
    assert feed(township, village.info.author)[1].id not in event_ids(late)
    assert views(late) == stored
    late.close()
    tree.close()


def test_log_verify_names_excluded_events_on_the_command_line(tmp_path, invoke):
    tree = build_tree(tmp_path)
    township = tree.township
    revoke_after_one_of_two(tree, tmp_path)
    home = township.home
    township.close()
    result = invoke("log", "verify", "--json", home_dir=home)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and len(data["excluded"]) == 1
    assert data["excluded"][0]["seq"] == 2
    text = invoke("log", "verify", home_dir=home).output
    assert "1 条事件已被排除在视图之外" in text
    tree.close()


def test_a_fork_freezes_the_feed_and_keeps_both_branches(tmp_path):
    tree = build_tree(tmp_path)
    village, township = tree.village, tree.township
    register(village, 1)
    copy = copy_node(village, tmp_path / "village-copy")
    register(village, 2, request="甲：请求解决宅基地纠纷")
    register(copy, 2, request="乙：请求追讨土地补偿款")
    carry(village, township, tmp_path)
    before = log_rows(township)
    carry(copy, township, tmp_path)
    assert log_rows(township)[:len(before)] == before
    branch = feed(township, village.info.author)[1]
    assert branch.id in excluded_ids(township) and branch.id in event_ids(township)
    assert verify.rebuild(township, check_only=True).consistent
    copy.close()
    tree.close()


# -- the fold reads no clock --------------------------------------------------------


class _NoClock(Exception):
    """Raised by the patched clock: some code read the time while folding."""


def _refuse(*args, **kwargs):
    raise _NoClock("the fold read the clock")


class _Date(real_datetime.date):
    today = classmethod(_refuse)


class _DateTime(real_datetime.datetime):
    now = classmethod(_refuse)
    today = classmethod(_refuse)
    utcnow = classmethod(_refuse)


CLOCKLESS_DT = types.SimpleNamespace(date=_Date, datetime=_DateTime,
                                     timedelta=real_datetime.timedelta,
                                     timezone=real_datetime.timezone)
CLOCKLESS_TIME = types.SimpleNamespace(time=_refuse, time_ns=_refuse, monotonic=_refuse,
                                       perf_counter=_refuse, strftime=_refuse, sleep=real_time.sleep)


@pytest.fixture
def no_clock(monkeypatch):
    """Every loaded xinfang module sees a clock that raises when read."""
    def patch():
        for name, module in list(sys.modules.items()):
            if not name.startswith("xinfang") or module is None:
                continue
            for attr, fake in (("dt", CLOCKLESS_DT), ("datetime", CLOCKLESS_DT),
                               ("time", CLOCKLESS_TIME)):
                if isinstance(getattr(module, attr, None), types.ModuleType):
                    monkeypatch.setattr(module, attr, fake)
    return patch


def test_folding_and_rebuilding_never_read_the_clock(tmp_path, no_clock):
    tree = build_tree(tmp_path)
    village, township, county = tree.village, tree.township, tree.county
    blank = copy_node(township, tmp_path / "blank")
    case_id = register(village, 1, headcount=6)
    register(village, 2)
    carry(village, township, tmp_path)
    carry(township, county, tmp_path)
    revoke(county, village, 1)
    carry(county, township, tmp_path)
    events = list(store.all_events(township.db))
    expected = views(township)
    no_clock()
    assert verify.rebuild(township).consistent    # raises _NoClock if fold code reads it
    assert views(township) == expected
    with blank.db.atomic():                        # the certificates the events need
        for cert in store.all_certificates(township.db):
            store.remember_certificate(blank.db, cert)
    blank.ingest(reversed(events))                # any order: re-folds, never the clock
    assert views(blank) == expected
    assert blank.db.execute("select collective from cases where id = ?",
                            [case_id]).fetchone() == (1,)
    blank.close()
    tree.close()
