"""信息零报告: the plugin's hooks and the fold of a station's daily filing.

A filing is the record ``zero_filing`` with id ``<area>-<period>-<day>``: one
per station per report day. Its events are ``zero_report.file``; the first
in the log's order is the report, a later one for the same day a correction
(更正): it replaces what the report says, while the first filing's date
still decides whether the report came in on time, so correcting can neither
make a late report timely nor a timely one late. Only the station files for
its own area (refused on arrival: a pure function of the event and the
author's certificate); a day that is not a report day of a period declared
over the station is a conflict, decided in the fold against the synced
declaration, so every node agrees whatever arrives first.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlite_utils.migrations import Migrations

from xinfang import hookimpl
from xinfang.core import kernel, policy
from xinfang.core.entities import EntityType, require
from xinfang.core.errors import InvalidEvent
from xinfang.core.i18n import N_, Message

from . import periods

ENTITY = "zero_filing"
TYPE = "zero_report.file"
BODY = {"period", "date", "filed", "status", "note", "cases", "by"}
STATUSES = ("none", "note")
MAX_NOTE = 500
MAX_CASES = 50
MIGRATIONS = Migrations("zero_report")


@MIGRATIONS(name="0001_zero_filings")
def _schema(db) -> None:
    db.execute("create table zero_filings (id text primary key, area text not null, "
               "period text not null, day text not null, first_filed text not null, "
               "filed text not null, status text not null, note text not null, "
               "cases text not null, author text not null, operator text not null, "
               "corrections integer not null, order_key text not null)")
    db.execute("create index zero_filings_period on zero_filings (period, day)")


def entity_id(area: str, period: str, day: str) -> str:
    return f"{area}-{period}-{day}"


def _apply(ctx, event) -> None:
    body = event.body
    found = periods.periods_at(ctx.db.conn, event.area).get(body["period"])
    require(found is not None, Message(
        N_("no sensitive period {period} is declared over area {area}"),
        period=body["period"], area=event.area))
    require(found.covers_area(event.area), Message(
        N_("area {area} is not a station of period {period} (the declaring office, or "
           "outside the areas it covers)"), area=event.area, period=body["period"]))
    day = dt.date.fromisoformat(body["date"])
    require(found.is_day(day), Message(
        N_("{date} is not a report day of period {period} ({start} to {end}, every {every} "
           "days)"), date=body["date"], period=body["period"], start=found.start.isoformat(),
        end=found.end.isoformat(), every=found.every))
    conn = ctx.db.conn
    values = [body["filed"], body["status"], body["note"],
              json.dumps(body["cases"], ensure_ascii=False), event.author, body.get("by", "")]
    if conn.execute("select 1 from zero_filings where id = ?", [event.entity_id]).fetchone():
        conn.execute("update zero_filings set filed = ?, status = ?, note = ?, cases = ?, "
                     "author = ?, operator = ?, corrections = corrections + 1, order_key = ? "
                     "where id = ?", [*values, event.order_key, event.entity_id])
    else:
        conn.execute("insert into zero_filings (id, area, period, day, first_filed, filed, "
                     "status, note, cases, author, operator, corrections, order_key) values "
                     "(?,?,?,?,?,?,?,?,?,?,?,0,?)",
                     [event.entity_id, event.area, body["period"], body["date"],
                      body["filed"], *values, event.order_key])


def _reset(ctx, filing_id: str) -> None:
    ctx.db.conn.execute("delete from zero_filings where id = ?", [filing_id])


FILING = EntityType(ENTITY, "零报告", ("zero_filings",), MIGRATIONS, apply=_apply,
                    reset=_reset, policy=(periods.KEY,))

GRACE_KEY = policy.PolicyKey(
    periods.GRACE, N_("days after a 零报告's due day it still counts as on time"), 0,
    kind="int", minimum=0,
    help=N_("0: by 24:00 of the due day (the report day, or the cycle's last day)"))


def _date(text, what: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value.isoformat() != text:
        raise InvalidEvent(N_("a 零报告's {what} must be a date as YYYY-MM-DD"), what=what)
    return value


def check_filing(event, node) -> None:
    """Why a filing may not be signed or taken in (``InvalidEvent``), from the event and
    the author's certificate alone."""
    body = event.body
    if event.type != TYPE or not isinstance(body, dict) or set(body) != BODY:
        raise InvalidEvent(N_("a 零报告 is zero_report.file with period, date, filed, status, "
                              "note, cases and by"))
    if not isinstance(body["period"], str) or not periods.ID.match(body["period"]):
        raise InvalidEvent(N_("a 零报告 names a period id of letters and digits"))
    day, filed = _date(body["date"], "date"), _date(body["filed"], "filed")
    if filed < day:
        raise InvalidEvent(N_("a 零报告 for {date} cannot be filed before that day ({filed})"),
                           date=body["date"], filed=body["filed"])
    note, cases = body["note"], body["cases"]
    if body["status"] not in STATUSES or not isinstance(note, str) or len(note) > MAX_NOTE \
            or not isinstance(cases, list) or len(cases) > MAX_CASES \
            or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in cases) \
            or cases != sorted(set(cases)) or not isinstance(body["by"], str):
        raise InvalidEvent(N_("a 零报告's status is none or note, with a note of at most "
                              "{max} characters and a sorted list of case numbers"),
                           max=MAX_NOTE)
    if (body["status"] == "none") != (not note and not cases):
        raise InvalidEvent(N_("a 零报告 says 无情况 with no note and no cases, or gives a "
                              "note or cases"))
    if event.entity_id != entity_id(event.area, body["period"], body["date"]):
        raise InvalidEvent(N_("a 零报告's id is AREA-PERIOD-DATE of its own area, period and "
                              "date"))
    # a draft (authoring) has no author yet: it is this node
    author = kernel.author_of(node.db, getattr(event, "author", node.info.author))
    if author is not None and author.area != event.area:
        raise InvalidEvent(N_("a station files the 零报告 of its own area only: the author "
                              "is certified for {own}, the report is for {area}"),
                           own=author.area, area=event.area)


@hookimpl
def xinfang_entity_types():
    return [FILING]


@hookimpl
def xinfang_policy_keys():
    return [GRACE_KEY]


@hookimpl
def xinfang_validate_event(event, node):
    if event.entity == ENTITY:
        check_filing(event, node)
    elif event.entity == policy.ENTITY and isinstance(event.body, dict) \
            and event.body.get("key") == periods.KEY:
        value = event.body.get("value")
        if not isinstance(value, dict) or len(value) > 1000:
            raise InvalidEvent(N_("a declaration of sensitive periods maps period ids to "
                                  "periods"))
        for pid, period in value.items():
            reason = periods.problem(pid, period, event.area)
            if reason is not None:
                raise InvalidEvent(reason)


@hookimpl
def xinfang_reports():
    from .reports import REPORTS

    return REPORTS


@hookimpl
def xinfang_register_commands(cli, registry):
    from .commands import zero_report_group

    cli.add_command(zero_report_group)
