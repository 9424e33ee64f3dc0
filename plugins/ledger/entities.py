"""The ledger's records: 矛盾纠纷 (dispute), 移民新村项目 (project), 目标责任状 (target).

All three are kernel lifecycle records: the kernel folds them, keeps their
history and conflicts, syncs them through the tree (relays without this
plugin hold and forward them) and generates their commands. A dispute and
a project are numbered by the office that records them (``AREA-YEAR-SERIAL``);
a target is identified by what it is, one per township and year
(``EntityType.identify``: ``<township>-<year>-target``).

The dispute's columns are the 台账's (DOMAIN: 排查日期, 所属乡镇/村 as the
record's area, 矛盾类型, 基本情况, 涉及人数, 风险等级, 化解措施, 化解方式,
责任领导, 责任人, 化解时限, 进展, 是否化解, 关联信访事项, 备注).
"""

from __future__ import annotations

import re
from typing import Any

from sqlite_utils.migrations import Migrations

from xinfang.core import areas
from xinfang.core.entities import ANY_OPEN, Author, Choice, EntityType, Field, State, Step
from xinfang.core.errors import InvalidEvent
from xinfang.core.i18n import N_, Message
from xinfang.core.kernel import author_of

DISPUTE, PROJECT, TARGET = "dispute", "project", "target"
MIGRATIONS = Migrations("ledger")
KERNEL_COLUMNS = ("id text primary key, area text not null, status text not null, "
                  "author text not null, created_key text not null, facts text not null, "
                  "fields text not null, updated text not null")


@MIGRATIONS(name="0001_ledger_records")
def _schema(db) -> None:
    db.executescript(f"""
    create table ledger_disputes (
        {KERNEL_COLUMNS}, date text, kind text, summary text, people integer, risk text,
        measures text, mediation text, leader text, person text, due text, project text,
        mass integer, note text, progress text, resolved_on text, case_id text
    );
    create index ledger_disputes_area on ledger_disputes (area);
    create table ledger_projects (
        {KERNEL_COLUMNS}, date text, kind text, name text, planned integer, unit text,
        note text, done integer not null default 0
    );
    create table ledger_targets (
        {KERNEL_COLUMNS}, year integer, no_mass integer, max_skipped integer,
        min_resolution integer, note text
    );
    """)


VOCABULARIES = {
    "ledger.dispute_kind": [
        Choice("land_compensation", "征地补偿"), Choice("resettlement", "移民安置"),
        Choice("support", "后期扶持"), Choice("housing", "房屋拆迁"),
        Choice("land_rights", "土地权属"), Choice("neighbour", "邻里纠纷"),
        Choice("construction", "工程建设"), Choice("other", "其他")],
    "ledger.risk": [Choice("high", "高"), Choice("medium", "中"), Choice("low", "低")],
    "ledger.mediation": [
        Choice("people", "人民调解"), Choice("administrative", "行政调解"),
        Choice("judicial", "司法调解"), Choice("petition", "信访调解")],
    "ledger.project_kind": [
        Choice("rebuild", "旧房改造"), Choice("road", "道路"), Choice("drain", "排水沟"),
        Choice("wall", "挡土墙"), Choice("water", "饮水工程"), Choice("other", "其他")],
}

DATE = Field("date", "日期", kind="date")
#: a record number as the kernel gives them (``AREA-YEAR-SERIAL``): a linked 信访事项
RECORD_NUMBER = re.compile(r"\A[0-9]{2,12}-[0-9]{4}-[0-9]{5,7}\Z")
COUNTY_DIGITS, TOWNSHIP_DIGITS, VILLAGE_DIGITS = 6, 9, 12


def _not_before(view: dict[str, Any], values: dict[str, Any]) -> Message | None:
    """A step is not dated before the record was made (排查 / 登记 / 签订)."""
    if values.get("date") and view.get("date") and values["date"] < view["date"]:
        return Message(N_("the date {date} is before the record's own date {created}"),
                       date=values["date"], created=view["date"])
    return None

# -- 矛盾纠纷 ----------------------------------------------------------------------------

DISPUTE_FIELDS = (
    Field("date", "排查日期", kind="date"),
    Field("kind", "矛盾类型", kind="choice", choices="ledger.dispute_kind", required=True),
    Field("summary", "基本情况", required=True),
    Field("people", "涉及人数", kind="int", minimum=1),
    Field("risk", "风险等级", kind="choice", choices="ledger.risk", required=True),
    Field("measures", "化解措施"),
    Field("mediation", "化解方式", kind="choice", choices="ledger.mediation"),
    Field("leader", "责任领导"),
    Field("person", "责任人"),
    Field("due", "化解时限", kind="date", future=True),
    Field("project", "关联项目", help=N_("the number of the project the dispute arises from")),
    Field("mass", "群体性事件", kind="bool",
          help=N_("whether the dispute led to a mass incident (群体事件)")),
    Field("note", "备注"),
)
DISPUTE_STATES = (State("screened", "已排查"), State("resolving", "化解中"),
                  State("resolved", "已化解", open=False),
                  State("to_petition", "已转信访", open=False))
DISPUTE_STEPS = (
    Step("start", "开始化解", {"screened"}, "resolving", (
        DATE, Field("measures", "化解措施"),
        Field("mediation", "化解方式", kind="choice", choices="ledger.mediation")),
         guard=_not_before),
    Step("progress", "进展", {"screened", "resolving"}, "resolving", (
        DATE, Field("progress", "进展", required=True)), guard=_not_before),
    Step("resolve", "化解", {"screened", "resolving"}, "resolved", (
        DATE, Field("progress", "化解结果", required=True),
        Field("mediation", "化解方式", kind="choice", choices="ledger.mediation")),
         guard=_not_before),
    Step("to_petition", "转信访", {"screened", "resolving"}, "to_petition", (
        DATE, Field("case", "关联信访事项", required=True,
                    help=N_("the number of the 信访事项 registered for it"))),
         guard=_not_before),
    # 月度排查: an open dispute screened again in a later month is in that month's ledger
    Step("rescreen", "月度排查", {ANY_OPEN}, None, (DATE, Field("progress", "进展")),
         guard=_not_before),
)


def on_dispute_step(ctx, event, view, step, values, changes) -> None:
    for name in ("measures", "mediation", "progress"):
        if values.get(name):
            changes[name] = values[name]
    if step.name == "resolve":
        changes["resolved_on"] = values["date"]
    elif step.name == "to_petition":
        changes["case_id"] = values["case"]


DISPUTE_TYPE = EntityType(
    DISPUTE, "矛盾纠纷", ("ledger_disputes",), MIGRATIONS, table="ledger_disputes",
    create=Step("add", "排查登记", (), "screened", DISPUTE_FIELDS),
    states=DISPUTE_STATES, steps=DISPUTE_STEPS, command=None, on_step=on_dispute_step)

# -- 移民新村项目 ------------------------------------------------------------------------


def _progress(view: dict[str, Any], values: dict[str, Any]) -> Message | None:
    """累计完成 counts what is done so far, at most what was planned."""
    if view.get("planned") is not None and values.get("done", 0) > view["planned"]:
        return Message(N_("done so far ({done}) is more than planned ({planned})"),
                       done=values["done"], planned=view["planned"])
    return _not_before(view, values)


def on_project_step(ctx, event, view, step, values, changes) -> None:
    if step.name == "progress":
        changes["done"] = values["done"]

PROJECT_TYPE = EntityType(
    PROJECT, "移民新村项目", ("ledger_projects",), MIGRATIONS, table="ledger_projects",
    create=Step("add", "项目登记", (), "underway", (
        Field("date", "登记日期", kind="date"),
        Field("kind", "项目类别", kind="choice", choices="ledger.project_kind", required=True),
        Field("name", "项目名称", required=True),
        Field("planned", "计划数量", kind="int", minimum=1, required=True,
              help=N_("households or units planned, e.g. 37 for 37 households")),
        Field("unit", "计量单位", help=N_("户, 米, 处 …")), Field("note", "备注"))),
    states=(State("underway", "在建"), State("done", "已完工", open=False)),
    steps=(Step("progress", "进度", {"underway"}, None, (
               DATE, Field("done", "累计完成", kind="int", minimum=0, required=True),
               Field("note", "进展说明")), guard=_progress),
           Step("finish", "完工", {"underway"}, "done", (DATE, Field("note", "备注")),
                guard=_not_before)),
    command=None, on_step=on_project_step)

# -- 目标责任状 --------------------------------------------------------------------------


def target_id(values: dict[str, Any], area: str) -> str:
    """One 目标责任状 per township and year."""
    return f"{area}-{int(values['year'])}-target"


TARGET_FIELDS = (
    Field("year", "年度", kind="int", minimum=2000, maximum=2100, required=True),
    Field("no_mass", "不发生群体事件", kind="bool"),
    Field("max_skipped", "越级访上限（件）", kind="int", minimum=0),
    Field("min_resolution", "化解率不低于（%）", kind="int", minimum=0, maximum=100),
    Field("note", "备注"),
)


def _county_office(view: dict[str, Any], author: Author) -> Message | None:
    """目标责任状 are signed with a township by the county (or the bureau, whose certificate
    holds the county's area): an office of six digits above the township."""
    if len(author.area) != COUNTY_DIGITS or not view["area"].startswith(author.area):
        return Message(N_("a target agreement is signed and revised by the county office "
                          "above township {area}"), area=view["area"])
    return None


def on_target_step(ctx, event, view, step, values, changes) -> None:
    """修订: the revised targets replace those signed."""
    changes.update({f.name: values[f.name] for f in TARGET_FIELDS[1:] if f.name in values})


TARGET_TYPE = EntityType(
    TARGET, "目标责任状", ("ledger_targets",), MIGRATIONS, table="ledger_targets",
    create=Step("set", "签订", (), "signed", TARGET_FIELDS),
    states=(State("signed", "已签订"),),
    steps=(Step("revise", "修订", {"signed"}, None, (DATE, *TARGET_FIELDS[1:]),
                authority=_county_office),),
    command=None, identify=target_id, on_step=on_target_step)

ENTITY_TYPES = [DISPUTE_TYPE, PROJECT_TYPE, TARGET_TYPE]


def check_arrival(event, node) -> None:
    """What every node refuses of a ledger event, authoring or receiving it
    (``InvalidEvent``): a pure function of the event and its author's certificate.

    A dispute lies in a township or a village, a project in a village; a target is
    set for a township by the county office above it; 转信访 names a record number.
    """
    kind = event.type
    if kind == f"{DISPUTE}.add" and len(event.area) not in (TOWNSHIP_DIGITS, VILLAGE_DIGITS):
        raise InvalidEvent(N_("a dispute is recorded for a township or a village, not for "
                              "area {area}"), area=event.area)
    if kind == f"{PROJECT}.add" and len(event.area) != VILLAGE_DIGITS:
        raise InvalidEvent(N_("a resettlement-village project is recorded for a village, not "
                              "for area {area}"), area=event.area)
    if kind == f"{DISPUTE}.to_petition":
        case = (event.body.get("values") or {}).get("case")
        if not isinstance(case, str) or not RECORD_NUMBER.match(case):
            raise InvalidEvent(N_("转信访 names the number of a 信访事项, such as "
                                  "431202101201-2026-00001, not {value}"), value=str(case))
    if kind == f"{TARGET}.set":
        if len(event.area) != TOWNSHIP_DIGITS:
            raise InvalidEvent(N_("a target agreement is for a township, not for area {area}"),
                               area=event.area)
        author = author_of(node.db, getattr(event, "author", None) or node.info.author)
        if author is not None and _county_office({"area": event.area}, author) is not None:
            raise InvalidEvent(N_("{level} {own} may not sign a target agreement: it is signed "
                                  "by the county office above township {area}"),
                               level=areas.level_for_code(author.area).label, own=author.area,
                               area=event.area)
