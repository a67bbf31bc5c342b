"""MTBF and MTTR per machine and window, from a downtime report (docs/central.md, "MTBF and MTTR").

    failures F = failures (fault runs that are not micro-stops) whose first planned instant
                 lies in the window
    MTBF = planned running time in the window / F
    MTTR = planned fault time in the window (micro-stops excluded) / F

Both are ``None`` when there was no failure: a machine that never failed has no mean time
between failures, and reporting its running time instead would read as a measurement. The
report still carries ``running`` (a lower bound of the MTBF) and ``failures=0``, so a page can
show "no failure in 37.5 h". A failure straddling the window's start has its repair time here
but is counted in the previous window; over windows long compared to a repair this evens out.
O(1).
"""

from __future__ import annotations

from dataclasses import dataclass

from central.progress.downtime import DowntimeReport


@dataclass(frozen=True, slots=True)
class Reliability:
    machine_id: str | None
    start: float
    end: float
    failures: int
    running: float  # planned running time, seconds
    repair: float  # planned fault time outside micro-stops, seconds
    mtbf: float | None  # seconds; None without a failure
    mttr: float | None  # seconds; None without a failure


def reliability(report: DowntimeReport) -> Reliability:
    failures = report.failures
    return Reliability(
        machine_id=report.machine_id, start=report.start, end=report.end, failures=failures,
        running=report.running, repair=report.fault_time,
        mtbf=report.running / failures if failures else None,
        mttr=report.fault_time / failures if failures else None,
    )
