"""Verifying the stored log and rebuilding the views, via the API and the CLI.

Each test tampers with the real SQLite file through its own sqlite3
connection, as a careless admin tool or a failing disk would, and checks that
``verify`` / ``xinfang log verify`` and ``rebuild`` / ``xinfang rebuild`` say
exactly what is wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from conftest import VILLAGE, case_input
from sync_helpers import sql
from xinfang.core.event import Event
from xinfang.core.node import DB_NAME, Node
from xinfang.core.verify import rebuild, verify_log
from xinfang.plugins.cases import api

TODAY = dt.date(2026, 3, 1)
CASES = 3


# -- helpers -------------------------------------------------------------------


def register_cases(node: Node, count: int = CASES) -> list[str]:
    return [api.register_case(node, case_input(received=f"2026-01-0{i + 1}"), today=TODAY)
            for i in range(count)]


def row(home: Path, seq: int) -> tuple[int, bytes, bytes]:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        return conn.execute("select pos, raw, sig from events where seq = ?", [seq]).fetchone()
    finally:
        conn.close()


def change_one_byte_of_raw(home: Path, seq: int) -> int:
    """Change the headcount digit: still canonical bytes, but not the signed ones."""
    pos, raw, _ = row(home, seq)
    assert raw.count(b'"headcount":1') == 1
    index = raw.index(b'"headcount":1') + len(b'"headcount":')
    altered = raw[:index] + b"2" + raw[index + 1:]
    assert len(altered) == len(raw) and sum(a != b for a, b in zip(raw, altered)) == 1
    assert sql(home, "update events set raw = ? where seq = ?", [altered, seq]) == 1
    return pos


def break_raw_encoding(home: Path, seq: int) -> int:
    pos, raw, _ = row(home, seq)
    altered = b"\xff" + raw[1:]
    assert sql(home, "update events set raw = ? where seq = ?", [altered, seq]) == 1
    return pos


def flip_signature_bit(home: Path, seq: int) -> int:
    pos, _, sig = row(home, seq)
    altered = bytes([sig[0] ^ 0x01]) + sig[1:]
    assert sql(home, "update events set sig = ? where seq = ?", [altered, seq]) == 1
    return pos


def change_area_column(home: Path, seq: int) -> int:
    pos, _, _ = row(home, seq)
    assert sql(home, "update events set area = ? where seq = ?", ["431202101299", seq]) == 1
    return pos


def delete_event(home: Path, seq: int) -> int:
    pos, _, _ = row(home, seq)
    assert sql(home, "delete from events where seq = ?", [seq]) == 1
    return pos


TAMPERINGS = {
    "raw byte": (change_one_byte_of_raw, "不是所存字节的 SHA-256"),
    "raw encoding": (break_raw_encoding, "无法解码"),
    "signature": (flip_signature_bit, "验证签名不通过"),
    "area column": (change_area_column, "索引列 area 与已签名的字节不符"),
}


@pytest.fixture
def cli_node(invoke):
    """A node made by `xinfang init`, holding CASES registered cases."""
    result = invoke("init", "--level", "village", "--area", VILLAGE, "--name", "测试村")
    assert result.exit_code == 0, result.output
    with Node.open(invoke.home) as node:
        register_cases(node)
    return invoke


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


# -- an untouched log ----------------------------------------------------------


def test_untouched_log_verifies(node):
    register_cases(node)
    report = verify_log(node.db)
    assert report.ok
    assert (report.events, report.feeds, report.problems) == (CASES, 1, ())
    assert report.secrets > 0


def test_log_verify_cli_reports_an_untouched_log_as_verified(cli_node):
    result = cli_node("log", "verify")
    assert result.exit_code == 0, result.output
    assert "日志完好" in one_line(result) and "全部校验通过" in one_line(result)
    assert f"{CASES} 条事件" in result.output


def test_log_verify_cli_json_reports_counts(cli_node):
    result = cli_node("log", "verify", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert (data["events"], data["feeds"], data["problems"]) == (CASES, 1, [])


def test_log_verify_cli_on_an_empty_log_is_ok(invoke):
    assert invoke("init", "--level", "village", "--area", VILLAGE, "--name", "测试村").exit_code == 0
    result = invoke("log", "verify", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events"] == 0


# -- tampering, through the API ------------------------------------------------


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_tampered_middle_event_is_the_first_problem_verify_reports(node, kind):
    register_cases(node)
    tamper, expected = TAMPERINGS[kind]
    pos = tamper(node.home, seq=2)
    report = verify_log(node.db)
    assert not report.ok
    first = report.problems[0]
    assert (first.pos, first.seq, first.epoch) == (pos, 2, 0)
    assert expected in first.what
    assert f"第 {pos} 条事件" in first.describe() and "序号 2" in first.describe()


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_tampered_last_event_is_the_only_problem(node, kind):
    register_cases(node)
    tamper, expected = TAMPERINGS[kind]
    pos = tamper(node.home, seq=CASES)
    report = verify_log(node.db)
    assert [(p.pos, p.seq) for p in report.problems] == [(pos, CASES)]
    assert expected in report.problems[0].what


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_one_damaged_event_in_the_middle_is_reported_once_not_also_as_a_gap(node, kind):
    # The next event's seq and prev still match the damaged event's stored
    # seq and id: nothing is missing, so "gap" would send the operator
    # looking for an event that is not lost.
    register_cases(node)
    tamper, expected = TAMPERINGS[kind]
    tamper(node.home, seq=2)
    problems = verify_log(node.db).problems
    assert not any("缺号" in p.what for p in problems), [p.describe() for p in problems]
    assert len(problems) == 1


def test_deleted_middle_event_is_reported_as_a_gap(node):
    register_cases(node)
    delete_event(node.home, seq=2)
    report = verify_log(node.db)
    assert len(report.problems) == 1
    first = report.problems[0]
    assert first.seq == 3
    assert "缺号" in first.what and "序号 3 接在序号 1 之后" in first.what


def test_deleted_first_event_is_reported_as_a_gap(node):
    register_cases(node)
    delete_event(node.home, seq=1)
    report = verify_log(node.db)
    assert report.problems[0].seq == 2
    assert "缺号" in report.problems[0].what


def test_altered_bytes_with_a_recomputed_id_still_fail_the_signature(node):
    register_cases(node)
    pos, raw, _ = row(node.home, 2)
    altered = raw.replace(b'"headcount":1', b'"headcount":9')
    new_id = hashlib.sha256(altered).hexdigest()
    sql(node.home, "update events set raw = ?, id = ? where seq = 2", [altered, new_id])
    report = verify_log(node.db)
    first = report.problems[0]
    assert (first.pos, first.seq, first.event_id) == (pos, 2, new_id)
    assert "签名" in first.what


def test_validly_signed_event_with_a_wrong_prev_breaks_the_chain(node):
    register_cases(node)
    stored = Event.parse(*row(node.home, 2)[1:])
    forged = Event.create(node.keys, epoch=0, seq=2, prev="00" * 32, hlc=stored.hlc,
                          type=stored.type, entity=stored.entity, entity_id=stored.entity_id,
                          area=stored.area, body=stored.body)
    sql(node.home, "update events set raw = ?, sig = ?, id = ?, prev = ? where seq = 2",
        [forged.raw, forged.signature, forged.id, forged.prev])
    report = verify_log(node.db)
    first = report.problems[0]
    assert first.seq == 2
    assert "prev" in first.what and "链断裂" in first.what


def test_verify_checks_every_epoch_as_its_own_chain(node):
    register_cases(node, 2)
    node.new_epoch()
    register_cases(node, 2)
    assert verify_log(node.db).feeds == 2 and verify_log(node.db).ok
    sql(node.home, "delete from events where epoch = 1 and seq = 1")
    problems = verify_log(node.db).problems
    assert [(p.epoch, p.seq) for p in problems] == [(1, 2)]
    assert "缺号" in problems[0].what


def flip_a_vault_byte(home: Path) -> int:
    """Flip the last byte (in the AEAD tag) of the first vault row's ciphertext."""
    conn = sqlite3.connect(home / DB_NAME)
    try:
        rowid, sealed = conn.execute("select rowid, sealed from vault order by rowid").fetchone()
    finally:
        conn.close()
    altered = sealed[:-1] + bytes([sealed[-1] ^ 0x01])
    return sql(home, "update vault set sealed = ? where rowid = ?", [altered, rowid])


def test_altered_sealed_value_is_reported(node):
    register_cases(node, 1)
    assert flip_a_vault_byte(node.home) == 1
    report = verify_log(node.db, vault=node.vault)
    assert not report.ok and report.secrets_checked
    assert "密封值" in report.problems[0].describe()


# -- tampering, through the CLI ------------------------------------------------


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_log_verify_cli_exits_non_zero_with_one_line_naming_the_problem(cli_node, kind):
    tamper, expected = TAMPERINGS[kind]
    pos = tamper(cli_node.home, seq=CASES)
    result = cli_node("log", "verify")
    assert result.exit_code == 1
    line = one_line(result)
    assert "日志有问题" in line
    assert f"第 {pos} 条事件" in line and f"序号 {CASES}" in line
    assert expected in line


def test_log_verify_cli_reports_a_deleted_event_as_a_gap(cli_node):
    delete_event(cli_node.home, seq=2)
    result = cli_node("log", "verify")
    assert result.exit_code == 1
    line = one_line(result)
    assert "缺号" in line and "序号 3 接在序号 1 之后" in line


def test_log_verify_cli_json_lists_the_problems(cli_node):
    pos = flip_signature_bit(cli_node.home, seq=2)
    result = cli_node("log", "verify", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["events"] == CASES
    assert data["problems"][0].startswith(f"第 {pos} 条事件")
    assert "签名" in data["problems"][0]


def test_log_verify_cli_reports_an_altered_sealed_value(cli_node):
    assert flip_a_vault_byte(cli_node.home) == 1
    result = cli_node("log", "verify")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "密封值" in one_line(result)


def _overwrite_event_pages(path: Path) -> None:
    conn = sqlite3.connect(path)
    page_size = conn.execute("pragma page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute(
        "select pageno from dbstat where name in "
        "(select name from sqlite_schema where tbl_name = 'events')")]
    conn.close()
    with open(path, "r+b") as handle:
        for page in pages:
            handle.seek((page - 1) * page_size)
            handle.write(b"\xa5" * page_size)


def test_log_verify_cli_on_a_database_with_damaged_pages_gives_a_message_not_a_traceback(
        cli_node):
    _overwrite_event_pages(cli_node.home / DB_NAME)
    result = cli_node("log", "verify")
    assert result.exit_code != 0
    assert not isinstance(result.exception, sqlite3.Error), repr(result.exception)
    assert "已损坏" in one_line(result)


def test_log_verify_cli_without_a_node_says_how_to_make_one(invoke):
    result = invoke("log", "verify")
    assert result.exit_code != 0
    assert "xinfang init" in one_line(result)


# -- rebuild -------------------------------------------------------------------


def status_of(home: Path, case_id: str) -> str:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        return conn.execute("select status from cases where id = ?", [case_id]).fetchone()[0]
    finally:
        conn.close()


def test_rebuild_of_an_untouched_node_is_consistent(node):
    register_cases(node)
    report = rebuild(node, check_only=True)
    assert report.consistent and report.events == CASES and not report.written
    report = rebuild(node)
    assert report.consistent and report.written


def test_rebuild_check_reports_a_corrupted_view_row_without_fixing_it(node):
    case_id = register_cases(node)[1]
    sql(node.home, "update cases set status = 'closed' where id = ?", [case_id])
    report = rebuild(node, check_only=True)
    assert not report.consistent and not report.written
    assert [d.table for d in report.differences] == ["cases"]
    diff = report.differences[0]
    assert len(diff.only_stored) == len(diff.only_rebuilt) == 1
    assert diff.only_stored[0][0] == diff.only_rebuilt[0][0] == case_id
    assert "closed" in diff.only_stored[0] and "registered" in diff.only_rebuilt[0]
    assert status_of(node.home, case_id) == "closed"


def test_rebuild_restores_corrupted_deleted_and_invented_view_rows(node):
    ids = register_cases(node)
    sql(node.home, "update cases set status = 'closed' where id = ?", [ids[0]])
    sql(node.home, "delete from cases where id = ?", [ids[1]])
    sql(node.home, "update cases set id = ? where id = ?", [VILLAGE + "-2026-09999", ids[2]])
    report = rebuild(node)
    assert not report.consistent and report.written
    rows = node.db.execute("select id, status from cases order by id").fetchall()
    assert rows == [(case_id, "registered") for case_id in ids]
    assert rebuild(node).consistent


def test_rebuild_cli_check_reports_the_difference_and_exits_1_without_fixing(cli_node):
    case_id = f"{VILLAGE}-2026-00002"
    sql(cli_node.home, "update cases set status = 'closed' where id = ?", [case_id])
    result = cli_node("rebuild", "--check")
    assert result.exit_code == 1, result.output
    assert "cases：" in result.output and "与存储的视图不同（--check：未写入）" in result.output
    assert "未写入" in result.output
    assert status_of(cli_node.home, case_id) == "closed"

    result = cli_node("rebuild", "--check", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["consistent"] is False and data["written"] is False
    assert [d["table"] for d in data["differences"]] == ["cases"]
    assert "closed" in data["differences"][0]["only_stored"][0]
    assert "registered" in data["differences"][0]["only_rebuilt"][0]
    assert status_of(cli_node.home, case_id) == "closed"


def test_rebuild_cli_fixes_a_corrupted_view_and_then_reports_consistent(cli_node):
    case_id = f"{VILLAGE}-2026-00002"
    sql(cli_node.home, "update cases set status = 'closed' where id = ?", [case_id])
    result = cli_node("rebuild")
    assert result.exit_code == 0, result.output
    assert "cases：" in result.output and "已按日志改正" in result.output
    assert status_of(cli_node.home, case_id) == "registered"

    again = cli_node("rebuild", "--json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert data["consistent"] is True and data["differences"] == []
    assert cli_node("rebuild", "--check").exit_code == 0


def test_rebuild_cli_on_an_untouched_node_reports_consistent(cli_node):
    for args in (("rebuild",), ("rebuild", "--check")):
        result = cli_node(*args)
        assert result.exit_code == 0, result.output
        assert "与存储的视图完全一致" in one_line(result)
        assert f"从 {CASES} 条事件" in result.output


def test_rebuild_keeps_the_log_and_verify_still_passes(node):
    register_cases(node)
    before = node.db.execute("select pos, id, raw, sig from events order by pos").fetchall()
    sql(node.home, "update cases set status = 'closed'")
    rebuild(node)
    after = node.db.execute("select pos, id, raw, sig from events order by pos").fetchall()
    assert after == before
    assert verify_log(node.db).ok
