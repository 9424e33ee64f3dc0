"""Synthetic petitioners and case wording for the demo and the benchmarks.

Nothing here can name a real person: names are a surname and 某 and a
placeholder (赵某甲), ID numbers lie in region 990000, which is assigned to
no place, and phone numbers are drawn at random. One module holds them so
the demo and every benchmark make the same kind of person.
"""

from __future__ import annotations

import datetime as dt
import random

from xinfang.plugins.cases.idnumber import synthetic as synthetic_id

__all__ = ["BUREAU", "CATEGORIES", "CEASED", "COUNTY", "DISPUTES", "GIVEN", "KINDS", "LEADER",
           "MEASURES", "NOT_CEASED", "OPERATOR", "PETITION", "PROGRESS", "PROJECT", "REFERRED",
           "REPEATED", "REQUEST", "RESETTLEMENT_TOWNSHIP", "RESOLVED", "SURNAMES", "TEXTS",
           "TOWNSHIPS", "UNIT", "VILLAGES", "WITHDRAWN", "person", "random_id", "random_name",
           "random_phone", "synthetic_id"]

SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
#: placeholders for a given name: 赵某甲, 钱某乙 …
GIVEN = "甲乙丙丁戊己庚辛壬癸"
#: the kinds of 信访事项 a workload draws from, weighted as they occur
KINDS = ["appeal"] * 7 + ["report"] * 2 + ["suggestion"]
#: answer texts
TEXTS = ["已督促责任单位依法处理", "经核查，诉求部分属实，已责成整改", "已向信访人解释相关政策"]


def random_name(rng: random.Random) -> str:
    """A name of the form 赵某甲."""
    return rng.choice(SURNAMES) + "某" + rng.choice(GIVEN)


def random_id(rng: random.Random) -> str:
    """An ID number with a valid check character in region 990000 and a birth
    date between 1940 and 2000, so it can never be a real person's."""
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(60 * 365))
    return synthetic_id(rng.randrange(1000), f"{birth:%Y%m%d}")


def random_phone(rng: random.Random) -> str:
    """A mobile number of 11 digits starting 13."""
    return f"13{rng.randrange(10**9):09d}"


#: The nodes, people and wording the demo writes into its databases and
#: certificates. They are synthetic data, like the names above,
#: not messages: what a node stores and signs must not depend on the
#: language of whoever ran the demo, so they stay the same in every language.
COUNTY = ("431202", "示例县信访局")
TOWNSHIPS = [("431202101", "示例一镇信访办"), ("431202102", "示例二镇信访办"),
             ("431202103", "示例三镇信访办")]
VILLAGES = ("示例一村信访站", "示例二村信访站", "示例三村信访站")
OPERATOR = "演示员"
UNIT = "属地村委会"
REQUEST = "反映{category}问题（示例{serial}）"
REPEATED = "再次反映同一问题（示例）"
REFERRED = "移民后扶资金发放问题（市转交，示例）"
WITHDRAWN = "信访人电话告知撤回（示例）"
#: 回访结果 of a follow-up that found petitioning ceased, and of one that did not
CEASED = "电话回访，信访人表示问题已解决，不再信访（示例）"
NOT_CEASED = "上门回访，信访人对答复仍有意见（示例）"
#: the 包案领导 named when some cases are accepted
LEADER = "周某甲"
#: codes of the case.category vocabulary the villages' cases cycle through
CATEGORIES = ["labour", "resettlement", "land", "neighbour", "urban_construction"]


def person(n: int, given: str) -> str:
    """A synthetic name such as 钱某甲: the n-th surname, 某 and a placeholder."""
    return f"{SURNAMES[n % 16]}某{given}"

#: the sensitive period the demo declares for its 零报告
SENSITIVE_PERIOD = "演示敏感期"
#: what the county's 督办单 requires, and the township's answer
ORDER_REQUIRED = "请于一周内报告办理结果（示例）"
ORDER_RESULT = "已约谈信访人，正在办理（示例）"

#: the resettlement township (库区移民安置区: two villages, its office without the
#: ledger plugin) and the county's 移民局, a department node
RESETTLEMENT_TOWNSHIP = ("431202104", "示例四镇信访办")
BUREAU = "示例县移民局"
#: per resettlement village, the disputes it screens: 矛盾类型, 基本情况, 涉及人数, 风险等级
DISPUTES = (
    (("support", "后期扶持资金发放到户时间争议（示例）", 4, "medium"),
     ("land_compensation", "安置点征地补偿标准争议（示例）", 6, "high"),
     ("neighbour", "移民安置房宅基地边界纠纷（示例）", 2, "low")),
    (("housing", "旧房改造施工影响邻户通行（示例）", 3, "low"),
     ("resettlement", "移民身份认定争议（示例）", 1, "medium")),
)
#: how a dispute is handled: 化解结果, 化解措施 and 进展 wording
RESOLVED = "经村调委会调解，资金已按户发放到位（示例）"
MEASURES = "镇移民办会同村委会入户核实（示例）"
PETITION = "反映安置点征地补偿标准过低（示例，由矛盾纠纷转入）"
#: the resettlement-village project and its monthly progress notes
PROJECT = ("旧房改造（示例二村）", 37, "户")
PROGRESS = ("首批5户主体完工（示例）", "累计11户完工（示例）")
