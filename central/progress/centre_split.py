"""How a work-centre operation's remaining parts split over the machines that make it (issue 13).

Each machine starts after its own setup, at its own rate, in its own planned time; they finish
together. Apart from the list scheduler (``projection.py``) because it is its own piece of arithmetic:
exact on one shared calendar (``fill``), a binary search to ``SPLIT_PRECISION`` otherwise. Pure.
"""

from __future__ import annotations

from typing import NamedTuple

from central.progress.outlook import INF, Binding
from central.progress.timetable import Timetable

SPLIT_PRECISION = 60.0  # seconds: a work-centre split's finish is found to within a minute (never early)


class Row(NamedTuple):
    """One machine's part in scheduling an operation."""

    machine: str
    begin: float
    binding: Binding
    wait: float
    start: float
    setup_end: float
    rate: float  # good parts per planned second
    tt: Timetable
    setup: float


def split(rows: list[Row], remaining: int) -> tuple[float, list[Row]]:
    """The finish time when the machines of ``rows`` share ``remaining`` parts, each from its own
    setup end at its own rate (binary search to ``SPLIT_PRECISION``), and the machines that take part."""
    usable = [r for r in rows if r.setup_end < INF]
    if not usable:
        return INF, rows[:1]
    lo = min(r.setup_end for r in usable)
    if remaining <= 0:
        return lo, [min(usable, key=lambda r: r.setup_end)]
    tt = usable[0].tt
    if all(r.tt is tt for r in usable):
        return fill(tt, usable, remaining)
    hi = min(r.tt.advance(r.setup_end, remaining / r.rate) for r in usable)
    if hi == INF:
        return INF, usable[:1]
    for _ in range(64):
        if hi - lo < SPLIT_PRECISION:
            break
        mid = (lo + hi) / 2
        made = sum(r.tt.planned_between(r.setup_end, mid) * r.rate for r in usable if r.setup_end < mid)
        if made >= remaining:
            hi = mid
        else:
            lo = mid
    return hi, [r for r in usable if r.setup_end < hi]


def fill(tt: Timetable, rows: list[Row], remaining: int) -> tuple[float, list[Row]]:
    """``split`` for machines on one calendar, exactly: on the planned-time axis P, machine i makes
    ``rate_i x (P(T) - P_i)`` parts by T, so with the k earliest machines taking part
    ``P(T) = (remaining + sum rate_i P_i) / sum rate_i``; add machines while T passes the next one's start."""
    rows = sorted(rows, key=lambda r: r.setup_end)
    starts = [tt.position(r.setup_end) for r in rows]
    total_rate = weighted = 0.0
    used = 0
    target = INF
    for i, r in enumerate(rows):
        if used and target <= starts[i]:
            break
        total_rate += r.rate
        weighted += r.rate * starts[i]
        used = i + 1
        target = (remaining + weighted) / total_rate
    return tt.at_position(target), rows[:used]
