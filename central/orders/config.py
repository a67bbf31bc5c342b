"""The ``orders:`` section of central's configuration: projection pace, delay-alert bounds, machine rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from central.progress.delay import DelayConfig
from central.progress.orders import Instant
from plantpulse.protocol.models import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN)]


class OvertimeConfig(BaseModel):
    """Extra production time outside the shift calendar (加班), for some lines or machines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Instant = Field(..., description="ISO 8601 with offset or Unix seconds, e.g. 2026-12-05T08:00:00+08:00")
    end: Instant = Field(..., description="e.g. 2026-12-05T12:00:00+08:00")
    lines: list[Id] = Field(default_factory=list, description="lines working overtime, e.g. [line-a]")
    machines: list[Id] = Field(default_factory=list, description="or single machines, e.g. [cnc-01]")

    @model_validator(mode="after")
    def _sane(self) -> OvertimeConfig:
        if self.end <= self.start:
            raise ValueError("overtime: end must be after start")
        if self.end - self.start > 7 * 86_400:
            raise ValueError("overtime: at most 7 days per entry (add shifts to the calendar instead)")
        if not (self.lines or self.machines):
            raise ValueError("overtime: name the lines or machines that work it")
        return self


class OrdersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    projection_interval: float = Field(
        5.0, ge=0.2, le=600, description="seconds: re-project at most this often after ingest changes, e.g. 5"
    )
    projection_interval_busy: float = Field(
        30.0, ge=0.2, le=3600, description="seconds: while ingest runs flat out (a backlog drains), re-project at "
        "most this often instead; a person's change still re-projects at once. e.g. 30"
    )
    margin: float = Field(3600.0, ge=0, le=30 * 86_400, description="seconds: at risk when projected past due "
                                                                     "minus this, e.g. 3600")
    confirm: float = Field(300.0, ge=0, le=86_400, description="seconds the projection must stay past due minus "
                                                               "margin before 'at risk' is raised, e.g. 300")
    hysteresis: float = Field(900.0, ge=0, le=86_400, description="seconds: resolved only below due - margin - this")
    uncertainty: float = Field(
        0.3, ge=0, le=1, description="a finish h seconds ahead is trusted to +- this x h (raised only past that)"
    )
    default_repair: float = Field(
        1800.0, gt=0, le=30 * 86_400,
        description="seconds a machine in fault/maintenance/offline is assumed down without a repair ETA or MTTR",
    )
    auto_next: list[Id] = Field(
        default_factory=list,
        description="machine ids where an operation's completion starts the next queued operation without a job "
                    "number, e.g. [saw-01]",
    )
    availability_hours: float = Field(
        8.0, gt=0, le=24 * 90, description="hours of history whose running share slows the projected rate, e.g. 8"
    )
    horizon_days: float = Field(120.0, gt=0, le=3650, description="days the projection looks ahead")
    overtime: list[OvertimeConfig] = Field(
        default_factory=list, max_length=1000,
        description="overtime the projection may use, e.g. [{lines: [line-a], start: ..., end: ...}]",
    )

    def delay(self) -> DelayConfig:
        return DelayConfig(margin=self.margin, confirm=self.confirm, hysteresis=self.hysteresis,
                           uncertainty=self.uncertainty)

    def auto_next_ids(self) -> frozenset[str]:
        return frozenset(self.auto_next)

