"""Upsert imported orders into a plan by order id (pure): the planner re-imports the day's plan.

The file is the plan for the orders it names (issue 13, "Precisions": upsert by order id, dry run,
audit trail). Per order:

* a new id is created (each operation at the end of its dispatch list), audited ``import``;
* an open order takes the file's header (product, customer, quantity, due, priority, notes) and
  routing: a queued operation takes the file's fields (moved to the end of its new list when its
  machine or work centre changes); a running or paused one may change its name, quantity, cycle
  and setup times and transfer quantity, not where it runs, its job or its count source; a done
  one must stay as it is; a seq new in the file is added, a queued seq missing from the file is
  cancelled (one that started must stay in the file);
* a done or cancelled order must come back unchanged (then it is left alone);
* an optional column the file does not have (customer, priority, notes, setup_time, job,
  transfer_quantity, count_source) leaves that field of an existing order as it is: a planner's
  shorter sheet never blanks what the ERP entered.

Any conflict is a row error and nothing changes (``rows.ImportRejectedError``). Orders the file does
not name are left alone: an import never cancels an order (cancel it with the API).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from central.imports.rows import ImportedOrder, ImportRejectedError, RowError
from central.progress.changes import create_order
from central.progress.orders import (
    Audit,
    Operation,
    OpKey,
    OpStatus,
    OrderStatus,
    Plan,
    WorkOrder,
    WorkOrderIn,
)

HEADER = ("product", "customer", "quantity", "due", "priority", "notes")
OP_FIELDS = ("name", "machine", "work_centre", "quantity", "ideal_cycle_time", "setup_time", "job",
             "transfer_quantity", "count_source")
OPTIONAL = {"customer": "customer", "priority": "priority", "notes": "notes", "setup_time": "setup_time",
            "job": "job", "transfer_quantity": "transfer_quantity", "count_source": "count_source"}
"""Field -> its column: a file without the column leaves the field as it is (an update never blanks it)."""
RUNNING_MAY_CHANGE = frozenset({"name", "quantity", "ideal_cycle_time", "setup_time", "transfer_quantity"})
ACTION = "import"


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class OrderResult:
    order_id: str
    row: int
    outcome: Outcome
    operations: int
    changes: tuple[str, ...] = ()  # what changed, e.g. "due", "operation 20: machine", "operation 30 added"

    def as_dict(self) -> dict[str, object]:
        return {"order": self.order_id, "row": self.row, "outcome": self.outcome.value,
                "operations": self.operations, "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class ImportPlan:
    plan: Plan
    audits: tuple[Audit, ...]
    results: tuple[OrderResult, ...]

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.results:
            out[r.outcome.value] += 1
        return out


def _fields(op: Operation) -> dict[str, object]:
    return {f: getattr(op, f) for f in OP_FIELDS}


def _new_fields(new: WorkOrderIn, seq: int) -> dict[str, object]:
    op = next(o for o in new.operations if o.seq == seq)
    return {f: getattr(op, f) for f in OP_FIELDS}


def _json(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def plan_import(plan: Plan, orders: Sequence[ImportedOrder], *, by: str, now: float) -> ImportPlan:
    """The plan with ``orders`` upserted, one audit row per created or changed order, and a result per order.

    Raises ``ImportRejectedError`` listing every conflict with the plan (nothing applied).
    """
    errors: list[RowError] = []
    audits: list[Audit] = []
    results: list[OrderResult] = []
    for item in orders:
        new = item.order
        existing = plan.orders.get(new.id)
        if existing is None:
            change = create_order(plan, new, by=by, now=now)
            plan = change.plan
            audits.append(replace(change.audit, action=ACTION, after={**change.audit.after, "created": True}))
            results.append(OrderResult(new.id, item.row, Outcome.CREATED, len(new.operations)))
            continue
        updated = _update(plan, existing, item, errors)
        if updated is None:
            continue
        plan, before, after, changes = updated
        if changes:
            audits.append(Audit(now, by, ACTION, new.id, before=before, after=after))
        results.append(OrderResult(new.id, item.row, Outcome.UPDATED if changes else Outcome.UNCHANGED,
                                   len(new.operations), tuple(changes)))
    if errors:
        raise ImportRejectedError(sorted(errors, key=lambda e: (e.row or 0, e.column or "")))
    return ImportPlan(plan, tuple(audits), tuple(results))


def _update(
    plan: Plan, order: WorkOrder, item: ImportedOrder, errors: list[RowError]
) -> tuple[Plan, dict[str, object], dict[str, object], list[str]] | None:
    new = item.order
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    changes: list[str] = []
    header = {}
    def kept(name: str) -> bool:
        return item.columns is not None and name in OPTIONAL and OPTIONAL[name] not in item.columns

    for name in HEADER:
        if kept(name):
            continue
        old, value = getattr(order, name), getattr(new, name)
        if old != value:
            before[name], after[name], header[name] = old, value, value
            changes.append(name)
    operations = dict(plan.operations)
    dispatch = {q: list(keys) for q, keys in plan.dispatch.items()}
    file_seqs = {o.seq for o in new.operations}
    n_errors = len(errors)

    def refuse(seq: int | None, column: str, message: str) -> None:
        row = item.op_rows.get(seq, item.row) if seq is not None else item.row
        errors.append(RowError(row, column, message))

    for seq in sorted(file_seqs | set(order.seqs)):
        key: OpKey = (order.id, seq)
        current = operations.get(key)
        label = f"operation {seq}"
        if current is None:  # new in the file
            fresh = Operation(order.id, seq, **_new_fields(new, seq))  # type: ignore[arg-type]
            operations[key] = fresh
            dispatch.setdefault(fresh.queue, []).append(key)
            changes.append(f"{label} added")
            after[label] = {k: _json(v) for k, v in _fields(fresh).items()}
            continue
        if seq not in file_seqs:
            if current.status is OpStatus.CANCELLED:
                continue
            if current.status is not OpStatus.PLANNED:
                refuse(None, "seq", f"{label} of order {order.id} is {current.status}: keep it in the file")
                continue
            operations[key] = replace(current, status=OpStatus.CANCELLED)
            dispatch[current.queue] = [k for k in dispatch.get(current.queue, []) if k != key]
            changes.append(f"{label} removed")
            before[label], after[label] = {"status": current.status.value}, {"status": "cancelled"}
            continue
        wanted = _new_fields(new, seq)
        diff = {f: v for f, v in wanted.items() if getattr(current, f) != v and not kept(f)}
        if not diff:
            continue
        if current.status is not OpStatus.PLANNED:
            allowed = RUNNING_MAY_CHANGE if current.status.open else frozenset[str]()
            refused = sorted(set(diff) - allowed)
            if refused:
                refuse(seq, refused[0].replace("ideal_cycle_time", "cycle_time").replace("name", "operation"),
                       f"{label} of order {order.id} is {current.status}: its {', '.join(refused)} cannot change "
                       f"(now {', '.join(repr(_json(getattr(current, f))) for f in refused)})")
                continue
        moved = replace(current, **diff)  # type: ignore[arg-type]
        operations[key] = moved
        if moved.queue != current.queue:
            dispatch[current.queue] = [k for k in dispatch.get(current.queue, []) if k != key]
            dispatch.setdefault(moved.queue, []).append(key)
        changes.extend(f"{label}: {f}" for f in sorted(diff))
        before[label] = {f: _json(getattr(current, f)) for f in diff}
        after[label] = {f: _json(v) for f, v in diff.items()}
    if order.status is not OrderStatus.OPEN and changes:
        errors[n_errors:] = [RowError(item.row, "order", f"order {order.id} is {order.status}: it cannot change "
                                                         f"({', '.join(changes[:3])}); use a new order id")]
        return None
    if len(errors) > n_errors:
        return None
    seqs = tuple(sorted(set(order.seqs) | file_seqs))
    updated = replace(order, seqs=seqs, **header)
    new_plan = Plan({**plan.orders, order.id: updated}, operations,
                    {q: tuple(keys) for q, keys in dispatch.items()})
    return new_plan, before, after, changes
