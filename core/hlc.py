"""Hybrid logical clock.

Events are ordered by (wall milliseconds, counter), then by author, epoch and
sequence. The clock never runs backwards on one node, stays close to real
time, and moves past any clock it has seen in an event, so an event caused by
another always sorts after it even when the two machines' clocks disagree.
"""

from __future__ import annotations

import time

import attrs

MAX_COUNTER = 2**31 - 1


@attrs.frozen(order=True)
class Timestamp:
    wall_ms: int
    counter: int = 0

    def to_list(self) -> list[int]:
        return [self.wall_ms, self.counter]

    @classmethod
    def from_list(cls, value: list[int]) -> "Timestamp":
        return cls(int(value[0]), int(value[1]))


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define
class HybridClock:
    """The node's clock; ``last`` is restored from the log on open."""

    last: Timestamp = Timestamp(0, 0)
    now_ms: object = wall_clock_ms

    def tick(self) -> Timestamp:
        """A timestamp for a new local event, later than every one seen."""
        physical = self.now_ms()
        if physical > self.last.wall_ms:
            self.last = Timestamp(physical, 0)
        elif self.last.counter < MAX_COUNTER:
            self.last = Timestamp(self.last.wall_ms, self.last.counter + 1)
        else:  # the counter is full: borrow the next millisecond
            self.last = Timestamp(self.last.wall_ms + 1, 0)
        return self.last

    def observe(self, seen: Timestamp) -> None:
        """Move past a timestamp carried by an event from elsewhere."""
        last = self.last  # compared as tuples: attrs' ordering is slow on this hot path
        if (seen.wall_ms, seen.counter) > (last.wall_ms, last.counter):
            self.last = seen
