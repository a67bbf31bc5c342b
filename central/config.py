"""Central's configuration: one YAML file, validated at start without touching the network.

Secrets (MQTT password, InfluxDB token, API keys) come from environment variables or files named
here, never from the file itself, so it can be kept in version control.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from central.alerts.config import AlertsConfig
from central.alerts.targets import WebhookTarget
from central.cluster.config import ClusterConfig
from central.influx.config import InfluxConfig
from central.ingest.commands import CommandsConfig
from central.ingest.config import IngestConfig
from central.orders.config import OrdersConfig
from central.progress.clock import ClockRule
from central.progress.machines import MachinesConfig
from central.store.config import StoreConfig
from plantpulse.configfile import ConfigError, load_yaml_model
from plantpulse.mqtt import MqttConfig
from plantpulse.protocol.models import ID_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiKey(_Strict):
    """One API key. The key itself is never in this file: its SHA-256, or where to read it."""

    name: str = Field(..., min_length=1, description="who uses the key, e.g. maintenance-tablet (shown as the actor)")
    role: Literal["read", "write", "report"] = Field(
        ..., description="read: GET only; write: also acknowledge, resolve and plan orders; report: read and scan to "
                         "report (good/scrap, start, pause, finish, stop reasons) and nothing else, e.g. for scanners"
    )
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key (python -m central new-key prints one)"
    )
    key_env: str | None = Field(None, description="environment variable holding the key")
    key_file: Path | None = Field(None, description="file whose first line is the key")

    @model_validator(mode="after")
    def _one_source(self) -> ApiKey:
        given = [x for x in (self.sha256, self.key_env, self.key_file) if x is not None]
        if len(given) != 1:
            raise ValueError(f"key {self.name}: give exactly one of sha256, key_env or key_file")
        return self

    def digest(self) -> str:
        """The key's SHA-256 (hex); reads the environment or file now."""
        if self.sha256 is not None:
            return self.sha256
        if self.key_env is not None:
            value = os.environ.get(self.key_env)
            if not value:
                raise ValueError(f"api key {self.name}: environment variable {self.key_env} is not set")
        else:
            assert self.key_file is not None
            try:
                value = self.key_file.read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                raise ValueError(f"api key {self.name}: cannot read key_file {self.key_file}: {exc}") from None
        return hashlib.sha256(value.encode()).hexdigest()


class ApiConfig(_Strict):
    host: str = Field("127.0.0.1", description="address the HTTP API listens on (0.0.0.0 for the whole LAN)")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port, e.g. 8080 (0 = any free port)")
    stream_min_interval: float = Field(
        1.0, ge=0, description="seconds: at most one stream update per machine this often (catch-up), e.g. 1.0"
    )
    open_reads: bool = Field(
        False, description="true: anyone on the network may read (GET) without a key (a trusted LAN only)"
    )
    keys: list[ApiKey] = Field(default_factory=list, description="API keys; writes always need a write key")
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) to serve HTTPS, e.g. var/secrets/tls/server.crt: phones need "
                          "HTTPS for the scan page's camera (docs/scan.md); omit for plain HTTP"
    )
    tls_key: Path | None = Field(None, description="the certificate's PEM private key, e.g. var/secrets/tls/server.key")

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("api.tls_cert and api.tls_key go together: give both for HTTPS, or neither")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: no such file (python -m plantpulse.tls makes a site CA and server.crt/.key)")
        return self


class NotifyConfig(_Strict):
    lang: Literal["zh", "en"] = Field("zh", description="language of the MQTT alert messages: zh or en")
    webhooks: list[WebhookTarget] = Field(
        default_factory=list, description="webhook receivers (generic JSON, wecom, dingtalk, feishu)"
    )
    shift_summaries: bool = Field(
        True, description="at each shift's end, send its summary (orders done, late, at risk, downtime, OEE)"
    )
    summary_check: float = Field(
        10.0, gt=0, le=600, description="seconds between looks for a shift that ended (its summary is then sent)"
    )


class CentralConfig(_Strict):
    """The whole central configuration file (docs/central.md, "Configuration").

    One central serves one site (issue 15): its record is keyed by ``site``, so two plants'
    ``cnc-01`` never merge, and it subscribes to that site's topics only.
    """

    # the default is only a placeholder for the validator below: it fills ``site`` in or refuses
    site: str = Field(
        "", pattern=ID_PATTERN,
        description="the site (plant) this central serves, the gateways' `site`, e.g. suzhou-1: its whole record is "
                    "keyed by it",
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="the broker the gateways publish to")
    store: StoreConfig = Field(default_factory=StoreConfig, description="where central keeps its record")
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="ingest workers and API replicas on PostgreSQL (docs/scaling.md)"
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="how events are applied")
    clock: ClockRule = Field(default_factory=ClockRule, description="the clock-skew rule's bounds")
    api: ApiConfig = Field(default_factory=ApiConfig, description="the HTTP API and pages")
    influx: InfluxConfig | None = Field(
        None, description="write machine states and counts to InfluxDB for Grafana (omit for none)"
    )
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="alert thresholds and escalation")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="who gets notified, and how")
    plant: MachinesConfig = Field(
        default_factory=MachinesConfig, description="lines (with shift calendars) and machines with their metadata"
    )
    orders: OrdersConfig = Field(
        default_factory=OrdersConfig, description="work orders: projection pace and delay alerts (docs/progress.md)"
    )
    commands: CommandsConfig = Field(
        default_factory=CommandsConfig, description="signing of the commands sent to gateways (docs/protocol.md)"
    )

    @model_validator(mode="after")
    def _one_site(self) -> CentralConfig:
        """``site`` always ends up set: given, or the single site an older config named in ``ingest.sites``."""
        listed = self.ingest.sites or None
        if self.site:
            if listed is not None and listed != [self.site]:
                raise ValueError(f"ingest.sites {listed} disagrees with site {self.site!r}: remove ingest.sites "
                                 "(deprecated: central subscribes to its site's topics only)")
        elif listed is not None and len(listed) == 1 and re.fullmatch(ID_PATTERN, listed[0]):
            self.site = listed[0]  # an older config: its one explicit site is the site
        else:
            raise ValueError("site: name the plant this central serves (the gateways' site), e.g. site: suzhou-1 "
                             "-- one central serves one site and keys its record by it (docs/scaling.md)")
        if not self.ingest.client_id:  # one per site: two plants' centrals on one broker must not take over
            self.ingest.client_id = f"plantpulse-central-{self.site}"  # each other's session
        return self


def load_central_config(path: Path | str) -> CentralConfig:
    """Load and check the file; raises plantpulse.configfile.ConfigError with a readable message.

    Relative paths of files named in the configuration (store, token and password files) are
    taken from the configuration file's folder, so a config works wherever it is started from.
    """
    cfg = load_yaml_model(CentralConfig, path)
    unknown = cfg.alerts.unknown_references([li.id for li in cfg.plant.lines], [m.id for m in cfg.plant.machines])
    if unknown:
        raise ConfigError(f"{path}: alerts: " + "; ".join(unknown))
    names = [w.name for w in cfg.notify.webhooks]
    if len(set(names)) != len(names) or "mqtt" in names:
        raise ConfigError(f"{path}: notify.webhooks: every webhook needs its own name (and 'mqtt' is reserved)")
    base = Path(path).parent
    store_paths: dict[str, object] = {"path": base / cfg.store.path}
    if cfg.store.dsn_file is not None:
        store_paths["dsn_file"] = base / cfg.store.dsn_file
    updates: dict[str, object] = {"store": cfg.store.model_copy(update=store_paths)}
    if cfg.mqtt.password_file is not None:
        updates["mqtt"] = cfg.mqtt.model_copy(update={"password_file": base / cfg.mqtt.password_file})
    if cfg.influx is not None and cfg.influx.token_file is not None:
        updates["influx"] = cfg.influx.model_copy(update={"token_file": base / cfg.influx.token_file})
    if cfg.commands.keys_dir is not None:
        keys_dir = base / cfg.commands.keys_dir
        if not keys_dir.is_dir():
            raise ConfigError(f"{path}: commands.keys_dir: {keys_dir} is not a folder (create the keys with "
                              "python -m plantpulse.broker_auth --sign, or remove the setting)")
        updates["commands"] = cfg.commands.model_copy(update={"keys_dir": keys_dir})
    return cfg.model_copy(update=updates)
