"""The live tail: the most recent committed events, kept in memory (pure data structure).

The publisher asks for ``next_batch`` constantly, and while it keeps up it only ever wants
events that were committed moments ago. Serving those from memory saves a query (and a
thread hop) per batch; a publisher that is behind (a backlog after an outage) falls through
to SQLite. The tail knows from which seq on it is complete (``covers_from``): every held
event with a seq at or above it is in the tail, so an answer from the tail is the same as
the database's.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from edge.buffer.records import StoredEvent


def _seq(e: StoredEvent) -> int:
    return e.seq


class LiveTail:
    def __init__(self, capacity: int, next_seq: int) -> None:
        self.capacity = capacity
        self._items: list[StoredEvent] = []
        self._start = 0  # items before this index were trimmed (compacted lazily)
        self.covers_from = next_seq

    def __len__(self) -> int:
        return len(self._items) - self._start

    def reset(self, next_seq: int) -> None:
        """Forget everything: the database changed under the tail (coalesced or dropped)."""
        self._items = []
        self._start = 0
        self.covers_from = next_seq

    def extend(self, events: Iterable[StoredEvent]) -> None:
        """Append newly committed events (their seqs are above everything held)."""
        self._items.extend(events)
        excess = len(self) - self.capacity
        if excess > 0:
            self._start += excess
            self.covers_from = self._items[self._start].seq
        self._compact()

    def _compact(self) -> None:
        if self._start > max(1024, len(self)):
            del self._items[: self._start]
            self._start = 0

    def after(self, after_seq: int, limit: int) -> list[StoredEvent] | None:
        """Events with seq > ``after_seq``, at most ``limit``; None when the tail cannot tell."""
        if after_seq + 1 < self.covers_from:
            return None
        i = bisect.bisect_right(self._items, after_seq, lo=self._start, key=_seq)
        return self._items[i : i + limit]

    def range(self, first: int, last: int) -> list[StoredEvent] | None:
        """Events with ``first <= seq <= last``; None when the tail cannot tell."""
        if first < self.covers_from:
            return None
        i = bisect.bisect_left(self._items, first, lo=self._start, key=_seq)
        j = bisect.bisect_right(self._items, last, lo=i, key=_seq)
        return self._items[i:j]

    def discard(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Remove confirmed events (the database deleted them in the same step).

        ``ranges`` are disjoint; the usual confirmation covers the front of the tail, which
        only moves ``_start``.
        """
        for first, last in sorted(ranges, reverse=True):
            i = bisect.bisect_left(self._items, first, lo=self._start, key=_seq)
            j = bisect.bisect_right(self._items, last, lo=i, key=_seq)
            if i == j:
                continue
            if i == self._start:
                self._start = j
                self._compact()
            else:
                del self._items[i:j]
