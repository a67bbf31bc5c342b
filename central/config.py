"""Central's configuration: one YAML file, validated at start without touching the network.

Secrets (MQTT password, InfluxDB token, API keys) come from environment variables or files named
here, never from the file itself, so it can be kept in version control.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from central.influx.config import InfluxConfig
from central.ingest.config import IngestConfig
from central.progress.clock import ClockRule
from central.progress.machines import MachinesConfig
from central.store.sqlite import Retention
from plantpulse.configfile import load_yaml_model
from plantpulse.mqtt import MqttConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Strict):
    path: Path = Field(
        Path("var/central/central.sqlite"), description="SQLite database file, e.g. /var/lib/plantpulse/central.sqlite"
    )
    events_days: float = Field(14.0, gt=0, description="days raw events are kept (audit, backfill), e.g. 14")
    dead_letters_days: float = Field(30.0, gt=0, description="days dead letters are kept, e.g. 30")
    history_days: float = Field(400.0, gt=0, description="days state history, counts and gaps are kept, e.g. 400")

    def retention(self) -> Retention:
        return Retention(self.events_days, self.dead_letters_days, self.history_days)


class ApiConfig(_Strict):
    host: str = Field("127.0.0.1", description="address the HTTP API listens on (0.0.0.0 for the whole LAN)")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port, e.g. 8080 (0 = any free port)")
    stream_min_interval: float = Field(
        1.0, ge=0, description="seconds: at most one stream update per machine this often (catch-up), e.g. 1.0"
    )


class CentralConfig(_Strict):
    """The whole central configuration file (docs/central.md, "Configuration")."""

    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="the broker the gateways publish to")
    store: StoreConfig = Field(default_factory=StoreConfig, description="where central keeps its record")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="how events are applied")
    clock: ClockRule = Field(default_factory=ClockRule, description="the clock-skew rule's bounds")
    api: ApiConfig = Field(default_factory=ApiConfig, description="the HTTP API and pages")
    influx: InfluxConfig | None = Field(
        None, description="write machine states and counts to InfluxDB for Grafana (omit for none)"
    )
    plant: MachinesConfig = Field(
        default_factory=MachinesConfig, description="lines (with shift calendars) and machines with their metadata"
    )


def load_central_config(path: Path | str) -> CentralConfig:
    """Load and check the file; raises plantpulse.configfile.ConfigError with a readable message.

    Relative paths of files named in the configuration (store, token and password files) are
    taken from the configuration file's folder, so a config works wherever it is started from.
    """
    cfg = load_yaml_model(CentralConfig, path)
    base = Path(path).parent
    updates: dict[str, object] = {"store": cfg.store.model_copy(update={"path": base / cfg.store.path})}
    if cfg.mqtt.password_file is not None:
        updates["mqtt"] = cfg.mqtt.model_copy(update={"password_file": base / cfg.mqtt.password_file})
    if cfg.influx is not None and cfg.influx.token_file is not None:
        updates["influx"] = cfg.influx.model_copy(update={"token_file": base / cfg.influx.token_file})
    return cfg.model_copy(update=updates)
