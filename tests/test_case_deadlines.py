"""Statutory deadlines (15/15/60+延期/30/30/30/30 days), stored and shown, and 超期."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import case_input, synthetic_id
from xinfang.core.errors import InvalidInput
from xinfang.plugins.cases import api

ID1 = synthetic_id(1)
INIT = ("init", "--level", "village", "--area", "431202101201", "--name", "测试村")
CASE1 = "431202101201-2026-00001"


def ok(invoke, *args, **kw):
    result = invoke(*args, **kw)
    assert result.exit_code == 0, result.output
    return result


def register(invoke, received: str | None = "2026-01-05", serial: int = 1) -> str:
    args = ["case", "register", "-p", f"name=赵某甲,id={synthetic_id(serial)},phone=13800000001",
            "--channel", "来访", "--category", "劳动社保", "--request", "请求追讨拖欠工资", "--json"]
    if received:
        args += ["--received", received]
    return json.loads(ok(invoke, *args).stdout)["id"]


def deadlines(invoke, case_id: str) -> dict[str, dict]:
    shown = json.loads(ok(invoke, "case", "show", case_id, "--json").stdout)
    return {d["kind"]: d for d in shown["deadlines"]}


def due(d: dict) -> tuple:
    return d["start"], d["due"], d["met_on"]


def test_every_statutory_deadline_is_computed_and_shown_as_the_case_moves(invoke):
    ok(invoke, *INIT)
    case_id = register(invoke)                                   # received 2026-01-05
    found = deadlines(invoke, case_id)
    assert set(found) == {"dispatch", "decide"}
    assert due(found["dispatch"]) == ("2026-01-05", "2026-01-20", None)        # 15 days
    assert due(found["decide"]) == ("2026-01-05", "2026-01-20", None)          # 15 days
    assert found["dispatch"]["label"] == "转送交办期限"
    assert found["decide"]["label"] == "受理告知期限"

    ok(invoke, "case", "forward", case_id, "--date", "2026-01-08", "--mode", "交办",
       "--unit", "镇劳动保障所")
    found = deadlines(invoke, case_id)
    assert due(found["dispatch"]) == ("2026-01-05", "2026-01-20", "2026-01-08")
    # the body it was assigned to has 15 days from the assignment to decide
    assert due(found["decide"]) == ("2026-01-08", "2026-01-23", None)

    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    found = deadlines(invoke, case_id)
    assert found["decide"]["met_on"] == "2026-01-10"
    assert due(found["answer"]) == ("2026-01-10", "2026-03-11", None)          # 60 days
    assert found["answer"]["label"] == "办理答复期限"

    ok(invoke, "case", "extend", case_id, "--date", "2026-02-01", "--days", "30",
       "--reason", "需调取用工记录")
    assert due(deadlines(invoke, case_id)["answer"]) == ("2026-01-10", "2026-04-10", None)  # +30

    ok(invoke, "case", "answer", case_id, "--date", "2026-03-20", "--outcome", "予以支持")
    found = deadlines(invoke, case_id)
    assert found["answer"]["met_on"] == "2026-03-20"
    assert due(found["review_window"]) == ("2026-03-20", "2026-04-19", None)   # 30 days
    assert found["review_window"]["label"] == "复查申请期限"

    ok(invoke, "case", "request-review", case_id, "--date", "2026-04-10")
    found = deadlines(invoke, case_id)
    assert found["review_window"]["met_on"] == "2026-04-10"
    assert due(found["review"]) == ("2026-04-10", "2026-05-10", None)          # 30 days

    ok(invoke, "case", "answer-review", case_id, "--date", "2026-05-01", "--outcome", "维持")
    found = deadlines(invoke, case_id)
    assert found["review"]["met_on"] == "2026-05-01"
    assert due(found["rereview_window"]) == ("2026-05-01", "2026-05-31", None)  # 30 days

    ok(invoke, "case", "request-rereview", case_id, "--date", "2026-05-20")
    found = deadlines(invoke, case_id)
    assert found["rereview_window"]["met_on"] == "2026-05-20"
    assert due(found["rereview"]) == ("2026-05-20", "2026-06-19", None)        # 30 days

    ok(invoke, "case", "answer-rereview", case_id, "--date", "2026-06-10", "--outcome", "维持")
    found = deadlines(invoke, case_id)
    assert found["rereview"]["met_on"] == "2026-06-10"
    assert {k: d["obligation"] for k, d in found.items()} == {
        "dispatch": 1, "decide": 1, "answer": 1, "review_window": 0, "review": 1,
        "rereview_window": 0, "rereview": 1}
    assert not any(d["overdue"] for d in found.values())


def test_deadlines_are_stored_in_the_view_not_only_computed_for_display(node):
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=dt.date(2026, 3, 1))
    api.take_step(node, case_id, "accept", {"date": "2026-01-06"}, today=dt.date(2026, 3, 1))
    rows = node.db.execute("select kind, start, due, met_on, obligation from case_deadlines "
                           "where case_id = ? order by kind", [case_id]).fetchall()
    assert rows == [("answer", "2026-01-06", "2026-03-07", None, 1),
                    ("decide", "2026-01-05", "2026-01-20", "2026-01-06", 1),
                    ("dispatch", "2026-01-05", "2026-01-20", "2026-01-06", 1)]


def test_extension_shorter_than_30_days_moves_the_answer_deadline_by_that_much(node):
    today = dt.date(2026, 3, 1)
    case_id = api.register_case(node, case_input(received="2026-01-05"), today=today)
    api.take_step(node, case_id, "accept", {"date": "2026-01-06"}, today=today)
    api.take_step(node, case_id, "extend", {"date": "2026-02-01", "days": 7, "reason": "复杂"},
                  today=today)
    answer = {d["kind"]: d for d in api.get_case(node, case_id).deadlines}["answer"]
    assert (answer["start"], answer["due"]) == ("2026-01-06", "2026-03-14")


def test_overdue_deadline_is_marked_in_case_show(invoke):
    ok(invoke, *INIT)
    case_id = register(invoke)
    ok(invoke, "case", "accept", case_id, "--date", "2026-01-10")
    found = deadlines(invoke, case_id)
    assert found["answer"]["overdue"] is True          # due 2026-03-11, long past
    assert found["decide"]["overdue"] is False         # met
    text = ok(invoke, "case", "show", case_id).stdout
    assert "办理答复期限" in text and "2026-01-10 → 2026-03-11  超期" in text
    ok(invoke, "case", "answer", case_id, "--date", "2026-03-01", "--outcome", "解释说明")
    found = deadlines(invoke, case_id)
    assert found["answer"]["overdue"] is False
    assert found["review_window"]["overdue"] is False  # the petitioner's window, never overdue


def _ids(node, today, **filters):
    return [c.id for c in api.list_cases(node, api.CaseFilter(**filters), today=today)]


def test_overdue_lists_open_cases_with_a_missed_deadline_only(node):
    today = dt.date(2026, 11, 22)
    reg = lambda received, serial: api.register_case(  # noqa: E731
        node, case_input(received=received,
                         petitioners=[api.PetitionerInput("赵某甲", synthetic_id(serial))]),
        today=today)
    untouched = reg("2026-01-05", 1)                   # decide due 2026-01-20: overdue
    handling = reg("2026-01-05", 2)
    api.take_step(node, handling, "accept", {"date": "2026-01-10"}, today=today)
    answered = reg("2026-01-05", 3)
    api.take_step(node, answered, "accept", {"date": "2026-01-10"}, today=today)
    api.take_step(node, answered, "answer", {"date": "2026-02-01", "outcome": "support"},
                  today=today)                         # its 复查 window passed: not overdue
    withdrawn = reg("2026-01-05", 4)
    api.take_step(node, withdrawn, "withdraw", {"date": "2026-01-06"}, today=today)
    in_review = reg("2026-01-05", 5)
    for step, values in [("accept", {"date": "2026-01-10"}),
                         ("answer", {"date": "2026-02-01", "outcome": "support"}),
                         ("request_review", {"date": "2026-02-10"})]:
        api.take_step(node, in_review, step, values, today=today)
    fresh = reg(today.isoformat(), 6)                  # due in 15 days

    assert _ids(node, today, overdue=True) == [untouched, handling, in_review]
    # the day a deadline falls is not overdue yet; the day after is
    assert _ids(node, dt.date(2026, 1, 20), overdue=True) == []
    assert untouched in _ids(node, dt.date(2026, 1, 21), overdue=True)
    assert fresh not in _ids(node, today, overdue=True)


def test_due_within_lists_open_deadlines_falling_in_the_next_n_days(node):
    today = dt.date(2026, 11, 22)
    old = api.register_case(node, case_input(received="2026-01-05"), today=today)
    fresh = api.register_case(node, case_input(received=today.isoformat()), today=today)
    accepted = api.register_case(node, case_input(received="2026-10-01"), today=today)
    api.take_step(node, accepted, "accept", {"date": "2026-10-01"}, today=today)   # due 11-30

    assert _ids(node, today, due_within=15) == [accepted, fresh]
    assert _ids(node, today, due_within=14) == [accepted]
    assert _ids(node, today, due_within=7) == []
    assert old not in _ids(node, today, due_within=365)        # overdue is not "due within"
    assert _ids(node, today, due_within=0) == []


def test_due_within_a_negative_number_is_refused(node):
    with pytest.raises(InvalidInput, match="--due-within"):
        api.list_cases(node, api.CaseFilter(due_within=-1), today=dt.date(2026, 11, 22))


def test_cli_overdue_and_due_within_count_from_today(invoke):
    ok(invoke, *INIT)
    old = register(invoke, received="2026-01-05", serial=1)
    fresh = register(invoke, received=None, serial=2)             # today
    listed = lambda *f: [c["id"] for c in json.loads(  # noqa: E731
        ok(invoke, "case", "list", *f, "--json").stdout)]
    assert listed("--overdue") == [old]
    assert listed("--due-within", "15") == [fresh]
    assert listed("--due-within", "14") == []
    text = ok(invoke, "case", "list", "--overdue").stdout
    assert old in text and fresh not in text and "共 1 件" in text
