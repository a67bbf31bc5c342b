"""A machine's production day for its page (``/machines/{id}``, docs/pages.md): the day's window and
its downtime as a Pareto of causes.

The **day** is the production day (``Calendar.production_day``) around ``now``: from that date's
midnight in the line's timezone to the next midnight, so a night shift's hours after midnight still
belong to the day its shift started. Figures are computed over ``[start, now)``.

A **cause** is one downtime category, faults split by fault code: ``fault`` (per code), ``setup``,
``idle``, ``maintenance``, ``offline`` and ``micro_stop`` (short idle/fault stops, counted apart,
docs/central.md). Their seconds are the downtime report's planned seconds, so the Pareto adds up to
the report's downtime plus micro-stop time. Idle time that operators explained with a stop reason
(central/progress/stops.py: material, no operator, ...) is its own cause, category ``reason``, taken
out of ``idle``. Planned time without data (``no_data``: before the
first event, a gateway's history not yet delivered) is not a cause and stays out of it. ``stops`` counts the
maximal runs of intervals in that cause that touch the window (a run inside a micro-stop counts as a
micro-stop only). Causes are sorted by seconds, largest first (then by name, so the order is
stable), with each one's share and the running cumulative share: the classic Pareto chart. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from central.progress.downtime import DowntimeReport, StopKind, find_stops
from central.progress.shifts import Calendar
from central.progress.timeline import StateInterval
from plantpulse.protocol.models import MachineState

MIN_SECONDS = 0.5  # a cause shorter than this is rounding between two clocks (a reason given "200 s ago"), not a cause
_CATEGORIES = (MachineState.SETUP, MachineState.IDLE, MachineState.MAINTENANCE, MachineState.OFFLINE)


@dataclass(frozen=True, slots=True)
class DayWindow:
    day: date
    start: float  # the day's midnight (line's timezone)
    end: float  # the next midnight


@dataclass(frozen=True, slots=True)
class Cause:
    category: str  # fault, setup, idle, maintenance, offline, micro_stop, reason
    code: int | None  # the fault code (faults only; None: a fault without a code)
    seconds: float
    stops: int
    share: float  # of the sum over every cause
    cumulative: float  # share of this cause and every larger one
    reason: str | None = None  # the stop reason (category ``reason``)


def day_window(calendar: Calendar, now: float) -> DayWindow:
    """The production day around ``now``: midnight to midnight in the calendar's timezone."""
    day = calendar.production_day(now)
    tz = calendar.tz
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return DayWindow(day, start.timestamp(), end.timestamp())


CauseKey = tuple[str, int | None]


def _stops(intervals: Sequence[StateInterval], start: float, end: float, threshold: float) -> dict[CauseKey, int]:
    micro: set[int] = set()
    for stop in find_stops(intervals, threshold):
        if stop.kind is StopKind.MICRO:
            micro.update(range(stop.first, stop.last + 1))
    runs: dict[CauseKey, int] = {}
    previous: CauseKey | None = None
    previous_end: float | None = None
    for i, iv in enumerate(intervals):
        if i in micro or iv.end <= start or iv.start >= end:
            previous = None
            continue
        key = (str(iv.state), iv.fault_code if iv.state is MachineState.FAULT else None)
        if key != previous or previous_end != iv.start:
            runs[key] = runs.get(key, 0) + 1
        previous, previous_end = key, iv.end
    return runs


def causes(report: DowntimeReport, intervals: Sequence[StateInterval], *, micro_stop_threshold: float,
           explained: Mapping[str, float] | None = None) -> list[Cause]:
    """The report's downtime by cause, largest first, with shares (``intervals``: sorted, one machine;
    ``explained``: idle seconds per stop reason, ``stops.explain_idle``)."""
    runs = _stops(intervals, report.start, report.end, micro_stop_threshold)
    raw: list[tuple[str, int | None, str | None, float, int]] = [
        ("fault", code, None, seconds, runs.get(("fault", code), 0)) for code, seconds in report.fault.items()
    ]
    idle_left = report.idle
    for given, seconds in sorted((explained or {}).items()):
        moved = min(seconds, idle_left)
        idle_left -= moved
        raw.append(("reason", None, given, moved, 0))
    for state in _CATEGORIES:
        seconds = idle_left if state is MachineState.IDLE else getattr(report, str(state))
        raw.append((str(state), None, None, seconds, runs.get((str(state), None), 0)))
    raw.append(("micro_stop", None, None, report.micro_stop_time, report.micro_stops))
    raw = [r for r in raw if r[3] >= MIN_SECONDS]
    raw.sort(key=lambda r: (-r[3], r[0], -1 if r[1] is None else r[1], r[2] or ""))
    total = sum(r[3] for r in raw)
    out: list[Cause] = []
    running = 0.0
    for category, code, reason, seconds, stops in raw:
        running += seconds
        out.append(Cause(category, code, seconds, stops, seconds / total, running / total, reason))
    return out
