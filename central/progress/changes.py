"""The planners' changes to a plan as pure functions (issue 13: 插单 / 变更), each with its audit record.

Every change is ``(plan, ..., by, now) -> Change(plan, audit)``: the new plan and the audit row
(who, what, when) to write in the same transaction. Nothing is mutated, so a change that raises
leaves the plan as it was. ``set_status`` is the exception: it follows machine facts (the
assignment rules), not a person, so it has no audit row. Errors are ``orders.OrderError`` and its
subclasses (see ``orders.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from central.progress.orders import (
    LATEST,
    Audit,
    Change,
    ConflictError,
    Operation,
    OperationIn,
    OpKey,
    OpStatus,
    OrderError,
    OrderStatus,
    Plan,
    Shortage,
    WorkOrder,
    WorkOrderIn,
)


# --------------------------------------------------------------------------- helpers
def _actor(by: str) -> str:
    name = by.strip()
    if not name or len(name) > 100:
        raise OrderError("say who changes the plan: a non-empty name of at most 100 characters (the API key's)")
    return name


def _operation(order_id: str, op: OperationIn) -> Operation:
    return Operation(
        order_id, op.seq, op.name, op.machine, op.work_centre, op.quantity, op.ideal_cycle_time, op.setup_time,
        op.job, op.transfer_quantity, op.count_source,
    )


def _insert(queue: tuple[OpKey, ...], key: OpKey, position: int | None) -> tuple[OpKey, ...]:
    if position is None:
        return (*queue, key)
    if not 0 <= position <= len(queue):
        raise OrderError(f"position {position} is outside the dispatch list (0 to {len(queue)})")
    return (*queue[:position], key, *queue[position:])


def _without(dispatch: Mapping[str, tuple[OpKey, ...]], keys: Iterable[OpKey]) -> dict[str, tuple[OpKey, ...]]:
    drop = set(keys)
    return {q: tuple(k for k in ks if k not in drop) for q, ks in dispatch.items()}


def first_waiting(plan: Plan, queue: str) -> int:
    """The position just after the queue's running/paused operations: where a rush order goes by default."""
    keys = plan.dispatch.get(queue, ())
    i = 0
    while i < len(keys) and plan.operations[keys[i]].status in (OpStatus.RUNNING, OpStatus.PAUSED):
        i += 1
    return i


# --------------------------------------------------------------------------- changes
def create_order(
    plan: Plan, new: WorkOrderIn, *, by: str, now: float, rush: bool = False,
    positions: Mapping[str, int] | None = None,
) -> Change:
    """Add an order; each operation goes to the end of its queue, or at ``positions[queue]``.

    ``rush``: insert as a rush order (插单): by default each operation goes just after what its
    queue is running, and the order is flagged so the delay rules can name it as a cause.
    """
    by = _actor(by)
    if new.id in plan.orders:
        raise ConflictError(f"order {new.id!r} exists: change it, or cancel it and use another id")
    ops = sorted(new.operations, key=lambda o: o.seq)
    operations = dict(plan.operations)
    dispatch = dict(plan.dispatch)
    for op in ops:
        operation = _operation(new.id, op)
        operations[operation.key] = operation
        queue = operation.queue
        position = (positions or {}).get(queue)
        if position is None and rush:
            position = first_waiting(plan, queue)
        dispatch[queue] = _insert(dispatch.get(queue, ()), operation.key, position)
    order = WorkOrder(
        new.id, new.product, new.customer, new.quantity, new.due, new.priority, new.notes,
        seqs=tuple(o.seq for o in ops), rush=rush, created_at=now,
    )
    after: dict[str, object] = {"quantity": new.quantity, "due": new.due, "priority": new.priority, "rush": rush,
                                "operations": len(ops)}
    return Change(
        Plan({**plan.orders, new.id: order}, operations, dispatch),
        Audit(now, by, "insert_rush" if rush else "create", new.id, after=after),
    )


def change_order(
    plan: Plan, order_id: str, *, by: str, now: float, quantity: int | None = None, due: float | None = None,
    priority: int | None = None, notes: str | None = None,
) -> Change:
    """Change an open order's quantity, due time, priority or notes.

    A new quantity scales every open operation's planned quantity by new/old, rounded up
    (operations planned for the order quantity get exactly the new one); done ones keep theirs.
    """
    by = _actor(by)
    order = plan.order(order_id)
    if order.status is not OrderStatus.OPEN:
        raise ConflictError(f"order {order_id!r} is {order.status}: it cannot change")
    if quantity is not None and not 1 <= quantity <= 10_000_000:
        raise OrderError(f"quantity must be 1 to 10000000 parts, got {quantity}")
    if due is not None and not 0 < due < LATEST:
        raise OrderError(f"due must be a time between 1970 and 2100 (Unix seconds), got {due}")
    if priority is not None and not 0 <= priority <= 1000:
        raise OrderError(f"priority must be 0 to 1000, got {priority}")
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    changes: dict[str, Any] = {}
    for name, value in (("quantity", quantity), ("due", due), ("priority", priority), ("notes", notes)):
        if value is not None and value != getattr(order, name):
            before[name], after[name], changes[name] = getattr(order, name), value, value
    operations = dict(plan.operations)
    if quantity is not None and "quantity" in changes:
        for key in order.op_keys():
            op = operations[key]
            if op.status.open:
                operations[key] = replace(op, quantity=-(-op.quantity * quantity // order.quantity))
    return Change(
        Plan({**plan.orders, order_id: replace(order, **changes)}, operations, plan.dispatch),
        Audit(now, by, "change", order_id, before=before, after=after),
    )


def move_operation(
    plan: Plan, key: OpKey, *, by: str, now: float, machine: str | None = None, work_centre: str | None = None,
    position: int | None = None,
) -> Change:
    """Move a queued (not running, not finished) operation to another machine or work centre, or
    to another ``position`` in its own list (give neither machine nor work centre)."""
    by = _actor(by)
    op = plan.operation(key)
    if op.status is not OpStatus.PLANNED:
        raise ConflictError(f"operation {key[1]} of {key[0]!r} is {op.status}: only a queued operation can move")
    if machine is not None and work_centre is not None:
        raise OrderError("move to a machine or to a work centre, not both")
    moved = op
    if machine is not None or work_centre is not None:
        moved = replace(op, machine=machine, work_centre=work_centre)
    dispatch = _without(plan.dispatch, [key])
    dispatch[moved.queue] = _insert(dispatch.get(moved.queue, ()), key, position)
    return Change(
        Plan(plan.orders, {**plan.operations, key: moved}, dispatch),
        Audit(now, by, "move", key[0], key[1],
              before={"queue": op.queue, "position": plan.dispatch[op.queue].index(key)},
              after={"queue": moved.queue, "position": dispatch[moved.queue].index(key)}),
    )


def cancel_order(plan: Plan, order_id: str, *, by: str, now: float, reason: str | None = None) -> Change:
    """Cancel an order: its open operations are cancelled and leave the dispatch lists (done ones stay)."""
    by = _actor(by)
    order = plan.order(order_id)
    if order.status is not OrderStatus.OPEN:
        raise ConflictError(f"order {order_id!r} is already {order.status}")
    operations = dict(plan.operations)
    gone = []
    for key in order.op_keys():
        if operations[key].status.open:
            operations[key] = replace(operations[key], status=OpStatus.CANCELLED)
            gone.append(key)
    return Change(
        Plan({**plan.orders, order_id: replace(order, status=OrderStatus.CANCELLED)}, operations,
             _without(plan.dispatch, gone)),
        Audit(now, by, "cancel", order_id, before={"status": order.status.value},
              after={"status": "cancelled", "reason": reason}),
    )


def set_shortage(
    plan: Plan, key: OpKey, shortage: Shortage | None, *, by: str, now: float
) -> Change:
    """Mark an operation short of material until ``shortage.expected`` (None clears the mark)."""
    by = _actor(by)
    op = plan.operation(key)
    if not op.status.open:
        raise ConflictError(f"operation {key[1]} of {key[0]!r} is {op.status}: material no longer matters")
    if shortage is not None and shortage.expected is not None and not 0 < shortage.expected < LATEST:
        raise OrderError(f"expected arrival must be a time between 1970 and 2100, got {shortage.expected}")

    def view(s: Shortage | None) -> dict[str, object]:
        return {"short": False} if s is None else {"short": True, "expected": s.expected, "note": s.note}

    return Change(
        Plan(plan.orders, {**plan.operations, key: replace(op, shortage=shortage)}, plan.dispatch),
        Audit(now, by, "material", key[0], key[1], before=view(op.shortage), after=view(shortage)),
    )


def set_status(plan: Plan, key: OpKey, status: OpStatus) -> Plan:
    """An operation's status as the assignment rules decided it (no audit: it follows machine facts).

    A done or cancelled operation leaves its dispatch list; the order is done when all its
    operations are done or cancelled and at least one is done.
    """
    op = plan.operation(key)
    if op.status is status:
        return plan
    operations = {**plan.operations, key: replace(op, status=status)}
    dispatch = plan.dispatch if status.open else _without(plan.dispatch, [key])
    orders = plan.orders
    order = plan.order(key[0])
    statuses = [operations[k].status for k in order.op_keys()]
    if order.status is OrderStatus.OPEN and not any(s.open for s in statuses) and OpStatus.DONE in statuses:
        orders = {**orders, order.id: replace(order, status=OrderStatus.DONE)}
    return Plan(orders, operations, dispatch)
