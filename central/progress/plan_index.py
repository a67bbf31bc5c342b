"""The per-operation facts the list scheduler reads, indexed once per projection (issue 13).

Apart from the scheduler (``projection.py``, ``placement.py``) because it is its own step: it reads
the plan and the tallies only (no machines, no time). Each open operation gets a number, and
the scheduler's inner loop finds everything about it in lists by that number (``Fact``) instead of
re-deriving it from the plan or hashing its (order, seq) key in a dozen dicts: a projection of a
large plant asks these questions 10,000 times every few seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from central.progress.assignment import Tally
from central.progress.orders import Operation, OpKey, OpStatus, Plan
from central.progress.outlook import INF
from central.progress.progress import effective_quantities

_new = tuple.__new__  # a named tuple from a tuple of all its fields, without keyword handling (10,000 a projection)


class Fact(NamedTuple):
    """What the scheduler needs of one open operation that never changes during a projection."""

    key: OpKey
    # the number of the previous operation of its order, -1 if there is none or it is done (a done
    # predecessor released its parts before ``now``: it never holds an operation back)
    pred: int
    arrival: float | None  # its missing material's expected arrival (INF: unknown); None: not short
    cycle: float  # running seconds per good part (measured, else ideal)
    ideal: float  # the ideal cycle time
    setup: float  # the setup time of the operation (when it is not already running on the machine)
    runs_on: Sequence[str]  # the machines it runs on now (empty: not running)
    transfer: int | None  # its own transfer quantity (what it needs of its predecessor)


class PlanIndex:
    """Open operations numbered 0..n-1 with their remaining parts, precedence and dispatch lists."""

    def __init__(self, plan: Plan, tallies: Mapping[OpKey, Tally], cycles: Mapping[OpKey, float],
                 running: Mapping[OpKey, Sequence[str]]) -> None:
        ops = plan.operations
        self.keys: list[OpKey] = []  # number -> key
        self.facts: list[Fact] = []
        self.remaining: list[int] = []  # good parts still to make
        self.planned: list[int] = []  # effective planned quantity
        self.next_transfer: list[int | None] = []  # what its successor needs of it, when not all
        self.order_ops: dict[str, list[int]] = {}  # per order with open operations: their numbers in routing order
        index_of: dict[OpKey, int] = {}
        keys_out, facts, remaining, planned, next_transfer = (
            self.keys, self.facts, self.remaining, self.planned, self.next_transfer)
        cancelled, done, running_status = OpStatus.CANCELLED, OpStatus.DONE, OpStatus.RUNNING
        for order in plan.orders.values():
            oid = order.id
            routing: list[OpKey] = []  # its operations not cancelled
            routed: list[Operation] = []
            has_open = has_done = False
            for seq in order.seqs:
                k = (oid, seq)
                op = ops[k]
                status = op.status
                if status is cancelled:
                    continue
                routing.append(k)
                routed.append(op)
                if status is done:
                    has_done = True
                else:
                    has_open = True
            if not has_open:
                continue
            # only an operation done short caps the ones after it: without one, the planned quantities stand
            quantities = effective_quantities(plan, order, tallies) if has_done else None
            mine: list[int] = []
            prev = -1
            for k, op in zip(routing, routed, strict=True):
                if op.status is done:
                    prev = -1
                    continue
                i = len(keys_out)
                quantity = op.quantity if quantities is None else quantities[k]
                tally = tallies.get(k)
                left = quantity if tally is None else quantity - tally.good
                shortage, ideal, transfer = op.shortage, op.ideal_cycle_time, op.transfer_quantity
                keys_out.append(k)
                index_of[k] = i
                mine.append(i)
                facts.append(_new(Fact, (
                    k, prev, None if shortage is None else INF if shortage.expected is None else shortage.expected,
                    cycles.get(k, ideal) if cycles else ideal, ideal, op.setup_time,
                    running.get(k, ()) if op.status is running_status else (), transfer)))
                remaining.append(left if left > 0 else 0)
                planned.append(quantity)
                next_transfer.append(None)
                if prev >= 0 and transfer is not None:
                    next_transfer[prev] = transfer
                prev = i
            self.order_ops[oid] = mine
        self.queue_of: dict[int, str] = {}
        self.lists: dict[str, list[int]] = {}  # dispatch lists of open operations, by number
        get = index_of.get
        for q, queued in plan.dispatch.items():
            open_ops = [n for n in map(get, queued) if n is not None]
            if open_ops:
                self.lists[q] = open_ops
                for i in open_ops:
                    self.queue_of[i] = q
