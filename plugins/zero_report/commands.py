"""``xinfang zero-report …``: thin shells over ``api``."""

from __future__ import annotations

import datetime as dt

from xinfang.cli import App, emit, group, json_option, option, pass_app, table
from xinfang.core import clock
from xinfang.core.entities import parse_date
from xinfang.core.i18n import N_, _

from . import api

TODAY_HELP = N_("Today's date, YYYY-MM-DD [default: today in Beijing].")


def _today(text: str | None) -> dt.date:
    return parse_date(text, N_("today (--today)")) if text else clock.today()


@group("zero-report", help=N_("信息零报告: daily reports from every station in a sensitive "
                              "period, and who is silent."))
def zero_report_group():
    """The 零报告 commands."""


@zero_report_group.command("declare", help=N_("Declare a sensitive period (county, or where "
                                              "policy delegates it)."))
@option("--name", required=True, help=N_("The period's name, e.g. 两会."))
@option("--from", "start", required=True, help=N_("First day, YYYY-MM-DD."))
@option("--to", "end", required=True, help=N_("Last day, YYYY-MM-DD."))
@option("--every", help=N_("How often stations report: daily (每日, the default), weekly (每周) "
                           "or a number of days."))
@option("--area", "covers", multiple=True,
        help=N_("An area the period covers; may be repeated [default: this node's whole "
                "area]."))
@option("--id", "period_id", help=N_("The period's id [default: ZR and its first day]."))
@json_option
@pass_app
def declare(app: App, name, start, end, every, covers, period_id, as_json):
    with app.open_node() as node:
        period = api.declare(node, name, start, end, every, list(covers) or None, period_id)
    emit(period.to_json(), as_json, lambda p: _(
        "Declared {id} {name}: {start} to {end}, every {every} days, covering {areas}").format(
            id=p["id"], name=p["name"], start=p["from"], end=p["to"], every=p["every"],
            areas=", ".join(p["areas"])))


@zero_report_group.command("periods", help=N_("List the sensitive periods declared."))
@json_option
@pass_app
def list_periods(app: App, as_json):
    with app.open_node() as node:
        found = [p.to_json() for p in api.list_periods(node)]
    emit(found, as_json, lambda rows: table(
        [[p["id"], p["name"], p["from"], p["to"], p["every"], ", ".join(p["areas"]), p["area"]]
         for p in rows], [_("Id"), _("Name"), _("From"), _("To"), _("Every (days)"),
                          _("Covers"), _("Declared by")]) if rows else _("No periods."))


@zero_report_group.command("file", help=N_("File this station's report for a day: 无情况 "
                                           "unless a note or cases are given."))
@option("--date", help=N_("The day reported on, YYYY-MM-DD [default: today]."))
@option("--note", default="", help=N_("A short note on what happened."))
@option("--case", "cases", multiple=True, help=N_("A case number the note concerns; may be "
                                                  "repeated."))
@option("--period", "period_id", help=N_("The period's id [default: the one running]."))
@option("--today", help=TODAY_HELP)
@json_option
@pass_app
def file_(app: App, date, note, cases, period_id, today, as_json):
    with app.open_node() as node:
        filed = api.file_report(node, date, note, list(cases), period_id, _today(today))
    emit(filed, as_json, lambda f: (_("Corrected {id}: {what}") if f["corrected"]
                                    else _("Filed {id}: {what}")).format(
        id=f["id"], what=_("nothing to report") if f["status"] == "none" else f["note"] or
        ", ".join(f["cases"])))


@zero_report_group.command("missing", help=N_("List the stations silent on a report day."))
@option("--date", help=N_("The report day, YYYY-MM-DD [default: today]."))
@option("--period", "period_id", help=N_("The period's id [default: the one running]."))
@option("--today", help=TODAY_HELP)
@json_option
@pass_app
def missing(app: App, date, period_id, today, as_json):
    with app.open_node() as node:
        found = api.missing(node, date, period_id, _today(today))
    emit(found, as_json, _missing_text)


def _missing_text(found) -> str:
    head = _("{name} ({period}) {day}: {filed} of {expected} stations reported").format(
        name=found["name"], period=found["period"], day=found["day"], filed=found["filed"],
        expected=found["expected"])
    if not found["missing"]:
        return head + "\n" + _("No station is silent.")
    return head + "\n" + table([[m["area"], m["name"]] for m in found["missing"]],
                               [_("Silent station"), _("Name")])


@zero_report_group.command("status", help=N_("Reporting and on-time rates per station and "
                                             "overall."))
@option("--period", "period_id", help=N_("The period's id [default: the one running, or the "
                                         "latest]."))
@option("--as-of", help=N_("Count the days begun by this date [default: today]."))
@json_option
@pass_app
def status(app: App, period_id, as_of, as_json):
    with app.open_node() as node:
        found = api.status(node, period_id, _today(as_of))
    emit(found, as_json, _status_text)


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})" if whole else "—"


def _status_text(found) -> str:
    rows = [[s["area"], s["name"], _rate(s["filed"], s["expected"]),
             _rate(s["on_time"], s["expected"]), s["late"], ", ".join(s["silent_days"]) or "—"]
            for s in found["stations"]]
    t = found["total"]
    rows.append([_("Total"), "", _rate(t["filed"], t["expected"]),
                 _rate(t["on_time"], t["expected"]), t["late"], ""])
    return _("{name} ({id}), as of {as_of}").format(
        name=found["period"]["name"], id=found["period"]["id"], as_of=found["as_of"]) + "\n" + \
        table(rows, [_("Area code"), _("Station"), _("Reporting rate"), _("On-time rate"),
                     _("Received late"), _("Silent days")])
