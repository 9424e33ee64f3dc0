"""The 零报告 API: declare a period, file a day's report, watch who is silent.

Everything a command prints comes from here, so a plugin or a script gets
the same answers. "Today" is always a parameter: the views never hold it.

Who is expected (应报): every certified office (the ``certs`` this node
holds) whose area lies in the period's covered areas, below the declaring
office, from its certification day on: the day of the ``trust.certify``
event its parent logged (a date of Beijing time from the event's stamp), or
the period's first day for an office the root certified (the root logs
none). A rotated key is the same station (stations are areas). Rates follow
DHIS2: reporting rate = reports received / reports expected, on-time rate =
reports received by the due day (plus the ``zero_report.grace_days`` policy)
/ reports expected. A day counts as expected once it has begun by ``as_of``,
and a report as received only if it was filed by ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from xinfang.core import areas, clock, store
from xinfang.core.entities import parse_date
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.core.event import Event
from xinfang.core.i18n import N_
from xinfang.core.node import Draft
from xinfang.core.policy import DELEGATED, ENTITY as POLICY, entity_id as policy_id

from . import periods
from .plugin import ENTITY, TYPE, entity_id


# -- declaring -------------------------------------------------------------------


def declare(node, name: str, start: Any, end: Any, every: Any = None,
            covers: list[str] | None = None, period_id: str | None = None) -> periods.Period:
    """Declare a sensitive period over ``covers`` (default this node's whole area)."""
    name = (name or "").strip()
    if not name or len(name) > periods.MAX_NAME or any(c in name for c in "\r\n\t"):
        raise InvalidInput(N_("a period needs a one-line name of at most {max} characters"),
                           max=periods.MAX_NAME)
    first = parse_date(start, N_("the first day (--from)"))
    last = parse_date(end, N_("the last day (--to)"))
    if last < first:
        raise InvalidInput(N_("the period ends ({end}) before it starts ({start})"),
                           end=last.isoformat(), start=first.isoformat())
    if (last - first).days >= periods.MAX_DAYS:
        raise InvalidInput(N_("a period lasts at most {max} days"), max=periods.MAX_DAYS)
    own = node.info.area
    covered = sorted({areas.check_code(c.strip()) for c in (covers or [own])})
    for code in covered:
        if not node.in_jurisdiction(code):
            raise InvalidInput(N_("area {area} is not within this node's area {own}"),
                               area=code, own=own)
    if node.info.author != store.get_meta(node.db, "root_author") \
            and periods.KEY not in (node.context.policy(DELEGATED, own) or []):
        raise InvalidInput(N_("only the county (the root), or an office the root delegates "
                              "policy {key} to, declares a sensitive period"), key=periods.KEY)
    known = periods.periods_at(node.db.conn, own) | periods.all_periods(node.db.conn)
    if period_id is None:
        base = "ZR" + first.strftime("%Y%m%d")
        period_id = next(base + suffix for suffix in ["", *"BCDEFGHJKLMNPQRSTUVWXYZ"]
                         if base + suffix not in known)
    elif period_id in known:
        raise InvalidInput(N_("period {id} is declared already"), id=period_id)
    period = periods.Period(period_id, name, first, last, periods.frequency(every),
                            tuple(covered), own)
    reason = periods.problem(period_id, period.to_value(), own)
    if reason is not None:
        raise InvalidInput(reason)
    current = dict(next((v for a, v in periods.declared(node.db.conn, own) if a == own), {}))
    current[period_id] = period.to_value()
    node.append(Draft("policy.set", POLICY, policy_id(periods.KEY, own), own,
                      {"key": periods.KEY, "value": current, "by": node.operator}))
    return period


def list_periods(node) -> list[periods.Period]:
    found = periods.all_periods(node.db.conn)
    return sorted(found.values(), key=lambda p: (p.start, p.id))


def find_period(node, period_id: str | None, on: dt.date | None = None) -> periods.Period:
    """The period named, or the one running on ``on`` over this node's area."""
    found = periods.all_periods(node.db.conn)
    if period_id is not None:
        if period_id not in found:
            raise NotFound(N_("no sensitive period {id} is declared here; `xinfang "
                              "zero-report periods` lists them"), id=period_id)
        return found[period_id]
    running = [p for p in found.values() if on is None or p.start <= on <= p.end]
    if len(running) != 1:
        raise InvalidInput(N_("no sensitive period is running on {date}; give --period")
                           if not running else
                           N_("more than one sensitive period runs on {date}; give --period"),
                           date=on.isoformat() if on else "—")
    return running[0]


# -- filing ------------------------------------------------------------------------


def file_report(node, date: Any = None, note: str = "", cases: list[str] | None = None,
                period_id: str | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """File this station's report for ``date`` (default ``today``): 无情况 with no note
    and no cases. A second filing for a day corrects the first."""
    today = today or clock.today()
    on = parse_date(date, N_("the report date (--date)")) if date else today
    if on > today:
        raise InvalidInput(N_("the report date {date} is in the future (today is {today})"),
                           date=on.isoformat(), today=today.isoformat())
    own = node.info.area
    running = periods.periods_at(node.db.conn, own)
    if period_id is None:
        matching = [p for p in running.values() if p.day_of(on) is not None]
        if len(matching) != 1:
            raise InvalidInput(N_("no sensitive period declared over this station runs on "
                                  "{date}") if not matching else
                               N_("more than one sensitive period runs on {date}; give "
                                  "--period"), date=on.isoformat())
        period = matching[0]
    elif period_id not in running:
        raise NotFound(N_("no sensitive period {id} is declared over this station"),
                       id=period_id)
    else:
        period = running[period_id]
    day = period.day_of(on)
    if day is None:
        raise InvalidInput(N_("{date} is outside period {id} ({start} to {end})"),
                           date=on.isoformat(), id=period.id, start=period.start.isoformat(),
                           end=period.end.isoformat())
    if not period.covers_area(own):
        raise InvalidInput(N_("this station ({area}) is not one period {id} expects a report "
                              "from"), area=own, id=period.id)
    note = (note or "").strip()
    cases = sorted({c.strip() for c in (cases or []) if c.strip()})
    for case in cases:
        if node.db.execute("select 1 from entity_heads where entity = 'case' and entity_id = ?",
                           [case]).fetchone() is None:
            raise NotFound(N_("no case numbered {id} is held here"), id=case)
    body = {"period": period.id, "date": day.isoformat(), "filed": today.isoformat(),
            "status": "note" if note or cases else "none", "note": note, "cases": cases,
            "by": node.operator}
    filing_id = entity_id(own, period.id, day.isoformat())
    corrected = node.db.execute("select 1 from zero_filings where id = ?",
                                [filing_id]).fetchone() is not None
    node.append(Draft(TYPE, ENTITY, filing_id, own, body))
    return {"id": filing_id, **body, "corrected": corrected}


# -- watching --------------------------------------------------------------------


@attrs.frozen
class Station:
    area: str
    name: str
    #: the first report day it is expected for
    since: dt.date


def stations(node, period: periods.Period) -> list[Station]:
    """The offices expected to report in ``period`` (see the module's docstring).

    A parent's ``trust.certify`` travels up with the child's area, so the county
    knows a village that never sent a word; the ``certs`` it holds add the offices
    the root certified itself and give the names."""
    names = {}
    since: dict[str, dt.date] = {}
    for raw, sig in node.db.execute("select raw, sig from events where entity = 'trust' "
                                    "and type = 'trust.certify'"):
        event = Event.parse(raw, sig)
        if not period.covers_area(event.area):
            continue
        day = clock.day_of(event.hlc.wall_ms)
        since[event.area] = min(since.get(event.area, dt.date.max), max(period.start, day))
    for subject, area, name in node.db.execute("select subject, area, name from certs "
                                                "order by area, subject"):
        if period.covers_area(area):
            names.setdefault(area, name)
            since.setdefault(area, period.start)  # the root certified it: logged nowhere
    return [Station(area, names.get(area, area), since[area]) for area in sorted(since)]


def filings(node, period: periods.Period) -> dict[tuple[str, str], dict[str, Any]]:
    rows = node.db.execute("select area, day, first_filed, filed, status, note, cases, "
                           "corrections from zero_filings where period = ?", [period.id])
    return {(r[0], r[1]): {"first_filed": r[2], "filed": r[3], "status": r[4], "note": r[5],
                           "cases": json.loads(r[6]), "corrections": r[7]} for r in rows}


def _grace(node, area: str) -> int:
    return node.context.policy(periods.GRACE, area) or 0


def day_report(node, period: periods.Period, day: dt.date,
               as_of: dt.date | None = None) -> dict[str, Any]:
    """Who was expected on report ``day``, who filed (and what), who is silent."""
    as_of = as_of or clock.today()
    held = filings(node, period)
    rows = []
    for station in stations(node, period):
        if station.since > day:
            continue
        filing = held.get((station.area, day.isoformat()))
        if filing is not None and filing["first_filed"] > as_of.isoformat():
            filing = None
        due = period.due(day) + dt.timedelta(days=_grace(node, station.area))
        rows.append({"area": station.area, "name": station.name,
                     "filed": filing is not None,
                     "on_time": filing is not None and filing["first_filed"] <= due.isoformat(),
                     "due": due.isoformat(), **({"report": filing} if filing else {})})
    return {"period": period.id, "name": period.name, "day": day.isoformat(),
            "as_of": as_of.isoformat(), "expected": len(rows),
            "filed": sum(r["filed"] for r in rows),
            "missing": [{"area": r["area"], "name": r["name"]} for r in rows if not r["filed"]],
            "stations": rows}


def missing(node, date: Any = None, period_id: str | None = None,
            today: dt.date | None = None) -> dict[str, Any]:
    """The silent stations on the report day holding ``date`` (default ``today``)."""
    today = today or clock.today()
    on = parse_date(date, N_("the report date (--date)")) if date else today
    period = find_period(node, period_id, on)
    day = period.day_of(on)
    if day is None:
        raise InvalidInput(N_("{date} is outside period {id} ({start} to {end})"),
                           date=on.isoformat(), id=period.id, start=period.start.isoformat(),
                           end=period.end.isoformat())
    return day_report(node, period, day, as_of=max(today, on))


def status(node, period_id: str | None = None, as_of: dt.date | None = None) -> dict[str, Any]:
    """Reporting and on-time rates per station and overall, for days begun by ``as_of``."""
    as_of = as_of or clock.today()
    period = find_period(node, period_id) if period_id else _latest(node, as_of)
    days = [d for d in period.days() if d <= as_of]
    per: dict[str, dict[str, Any]] = {}
    by_day = []
    for day in days:
        report = day_report(node, period, day, as_of)
        by_day.append({"day": report["day"], "expected": report["expected"],
                       "filed": report["filed"],
                       "missing": [m["area"] for m in report["missing"]]})
        for row in report["stations"]:
            tally = per.setdefault(row["area"], {"area": row["area"], "name": row["name"],
                                                 "expected": 0, "filed": 0, "on_time": 0,
                                                 "late": 0, "silent_days": []})
            tally["expected"] += 1
            tally["filed"] += row["filed"]
            tally["on_time"] += row["on_time"]
            tally["late"] += row["filed"] and not row["on_time"]
            if not row["filed"]:
                tally["silent_days"].append(report["day"])
    total = {key: sum(t[key] for t in per.values()) for key in ("expected", "filed", "on_time",
                                                                  "late")}
    return {"period": period.to_json(), "as_of": as_of.isoformat(), "days": by_day,
            "stations": [per[a] for a in sorted(per)], "total": total}


def _latest(node, as_of: dt.date) -> periods.Period:
    """The period running on ``as_of``, else the latest begun by then."""
    begun = [p for p in periods.all_periods(node.db.conn).values() if p.start <= as_of]
    running = [p for p in begun if as_of <= p.end]
    chosen = running or begun
    if not chosen:
        raise NotFound(N_("no sensitive period has begun by {date}; `xinfang zero-report "
                          "declare` declares one"), date=as_of.isoformat())
    if len(running) > 1:
        raise InvalidInput(N_("more than one sensitive period runs on {date}; give --period"),
                           date=as_of.isoformat())
    return max(chosen, key=lambda p: (p.start, p.id))
