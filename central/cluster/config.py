"""The ``cluster:`` section: how ingest workers share the gateways (only with ``store.kind: postgresql``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_seconds: float = Field(
        15.0, ge=2.0, le=600.0, description="seconds a worker's gateways stay its own without a renewal: a killed "
        "worker's gateways are taken over within about this time, e.g. 15",
    )
    moves_per_cycle: int = Field(
        2, ge=1, le=1000, description="gateways a worker gives up or takes per lease cycle when balancing "
        "(rate limit), e.g. 2",
    )
    session_expiry: int = Field(
        60, ge=0, le=86_400, description="seconds the broker keeps a worker's session after it went away "
        "(short: a dead worker's queue is not kept for days; gateways keep their outbox anyway), e.g. 60",
    )
    refresh_interval: float = Field(
        0.5, gt=0, le=60, description="API replicas: seconds between reloads of the live view at most, e.g. 0.5",
    )

    def cycle_seconds(self) -> float:
        """How often a worker renews its leases and looks for gateways to take: a tenth of the lease."""
        return self.lease_seconds / 10
