"""OEE per machine, operation, line and window, with its time-loss cascade (docs/progress.md).

Over **planned production time only** (the shift calendar's planned time; never overtime)::

    run time        = running + micro-stop time            (docs/central.md: micro-stops are speed losses)
    availability    = run time / planned time
    performance     = sum(ideal cycle time x (good + scrap)) / run time
    quality         = good / (good + scrap)
    OEE             = availability x performance x quality = sum(ideal cycle time x good) / planned time

The cascade (seconds; each line is the one above minus a loss)::

    planned time
      - availability losses: fault, setup, idle, maintenance, offline, no data  = run time
      - performance loss: micro-stops and cycles slower than ideal              = net run time
      - quality loss: ideal time of the scrapped parts                          = fully productive time

Parts are the count records whose end ``at`` lies in planned time of the window (``planned_parts``),
each with the ideal cycle time of the operation it was attributed to (else the machine's). Parts
without any ideal cycle time cannot be weighed: they count for quality, are reported in
``unweighed``, and performance and OEE are then left out (None) rather than understated. A
performance above 1 is reported as it is: the ideal cycle time is set too slow. Pure; O(n).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from central.progress.counts import CountRecord
from central.progress.downtime import DowntimeReport
from central.progress.shifts import Span


@dataclass(frozen=True, slots=True)
class PartsAt:
    """Parts made at one ideal cycle time (an operation's, or the machine's)."""

    ideal_cycle_time: float | None
    good: int
    scrap: int


@dataclass(frozen=True, slots=True)
class Oee:
    """OEE figures and the loss cascade for one machine (or a sum of machines) and window."""

    subject: str | None
    start: float
    end: float
    planned: float
    losses: dict[str, float] = field(default_factory=dict)  # availability losses by category, seconds
    run_time: float = 0.0
    micro_stop_time: float = 0.0
    ideal_time: float = 0.0  # net run time: sum(ideal cycle time x parts)
    quality_loss: float = 0.0  # ideal time of scrap
    good: int = 0
    scrap: int = 0
    unweighed: int = 0  # parts without an ideal cycle time

    @property
    def availability_loss(self) -> float:
        return sum(self.losses.values())

    @property
    def performance_loss(self) -> float:
        return self.run_time - self.ideal_time

    @property
    def fully_productive(self) -> float:
        return self.ideal_time - self.quality_loss

    @property
    def availability(self) -> float | None:
        return self.run_time / self.planned if self.planned > 0 else None

    @property
    def performance(self) -> float | None:
        if self.run_time <= 0 or self.unweighed:
            return None
        return self.ideal_time / self.run_time

    @property
    def quality(self) -> float | None:
        total = self.good + self.scrap
        return self.good / total if total > 0 else None

    @property
    def oee(self) -> float | None:
        a, p, q = self.availability, self.performance, self.quality
        if a is None or p is None:
            return None
        return a * p * (q if q is not None else 1.0)

    def as_dict(self) -> dict[str, object]:
        """JSON-able figures (ratios rounded to 4 places, seconds to 0.1)."""

        def r(x: float | None, n: int) -> float | None:
            return None if x is None else round(x, n)

        return {
            "subject": self.subject, "start": self.start, "end": self.end, "planned": r(self.planned, 1),
            "availability": r(self.availability, 4), "performance": r(self.performance, 4),
            "quality": r(self.quality, 4), "oee": r(self.oee, 4),
            "losses": {k: r(v, 1) for k, v in self.losses.items()}, "run_time": r(self.run_time, 1),
            "micro_stop_time": r(self.micro_stop_time, 1), "performance_loss": r(self.performance_loss, 1),
            "net_run_time": r(self.ideal_time, 1), "quality_loss": r(self.quality_loss, 1),
            "fully_productive": r(self.fully_productive, 1), "good": self.good, "scrap": self.scrap,
            "unweighed": self.unweighed,
        }


def oee(report: DowntimeReport, parts: Iterable[PartsAt], *, subject: str | None = None) -> Oee:
    """OEE of one downtime report (one machine, one window or one operation's segment) and its parts."""
    losses = {"fault": report.fault_time, "setup": report.setup, "idle": report.idle,
              "maintenance": report.maintenance, "offline": report.offline, "no_data": report.no_data}
    ideal = quality_loss = 0.0
    good = scrap = unweighed = 0
    for p in parts:
        good += p.good
        scrap += p.scrap
        if p.ideal_cycle_time is None:
            unweighed += p.good + p.scrap
            continue
        ideal += p.ideal_cycle_time * (p.good + p.scrap)
        quality_loss += p.ideal_cycle_time * p.scrap
    return Oee(subject if subject is not None else report.machine_id, report.start, report.end, report.planned,
               losses, report.running + report.micro_stop_time, report.micro_stop_time, ideal, quality_loss, good,
               scrap, unweighed)


def combine(parts: Iterable[Oee], *, subject: str | None = None) -> Oee:
    """The sum of several machines' (a line's) or segments' (an operation's) figures: time-weighted."""
    items = list(parts)
    losses: dict[str, float] = {}
    for item in items:
        for k, v in item.losses.items():
            losses[k] = losses.get(k, 0.0) + v
    return Oee(
        subject, min((i.start for i in items), default=0.0), max((i.end for i in items), default=0.0),
        sum(i.planned for i in items), losses, sum(i.run_time for i in items),
        sum(i.micro_stop_time for i in items), sum(i.ideal_time for i in items),
        sum(i.quality_loss for i in items), sum(i.good for i in items), sum(i.scrap for i in items),
        sum(i.unweighed for i in items),
    )


def planned_parts(
    records: Iterable[CountRecord], planned: list[Span], ideal_cycle_time: Callable[[CountRecord], float | None]
) -> list[PartsAt]:
    """Parts of the records ending in planned time (``planned``: sorted spans, ``Calendar.planned``),
    each weighed by ``ideal_cycle_time(record)`` (its operation's, else the machine's)."""
    starts = [s for s, _e in planned]
    out: list[PartsAt] = []
    for rec in records:
        i = bisect.bisect_right(starts, rec.at) - 1
        if i >= 0 and rec.at < planned[i][1]:
            out.append(PartsAt(ideal_cycle_time(rec), rec.good, rec.scrap))
    return out
