"""The offices' calendar: Beijing time.

Every date a rule judges by (today's deadlines, the report day a station is
expected from, the default "as of" of a report) is a day in China, whatever
time zone the machine is set to. A server kept on UTC, as many are, would
otherwise start its day eight hours late and judge an event signed after
midnight in Beijing to fall on the day before.
"""

from __future__ import annotations

import datetime as dt

#: China Standard Time, which has no daylight saving
CHINA = dt.timezone(dt.timedelta(hours=8), "CST")


def now() -> dt.datetime:
    return dt.datetime.now(CHINA)


def today() -> dt.date:
    """The date in Beijing now: the default "today" of every rule."""
    return now().date()


def day_of(wall_ms: int) -> dt.date:
    """The date in Beijing of an event's timestamp (milliseconds since the epoch)."""
    return dt.datetime.fromtimestamp(wall_ms / 1000, CHINA).date()
