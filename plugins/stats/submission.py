"""Verifiable statistics: a report submitted with the events it was computed from.

A township submits its 月报表, or any report a plugin declares
``submittable`` (``core.reports.Report``), as a signed ``report`` record (``approval``):
the figures (rows and total, every rate as numerator and denominator), the
day they were seen as of, the policy version in force and its *frontier*,
per author feed the highest sequence number it held. Any office above it
can then recompute the same report from the signed events it holds: those
of the township's scope, each feed only up to the frontier's sequence
number, folded afresh into a temporary copy (``scoped_copy``) exactly as a
rebuild folds them (same plugins, certificates and fork evidence), so the
copy holds what the township held and nothing else, and the report is
computed there. Every figure that differs is shown, field by field, as
evidence; events the frontier names but this office lacks are named
instead of being taken for a mismatch; events it holds beyond the frontier
are listed as not counted.

After approval the figures in the record stand. Later events that change
the period's figures are a 补报 (amendment): the approved figures beside a
recomputation now, shown by ``status`` and carried in the next submission.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from typing import Any

import attrs

from xinfang.core import policy, reports as core_reports, scope as scopes
from xinfang.core.entities import Author
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.i18n import N_, Message, _
from xinfang.core.node import Draft
from xinfang.core.reports import Ratio

from . import approval as ap
from xinfang.core import periods
from . import reports as stats_reports
from .scoped import scoped_copy

MONTHLY = "stats.monthly"
#: set while figures are computed: a report's own 补报 notes (which recompute earlier
#: approved periods) are not figures, so ``amendments`` skips them then rather than
#: recomputing each earlier period again for every later one
_COMPUTING = contextvars.ContextVar("xinfang_stats_computing_figures", default=False)


# -- what is submitted -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Ratio):
        return {"numerator": value.numerator, "denominator": value.denominator}
    return value


def submittable(registry, name: str) -> bool:
    """Whether ``name`` is a report registered here that offices submit upward."""
    report = registry.reports.get(name)
    return report is not None and report.submittable


def submittable_names(registry) -> list[str]:
    return sorted(name for name in registry.reports if submittable(registry, name))


def figures(node, period: periods.Period, area: str, as_of: str,
            report: str = MONTHLY) -> dict[str, Any]:
    """A submittable report's rows (the 月报表's: one per area one level down) and total,
    as a record holds them: computed through the kernel (``run_report`` with the period,
    area and as-of day), each row keyed by its first column (``group``), counts as
    integers, rates as numerator and denominator, no text of any language."""
    token = _COMPUTING.set(True)
    try:
        result = core_reports.run_report(node, report, {"period": period.code, "area": area,
                                                        "as_of": as_of})
    finally:
        _COMPUTING.reset(token)
    key = result.columns[0].name

    def keyed(row: dict[str, Any]) -> dict[str, Any]:
        return {"group": row.get(key), **{k: _plain(v) for k, v in row.items() if k != key}}

    total = result.total or {}
    return {"rows": [keyed(row) for row in result.rows],
            "total": {k: _plain(v) for k, v in total.items() if k != key}}


def frontier(db) -> list[list[Any]]:
    """Per author feed (author, epoch) the highest sequence number held within scope."""
    return [[a, e, s] for a, e, s in db.execute(
        "select author, epoch, max(seq, covered) from feeds order by author, epoch")]


# -- recomputing ---------------------------------------------------------------------


@attrs.frozen
class FeedGap:
    """Events of one feed: ``count`` of them, sequence numbers ``first`` to ``last``."""

    author: str
    name: str
    epoch: int
    first: int
    last: int
    count: int


@attrs.frozen
class Difference:
    """One figure as submitted (or approved) and as recomputed."""

    group: str | None  # an area of a row; None for the total
    figure: str
    part: str  # count | numerator | denominator
    submitted: int
    recomputed: int

    @property
    def difference(self) -> int:
        return self.submitted - self.recomputed

    @property
    def kind(self) -> str:
        return (N_("under-reported (漏报/瞒报)") if self.difference < 0
                else N_("over-reported (虚报)"))

    def to_wire(self) -> list[Any]:
        return [self.group, self.figure, self.part, self.submitted, self.recomputed]


CONSISTENT, MISMATCH, MISSING = "consistent", "mismatch", "missing"
#: this node has not the plugin of the report (a relay): it holds the record, unchecked
UNAVAILABLE = "unavailable"
RESULT_LABELS = {CONSISTENT: N_("consistent (核对一致)"), MISMATCH: N_("mismatch (不一致)"),
                 MISSING: N_("events missing (缺少事件)"),
                 UNAVAILABLE: N_("cannot be recomputed here (report not installed)")}


@attrs.frozen
class Check:
    record: str
    result: str
    differences: tuple[Difference, ...] = ()
    missing: tuple[FeedGap, ...] = ()
    newer: tuple[FeedGap, ...] = ()
    policy_submitted: str = ""
    policy_recomputed: str | None = None


def difference_view(d: Difference) -> dict[str, Any]:
    """One difference as ``report status --json`` and the web's 上报审核 show it."""
    return {"group": d.group, "figure": d.figure, "part": d.part, "submitted": d.submitted,
            "recomputed": d.recomputed, "difference": d.difference, "kind": _(d.kind)}


def difference_line(d: dict[str, Any], approved: bool = False) -> str:
    """A ``difference_view`` as one line of text: submitted against recomputed, or, for
    an approved figure (``approved``), the 补报 line the next report carries."""
    if approved:
        return stats_reports.difference_text(d["group"], d["figure"], d["part"],
                                             d["submitted"], d["recomputed"])
    text = N_("{group} {figure} {part}: submitted {submitted}, recomputed {recomputed} "
              "({change}, {kind})")
    return _(text).format(group=d["group"] or _("Total"),
                          figure=stats_reports.figure_label(d["figure"]),
                          part=stats_reports.part_label(d["part"]), submitted=d["submitted"],
                          recomputed=d["recomputed"], change=f"{d['difference']:+d}",
                          kind=d["kind"])


def compare(given: dict[str, Any], computed: dict[str, Any]) -> list[Difference]:
    """Every figure, row by row and in the total, where ``given`` and ``computed`` differ."""
    def rows(figs):
        found = {row.get("group"): {k: v for k, v in row.items() if k != "group"}
                 for row in figs["rows"]}
        found[None] = figs["total"]
        return found

    def parts(value):
        if isinstance(value, dict):
            return {"numerator": value.get("numerator", 0),
                    "denominator": value.get("denominator", 0)}
        return {"count": value if type(value) is int else 0}

    left, right = rows(given), rows(computed)
    found = []
    for group in sorted(set(left) | set(right), key=lambda g: (g is None, g or "")):
        a, b = left.get(group, {}), right.get(group, {})
        for figure in sorted(set(a) | set(b)):
            shape = a.get(figure, b.get(figure))
            pa = parts(a.get(figure, {} if isinstance(shape, dict) else 0))
            pb = parts(b.get(figure, {} if isinstance(shape, dict) else 0))
            for part in pa:
                if pa[part] != pb.get(part, 0):
                    found.append(Difference(group, figure, part, pa[part], pb.get(part, 0)))
    return found


def _limit(record: dict[str, Any]) -> dict[tuple[str, int], int]:
    return {(a, e): s for a, e, s in record["frontier"]}


def _gaps(node, pairs: dict[tuple[str, int], list[int]]) -> tuple[FeedGap, ...]:
    return tuple(FeedGap(a, node.author_name(a), e, min(s), max(s), len(s))
                 for (a, e), s in sorted(pairs.items()))


def verify_submission(node, record_id: str) -> Check:
    """Recompute a submitted record's figures from the events this node holds, within
    the record's scope and frontier, and compare them field by field."""
    record = get(node, record_id)
    limit = _limit(record)
    held = {(a, e): s for a, e, s in frontier(node.db)}
    missing = {feed: list(range(held.get(feed, 0) + 1, seq + 1))
               for feed, seq in limit.items() if held.get(feed, 0) < seq}
    newer: dict[tuple[str, int], list[int]] = {}
    for author, epoch, seq in node.db.execute(
            f"select author, epoch, seq from events where {scopes.SQL} and entity != :report",
            {"scope": record["area"], "report": ap.ENTITY}):
        if seq > limit.get((author, epoch), 0):
            newer.setdefault((author, epoch), []).append(seq)
    base = dict(record=record_id, missing=_gaps(node, missing), newer=_gaps(node, newer),
                policy_submitted=record["policy_version"])
    if not submittable(node.registry, record["report"]):
        return Check(result=UNAVAILABLE, **base)
    if missing:
        return Check(result=MISSING, **base)
    with scoped_copy(node, record["area"], limit) as copy:
        computed = figures(copy, periods.parse(record["period"]), record["area"],
                           record["as_of"], record["report"])
        version = policy.policy_version(copy.db)
    differences = tuple(compare(record["figures"], computed))
    return Check(result=MISMATCH if differences else CONSISTENT, differences=differences,
                 policy_recomputed=version, **base)


def amendments(node, record: dict[str, Any]) -> list[Difference]:
    """补报: an approved record's figures beside a recomputation from every event held
    now (seen as of the same day), where they differ; none while figures are being
    computed, or where this node cannot compute the report."""
    if _COMPUTING.get() or not submittable(node.registry, record["report"]):
        return []
    period = periods.parse(record["period"])
    if record["area"] == node.info.area:
        now = figures(node, period, record["area"], record["as_of"], record["report"])
    else:
        with scoped_copy(node, record["area"], None) as copy:
            now = figures(copy, period, record["area"], record["as_of"], record["report"])
    return compare(record["figures"], now)


# -- the API ---------------------------------------------------------------------------


def get(node, record_id: str) -> dict[str, Any]:
    record = ap.load(node.db, record_id)
    if record is None:
        raise NotFound(N_("there is no submitted report “{id}”; `xinfang report status` lists "
                          "them"), id=record_id)
    return record


def office(node) -> Author | None:
    cert = node.certificate
    return Author(node.info.author, cert.area, cert.level) if cert is not None else None


def _check_step(node, record: dict[str, Any] | None, step: str, values: dict[str, Any],
                record_id: str) -> None:
    view = record or {"id": record_id, "area": node.info.area, "status": "draft"}
    node.registry.lifecycle(ap.ENTITY).check(view, step, values, office(node))


def submit(node, report: str, period: "str | periods.Period",
           as_of: dt.date | None = None) -> dict[str, Any]:
    """Submit (or, once sent back, resubmit) this office's ``report`` for ``period``."""
    if not submittable(node.registry, report):
        raise InvalidInput(N_("report {report} cannot be submitted; the reports submitted "
                              "upward: {reports}"), report=report,
                           reports=", ".join(submittable_names(node.registry)))
    period = periods.parse(period) if isinstance(period, str) else period
    info = node.info
    if info.root or node.certificate is None:
        raise InvalidInput(N_("this node has no office above it to submit to (it is the root, "
                              "or not yet enrolled)"))
    record_id = ap.record_id(info.area, period.code, report)
    record = ap.load(node.db, record_id)
    if record is not None and record["status"] == "submitted":
        raise InvalidInput(N_("report {id} is already submitted and awaits review"),
                           id=record_id)
    if record is not None and record["status"] == "approved":
        raise InvalidInput(N_("report {id} is approved and locked; later changes appear as "
                              "补报 in the next report"), id=record_id)
    step = "submit" if record is None else "resubmit"
    seen = stats_reports.seen_as_of(period, as_of)
    body: dict[str, Any] = {
        "as_of": seen, "figures": figures(node, period, info.area, seen, report),
        "frontier": frontier(node.db), "policy_version": policy.policy_version(node.db),
        "amendments": [{"record": r["id"], "differences": [d.to_wire() for d in diffs]}
                       for r, diffs in _own_amendments(node, report, period) if diffs],
        "by": node.operator}
    if step == "submit":
        body.update(report=report, period=period.code)
    _check_step(node, record, step, body, record_id)
    event = node.append(Draft(f"{ap.ENTITY}.{step}", ap.ENTITY, record_id, info.area, body))
    return {"record": record_id, "step": step, "event": event.id, "as_of": seen,
            "figures": body["figures"], "amendments": body["amendments"],
            "policy_version": body["policy_version"]}


def _own_amendments(node, report: str, period: periods.Period):
    for (record_id,) in node.db.execute(
            f"select id from {ap.TABLE} where area = ? and report = ? and status = 'approved' "
            "order by period", [node.info.area, report]).fetchall():
        record = ap.load(node.db, record_id)
        if periods.parse(record["period"]).end < period.start:
            yield record, amendments(node, record)


def _decidable(node, record_id: str, step: str, values: dict[str, Any]) -> dict[str, Any]:
    record = get(node, record_id)
    if record["status"] == "approved":
        raise InvalidInput(N_("report {id} is already approved and locked"), id=record_id)
    if record["status"] == "returned":
        raise InvalidInput(N_("report {id} was sent back and awaits resubmission"),
                           id=record_id)
    _check_step(node, record, step, values, record_id)
    return record


def approve(node, record_id: str) -> dict[str, Any]:
    """审核: approve a submission whose figures this office recomputed alike; the
    figures are locked. A mismatch or missing events are refused with what was found."""
    record = _decidable(node, record_id, "approve", {})
    check = verify_submission(node, record_id)
    if check.result == UNAVAILABLE:
        raise InvalidInput(N_("report {id} cannot be checked here: this node has no plugin "
                              "computing report {report}; it holds the record and forwards "
                              "it"), id=record_id, report=record["report"])
    if check.result == MISSING:
        raise InvalidInput(N_("report {id} cannot be checked: this office lacks {count} events "
                              "it was computed from; sync, then approve (`xinfang report "
                              "status` names them)"), id=record_id,
                           count=sum(g.count for g in check.missing))
    if check.result == MISMATCH:
        raise InvalidInput(N_("report {id} does not match the recomputation in {count} figures; "
                              "it is not approved: send it back with `xinfang report return "
                              "{id} --reason …` (`xinfang report status` shows them)"),
                           id=record_id, count=len(check.differences))
    event = node.append(Draft(f"{ap.ENTITY}.approve", ap.ENTITY, record_id, record["area"],
                              {"submission": record["submission"], "check": CONSISTENT,
                               "by": node.operator}))
    return {"record": record_id, "status": "approved", "event": event.id,
            "check": CONSISTENT}


def send_back(node, record_id: str, reason: str | None) -> dict[str, Any]:
    """退回: send a submission back with a reason; a mismatch found goes with it."""
    if not reason or not reason.strip():
        raise InvalidInput(N_("say why the report is sent back (--reason)"))
    record = _decidable(node, record_id, "return", {"reason": reason.strip()})
    check = verify_submission(node, record_id)
    body: dict[str, Any] = {"submission": record["submission"], "reason": reason.strip(),
                            "by": node.operator}
    if check.differences:
        body["evidence"] = [d.to_wire() for d in check.differences]
    event = node.append(Draft(f"{ap.ENTITY}.return", ap.ENTITY, record_id, record["area"],
                              body))
    return {"record": record_id, "status": "returned", "event": event.id,
            "reason": body["reason"], "evidence": body.get("evidence", [])}


def status(node, period: "str | periods.Period | None" = None,
           check: bool = True) -> list[dict[str, Any]]:
    """Every report record this node holds (of ``period``), with its state; above the
    submitting office, the check of a submission awaiting review; for an approved one,
    its 补报. With ``period``, this office's own unsubmitted report shows as 草稿."""
    code = None
    if period is not None:
        code = (periods.parse(period) if isinstance(period, str) else period).code
    ids = [r[0] for r in node.db.execute(
        f"select id from {ap.TABLE} where ? is null or period = ? order by period, area, id",
        [code, code])]
    found = []
    for record_id in ids:
        record = ap.load(node.db, record_id)
        line = {key: record[key] for key in ("id", "area", "report", "period", "status",
                                             "round", "as_of", "reason", "figures")}
        line.update(check=None, differences=[], missing=[], newer=[], amendments=[],
                    evidence=[Difference(*d) for d in record["evidence"] or []])
        if check and record["status"] == "submitted" and record["area"] != node.info.area:
            found_check = verify_submission(node, record_id)
            line.update(check=found_check.result, differences=list(found_check.differences),
                        missing=list(found_check.missing), newer=list(found_check.newer))
        if record["status"] == "approved":
            line["check"] = CONSISTENT  # approved only when it was
            line["amendments"] = amendments(node, record)
        found.append(line)
    info = node.info
    if code is not None and not info.root:
        own = ap.record_id(info.area, code, MONTHLY)
        if own not in ids:
            found.append({"id": own, "area": info.area, "report": MONTHLY, "period": code,
                          "status": "draft", "round": 0, "as_of": None, "reason": None,
                          "figures": None, "check": None, "differences": [], "missing": [],
                          "newer": [], "amendments": [], "evidence": []})
    return found


def describe_gap(gap: FeedGap) -> Message:
    return Message(N_("{name} (feed {author}…, epoch {epoch}): seq {first}–{last}, {count} "
                      "events"), name=gap.name, author=gap.author[:16], epoch=gap.epoch,
                   first=gap.first, last=gap.last, count=gap.count)
