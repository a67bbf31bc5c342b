"""Sets of sequence numbers kept as sorted, merged, inclusive ranges (pure).

Both ends of the wire need them: central keeps the applied ranges of every gateway epoch (not
only a high-water mark, so a gap filled late by a replay is still applied exactly once), and
the gateway deletes what a selective confirmation lists.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

Range = tuple[int, int]  # inclusive


class RangeSet:
    """Disjoint, non-adjacent inclusive ranges in ascending order."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: Iterable[Range] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for lo, hi in ranges:
            self.add(lo, hi)

    def add(self, lo: int, hi: int | None = None) -> None:
        """Add ``lo..hi`` (inclusive; one number when ``hi`` is None), merging neighbours."""
        hi = lo if hi is None else hi
        if hi < lo:
            raise ValueError(f"empty range {lo}..{hi}")
        # first range that could touch [lo, hi]: its end >= lo - 1
        i = bisect.bisect_left(self._ends, lo - 1)
        j = i
        while j < len(self._starts) and self._starts[j] <= hi + 1:
            lo = min(lo, self._starts[j])
            hi = max(hi, self._ends[j])
            j += 1
        self._starts[i:j] = [lo]
        self._ends[i:j] = [hi]

    def remove(self, lo: int, hi: int | None = None) -> None:
        """Remove ``lo..hi`` (inclusive)."""
        hi = lo if hi is None else hi
        out = RangeSet()
        for a, b in self:
            if b < lo or a > hi:
                out.add(a, b)
                continue
            if a < lo:
                out.add(a, lo - 1)
            if b > hi:
                out.add(hi + 1, b)
        self._starts, self._ends = out._starts, out._ends

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int):
            return False
        i = bisect.bisect_right(self._starts, n) - 1
        return i >= 0 and self._ends[i] >= n

    def __iter__(self) -> Iterator[Range]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        """Number of ranges (not of numbers: see ``count``)."""
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and self.ranges() == other.ranges()

    def __repr__(self) -> str:
        return f"RangeSet({self.ranges()!r})"

    def ranges(self) -> list[Range]:
        return list(self)

    def count(self) -> int:
        return sum(b - a + 1 for a, b in self)

    def first(self) -> int | None:
        return self._starts[0] if self._starts else None

    def last(self) -> int | None:
        return self._ends[-1] if self._ends else None

    def contiguous_from(self, start: int) -> int:
        """Highest n such that every number ``start..n`` is in the set (``start - 1`` if none)."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] >= start:
            return self._ends[i]
        return start - 1

    def missing(self, lo: int, hi: int) -> list[Range]:
        """The ranges of ``lo..hi`` that are not in the set."""
        gaps: list[Range] = []
        cursor = lo
        for a, b in self:
            if b < cursor:
                continue
            if a > hi:
                break
            if a > cursor:
                gaps.append((cursor, min(a - 1, hi)))
            cursor = max(cursor, b + 1)
            if cursor > hi:
                break
        if cursor <= hi:
            gaps.append((cursor, hi))
        return gaps

    def intersection(self, lo: int, hi: int) -> list[Range]:
        return [(max(a, lo), min(b, hi)) for a, b in self if b >= lo and a <= hi]
