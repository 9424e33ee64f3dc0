"""``xinfang ledger import`` and ``xinfang ledger export``: thin shells over ``excel``.

Registered from ``plugin.py`` by importing this module's two hook
implementations: ``xinfang_addhooks`` adds the ledger's own hook
(``xinfang_ledger_headers``), ``register_excel_commands`` adds the two
commands to the ``ledger`` group after the group's own commands are made.
"""

from __future__ import annotations

import click

from xinfang.cli import App, argument, command, emit, json_option, option, pass_app, table
from xinfang.cli.output import json_text
from xinfang.core.i18n import N_, _

from . import excel


@command("import", help=N_("Import a 矛盾纠纷排查化解台账 kept in an .xlsx workbook: one dispute "
                           "per row under a header row in Chinese; every row is checked first and "
                           "nothing is written on any error."))
@argument("path", metavar=N_("FILE"), type=click.Path(dir_okay=False))
@option("--sheet", help=N_("The sheet to read [default: the first]."))
@option("--area-column", help=N_("The header of the column holding the area, when it is "
                                 "none of the usual ones (所属乡镇/村, 区划代码 …)."))
@option("--area", help=N_("The area of rows whose area cell is empty [default: this node's]."))
@option("--date", help=N_("The day the rows' 化解 / 进展 / 转信访 steps are dated, "
                          "YYYY-MM-DD [default: today]."))
@option("--skip-existing", is_flag=True,
        help=N_("Skip rows this node holds already (same area, 排查日期 and 基本情况) instead of "
                "refusing the file."))
@option("--dry-run", is_flag=True, help=N_("Show what would be written; write nothing."))
@json_option
@pass_app
def import_(app: App, path, sheet, area_column, area, date, skip_existing, dry_run, as_json):
    with app.open_node() as node:
        try:
            result = excel.import_sheet(node, path, sheet=sheet, area_column=area_column,
                                        area=area, dry_run=dry_run, date=date,
                                        skip_existing=skip_existing)
        except excel.SheetErrors as exc:
            problems = [p.to_dict() for p in exc.problems]
            if as_json:
                click.echo(json_text({"written": False, "errors": problems}))
            else:
                click.echo(_problems_text(problems, str(exc.message)), err=True)
            raise SystemExit(1) from None
    emit(result.to_dict(), as_json, _result_text)


def _problems_text(problems, heading: str) -> str:
    lines = [heading]
    for p in problems:
        where = (_("row {row}, {column}").format(row=p["row"], column=p["column"])
                 if p["column"] else _("row {row}").format(row=p["row"]))
        lines.append(_("{where}: {message}").format(where=where, message=p["message"]))
    return "\n".join(lines)


def _result_text(data) -> str:
    rows = data["rows"]
    text = table([[r["row"], r["id"], r["area"], r["values"].get("summary", ""),
                   _(", ").join(r["step_labels"])] for r in rows],
                 [_("Row"), _("Number"), _("Area"), excel.FIELDS["summary"].label,
                  _("Events")]) if rows else ""
    lines = [text] if text else []
    if data["written"]:
        lines.append(_("{count} disputes imported").format(count=len(rows)))
    else:
        lines.append(_("Dry run: {count} disputes would be imported; nothing was written")
                     .format(count=len(rows)))
    if data["skipped"]:
        lines.append(_("Skipped rows held already: {rows}").format(rows=_(", ").join(
            f"{s['row']}({s['id']})" for s in data["skipped"])))
    if data["ignored_columns"]:
        lines.append(_("Columns not read: {columns}").format(
            columns=_(", ").join(data["ignored_columns"])))
    return "\n".join(lines)


@command("export", help=N_("Write a month's 矛盾纠纷排查化解台账 as .xlsx in the office layout."))
@option("--month", required=True, help=N_("The month, YYYY-MM."))
@option("--area", help=N_("An area below this node [default: this node's]."))
@option("--out", required=True, type=click.Path(dir_okay=False),
        help=N_("The .xlsx file to write."))
@json_option
@pass_app
def export(app: App, month, area, out, as_json):
    with app.open_node() as node:
        count = excel.export_month(node, month, out, area)
    emit({"path": str(out), "month": month, "rows": count}, as_json,
         lambda d: _("Wrote {rows} disputes of {month} to {path}").format(**d))


def add_to(ledger) -> None:
    """Add ``import`` and ``export`` to the ``ledger`` group."""
    ledger.add_command(import_)
    ledger.add_command(export)
