"""The 矛盾纠纷排查化解台账 in and out of Excel: the office layout imports, header variants
are read, every row error is listed with its row number and nothing is written, a dry
run writes nothing, and an exported month imports into a fresh node as the same rows.

The fixture: the test tree (county 431202 → township 431202101 → villages
431202101201 and 431202101202); the synthetic template tests/data/ledger_template.xlsx
(tests/data/make_ledger_template.py): two title rows, the header in row 3, five
disputes in rows 4-8 (two in village 1, three in village 2, one of them named 示例二村),
one resolved, two with 进展.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import uuid
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import build_tree, register
from xinfang import hookimpl
from xinfang.cli.main import build_cli
from xinfang.core import records
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.ledger import entities, excel

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
import make_ledger_template as template  # noqa: E402

TODAY = dt.date(2026, 11, 22)
TEMPLATE = template.TEMPLATE
V1, V2 = "431202101201", "431202101202"


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path / "tree")
    yield built
    built.close()


def count(node, entity="dispute") -> int:
    return node.db.execute("select count(*) from events where entity = ?", [entity]).fetchone()[0]


def sheet(path: Path, header, rows, title=("示例台账",)) -> Path:
    book = openpyxl.Workbook()
    work = book.active
    for line in title:
        work.append([line])
    work.append(list(header))
    for row in rows:
        work.append(list(row))
    book.save(path)
    return path


def cells(path: Path) -> list[list]:
    book = openpyxl.load_workbook(path)
    return [list(row) for row in book.active.iter_rows(values_only=True)]


def row(**changes) -> list:
    """A good row of the office layout (HEADER order), with ``changes`` by header."""
    values = dict(zip(template.HEADER, template.ROWS[0]))
    values.update(changes)
    return [values[h] for h in template.HEADER]


def test_the_template_file_is_the_one_its_script_writes(tmp_path):
    assert cells(TEMPLATE) == cells(template.write(tmp_path / "again.xlsx"))


def test_the_synthetic_template_imports_as_one_dispute_per_row(tree):
    result = excel.import_sheet(tree.township, TEMPLATE, today=TODAY)
    assert result.written
    assert [(p.row, p.id, p.area) for p in result.rows] == [
        (4, "431202101-2026-00001", V1), (5, "431202101-2026-00002", V1),
        (6, "431202101-2026-00003", V2), (7, "431202101-2026-00004", V2),  # 示例二村
        (8, "431202101-2026-00005", V2)]
    # 5 creations, 进展 in rows 4 and 8 (progress), 是否化解 是 in row 5 (resolve)
    assert count(tree.township) == 5 + 2 + 1
    first = records.get(tree.township, "dispute", "431202101-2026-00001")
    assert (first.status, first.values["kind"], first.values["risk"], first.values["people"],
            first.values["due"]) == ("resolving", "land_compensation", "high", 5, "2026-12-15")
    second = records.get(tree.township, "dispute", "431202101-2026-00002")
    assert second.status == "resolved"
    assert [h["step"] for h in second.history] == ["add", "resolve"]
    assert second.history[1]["details"]["progress"] == "双方签订调解协议"
    assert second.history[1]["date"] == TODAY.isoformat()
    third = records.get(tree.township, "dispute", "431202101-2026-00003")
    assert (third.status, third.values["mediation"]) == ("screened", None)


def test_each_row_is_one_signed_event_of_this_node_in_one_feed_run(tree):
    before = tree.township.db.execute("select max(seq) from events where author = ?",
                                      [tree.township.info.author]).fetchone()[0] or 0
    excel.import_sheet(tree.township, TEMPLATE, today=TODAY)
    seqs = [r[0] for r in tree.township.db.execute(
        "select seq from events where entity = 'dispute' and author = ? order by seq",
        [tree.township.info.author])]
    assert seqs == list(range(before + 1, before + 9))


def test_header_variants_and_a_plugins_own_variant_are_read(tree, tmp_path):
    class Headers:
        @hookimpl
        def xinfang_ledger_headers(self):
            return {"纠纷概况": "summary"}

    header = ["序 号", "排查时间", "所属乡镇（村）", "纠纷类型", "纠纷概况", "人数", "风险",
              "措施", "调解方式", "包案领导", "具体责任人", "化解时间", "进展情况", "是否已化解",
              "信访事项", "备注", "联系电话"]
    path = sheet(tmp_path / "variants.xlsx", header, [row()[:16] + ["13800000000"]])
    node = tree.township
    node.close()
    with Node.open(node.home, pm=get_plugin_manager([Headers()])) as opened:
        opened.operator = "测试员"
        result = excel.import_sheet(opened, path, dry_run=True, today=TODAY)
        assert result.ignored == ["联系电话"]
        (planned,) = result.rows
        assert planned.values["summary"] == template.ROWS[0][4]
        assert (planned.values["date"], planned.values["area"], planned.values["risk"],
                planned.values["due"]) == ("2026-11-03", V1, "high", "2026-12-15")


def test_a_plugin_header_naming_no_column_is_refused(tree, tmp_path):
    class Wrong:
        @hookimpl
        def xinfang_ledger_headers(self):
            return {"电话": "phone"}

    tree.township.close()
    with Node.open(tree.township.home, pm=get_plugin_manager([Wrong()])) as opened:
        with pytest.raises(excel.InvalidInput, match="phone"):
            excel.import_sheet(opened, TEMPLATE, today=TODAY)


def test_an_area_column_of_another_name_is_read_with_area_column(tree, tmp_path):
    header = ["排查日期", "村组", "矛盾类型", "基本情况", "风险等级"]
    path = sheet(tmp_path / "named.xlsx", header, [["2026-11-03", V2, "其他", "赵某甲反映", "低"]])
    (planned,) = excel.import_sheet(tree.township, path, area_column="村组", dry_run=True,
                                    today=TODAY).rows
    assert planned.area == V2
    # without it the column is not read and the row takes the node's own area
    (planned,) = excel.import_sheet(tree.township, path, dry_run=True, today=TODAY).rows
    assert planned.area == "431202101"


ERRORS = [
    ({"风险等级": "极高"}, "风险等级", "极高"),
    ({"矛盾类型": None}, "矛盾类型", "矛盾类型"),
    ({"涉及人数": "五"}, "涉及人数", "五"),
    ({"涉及人数": 0}, "涉及人数", "0"),
    ({"排查日期": "2026-13-01"}, "排查日期", "2026-13-01"),
    ({"排查日期": dt.date(2026, 12, 1)}, "排查日期", "2026-12-01"),
    ({"所属乡镇/村": "示例三村"}, "所属乡镇/村", "示例三村"),
    ({"所属乡镇/村": "431202102201"}, "所属乡镇/村", "431202102201"),
    ({"化解方式": "私了"}, "化解方式", "私了"),
    ({"是否化解": "也许"}, "是否化解", "也许"),
    ({"是否化解": "是", "进展": None}, None, "进展"),
    ({"关联信访事项": "431202101-2026-00077"}, None, "431202101-2026-00077"),
]


@pytest.mark.parametrize("changes, column, said", ERRORS)
def test_each_kind_of_row_error_names_its_row_and_column_and_nothing_is_written(
        tree, tmp_path, changes, column, said):
    path = sheet(tmp_path / "bad.xlsx", template.HEADER,
                 [row(基本情况="一"), row(基本情况="二", **changes), row(基本情况="三")],
                 title=("标题", "副标题"))
    before = count(tree.township)
    with pytest.raises(excel.SheetErrors) as raised:
        excel.import_sheet(tree.township, path, today=TODAY)
    (problem,) = raised.value.problems
    assert (problem.row, problem.column) == (5, column)  # title 1-2, header 3, rows 4-6
    assert said in str(problem.message)
    assert count(tree.township) == before


def test_all_errors_are_listed_at_once(tree, tmp_path):
    path = sheet(tmp_path / "bad.xlsx", template.HEADER,
                 [row(风险等级="极高", 涉及人数="五"), row(), row(矛盾类型="吵架")])
    with pytest.raises(excel.SheetErrors) as raised:
        excel.import_sheet(tree.township, path, today=TODAY)
    assert [(p.row, p.column) for p in raised.value.problems] == [
        (3, "涉及人数"), (3, "风险等级"), (5, "矛盾类型")]
    assert count(tree.township) == 0


def test_no_header_row_is_one_clear_error(tree, tmp_path):
    path = sheet(tmp_path / "none.xlsx", ["甲", "乙"], [["1", "2"]])
    with pytest.raises(excel.InvalidInput, match="表头"):
        excel.import_sheet(tree.township, path, today=TODAY)


def test_a_dry_run_gives_the_ids_and_writes_nothing(tree):
    before = tree.township.db.execute("select count(*) from events").fetchone()[0]
    dry = excel.import_sheet(tree.township, TEMPLATE, dry_run=True, today=TODAY)
    assert not dry.written
    assert tree.township.db.execute("select count(*) from events").fetchone()[0] == before
    real = excel.import_sheet(tree.township, TEMPLATE, today=TODAY)
    assert [p.to_dict() for p in dry.rows] == [p.to_dict() for p in real.rows]


def test_importing_the_same_file_twice_writes_nothing_the_second_time(tree):
    excel.import_sheet(tree.township, TEMPLATE, today=TODAY)
    before = count(tree.township)
    with pytest.raises(excel.SheetErrors) as raised:
        excel.import_sheet(tree.township, TEMPLATE, today=TODAY)
    assert [p.row for p in raised.value.problems] == [4, 5, 6, 7, 8]
    assert "431202101-2026-00001" in str(raised.value.problems[0].message)
    skipped = excel.import_sheet(tree.township, TEMPLATE, skip_existing=True, today=TODAY)
    assert (skipped.rows, [s["row"] for s in skipped.skipped]) == ([], [4, 5, 6, 7, 8])
    assert count(tree.township) == before


def test_the_same_dispute_twice_in_one_sheet_is_refused(tree, tmp_path):
    path = sheet(tmp_path / "twice.xlsx", template.HEADER, [row(), row()])
    with pytest.raises(excel.SheetErrors) as raised:
        excel.import_sheet(tree.township, path, today=TODAY)
    (problem,) = raised.value.problems
    assert problem.row == 4 and "3" in str(problem.message)  # header 2, rows 3-4


def test_a_linked_case_this_node_holds_becomes_a_to_petition_step(tree, tmp_path):
    case = register(tree.village, 1, received="2026-11-02")
    path = sheet(tmp_path / "case.xlsx", template.HEADER,
                 [row(关联信访事项=case, 进展="群众坚持上访")])
    (planned,) = excel.import_sheet(tree.village, path, today=TODAY).rows
    assert planned.steps == ("add", "progress", "to_petition")
    record = records.get(tree.village, "dispute", planned.id)
    assert record.status == "to_petition"


def sorted_rows(path: Path) -> list[list]:
    return cells(path)[2:]


def test_an_exported_month_imports_into_a_fresh_node_as_the_same_rows(tree, tmp_path):
    village = tree.village
    case = register(village, 1, received="2026-11-02")
    source = sheet(tmp_path / "source.xlsx", template.HEADER, [
        row(), row(基本情况="赵某乙反映", 是否化解="是", 进展="已化解", 化解方式=None),
        row(基本情况="钱某丙反映", 关联信访事项=case, 风险等级="低", 涉及人数=None, 备注="转县",
            进展="群众坚持上访"),
        row(基本情况="十月的", 排查日期=dt.date(2026, 10, 30))])
    excel.import_sheet(village, source, today=TODAY)
    out = tmp_path / "out.xlsx"
    assert excel.export_month(village, "2026-11", out) == 3
    exported = cells(out)
    assert exported[0][0] == "示例一镇示例一村信访站矛盾纠纷排查化解台账（2026年11月）"
    assert exported[1] == [h for _n, h in excel.LAYOUT]
    assert [r[:5] for r in exported[2:]] == [
        [1, dt.datetime(2026, 11, 3), V1, "征地补偿", template.ROWS[0][4]],
        [2, dt.datetime(2026, 11, 3), V1, "征地补偿", "赵某乙反映"],
        [3, dt.datetime(2026, 11, 3), V1, "征地补偿", "钱某丙反映"]]
    assert [r[12:15] for r in exported[2:]] == [
        ["已核对清册，正在协调", "否", None], ["已化解", "是", None], ["群众坚持上访", "否", case]]

    fresh = build_tree(tmp_path / "fresh")
    try:
        assert register(fresh.village, 1, received="2026-11-02") == case
        excel.import_sheet(fresh.village, out, today=TODAY)
        again = tmp_path / "again.xlsx"
        excel.export_month(fresh.village, "2026-11", again)
        assert cells(again) == exported  # cell by cell, title and header too
    finally:
        fresh.close()


def test_export_of_a_month_without_disputes_and_bad_input(tree, tmp_path):
    out = tmp_path / "empty.xlsx"
    assert excel.export_month(tree.township, "2026-10", out) == 0
    assert len(cells(out)) == 2
    with pytest.raises(excel.InvalidInput):
        excel.export_month(tree.township, "2026-13", out)
    with pytest.raises(excel.InvalidInput):
        excel.export_month(tree.township, "2026-11", out, area="431202102")


# -- the command line ------------------------------------------------------------------


def run(home, *args):
    cli = build_cli(get_plugin_manager())
    return CliRunner().invoke(cli, ["--home", str(home), "--operator", "测试员", *args])


def test_import_and_export_on_the_command_line(tree, tmp_path):
    home = tree.township.home
    tree.township.close()
    copy = shutil.copy(TEMPLATE, tmp_path / "台账.xlsx")
    dry = run(home, "ledger", "import", str(copy), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    assert (data["written"], len(data["rows"])) == (False, 5)
    text = run(home, "ledger", "import", str(copy), "--dry-run")
    assert text.exit_code == 0 and "431202101-2026-00005" in text.output
    done = run(home, "ledger", "import", str(copy), "--date", "2026-11-20", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["written"] is True
    again = run(home, "ledger", "import", str(copy))
    assert again.exit_code == 1
    lines = again.output.strip().splitlines()
    assert len(lines) == 6 and "Traceback" not in again.output
    out = tmp_path / "out.xlsx"
    exported = run(home, "ledger", "export", "--month", "2026-11", "--out", str(out), "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["rows"] == 5
    assert len(cells(out)) == 2 + 5
    bad = run(home, "ledger", "export", "--month", "11月", "--out", str(out))
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    missing = run(home, "ledger", "import", str(tmp_path / "none.xlsx"))
    assert missing.exit_code != 0 and len(missing.output.strip().splitlines()) == 1


def test_import_errors_as_json_on_the_command_line(tree, tmp_path):
    path = sheet(tmp_path / "bad.xlsx", template.HEADER, [row(风险等级="极高")])
    home = tree.township.home
    tree.township.close()
    result = run(home, "ledger", "import", str(path), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["written"] is False
    assert [(e["row"], e["column"]) for e in data["errors"]] == [(3, "风险等级")]


def test_a_named_sheet_and_the_area_of_rows_without_one(tree, tmp_path):
    path = tmp_path / "two.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active.append(["本表为示例"])
    work = book.create_sheet("十一月")
    work.append(["排查日期", "矛盾类型", "基本情况", "风险等级"])
    work.append(["2026-11-03", "其他", "赵某甲反映", "低"])
    book.save(path)
    with pytest.raises(excel.InvalidInput, match="十二月"):
        excel.import_sheet(tree.township, path, sheet="十二月", today=TODAY)
    with pytest.raises(excel.InvalidInput, match="表头"):
        excel.import_sheet(tree.township, path, today=TODAY)  # the first sheet has none
    (planned,) = excel.import_sheet(tree.township, path, sheet="十一月", area=V2,
                                    today=TODAY).rows
    assert (planned.row, planned.area) == (2, V2)
    assert records.get(tree.township, "dispute", planned.id).area == V2


KINDS = [c.label for c in entities.VOCABULARIES["ledger.dispute_kind"]]
RISKS = [c.label for c in entities.VOCABULARIES["ledger.risk"]]
MEDIATIONS = [None] + [c.label for c in entities.VOCABULARIES["ledger.mediation"]]
TEXT = st.text(alphabet="甲乙丙丁戊己庚辛壬癸某反映补偿", min_size=1, max_size=8)
LEDGER_ROWS = st.lists(st.fixed_dictionaries({
    "排查日期": st.integers(1, 22).map(lambda d: dt.datetime(2026, 11, d)),
    "矛盾类型": st.sampled_from(KINDS), "风险等级": st.sampled_from(RISKS),
    "涉及人数": st.none() | st.integers(1, 300), "化解方式": st.sampled_from(MEDIATIONS),
    "化解措施": st.none() | TEXT, "责任人": st.none() | TEXT, "备注": st.none() | TEXT,
    "化解时限": st.none() | st.integers(1, 28).map(lambda d: dt.datetime(2026, 12, d)),
    "进展": st.none() | TEXT, "是否化解": st.sampled_from(["是", "否"])}), min_size=1,
    max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(rows=LEDGER_ROWS)
def test_any_month_of_rows_comes_back_out_as_it_went_in(tree, tmp_path, rows):
    """Import then export: the month's rows are the rows given, sorted by 排查日期
    (stable: within a day, in the sheet's order, as the numbers are given)."""
    tag = f"例{uuid.uuid4().hex[:8]}"
    written = [dict(r, 基本情况=f"{tag}{i}", 进展=r["进展"] or ("已化解" if r["是否化解"] == "是"
                                                          else None)) for i, r in enumerate(rows)]
    path = sheet(tmp_path / f"{tag}.xlsx", template.HEADER,
                 [[g.get(h) for h in template.HEADER] for g in written])
    excel.import_sheet(tree.village, path, today=TODAY)
    out = tmp_path / f"{tag}-out.xlsx"
    excel.export_month(tree.village, "2026-11", out)
    back = [dict(zip(template.HEADER, r[:16])) for r in cells(out)[2:]
            if str(r[4]).startswith(tag)]
    expected = sorted(written, key=lambda g: g["排查日期"])
    columns = [h for h in template.HEADER if h not in ("序号", "所属乡镇/村", "基本情况")]
    assert [[b[h] for h in columns] for b in back] == [[e.get(h) for h in columns] for e in expected]
    assert [b["基本情况"] for b in back] == [e["基本情况"] for e in expected]
    assert {b["所属乡镇/村"] for b in back} == {V1}
