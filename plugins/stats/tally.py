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
        #: (indicator, period, group: None when there are no groups) -> [numerator,
        #: denominator]
        self.sums: dict[tuple[str, str, str | None], list[int]] = {}
        #: (indicator, period) -> denominators of the cases left out (涉法涉诉)
        self.excluded: dict[tuple[str, str], int] = {}
        self.groups: set[str] = set()
        #: (indicator, period) -> the sums of every group (worked out when first read)
        self._totals: dict[tuple[str, str], list[int]] | None = None
        self._cache: dict[str, list[tuple[str, str]]] = {}
        #: each period -> the first of the same days and as-of day (the 月报表's current
        #: month is also one of its trend months): counted once, read under either name
        first: dict[tuple[str, str, str], str] = {}
        self.alias = {name: first.setdefault((*span, as_of[name]), name)
                      for name, span in periods.items()}
        #: the first and last day any period counts (a date outside counts nowhere)
        self.window = (min((start for start, _ in periods.values()), default=""),
                       max((min(end, as_of[name]) for name, (_, end) in periods.items()),
                           default=""))

    def add(self, cases: Iterable[CaseRecord]) -> "Tally":
        # the loop runs cases x figures x periods times: what each figure needs is looked
        # up once, outside it, and figures dated alike (most count by the day received)
        # share the date and its periods
        by_date: dict[Callable, list[tuple[str, Callable, bool, frozenset[str]]]] = {}
        for i in self.indicators:
            by_date.setdefault(i.date, []).append((i.name, i.compute, i.kind == "ratio",
                                                   i.excludes))
        plan = list(by_date.items())
        every_exclusion = [i.excludes for i in self.indicators]
        sums, excluded, periods_of = self.sums, self.excluded, self._periods_of
        first, last = self.window
        for case in cases:
            key = self.group(case) if self.group else None
            category = case.category
            if key is not None and any(category not in e for e in every_exclusion):
                self.groups.add(key)  # a row only for what some figure counts
            for date_of, figures in plan:
                date = date_of(case)
                if date is None or date < first or date > last:
                    continue
                spans = periods_of(date)
                for name, compute, ratio, excludes in figures:
                    left_out = category in excludes
                    for period, as_of in spans:
                        added = compute(case, as_of)
                        numerator, denominator = added if ratio else (added, 0)
                        if left_out:
                            slot = (name, period)
                            excluded[slot] = excluded.get(slot, 0) + (
                                denominator if ratio else numerator)
                            continue
                        found = sums.get((name, period, key))
                        if found is None:
                            found = sums[(name, period, key)] = [0, 0]
                        found[0] += numerator
                        found[1] += denominator
        self._totals = None
        return self

    def _sums(self, name: str, period: str, group: str | None) -> tuple[int, int]:
        """A figure's sums for one group, or for the whole: the groups' sums added up
        (each case is counted in its group only)."""
        if group is not None or self.group is None:
            return self.sums.get((name, period, group), (0, 0))
        if self._totals is None:
            totals: dict[tuple[str, str], list[int]] = {}
            for (figure, span, _group), (numerator, denominator) in self.sums.items():
                found = totals.setdefault((figure, span), [0, 0])
                found[0] += numerator
                found[1] += denominator
            self._totals = totals
        return self._totals.get((name, period), (0, 0))

    def _periods_of(self, date: str) -> list[tuple[str, str]]:
        """The periods (and their as-of days) a date counts in: the same few hundred days
        recur across thousands of cases, so each is worked out once."""
        found = self._cache.get(date)
        if found is None:
            found = self._cache[date] = [
                (period, self.as_of[period]) for period, (start, end) in self.periods.items()
                if self.alias[period] == period and start <= date <= end
                and date <= self.as_of[period]]
        return found

    def value(self, indicator: Indicator, period: str, group: str | None = None) -> Any:
        numerator, denominator = self._sums(indicator.name, self.alias[period], group)
        return Ratio(numerator, denominator) if indicator.kind == "ratio" else numerator

    def left_out(self, indicator: Indicator, period: str) -> int:
        """What the categories the figure excludes (涉法涉诉) would have added in the
        period."""
        return self.excluded.get((indicator.name, self.alias[period]), 0)

    def row(self, period: str, group: str | None = None) -> dict[str, Any]:
        return {i.name: self.value(i, period, group) for i in self.indicators}
