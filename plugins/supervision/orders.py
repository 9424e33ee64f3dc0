"""The 督办单 (supervision order): a kernel record issued down, answered up.

An order names one or more cases, a due date and what the addressed office
must report. Its area is the *addressee*'s, the office that holds every case
it names, so the order travels down to the office that must answer and its
responses travel up, by the scope rule alone, through relays without this
plugin. The issuing office must stand above the addressee: a village cannot
supervise, nor an office itself. That is a pure function of the event and
its author's certificate, so it is refused on arrival (``check_issue``), as
when authoring. Who may take each later step is a ``Step(authority=…)``:
回复 is the addressee's, 销号 and 重办 the issuer's (or an office above it).

Its ``id`` is the issuing office's number (``AREA-YEAR-SERIAL``, the kernel's
``check_number``), so the issuer's own area leads it while the record lies
in the addressee's.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlite_utils.migrations import Migrations

from xinfang.core import areas
from xinfang.core.entities import Author, EntityType, Field, State, Step
from xinfang.core.errors import InvalidEvent
from xinfang.core.i18n import N_, Message
from xinfang.core.kernel import author_of

from . import escalation

ENTITY = "order"
TABLE = "supervision_orders"
MAX_CASES = 50
_CASE = re.compile(r"\A[0-9]{2,12}-[0-9]{4}-[0-9]{5,7}\Z")
MIGRATIONS = Migrations("supervision")


@MIGRATIONS(name="0001_orders_and_items")
def _schema(db) -> None:
    db.executescript(f"""
    create table {TABLE} (
        id text primary key, area text not null, status text not null, author text not null,
        created_key text not null, facts text not null, fields text not null,
        updated text not null, date text, due text, required text, kind text,
        cases text not null default '[]', issuer_area text not null default ''
    );
    create table {escalation.TABLE} (
        entity text not null, entity_id text not null, obligation text not null,
        area text not null, label text not null, due text not null, met_on text,
        every integer not null, primary key (entity, entity_id, obligation)
    );
    create index {escalation.TABLE}_area on {escalation.TABLE} (area);
    """)


DATE = Field("date", "日期", kind="date")
ISSUE = Step("issue", "督办", (), "issued", (
    Field("date", "签发日期", kind="date"),
    Field("due", "办理期限", kind="date", required=True, future=True,
          help=N_("the day the addressed office must report by")),
    Field("required", "督办要求", required=True,
          help=N_("what the addressed office must do and report")),
    Field("kind", "督办方式", kind="choice", choices="supervision.order_kind")))


def _addressee(view: dict[str, Any], author: Author) -> Message | None:
    if author.area != view["area"]:
        return Message(N_("it is for the office the order is addressed to (area {area})"),
                       area=view["area"])
    return None


def _issuer(view: dict[str, Any], author: Author) -> Message | None:
    issuer = view.get("issuer_area") or ""
    if not issuer or not issuer.startswith(author.area):
        return Message(N_("it is for the office that issued the order (area {area}) or one "
                          "above it"), area=issuer or "—")
    return None


def _after_issue(view: dict[str, Any], values: dict[str, Any]) -> Message | None:
    if values.get("date") and view.get("date") and values["date"] < view["date"]:
        return Message(N_("the date {date} is before the order was issued ({issued})"),
                       date=values["date"], issued=view["date"])
    if values.get("due") and values.get("date") and values["due"] < values["date"]:
        return Message(N_("the new due date {due} is before the step's date {date}"),
                       due=values["due"], date=values["date"])
    return None


STATES = (State("issued", "已督办"), State("responded", "已回复"),
          State("closed", "已销号", open=False))
STEPS = (
    Step("respond", "回复", {"issued", "responded"}, "responded", (
        DATE, Field("result", "办理情况", required=True),
        Field("done", "是否办结", kind="bool")), guard=_after_issue, authority=_addressee),
    Step("close", "销号", {"responded"}, "closed", (DATE, Field("note", "备注")),
         guard=_after_issue, authority=_issuer),
    Step("redo", "重办", {"responded"}, "issued", (
        DATE, Field("reason", "重办理由", required=True),
        Field("due", "新办理期限", kind="date", required=True, future=True)),
         guard=_after_issue, authority=_issuer),
)


def on_create(ctx, event, row: dict[str, Any]) -> None:
    author = author_of(ctx.db, event.author)
    row["issuer_area"] = author.area if author else ""
    row["cases"] = json.dumps(event.body["cases"])


def after(ctx, event, record: dict[str, Any]) -> None:
    """The order's one obligation (回复 by its due date), for the supervision list."""
    facts = record["facts"]
    due = (facts.get("redo") or {}).get("due") or record["due"]
    met = (facts.get("respond") or {}).get("date") if record["status"] != "issued" else None
    escalation.store(ctx, [escalation.Obligation(
        record["id"], "respond", "order", record["area"], N_("the answer to the order"), due,
        met)])


ORDER = EntityType(
    ENTITY, "督办单", (TABLE, escalation.TABLE), MIGRATIONS, table=TABLE, create=ISSUE,
    states=STATES, steps=STEPS, policy=(escalation.KEY,), command="ducha",
    body_keys=("cases",), on_create=on_create, after=after)


def cases_problem(cases: Any) -> Message | None:
    if not isinstance(cases, list) or not 0 < len(cases) <= MAX_CASES \
            or not all(isinstance(c, str) and _CASE.match(c) for c in cases) \
            or cases != sorted(set(cases)):
        return Message(N_("an order names 1 to {max} case numbers, sorted and each once"),
                       max=MAX_CASES)
    return None


def check_issue(event, node) -> None:
    """An order may be issued only from above its addressee; raises ``InvalidEvent``."""
    if event.type != f"{ENTITY}.{ISSUE.name}":
        return
    problem = cases_problem(event.body.get("cases"))
    if problem is not None:
        raise InvalidEvent(problem)
    body = event.body
    if isinstance(body.get("due"), str) and isinstance(body.get("date"), str) \
            and body["due"] < body["date"]:
        raise InvalidEvent(N_("an order's due date {due} is before its date {date}"),
                           due=body["due"], date=body["date"])
    author = author_of(node.db, getattr(event, "author", None) or node.info.author)
    if author is not None and parent_area(event.area) != author.area:
        raise InvalidEvent(N_("an order goes to an office one level below the issuing one: "
                              "{level} {own} may not issue one to area {area}"),
                           level=areas.level_for_code(author.area).label, own=author.area,
                           area=event.area)


def addressee(case_areas: list[str], issuer: str) -> str | None:
    """The office one level below ``issuer`` that holds every one of ``case_areas`` (each
    level supervises the one below it, 分级负责), or None if no one office holds them."""
    first = case_areas[0]
    if len(first) <= len(issuer):
        return None
    child = first[:next(n for n in areas.VALID_LENGTHS if n > len(issuer))]
    return child if all(a.startswith(child) for a in case_areas) else None


def parent_area(area: str) -> str:
    lengths = [n for n in areas.VALID_LENGTHS if n < len(area)]
    return area[:lengths[-1]] if lengths else ""
