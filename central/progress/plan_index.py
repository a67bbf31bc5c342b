"""The per-operation facts the list scheduler reads, indexed once per projection (issue 13).

Apart from ``projection.py`` because it is its own step: it reads the plan and the tallies only
(no machines, no time), and the scheduler's inner loop then finds everything it needs about an
operation in one look-up (``Fact``) instead of re-deriving it from the plan every time it is asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from central.progress.assignment import Tally
from central.progress.orders import OpKey, OpStatus, Plan
from central.progress.outlook import INF
from central.progress.progress import effective_quantities

_new = tuple.__new__  # a named tuple from a tuple of all its fields, without keyword handling (10,000 a projection)


class Fact(NamedTuple):
    """What the scheduler needs of one open operation that never changes during a projection."""

    pred: OpKey | None  # the previous (not cancelled) operation of its order
    arrival: float | None  # its missing material's expected arrival (INF: unknown); None: not short
    cycle: float  # running seconds per good part (measured, else ideal)
    ideal: float  # the ideal cycle time
    setup: float  # the setup time of the operation (when it is not already running on the machine)
    runs_on: Sequence[str]  # the machines it runs on now (empty: not running)
    transfer: int | None  # its own transfer quantity (what it needs of its predecessor)


class PlanIndex:
    """Open operations' remaining parts, precedence and dispatch lists, read once from the plan."""

    def __init__(self, plan: Plan, tallies: Mapping[OpKey, Tally], cycles: Mapping[OpKey, float],
                 running: Mapping[OpKey, Sequence[str]]) -> None:
        ops = plan.operations
        self.remaining: dict[OpKey, int] = {}
        self.planned: dict[OpKey, int] = {}
        self.pred: dict[OpKey, OpKey | None] = {}
        self.release: dict[OpKey, float] = {}  # closed operations release at once
        self.next_transfer: dict[OpKey, int] = {}  # what the successor needs of it, when not all
        self.order_keys: dict[str, list[OpKey]] = {}  # per order with open operations: its non-cancelled ones
        self.facts: dict[OpKey, Fact] = {}
        remaining, planned, pred_of, release, next_transfer, facts = (
            self.remaining, self.planned, self.pred, self.release, self.next_transfer, self.facts)
        cancelled, done, running_status = OpStatus.CANCELLED, OpStatus.DONE, OpStatus.RUNNING
        for order in plan.orders.values():
            oid = order.id
            keys: list[OpKey] = []
            has_open = has_done = False
            for seq in order.seqs:
                k = (oid, seq)
                status = ops[k].status
                if status is cancelled:
                    continue
                keys.append(k)
                if status is done:
                    has_done = True
                else:
                    has_open = True
            if not has_open:
                continue
            self.order_keys[oid] = keys
            # only an operation done short caps the ones after it: without one, the planned quantities stand
            quantities = effective_quantities(plan, order, tallies) if has_done else None
            prev: OpKey | None = None
            for k in keys:
                op = ops[k]
                quantity = op.quantity if quantities is None else quantities[k]
                planned[k] = quantity
                if op.status is not done:
                    left = quantity - (tallies[k].good if k in tallies else 0)
                    remaining[k] = left if left > 0 else 0
                    pred_of[k] = prev
                    shortage = op.shortage
                    facts[k] = _new(Fact, (
                        prev, None if shortage is None else INF if shortage.expected is None else shortage.expected,
                        cycles.get(k, op.ideal_cycle_time), op.ideal_cycle_time, op.setup_time,
                        running.get(k, ()) if op.status is running_status else (), op.transfer_quantity))
                else:
                    release[k] = -INF
                if prev is not None and op.transfer_quantity is not None:
                    next_transfer[prev] = op.transfer_quantity
                prev = k
        self.queue_of: dict[OpKey, str] = {}
        self.lists: dict[str, list[OpKey]] = {}
        for q, queued in plan.dispatch.items():
            open_keys = [k for k in queued if k in remaining]
            if open_keys:
                self.lists[q] = open_keys
                for k in open_keys:
                    self.queue_of[k] = q
