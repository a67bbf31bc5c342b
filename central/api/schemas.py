"""What the API answers (``*Public``), separate from the internal types, with examples for OpenAPI."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from central.progress.timeline import StateInterval
from central.store.records import GatewayRow
from plantpulse.protocol.models import MachineState


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FaultTextPublic(_Public):
    zh: str
    en: str


class MachineOperation(_Public):
    """The work-order operation a machine runs now (issue 13), as the status board shows it."""

    order_id: str
    seq: int
    name: str
    status: str = Field(..., description="running, paused or done (over-production goes on until the next)")
    percent: float = Field(..., description="good parts / planned x 100 (over 100: over-production)")
    good: int
    quantity: int
    eta: float | None = Field(None, description="projected finish, Unix seconds")
    at_risk: bool = Field(False, description="its order is at risk of being late, or overdue")


class MachinePublic(_Public):
    """A machine's live status and metadata."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "example": {
                "id": "cnc-01", "name": "CNC lathe 1", "line": "line-a", "work_centre": "turning",
                "configured": True, "state": "fault", "since": 1795000000.0, "fault_code": 101,
                "fault_text": {"zh": "主轴过载", "en": "spindle overload"}, "job": "1605", "reason": None,
                "uncertain": False, "last_part_at": 1794999950.5, "good_total": 1520, "scrap_total": 12,
                "good_today": 231, "scrap_today": 2, "gateway_id": "line-a-modbus", "gateway_online": True,
                "gateway_skew": -0.01, "last_event_at": 1795000000.2,
            }
        },
    )

    id: str
    name: str
    line: str | None = None
    work_centre: str | None = None
    ideal_cycle_time: float | None = None
    configured: bool = Field(..., description="false: seen in events but missing from the configuration")
    state: MachineState | None = Field(None, description="None until the first state event")
    since: float | None = Field(None, description="Unix seconds the current state started (central's axis)")
    fault_code: int | None = None
    fault_text: FaultTextPublic | None = None
    job: str | None = None
    reason: str | None = Field(None, description="why the machine is offline, as its gateway said")
    uncertain: bool = False
    last_part_at: float | None = None
    good_total: int = 0
    scrap_total: int = 0
    good_today: int = 0
    scrap_today: int = 0
    gateway_id: str | None = None
    gateway_online: bool | None = None
    gateway_changed_at: float | None = Field(None, description="when the gateway went online or offline")
    gateway_skew: float | None = Field(None, description="gateway clock minus central clock, seconds")
    last_event_at: float | None = None
    operation: MachineOperation | None = Field(None, description="the work-order operation it runs, if any")


class MachineList(_Public):
    server_time: float
    machines: list[MachinePublic]


class GatewayPublic(GatewayRow):
    """A gateway: online flag, sequence numbers and its buffer as its last health message said
    (the fields of central's gateway record, plus how far its current epoch is applied)."""

    applied_seq: int | None = Field(None, description="every seq of the current epoch up to this one is settled")
    held_events: int = Field(0, description="state events waiting behind a gap")
    missing: list[list[int]] = Field(default_factory=list, description="seq ranges asked for, not yet received")


class GatewayList(_Public):
    server_time: float
    gateways: list[GatewayPublic]


class Timeline(_Public):
    machine_id: str
    start: float
    end: float
    server_time: float
    intervals: list[StateInterval] = Field(
        ..., description="[start, end) in one state; `ongoing`: the current one, cut at the server time; "
        "`repeats`: times the state was reported again after a missed change")


class PartsPublic(_Public):
    job: str | None
    good: int
    scrap: int


class FlaggedCountPublic(_Public):
    """A count event that is not plain production: its parts are in the totals, and this says why to look."""

    start: float
    at: float = Field(..., description="end of the count interval (central's axis): the window it counts in")
    good: int
    scrap: int
    job: str | None = None
    job_from: str | None = Field(None, description="the interval spans a job change from this job to `job`")
    reset: bool = False
    possibly_lost: bool = Field(False, description="parts made before a PLC restart may be missing")
    rebased: bool = Field(False, description="a counter jump (preset) was not counted")
    implausible: bool = Field(False, description="more parts than the ideal cycle time allows (applied anyway)")


class Counts(_Public):
    """Good and scrap of one machine in a window, per job, with every flagged count event listed."""

    machine_id: str
    start: float
    end: float
    server_time: float
    good: int
    scrap: int
    by_job: list[PartsPublic]
    events: int
    resets: int
    possibly_lost: int
    rebased: int
    implausible: int
    job_changes: int
    clamped: int = Field(..., description="count events whose time the clock rule moved")
    flagged: list[FlaggedCountPublic] = Field(..., description="the flagged events, oldest first (at most 1000)")


class Downtime(_Public):
    """Seconds by category in the window; see docs/central.md ("Downtime") for every definition."""

    machine_id: str
    start: float
    end: float
    server_time: float
    planned: float
    unplanned: float
    unplanned_running: float
    running: float
    fault: dict[str, float] = Field(..., description="fault seconds per fault code ('none': without a code)")
    setup: float
    idle: float
    idle_by_reason: dict[str, float] = Field(
        default_factory=dict, description="idle seconds operators explained with a stop reason (POST /api/v1/stops), "
        "per reason, e.g. {\"material\": 1800}; the rest of idle has no reason given"
    )
    maintenance: float
    offline: float
    no_data: float
    downtime: float
    micro_stops: int
    micro_stop_time: float
    failures: int
    uncertain: float
    mtbf: float | None = Field(None, description="seconds; None without a failure in the window")
    mttr: float | None = Field(None, description="seconds; None without a failure in the window")
    good: int
    scrap: int
    parts_by_job: list[PartsPublic]
    count_resets: int
    count_possibly_lost: int
    count_rebased: int


class GapPublic(_Public):
    id: int | None
    edge_id: str
    epoch: str
    first: int
    last: int
    reason: str
    count: int | None
    start_ts: float | None
    end_ts: float | None
    recorded_at: float


class GapList(_Public):
    gaps: list[GapPublic]


class DeadLetterPublic(_Public):
    id: int | None
    received_at: float
    topic: str
    reason: str
    payload: str = Field(..., description="the raw payload as UTF-8 (undecodable bytes replaced)")
    payload_bytes: int


class DeadLetterList(_Public):
    dead_letters: list[DeadLetterPublic]


class Problem(BaseModel):
    """An error answer: what was wrong and how to fix it."""

    detail: str
