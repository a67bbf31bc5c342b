"""Full re-projection of a large plant beside a plain loop over the same operations (issue 13).

``python -m bench projection`` (or ``python -m bench.projection [--machines N] [--ops N] [--repeat N]
[--quick]``) builds a seeded plan: 500 machines on 10 lines with two-shift calendars (breaks, Sundays
off), 5% of them in work centres, 10,000 open operations (2,000 orders of 5 operations, some running
with parts made, some machines in fault, some operations short of material), then times:

* **projection**: ``projection.project`` from scratch (what central runs after every order change
  and every few seconds), calendar look-ups, precedence, work-centre splits and all;
* **baseline**: a plain Python loop over the same dispatch lists adding setup plus remaining parts
  times cycle time per machine (the spreadsheet's ETA: no calendar, no precedence), in the same run.

Target (issue 13, "Benchmarks"): the projection under 200 ms. Figures are the median and the worst of
``--repeat`` runs; the ratio is projection / baseline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from bench._procs import machine, row
from central.progress.assignment import Tally
from central.progress.orders import CENTRE, Operation, OpKey, OpStatus, Plan, Shortage, WorkOrder
from central.progress.projection import DownCause, MachineOutlook, project
from central.progress.shifts import Calendar, ShiftCalendar, ShiftCalendarConfig

T0 = 1_796_000_000.0  # 2026-11-30 (a Monday) 08:xx in Shanghai
TARGET = 0.200


def calendar(line: int) -> Calendar:
    """Two shifts Monday to Saturday, lunch and a night break; each line its own calendar object."""
    return ShiftCalendar(ShiftCalendarConfig.model_validate({
        "timezone": "Asia/Shanghai",
        "shifts": [
            {"name": "day", "days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "08:00", "end": "17:30",
             "breaks": [{"start": "12:00", "end": "13:00"}]},
            {"name": "night", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00",
             "end": f"0{4 + line % 2}:00", "breaks": [{"start": "00:00", "end": "00:30"}]},
        ],
    }))


def build(machines: int, ops: int, seed: int = 7) -> tuple[Plan, dict[str, MachineOutlook], dict[OpKey, Tally],
                                                           dict[OpKey, tuple[str, ...]]]:
    """A seeded plant and plan (built directly, as the store would load it)."""
    rng = random.Random(seed)
    calendars = [calendar(i) for i in range(10)]
    centres = max(1, machines // 100)
    outlooks: dict[str, MachineOutlook] = {}
    for i in range(machines):
        mid = f"m{i:03d}"
        centre = f"wc{(i // 20) % centres}" if i % 20 == 0 else None
        down = (T0 + rng.uniform(600, 7200), DownCause.FAULT) if rng.random() < 0.05 else None
        outlooks[mid] = MachineOutlook(mid, calendars[i % 10], rng.uniform(0.6, 0.95), centre, down)
    plain = [m for m, o in outlooks.items() if o.work_centre is None]
    orders: dict[str, WorkOrder] = {}
    operations: dict[OpKey, Operation] = {}
    dispatch: dict[str, list[OpKey]] = {}
    tallies: dict[OpKey, Tally] = {}
    running: dict[OpKey, tuple[str, ...]] = {}
    n_orders = ops // 5
    for o in range(n_orders):
        oid = f"SO-{o:05d}"
        quantity = rng.randint(10, 200)
        seqs = []
        for s in range(5):
            seq = (s + 1) * 10
            seqs.append(seq)
            centre = rng.random() < 0.05
            mid = rng.choice(plain)
            op = Operation(oid, seq, f"op{seq}", None if centre else mid, f"wc{rng.randrange(centres)}" if centre
                           else None, quantity, rng.uniform(20, 120), rng.choice((0.0, 600.0, 1800.0)),
                           transfer_quantity=rng.choice((None, None, 10)),
                           shortage=Shortage(T0 + rng.uniform(0, 86_400)) if rng.random() < 0.01 else None)
            if o < machines // 2 and s == 0:
                op = Operation(**{**{f: getattr(op, f) for f in op.__slots__}, "status": OpStatus.RUNNING})  # type: ignore[arg-type]
                tallies[op.key] = Tally(rng.randrange(quantity), 0)
                running[op.key] = (op.queue,) if op.machine else ()
            operations[op.key] = op
            dispatch.setdefault(op.queue if op.machine else CENTRE + str(op.work_centre), []).append(op.key)
        orders[oid] = WorkOrder(oid, "part", None, quantity, T0 + rng.uniform(1, 20) * 86_400, seqs=tuple(seqs))
    plan = Plan(orders, operations, {q: tuple(ks) for q, ks in dispatch.items()})
    return plan, outlooks, tallies, running


def baseline(plan: Plan, tallies: dict[OpKey, Tally]) -> dict[OpKey, float]:
    """The spreadsheet ETA: per list, setup + remaining parts x cycle time, one after the other."""
    out: dict[OpKey, float] = {}
    for keys in plan.dispatch.values():
        t = T0
        for k in keys:
            op = plan.operations[k]
            done = tallies[k].good if k in tallies else 0
            t += op.setup_time + max(0, op.quantity - done) * op.ideal_cycle_time
            out[k] = t
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projection", description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 runs")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    plan, outlooks, tallies, running = build(args.machines, args.ops)
    print(f"projection benchmark on {machine()}")
    print(f"{args.machines} machines, {len(plan.operations)} open operations, {len(plan.dispatch)} dispatch lists;"
          f" median and worst of {repeat} runs")
    base: list[float] = []
    proj: list[float] = []
    proj_cpu: list[float] = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        baseline(plan, tallies)
        base.append(time.perf_counter() - started)
        started, cpu = time.perf_counter(), time.process_time()
        result = project(plan, outlooks, T0, tallies=tallies, running=running)
        proj.append(time.perf_counter() - started)
        proj_cpu.append(time.process_time() - cpu)
    assert result is not None
    widths = (44, 12, 12, 12, 10)
    print(row(("", "median ms", "best ms", "worst ms", "ratio"), widths))
    b, p = statistics.median(base), statistics.median(proj)
    print(row(("baseline: plain loop over the dispatch lists", f"{b * 1e3:.1f}", f"{min(base) * 1e3:.1f}",
               f"{max(base) * 1e3:.1f}", "1.00"), widths))
    print(row(("projection.project (full), wall", f"{p * 1e3:.1f}", f"{min(proj) * 1e3:.1f}",
               f"{max(proj) * 1e3:.1f}", f"{p / b:.1f}"), widths))
    c = statistics.median(proj_cpu)
    print(row(("projection.project (full), CPU of this process", f"{c * 1e3:.1f}", f"{min(proj_cpu) * 1e3:.1f}",
               f"{max(proj_cpu) * 1e3:.1f}", ""), widths))
    late = sum(1 for oid, f in result.orders.items() if f > plan.orders[oid].due)
    print(f"target: projection under {TARGET * 1e3:.0f} ms (median wall): {'met' if p < TARGET else 'MISSED'};"
          f" {len(result.ops)} operations projected, {late} orders projected late, {len(result.deadlocks)} deadlocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
