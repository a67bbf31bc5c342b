"""Good and scrap per machine, job and window, from count deltas (docs/central.md, "Counts").

A count event carries the parts made in ``start..ts`` (edge time). It is attributed whole to
the window that contains its end ``ts`` (after the clock rule): the edge read the counter then,
the parts certainly exist then, and every event lands in exactly one window of any partition
of time, so window totals add up to the machine's total exactly. Prorating over
``start..ts`` would invent fractional parts; events come at least every count interval (20 s
by default), which bounds how far a part can be attributed from when it was made.

Counter anomalies the edge detected are never silent: ``reset`` (counters restarted),
``possibly_lost`` (parts before a reset may be missing) and ``rebased`` (a counter jump that was
not counted) are each counted per window. Central adds ``implausible``: more parts than the
machine's ideal cycle time allows in the interval (``plausible``); such counts are applied, never
dropped (a multi-cavity tool or an unconfigured cycle time makes any cap a guess), and flagged.
Pure; O(n) per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from central.progress.clock import DEFAULT_RULE, Clamp, ClockRule, corrected, to_central
from plantpulse.protocol.models import CountEvent


@dataclass(frozen=True, slots=True)
class CountRecord:
    """A count event on central's time axis (what the store keeps and windows are cut from)."""

    machine_id: str
    start: float
    at: float  # end of the interval: the window containing it gets the parts
    good: int
    scrap: int
    job: str | None = None
    reset: bool = False
    possibly_lost: bool = False
    rebased: bool = False
    clamp: Clamp | None = None
    implausible: bool = False  # more parts than the ideal cycle time allows (applied anyway)
    job_from: str | None = None  # the interval spans a job change from this job to ``job``


def place_count(
    event: CountEvent, *, received_at: float, skew: float | None, rule: ClockRule = DEFAULT_RULE,
    implausible: bool = False,
) -> CountRecord:
    """Apply the clock rule (skew, no future) to a count event; ``start`` never after ``at``."""
    at, clamp = to_central(event.ts, received_at=received_at, skew=skew, rule=rule)
    start = min(corrected(event.start, skew, rule), at)
    return CountRecord(
        event.machine_id, start, at, event.good, event.scrap, event.job, event.reset, event.possibly_lost,
        event.rebased, clamp, implausible, event.job_from,
    )


def plausible(parts: int, seconds: float, ideal_cycle_time: float | None, factor: float) -> bool:
    """At most ``factor`` x (the cycles that fit in ``seconds``, plus one) parts; anything without a cycle time.

    The plus one is the part finished at the interval's start edge; ``factor`` covers multi-cavity
    tools and a cycle time set a little too slow. docs/central.md, "Counts", states the rule.
    """
    if ideal_cycle_time is None or ideal_cycle_time <= 0:
        return True
    return parts <= factor * (max(seconds, 0.0) / ideal_cycle_time + 1.0)


@dataclass(slots=True)
class Parts:
    good: int = 0
    scrap: int = 0

    @property
    def total(self) -> int:
        return self.good + self.scrap


@dataclass(slots=True)
class CountSummary:
    """Parts whose count interval ends in ``[start, end)``, with the anomaly counters."""

    machine_id: str | None
    start: float
    end: float
    good: int = 0
    scrap: int = 0
    by_job: dict[str | None, Parts] = field(default_factory=dict)  # None: parts without a job
    events: int = 0
    resets: int = 0
    possibly_lost: int = 0
    rebased: int = 0
    clamped: int = 0  # events whose time the clock rule moved
    implausible: int = 0  # events with more parts than the ideal cycle time allows
    job_changes: int = 0  # events spanning a job change (their parts are booked to the new job)

    def add(self, rec: CountRecord) -> None:
        """Count ``rec`` (the caller checked it belongs to this window). O(1)."""
        self.good += rec.good
        self.scrap += rec.scrap
        job = self.by_job.get(rec.job)
        if job is None:
            job = self.by_job[rec.job] = Parts()
        job.good += rec.good
        job.scrap += rec.scrap
        self.events += 1
        self.resets += rec.reset
        self.possibly_lost += rec.possibly_lost
        self.rebased += rec.rebased
        self.clamped += rec.clamp is not None
        self.implausible += rec.implausible
        self.job_changes += rec.job_from is not None


def summarize(
    records: Iterable[CountRecord], start: float, end: float, *, machine_id: str | None = None
) -> CountSummary:
    """One machine's (or, with records of several, the plant's) parts in ``[start, end)``."""
    out = CountSummary(machine_id, start, end)
    for rec in records:
        if start <= rec.at < end:
            out.add(rec)
    return out


def summarize_by_machine(records: Iterable[CountRecord], start: float, end: float) -> dict[str, CountSummary]:
    out: dict[str, CountSummary] = {}
    for rec in records:
        if start <= rec.at < end:
            summary = out.get(rec.machine_id)
            if summary is None:
                summary = out[rec.machine_id] = CountSummary(rec.machine_id, start, end)
            summary.add(rec)
    return out


def buckets(
    records: Iterable[CountRecord], start: float, end: float, step: float, *, machine_id: str | None = None
) -> list[CountSummary]:
    """``[start, end)`` cut into ``step``-second buckets (the last one may be shorter), for charts."""
    if step <= 0:
        raise ValueError(f"bucket step must be positive seconds, got {step}")
    if end < start:
        raise ValueError(f"window ends ({end}) before it starts ({start})")
    count = int((end - start) // step) + (1 if (end - start) % step else 0)
    out = [CountSummary(machine_id, start + i * step, min(start + (i + 1) * step, end)) for i in range(count)]
    for rec in records:
        if start <= rec.at < end:
            i = min(int((rec.at - start) // step), count - 1)
            out[i].add(rec)
    return out
