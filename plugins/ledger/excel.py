"""The 矛盾纠纷排查化解台账 in and out of Excel, as offices keep it today.

**Import** (``import_sheet``). The office layout: optional title rows, then
a header row in Chinese, one dispute per row. The header row is the first of
the sheet's first rows in which at least three cells name known columns
(``HEADERS``, with the variants other plugins give through the
``xinfang_ledger_headers`` hook). Every row is checked before anything is
written, each cell with the kernel's converter for its field (choice labels
such as 高/中/低 are accepted), and every error is listed at once with the
spreadsheet's row number and the column's header; on any error nothing is
written. 所属乡镇/村 holds an area code, ``name（code）`` or the name of an office
this node knows from its certificates (empty: ``area``, default this node's).
Plugins' rules are run on each row's events before any is written
(``admission.validate``), so a row they refuse is one more listed error.
Rows become events in one transaction (``Node.append_many``): a
``dispute.add`` per row, then, when 是否化解 is 是, a ``resolve`` step whose
化解结果 is the 进展 cell (required then); otherwise a ``progress`` step when
进展 is filled. 关联信访事项 becomes a ``to_petition`` step if this node holds
that 信访事项 (a row naming one it does not hold is refused: a dispute links
only a case the office can see, as the step itself requires); a row both
resolved and transferred is refused. Steps are dated ``date`` (the day of
the import unless given), never before the row's 排查日期.

The same dispute twice: a row whose 所属乡镇/村, 排查日期 and 基本情况 equal
those of a dispute this node holds, or of an earlier row of the sheet, is an
error naming it (``skip_existing``: rows matching a held dispute are skipped
and listed instead), so importing the same file twice writes nothing twice.

**Export** (``export_month``): the same layout for one month's ledger (the
disputes screened, 排查日期, or re-screened, 月度排查, in the month): a title
row naming the office and month, the header row, one row per dispute of
``api.month_ledger`` (是否化解 as the month ended; the area as its code), then
two columns of the record beyond the office layout, 关联项目 and 群体性事件.
Imported into a fresh node of the same area (holding the linked 信访事项) it
gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Iterable

import attrs
import openpyxl
from openpyxl.styles import Alignment, Font

from xinfang.core import areas, clock, records
from xinfang.core.admission import validate
from xinfang.core.entities import Field
from xinfang.core.errors import InvalidEvent, InvalidInput, XinfangError
from xinfang.core.i18n import N_, Message, _
from xinfang.core.node import Draft

from .api import held_case, month_bounds, month_ledger
from .entities import DISPUTE, DISPUTE_FIELDS

#: the sheet's own columns, beside the dispute's fields
SHEET_FIELDS = (Field("serial", "序号"), Field("area", "所属乡镇/村"), Field("progress", "进展"),
                Field("resolved", "是否化解", kind="bool"), Field("case", "关联信访事项"))
FIELDS = {f.name: f for f in (*DISPUTE_FIELDS, *SHEET_FIELDS)}
#: the office layout's columns in order, (column name, header), then two of the record's own
LAYOUT = tuple((name, FIELDS[name].label) for name in (
    "serial", "date", "area", "kind", "summary", "people", "risk", "measures", "mediation",
    "leader", "person", "due", "progress", "resolved", "case", "note", "project", "mass"))
HEADERS = {header: name for name, header in LAYOUT} | {  # the variants offices write
    "序号/编号": "serial", "排查时间": "date", "日期": "date", "登记日期": "date",  # i18n: identifier
    "所属乡镇(村)": "area", "乡镇村": "area", "乡镇/村": "area", "所属乡镇": "area",  # i18n: identifier
    "所属村": "area", "区划代码": "area", "所属区域": "area", "地点": "area",  # i18n: identifier
    "纠纷类型": "kind", "矛盾纠纷类型": "kind", "类型": "kind", "类别": "kind",  # i18n: identifier
    "矛盾纠纷基本情况": "summary", "简要情况": "summary", "主要情况": "summary",  # i18n: identifier
    "人数": "people", "涉及人员数": "people", "涉及人数(人)": "people", "风险": "risk",  # i18n: identifier
    "风险级别": "risk", "等级": "risk", "措施": "measures", "稳控措施": "measures",  # i18n: identifier
    "化解稳控措施": "measures", "调解方式": "mediation", "包案领导": "leader",  # i18n: identifier
    "具体责任人": "person", "化解时间": "due", "办结时限": "due", "时限": "due",  # i18n: identifier
    "进展情况": "progress", "进展/结果": "progress", "进展情况/结果": "progress",  # i18n: identifier
    "结果": "progress", "化解结果": "progress", "是否已化解": "resolved",  # i18n: identifier
    "化解与否": "resolved", "信访事项": "case", "信访事项编号": "case", "关联信访件": "case",  # i18n: identifier
    "是否群体性事件": "mass", "群体事件": "mass"}  # i18n: identifier
SCAN_ROWS = 20


class SheetErrors(InvalidInput):
    """The rows' errors, all of them; nothing was written."""

    def __init__(self, problems: list["Problem"]):
        super().__init__(N_("{count} errors in the spreadsheet; nothing was written"),
                         count=len(problems))
        self.problems = problems


@attrs.frozen
class Problem:
    row: int | None
    column: str | None
    message: Message | str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": str(self.message)}


@attrs.frozen
class Planned:
    """One row as it would be written: the dispute's id, its events' types."""

    row: int
    id: str
    area: str
    values: dict[str, Any]
    steps: tuple[str, ...]
    drafts: tuple[Draft, ...] = attrs.field(eq=False, repr=False)

    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "id": self.id, "area": self.area, "values": self.values,
                "steps": list(self.steps), "step_labels": list(self.labels)}


@attrs.frozen
class Result:
    rows: list[Planned]
    skipped: list[dict[str, Any]]
    ignored: list[str]
    written: bool

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "rows": [r.to_dict() for r in self.rows],
                "skipped": self.skipped, "ignored_columns": self.ignored}


def normal(header: Any) -> str:
    text = re.sub(r"\s+", "", str(header or ""))
    return text.translate(str.maketrans("（）／：", "()/:")).rstrip(":").rstrip("*")  # i18n: identifier


def header_table(node) -> dict[str, str]:
    """Every known header (normalised) and the column it names, plugins' variants too."""
    known = {f.name for f in DISPUTE_FIELDS} | {f.name for f in SHEET_FIELDS}
    table = {normal(k): v for k, v in HEADERS.items()}
    hook = getattr(node.pm.hook, "xinfang_ledger_headers", None)
    for found in (hook() if hook else ()):
        for header, name in (found or {}).items():
            if name not in known:
                raise InvalidInput(N_("a plugin maps the ledger header “{header}” to “{name}”, "
                                      "which is no column of the ledger"),
                                   header=header, name=name)
            table[normal(header)] = name
    return table


def cell_text(value: Any) -> Any:
    """A cell as the converters take it: dates as dates, whole numbers as ints, text trimmed."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def read_rows(path: Path, sheet: str | None) -> Iterable[tuple[int, list[Any]]]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise InvalidInput(N_("there is no file {path}"), path=str(path)) from None
    except Exception as exc:  # openpyxl raises many kinds for a file that is not xlsx
        raise InvalidInput(N_("{path} cannot be read as an .xlsx workbook: {error}"),
                           path=str(path), error=str(exc)) from None
    if sheet is not None and sheet not in book.sheetnames:
        raise InvalidInput(N_("the workbook has no sheet “{sheet}”; it has: {sheets}"),
                           sheet=sheet, sheets=", ".join(book.sheetnames))
    work = book[sheet] if sheet is not None else book.worksheets[0]
    rows = [(n, [cell_text(v) for v in row])
            for n, row in enumerate(work.iter_rows(values_only=True), start=1)]
    book.close()
    return rows


def find_header(rows, table: dict[str, str], area_column: str | None):
    """The header row's number and ``{index: column}``; headers not known, ignored."""
    for number, cells in rows[:SCAN_ROWS]:
        names = {i: table.get(normal(c)) for i, c in enumerate(cells) if c is not None}
        if area_column is not None:
            names.update({i: "area" for i, c in enumerate(cells)
                          if c is not None and normal(c) == normal(area_column)})
        if sum(1 for v in names.values() if v) >= 3:
            columns = {i: v for i, v in names.items() if v}
            ignored = [str(cells[i]) for i, v in names.items() if not v]
            return number, columns, ignored
    raise InvalidInput(N_("no header row found in the first {count} rows: a header row names "
                          "at least three columns of the ledger, e.g. 排查日期, 矛盾类型, 基本情况"),
                       count=SCAN_ROWS)


def area_names(node) -> dict[str, str]:
    names = {code: name for code, name in node.db.execute("select area, name from certs")}
    names[node.info.area] = node.info.name
    return names


def area_of(node, raw: Any, names: dict[str, str]) -> str:
    """An area code written as it is, as ``name（code）`` or as a name this node knows."""
    text = str(raw).strip()
    code = re.search(r"[(（]\s*(\d+)\s*[)）]$", text)  # i18n: identifier
    if text.isdigit() or code:
        return areas.check_code(code.group(1) if code else text)
    found = sorted(c for c, n in names.items() if n == text) or sorted(
        c for c, n in names.items() if text in n)
    if len(found) != 1:
        raise InvalidInput(
            N_("“{value}” is neither an area code nor the name of one area this node knows "
               "({found})"), value=text,
            found=", ".join(f"{names[c]}({c})" for c in found) if found else
            Message(N_("no office of that name")))
    return found[0]


def convert_row(node, cells: list[Any], columns: dict[int, str], today: dt.date,
                names: dict[str, str], default_area: str, number: int, headers: list[Any]):
    """The row's values by column name, and its problems (each with its column's header)."""
    fields = FIELDS
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for index, name in columns.items():
        raw = cells[index] if index < len(cells) else None
        if raw is None:
            continue
        if fields[name].kind == "text" and not isinstance(raw, str):
            raw = raw.isoformat() if isinstance(raw, dt.date) else str(raw)
        try:
            if name == "area":
                values[name] = area_of(node, raw, names)
                if not node.in_jurisdiction(values[name]):
                    raise InvalidInput(N_("area {area} is outside this node's jurisdiction "
                                          "{scope} ({name})"), area=values[name],
                                       scope=node.info.area, name=node.info.name)
            else:
                values.update(records.convert_values(node, [fields[name]], {name: raw}, today,
                                                     fields[name].label))
        except XinfangError as exc:
            problems.append(Problem(number, str(headers[index]), exc.message))
    header_of = {name: str(headers[i]) for i, name in columns.items()}
    for field in DISPUTE_FIELDS:
        if field.required and field.name not in values and not any(
                p.column == header_of.get(field.name) for p in problems):
            problems.append(Problem(number, header_of.get(field.name, field.label),
                                    Message(N_("{field} is required and was empty"),
                                            field=field.label)))
    values.setdefault("area", default_area)
    values.setdefault("date", today.isoformat())
    return values, problems


def held_disputes(node) -> dict[tuple, str]:
    return {(a, d, s): i for i, a, d, s in node.db.execute(
        "select id, area, date, summary from ledger_disputes")}


class Ids:
    """The numbers the rows would get, in order, as ``records.next_id`` gives them."""

    def __init__(self, node):
        self.node, self.last = node, {}

    def next(self, year: int) -> str:
        if year not in self.last:
            prefix, _sep, serial = records.next_id(self.node, DISPUTE, year).rpartition("-")
            self.last[year] = (prefix, int(serial) - 1, len(serial))
        prefix, serial, width = self.last[year]
        if serial + 1 > records.serial_range(self.node.info.epoch)[1]:
            raise InvalidInput(N_("this epoch's numbers are used up ({prefix}…); run "
                                  "`xinfang node new-epoch`, then register again"),
                               prefix=prefix)
        self.last[year] = (prefix, serial + 1, width)
        return f"{prefix}-{serial + 1:0{width}d}"


def plan_row(node, number: int, values: dict[str, Any], entity_id: str, date: str):
    """The row's drafts; raises ``InvalidInput`` for a row the ledger cannot take."""
    add = {f.name: values[f.name] for f in DISPUTE_FIELDS if f.name in values}
    by = node.operator
    drafts = [Draft(f"{DISPUTE}.add", DISPUTE, entity_id, values["area"],
                    {**add, "fields": {}, "by": by})]
    step_date = max(date, values["date"])

    def step(name: str, step_values: dict[str, Any]) -> None:
        drafts.append(Draft(f"{DISPUTE}.{name}", DISPUTE, entity_id, values["area"],
                            {"values": {"date": step_date, **step_values}, "by": by}))

    if values.get("resolved") and values.get("case"):
        raise InvalidInput(N_("a dispute is either resolved (是否化解 是) or transferred to a "
                              "信访事项 (关联信访事项), not both"))
    if values.get("resolved"):
        if not values.get("progress"):
            raise InvalidInput(N_("a resolved dispute needs its result in 进展"))
        step("resolve", {"progress": values["progress"]})
    elif values.get("case"):
        held_case(node, values["case"])  # a 信访事项 this node holds, as the step requires
        if values.get("progress"):
            step("progress", {"progress": values["progress"]})
        step("to_petition", {"case": values["case"]})
    elif values.get("progress"):
        step("progress", {"progress": values["progress"]})
    for draft in drafts:
        try:
            validate(node, draft)
        except InvalidEvent as exc:
            raise InvalidInput(exc.message) from None
    return tuple(drafts)


def import_sheet(node, path: Path | str, *, sheet: str | None = None,
                 area_column: str | None = None, area: str | None = None,
                 dry_run: bool = False, skip_existing: bool = False,
                 today: dt.date | None = None, date: str | None = None) -> Result:
    """Check every row, then write them all in one transaction (unless ``dry_run``).

    ``area``: the area of rows whose 所属乡镇/村 is empty [default: this node's];
    ``date``: the day the resolve / progress / 转信访 steps are dated [default: today].
    Raises ``SheetErrors`` listing every problem; nothing is written then.
    """
    today = today or clock.today()
    day = records.convert_values(node, [Field("date", "日期", kind="date")],
                                 {"date": date or today.isoformat()}, today, "--date")["date"]
    default_area = areas.check_code(area) if area else node.info.area
    rows = read_rows(Path(path), sheet)
    number, columns, ignored = find_header(rows, header_table(node), area_column)
    headers = dict(rows)[number]
    names, held, seen, ids = area_names(node), held_disputes(node), {}, Ids(node)
    problems, planned, skipped = [], [], []
    labels = {s.name: s.label for s in node.registry.lifecycle(DISPUTE).steps.values()}
    labels[node.registry.entity_type(DISPUTE).create.name] = \
        node.registry.entity_type(DISPUTE).create.label
    for row, cells in rows:
        if row <= number or all(c is None for c in cells):
            continue
        values, found = convert_row(node, cells, columns, today, names, default_area, row,
                                    headers)
        if found:
            problems.extend(found)
            continue
        key = (values["area"], values["date"], values["summary"])
        if key in held:
            if skip_existing:
                skipped.append({"row": row, "id": held[key]})
            else:
                problems.append(Problem(row, None, Message(N_(
                    "the same dispute (所属乡镇/村, 排查日期 and 基本情况) is held already as {id}"),
                    id=held[key])))
            continue
        if key in seen:
            problems.append(Problem(row, None, Message(
                N_("the same dispute as row {row} (所属乡镇/村, 排查日期 and 基本情况)"),
                row=seen[key])))
            continue
        seen[key] = row
        entity_id = ids.next(int(values["date"][:4]))
        try:
            drafts = plan_row(node, row, values, entity_id, day)
        except XinfangError as exc:
            problems.append(Problem(row, None, exc.message))
            continue
        steps = tuple(d.type.split(".", 1)[1] for d in drafts)
        planned.append(Planned(row, entity_id, values["area"], values, steps, drafts,
                               tuple(labels.get(s, s) for s in steps)))
    if problems:
        raise SheetErrors(problems)
    if not dry_run and planned:
        node.append_many([d for p in planned for d in p.drafts])
    return Result(planned, skipped, ignored, written=not dry_run and bool(planned))


# -- export ----------------------------------------------------------------------------


def sheet_cells(row: dict[str, Any]) -> list[Any]:
    """A row of ``api.month_ledger`` as the sheet's cells, in ``LAYOUT`` order."""
    cells = {**row, "serial": row["no"], "resolved": _("yes") if row["resolved"] else _("no"),
             "mass": _("yes") if row["mass"] else _("no")}
    for name in ("date", "due"):
        cells[name] = dt.date.fromisoformat(row[name]) if row[name] else None
    return [cells[name] for name, _header in LAYOUT]


def export_month(node, month: str, path: Path | str, area: str | None = None) -> int:
    """Write the month's ledger (``api.month_ledger``) to ``path`` (.xlsx); the number of
    disputes in it."""
    rows = month_ledger(node, month, area)
    year, number = month_bounds(month)[0].split("-")[:2]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = f"{year}-{number}"
    unit = area_names(node).get(area or node.info.area, area or node.info.name)
    sheet.append([_("{unit}: the dispute ledger (矛盾纠纷排查化解台账) of {year}-{month}").format(
        unit=unit, year=year, month=int(number))])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(LAYOUT))
    sheet.cell(1, 1).font = Font(bold=True, size=14)
    sheet.cell(1, 1).alignment = Alignment(horizontal="center")
    sheet.append([header for _name, header in LAYOUT])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(sheet_cells(row))
        for index in (2, 12):
            sheet.cell(sheet.max_row, index).number_format = "yyyy-mm-dd"
    for letter, width in (("B", 12), ("C", 16), ("E", 40), ("H", 24), ("L", 12), ("M", 24)):
        sheet.column_dimensions[letter].width = width
    try:
        book.save(path)
    except OSError as exc:
        raise InvalidInput(N_("cannot write {path}: {error}"), path=str(path),
                           error=exc.strerror or str(exc)) from None
    return len(rows)
