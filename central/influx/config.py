"""The ``influx:`` section of central's configuration: where the time series go and how hard to try.

InfluxDB is optional (central's store is the record); when the section is present, these settings
decide the batching, the size of the retry buffer that bridges an InfluxDB outage, and the backoff.
The token never goes into the YAML file: it comes from an environment variable or a file, so the
configuration can be committed and shared. Checked without touching the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantpulse.configfile import ConfigError


class InfluxConfig(BaseModel):
    """One InfluxDB 2.x bucket (or anything speaking its ``/api/v2/write``, e.g. InfluxDB 1.8+, 3.x)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        ...,
        pattern=r"^https?://[^\s/]+",
        description="base URL of the InfluxDB server, e.g. http://influxdb:8086 (http:// or https://, no path)",
    )
    org: str = Field(..., min_length=1, description="organisation name (or id) that owns the bucket, e.g. plant")
    bucket: str = Field(
        ..., min_length=1, description="bucket to write to, e.g. plantpulse (InfluxDB 1.8: database/retention)"
    )
    token_env: str | None = Field(
        None, min_length=1, description="name of the environment variable holding the API token, e.g. INFLUX_TOKEN"
    )
    token_file: Path | None = Field(
        None, description="file whose first line is the API token (e.g. a Docker/Kubernetes secret)"
    )
    batch_size: int = Field(
        1000, ge=1, le=50_000, description="points per write request, 1..50000 (InfluxDB suggests 5000 or fewer)"
    )
    flush_interval: float = Field(
        1.0, gt=0, le=60, description="seconds a point may wait for a full batch before it is sent, >0 and <=60"
    )
    retry_buffer: int = Field(
        100_000,
        ge=1,
        description="points kept while InfluxDB is down (oldest dropped first, every drop counted); "
        "must be larger than batch_size",
    )
    timeout: float = Field(10.0, gt=0, le=300, description="seconds one write request may take, >0 and <=300")
    retry_initial_delay: float = Field(
        0.5, gt=0, description="seconds to wait after the first failed write; doubles on each further failure"
    )
    retry_max_delay: float = Field(
        30.0, gt=0, description="upper bound in seconds of the wait between retries (jitter included)"
    )

    oee: bool = Field(
        True, description="also write each machine's OEE per closed hour (measurement machine_oee, docs/influx.md)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> InfluxConfig:
        if self.token_env and self.token_file:
            raise ValueError("give the token in token_env or token_file, not both")
        if self.retry_buffer <= self.batch_size:
            raise ValueError(
                f"retry_buffer ({self.retry_buffer}) must be larger than batch_size ({self.batch_size}): "
                "the buffer holds the batch being written plus the points that arrive meanwhile"
            )
        if self.retry_max_delay < self.retry_initial_delay:
            raise ValueError(
                f"retry_max_delay ({self.retry_max_delay}) must not be below "
                f"retry_initial_delay ({self.retry_initial_delay})"
            )
        return self

    def token(self) -> str | None:
        """The API token from the environment or the file (None: the server needs none).

        Raises ConfigError naming the setting to fix; called when the writer starts, so a missing
        secret stops central at start instead of failing every write later.
        """
        if self.token_env:
            value = os.environ.get(self.token_env)
            if not value:
                raise ConfigError(f"influx.token_env: environment variable {self.token_env} is not set or empty")
            return value
        if self.token_file:
            try:
                lines = self.token_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(
                    f"influx.token_file: cannot read the token from {self.token_file}: {exc.strerror}"
                ) from None
            if not lines or not lines[0].strip():
                raise ConfigError(f"influx.token_file: {self.token_file} is empty (the token goes on its first line)")
            return lines[0].strip()
        return None
