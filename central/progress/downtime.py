"""Time by category for one machine and window (docs/central.md, "Downtime").

Only planned time (inside shifts, outside breaks) is split into categories: running, and
downtime by fault (per fault code), setup, idle, maintenance and offline (communication with
the PLC lost); planned time no interval covers is ``no_data``. Time outside shifts is
``unplanned`` and never downtime. So, for every report::

    running + sum(fault) + setup + idle + maintenance + offline + micro_stop_time + no_data == planned
    planned + unplanned == end - start

A **stop** is a maximal run of contiguous idle and fault intervals (any other state, or a hole
in the history, ends it). A finished stop shorter than the machine's threshold is a
**micro-stop**: its planned time goes to ``micro_stop_time`` instead of idle or fault. Inside a
longer stop, each run of contiguous fault intervals is one **failure** (what MTBF counts). A
stop (micro or failure) is counted in the window that contains its first planned instant, so
that any partition of time into windows counts each exactly once; a stop without planned time
or without duration is not counted.

Give the intervals overlapping the window plus at least ``threshold`` seconds on either side
(or more), with the open interval as ``OpenInterval.until(now)``: a stop is measured whole,
not clipped. O(n + p) for n intervals and p planned spans, plus one calendar look-up per stop
crossing a window edge.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from central.progress.machines import DEFAULT_MICRO_STOP
from central.progress.shifts import Calendar, Span
from central.progress.timeline import StateInterval, check_ordered
from plantpulse.protocol.models import MachineState

_STOP_STATES = frozenset({MachineState.IDLE, MachineState.FAULT})


class StopKind(enum.StrEnum):
    MICRO = "micro"  # a short idle/fault stop, counted apart
    FAILURE = "failure"  # a run of fault intervals inside a stop that is not a micro-stop


@dataclass(frozen=True, slots=True)
class Stop:
    kind: StopKind
    start: float
    end: float
    first: int  # index of its first interval in the list it was found in
    last: int  # index of its last interval (inclusive)


def find_stops(intervals: Sequence[StateInterval], threshold: float = DEFAULT_MICRO_STOP) -> list[Stop]:
    """Micro-stops and failures among sorted intervals of one machine, in order. O(n)."""
    stops: list[Stop] = []
    n, i = len(intervals), 0
    while i < n:
        if intervals[i].state not in _STOP_STATES:
            i += 1
            continue
        j = i
        while j + 1 < n and intervals[j + 1].state in _STOP_STATES and intervals[j + 1].start == intervals[j].end:
            j += 1
        start, end = intervals[i].start, intervals[j].end
        if threshold > 0 and not intervals[j].ongoing and end - start < threshold:
            stops.append(Stop(StopKind.MICRO, start, end, i, j))
        else:
            k = i
            while k <= j:
                if intervals[k].state != MachineState.FAULT:
                    k += 1
                    continue
                m = k
                while m + 1 <= j and intervals[m + 1].state == MachineState.FAULT:
                    m += 1
                stops.append(Stop(StopKind.FAILURE, intervals[k].start, intervals[m].end, k, m))
                k = m + 1
        i = j + 1
    return stops


@dataclass(frozen=True, slots=True)
class DowntimeReport:
    """Seconds by category in ``[start, end)``; every figure except ``unplanned*`` is planned time."""

    machine_id: str | None
    start: float
    end: float
    planned: float = 0.0
    unplanned: float = 0.0  # outside shifts and in breaks: never downtime
    unplanned_running: float = 0.0  # of which the machine ran (overtime)
    running: float = 0.0
    fault: dict[int | None, float] = field(default_factory=dict)  # per fault code (None: no code)
    setup: float = 0.0
    idle: float = 0.0
    maintenance: float = 0.0
    offline: float = 0.0  # communication with the PLC lost
    no_data: float = 0.0  # planned time no interval covers
    micro_stops: int = 0
    micro_stop_time: float = 0.0
    failures: int = 0
    uncertain: float = 0.0  # planned time in uncertain intervals (overlaps the categories above)

    @property
    def fault_time(self) -> float:
        return sum(self.fault.values())

    @property
    def downtime(self) -> float:
        """Planned time stopped for a reason: fault, setup, idle, maintenance, offline."""
        return self.fault_time + self.setup + self.idle + self.maintenance + self.offline


class _Planned:
    """The window's planned spans with a cursor for a sorted sweep, and first-instant look-ups."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans
        self.ends = [e for _s, e in spans]
        self.cursor = 0

    def overlap(self, a: float, b: float) -> float:
        """Planned seconds in ``[a, b)``; calls must come with non-decreasing ``a``."""
        spans, k = self.spans, self.cursor
        while k < len(spans) and spans[k][1] <= a:
            k += 1
        self.cursor = k
        total = 0.0
        while k < len(spans) and spans[k][0] < b:
            total += min(b, spans[k][1]) - max(a, spans[k][0])
            k += 1
        return total

    def first_instant(self, a: float, b: float) -> float | None:
        k = bisect.bisect_right(self.ends, a)
        if k < len(self.spans) and self.spans[k][0] < b:
            return max(a, self.spans[k][0])
        return None


def downtime(
    intervals: Iterable[StateInterval],
    start: float,
    end: float,
    *,
    calendar: Calendar,
    micro_stop_threshold: float = DEFAULT_MICRO_STOP,
    machine_id: str | None = None,
) -> DowntimeReport:
    """Time by category for one machine's sorted, non-overlapping intervals in ``[start, end)``."""
    if end < start:
        raise ValueError(f"window ends ({end}) before it starts ({start})")
    ivs = list(intervals)
    check_ordered(ivs)
    if machine_id is None and ivs:
        machine_id = ivs[0].machine_id
    planned = _Planned(calendar.planned(start, end))
    planned_total = sum(e - s for s, e in planned.spans)
    stops = find_stops(ivs, micro_stop_threshold)
    micro = bytearray(len(ivs))
    for stop in stops:
        if stop.kind is StopKind.MICRO:
            micro[stop.first : stop.last + 1] = b"\x01" * (stop.last - stop.first + 1)

    by_state = dict.fromkeys(MachineState, 0.0)
    fault: dict[int | None, float] = {}
    covered = micro_time = uncertain = unplanned_running = 0.0
    for i, iv in enumerate(ivs):
        a, b = max(iv.start, start), min(iv.end, end)
        if b <= a:
            continue
        p = planned.overlap(a, b)
        if iv.state is MachineState.RUNNING:
            unplanned_running += (b - a) - p
        if p <= 0:
            continue
        covered += p
        if iv.uncertain:
            uncertain += p
        if micro[i]:
            micro_time += p
        elif iv.state is MachineState.FAULT:
            fault[iv.fault_code] = fault.get(iv.fault_code, 0.0) + p
        else:
            by_state[iv.state] += p

    counted = {StopKind.MICRO: 0, StopKind.FAILURE: 0}
    for stop in stops:
        if stop.end <= stop.start or stop.end <= start or stop.start >= end:
            continue
        if start <= stop.start and stop.end <= end:
            first = planned.first_instant(stop.start, stop.end)
        else:
            spans = calendar.planned(stop.start, stop.end)
            first = spans[0][0] if spans else None
        if first is not None and start <= first < end:
            counted[stop.kind] += 1

    return DowntimeReport(
        machine_id=machine_id, start=start, end=end,
        planned=planned_total, unplanned=(end - start) - planned_total, unplanned_running=unplanned_running,
        running=by_state[MachineState.RUNNING], fault=fault, setup=by_state[MachineState.SETUP],
        idle=by_state[MachineState.IDLE], maintenance=by_state[MachineState.MAINTENANCE],
        offline=by_state[MachineState.OFFLINE], no_data=max(0.0, planned_total - covered),
        micro_stops=counted[StopKind.MICRO], micro_stop_time=micro_time, failures=counted[StopKind.FAILURE],
        uncertain=uncertain,
    )
