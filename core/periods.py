"""The periods offices report by: a month, a quarter, a year, or any range of days.

In the kernel, since every plugin that reports by period (the statistics,
the dispute ledger) must read ``2026-11`` and ``2026-Q4`` alike.

Each period knows the one before it (环比) and the same one a year earlier
(同比), because every figure of a 月报表 is shown beside both. A range's
previous period is the range of the same length ending the day before it.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _

from . import clock

MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
YEAR = re.compile(r"^(\d{4})$")
RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def _month_end(year: int, month: int) -> dt.date:
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _shift_months(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


@attrs.frozen
class Period:
    """Whole days from ``start`` to ``end``, both included."""

    kind: str  # month | quarter | year | range
    start: dt.date
    end: dt.date

    @classmethod
    def month(cls, year: int, month: int) -> "Period":
        return cls("month", dt.date(year, month, 1), _month_end(year, month))

    @classmethod
    def quarter(cls, year: int, quarter: int) -> "Period":
        first = 3 * (quarter - 1) + 1
        return cls("quarter", dt.date(year, first, 1), _month_end(year, first + 2))

    @classmethod
    def year(cls, year: int) -> "Period":
        return cls("year", dt.date(year, 1, 1), dt.date(year, 12, 31))

    @property
    def code(self) -> str:
        """The period as it is typed: ``2026-11``, ``2026-Q4``, ``2026``, ``a..b``."""
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def label(self) -> str:
        """The period in the reader's language (2026年11月, 2026年第4季度 …)."""
        year = self.start.year
        if self.kind == "month":
            return _("{month}/{year}").format(year=year, month=self.start.month)
        if self.kind == "quarter":
            return _("{year} Q{quarter}").format(year=year,
                                                 quarter=(self.start.month - 1) // 3 + 1)
        if self.kind == "year":
            return _("year {year}").format(year=year)
        return _("{start} to {end}").format(start=self.start.isoformat(),
                                            end=self.end.isoformat())

    def contains(self, date: str | None) -> bool:
        """Whether an ISO date string lies in the period (string order is date order)."""
        return date is not None and self.start.isoformat() <= date[:10] <= self.end.isoformat()

    def previous(self) -> "Period":
        """The period just before (环比)."""
        if self.kind == "month":
            return Period.month(*_shift_months(self.start.year, self.start.month, -1))
        if self.kind == "quarter":
            year, month = _shift_months(self.start.year, self.start.month, -3)
            return Period.quarter(year, (month - 1) // 3 + 1)
        if self.kind == "year":
            return Period.year(self.start.year - 1)
        days = (self.end - self.start).days
        end = self.start - dt.timedelta(days=1)
        return Period("range", end - dt.timedelta(days=days), end)

    def year_ago(self) -> "Period":
        """The same period a year earlier (同比); 29 February becomes the 28th."""
        def back(day: dt.date) -> dt.date:
            try:
                return day.replace(year=day.year - 1)
            except ValueError:
                return day.replace(year=day.year - 1, day=28)

        if self.kind == "month":
            return Period.month(self.start.year - 1, self.start.month)
        if self.kind == "range":
            return Period("range", back(self.start), back(self.end))
        return attrs.evolve(self, start=back(self.start), end=back(self.end))

    def month_codes(self) -> list[str]:
        """The calendar months the period spans, as ``2026-11`` codes, oldest first."""
        count = ((self.end.year - self.start.year) * 12 + self.end.month
                 - self.start.month + 1)
        return [month.code for month in self.months(count)]

    def months(self, count: int = 12) -> list["Period"]:
        """The ``count`` calendar months up to the one the period ends in, oldest first:
        the trend a 月报表 draws."""
        year, month = self.end.year, self.end.month
        return [Period.month(*_shift_months(year, month, -back))
                for back in range(count - 1, -1, -1)]


FORMS = N_("a month 2026-11, a quarter 2026-Q4, a year 2026 or a range "
           "2026-03-01..2026-05-31")


def parse(text: str) -> Period:
    """A period from what a user types; anything else is one clear error."""
    raw = (text or "").strip()
    found = _period_of(raw)
    if found is None:
        raise InvalidInput(N_("period “{text}” is not one this report knows; give {forms}"),
                           text=raw, forms=_(FORMS))
    return found


def _period_of(raw: str) -> Period | None:
    """The period ``raw`` names, or None (a month 13 and a 30 February included)."""
    try:
        if found := MONTH.match(raw):
            year, month = int(found[1]), int(found[2])
            return Period.month(year, month) if 1 <= month <= 12 else None
        if found := QUARTER.match(raw):
            return Period.quarter(int(found[1]), int(found[2]))
        if found := YEAR.match(raw):
            return Period.year(int(found[1]))
        if found := RANGE.match(raw):
            start, end = dt.date.fromisoformat(found[1]), dt.date.fromisoformat(found[2])
            return Period("range", start, end) if start <= end else None
    except ValueError:
        return None
    return None


def current_month(today: dt.date | None = None) -> Period:
    today = today or clock.today()
    return Period.month(today.year, today.month)
