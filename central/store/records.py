"""What one ingest round writes in one transaction, and the rows the API reads back (pure types).

The applier builds a ``Transaction`` from the sequencer's decisions and the pure reducers; the
store writes it atomically. Everything that must survive a crash together is in it: the events'
effects (status, intervals, counts) and the settled seq ranges that make a replay a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from central.alerts import notifications
from central.alerts.alert import Alert
from central.alerts.notifications import Notification
from central.progress.counts import CountRecord
from central.progress.machines import FaultText
from central.progress.status import MachineStatus
from central.progress.timeline import StateInterval
from central.store.extra_records import ExtraWrites
from central.store.order_records import OrderWrites
from plantpulse.protocol.models import MachineState
from plantpulse.protocol.ranges import Range
from plantpulse.protocol.sequencer import Gap


@dataclass(frozen=True, slots=True)
class RawMessage:
    """An events message exactly as received (kept for the retention period: audit, reprocessing).

    One row per MQTT message, not per event: the effects of each event are in their own tables,
    and keeping the payload as it came costs one insert per batch instead of a dump per event.
    """

    received_at: float
    topic: str
    edge_id: str
    payload: bytes


@dataclass(slots=True)
class CountRow:
    """A count event of a round; ``op`` is set by the round's attribution (so not frozen: one write per
    count, not a new row)."""

    edge_id: str
    epoch: str
    seq: int
    record: CountRecord
    op: tuple[str, int] | None = None  # the operation running on its machine at its time (issue 13)


@dataclass(frozen=True, slots=True)
class EpochRow:
    edge_id: str
    epoch: str
    settled: list[Range]
    current: bool


class GatewayRow(BaseModel):
    """A gateway as central knows it: the live view, the store's row, and (with the sequencing progress
    added) the API's answer (``GatewayPublic`` extends it). Mutable: ingest updates it in place."""

    edge_id: str
    site: str
    online: bool | None = Field(None, description="None until a birth or Will was seen")
    birth: int = -1
    changed_at: float | None = None
    last_seen: float | None = None
    epoch: str | None = None
    version: str | None = None
    config_hash: str | None = None
    machines: list[str] = Field(default_factory=list)
    latest_seq: int | None = None
    oldest_seq: int | None = None
    buffer_events: int | None = None
    buffer_bytes: int | None = None
    oldest_unconfirmed_age: float | None = None
    coalesced_total: int = 0
    dropped_total: int = 0
    skew: float | None = Field(None, description="gateway clock minus central clock, seconds")
    health_at: float | None = None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> GatewayRow:
        return cls.model_validate_json(text)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: float
    topic: str
    payload: bytes
    reason: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class GapRow:
    gap: Gap
    recorded_at: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to send to one target (``mqtt`` or a webhook's name): the outbox row."""

    notification_id: str
    target: str
    site: str | None = None
    status: str = "pending"  # pending, sent, failed (gave up)
    attempts: int = 0
    next_at: float = 0.0
    sent_at: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class Transaction:
    messages: list[RawMessage] = field(default_factory=list)
    counts: list[CountRow] = field(default_factory=list)
    intervals: list[StateInterval] = field(default_factory=list)
    removed_intervals: list[StateInterval] = field(default_factory=list)
    statuses: dict[str, MachineStatus] = field(default_factory=dict)
    epochs: dict[tuple[str, str], EpochRow] = field(default_factory=dict)
    gateways: dict[str, GatewayRow] = field(default_factory=dict)
    gaps: list[GapRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)  # alert id -> its new state (insert or update)
    notifications: list[Notification] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    orders: OrderWrites | None = None  # work orders (issue 13): central/store/order_records.py
    extras: ExtraWrites | None = None  # stop reasons, shift summaries (issue 13): central/store/extra_records.py
    # an ingest worker's lease tokens when the round began (its fencing tokens: the round was computed while
    # holding these); None: the fence's current tokens
    tokens: dict[str, int] | None = None

    def empty(self) -> bool:
        return not (self.messages or self.statuses or self.epochs or self.gateways or self.gaps or self.dead_letters
                    or self.intervals or self.removed_intervals or self.counts or self.alerts
                    or self.notifications or self.deliveries or (self.orders is not None and not self.orders.empty())
                    or (self.extras is not None and not self.extras.empty()))

    def order_writes(self) -> OrderWrites:
        """The round's order writes, created on first use."""
        if self.orders is None:
            self.orders = OrderWrites()
        return self.orders


# --------------------------------------------------------------------------- alerts <-> JSON
_ALERT: TypeAdapter[Alert] = TypeAdapter(Alert)


def alert_to_json(alert: Alert) -> str:
    return _ALERT.dump_json(alert).decode()


def alert_from_json(text: str) -> Alert:
    return _ALERT.validate_json(text)


def notification_to_json(n: Notification) -> str:
    return json.dumps(notifications.to_json(n), ensure_ascii=False)


def notification_from_json(text: str) -> Notification:
    return notifications.from_json(json.loads(text))


# --------------------------------------------------------------------------- status <-> JSON
def status_to_json(status: MachineStatus) -> str:
    data: dict[str, Any] = {}
    for name in status.__dataclass_fields__:
        value = getattr(status, name)
        if isinstance(value, FaultText):
            value = value.model_dump()
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, MachineState):
            value = value.value
        data[name] = value
    return json.dumps(data, ensure_ascii=False)


def status_from_json(text: str) -> MachineStatus:
    data = json.loads(text)
    if data.get("fault_text") is not None:
        data["fault_text"] = FaultText.model_validate(data["fault_text"])
    if data.get("day") is not None:
        data["day"] = date.fromisoformat(data["day"])
    if data.get("state") is not None:
        data["state"] = MachineState(data["state"])
    data["repeats"] = tuple(data.get("repeats") or ())
    known = MachineStatus.__dataclass_fields__
    return MachineStatus(**{k: v for k, v in data.items() if k in known})
