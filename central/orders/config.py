"""The ``orders:`` section of central's configuration: projection pace, delay-alert bounds, machine rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from central.progress.delay import DelayConfig
from plantpulse.protocol.models import ID_PATTERN


class OrdersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    projection_interval: float = Field(
        5.0, ge=0.2, le=600, description="seconds: re-project at most this often after ingest changes, e.g. 5"
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
    auto_next: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default_factory=list,
        description="machine ids where an operation's completion starts the next queued operation without a job "
                    "number, e.g. [saw-01]",
    )
    availability_hours: float = Field(
        8.0, gt=0, le=24 * 90, description="hours of history whose running share slows the projected rate, e.g. 8"
    )
    horizon_days: float = Field(120.0, gt=0, le=3650, description="days the projection looks ahead")

    def delay(self) -> DelayConfig:
        return DelayConfig(margin=self.margin, confirm=self.confirm, hysteresis=self.hysteresis,
                           uncertainty=self.uncertainty)

    def auto_next_ids(self) -> frozenset[str]:
        return frozenset(self.auto_next)

