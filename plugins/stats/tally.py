"""Many figures for many periods and groups in one pass over the cases.

The simple path is ``Indicator.value``: one figure, one period, every case
looked at. The 月报表 needs some thirty figures for the period, the one
before, the same one a year earlier and twelve trend months, per area one
level down: ``Tally`` adds each case once to every (figure, period, group)
it counts in, and the tests check it gives what ``Indicator.value`` gives.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from xinfang.core.reports import Ratio

from .indicators import CaseRecord, Indicator


class Tally:
    """Many figures for many (period, group) pairs in one pass over the cases."""

    def __init__(self, indicators: list[Indicator], periods: dict[str, tuple[str, str]],
                 as_of: dict[str, str], group: Callable[[CaseRecord], str] | None = None):
        self.indicators = indicators
        self.periods = periods
        self.as_of = as_of
        self.group = group
        #: (indicator, period, group or None for the whole) -> [numerator, denominator]
        self.sums: dict[tuple[str, str, str | None], list[int]] = {}
        #: (indicator, period) -> denominators of the cases left out (涉法涉诉)
        self.excluded: dict[tuple[str, str], int] = {}
        self.groups: set[str] = set()
        self._cache: dict[str, list[tuple[str, str]]] = {}

    def add(self, cases: Iterable[CaseRecord]) -> "Tally":
        for case in cases:
            key = self.group(case) if self.group else None
            if key is not None and any(case.category not in i.excludes
                                       for i in self.indicators):
                self.groups.add(key)  # a row only for what some figure counts
            for indicator in self.indicators:
                date = indicator.date(case)
                if date is None:
                    continue
                for period, as_of in self._periods_of(date):
                    added = indicator.compute(case, as_of)
                    numerator, denominator = added if indicator.kind == "ratio" else (added, 0)
                    if case.category in indicator.excludes:
                        slot = (indicator.name, period)
                        left_out = denominator if indicator.kind == "ratio" else numerator
                        self.excluded[slot] = self.excluded.get(slot, 0) + left_out
                        continue
                    for where in ({None, key} if key is not None else {None}):
                        sums = self.sums.setdefault((indicator.name, period, where), [0, 0])
                        sums[0] += numerator
                        sums[1] += denominator
        return self

    def _periods_of(self, date: str) -> list[tuple[str, str]]:
        """The periods (and their as-of days) a date counts in: the same few hundred days
        recur across thousands of cases, so each is worked out once."""
        found = self._cache.get(date)
        if found is None:
            found = self._cache[date] = [
                (period, self.as_of[period]) for period, (start, end) in self.periods.items()
                if start <= date <= end and date <= self.as_of[period]]
        return found

    def value(self, indicator: Indicator, period: str, group: str | None = None) -> Any:
        numerator, denominator = self.sums.get((indicator.name, period, group), (0, 0))
        return Ratio(numerator, denominator) if indicator.kind == "ratio" else numerator

    def row(self, period: str, group: str | None = None) -> dict[str, Any]:
        return {i.name: self.value(i, period, group) for i in self.indicators}
