"""The web view's 报表 pages: the reports, one report's form and result, its downloads,
and 上报 / 审核 of the reports offices submit upward.

Thin over the APIs the CLI uses: ``core.reports`` (``find``, ``run_report``,
``render``) and the stats plugin's ``submission`` (``submit``, ``approve``,
``send_back``, ``status``), so the checks and the messages are the CLI's.
What the web adds is who may ask: a report is run for one area, which the
user must see (a report without an area parameter covers the node's own
area); the area field is never left to the report's default, since that is
the node's area, which a village's 信息员 may not see. 上报 needs a role that
takes steps or approves, 审核通过 and 退回 a role that approves.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from xinfang.core import areas, clock, periods
from xinfang.core.errors import InvalidInput, XinfangError
from xinfang.core.i18n import N_, _
from xinfang.core.reports import Report, ReportResult, cell_text, find, render, run_report
from xinfang.core.routes import Response, Route
from xinfang.plugins.stats import approval, submission

from . import users
from .app import PAGE_HEADERS, Forbidden, Page, add_labels, add_menu, page, redirect

add_labels({
    "rep_reports": N_("Reports"), "rep_report": N_("Report"),
    "rep_description": N_("Description"), "rep_parameters": N_("Parameters"),
    "rep_run": N_("Run the report"), "rep_download": N_("Download"),
    "rep_no_reports": N_("No reports are installed."), "rep_notes": N_("Notes"),
    "rep_submittable": N_("submitted upward"), "rep_submission": N_("Submission"),
    "rep_submit": N_("Submit"), "rep_submitted": N_(
        "Submitted to the office above; it recomputes the figures after sync."),
    "rep_review": N_("Report review"), "rep_record": N_("Record"),
    "rep_period": N_("Period"), "rep_state": N_("State"), "rep_round": N_("Round"),
    "rep_check": N_("Check"), "rep_approve": N_("Approve"),
    "rep_send_back": N_("Send back"), "rep_reason": N_("Reason"),
    "rep_none_submitted": N_("No report has been submitted."),
    "rep_decided": N_("Done: the decision goes to the submitting office at the next sync."),
    "rep_amendments": N_("Amendments (补报)"),
})
add_menu("/reports", N_("Reports"), users.VIEW_AREA, 20)
add_menu("/submissions", N_("Report review"), users.APPROVE, 21)

REPORT = "{name:[a-z][a-z0-9_]*(?:\\.[a-z0-9_]+)*}"
RECORD = "{id:[0-9]{6,12}-[0-9A-Za-z._-]+}"
#: what a download is sent as, by the renderer's file extension
CONTENT_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "csv": "text/csv; charset=utf-8", "json": "application/json",
                 "txt": "text/plain; charset=utf-8"}


# -- the parameters ---------------------------------------------------------------------


def _defaults(context: Page, report: Report) -> dict[str, str]:
    """What the form starts with: the current month, the year, the user's area (within
    the node's), else the report's own default. A ``period`` read as plain text is an id
    (零报告), not a month: left empty."""
    today = clock.today()
    wanted = {"period": periods.current_month().code, "year": str(today.year),
              "area": context.home_area}
    found = {}
    for param in report.params:
        if param.name in wanted and not (param.name == "period" and param.convert is str):
            found[param.name] = wanted[param.name]
        else:
            found[param.name] = "" if param.default is None else str(param.default)
    return found


def _given(context: Page, report: Report, source: dict[str, str]) -> dict[str, str]:
    """The report's parameters from ``source`` (a query or a form), an empty field taking
    its default; other names (``run``, ``format``) are not the report's."""
    values = _defaults(context, report)
    for param in report.params:
        text = (source.get(param.name) or "").strip()
        if text:
            values[param.name] = text
    return values


def _check_area(context: Page, report: Report, given: dict[str, str]) -> None:
    """The area the report is run for must be the node's or below it (400), and one the
    user may see (403)."""
    node = context.node
    area = given.get("area") if any(p.name == "area" for p in report.params) else None
    area = areas.check_code(area) if area else node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is outside this node's area {own}; a report covers "
                              "this node's area or an area below it"),
                           area=area, own=node.info.area)
    if not context.user.may_see(area):
        raise Forbidden(N_("your area {own} does not include area {area}: you may not see "
                           "its reports"), own=context.user.area, area=area)


def _run(context: Page, report: Report, given: dict[str, str]) -> ReportResult:
    _check_area(context, report, given)
    return run_report(context.node, report.name, {k: v for k, v in given.items() if v})


# -- what a page shows ------------------------------------------------------------------


def _table(label: str | None, columns, rows, total=None, name: str = "main") -> dict:
    def cells(row):
        return [{"name": c.name, "kind": c.kind, "text": cell_text(row.get(c.name))}
                for c in columns]

    return {"name": name, "label": label, "headers": [_(c.label) for c in columns],
            "rows": [cells(r) for r in rows], "total": cells(total) if total else None}


def _result_view(result: ReportResult) -> dict[str, Any]:
    extra = [_table(_(t.label), t.columns, t.rows, name=t.name) for t in result.tables]
    trend = result.trend
    return {"heading": result.heading, "header": result.header, "preamble": result.preamble,
            "main": _table(None, result.columns, result.rows, result.total),
            "tables": extra, "notes": result.notes,
            "trend": _table(_(trend.label), trend.columns, trend.rows, name="trend")
            if trend else None}


def _may_submit(context: Page, report: Report) -> bool:
    user = context.user
    return (report.submittable and (user.may(users.TAKE_STEPS) or user.may(users.APPROVE))
            and user.may_see(context.node.info.area))


def _own_submission(context: Page, report: Report, given: dict[str, str]) -> dict | None:
    """This office's record of ``report`` for the period, as ``status`` has it (草稿 when
    there is none yet); None where nothing is submitted from here, or where the report
    was run for another area than the office's own (which is what is submitted)."""
    node = context.node
    if (not _may_submit(context, report) or node.info.root or not given.get("period")
            or given.get("area", node.info.area) != node.info.area):
        return None
    code = periods.parse(given["period"]).code
    wanted = approval.record_id(node.info.area, code, report.name)
    line = next((line for line in submission.status(node, code, check=False)
                 if line["id"] == wanted), None)
    status = line["status"] if line else "draft"
    return {"id": wanted, "period": code, "status": status,
            "state": node.registry.lifecycle(approval.ENTITY).label(status),
            "reason": line["reason"] if line else None,
            "open": status in ("draft", "returned")}


# -- the pages --------------------------------------------------------------------------


@page
def report_list(context: Page) -> Response:
    context.require_sight()
    shown = [{"name": r.name, "label": _(r.label),
              "description": _(r.description) if r.description else "",
              "submittable": r.submittable}
             for r in context.node.registry.reports.values()]
    return context.render("reports.html", title=_("Reports"), reports=shown)


@page
def report_page(context: Page) -> Response:
    context.require_sight()
    report = find(context.node.registry, context.request.params["name"])
    query = context.request.query
    given = _given(context, report, query)
    values = dict(report=report, given=given, result=None, message=None, downloads=[],
                  own=None, submitted=query.get("submitted") == "1",
                  params=[{"name": p.name, "label": _(p.label), "required": p.required}
                          for p in report.params],
                  label=_(report.label),
                  description=_(report.description) if report.description else "")
    if query.get("run") != "1":
        return context.render("report.html", title=values["label"], **values)
    try:
        result = _run(context, report, given)
        own = _own_submission(context, report, given)
    except Forbidden:
        raise
    except XinfangError as exc:
        return context.render("report.html", status=400, title=values["label"],
                              **{**values, "message": str(exc)})
    shown = {k: v for k, v in given.items() if v}
    downloads = [(r.name, _(r.label), f"/reports/{report.name}/download?"
                  + urlencode({**shown, "format": r.name}))
                 for r in context.node.registry.renderers.values()]
    return context.render("report.html", title=result.heading,
                          **{**values, "result": _result_view(result), "downloads": downloads,
                             "own": own})


def _filename(report: Report, result: ReportResult, given: dict[str, str],
              extension: str) -> str:
    """``attachment`` with an ASCII name (the report's name and parameters) and the
    reader's-language one (``filename*``, RFC 6266) for browsers that read it."""
    parts = [report.name, *(given[k] for k in ("area", "period", "year") if given.get(k))]
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)) + "." + extension
    shown = quote(f"{result.heading}.{extension}", safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{shown}"  # i18n: identifier


@page
def download(context: Page) -> Response:
    context.require_sight()
    node = context.node
    report = find(node.registry, context.request.params["name"])
    renderer = node.registry.lookup("renderers", context.request.query.get("format") or "",
                                    N_("output format"))
    given = _given(context, report, context.request.query)
    result = _run(context, report, given)
    data = render(node.registry, result, renderer.name)
    kind = CONTENT_TYPES.get(renderer.extension, "application/octet-stream")
    headers = (*PAGE_HEADERS, ("Content-Disposition",
                               _filename(report, result, given, renderer.extension)))
    return Response(data, content_type=kind, headers=headers)


@page
def submit(context: Page) -> Response:
    report = find(context.node.registry, context.request.params["name"])
    context.require(_may_submit(context, report))
    period = (context.form.get("period") or "").strip()
    submission.submit(context.node, report.name, period)
    return redirect(f"/reports/{report.name}?" + urlencode(
        {"run": "1", "period": periods.parse(period).code, "submitted": "1"}))


def _submission_line(node, line: dict[str, Any]) -> dict[str, Any]:
    report = node.registry.reports.get(line["report"])
    differences = [submission.difference_line(submission.difference_view(d)) for d in
                   (*line["evidence"], *line["differences"])]
    return {**line, "label": _(report.label) if report else line["report"],
            "state": node.registry.lifecycle(approval.ENTITY).label(line["status"]),
            "check_label": _(submission.RESULT_LABELS[line["check"]]) if line["check"] else "",
            "lines": differences,
            "amended": [submission.difference_line(submission.difference_view(d), approved=True)
                        for d in line["amendments"]],
            "decidable": line["status"] == "submitted" and line["area"] != node.info.area}


@page
def submissions(context: Page) -> Response:
    context.require(context.user.may(users.APPROVE))
    node, query = context.node, context.request.query
    period = (query.get("period") or "").strip() or None
    wanted = query.get("status") or ""
    lines = [_submission_line(node, line) for line in submission.status(node, period)
             if context.user.may_see(line["area"]) and wanted in ("", line["status"])]
    lifecycle = node.registry.lifecycle(approval.ENTITY)
    return context.render("submissions.html", title=_("Report review"), lines=lines,
                          period=period or "", wanted=wanted, done=query.get("done") == "1",
                          statuses=[(s.name, s.label) for s in lifecycle.states.values()])


def _decide(context: Page, decide) -> Response:
    context.require(context.user.may(users.APPROVE))
    record = submission.get(context.node, context.request.params["id"])
    context.require(context.user.may_see(record["area"]))
    decide(record["id"])
    return redirect("/submissions?" + urlencode({"period": record["period"], "done": "1"}))


@page
def approve(context: Page) -> Response:
    return _decide(context, lambda record: submission.approve(context.node, record))


@page
def send_back(context: Page) -> Response:
    return _decide(context, lambda record: submission.send_back(
        context.node, record, context.form.get("reason")))


def routes() -> list[Route]:
    return [
        Route("web.reports", "/reports", report_list, label=N_("Reports"), page=True),
        Route("web.report", f"/reports/{REPORT}", report_page, label=N_("Report"), page=True),
        Route("web.report_download", f"/reports/{REPORT}/download", download,
              label=N_("Download"), page=True),
        Route("web.report_submit", f"/reports/{REPORT}/submit", submit, ("POST",),
              N_("Submit"), page=True),
        Route("web.submissions", "/submissions", submissions,
              label=N_("Report review"), page=True),
        Route("web.submission_approve", f"/submissions/{RECORD}/approve", approve, ("POST",),
              N_("Approve"), page=True),
        Route("web.submission_return", f"/submissions/{RECORD}/return", send_back, ("POST",),
              N_("Send back"), page=True),
    ]
