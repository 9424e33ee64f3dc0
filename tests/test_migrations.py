"""A node made by release 0.1.0 opens, migrates and works on.

``tests/data/node-0.1.0`` holds a county and a village exactly as 0.1.0
left them (see its README). Each test copies one, opens it with the current
code and checks what its users rely on: every case, step and flag still
there, the log intact, the migrations recorded in sqlite-utils' own table,
and the node able to write and sync on.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xinfang.app import plugin_manager
from xinfang.core import fold, store, verify
from xinfang.core.node import Node
from xinfang.plugins.cases import api

DATA = Path(__file__).parent / "data" / "node-0.1.0"
TODAY = api.dt.date(2026, 11, 22)
FIRST, ASSIGNED, REPEAT = (f"431202101201-2026-0000{n}" for n in (1, 2, 3))


def opened(tmp_path: Path, name: str) -> Node:
    home = tmp_path / name
    shutil.copytree(DATA / name, home)
    return Node.open(home, pm=plugin_manager())


@pytest.fixture
def village(tmp_path):
    node = opened(tmp_path, "village")
    yield node
    node.close()


def test_an_old_village_keeps_every_case_step_and_flag(village):
    cases = {c.id: c for c in api.list_cases(village, today=TODAY)}
    assert {k: c.status for k, c in cases.items()} == {
        FIRST: "answered", ASSIGNED: "forwarded", REPEAT: "registered"}
    assert cases[REPEAT].repeat_of == FIRST and cases[FIRST].first_petition
    assert cases[ASSIGNED].collective and cases[ASSIGNED].forwarded_to == "431202101"
    first = api.get_case(village, FIRST)
    assert [h["step"] for h in first.history] == ["register", "accept", "answer"]
    assert first.petitioners[0].name == "赵某1"
    assert {d["kind"] for d in first.deadlines} >= {"answer", "review_window"}


def test_the_old_log_verifies_and_the_migrated_views_rebuild_alike(village):
    assert verify.verify_log(village.db).ok
    assert verify.rebuild(village, check_only=True).consistent


def test_migrations_are_recorded_by_sqlite_utils_and_not_run_twice(tmp_path, village):
    assert not village.db["_migrations"].exists()
    applied = {(r["migration_set"], r["name"]) for r in village.db["_sqlite_migrations"].rows}
    assert {("xinfang.core", "0001_initial"), ("xinfang.core", "0002_sync_state"),
            ("xinfang.core", "0003_kernel"), ("case", "0001_case_views"),
            ("case", "0002_kernel_history"), ("trust", "0001_revocations"),
            ("settlement", "0001_settlements")} <= applied
    assert store.get_meta(village.db, "refold_needed") == "0"
    digest = fold.views_digest(village.db, village.registry)
    home = village.home
    village.close()
    with Node.open(home, pm=plugin_manager()) as again:
        assert len(list(again.db["_sqlite_migrations"].rows)) == len(applied)
        assert fold.views_digest(again.db, again.registry) == digest


def test_an_old_node_writes_on_with_the_next_number_and_its_certificate(village):
    assert village.certificate is not None
    assert village.certificate.subject == village.info.author
    case_id = api.register_case(village, api.CaseInput(
        petitioners=[api.PetitionerInput("钱某乙")], channel="来信", category="劳动社保",
        kind="申诉求决", request="请求补发工资", received="2026-05-01"), today=TODAY)
    assert case_id == "431202101201-2026-00004"
    assert verify.verify_log(village.db).ok


def test_an_old_county_keeps_the_cases_it_merged_and_its_root_certificate(tmp_path):
    county = opened(tmp_path, "county")
    cases = {c.id: c.status for c in api.list_cases(county, today=TODAY)}
    assert cases == {FIRST: "answered", ASSIGNED: "forwarded", REPEAT: "registered"}
    assert county.certificate.self_signed and county.info.root
    assert store.get_meta(county.db, "root_author") == county.info.author
    assert verify.rebuild(county, check_only=True).consistent
    county.close()
