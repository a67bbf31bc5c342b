"""The ``ingest:`` section of central's configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sites: list[str] = Field(
        default_factory=list, description="deprecated: name the site in the top-level `site` instead (central "
                                          "subscribes to that one site). If given, exactly [the site], e.g. [suzhou-1]"
    )
    client_id: str = Field(
        "", description="MQTT client id, stable (a persistent session) and unique on the broker; default "
        "plantpulse-central-<site>, so the centrals of several sites can share one broker"
    )
    batch_max_messages: int = Field(
        200, ge=1, description="MQTT messages applied in one transaction at most, e.g. 200"
    )
    hold_max_events: int = Field(
        5_000, ge=1, description="state events held behind a gap per gateway before applying anyway"
    )
    hold_max_age: float = Field(30.0, gt=0, description="seconds a state event waits behind a gap, e.g. 30")
    replay_retry: float = Field(5.0, gt=0, description="seconds before asking again for a missing range")
    ack_interval: float = Field(
        0.5, gt=0, description="seconds between confirmations to a gateway (batched), e.g. 0.5"
    )
    historic_age: float = Field(
        300.0, ge=0, description="seconds: an event older than this when applied is history and pages nobody"
    )
    skew_samples: int = Field(
        5, ge=1, description="live health messages the clock-skew estimate takes the largest sample of, e.g. 5"
    )
    plausibility_factor: float = Field(
        3.0, ge=1.0, description="a count event with more than factor x (interval / ideal cycle time + 1) parts is "
        "flagged implausible (applied anyway), e.g. 3",
    )
