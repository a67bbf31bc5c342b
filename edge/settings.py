"""Configuration sections of the forwarding half of the gateway (store and forward, MQTT, health).

They are part of the gateway's one YAML file (``EdgeConfig`` in edge/config.py); kept here so the
collection settings and these stay readable apart. Every field has a default that suits a line
of about 50 machines.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BufferConfig(_Strict):
    """Bounds of the outbox (edge/buffer). The defaults hold 7 days of a 50-machine line offline."""

    max_events: int = Field(2_500_000, ge=100, description="events held at most, e.g. 2500000")
    max_bytes: int = Field(
        1_500_000_000, ge=100_000, description="bytes of event payload held at most, e.g. 1500000000 (1.5 GB)"
    )


class ForwardConfig(_Strict):
    """How events are sent to the broker."""

    batch_max: int = Field(500, ge=1, le=10_000, description="events per MQTT message (batch), e.g. 500")
    window: int = Field(
        20_000, ge=1, description="events sent but not yet confirmed by the consumer, at most, e.g. 20000"
    )
    resend_after: float = Field(
        30.0, gt=0, description="seconds without any confirmation before resending the oldest unconfirmed, e.g. 30"
    )


class HealthConfig(_Strict):
    """What the gateway tells about itself."""

    interval: float = Field(10.0, gt=0, description="seconds between health messages, e.g. 10")
    snapshot_interval: float = Field(60.0, gt=0, description="seconds between snapshots of current values, e.g. 60")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics on this port (omit for none; 0 = any free)"
    )
    metrics_host: str = Field("127.0.0.1", description="address the /metrics server listens on")


class CommandsConfig(_Strict):
    """Which commands (cmd/ack, cmd/replay) the gateway acts on (docs/protocol.md, "Signed commands")."""

    secret_file: Path | None = Field(
        None,
        description="file whose first line is this gateway's command secret (32+ characters, e.g. written by "
        "python -m plantpulse.broker_auth --sign); when set, unsigned or wrongly signed commands are ignored",
    )
    max_age: float | None = Field(
        None, gt=0,
        description="seconds: ignore commands whose ts is older than this by the gateway's clock, e.g. 3600 "
        "(omit for no limit: edge clocks can be wrong)",
    )
