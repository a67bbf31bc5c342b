"""A calendar compiled for fast "when will this much planned time have passed" questions (issue 13).

The projection asks, for every operation, "``work`` planned seconds after ``t``, what time is
it?" and "when is the first planned instant at or after ``t``?". Asking the ``Calendar`` each
time would cost a calendar walk (dates, time zones) per question; a ``Timetable`` computes the
planned spans once per projection, a week at a time as far as questions reach (up to a horizon),
with the cumulative planned time before each span, and answers each question with two binary
searches: O(log spans).

``Overtime`` adds spans (overtime, an extra Saturday) to a calendar; the projection uses it like
any calendar (issue 13: "overtime can be added to the calendar").
"""

from __future__ import annotations

import bisect
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import date, tzinfo

from central.progress.shifts import Calendar, Span

WEEK = 7 * 86_400.0
INF = math.inf


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


class Overtime:
    """``base`` plus extra planned spans (overtime): a ``Calendar`` itself."""

    def __init__(self, base: Calendar, extra: Iterable[Span]) -> None:
        self.base = base
        self.extra = _merge(extra)

    def planned(self, start: float, end: float) -> list[Span]:
        more = [(max(s, start), min(e, end)) for s, e in self.extra if e > start and s < end]
        return _merge([*self.base.planned(start, end), *more])

    def is_planned(self, ts: float) -> bool:
        return self.base.is_planned(ts) or any(s <= ts < e for s, e in self.extra)

    def production_day(self, ts: float) -> date:
        return self.base.production_day(ts)

    @property
    def tz(self) -> tzinfo:
        return self.base.tz


class Timetable:
    """Planned spans of one calendar from ``origin`` on, extended a week at a time up to ``limit``.

    Not thread-safe (it grows as questions reach further); make one per projection.
    """

    def __init__(self, calendar: Calendar, origin: float, limit: float) -> None:
        self.calendar = calendar
        self.origin = origin
        self.limit = limit
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cum: list[float] = []  # planned seconds from origin to the start of span i
        self.cum_end: list[float] = []  # ... to its end
        self.until = origin  # spans are known up to here

    def _extend(self) -> bool:
        """Add the next week's spans; False when the limit is reached."""
        if self.until >= self.limit:
            return False
        hi = min(self.until + WEEK, self.limit)
        for s, e in self.calendar.planned(self.until, hi):
            if self.ends and s <= self.ends[-1]:  # continues the previous span (cut at a week's edge)
                self.ends[-1] = max(self.ends[-1], e)
                self.cum_end[-1] = self.cum[-1] + (self.ends[-1] - self.starts[-1])
                continue
            total = self.cum_end[-1] if self.cum_end else 0.0
            self.starts.append(s)
            self.ends.append(e)
            self.cum.append(total)
            self.cum_end.append(total + (e - s))
        self.until = hi
        return True

    def _span_after(self, t: float) -> int:
        """Index of the first span ending after ``t`` (extending as needed); len(spans) if none."""
        i = bisect.bisect_right(self.ends, t)
        while i == len(self.ends) and self._extend():
            i = bisect.bisect_right(self.ends, t)
        return i

    def next_planned(self, t: float) -> float:
        """The first planned instant at or after ``t`` (INF beyond the horizon)."""
        i = self._span_after(t)
        if i == len(self.ends):
            return INF
        return max(t, self.starts[i])

    def advance(self, t: float, work: float) -> float:
        """The time at which ``work`` planned seconds after ``t`` have passed (INF beyond the horizon)."""
        if work <= 0:
            return t
        if t == INF:
            return INF
        ends = self.ends
        i = bisect_right(ends, t)  # ``_span_after``, inlined: the projection asks this per transfer
        while i == len(ends) and self._extend():
            i = bisect_right(ends, t)
        if i == len(ends):
            return INF
        starts, cum, cum_end = self.starts, self.cum, self.cum_end
        target = cum[i] + max(0.0, t - starts[i]) + work
        j = bisect_left(cum_end, target, i)
        while j == len(cum_end) and self._extend():
            j = bisect_left(cum_end, target, i)
        if j == len(cum_end):
            return INF
        return starts[j] + (target - cum[j])

    def run(self, begin: float, setup: float, work: float) -> tuple[float, float, float]:
        """``(start, setup end, finish)`` of ``setup`` then ``work`` planned seconds from ``begin``: the
        projection's question, answered with at most three binary searches (INF beyond the horizon).

        ``_at`` is inlined for the common case (the answer within the spans known so far): this runs
        for every operation of every projection."""
        ends = self.ends
        i = bisect_right(ends, begin)
        while i == len(ends) and self._extend():
            i = bisect_right(ends, begin)
        if i == len(ends) or begin == INF:
            return INF, INF, INF
        starts, cum, cum_end = self.starts, self.cum, self.cum_end
        lo = starts[i]
        if begin > lo:
            start, position = begin, cum[i] + (begin - lo)
        else:
            start, position = lo, cum[i]
        if setup > 0:
            target = position + setup
            j = bisect_left(cum_end, target, i)
            setup_end = self._at(target, i) if j == len(cum_end) else starts[j] + (target - cum[j])
        else:
            setup_end = start
        if work > 0:
            target = position + setup + work
            j = bisect_left(cum_end, target, i)
            finish = self._at(target, i) if j == len(cum_end) else starts[j] + (target - cum[j])
        else:
            finish = setup_end
        return start, setup_end, finish

    def _at(self, target: float, lo: int) -> float:
        """The time at which the position reaches ``target`` (searching from span ``lo``)."""
        cum_end = self.cum_end
        j = bisect.bisect_left(cum_end, target, lo=lo)
        while j == len(cum_end) and self._extend():
            j = bisect.bisect_left(cum_end, target, lo=lo)
        if j == len(cum_end):
            return INF
        return self.starts[j] + (target - self.cum[j])

    def planned_between(self, a: float, b: float) -> float:
        """Planned seconds in ``[a, b)`` (within the horizon)."""
        if b <= a:
            return 0.0
        return self.position(b) - self.position(a)

    def at_position(self, target: float) -> float:
        """The time at which ``target`` planned seconds from the origin have passed (INF beyond the horizon)."""
        if target <= 0:
            return self.next_planned(self.origin)
        return self.advance(self.origin, target)

    def position(self, t: float) -> float:
        """Planned seconds from the origin to ``t``."""
        if t <= self.origin:
            return 0.0
        i = self._span_after(t)
        if i == len(self.ends):
            return self.cum_end[-1] if self.cum_end else 0.0
        return self.cum[i] + max(0.0, t - self.starts[i])
