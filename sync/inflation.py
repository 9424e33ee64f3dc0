"""Decompression with caps: what one envelope may inflate to.

An envelope's sender may hold a stolen key, so what its payload unpacks to
is bounded however the sender made it: each section under a hard output
cap, and the whole envelope under a ratio cap, so a small file cannot make a
receiver inflate gigabytes. Output is taken from zlib a step at a time and
the caps are checked after each step, so a bomb is refused having cost at
most a cap and one step of memory.
"""

from __future__ import annotations

import zlib

import attrs

from xinfang.core.i18n import N_

from .header import EnvelopeError

LEVEL = 6
#: the most one section may inflate to. A section is one item: an HTTP request or
#: answer, or a bundle's head or one page, and a page carries at most 4 MiB of event
#: bytes (``wire.MAX_PAGE_BYTES``), about 5.6 MiB as base64, with the certificates,
#: released secrets and fork evidence they need; 32 MiB is room for all that, and as
#: much as a receiver ever holds of one item before parsing it
MAX_ITEM = 32 * 1024 * 1024
#: how many times its compressed size an envelope may inflate to, beyond the first
#: RATIO_FLOOR bytes. Genuine items are mostly signatures and keys in base64, which
#: barely compress (measured: 2 to 4 times for pages of cases); a zlib bomb inflates
#: about 1000 times. An item that is nothing but repeated text stays below the floor.
MAX_RATIO = 100
#: inflating this much (over the whole envelope) is harmless whatever the ratio: it
#: is less than one page at its largest, so no genuine page is judged by its ratio
RATIO_FLOOR = 8 * 1024 * 1024
#: compressed bytes fed to zlib at a time, and output taken from it at a time: a
#: cap is overshot by at most STEP bytes
FEED = 64 * 1024
STEP = 1024 * 1024


def compress(data: bytes) -> bytes:
    return zlib.compress(data, LEVEL)


@attrs.define
class Inflation:
    """The running totals of one envelope's inflation, checked against the caps."""

    taken: int = 0
    given: int = 0
    sections: int = 0

    def inflate(self, data: bytes, number: int) -> bytes:
        """Section ``number``'s plaintext, inflated under the caps."""
        inflater, view = zlib.decompressobj(), memoryview(data)
        parts: list[bytes] = []
        size = fed = 0
        tail: bytes | memoryview = b""
        while not inflater.eof:
            if not tail and fed < len(data):
                tail = view[fed:fed + FEED]
                fed += len(tail)
            try:
                out = inflater.decompress(tail, STEP)
            except zlib.error as exc:
                raise EnvelopeError(N_("damaged contents: {reason}"), reason=str(exc)) from None
            tail = inflater.unconsumed_tail
            if not out and not tail and fed >= len(data):
                break
            parts.append(out)
            size += len(out)
            self._check(number, size, fed - len(tail))
        if not inflater.eof or tail or inflater.unused_data or fed < len(data):
            raise EnvelopeError(N_("damaged contents: the compressed data of section {number} is "
                                "cut short or followed by other bytes"), number=number)
        self.taken, self.given, self.sections = (self.taken + len(data), self.given + size,
                                                 self.sections + 1)
        return b"".join(parts)

    def _check(self, number: int, size: int, consumed: int) -> None:
        if size > MAX_ITEM:
            raise EnvelopeError(N_("section {number} expands beyond {limit} bytes: refused before "
                                "it is read, as a compression bomb"), number=number,
                             limit=MAX_ITEM)
        given, taken = self.given + size, self.taken + consumed
        if given > RATIO_FLOOR and given > MAX_RATIO * taken:
            raise EnvelopeError(N_("the contents expand {ratio} times over ({size} bytes from "
                                "{compressed}), more than the {limit} times genuine contents "
                                "can: refused before they are read, as a compression bomb"),
                             ratio=given // max(taken, 1), size=given, compressed=taken,
                             limit=MAX_RATIO)
