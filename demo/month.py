"""The demo's month: the days its cases are received and handled on, and what the
county reports for it (the 月报表, one township's report approved, a 零报告 day).

The demo month is the calendar month before the day the demo runs: a whole month
in the past whatever that day is (the 1st included), so every step is dated
inside it and none after today, as an office files a month's 月报表 once the
month has ended. Cases are received in the month's first 15 days (``received``);
an assigned case is 交办 the day after, 受理 two days later, 答复 a week after
that, then 办结, 评价 and 回访 a day apart (``HANDLING``): at most 28 days after
the first, so inside even a February. The 月报表's rates then all have cases to
count (``RATES``), which the demo checks.
"""

from __future__ import annotations

import datetime as dt

from xinfang.core import reports
from xinfang.core.i18n import _
from xinfang.plugins.cases import api
from xinfang.plugins.stats import approval, submission
from xinfang.plugins.zero_report import api as zero

from .synthetic import CEASED, LEADER, NOT_CEASED, SENSITIVE_PERIOD, UNIT

#: the rates of the 月报表 the demo month must give something to count (not 0/0)
RATES = ("timely_acceptance", "on_time_closure", "satisfaction", "rated", "ceased_rate",
         "first_petition_closure")
#: days after receipt of each step of an assigned case
FORWARD, ACCEPT, ANSWER, CLOSE, RATE, FOLLOW_UP = 1, 3, 10, 11, 12, 13
#: per assigned case but the contested one: whether a 包案领导 is named on 受理, and
#: after 答复 its rating and whether the 回访 found petitioning ceased (None: not
#: rated, or not followed up)
HANDLING = ((True, "satisfied", True), (False, "basically", True),
            (True, "dissatisfied", False), (False, None, None))


def first_day(today: dt.date) -> dt.date:
    """The first day of the demo month: the month before ``today``'s."""
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def day(today: dt.date, offset: int) -> dt.date:
    """The demo month's day ``offset`` days after its first (0: the 1st)."""
    return first_day(today) + dt.timedelta(days=offset)


def after(received: str, days: int) -> str:
    return (dt.date.fromisoformat(received) + dt.timedelta(days=days)).isoformat()


def answer(village, case_id: str, received: str, today: dt.date, leader: bool = False) -> None:
    """受理 (naming a 包案领导 if ``leader``) and 答复 of an assigned case, dated
    ``ACCEPT`` and ``ANSWER`` days after receipt."""
    given = {"unit": UNIT, "date": after(received, ACCEPT), **({"leader": LEADER} if leader
                                                              else {})}
    api.take_step(village, case_id, "accept", given, today=today)
    api.take_step(village, case_id, "answer", {"outcome": "explain",
                                               "date": after(received, ANSWER)}, today=today)


def finish(village, case_id: str, received: str, today: dt.date, rating: str | None,
           ceased: bool | None) -> None:
    """办结 of an answered case, then its 评价 and 回访 when ``rating`` / ``ceased`` say."""
    api.take_step(village, case_id, "close", {"ending": "answered",
                                              "date": after(received, CLOSE)}, today=today)
    if rating is not None:
        api.take_step(village, case_id, "rate", {"rating": rating,
                                                 "date": after(received, RATE)}, today=today)
    if ceased is not None:
        api.take_step(village, case_id, "follow_up", {
            "date": after(received, FOLLOW_UP), "result": CEASED if ceased else NOT_CEASED,
            "ceased": ceased}, today=today)


def empty_rates(result: reports.ReportResult) -> list[str]:
    """The labels of the ``RATES`` the 月报表's total row has nothing to count for."""
    labels = {c.name: _(c.label) for c in result.columns}
    return [labels[name] for name in RATES if result.total[name].denominator == 0]


def statistics(world) -> bool:
    """The county's 月报表 for the demo month (printed, and as xlsx in the demo
    directory), one township's report submitted, checked and approved, and a
    零报告 period of two days in which one village stays silent."""
    from .county import COUNTY, heading, say

    county = world.nodes[COUNTY[0]]
    month = first_day(world.today).strftime("%Y-%m")
    heading(_("The county's monthly report ({period})").format(period=month))
    result = reports.run_report(county, "stats.monthly", {"period": month})
    say(reports.render(county.registry, result, "text").decode("utf-8").rstrip())
    sheet = world.base / f"{month}-monthly.xlsx"
    sheet.write_bytes(reports.render(county.registry, result, "xlsx"))
    say(_("Written as xlsx: {path}").format(path=sheet))
    empty = empty_rates(result)
    if empty:
        say(_("The monthly report has nothing to count for: {rates} (0/0)").format(
            rates=_(", ").join(empty)), fg="red", bold=True)
    town_area, town = world.townships()[0]
    record = submission.submit(town, "stats.monthly", month, as_of=world.today)["record"]
    world.carry(town, county)
    check = submission.verify_submission(county, record)
    submission.approve(county, record)
    world.carry(county, town)
    states = {state.name: state.label for state in approval.STATES}
    seen = [states[row["status"]] for row in submission.status(town, month)
            if row["id"] == record]
    say(_("{name} submits its report {record}; the county recomputes it from the "
          "events it holds: {result}; the township now sees it as: {state}").format(
        name=town.info.name, record=record, result=_(submission.RESULT_LABELS[check.result]),
        state=seen[0] if seen else "—"))
    heading(_("Zero reports in a sensitive period"))
    start = world.today  # stations are expected from the day they were certified: today
    period = zero.declare(county, SENSITIVE_PERIOD, start, start + dt.timedelta(days=1))
    for area, node in world.townships():
        world.carry(county, node)
        for _area, village in world.villages_of(area):
            world.carry(node, village)
    stations = [n for a, n in world.nodes.items() if len(a) in (9, 12)]
    silent = stations[-1]
    for node in stations[:-1]:
        zero.file_report(node, start, today=world.today)
    for area, node in world.townships():
        for _area, village in world.villages_of(area):
            world.carry(village, node)
        world.carry(node, county)
    found = zero.missing(county, start, period.id, today=world.today)
    say(_("{day}: {filed} of {expected} stations reported; silent: {names}").format(
        day=found["day"], filed=found["filed"], expected=found["expected"],
        names=_(", ").join(m["name"] for m in found["missing"]) or "—"))
    return [m["name"] for m in found["missing"]] == [silent.info.name] and not empty
