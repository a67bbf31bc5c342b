"""What an order change or an ingest round writes about work orders, and how rows map to the domain (pure).

``OrderWrites`` rides in a ``Transaction`` (``tx.orders``) so that an order change and its audit
row, or an ingest round and the operations its counts started or completed, are one atomic
commit. Each part is a *replacement*: the store upserts orders and operations, rewrites whole
dispatch lists, and replaces a machine's assignment segments from a time on (``AssignmentWrite``:
a splice changes the segment around its time and everything after it, never what came before).
Counts carry their operation in ``CountRow.op``; ``recounted`` re-attributes counts already stored
(a late job number or a late start moved history under them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from central.progress.assignment import Assignment, EndCause, StartCause, Tally, Timeline
from central.progress.counts import CountRecord
from central.progress.orders import (
    Audit,
    CountSource,
    Operation,
    OpKey,
    OpStatus,
    OrderStatus,
    Plan,
    Shortage,
    WorkOrder,
)
from central.progress.reports import Report, ReportIn


@dataclass(frozen=True, slots=True)
class AssignmentWrite:
    """Replace ``machine_id``'s segments ending at or after ``since`` (or open) with ``segments``."""

    since: float
    segments: Timeline


@dataclass(frozen=True, slots=True)
class Recount:
    """A stored count (by its key) now belongs to ``op`` (None: unassigned)."""

    edge_id: str
    epoch: str
    seq: int
    op: OpKey | None


@dataclass(slots=True)
class OrderWrites:
    orders: dict[str, WorkOrder] = field(default_factory=dict)
    operations: dict[OpKey, Operation] = field(default_factory=dict)
    dispatch: dict[str, tuple[OpKey, ...]] = field(default_factory=dict)  # whole lists, replaced
    assignments: dict[str, AssignmentWrite] = field(default_factory=dict)
    recounted: list[Recount] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    audit: list[Audit] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.orders or self.operations or self.dispatch or self.assignments or self.recounted
                    or self.reports or self.audit)

    def plan(self, before: Plan, after: Plan) -> None:
        """Write what differs between two plans (orders, operations and the dispatch lists that changed)."""
        for oid, order in after.orders.items():
            if before.orders.get(oid) is not order:
                self.orders[oid] = order
        for key, op in after.operations.items():
            if before.operations.get(key) is not op:
                self.operations[key] = op
        for queue in before.dispatch.keys() | after.dispatch.keys():
            keys = after.dispatch.get(queue, ())
            if before.dispatch.get(queue, ()) != keys:
                self.dispatch[queue] = keys

    def segments(self, machine_id: str, since: float, timeline: Timeline) -> None:
        """Record a machine's timeline changed from ``since`` on (merging with an earlier write)."""
        known = self.assignments.get(machine_id)
        since = min(since, known.since) if known is not None else since
        self.assignments[machine_id] = AssignmentWrite(
            since, tuple(a for a in timeline if a.end is None or a.end >= since))


@dataclass
class LoadedOrders:
    """The order book as last committed: what the service restores at start."""

    plan: Plan
    book: dict[str, Timeline]
    tallies: dict[OpKey, Tally]  # machine counts attributed per operation
    reports: dict[str, Report]
    unassigned: dict[str, Tally]  # machine id -> counts with no operation


@dataclass(frozen=True, slots=True)
class AttributedCount:
    edge_id: str
    epoch: str
    seq: int
    record: CountRecord
    op: OpKey | None


# --------------------------------------------------------------------------- rows <-> domain
def order_to_json(order: WorkOrder) -> str:
    data = asdict(order)
    data["status"] = order.status.value
    data["seqs"] = list(order.seqs)
    return json.dumps(data, ensure_ascii=False)


def order_from_json(text: str) -> WorkOrder:
    data = json.loads(text)
    data["status"] = OrderStatus(data["status"])
    data["seqs"] = tuple(data["seqs"])
    return WorkOrder(**data)


def operation_to_json(op: Operation) -> str:
    data: dict[str, Any] = asdict(op)
    data["status"] = op.status.value
    data["count_source"] = op.count_source.value
    data["shortage"] = asdict(op.shortage) if op.shortage is not None else None
    return json.dumps(data, ensure_ascii=False)


def operation_from_json(text: str) -> Operation:
    data = json.loads(text)
    data["status"] = OpStatus(data["status"])
    data["count_source"] = CountSource(data["count_source"])
    data["shortage"] = Shortage(**data["shortage"]) if data.get("shortage") is not None else None
    return Operation(**data)


def assignment_row(a: Assignment) -> tuple[object, ...]:
    return (a.machine_id, a.start, a.end, a.key[0], a.key[1], a.started_by.value,
            a.ended_by.value if a.ended_by is not None else None)


def assignment_from_row(row: Any) -> Assignment:
    machine_id, start, end, order_id, seq, started_by, ended_by = row
    return Assignment(machine_id, (order_id, int(seq)), float(start), float(end) if end is not None else None,
                      StartCause(started_by), EndCause(ended_by) if ended_by is not None else None)


def report_row(r: Report) -> tuple[object, ...]:
    c = r.content
    return (c.client_id, c.order_id, c.seq, c.operator, c.kind.value, c.good, c.scrap, r.at, int(r.correction),
            c.model_dump_json())


def report_from_row(data: str, at: float, correction: int) -> Report:
    return Report(ReportIn.model_validate_json(data), float(at), bool(correction))


def audit_to_json(a: Audit) -> str:
    return json.dumps({"before": dict(a.before), "after": dict(a.after)}, ensure_ascii=False, default=str)


def audit_from_row(at: float, actor: str, action: str, order_id: str, seq: int | None, data: str) -> Audit:
    parts = json.loads(data)
    return Audit(float(at), actor, action, order_id, seq, parts.get("before", {}), parts.get("after", {}))
