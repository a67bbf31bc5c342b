"""Work orders, their operations and each machine's dispatch list, and the planners' changes (issue 13).

Two layers, on purpose:

* ``WorkOrderIn`` / ``OperationIn`` are what the API and the spreadsheet import accept: pydantic,
  every field bounded, an error names the field and says what is expected ("Bound every field",
  docs in shared/README). A due time is Unix seconds or ISO 8601 with an offset; a time without one
  is refused unless the caller validates with ``context={"timezone": tz}`` (imports: plant time).
* ``Plan`` is central's state: frozen dataclasses (``WorkOrder``, ``Operation``) and the dispatch
  lists. The changes (``changes.py``) are pure functions ``(plan, ..., by, now) -> Change(plan,
  audit)``: the new plan and the audit record (who, what, when) to write in one transaction.

Dispatch lists are keyed by *queue id*: a machine id, or ``"wc:" + name`` for a work centre (machine
ids never contain ``:``). A work-centre operation waits in its centre's list and may run on any of
the centre's machines, several at once.

Errors (``OrderError`` is a ``ValueError``; the API maps ``NotFoundError`` to 404, ``ConflictError`` to 409)::

    OrderError         the change is not valid for this plan (bad position, quantity ...)
     ├── NotFoundError      no such order or operation
     └── ConflictError      it contradicts the plan's state (id exists, operation already done ...)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, WrapValidator, model_validator

from plantpulse.instants import parse_instant
from plantpulse.protocol.models import ID_PATTERN

OpKey = tuple[str, int]
"""(order id, operation seq): an operation's identity."""
CENTRE = "wc:"
LATEST = 4_102_444_800.0  # 2100-01-01: a due time later than this is a typing error
ORDER_ID = r"^[A-Za-z0-9][A-Za-z0-9_./#-]{0,63}$"


class OrderError(ValueError):
    """A change the plan cannot take; the message says what to fix."""


class NotFoundError(OrderError):
    """No such order or operation."""


class ConflictError(OrderError):
    """The change contradicts the plan's state (the API answers 409)."""


class OpStatus(enum.StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def open(self) -> bool:
        """Still to be produced (queued, running or paused)."""
        return self not in (OpStatus.DONE, OpStatus.CANCELLED)


class OrderStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class CountSource(enum.StrEnum):
    MACHINE = "machine"  # the machine's counts; reports are signed corrections
    REPORTS = "reports"  # scan-to-report only (no PLC)


def _instant(value: Any, handler: Any, info: ValidationInfo) -> float:
    """Unix seconds or ISO 8601; without an offset only with a ``timezone`` in the validation context."""
    if isinstance(value, str):
        tz: tzinfo | None = (info.context or {}).get("timezone")
        try:
            value = parse_instant(value, info.field_name or "time")
        except ValueError as exc:
            if tz is None or "no time zone" not in str(exc):
                raise
            value = datetime.fromisoformat(value).replace(tzinfo=tz).timestamp()
    seconds = float(handler(value))
    if not 0 < seconds < LATEST:
        raise ValueError(f"{seconds} is not a time between 1970 and 2100 (Unix seconds)")
    return seconds


Instant = Annotated[float, WrapValidator(_instant)]


class OperationIn(BaseModel):
    """One step of an order's routing, as a planner gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seq: int = Field(..., ge=1, le=1_000_000, description="position in the routing, e.g. 10, 20, 30")
    name: str = Field(..., min_length=1, max_length=100, description="what is done, e.g. turn, mill, 车削")
    machine: str | None = Field(None, pattern=ID_PATTERN, description="machine id, e.g. cnc-01")
    work_centre: str | None = Field(
        None, pattern=ID_PATTERN, description="work centre (instead of a machine): any of its machines, e.g. milling"
    )
    quantity: int = Field(..., ge=1, le=10_000_000, description="planned good parts, e.g. 120")
    ideal_cycle_time: float = Field(..., gt=0, le=86_400, description="seconds per part at ideal speed, e.g. 45")
    setup_time: float = Field(0.0, ge=0, le=7 * 86_400, description="changeover seconds before the first part")
    job: str | None = Field(
        None, min_length=1, max_length=64, description="job/program number the machine reports, e.g. 1001"
    )
    transfer_quantity: int | None = Field(
        None, ge=1, le=10_000_000,
        description="parts of the previous operation needed before this one may start (default: all of them)",
    )
    count_source: CountSource = Field(CountSource.MACHINE, description="machine (PLC counts) or reports (scans)")

    @model_validator(mode="after")
    def _one_place(self) -> OperationIn:
        if (self.machine is None) == (self.work_centre is None):
            raise ValueError(f"operation {self.seq}: give either machine or work_centre (exactly one)")
        return self


class WorkOrderIn(BaseModel):
    """A work order with its routing, as ``POST /api/v1/orders`` and the import accept it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(..., pattern=ORDER_ID, description="the order id, e.g. SO-1001")
    product: str = Field(..., min_length=1, max_length=200, description="what is made, e.g. bracket")
    customer: str | None = Field(None, max_length=200, description="e.g. ACME")
    quantity: int = Field(..., ge=1, le=10_000_000, description="parts ordered, e.g. 120")
    due: Instant = Field(..., description="Unix seconds or ISO 8601 with offset, e.g. 2026-12-04T16:00:00+08:00")
    priority: int = Field(0, ge=0, le=1000, description="higher first when planners sort; 0 = normal")
    notes: str | None = Field(None, max_length=2000)
    operations: list[OperationIn] = Field(..., min_length=1, max_length=200, description="the routing")

    @model_validator(mode="after")
    def _routing(self) -> WorkOrderIn:
        seqs = [op.seq for op in self.operations]
        if len(set(seqs)) != len(seqs):
            raise ValueError(f"order {self.id}: operation seq numbers must be unique, got {seqs}")
        return self


class OrderChangeIn(BaseModel):
    """A planner's change to an order (``PATCH /api/v1/orders/{id}``): only the fields given change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    quantity: int | None = Field(None, ge=1, le=10_000_000, description="new quantity (open operations scale)")
    due: Instant | None = Field(None, description="new due time, Unix seconds or ISO 8601 with offset")
    priority: int | None = Field(None, ge=0, le=1000)
    notes: str | None = Field(None, max_length=2000)


class ShortageIn(BaseModel):
    """Material status of an operation: short until ``expected`` (None: unknown), or not short."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    short: bool = Field(..., description="true: material missing; false: clears the shortage")
    expected: Instant | None = Field(None, description="expected arrival, Unix seconds or ISO 8601 with offset")
    note: str | None = Field(None, max_length=500, description="e.g. castings from supplier X")

    def shortage(self) -> Shortage | None:
        return Shortage(self.expected, self.note) if self.short else None


@dataclass(frozen=True, slots=True)
class Shortage:
    """Material missing for an operation; ``expected`` None: arrival unknown (held indefinitely)."""

    expected: float | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    order_id: str
    seq: int
    name: str
    machine: str | None
    work_centre: str | None
    quantity: int
    ideal_cycle_time: float
    setup_time: float = 0.0
    job: str | None = None
    transfer_quantity: int | None = None
    count_source: CountSource = CountSource.MACHINE
    shortage: Shortage | None = None
    status: OpStatus = OpStatus.PLANNED

    @property
    def key(self) -> OpKey:
        return (self.order_id, self.seq)

    @property
    def queue(self) -> str:
        """The dispatch list it waits in: its machine, or ``wc:<centre>``."""
        return self.machine if self.machine is not None else CENTRE + str(self.work_centre)


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: str
    product: str
    customer: str | None
    quantity: int
    due: float
    priority: int = 0
    notes: str | None = None
    status: OrderStatus = OrderStatus.OPEN
    seqs: tuple[int, ...] = ()  # its operations' seqs in routing order
    rush: bool = False  # inserted as a rush order (a cause the delay rules name)
    created_at: float = 0.0

    def op_keys(self) -> list[OpKey]:
        return [(self.id, s) for s in self.seqs]


@dataclass(frozen=True, slots=True)
class Plan:
    """Orders, operations and dispatch lists (queue id -> operation keys in dispatch order)."""

    orders: Mapping[str, WorkOrder] = field(default_factory=dict)
    operations: Mapping[OpKey, Operation] = field(default_factory=dict)
    dispatch: Mapping[str, tuple[OpKey, ...]] = field(default_factory=dict)

    def order(self, order_id: str) -> WorkOrder:
        found = self.orders.get(order_id)
        if found is None:
            raise NotFoundError(f"no order {order_id!r}")
        return found

    def operation(self, key: OpKey) -> Operation:
        found = self.operations.get(key)
        if found is None:
            raise NotFoundError(f"no operation {key[1]} in order {key[0]!r}")
        return found

    def predecessor(self, key: OpKey) -> Operation | None:
        """The previous operation of the same order in routing order, if any."""
        seqs = self.order(key[0]).seqs
        i = seqs.index(key[1])
        return self.operations[(key[0], seqs[i - 1])] if i > 0 else None

    def successor(self, key: OpKey) -> Operation | None:
        seqs = self.order(key[0]).seqs
        i = seqs.index(key[1])
        return self.operations[(key[0], seqs[i + 1])] if i + 1 < len(seqs) else None


@dataclass(frozen=True, slots=True)
class Audit:
    """Who changed what and when: one row of the audit trail (JSON-able ``before``/``after``)."""

    at: float
    by: str
    action: str
    order_id: str
    seq: int | None = None
    before: Mapping[str, object] = field(default_factory=dict)
    after: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    plan: Plan
    audit: Audit
