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

__all__ = ["GIVEN", "KINDS", "SURNAMES", "TEXTS", "random_id", "random_name", "random_phone",
           "synthetic_id"]

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
