"""Orders as the API and the live stream show them (issue 13): public schemas, built from the book and projection.

Times are Unix seconds (``null``: not projected, e.g. held for material with no arrival date, or
beyond the projection's horizon). ``percent`` of an order is work-weighted (docs/progress.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from central.progress.orders import ORDER_ID, OrderChangeIn, ShortageIn, WorkOrderIn
from plantpulse.protocol.models import ID_PATTERN

EXAMPLE_ORDER: dict[str, Any] = {
    "id": "SO-1001", "product": "bracket", "customer": "ACME", "quantity": 120, "due": "2026-12-04T16:00:00+08:00",
    "operations": [
        {"seq": 10, "name": "turn", "machine": "cnc-01", "quantity": 120, "ideal_cycle_time": 45,
         "setup_time": 900, "job": "1001"},
        {"seq": 20, "name": "mill", "machine": "mill-01", "quantity": 120, "ideal_cycle_time": 120},
    ],
}


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InsertAt(_Public):
    """Rush insert (插单): where the order's operations go in their dispatch lists."""

    positions: dict[str, int] = Field(
        default_factory=dict,
        description="queue (machine id, or 'wc:<work centre>') -> position from 0 (the top); a queue not named "
                    "gets the operation just after what it runs now",
    )


class OrderCreate(WorkOrderIn):
    """``POST /api/v1/orders``: an order with its routing; ``rush`` inserts it ahead of the queues."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              json_schema_extra={"examples": [EXAMPLE_ORDER, {
                                  **EXAMPLE_ORDER, "id": "SO-1002", "rush": True,
                                  "insert": {"positions": {"cnc-01": 0}}}]})

    rush: bool = Field(False, description="a rush order (插单): each operation goes just after what its queue runs "
                                          "(or at insert.positions), and delay alerts name it as a cause")
    insert: InsertAt | None = Field(None, description="positions in the dispatch lists (implies rush)")

    def order(self) -> WorkOrderIn:
        return WorkOrderIn.model_validate(self.model_dump(exclude={"rush", "insert"}))


class OrderPatch(OrderChangeIn):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              json_schema_extra={"examples": [{"quantity": 150}, {"due": "2026-12-05T12:00:00+08:00",
                                                                                  "priority": 5}]})


class CancelIn(_Public):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "customer cancelled"}]})

    reason: str | None = Field(None, max_length=500, description="why, for the audit trail")


class StartIn(_Public):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}, {"machine": "mill-02"}]})

    machine: str | None = Field(None, pattern=ID_PATTERN,
                                description="where it starts: needed for a work-centre operation, e.g. mill-02")


class MoveIn(_Public):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"machine": "cnc-02"}, {"machine": "cnc-02", "position": 0}, {"position": 1}]})

    machine: str | None = Field(None, pattern=ID_PATTERN, description="new machine, e.g. cnc-02")
    work_centre: str | None = Field(None, pattern=ID_PATTERN, description="or a work centre, e.g. milling")
    position: int | None = Field(None, ge=0, le=100_000, description="place in the list from 0; default: the end")


class MaterialIn(ShortageIn):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, json_schema_extra={"examples": [
        {"short": True, "expected": "2026-12-04T10:00:00+08:00", "note": "castings late"}, {"short": False}]})


class WhyPublic(_Public):
    cause: str = Field(..., description="fault, slow_rate, rush_order_ahead, material, shift_end or load")
    order_id: str | None = Field(None, description="the operation that costs the most time: its order")
    seq: int | None = None
    machine: str | None = None
    lost_seconds: float | None = None
    down: str | None = Field(None, description="for fault: fault, maintenance or offline")
    rush_order: str | None = None
    text_zh: str | None = None
    text_en: str | None = None


class OperationPublic(_Public):
    seq: int
    name: str
    machine: str | None
    work_centre: str | None
    job: str | None
    status: str = Field(..., description="planned, running, paused, done or cancelled")
    quantity: int = Field(..., description="planned good parts (capped by an upstream operation done short)")
    good: int
    scrap: int
    over: int = Field(..., description="good parts beyond the plan (over-production)")
    percent: float
    rate_per_hour: float = Field(..., description="good parts per planned hour (the rate used for its ETA)")
    ideal_cycle_time: float
    setup_time: float
    running_on: list[str] = Field(default_factory=list, description="machines running it now")
    projected_start: float | None = None
    projected_finish: float | None = None
    bound_by: str | None = Field(None, description="what set its start: now, machine, repair, predecessor, material")
    shortage: dict[str, Any] | None = Field(None, description="material missing: {expected, note}")


class OrderPublic(_Public):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "SO-1001", "product": "bracket", "customer": "ACME", "quantity": 120, "due": 1796371200.0,
        "priority": 0, "notes": None, "rush": False, "status": "open", "percent": 12.5, "finished": 0,
        "projected_finish": 1796360000.0, "at_risk": False, "overdue": False, "why": None, "created_at": 1796280000.0,
        "operations": []}]})

    id: str
    product: str
    customer: str | None
    quantity: int
    due: float
    priority: int
    notes: str | None
    rush: bool
    status: str = Field(..., description="open, done or cancelled")
    percent: float = Field(..., description="work-weighted progress, 0-100")
    finished: int = Field(..., description="good parts of the last operation (what can ship)")
    projected_finish: float | None
    at_risk: bool
    overdue: bool
    why: WhyPublic | None = Field(None, description="why it is at risk or overdue (cause, operation, machine)")
    created_at: float
    operations: list[OperationPublic] | None = Field(None, description="only in GET /orders/{id}")


class OrderList(_Public):
    server_time: float
    projected_at: float | None = Field(None, description="when the projection these answers use was made")
    orders: list[OrderPublic]


class DispatchEntry(_Public):
    position: int
    order_id: str
    seq: int
    name: str
    status: str
    job: str | None
    quantity: int
    good: int
    due: float
    rush: bool
    at_risk: bool
    projected_start: float | None
    projected_finish: float | None
    shortage: dict[str, Any] | None = None


class DispatchList(_Public):
    machine_id: str
    server_time: float
    running: list[str] = Field(default_factory=list, description="'order/seq' running on the machine now")
    unmatched_job: str | None = Field(None, description="a job number the machine reports that no operation carries")
    unassigned_good: int = Field(0, description="good parts counted with no operation running (since the first "
                                                "order)")
    unassigned_scrap: int = 0
    work_centre: str | None = None
    operations: list[DispatchEntry]


class UnassignedCount(_Public):
    at: float
    start: float
    good: int
    scrap: int
    job: str | None
    edge_id: str
    epoch: str
    seq: int


class UnassignedList(_Public):
    """Count events no operation ran for: kept, never dropped (reassign them to an operation, audited)."""

    machine_id: str
    start: float
    end: float
    good: int
    scrap: int
    events: list[UnassignedCount]


class GanttBlock(_Public):
    kind: str = Field(..., description="operation, setup, down (fault/repair), off (outside shifts)")
    start: float
    end: float | None
    order_id: str | None = None
    seq: int | None = None
    label: str | None = None
    at_risk: bool = False
    due: float | None = None


class GanttRow(_Public):
    machine_id: str
    blocks: list[GanttBlock]


class Schedule(_Public):
    server_time: float
    start: float
    end: float
    projected_at: float | None
    rows: list[GanttRow]
    due: list[dict[str, Any]] = Field(default_factory=list, description="{order_id, due, at_risk} per open order")
    deadlocks: list[str] = Field(default_factory=list, description="dispatch lists that waited for each other")


class OrderAccepted(_Public):
    """The answer to a write: the order as it now stands (its projection follows within a moment)."""

    order: OrderPublic


class OperationAccepted(_Public):
    order_id: str = Field(..., pattern=ORDER_ID)
    seq: int
    status: str
    machine: str | None = None
