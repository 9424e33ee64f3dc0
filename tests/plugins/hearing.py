"""A test plugin, written as a county would write one.

It adds, without touching the built-in case plugin:

- a lifecycle state 听证中 (``hearing``, open) with the steps 举行听证
  (``hold_hearing``: accepted → hearing) and 听证结束 (``end_hearing``:
  hearing → accepted);
- a case field 重大案件 (``major``, yes/no);
- a stricter deadline policy, the local rule 一般案件一个月、大案两个月:
  30 days to answer, 60 for a case registered as 重大案件, offered as
  policy code ``one-month@1`` (a county puts it in force with
  ``xinfang policy set case.deadline_policy one-month@1``);
- a 问题类别 水利工程 (``water``);
- its own message catalogue (``tests/plugins/locale``, domain ``hearing``),
  so its refusals read in Chinese by default and in English with --lang en.

A county that wants a 集体访 threshold of 3 sets the policy; a plugin cannot
change it locally, since the fold may read only synced policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs

from xinfang import hookimpl
from xinfang.core.entities import Choice, Field, State, Step
from xinfang.core.i18n import N_, Catalog, Message
from xinfang.plugins.cases.deadlines import STATUTORY_DAYS, StatutoryPolicy
from xinfang.plugins.cases.lifecycle import DATE, NOTE

ENTITY = "case"
GENERAL_ANSWER_DAYS = 30
MAJOR_ANSWER_DAYS = 60
ONE_MONTH = "one-month@1"
LOCALE = Path(__file__).resolve().parent / "locale"
BEFORE_RECEIVED = N_("a hearing cannot be dated {date}, before the case was received on "
                     "{received}")


def _not_before_received(view: dict[str, Any], values: dict[str, Any]) -> Message | None:
    if values["date"] < view["received"]:
        return Message(BEFORE_RECEIVED, date=values["date"], received=view["received"])
    return None


STATES = [State("hearing", "听证中")]
STEPS = [
    Step("hold_hearing", "举行听证", {"accepted"}, "hearing",
         (DATE, Field("place", "听证地点"), NOTE), guard=_not_before_received),
    Step("end_hearing", "听证结束", {"hearing"}, "accepted", (DATE, NOTE),
         guard=_not_before_received),
]
MAJOR = Field("major", "重大案件", kind="bool", help=N_("yes or no"))
WATER = Choice("water", "水利工程")


@attrs.frozen
class OneMonthPolicy(StatutoryPolicy):
    """一般案件一个月、大案两个月: the answer deadline depends on 重大案件."""

    code: str = ONE_MONTH
    name: str = "一般案件一个月、大案两个月（测试县）"
    days: Mapping[str, int] = attrs.field(
        factory=lambda: {**STATUTORY_DAYS, "answer": GENERAL_ANSWER_DAYS})

    def days_for(self, kind: str, case: Mapping[str, Any]) -> int:
        if kind == "answer":
            major = (case.get("fields") or {}).get("major")
            return MAJOR_ANSWER_DAYS if major else GENERAL_ANSWER_DAYS
        return super().days_for(kind, case)


@hookimpl
def xinfang_message_catalogs():
    return [Catalog("hearing", LOCALE)]


@hookimpl
def xinfang_lifecycle(entity):
    return [*STATES, *STEPS] if entity == ENTITY else None


@hookimpl
def xinfang_entity_fields(entity):
    return [MAJOR] if entity == ENTITY else None


@hookimpl
def xinfang_deadline_policies():
    return [OneMonthPolicy()]


@hookimpl
def xinfang_vocabulary(name):
    return [WATER] if name == "case.category" else None
