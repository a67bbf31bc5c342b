"""The machine page's day figures beside the downtime report they are built from (issue 14).

``python -m bench pages`` (or ``python -m bench.pages [--intervals N ...] [--repeat N] [--quick]``)
builds a seeded day of one machine with N state intervals (running, idle, setup, fault under 20
codes, maintenance, micro-stops among them) under a two-shift calendar, then times:

* **baseline**: ``downtime.downtime`` over the day (what ``GET /machines/{id}/downtime`` computes);
* **day figures**: the same report plus what ``GET /machines/{id}/day`` adds on top of it:
  ``machineday.causes`` (the Pareto: stops per cause, shares), ``reliability`` and the OEE.

The ratio is day figures / baseline: what the machine page costs beyond the report it needs anyway.
Figures are the median and the worst of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from bench._procs import machine, row
from central.progress.downtime import downtime
from central.progress.machineday import causes
from central.progress.oee import PartsAt, oee
from central.progress.reliability import reliability
from central.progress.shifts import Calendar, ShiftCalendar, ShiftCalendarConfig
from central.progress.timeline import StateInterval
from plantpulse.protocol.models import MachineState

T0 = 1_796_000_000.0  # a Monday, 08:xx in Shanghai
STATES = [MachineState.RUNNING] * 6 + [MachineState.IDLE, MachineState.SETUP, MachineState.FAULT,
                                        MachineState.MAINTENANCE]


def calendar() -> Calendar:
    return ShiftCalendar(ShiftCalendarConfig.model_validate({
        "timezone": "Asia/Shanghai",
        "shifts": [{"name": "day", "days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "08:00",
                    "end": "20:00", "breaks": [{"start": "12:00", "end": "13:00"}]},
                   {"name": "night", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00",
                    "breaks": [{"start": "00:00", "end": "00:30"}]}],
    }))


def day(n: int, seed: int = 3) -> list[StateInterval]:
    """``n`` contiguous intervals over 24 h; a state never follows itself."""
    rng = random.Random(seed)
    step = 86_400.0 / n
    out: list[StateInterval] = []
    previous = None
    for _ in range(n):
        state = rng.choice([s for s in STATES if s is not previous])
        code = rng.randrange(20) if state is MachineState.FAULT else None
        length = step * rng.uniform(0.2, 1.8)
        start = out[-1].end if out else T0
        out.append(StateInterval("m1", state, start, start + length, fault_code=code))
        previous = state
    return out


def figures(intervals: list[StateInterval], cal: Calendar, start: float, end: float) -> int:
    report = downtime(intervals, start, end, calendar=cal, micro_stop_threshold=120)
    found = causes(report, intervals, micro_stop_threshold=120, explained={"material": 600.0})
    reliability(report)
    oee(report, [PartsAt(30.0, 500, 5)])
    return len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, nargs="*", default=[1_000, 10_000, 50_000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 runs, up to 10,000 intervals")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    sizes = [n for n in args.intervals if not args.quick or n <= 10_000]
    cal = calendar()
    print(f"machine page (day figures) benchmark on {machine()}; median and worst of {repeat} runs")
    widths = (40, 12, 12, 12, 10)
    print(row(("intervals in the day", "median ms", "worst ms", "us/interval", "ratio"), widths))
    for n in sizes:
        intervals = day(n)
        start, end = intervals[0].start, intervals[-1].end
        base: list[float] = []
        full: list[float] = []
        n_causes = 0
        for _ in range(repeat):
            t = time.perf_counter()
            downtime(intervals, start, end, calendar=cal, micro_stop_threshold=120)
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            n_causes = figures(intervals, cal, start, end)
            full.append(time.perf_counter() - t)
        b, f = statistics.median(base), statistics.median(full)
        print(row((f"{n:,}: baseline downtime()", f"{b * 1e3:.2f}", f"{max(base) * 1e3:.2f}", f"{b / n * 1e6:.2f}",
                   "1.00"), widths))
        print(row((f"{n:,}: day figures ({n_causes} causes)", f"{f * 1e3:.2f}", f"{max(full) * 1e3:.2f}",
                   f"{f / n * 1e6:.2f}", f"{f / b:.2f}"), widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
