"""Hybrid logical clock.

Events are ordered by (wall milliseconds, counter), then by author, epoch and
sequence. The clock never runs backwards on one node, stays close to real
time, and moves past any clock it has seen in an event, so an event caused by
another always sorts after it even when the two machines' clocks disagree.

Within bounds. An event's timestamp is whatever its author signed, and a
far-future one stays valid (validity never depends on the receiver's
clock); but a node follows another's clock at most ``MAX_DRIFT_MS`` past its
own wall clock (``observe``), so one wrong or forged timestamp cannot drag
every node's writers towards the end of the integer range. Nor may a
timestamp leave no room after it: ``MAX_WALL_MS`` keeps the next stamp (one
millisecond later at most) within the canonical encoding's integers.
"""

from __future__ import annotations

import time

import attrs

MAX_COUNTER = 2**31 - 1
#: the latest wall time an event may carry: its successor, 1 ms later at most, must
#: still be an integer of the canonical encoding (at most 2**53 - 1)
MAX_WALL_MS = 2**53 - 2
#: how far past its own wall clock a node lets a peer's timestamp carry it: a day
#: covers office machines whose clocks are hours off (a wrong time zone, no time
#: server), while a timestamp further ahead is a broken clock or a forgery
MAX_DRIFT_MS = 24 * 60 * 60 * 1000


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
    #: the wall clock as last read: on open (``read_wall``) and at each local stamp
    wall_read: int = 0

    def tick(self) -> Timestamp:
        """A timestamp for a new local event, later than every one seen."""
        physical = self.wall_read = self.now_ms()
        if physical > self.last.wall_ms:
            self.last = Timestamp(physical, 0)
        elif self.last.counter < MAX_COUNTER:
            self.last = Timestamp(self.last.wall_ms, self.last.counter + 1)
        else:  # the counter is full: borrow the next millisecond
            self.last = Timestamp(self.last.wall_ms + 1, 0)
        return self.last

    def read_wall(self) -> int:
        """Read the wall clock, as ``observe`` will compare with it."""
        self.wall_read = self.now_ms()
        return self.wall_read

    def observe(self, seen: Timestamp) -> None:
        """Move past a timestamp carried by an event from elsewhere, unless it lies
        more than ``MAX_DRIFT_MS`` ahead of this machine's clock.

        Such a timestamp is kept in its event and orders it, but this node's
        own events do not follow it: an effect of it written here may sort
        before it, which the fold settles like any concurrent step. The wall
        clock is the one last read (on open, at each local stamp), read again
        only for a timestamp past the drift from that reading, so that a
        server which never stamps still follows honest clocks days later,
        and admitting an ordinary event never reads the time.
        """
        last = self.last  # compared as tuples: attrs' ordering is slow on this hot path
        if (seen.wall_ms, seen.counter) <= (last.wall_ms, last.counter):
            return
        if seen.wall_ms > self.wall_read + MAX_DRIFT_MS and (
                seen.wall_ms > self.read_wall() + MAX_DRIFT_MS):
            return
        self.last = seen

    def restore(self, own: Timestamp) -> None:
        """Move past a timestamp this node itself stamped (its log, on open), however
        far from its wall clock: its own events must keep sorting in the order it
        wrote them, even after its machine's clock was set back."""
        if own > self.last:
            self.last = own
