"""Every rule's "today" is the date in Beijing, whatever zone the machine keeps.

A county server on UTC would otherwise begin its day at 08:00 Beijing time: an
office certified just after midnight would seem certified tomorrow, and the
零报告 would leave it out of today's expected stations."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys

import pytest

from test_layout import PACKAGES, modules
from xinfang.core import clock


def today_in_zone(zone: str) -> str:
    code = "from xinfang.core import clock; print(clock.today().isoformat())"
    return subprocess.run([sys.executable, "-c", code], env={"TZ": zone}, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_today_is_the_same_day_on_machines_set_to_zones_a_day_apart():
    # UTC+14 and UTC-12 are 26 hours apart: their own calendars never agree
    assert today_in_zone("Pacific/Kiritimati") == today_in_zone("Etc/GMT+12")


def test_a_timestamp_just_after_midnight_in_beijing_falls_on_that_day():
    midnight = dt.datetime(2026, 12, 3, tzinfo=clock.CHINA)
    just_after = int((midnight + dt.timedelta(minutes=30)).timestamp() * 1000)
    just_before = int((midnight - dt.timedelta(minutes=30)).timestamp() * 1000)
    assert clock.day_of(just_after) == dt.date(2026, 12, 3)
    assert clock.day_of(just_before) == dt.date(2026, 12, 2)


def calls_to_the_machines_date(path) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "today" and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "date"):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("path", [p for folder in PACKAGES for p in modules(folder)],
                         ids=lambda p: str(p.relative_to(p.parents[1])))
def test_no_rule_takes_its_today_from_the_machines_zone(path):
    lines = calls_to_the_machines_date(path)
    assert not lines, f"{path.name} lines {lines}: use xinfang.core.clock.today()"
