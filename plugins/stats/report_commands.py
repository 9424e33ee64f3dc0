"""``xinfang report submit / approve / return / status``: thin shells over ``submission``.

Added to the kernel's ``report`` group by the stats plugin's
``xinfang_register_commands``, so a node without the plugin (a relay) has no
command it could not run.
"""

from __future__ import annotations

from typing import Any

import attrs

from xinfang.cli import argument, command, emit, json_option, option, pass_app, table
from xinfang.core import periods
from xinfang.core.i18n import N_, _

from . import submission as sub
from .approval import ENTITY

STATUS_HEADERS = (N_("Record"), N_("Period"), N_("Area"), N_("State"), N_("Round"),
                  N_("Check"), N_("Amendments (补报)"))


def _state(registry, status: str) -> str:
    return registry.lifecycle(ENTITY).label(status)


def _gap(gap: sub.FeedGap) -> dict[str, Any]:
    return attrs.asdict(gap)


def _gap_line(gap: dict[str, Any]) -> str:
    return str(sub.describe_gap(sub.FeedGap(**gap)))


def _plain_line(line: dict[str, Any], registry) -> dict[str, Any]:
    return {**line, "state": _state(registry, line["status"]),
            "check_label": _(sub.RESULT_LABELS[line["check"]]) if line["check"] else None,
            "differences": [sub.difference_view(d) for d in line["differences"]],
            "evidence": [sub.difference_view(d) for d in line["evidence"]],
            "amendments": [sub.difference_view(d) for d in line["amendments"]],
            "missing": [_gap(g) for g in line["missing"]],
            "newer": [_gap(g) for g in line["newer"]]}


@command("submit", help=N_(
    "Submit this office's report for a period to the office above, signed, with the "
    "events it was computed from; after a send-back, submit it again."))
@argument("report", metavar=N_("REPORT"))
@option("--period", required=True, help=N_("The period, e.g. 2026-11."))
@option("--as-of", "as_of", help=N_("Figures as of (YYYY-MM-DD) [default: the period's last "
                                    "day, or today]."))
@json_option
@pass_app
def submit_command(app, report, period, as_of, as_json):
    with app.open_node() as node:
        day = stats_date(as_of)
        done = sub.submit(node, report, periods.parse(period), day)
    emit(done, as_json, lambda d: "\n".join([
        _("Report {record} submitted (已上报), figures as of {as_of}; the office above "
          "recomputes it after sync").format(record=d["record"], as_of=d["as_of"]),
        *[_("补报 for {record}: {count} figures changed since approval").format(
            record=a["record"], count=len(a["differences"])) for a in d["amendments"]]]))


def stats_date(text: str | None):
    from .reports import _date

    return _date(text) if text else None


@command("approve", help=N_(
    "Approve (审核) a submitted report after recomputing it alike; its figures are then "
    "locked."))
@argument("record", metavar=N_("RECORD"))
@json_option
@pass_app
def approve_command(app, record, as_json):
    with app.open_node() as node:
        done = sub.approve(node, record)
    emit(done, as_json, lambda d: _("Report {record} approved (已审核, 核对一致); its figures "
                                    "are locked").format(record=d["record"]))


@command("return", help=N_("Send a submitted report back (退回) with a reason."))
@argument("record", metavar=N_("RECORD"))
@option("--reason", help=N_("Why it is sent back (required)."))
@json_option
@pass_app
def return_command(app, record, reason, as_json):
    with app.open_node() as node:
        done = sub.send_back(node, record, reason)
    emit(done, as_json, lambda d: _("Report {record} sent back (已退回): {reason}").format(
        record=d["record"], reason=d["reason"]))


@command("status", help=N_(
    "List submitted reports: state, the check of the figures (一致/不一致/缺少事件) and "
    "补报 after approval."))
@option("--period", help=N_("Only this period, e.g. 2026-11 (shows this office's own report "
                            "as 草稿 until it is submitted)."))
@json_option
@pass_app
def status_command(app, period, as_json):
    with app.open_node() as node:
        lines = [_plain_line(line, node.registry) for line in sub.status(node, period)]
    emit(lines, as_json, _status_text)


def _status_text(lines: list[dict[str, Any]]) -> str:
    if not lines:
        return _("No report has been submitted.")
    parts = [table([[r["id"], r["period"], r["area"], r["state"], r["round"] or "—",
                     r["check_label"] or "—", len(r["amendments"]) or "—"] for r in lines],
                   [_(h) for h in STATUS_HEADERS])]
    for r in lines:
        details = []
        if r["reason"]:
            details.append(_("Sent back: {reason}").format(reason=r["reason"]))
        details += [f"  {sub.difference_line(d)}" for d in r["evidence"]]
        details += [f"  {sub.difference_line(d)}" for d in r["differences"]]
        if r["missing"]:
            details.append(_("缺少事件: this office lacks events the report was computed "
                             "from:"))
            details += [f"  {_gap_line(g)}" for g in r["missing"]]
        if r["newer"]:
            details.append(_("Events held here after its frontier (not counted in it):"))
            details += [f"  {_gap_line(g)}" for g in r["newer"]]
        if r["amendments"]:
            details.append(_("补报 (amendment): approved figures and a recomputation now:"))
            details += [f"  {sub.difference_line(d, approved=True)}" for d in r["amendments"]]
        if details:
            parts += ["", f"{r['id']}:", *details]
    return "\n".join(parts)


COMMANDS = (submit_command, approve_command, return_command, status_command)
