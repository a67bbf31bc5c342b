"""Progress per operation and order: good, scrap, percent, rate, remaining time, ETA (issue 13).

**Rate.** The time one more *good* part takes on a machine is::

    seconds per good part = cycle time / (availability x yield)

* ``cycle time``: the operation's measured cycle time (running seconds / parts made, once enough
  parts were made, ``measured_cycle_time``), else its ideal cycle time;
* ``availability``: the share of the machine's recent planned time it ran (``availability``, from
  a ``downtime`` report over a look-back window), bounded below so one bad day cannot project
  a finish in the next century;
* ``yield``: good / (good + scrap) of the operation so far (1 without parts yet).

It is a long-run rate, on purpose not a sliding window: a window drops to zero at every stop and
would make every ETA jump to infinity at each coffee break (issue 13, "Precisions"). Remaining time
multiplies: ``remaining good parts x seconds per good part`` (plus the setup when not started).

**Quantities.** An operation's effective planned quantity is its planned quantity, capped by its
predecessor's good output once that predecessor is done short (and so on down the routing): a
later operation cannot make parts it never receives.

**Order percent** is work-weighted: sum over operations of ``min(good, planned) x ideal cycle time``
divided by sum of ``planned x ideal cycle time``, so a long operation weighs more than a quick one;
``finished`` is the good output of the last operation (what can ship). The ETA is the projection's
(shift calendar, queue, precedence: ``projection.py``); without one, ``now + remaining time``.
Pure; O(operations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from central.progress.assignment import Tally
from central.progress.downtime import DowntimeReport
from central.progress.orders import OpKey, OpStatus, Plan, WorkOrder

MIN_AVAILABILITY = 0.05
MIN_EVIDENCE = 3600.0  # seconds of planned time with data before availability is measured
MIN_PARTS = 5  # parts before a cycle time is measured


def availability(report: DowntimeReport | None, *, default: float = 1.0, floor: float = MIN_AVAILABILITY) -> float:
    """Running share of the planned time with data (micro-stops count as running: they are speed
    losses, already in a measured cycle time); ``default`` with less than an hour of evidence."""
    if report is None:
        return default
    known = report.planned - report.no_data
    if known < MIN_EVIDENCE:
        return default
    return min(1.0, max(floor, (report.running + report.micro_stop_time) / known))


def measured_cycle_time(running: float, parts: int, *, min_parts: int = MIN_PARTS) -> float | None:
    """Running seconds per part made (good or scrap) once ``min_parts`` were made, else None."""
    if parts < min_parts or running <= 0:
        return None
    return running / parts


@dataclass(frozen=True, slots=True)
class Rate:
    """How fast an operation makes good parts on its machine(s)."""

    cycle_time: float
    availability: float = 1.0
    yield_: float = 1.0
    measured: bool = False

    @property
    def seconds_per_good(self) -> float:
        return self.cycle_time / (self.availability * max(self.yield_, MIN_AVAILABILITY))

    @property
    def running_seconds_per_good(self) -> float:
        """Seconds per good part while the machine runs (what the projection divides by each machine's
        availability)."""
        return self.cycle_time / max(self.yield_, MIN_AVAILABILITY)

    @property
    def per_hour(self) -> float:
        """Good parts per hour of planned time."""
        return 3600.0 / self.seconds_per_good


def rate(
    ideal: float, tally: Tally | None, *, measured: float | None = None, machine_availability: float = 1.0
) -> Rate:
    """The rate of an operation from its ideal cycle time, parts so far and its machine's availability."""
    yield_ = tally.good / tally.total if tally is not None and tally.total > 0 and tally.good >= 0 else 1.0
    return Rate(measured if measured is not None else ideal, machine_availability, yield_, measured is not None)


def effective_quantities(plan: Plan, order: WorkOrder, tallies: Mapping[OpKey, Tally]) -> dict[OpKey, int]:
    """Planned good quantity per operation, capped by an upstream operation done short."""
    out: dict[OpKey, int] = {}
    cap: int | None = None
    for key in order.op_keys():
        op = plan.operations[key]
        if op.status is OpStatus.CANCELLED:
            out[key] = 0
            continue
        quantity = op.quantity if cap is None else min(op.quantity, cap)
        out[key] = quantity
        good = tallies[key].good if key in tallies else 0
        if op.status is OpStatus.DONE and good < quantity:
            cap = max(0, good)
        elif cap is not None:
            cap = quantity
    return out


@dataclass(frozen=True, slots=True)
class OperationProgress:
    key: OpKey
    status: OpStatus
    planned: int  # effective planned good quantity
    good: int
    scrap: int
    over: int  # good parts beyond the plan
    remaining: int  # good parts still to make (0 when done or cancelled)
    percent: float  # good / planned x 100 (may exceed 100)
    rate_per_hour: float  # good parts per planned hour
    remaining_time: float  # machine seconds of planned time still needed (setup included if not started)
    eta: float | None  # projected finish, else now + remaining_time; None when done/cancelled


@dataclass(frozen=True, slots=True)
class OrderProgress:
    order_id: str
    status: str
    quantity: int
    finished: int  # good output of the last operation
    percent: float  # work-weighted, see module docstring
    due: float
    eta: float | None
    operations: tuple[OperationProgress, ...]


def operation_progress(
    plan: Plan, key: OpKey, planned: int, tally: Tally | None, op_rate: Rate, now: float,
    *, projected_finish: float | None = None,
) -> OperationProgress:
    op = plan.operations[key]
    good = tally.good if tally is not None else 0
    scrap = tally.scrap if tally is not None else 0
    is_open = op.status.open
    remaining = max(0, planned - good) if is_open else 0
    remaining_time = remaining * op_rate.seconds_per_good
    if op.status is OpStatus.PLANNED:
        remaining_time += op.setup_time
    eta = (projected_finish if projected_finish is not None else now + remaining_time) if is_open else None
    return OperationProgress(
        key, op.status, planned, good, scrap, max(0, good - planned), remaining,
        100.0 * good / planned if planned > 0 else (100.0 if not is_open else 0.0), op_rate.per_hour,
        remaining_time, eta,
    )


def order_progress(
    plan: Plan, order_id: str, tallies: Mapping[OpKey, Tally], rates: Mapping[OpKey, Rate], now: float,
    *, finishes: Mapping[OpKey, float | None] | None = None,
) -> OrderProgress:
    """One order and its operations. ``rates``: per operation (``rate``); missing: ideal cycle time.
    ``finishes``: the projection's finish per operation, if one ran; without it an operation's ETA
    is now plus its and its open predecessors' remaining times (one after the other, no queue)."""
    order = plan.order(order_id)
    quantities = effective_quantities(plan, order, tallies)
    ops: list[OperationProgress] = []
    done_work = total_work = 0.0
    clock = now
    for key in order.op_keys():
        op = plan.operations[key]
        op_rate = rates.get(key) or Rate(op.ideal_cycle_time)
        finish = (finishes or {}).get(key)
        progress = operation_progress(plan, key, quantities[key], tallies.get(key), op_rate, clock,
                                      projected_finish=finish)
        if finish is None and op.status.open:
            clock += progress.remaining_time
        ops.append(progress)
        total_work += quantities[key] * op.ideal_cycle_time
        done_work += max(0, min(progress.good, quantities[key])) * op.ideal_cycle_time
    live = [p for p in ops if p.status is not OpStatus.CANCELLED]
    etas = [p.eta for p in live if p.eta is not None]
    eta = max(etas) if etas and any(p.status.open for p in live) else None
    return OrderProgress(
        order.id, order.status.value, order.quantity, live[-1].good if live else 0,
        100.0 * done_work / total_work if total_work > 0 else 100.0, order.due, eta, tuple(ops),
    )
