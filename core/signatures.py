"""Checking the signatures of a page of events on every core.

Every arriving event's signature is checked (one per run of a chain would
not be sound: an event's id hashes its bytes, not its signature, so the hash
links vouch for the bytes of a run but not for the signatures a receiver
stores and forwards). The Ed25519 check is most of a merge's cost besides
the fold, and ``cryptography`` releases the GIL while it runs, so the
signatures of a page are checked in threads, one share per core, before its
events are admitted one by one. The answer is the one ``Event.signature_valid``
gives for each event; only when it is computed changes.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Sequence

from .event import Event

#: below this many events, threads cost more than they save
AT_LEAST = 32
#: threads at most, whatever the machine has
MOST = 8

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_lock = threading.Lock()


def workers() -> int:
    return max(1, min(MOST, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


def valid(events: Sequence[Event]) -> frozenset[tuple[bytes, bytes]]:
    """The (bytes, signature) of those ``events`` whose signatures verify.

    Keyed by both, not by event id: two events with one id may carry different
    signatures, and only the one that verifies is vouched for.
    """
    share = workers()
    if share == 1 or len(events) < AT_LEAST:
        return _valid(events)
    size = -(-len(events) // share)
    chunks = [events[start:start + size] for start in range(0, len(events), size)]
    futures = [_executor().submit(_valid, chunk) for chunk in chunks[1:]]
    found = set(_valid(chunks[0]))  # this thread takes a share too
    for future in futures:
        found |= future.result()
    return frozenset(found)


def _valid(events: Sequence[Event]) -> frozenset[tuple[bytes, bytes]]:
    return frozenset((e.raw, e.signature) for e in events if e.signature_valid())


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers() - 1, thread_name_prefix="xinfang-verify")
        return _pool
