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
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from edge.events import Raw, TrackerConfig
from edge.settings import BufferConfig, ForwardConfig, HealthConfig
from plantpulse.configfile import ConfigError, load_yaml_model, parse_yaml_model
from plantpulse.mqtt import MqttConfig
from protocol.models import ID_PATTERN, MachineState

Table = Literal["holding", "input", "coil", "discrete"]
ModbusType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"]
TYPE_REGISTERS: dict[str, int] = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4,
}
_MODICON = {"4": "holding", "3": "input", "1": "discrete", "0": "coil"}
_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=.+)$")
TAG_NAMES = ("state", "fault_code", "good_count", "scrap_count", "job", "power_on_count")
COUNTER_TAGS = ("good_count", "scrap_count", "power_on_count")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- Modbus
class ModbusTag(_Strict):
    """One value in a Modbus device: where it is and how its registers decode."""

    address: int | str = Field(
        ...,
        description="0-based wire address (e.g. 0 = the first holding register), or 1-based Modicon notation "
        "as a quoted string: '40001' = holding 0, '30001' = input 0, '10001' = discrete input 0, "
        "'00001' = coil 0 (6 digits also work: '400001')",
    )
    table: Table | None = Field(
        None, description="holding, input, coil or discrete (default: holding, or the table a Modicon address names)"
    )
    type: ModbusType = Field(
        "uint16", description="bool, int16, uint16, int32, uint32, float32, int64, uint64 or float64"
    )
    word_order: Literal["big", "little"] = Field(
        "big", description="32/64-bit values: 'big' = high word first (Modicon, Siemens), 'little' = low word first"
    )
    byte_order: Literal["big", "little"] = Field(
        "big", description="bytes inside each register: 'big' (the Modbus standard) or 'little' (swapped)"
    )
    bit: int | None = Field(None, ge=0, le=15, description="read one bit (0..15) of a 16-bit register as a bool")
    scale: float = Field(1.0, description="decoded = raw x scale + offset (not for counters)")
    offset: float = Field(0.0, description="decoded = raw x scale + offset (not for counters)")
    bits: int | None = Field(
        None, ge=1, le=64, description="counters: width at which the PLC's counter wraps (default: the type's width)"
    )
    _table: Table = PrivateAttr("holding")
    _address: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _resolve_address(self) -> ModbusTag:
        if isinstance(self.address, str):
            table, address = _parse_modicon(self.address)
            if self.table is not None and self.table != table:
                raise ValueError(
                    f"address '{self.address}' is in the {table} table but table says {self.table}; drop one"
                )
        else:
            if not 0 <= self.address <= 65535:
                raise ValueError(f"address {self.address} must be 0..65535 (0-based, as sent on the wire)")
            table, address = self.table or "holding", self.address
        if table in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"{table} addresses hold single bits: use type: bool (not {self.type})")
        if self.type == "bool" and table in ("holding", "input") and self.bit is None:
            raise ValueError("a bool in a register needs bit: 0..15 (which bit of the register)")
        if self.bit is not None and self.type not in ("bool", "int16", "uint16"):
            raise ValueError("bit: reads one bit of a 16-bit register; use type: bool")
        if address + self.registers > 65536:
            raise ValueError(f"{self.type} at address {address} runs past the end of the table (65535)")
        self._table, self._address = table, address
        return self

    @property
    def wire_table(self) -> Table:
        return self._table

    @property
    def wire_address(self) -> int:
        """The 0-based address sent on the wire."""
        return self._address

    @property
    def registers(self) -> int:
        """How many registers (or bits, for coils/discrete inputs) the value occupies."""
        return TYPE_REGISTERS[self.type]

    @property
    def width(self) -> int:
        """Counter width: ``bits`` if set, else the width of the type."""
        return self.bits or (1 if self.type == "bool" else 16 * TYPE_REGISTERS[self.type])

    def describe(self) -> str:
        """The address as an engineer reads it in a PLC manual, e.g. ``holding 2 (40003) uint32``."""
        one_based = {"holding": "4", "input": "3", "discrete": "1", "coil": "0"}[self._table]
        bit = f".{self.bit}" if self.bit is not None else ""
        return f"{self._table} {self._address}{bit} ({one_based}{self._address + 1:04d}) {self.type}"


def _parse_modicon(text: str) -> tuple[Table, int]:
    """'40001' -> ('holding', 0): the first digit names the table, the rest is 1-based."""
    if not re.fullmatch(r"[0134]\d{4,5}", text):
        raise ValueError(
            f"address '{text}' is not Modicon notation: use 5 or 6 digits starting with 4 (holding), "
            "3 (input), 1 (discrete input) or 0 (coil), or write the 0-based wire address as a number"
        )
    number = int(text[1:])
    if number < 1:
        raise ValueError(f"address '{text}': Modicon numbers start at 1 ({text[0]}0001 is address 0)")
    table: Table = _MODICON[text[0]]  # type: ignore[assignment]  # the regex allows only these digits
    return table, number - 1


class ModbusTags(_Strict):
    """Where the machine's values are. Only ``state`` and ``good_count`` are required."""

    state: ModbusTag = Field(..., description="the machine state register (mapped by state_map)")
    good_count: ModbusTag = Field(..., description="good part counter (an integer type)")
    scrap_count: ModbusTag | None = Field(None, description="scrap part counter (an integer type)")
    fault_code: ModbusTag | None = Field(None, description="fault / alarm code register (0 = none)")
    job: ModbusTag | None = Field(None, description="job / program number register")
    power_on_count: ModbusTag | None = Field(
        None, description="power-on counter: tells a counter reset after a power cycle from a rollover"
    )

    @model_validator(mode="after")
    def _counters_are_integers(self) -> ModbusTags:
        for name in COUNTER_TAGS:
            tag = getattr(self, name)
            if tag is None:
                continue
            if tag.type in ("bool", "float32", "float64") or tag.bit is not None:
                raise ValueError(f"{name} is a counter: give it an integer type such as uint16 or uint32")
            if tag.scale != 1.0 or tag.offset != 0.0:
                raise ValueError(f"{name} is a counter: scale and offset would falsify the part count")
        return self


class _MachineBase(_Strict):
    id: str = Field(..., pattern=ID_PATTERN, description="machine id: letters, digits, '_', '.', '-' (e.g. cnc-01)")
    name: str | None = Field(None, description="display name, e.g. 'CNC lathe 1'")
    min_cycle_time: float = Field(
        ...,
        gt=0,
        description="fastest plausible time per part in seconds, e.g. 20; a counter rising faster is held "
        "as a glitch, and it decides rollover against reset",
    )
    state_map: dict[bool | int | str, MachineState] = Field(
        ...,
        description="raw state value -> running, idle, setup, fault or maintenance, e.g. {0: idle, 1: running}",
    )
    unknown_state: MachineState = Field(
        MachineState.IDLE, description="state reported for a raw value missing from state_map (default idle)"
    )
    offline_after: int = Field(3, ge=1, description="failed reads in a row before the machine is offline, e.g. 3")
    retry_max: float = Field(
        30.0, gt=0, description="longest wait in seconds between retries of an unreachable machine, e.g. 30"
    )

    @field_validator("state_map")
    @classmethod
    def _state_map_valid(cls, value: dict[bool | int | str, MachineState]) -> dict[bool | int | str, MachineState]:
        if not value:
            raise ValueError("state_map needs at least one entry, e.g. {0: idle, 1: running}")
        out: dict[bool | int | str, MachineState] = {}
        for raw, state in value.items():
            if state == MachineState.OFFLINE:
                raise ValueError(f"raw value {raw!r} maps to offline, which only means 'no communication'")
            key: bool | int | str = int(raw) if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw) else raw
            out[key] = state
        return out

    @field_validator("unknown_state")
    @classmethod
    def _unknown_not_offline(cls, value: MachineState) -> MachineState:
        if value == MachineState.OFFLINE:
            raise ValueError("offline only means 'no communication'; choose idle or fault")
        return value


class ModbusMachine(_MachineBase):
    """A machine read over Modbus TCP (several unit ids may sit behind one host:port)."""

    protocol: Literal["modbus"] = Field(..., description="'modbus' or 'opcua'")
    host: str = Field(..., min_length=1, description="PLC or Modbus gateway address, e.g. 192.168.1.20")
    port: int = Field(502, ge=1, le=65535, description="TCP port, usually 502")
    unit_id: int = Field(1, ge=0, le=255, description="unit (slave) id, 0..255; 1 for most PLCs")
    poll_interval: float = Field(1.0, gt=0, description="seconds between polls, e.g. 1.0")
    timeout: float = Field(1.0, gt=0, description="seconds to wait for an answer before the read fails, e.g. 1.0")
    max_block: int = Field(
        125, ge=1, le=125, description="most registers per read: 125 (the protocol's limit) or less for small devices"
    )
    max_gap: int = Field(
        10, ge=0, le=124,
        description="unused registers one read may span to merge two tags; 0 if the device refuses unmapped addresses",
    )
    tags: ModbusTags = Field(..., description="where state, good_count (and optional tags) are")

    @property
    def connection(self) -> tuple[str, int]:
        return (self.host, self.port)

    def counter_bits(self, name: str) -> int:
        tag = getattr(self.tags, name)
        return 32 if tag is None else int(tag.width)


# --------------------------------------------------------------------------- OPC UA
class OpcuaTag(_Strict):
    """A variable node. A plain string is short for ``{node: ...}``."""

    node: str = Field(
        ...,
        description="node id such as 's=Line1.State', 'i=1001', 'nsu=urn:vendor:plc;s=Counter' or 'ns=3;s=X' "
        "(without ns/nsu the machine's namespace_uri is used)",
    )
    bits: int | None = Field(
        None, ge=1, le=64, description="counters: width at which the PLC's counter wraps, e.g. 16 for a UInt16"
    )

    @field_validator("node")
    @classmethod
    def _node_syntax(cls, value: str) -> str:
        if not _NODE_ID.match(value):
            raise ValueError("not an OPC UA node id; write e.g. s=Machine1.State, i=1001 or nsu=urn:x;s=Name")
        return value


def _tag_from_str(value: Any) -> Any:
    return {"node": value} if isinstance(value, str) else value


NodeTag = Annotated[OpcuaTag, Field(description="a node id string, or {node: ..., bits: ...}")]


class OpcuaTags(_Strict):
    """Which nodes hold the machine's values. Only ``state`` and ``good_count`` are required."""

    state: NodeTag = Field(..., description="the machine state variable (mapped by state_map)")
    good_count: NodeTag = Field(..., description="good part counter variable")
    scrap_count: NodeTag | None = Field(None, description="scrap part counter variable")
    fault_code: NodeTag | None = Field(None, description="fault / alarm code variable (0 = none)")
    job: NodeTag | None = Field(None, description="job / program number variable")
    power_on_count: NodeTag | None = Field(None, description="power-on counter variable")

    @model_validator(mode="before")
    @classmethod
    def _strings_are_nodes(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: _tag_from_str(value) for key, value in data.items()}
        return data


class OpcuaMachine(_MachineBase):
    """A machine read over OPC UA: subscriptions by default, polling as a fallback."""

    protocol: Literal["opcua"] = Field(..., description="'modbus' or 'opcua'")
    endpoint: str = Field(
        ..., pattern=r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$", description="server URL, e.g. opc.tcp://192.168.1.30:4840"
    )
    namespace_uri: str | None = Field(
        None, description="namespace URI of the tags (its index is looked up on every connect), e.g. urn:vendor:plc"
    )
    mode: Literal["subscription", "polling"] = Field(
        "subscription", description="'subscription' (data-change notifications) or 'polling'"
    )
    publishing_interval: float = Field(0.5, gt=0, description="subscription: seconds between notification batches")
    sampling_interval: float = Field(
        0.1, ge=0, description="subscription: seconds between the server's samples of each value (0 = fastest)"
    )
    queue_size: int = Field(
        10, ge=2, le=1000, description="subscription: values the server queues per state/fault item between batches"
    )
    counter_check_interval: float = Field(
        60.0, gt=0, description="subscription: seconds between plain reads of the counters that check the subscription"
    )
    poll_interval: float = Field(1.0, gt=0, description="polling: seconds between reads")
    keepalive_interval: float = Field(
        5.0, gt=0, description="seconds between checks that the session is alive; offline within ~2 of them"
    )
    timeout: float = Field(5.0, gt=0, description="seconds to wait for the server's answer, e.g. 5")
    security: Literal["None", "Sign", "SignAndEncrypt"] = Field(
        "None", description="message security: None, Sign or SignAndEncrypt"
    )
    policy: Literal["Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"] = Field(
        "Basic256Sha256", description="security policy, e.g. Basic256Sha256"
    )
    certificate: Path | None = Field(
        None, description="client certificate (DER), created self-signed if missing; relative to this file"
    )
    private_key: Path | None = Field(None, description="client private key (PEM), created if missing")
    server_certificate: Path | None = Field(
        None, description="the server's certificate to pin (DER/PEM); default: taken from its endpoint list"
    )
    application_uri: str = Field(
        "urn:plantpulse:edge", min_length=1, description="client application URI written into the certificate"
    )
    username: str | None = Field(None, min_length=1, description="user name for username/password login")
    password_env: str | None = Field(None, min_length=1, description="environment variable holding the password")
    password_file: Path | None = Field(None, description="file whose first line is the password")
    tags: OpcuaTags = Field(..., description="node ids of state, good_count (and optional tags)")

    @model_validator(mode="after")
    def _security_complete(self) -> OpcuaMachine:
        if self.security != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(
                f"security {self.security} needs certificate: and private_key: (paths; created if missing)"
            )
        if self.password_env and self.password_file:
            raise ValueError("give the password in password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username:")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError(
                "username needs password_env: (an environment variable) or password_file: (passwords never "
                "go into the configuration file)"
            )
        for name in TAG_NAMES:
            tag = getattr(self.tags, name)
            if tag is not None and self.namespace_uri is None and not tag.node.startswith(("ns=", "nsu=")):
                raise ValueError(
                    f"tags.{name} '{tag.node}' has no namespace: set namespace_uri: or write nsu=URI;{tag.node}"
                )
        return self

    @property
    def connection(self) -> tuple[object, ...]:
        """Machines with equal keys share one session (e.g. several machines behind one OPC UA gateway).

        Everything that is not about the machine itself is about the session, so it is in the key.
        """
        own = {"id", "name", "min_cycle_time", "state_map", "unknown_state", "offline_after", "retry_max", "tags",
               "namespace_uri"}
        return tuple((name, str(getattr(self, name))) for name in type(self).model_fields if name not in own)

    def counter_bits(self, name: str) -> int:
        tag = getattr(self.tags, name)
        return 32 if tag is None or tag.bits is None else int(tag.bits)

    def password(self) -> str | None:
        """The password from the environment or the file; raises ConfigError naming what is missing."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"machine {self.id}: environment variable {self.password_env} (password_env) is not set"
                )
            return value
        if self.password_file:
            try:
                return self.password_file.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError) as exc:
                raise ConfigError(
                    f"machine {self.id}: cannot read the password from {self.password_file} (password_file): {exc}"
                ) from None
        return None


Machine = Annotated[ModbusMachine | OpcuaMachine, Field(discriminator="protocol")]


class EdgeConfig(_Strict):
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
        )


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
