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

EdgeId = Annotated[str, Field(pattern=ID_PATTERN, description="gateway id, unique in its site")]
MachineId = Annotated[str, Field(pattern=ID_PATTERN, description="machine id, unique in the site")]
Seq = Annotated[int, Field(ge=1, description="per-epoch sequence number, strictly increasing")]
Timestamp = Annotated[float, Field(ge=0, description="Unix time in seconds (UTC), float")]


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
    fault_code: int | None = Field(None, description="PLC fault code while state is fault")
    job: str | None = Field(None, description="job / program number the machine runs")
    raw: int | float | str | bool | None = Field(None, description="raw PLC state value, for diagnosis")
    reason: str | None = Field(None, description="why a machine is offline (timeout, refused...)")


class CountEvent(_Msg):
    """Parts made in ``start..ts``: deltas derived at the edge next to the counter it reads."""

    kind: Literal["count"] = "count"
    seq: Seq | None = Field(None, description="assigned by the outbox; always present on the wire")
    machine_id: MachineId
    start: Timestamp = Field(..., description="edge time the interval starts (end of the previous count)")
    ts: Timestamp = Field(..., description="edge time the interval ends (the read that saw the parts)")
    good: int = Field(..., ge=0, description="good parts made in the interval")
    scrap: int = Field(..., ge=0, description="scrap parts made in the interval")
    job: str | None = Field(None, description="job the parts belong to (with job_from: the job after the change)")
    job_from: str | None = Field(
        None,
        max_length=256,  # as every text field on the wire (main's protocol bounds: MAX_TEXT)
        description="set when the parts span a job change the edge could not split: the job before the change; "
        "the parts belong to job_from or job (or a job in between), not necessarily to job",
    )
    reset: bool = Field(False, description="the PLC's counters restarted (power cycle) in the interval")
    possibly_lost: bool = Field(
        False, description="parts made before a reset that the edge never read may be missing"
    )
    rebased: bool = Field(False, description="the counter jumped implausibly and was re-based, not counted")
    absorbed: list[Seq] = Field(
        default_factory=list, description="seqs merged into this event by the outbox when it was full"
    )

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

    epoch: str
    first: Seq
    last: Seq
    count: int = Field(..., ge=1, description="events dropped in the range (absorbed seqs excluded)")
    start_ts: Timestamp | None = Field(None, description="edge time of the first dropped event")
    end_ts: Timestamp | None = Field(None, description="edge time of the last dropped event")
    reason: str = Field("buffer_full", description="buffer_full or disk_full")


class EventBatch(_Msg):
    """``.../events`` (QoS 1): events of one epoch in ascending seq order."""

    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: str = Field(..., min_length=1, max_length=64, description="UUID of the outbox database")
    sent_at: Timestamp
    events: list[Event] = Field(..., min_length=1)

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
    birth: int = Field(..., ge=0)
    ts: Timestamp = Field(..., description="edge clock when written (the Will: when registered)")
    version: str | None = None
    config_hash: str | None = None
    machines: list[MachineId] = Field(default_factory=list)
    epoch: str | None = None
    oldest_seq: int | None = Field(None, description="oldest seq still held (unconfirmed)")
    latest_seq: int | None = Field(None, description="latest seq assigned")
    dropped: list[DroppedRange] = Field(default_factory=list)


class MachineHealth(_Msg):
    machine_id: MachineId
    reachable: bool
    state: MachineState | None = None
    poll_p50_ms: float | None = None
    poll_p99_ms: float | None = None
    read_errors: int = 0
    reads: int = 0


class Health(_Msg):
    """``.../health`` (every N seconds): the gateway's buffer and collection health."""

    v: Literal[1] = 1
    edge_id: EdgeId
    ts: Timestamp = Field(..., description="edge clock now: the consumer compares it with its own (skew)")
    epoch: str
    buffer_events: int = Field(..., ge=0)
    buffer_bytes: int = Field(..., ge=0)
    oldest_unconfirmed_age: float | None = Field(None, description="seconds since the oldest held event")
    oldest_seq: int | None = Field(None, description="oldest seq still held; None when the buffer is empty")
    latest_seq: int = Field(..., ge=0)
    confirmed_seq: int = Field(..., ge=0, description="every seq up to this one is confirmed")
    coalesced_total: int = Field(0, ge=0)
    dropped_total: int = Field(0, ge=0)
    dropped: list[DroppedRange] = Field(default_factory=list)
    machines: list[MachineHealth] = Field(default_factory=list)


class MachineSnapshot(_Msg):
    machine_id: MachineId
    ts: Timestamp
    reachable: bool
    state: MachineState | None = None
    fault_code: int | None = None
    job: str | None = None
    good_raw: int | None = None
    scrap_raw: int | None = None
    power_on: int | None = None


class Snapshot(_Msg):
    """``.../snapshot`` (live, periodic, never replayed, outside the seq space): current values."""

    v: Literal[1] = 1
    edge_id: EdgeId
    ts: Timestamp
    machines: list[MachineSnapshot]


# --------------------------------------------------------------------------- commands to the gateway
class Ack(_Msg):
    """``.../cmd/ack``: the consumer has applied (durably) these seqs of the epoch: delete them."""

    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: str
    applied: list[SeqRange] = Field(..., min_length=1)
    ts: Timestamp


class Replay(_Msg):
    """``.../cmd/replay``: send ``first..last`` of the epoch again (bounded by MAX_REPLAY)."""

    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: str
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
