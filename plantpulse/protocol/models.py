"""The wire protocol's messages, version 1, as pydantic models (docs/protocol.md specifies them).

The edge gateway, the central service and the tests' reference consumer all import these, so
a message one side writes is by construction one the other side can read. Every message is a
JSON object with ``"v": 1``; unknown fields are rejected on purpose, so a producer bug is
dead-lettered instead of silently losing a field.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROTOCOL_VERSION = 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # edge, site and machine ids; never starting with "_"
EPOCH_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # a UUID, as the outbox makes it

# Bounds (docs/protocol.md, "Bounds"). Every field is bounded so that no value can overflow a
# store (SQLite integers are signed 64-bit) or make per-message work depend on its size. JSON
# numbers are exact only to 2**53 in most languages: seqs and counts stay below.
MAX_SAFE_INT = 2**53
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TIMESTAMP = 4_102_444_800.0  # 2100-01-01T00:00:00Z: a later time is a broken clock, not a late one
MAX_TEXT = 256  # job, reason, raw text: the edge truncates longer ones (and flags them), central refuses them
MAX_EVENTS = 10_000  # events in one batch (the gateway's batch_max is at most 10,000)
MAX_ITEMS = 10_000  # machines, dropped ranges, absorbed seqs in one message
MAX_SHORT = 128  # version, config hash

EdgeId = Annotated[str, Field(pattern=ID_PATTERN, description="gateway id, unique in its site")]
MachineId = Annotated[str, Field(pattern=ID_PATTERN, description="machine id, unique in the site")]
Epoch = Annotated[str, Field(pattern=EPOCH_PATTERN, description="UUID of the gateway's outbox database")]
Seq = Annotated[int, Field(ge=1, le=MAX_SAFE_INT, description="per-epoch sequence number, strictly increasing")]
Count = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Timestamp = Annotated[
    float, Field(ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False, description="Unix time in seconds (UTC), float")
]
Seconds = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Short = Annotated[str, Field(max_length=MAX_SHORT)]
RawValue = Int64 | Annotated[float, Field(allow_inf_nan=False)] | Text | bool


class MachineState(enum.StrEnum):
    """Canonical machine states (docs/edge.md maps them to OPC UA Machinery, PackML, MTConnect)."""

    RUNNING = "running"
    IDLE = "idle"
    SETUP = "setup"
    FAULT = "fault"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"  # no communication with the PLC; never a machine fault


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- events
class StateEvent(_Msg):
    """The machine's state, fault code or job changed (observed by the edge at ``ts``)."""

    kind: Literal["state"] = "state"
    seq: Seq | None = Field(None, description="assigned by the outbox; always present on the wire")
    machine_id: MachineId
    ts: Timestamp = Field(..., description="edge time the change was observed (monotonic per machine)")
    state: MachineState
    fault_code: Int64 | None = Field(None, description="PLC fault code while state is fault")
    job: Text | None = Field(None, description="job / program number the machine runs")
    raw: RawValue | None = Field(None, description="raw PLC state value, for diagnosis")
    reason: Text | None = Field(None, description="why a machine is offline (timeout, refused...)")
    truncated: bool = Field(False, description=f"a text field was longer than {MAX_TEXT} characters and was cut")


class CountEvent(_Msg):
    """Parts made in ``start..ts``: deltas derived at the edge next to the counter it reads."""

    kind: Literal["count"] = "count"
    seq: Seq | None = Field(None, description="assigned by the outbox; always present on the wire")
    machine_id: MachineId
    start: Timestamp = Field(..., description="edge time the interval starts (end of the previous count)")
    ts: Timestamp = Field(..., description="edge time the interval ends (the read that saw the parts)")
    good: Count = Field(..., description="good parts made in the interval")
    scrap: Count = Field(..., description="scrap parts made in the interval")
    job: Text | None = Field(None, description="job the parts belong to (with job_from: the job after the change)")
    job_from: Text | None = Field(
        None,
        description="set when the parts span a job change the edge could not split: the job before the change; "
        "the parts belong to job_from or job (or a job in between), not necessarily to job",
    )
    reset: bool = Field(False, description="the PLC's counters restarted (power cycle) in the interval")
    possibly_lost: bool = Field(
        False, description="parts made before a reset that the edge never read may be missing"
    )
    rebased: bool = Field(False, description="the counter jumped implausibly and was re-based, not counted")
    absorbed: list[Seq] = Field(
        default_factory=list, max_length=MAX_ITEMS,
        description="seqs merged into this event by the outbox when it was full",
    )
    truncated: bool = Field(False, description=f"the job was longer than {MAX_TEXT} characters and was cut")

    @model_validator(mode="after")
    def _interval(self) -> CountEvent:
        if self.ts < self.start:
            raise ValueError("count interval ends before it starts (ts < start)")
        return self


Event = Annotated[StateEvent | CountEvent, Field(discriminator="kind")]


class SeqRange(_Msg):
    """An inclusive range of sequence numbers."""

    first: Seq
    last: Seq

    @model_validator(mode="after")
    def _ordered(self) -> SeqRange:
        if self.last < self.first:
            raise ValueError("last < first")
        return self


class DroppedRange(_Msg):
    """Events the gateway had to drop (buffer or disk full): the consumer records a data gap."""

    epoch: Epoch
    first: Seq
    last: Seq
    count: int = Field(..., ge=1, le=MAX_SAFE_INT, description="events dropped in the range (absorbed seqs excluded)")
    start_ts: Timestamp | None = Field(None, description="edge time of the first dropped event")
    end_ts: Timestamp | None = Field(None, description="edge time of the last dropped event")
    reason: Literal["buffer_full", "disk_full"] = Field("buffer_full", description="buffer_full or disk_full")

    @model_validator(mode="after")
    def _ordered(self) -> DroppedRange:
        if self.last < self.first:
            raise ValueError("last < first")
        return self


class EventBatch(_Msg):
    """``.../events`` (QoS 1): events of one epoch in ascending seq order."""

    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: Epoch
    sent_at: Timestamp
    events: list[Event] = Field(..., min_length=1, max_length=MAX_EVENTS)

    @model_validator(mode="after")
    def _seqs(self) -> EventBatch:
        previous = 0
        for event in self.events:
            if event.seq is None:
                raise ValueError(f"event of machine {event.machine_id} has no seq")
            if event.seq <= previous:
                raise ValueError(f"seq {event.seq} does not increase (after {previous})")
            previous = event.seq
        return self


# --------------------------------------------------------------------------- gateway status
class Status(_Msg):
    """``.../status`` (retained): the birth message when online, the Last Will when offline.

    ``birth`` counts the gateway's connections; the Will repeats the birth counter of the
    connection that registered it, so a consumer ignores a Will older than the latest birth.
    """

    v: Literal[1] = 1
    edge_id: EdgeId
    online: bool
    birth: int = Field(..., ge=0, le=MAX_SAFE_INT)
    ts: Timestamp = Field(..., description="edge clock when written (the Will: when registered)")
    version: Short | None = None
    config_hash: Short | None = None
    machines: list[MachineId] = Field(default_factory=list, max_length=MAX_ITEMS)
    epoch: Epoch | None = None
    oldest_seq: Seq | None = Field(None, description="oldest seq still held (unconfirmed)")
    latest_seq: Count | None = Field(None, description="latest seq assigned")
    dropped: list[DroppedRange] = Field(default_factory=list, max_length=MAX_ITEMS)


class MachineHealth(_Msg):
    machine_id: MachineId
    reachable: bool
    state: MachineState | None = None
    poll_p50_ms: Seconds | None = None
    poll_p99_ms: Seconds | None = None
    read_errors: Count = 0
    reads: Count = 0


class Health(_Msg):
    """``.../health`` (every N seconds): the gateway's buffer and collection health."""

    v: Literal[1] = 1
    edge_id: EdgeId
    ts: Timestamp = Field(..., description="edge clock now: the consumer compares it with its own (skew)")
    epoch: Epoch
    buffer_events: Count
    buffer_bytes: Count
    oldest_unconfirmed_age: Seconds | None = Field(None, description="seconds since the oldest held event")
    oldest_seq: Seq | None = Field(None, description="oldest seq still held; None when the buffer is empty")
    latest_seq: Count
    confirmed_seq: Count = Field(..., description="every seq up to this one is confirmed")
    coalesced_total: Count = 0
    dropped_total: Count = 0
    dropped: list[DroppedRange] = Field(default_factory=list, max_length=MAX_ITEMS)
    machines: list[MachineHealth] = Field(default_factory=list, max_length=MAX_ITEMS)


class MachineSnapshot(_Msg):
    machine_id: MachineId
    ts: Timestamp
    reachable: bool
    state: MachineState | None = None
    fault_code: Int64 | None = None
    job: Text | None = None
    good_raw: Int64 | None = None
    scrap_raw: Int64 | None = None
    power_on: Int64 | None = None


class Snapshot(_Msg):
    """``.../snapshot`` (live, periodic, never replayed, outside the seq space): current values."""

    v: Literal[1] = 1
    edge_id: EdgeId
    ts: Timestamp
    machines: list[MachineSnapshot] = Field(..., max_length=MAX_ITEMS)


# --------------------------------------------------------------------------- commands to the gateway
class Ack(_Msg):
    """``.../cmd/ack``: the consumer has applied (durably) these seqs of the epoch: delete them."""

    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: Epoch
    applied: list[SeqRange] = Field(..., min_length=1, max_length=MAX_ITEMS)
    ts: Timestamp


class Replay(_Msg):
    """``.../cmd/replay``: send ``first..last`` of the epoch again (bounded by MAX_REPLAY)."""

    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: Epoch
    first: Seq
    last: Seq
    ts: Timestamp

    @model_validator(mode="after")
    def _bounded(self) -> Replay:
        if self.last < self.first:
            raise ValueError("last < first")
        if self.last - self.first + 1 > MAX_REPLAY:
            raise ValueError(f"a replay asks for at most {MAX_REPLAY} events")
        return self


MAX_REPLAY = 10_000
