"""通报: a draft circular on what is overdue and under supervision, as of a day.

Drafted from the supervision list with everything below the office
(``escalation.items(…, everything=True)``): a paragraph of totals, the
units with the most overdue, then a row per area one level down and the
two lists as tables. It is a draft: the office edits the wording, praises
or criticises (通报表扬 / 通报批评) and signs it; the figures are the
list's, so the draft and the list never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from xinfang.core import areas, clock
from xinfang.core.entities import parse_date
from xinfang.core.i18n import N_, _
from xinfang.core.reports import Column, Definition, Output, Param, Report, Table

from . import api, leaders

SUMMARY = (Column("area", N_("Area")), Column("name", N_("Unit")),
           Column("overdue", N_("Overdue obligations"), "count"),
           Column("risen", N_("Of which risen a level or more"), "count"),
           Column("orders", N_("Open supervision orders"), "count"),
           Column("orders_overdue", N_("Orders not answered by their due date"), "count"),
           Column("baoan", N_("Cases owned by leaders (包案)"), "count"),
           Column("baoan_ceased", N_("Of which petitioning ceased"), "count"))
OVERDUE = (Column("ref", N_("Case")), Column("label", N_("Deadline")),
           Column("area", N_("Area")), Column("due", N_("Due"), "date"),
           Column("days_overdue", N_("Days overdue"), "count"),
           Column("reached", N_("Risen to")), Column("leader", N_("Leader in charge")))
ORDERS = (Column("ref", N_("Order")), Column("cases", N_("Cases supervised")),
          Column("area", N_("Addressed to")), Column("due", N_("Due"), "date"),
          Column("days_overdue", N_("Days overdue"), "count"),
          Column("status", N_("State")), Column("required", N_("What is required")))


def _day(text: str) -> dt.date:
    return parse_date(text, N_("as-of date"))


def _child(area: str, top: str) -> str:
    """The area one level below ``top`` that holds ``area`` (``top`` itself for its own)."""
    deeper = [n for n in areas.VALID_LENGTHS if n > len(top)]
    return area[:deeper[0]] if deeper and len(area) >= deeper[0] else top


def notice(node, as_of: dt.date | None = None, area: str | None = None) -> Output:
    as_of = as_of or clock.today()
    top = areas.check_code(area) if area else node.info.area
    found = api.supervision_list(node, as_of, top, everything=True)
    names = api.office_names(node)
    name = names.get(top, top)
    summary: dict[str, dict[str, Any]] = {}

    def row(code: str) -> dict[str, Any]:
        return summary.setdefault(code, {"area": code, "name": names.get(code, ""),
                                         **{c.name: 0 for c in SUMMARY[2:]}})

    overdue = [i for i in found if i.days_overdue]
    for item in found:
        line = row(_child(item.area, top))
        if item.kind == "order":
            line["orders"] += 1
            line["orders_overdue"] += int(item.days_overdue > 0)
        elif item.days_overdue:
            line["overdue"] += 1
            line["risen"] += int(item.risen > 0)
    owned = leaders.assignments(node, top)
    for owned_case in owned:
        line = row(_child(owned_case.area, top))
        line["baoan"] += 1
        line["baoan_ceased"] += int(owned_case.ceased)
    rows = sorted(summary.values(), key=lambda r: r["area"])
    total = {"area": _("Total"), "name": "",
             **{c.name: sum(r[c.name] for r in rows) for c in SUMMARY[2:]}}
    return Output(
        rows, total, title=_("{unit}: circular on overdue and supervised petition matters "
                             "(通报, draft)").format(unit=name),
        header=((_("Issuing unit"), name), (_("As of"), as_of.isoformat())),
        preamble=_paragraphs(total, rows, as_of),
        tables=(Table("overdue", N_("Overdue obligations"), OVERDUE, [
                    {**i.to_dict(), "reached": names.get(i.reached, i.reached)}
                    for i in overdue if i.kind == "case"]),
                Table("orders", N_("Supervision orders"), ORDERS, [
                    {**i.to_dict(), "cases": ", ".join(i.cases)}
                    for i in found if i.kind == "order"])))


def _paragraphs(total: dict[str, Any], rows: list[dict[str, Any]], as_of: dt.date) -> list[str]:
    text = [_("As of {day}, {overdue} obligations on petition matters are overdue ({risen} of "
              "them have risen to a higher level); {orders} supervision orders are open, "
              "{late} of them not answered by their due date; leaders own {baoan} cases, and "
              "petitioning has ceased in {ceased} of them.").format(
        day=as_of.isoformat(), overdue=total["overdue"], risen=total["risen"],
        orders=total["orders"], late=total["orders_overdue"], baoan=total["baoan"],
        ceased=total["baoan_ceased"])]
    worst = sorted((r for r in rows if r["overdue"] + r["orders_overdue"]),
                   key=lambda r: (-(r["overdue"] + r["orders_overdue"]), r["area"]))[:3]
    if worst:
        text.append(_("Most overdue: {units}.").format(units=_(", ").join(
            _("{unit} ({count})").format(unit=r["name"] or r["area"],
                                         count=r["overdue"] + r["orders_overdue"])
            for r in worst)))
    text.append(_("Each unit is to check the items listed below one by one, settle them "
                  "within the time set, and report the results and the reasons for the "
                  "delays."))
    return text


NOTICE = Report(
    "supervision.notice", N_("Circular on overdue and supervised matters (通报)"), SUMMARY,
    notice, (Param("as_of", N_("As of (YYYY-MM-DD)"), convert=_day),
             Param("area", N_("Area [default: this node's area]"))),
    description=N_("A draft 通报: totals of the overdue obligations, open supervision orders "
                   "and 包案 cases below the office on a day, the units with the most overdue, "
                   "a row per area one level down, and the lists themselves."),
    definitions=[
        Definition("overdue", N_("Overdue obligations"), N_(
            "Duties of an office on an open case (a deadline that is the office's, not the "
            "petitioner's) unmet on the day after their due date, one per case and deadline.")),
        Definition("risen", N_("Of which risen a level or more"), N_(
            "Overdue obligations unmet for at least the policy's days "
            "(supervision.escalate_days, 5 by default) past due: they are on the parent "
            "office's list too, and one level higher for each further such span.")),
        Definition("orders_overdue", N_("Orders not answered by their due date"), N_(
            "Open supervision orders with no answer (回复) by their due date, or a new due date "
            "set when the issuer sent them back (重办).")),
        Definition("baoan", N_("Cases owned by leaders (包案)"), N_(
            "Cases below the office that a leader owns (包案, or a leader named on 受理), "
            "whatever their state; petitioning ceased: the latest 回访 found it so."))])
