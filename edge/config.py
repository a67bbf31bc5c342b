"""The edge gateway's configuration file: which PLCs to read and how (docs/edge.md, "Configuration").

One YAML file per gateway, validated here without touching the network, so ``edge check`` and
``edge run`` fail at start with one line per problem (field path, line, bad value, what a valid
value looks like) instead of a traceback at the first poll. Every model forbids unknown keys:
a misspelt setting is an error, never silently ignored.

Two notations for Modbus addresses are accepted, and the conversion rule is fixed (see
``ModbusTag``): an integer is the 0-based address as sent on the wire; a string such as
``"40001"`` is the 1-based Modicon notation whose first digit names the table.

Secrets (the OPC UA password) come from an environment variable or a file, never from the
YAML itself, so the file can be committed and shared.

The machine models live beside their collectors (edge/collectors/*_config.py); this module
assembles the whole file and re-exports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from edge.collectors.machine_config import COUNTER_TAGS, TAG_NAMES, MachineBase, Strict
from edge.collectors.modbus_config import ModbusMachine, ModbusTag, ModbusTags, Table
from edge.collectors.opcua_config import OpcuaMachine, OpcuaTag, OpcuaTags
from edge.readings import Raw
from edge.tracker import TrackerConfig
from plantpulse.configfile import ConfigError, load_yaml_model, parse_yaml_model
from plantpulse.mqtt import MqttConfig
from plantpulse.protocol.models import ID_PATTERN, MachineState
from plantpulse.protocol.signing import read_secret

__all__ = [
    "COUNTER_TAGS", "TAG_NAMES", "EdgeConfig", "Machine", "MachineBase", "ModbusMachine", "ModbusTag", "ModbusTags",
    "OpcuaMachine", "OpcuaTag", "OpcuaTags", "Table", "load_edge_config", "parse_edge_config",
]


# ------------------------------------------------------------------ the forwarding half
class BufferConfig(Strict):
    """Bounds of the outbox (edge/buffer). The defaults hold 7 days of a 50-machine line offline."""

    max_events: int = Field(2_500_000, ge=100, description="events held at most, e.g. 2500000")
    max_bytes: int = Field(
        1_500_000_000, ge=100_000, description="bytes of event payload held at most, e.g. 1500000000 (1.5 GB)"
    )


class ForwardConfig(Strict):
    """How events are sent to the broker."""

    batch_max: int = Field(500, ge=1, le=10_000, description="events per MQTT message (batch), e.g. 500")
    window: int = Field(
        20_000, ge=1, description="events sent but not yet confirmed by the consumer, at most, e.g. 20000"
    )
    resend_after: float = Field(
        30.0, gt=0, description="seconds without any confirmation before resending the oldest unconfirmed, e.g. 30"
    )


class HealthConfig(Strict):
    """What the gateway tells about itself."""

    interval: float = Field(10.0, gt=0, description="seconds between health messages, e.g. 10")
    snapshot_interval: float = Field(60.0, gt=0, description="seconds between snapshots of current values, e.g. 60")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics on this port (omit for none; 0 = any free)"
    )
    metrics_host: str = Field("127.0.0.1", description="address the /metrics server listens on")


class CommandsConfig(Strict):
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


Machine = Annotated[ModbusMachine | OpcuaMachine, Field(discriminator="protocol")]


class EdgeConfig(Strict):
    """One gateway: who it is and the machines it reads. Other sections (mqtt, buffer...) sit beside these."""

    edge_id: str = Field(..., pattern=ID_PATTERN, description="gateway id, unique in its site, e.g. edge-line1")
    site: str = Field(..., pattern=ID_PATTERN, description="site (plant) id, e.g. suzhou-1")
    count_interval: float = Field(
        20.0, gt=0, description="seconds: a running machine reports its part counts at most this often, e.g. 20"
    )
    machines: list[Machine] = Field(..., min_length=1, description="the machines this gateway reads, at least one")
    data_dir: Path | None = Field(
        None,
        description="folder of the outbox and the birth counter, e.g. /var/lib/plantpulse/edge "
        "(default: var/edge/<edge_id> beside the config file); one folder per gateway",
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="the MQTT broker events are sent to")
    buffer: BufferConfig = Field(default_factory=BufferConfig, description="bounds of the durable outbox")
    forward: ForwardConfig = Field(default_factory=ForwardConfig, description="how events are sent")
    health: HealthConfig = Field(default_factory=HealthConfig, description="health messages, snapshots, /metrics")
    commands: CommandsConfig = Field(
        default_factory=CommandsConfig, description="which commands from central to act on (signature, age)"
    )

    @model_validator(mode="after")
    def _unique(self) -> EdgeConfig:
        seen: set[str] = set()
        units: dict[tuple[str, int, int], str] = {}
        for m in self.machines:
            if m.id in seen:
                raise ValueError(f"machine id '{m.id}' appears twice; every machine needs its own id")
            seen.add(m.id)
            if isinstance(m, ModbusMachine):
                key = (m.host, m.port, m.unit_id)
                if key in units:
                    raise ValueError(
                        f"machines {units[key]} and {m.id} both read unit_id {m.unit_id} at {m.host}:{m.port}"
                    )
                units[key] = m.id
        return self

    def tracker_config(self, machine: ModbusMachine | OpcuaMachine) -> TrackerConfig:
        """The pure tracker's settings for one machine."""
        state_map: dict[Raw, MachineState] = {raw: state for raw, state in machine.state_map.items()}
        return TrackerConfig(
            machine_id=machine.id,
            state_map=state_map,
            min_cycle_time=machine.min_cycle_time,
            unknown_state=machine.unknown_state,
            good_bits=machine.counter_bits("good_count"),
            scrap_bits=machine.counter_bits("scrap_count"),
            count_interval=self.count_interval,
            offline_after=machine.offline_after,
            quiet_after=self._quiet_after(machine),
        )

    def _quiet_after(self, machine: ModbusMachine | OpcuaMachine) -> float | None:
        """How long a live subscription's silence takes to mean "unchanged" (None: polled machines)."""
        delivery = machine.longest_delivery() if isinstance(machine, OpcuaMachine) else None
        return None if delivery is None else max(self.count_interval, 2 * delivery)


def load_edge_config(path: Path | str) -> EdgeConfig:
    """Load and check a gateway file; raises ConfigError with a readable message.

    Relative file paths in it (certificates, password files) are taken relative to the file's
    folder, so a configuration folder can be moved as a whole.
    """
    path = Path(path)
    return _finish(load_yaml_model(EdgeConfig, path), path.parent)


def parse_edge_config(text: str, *, source: str = "<config>", base_dir: Path | None = None) -> EdgeConfig:
    return _finish(parse_yaml_model(EdgeConfig, text, source=source), base_dir or Path.cwd())


def _finish(cfg: EdgeConfig, base_dir: Path) -> EdgeConfig:
    if cfg.data_dir is None:
        cfg.data_dir = base_dir / "var" / "edge" / cfg.edge_id
    elif not cfg.data_dir.is_absolute():
        cfg.data_dir = base_dir / cfg.data_dir
    mqtt_files = {
        name: base_dir / value
        for name in ("password_file",)
        if isinstance(value := getattr(cfg.mqtt, name), Path) and not value.is_absolute()
    }
    if cfg.mqtt.tls is not None:
        tls = cfg.mqtt.tls.model_copy(update={
            name: base_dir / value for name in ("ca_file", "cert_file", "key_file")
            if isinstance(value := getattr(cfg.mqtt.tls, name), Path) and not value.is_absolute()
        })
        cfg.mqtt = cfg.mqtt.model_copy(update={"tls": tls, **mqtt_files})
    elif mqtt_files:
        cfg.mqtt = cfg.mqtt.model_copy(update=mqtt_files)
    try:
        cfg.mqtt.password()  # fail at start, not at the first connect, when the secret is missing
    except ValueError as exc:
        raise ConfigError(f"mqtt: {exc}") from None
    secret_file = cfg.commands.secret_file
    if secret_file is not None:
        if not secret_file.is_absolute():
            secret_file = base_dir / secret_file
            cfg.commands = cfg.commands.model_copy(update={"secret_file": secret_file})
        try:
            read_secret(secret_file, "commands.secret_file")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for i, machine in enumerate(cfg.machines):
        if not isinstance(machine, OpcuaMachine):
            continue
        updates = {
            name: base_dir / value
            for name in ("certificate", "private_key", "server_certificate", "password_file")
            if isinstance(value := getattr(machine, name), Path) and not value.is_absolute()
        }
        if updates:
            machine = machine.model_copy(update=updates)
            cfg.machines[i] = machine
        machine.password()  # fail at start, not at the first connect, when the secret is missing
    return cfg
