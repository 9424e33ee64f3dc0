"""The indicators of an office's 月报表, as data: one ``Indicator`` per figure.

Each indicator says, for one case, on which date it counts (``date``: the
date that decides the period) and what it adds there (``compute``: a count,
or a numerator and a denominator). A period's figure is the sum over the
cases whose date lies in it, so every figure is computed by the same
grouped pass over the cases, read once from the views (``load_cases``), and
a breakdown row is the same sum over a subset. Adding an indicator (越级访,
来源, 回访 when the case model has them) is one more entry in ``INDICATORS``.

The definitions are msgids shown by ``xinfang report describe`` and written
out in docs/reports.md; the choices they make (which date decides, what
counts as timely) are explained there.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

import attrs

from xinfang.core.i18n import N_
from xinfang.core.reports import Ratio

#: 涉法涉诉: "不转（交）办、统计、通报和考核"; routed to the legal channel, not counted
LAW_LITIGATION = "law_litigation"
EXCLUDED = frozenset({LAW_LITIGATION})
DECISIONS = ("accept", "reject", "refuse")
#: the steps whose dates the indicators read (``CaseRecord.facts``); an indicator that
#: needs another step's date adds it here
FACT_DATES = (*DECISIONS, "answer", "rate", "withdraw", "close", "finalize")


@attrs.frozen
class Deadline:
    kind: str
    start: str
    due: str
    met_on: str | None
    obligation: bool

    @property
    def ended(self) -> str:
        """When the obligation ended: met, or fell due unmet (whichever came first)."""
        return min(self.met_on, self.due) if self.met_on else self.due

    @property
    def on_time(self) -> bool:
        return self.met_on is not None and self.met_on <= self.due


@attrs.frozen
class CaseRecord:
    """What the indicators read of one case: its ``cases`` row, the dates of the steps in
    ``FACT_DATES`` (as ``facts[step]["date"]``) and its deadlines from ``case_deadlines``."""

    id: str
    area: str
    status: str
    channel: str
    headcount: int
    category: str
    kind: str
    received: str
    collective: bool
    repeat_of: str | None
    first_petition: bool
    unit: str | None
    leader: str | None
    rating: str | None
    facts: dict[str, dict[str, Any]]
    deadlines: dict[str, Deadline]
    #: 走访层级 and 越级 (None: not recorded), 来源, 主送 (the body forwarded to, if any)
    went_to: str | None = None
    skipped_level: bool = False
    source: str | None = None
    lead: str | None = None
    #: the date of the latest 回访 that found petitioning ceased (是否息访: 是), if any
    ceased_on: str | None = None
    #: the date the 包案领导 took the case (None: no leader owns it)
    leader_since: str | None = None

    def step_date(self, step: str) -> str | None:
        return (self.facts.get(step) or {}).get("date")

    @property
    def decided(self) -> str | None:
        """The date of the decision on acceptance (受理 / 不予受理 / 不再受理)."""
        dates = [d for d in (self.step_date(s) for s in DECISIONS) if d]
        return min(dates) if dates else None

    @property
    def answered(self) -> str | None:
        """The date of the 答复 (书面答复意见书) that ends the handling."""
        return self.step_date("answer")


def _dated_since() -> str:
    """SQL true of a ``cases`` row with a date on or after ``:since`` (or no ``:since``):
    received, the last step (``updated``: the case lifecycle refuses a step dated before
    the one before it, so no step of ``FACT_DATES`` is later), the 回访 or the 包案 day,
    a deadline's due or met day. Every indicator puts a case in a period by one of those
    dates."""
    dates = ("received", "updated", "follow_up_date", "leader_since")
    return ("(:since is null or " + " or ".join(f"{d} >= :since" for d in dates)
            + " or exists (select 1 from case_deadlines x where x.case_id = cases.id and "
              "(x.due >= :since or x.met_on >= :since)))")


def load_cases(node, area: str, since: str | None = None) -> list[CaseRecord]:
    """Every case of ``area`` and below with its deadlines: one read of ``cases`` and one
    of ``case_deadlines``, whatever the periods and breakdowns asked for.

    ``since`` (ISO) leaves out the cases with no date on or after it (``_dated_since``):
    a report whose periods all start on or after ``since`` counts the same from the rest,
    and a county's years of closed cases need not be read for this month's report."""
    # only the dates of the steps the indicators read: SQLite picks them out of the facts
    # faster than decoding every case's facts (answer texts and all) in Python
    dates = ", ".join(f"json_extract(facts, '$.{step}.date')" for step in FACT_DATES)
    rows = node.db.execute(
        "select id, area, status, channel, headcount, category, kind, received, collective, "
        f"repeat_of, first_petition, unit, leader, rating, {dates}, went_to, skipped_level, "
        "source, forwarded_to, case when follow_up_ceased = 1 then follow_up_date end, "
        "case when leader is not null then coalesce(leader_since, received) end "
        f"from cases where area like :area || '%' and {_dated_since()} order by received, id",
        {"area": area, "since": since}).fetchall()
    deadlines: dict[str, dict[str, Deadline]] = {}
    for case_id, kind, start, due, met_on, obligation in node.db.execute(
            "select case_id, kind, start, due, met_on, obligation from case_deadlines "
            "where case_id in (select value from json_each(?))",
            [json.dumps([r[0] for r in rows])]).fetchall():
        deadlines.setdefault(case_id, {})[kind] = Deadline(kind, start, due, met_on,
                                                           bool(obligation))
    n = 14 + len(FACT_DATES)
    return [CaseRecord(r[0], r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7], bool(r[8]), r[9],
                       bool(r[10]), r[11], r[12], r[13],
                       {step: {"date": date} for step, date in zip(FACT_DATES, r[14:n]) if date},
                       deadlines.get(r[0], {}), r[n], bool(r[n + 1]), r[n + 2], r[n + 3],
                       r[n + 4], r[n + 5]) for r in rows]


# -- what each indicator counts ---------------------------------------------------------

def _received(case: CaseRecord) -> str:
    return case.received


def _is_visit(case: CaseRecord) -> bool:
    return case.channel == "visit"


def _withdrawn_before(case: CaseRecord, deadline: Deadline) -> bool:
    """A case withdrawn, unmet, before its deadline owes nothing on it."""
    withdrawn = case.step_date("withdraw")
    return deadline.met_on is None and withdrawn is not None and withdrawn <= deadline.due


def _deadline_date(kind: str) -> Callable[[CaseRecord], str | None]:
    def date(case: CaseRecord) -> str | None:
        deadline = case.deadlines.get(kind)
        if deadline is None or _withdrawn_before(case, deadline):
            return None
        return deadline.ended
    return date


def _on_time(kind: str) -> Callable[[CaseRecord, str], tuple[int, int]]:
    def compute(case: CaseRecord, as_of: str) -> tuple[int, int]:
        deadline = case.deadlines[kind]
        return int(deadline.on_time and deadline.met_on <= as_of), 1
    return compute


def _satisfied(case: CaseRecord, as_of: str) -> tuple[int, int]:
    rated = _rated_by(case, as_of)
    if not rated:
        return 0, 0
    return int(case.rating in ("satisfied", "basically")), 1


def _rated_by(case: CaseRecord, as_of: str) -> bool:
    date = case.step_date("rate")
    return case.rating is not None and date is not None and date <= as_of


def _rated(case: CaseRecord, as_of: str) -> tuple[int, int]:
    return int(_rated_by(case, as_of)), 1


def _repeat(case: CaseRecord, as_of: str) -> tuple[int, int]:
    return int(case.repeat_of is not None), 1


def _first_petition_answer_date(case: CaseRecord) -> str | None:
    return _deadline_date("answer")(case) if case.first_petition else None


def _first_petition_closed(case: CaseRecord, as_of: str) -> tuple[int, int]:
    met_on = case.deadlines["answer"].met_on
    return int(met_on is not None and met_on <= as_of), 1


@attrs.frozen
class Indicator:
    """One figure of the report.

    ``date(case)`` is the date that puts the case in a period (None: the case never
    counts for this figure); ``compute(case, as_of)`` what it adds there: an ``int``
    for a count, ``(numerator, denominator)`` for a rate. ``excludes`` are the
    categories left out of it.
    """

    name: str
    label: str
    definition: str
    compute: Callable[[CaseRecord, str], Any]
    date: Callable[[CaseRecord], str | None] = _received
    kind: str = "count"  # count | ratio
    excludes: frozenset[str] = EXCLUDED

    def empty(self) -> Any:
        return Ratio(0, 0) if self.kind == "ratio" else 0

    def value(self, cases: Iterable[CaseRecord], start: str, end: str, as_of: str) -> Any:
        """The figure over ``cases`` for the days ``start``..``end`` (ISO), seen on ``as_of``:
        the simple path, one case at a time; ``tally`` does many periods and groups at once."""
        numerator = denominator = 0
        for case in cases:
            date = self.date(case)
            if (date is None or not start <= date <= end or date > as_of
                    or case.category in self.excludes):
                continue
            added = self.compute(case, as_of)
            if self.kind == "ratio":
                numerator += added[0]
                denominator += added[1]
            else:
                numerator += added
        return Ratio(numerator, denominator) if self.kind == "ratio" else numerator


INDICATORS: list[Indicator] = [
    Indicator("cases", N_("Cases (件)"), N_(
        "Every case registered in the period, whatever its channel; the date that decides "
        "the period is the registration date (received)."), lambda case, as_of: 1),
    Indicator("batches", N_("Visits (批次)"), N_(
        "Visits (来访) registered in the period: one visit is one batch, a group visit "
        "included; by registration date."),
        lambda case, as_of: int(_is_visit(case))),
    Indicator("person_visits", N_("Person-visits (人次)"), N_(
        "The headcounts of the visits registered in the period (a group of 30 is 30 "
        "person-visits); letters, online and phone petitions are counted in cases only; by "
        "registration date."),
        lambda case, as_of: case.headcount if _is_visit(case) else 0),
    Indicator("collective", N_("Collective visits (集体访)"), N_(
        "Cases registered in the period that the case plugin marked 集体访 (a visit of at "
        "least the policy's threshold of people, 5 by default); by registration date."),
        lambda case, as_of: int(case.collective)),
    Indicator("collective_people", N_("Collective visits, person-visits"), N_(
        "The headcounts of the collective visits registered in the period; by registration "
        "date."), lambda case, as_of: case.headcount if case.collective else 0),
    Indicator("repeat", N_("Repeat petitions (重复访)"), N_(
        "Cases registered in the period that repeat an earlier case (a petitioner in common, "
        "the same category, within the policy's window); by registration date."),
        lambda case, as_of: int(case.repeat_of is not None)),
    Indicator("timely_acceptance", N_("Timely acceptance rate"), N_(
        "Cases whose decision on acceptance (受理, 不予受理 or 不再受理) was made by the "
        "deadline of the policy in force (15 days after receipt, or after it was forwarded to "
        "the body that decides) / cases whose decision fell due or was made in the period. "
        "The deciding date is the earlier of the decision date and the deadline; a case "
        "withdrawn before its deadline is left out."),
        _on_time("decide"), _deadline_date("decide"), kind="ratio"),
    Indicator("on_time_closure", N_("On-time closure rate"), N_(
        "Accepted cases answered (书面答复) by their handling deadline, an extension (延期) "
        "included / accepted cases whose handling deadline fell due or was met in the "
        "period. The deciding date is the earlier of the answer date and the deadline."),
        _on_time("answer"), _deadline_date("answer"), kind="ratio"),
    Indicator("satisfaction", N_("Satisfaction rate"), N_(
        "满意 and 基本满意 ratings / ratings given, of the cases answered in the period "
        "(ratings given up to the day the report is seen as of); by answer date."),
        _satisfied, lambda case: case.answered, kind="ratio"),
    Indicator("rated", N_("Rating rate (参评率)"), N_(
        "Cases answered in the period that have a rating / cases answered in the period; by "
        "answer date."), _rated, lambda case: case.answered, kind="ratio"),
    Indicator("repeat_rate", N_("Repeat petition rate"), N_(
        "Repeat cases (重复访) / all cases registered in the period; by registration date."),
        _repeat, kind="ratio"),
    Indicator("first_petition_closure", N_("First-petition closure rate"), N_(
        "First petitions (初信初访: cases repeating no earlier one) answered by the day the "
        "report is seen as of / accepted first petitions whose handling deadline fell due or "
        "was met in the period; the deciding date is as for the on-time closure rate."),
        _first_petition_closed, _first_petition_answer_date, kind="ratio"),
]



# -- 越级访, 来源, 息访, 主送 (the case model's additions) --------------------------------

def _went_to(level: str, people: bool = False) -> Callable[[CaseRecord, str], int]:
    def compute(case: CaseRecord, as_of: str) -> int:
        if case.went_to != level:
            return 0
        return case.headcount if people else 1
    return compute


def _source(code: str) -> Callable[[CaseRecord, str], int]:
    return lambda case, as_of: int(case.source == code)


def _handled(case: CaseRecord) -> str | None:
    """A case is handled (办结) on its 办结 date, or its 终结 for one that went to review."""
    return case.step_date("close") or case.step_date("finalize")


def _ceased(case: CaseRecord, as_of: str) -> tuple[int, int]:
    return int(case.ceased_on is not None and case.ceased_on <= as_of), 1


def _leader_took(case: CaseRecord) -> str | None:
    """A 包案 case counts on the day its leader took it."""
    return case.leader_since


def _lead_answer_date(case: CaseRecord) -> str | None:
    return _deadline_date("answer")(case) if case.lead else None


INDICATORS.extend([
    Indicator("skipped_level", N_("Level-skipping petitions (越级访)"), N_(
        "Cases registered in the period whose petitioner went (or wrote) two or more levels "
        "above the level of the case's area (问题属地), skipping both its own level and the "
        "one above; cases without a recorded level are not counted; by registration date."),
        lambda case, as_of: int(case.skipped_level)),
    Indicator("to_province", N_("To the province (赴省, 批次)"), N_(
        "Cases registered in the period whose petitioner went to the province (走访层级 省), "
        "one batch each; by registration date."), _went_to("province")),
    Indicator("to_province_people", N_("To the province, person-visits (赴省, 人次)"), N_(
        "The headcounts of the cases registered in the period whose petitioner went to the "
        "province; by registration date."), _went_to("province", people=True)),
    Indicator("to_capital", N_("To Beijing (进京, 批次)"), N_(
        "Cases registered in the period whose petitioner went to Beijing (走访层级 京), one "
        "batch each; by registration date."), _went_to("capital")),
    Indicator("to_capital_people", N_("To Beijing, person-visits (进京, 人次)"), N_(
        "The headcounts of the cases registered in the period whose petitioner went to "
        "Beijing; by registration date."), _went_to("capital", people=True)),
    Indicator("source_self", N_("Source: self-submitted (群众自行)"), N_(
        "Cases registered in the period that the petitioners brought themselves (来源 群众自行); "
        "by registration date."), _source("self")),
    Indicator("source_higher", N_("Source: handed down (上级交办)"), N_(
        "Cases registered in the period that a higher 信访 body handed down (来源 上级交办); by "
        "registration date."), _source("higher")),
    Indicator("source_national", N_("Source: national online system (国家信访信息系统转办)"), N_(
        "Cases registered in the period that the national 信访 information system transferred "
        "(来源 国家信访信息系统转办); by registration date."), _source("national")),
    Indicator("source_supervision", N_("Source: supervision order (督办)"), N_(
        "Cases registered in the period that a supervision order named (来源 督办); by "
        "registration date."), _source("supervision")),
    Indicator("ceased_rate", N_("Petitioning-ceased rate (息访率)"), N_(
        "Cases handled (办结, or 终结 after review) in the period whose latest follow-up visit "
        "(回访), made by the day the report is seen as of, found that petitioning ceased (是否"
        "息访: 是) / cases handled in the period; by the date of 办结 (or 终结). A case not yet "
        "followed up counts in the denominator only."), _ceased, _handled, kind="ratio"),
    Indicator("lead_on_time_closure", N_("On-time closure by the lead unit (主送按期办结率)"), N_(
        "Cases forwarded (转送 / 交办) to a lead unit or area (主送) and answered by their "
        "handling deadline, an extension included / such cases whose handling deadline fell "
        "due or was met in the period; the deciding date is the earlier of the answer date "
        "and the deadline, as for the on-time closure rate. A case sent back (退回) is no "
        "longer forwarded and is not counted."),
        _on_time("answer"), _lead_answer_date, kind="ratio"),
    Indicator("baoan", N_("Cases owned by leaders (包案件数)"), N_(
        "Cases a leader took in the period (领导包案, or a 包案领导 named on 受理); by the date "
        "the leader took the case."), lambda case, as_of: 1, _leader_took),
    Indicator("baoan_ceased_rate", N_("Petitioning-ceased rate of 包案 cases (包案息访率)"), N_(
        "Cases a leader took in the period whose latest follow-up visit (回访), made by the "
        "day the report is seen as of, found that petitioning ceased / cases a leader took in "
        "the period; by the date the leader took the case."),
        _ceased, _leader_took, kind="ratio"),
])

#: the figures the trend sheet draws, month by month
TREND = ("cases", "batches", "person_visits", "timely_acceptance", "on_time_closure",
         "satisfaction")


def by_name(names: Iterable[str] | None = None) -> list[Indicator]:
    if names is None:
        return list(INDICATORS)
    known = {i.name: i for i in INDICATORS}
    return [known[n] for n in names]
