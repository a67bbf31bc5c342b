"""Golden digests of ``project`` on seeded larger plans, so that speed work cannot change a result.

The hand-computed tests pin the rules on small plans; these pin everything else on plans of a few
hundred operations with every feature at once (shift calendars and overtime, machines down, setups
left, parts made, cycle times, transfer quantities, known and unknown material arrivals, done and
cancelled operations, work centres with and without machines running, shuffled lists that deadlock,
a predecessor in no list, a horizon that cuts some operations off). The digests were computed with
the projection as it was before it was made faster (issue 13); a changed digest means a changed
projection: find out why before updating it.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from bench.projection import calendar  # the benchmark's two-shift calendars (the digests were made with them)
from central.progress.assignment import Tally
from central.progress.orders import CENTRE, Operation, OpKey, OpStatus, Plan, Shortage, WorkOrder
from central.progress.projection import DownCause, MachineOutlook, Projection, project
from central.progress.shifts import Calendar
from central.progress.timetable import Overtime

T0 = 1_796_000_000.0  # 2026-11-30 (a Monday) 08:xx in Shanghai
DAY = 86_400.0




Inputs = tuple[Plan, dict[str, MachineOutlook], dict[OpKey, Tally], dict[OpKey, float], dict[OpKey, tuple[str, ...]]]


def scenario(seed: int, machines: int = 40, n_orders: int = 80, shuffle: bool = False) -> Inputs:
    """A seeded plant and plan with every feature the projection knows."""
    rng = random.Random(seed)
    base = [calendar(0), calendar(1)]
    calendars: list[Calendar] = [*base, Overtime(base[0], [(T0 + 2 * DAY + 40_000, T0 + 2 * DAY + 50_000)])]
    outlooks: dict[str, MachineOutlook] = {}
    for i in range(machines):
        mid = f"m{i:02d}"
        if i % 13 == 12:
            continue  # no outlook: planned around the clock
        centre = ("wa" if i % 2 else "wb") if i % 8 == 0 else None
        down = (T0 + rng.uniform(600, 7200), rng.choice(list(DownCause))) if rng.random() < 0.1 else None
        setup_left = rng.choice((None, 0.0, 900.0))
        outlooks[mid] = MachineOutlook(mid, calendars[i % 3], rng.uniform(0.6, 1.0), centre, down, setup_left)
    plain = [f"m{i:02d}" for i in range(machines) if f"m{i:02d}" not in outlooks
             or outlooks[f"m{i:02d}"].work_centre is None]
    orders: dict[str, WorkOrder] = {}
    operations: dict[OpKey, Operation] = {}
    dispatch: dict[str, list[OpKey]] = {}
    tallies: dict[OpKey, Tally] = {}
    cycles: dict[OpKey, float] = {}
    running: dict[OpKey, tuple[str, ...]] = {}
    for o in range(n_orders):
        oid = f"SO-{o:04d}"
        quantity = rng.randint(5, 150)
        n_ops = rng.randint(1, 6)
        seqs = tuple((s + 1) * 10 for s in range(n_ops))
        done_upto = rng.choice((0, 0, 0, 1, 2))
        for s, seq in enumerate(seqs):
            centre = rng.choice(("wa", "wb", "wa", "wempty")) if rng.random() < 0.1 else None
            machine: str | None = None if centre else rng.choice(plain)
            status = OpStatus.PLANNED
            if s < done_upto:
                status = OpStatus.DONE
            elif s == done_upto and rng.random() < 0.4:
                status = rng.choice((OpStatus.RUNNING, OpStatus.PAUSED))
            if rng.random() < 0.03:
                status = OpStatus.CANCELLED
            r = rng.random()
            shortage = (Shortage(T0 + rng.uniform(-3600, 3 * DAY)) if r < 0.05 else Shortage(None) if r < 0.07
                        else None)
            op = Operation(oid, seq, f"op{seq}", machine, centre, quantity, rng.uniform(5, 120),
                           rng.choice((0.0, 600.0, 1800.0)), transfer_quantity=rng.choice((None, None, 1, 10, 40)),
                           shortage=shortage, status=status)
            key = op.key
            if status is not OpStatus.PLANNED:
                tallies[key] = Tally(rng.randrange(quantity + 5), 0)
            if status is OpStatus.RUNNING:
                centre_machines = [m for m, ol in outlooks.items() if ol.work_centre == centre]
                running[key] = (machine,) if machine else tuple(centre_machines[: rng.randint(0, 2)])
            if rng.random() < 0.2:
                cycles[key] = rng.uniform(5, 150)
            operations[key] = op
            if not (status.open and rng.random() < 0.005):  # else a predecessor in no list
                dispatch.setdefault(op.queue, []).append(key)
        orders[oid] = WorkOrder(oid, "part", None, quantity, T0 + rng.uniform(1, 20) * DAY, seqs=seqs)
    if shuffle:
        for keys in dispatch.values():
            rng.shuffle(keys)
    plan = Plan(orders, operations, {q: tuple(ks) for q, ks in dispatch.items()})
    return plan, outlooks, tallies, cycles, running


def digest(p: Projection) -> str:
    """A hash of every field of every result, floats rounded to 1e-6."""
    def fmt(v: object) -> str:
        return repr(round(v, 6)) if isinstance(v, float) else repr(v)

    parts = [repr(p.now)]
    for key in sorted(p.ops):
        parts.append(";".join(fmt(v) for v in p.ops[key]))
    parts += [f"{o}={fmt(f)}" for o, f in sorted(p.orders.items())]
    parts += [f"{q}={keys!r}" for q, keys in sorted(p.by_queue.items())]
    parts += [repr(p.deadlocks), repr(p.unplaceable)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


CASES = [  # seed, shuffle, horizon in days, now offset in hours
    (1, False, 120, 0),
    (2, False, 120, 5),
    (3, True, 120, 0),
    (4, True, 120, 13),
    (5, False, 3, 0),
    (6, True, 120, 60),
]


def run_case(seed: int, shuffle: bool, horizon: int, hours: int) -> Projection:
    plan, outlooks, tallies, cycles, running = scenario(seed, shuffle=shuffle)
    return project(plan, outlooks, T0 + hours * 3600.0, tallies=tallies, cycle_times=cycles, running=running,
                   horizon=horizon * DAY)


GOLDEN = {  # computed before the projection was made faster (see the module docstring)
    1: "81542d7f5a2a26f9",
    2: "15dd57b92d2986ed",
    3: "b73189ee5c9ab134",
    4: "3b981da0e8c4a1cf",
    5: "c6e3175ec7749165",
    6: "247f9e432bbf7769",
}


@pytest.mark.parametrize(("seed", "shuffle", "horizon", "hours"), CASES)
def test_projection_matches_its_golden_digest(seed: int, shuffle: bool, horizon: int, hours: int) -> None:
    p = run_case(seed, shuffle, horizon, hours)
    assert digest(p) == GOLDEN[seed]


def test_the_golden_plans_exercise_every_feature() -> None:
    """Guards the digests' worth: deadlocks, unplaceable operations, operations cut off by the horizon,
    every binding and work-centre operations on several machines all occur."""
    results = [run_case(*case) for case in CASES]
    assert any(p.deadlocks for p in results)
    assert any(p.unplaceable for p in results)
    assert any(op.finish == float("inf") for p in results for op in p.ops.values())
    assert {op.binding for p in results for op in p.ops.values()} == {
        "now", "machine", "repair", "predecessor", "material"}
    assert any(len(op.machines) > 1 for p in results for op in p.ops.values())
    assert any(q.startswith(CENTRE) for p in results for q in p.by_queue)
