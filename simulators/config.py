"""The plant file: which machines a simulated plant has and how each behaves.

Durations are in *plant seconds* and are divided by the plant's ``speed`` to get wall-clock
seconds, except ``min_state_duration``, which is wall-clock on purpose: a test polling every
200 ms needs every state to last longer than that, whatever the speed.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantpulse.configfile import load_yaml_model, parse_yaml_model

SecurityPolicy = Literal["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CounterConfig(_Strict):
    """How the PLC's part counters look on the wire."""

    bits: Literal[16, 32] = Field(16, description="counter width on the PLC: 16 or 32")
    good_start: int = Field(
        0, ge=0, description="good counter value at start, e.g. 65530 to force a 16-bit rollover soon"
    )
    scrap_start: int = Field(0, ge=0, description="scrap counter value at start")
    word_order: Literal["big", "little"] = Field(
        "big", description="32-bit counters: 'big' puts the high word first (most PLCs), 'little' the low word"
    )

    @model_validator(mode="after")
    def _starts_fit(self) -> CounterConfig:
        top = 2**self.bits - 1
        for name in ("good_start", "scrap_start"):
            if getattr(self, name) > top:
                raise ValueError(f"{name} must fit in {self.bits} bits (at most {top})")
        return self


class JobConfig(_Strict):
    """One job (order lot) a machine runs: a program number and how many good parts."""

    number: int = Field(..., ge=0, le=65535, description="job/program number shown in the job register")
    quantity: int = Field(..., ge=1, description="good parts to make before the job ends")
    setup_time: float | None = Field(
        None, ge=0, description="changeover time in plant seconds (default: the machine's setup_time)"
    )


class PauseConfig(_Strict):
    """Micro-stops the PLC does not report: the machine stays 'running' but makes no parts for a while.

    What an OPC UA subscription finds hardest: nothing changes, so nothing is notified.
    """

    every: int = Field(..., ge=1, description="pause after every N parts (good or scrap), e.g. 5")
    duration: float = Field(..., gt=0, description="length of each pause, plant seconds, e.g. 600")


class FaultConfig(_Strict):
    """Random breakdowns while running."""

    mtbf: float = Field(..., gt=0, description="mean running time between faults, plant seconds (e.g. 3600)")
    mttr: float = Field(..., gt=0, description="mean time to repair, plant seconds (e.g. 300)")
    codes: dict[int, float] = Field(
        default_factory=lambda: {101: 1.0},
        description="fault codes and their relative weights, e.g. {101: 3, 205: 1}",
    )

    @model_validator(mode="after")
    def _codes_valid(self) -> FaultConfig:
        if not self.codes:
            raise ValueError("codes needs at least one fault code")
        for code, weight in self.codes.items():
            if not 1 <= code <= 65535:
                raise ValueError(f"fault code {code} must be 1..65535 (0 means 'no fault')")
            if weight <= 0:
                raise ValueError(f"fault code {code} has weight {weight}; weights must be > 0")
        return self


class OpcuaUser(_Strict):
    username: str = Field(..., min_length=1, description="user name")
    password: str = Field(..., min_length=1, description="password")


class OpcuaEndpointConfig(_Strict):
    """Security of a simulated OPC UA server."""

    security: list[SecurityPolicy] = Field(
        default_factory=lambda: list(typing.get_args(SecurityPolicy)),
        description="offered security policies: None, Basic256Sha256_Sign, Basic256Sha256_SignAndEncrypt",
    )
    users: list[OpcuaUser] = Field(
        default_factory=list, description="username/password logins; empty allows anonymous login only"
    )
    allow_anonymous: bool = Field(True, description="accept anonymous login")


class MachineConfig(_Strict):
    """One simulated machine and the PLC endpoint that reports it."""

    id: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="machine id: letters, digits, '_', '.', '-' (e.g. cnc-01)",
    )
    name: str = Field("", description="display name, e.g. 'CNC lathe 1'")
    protocol: Literal["modbus", "opcua"] = Field(..., description="'modbus' or 'opcua'")
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="TCP port of the PLC endpoint; 0 picks a free one (machines with the same port share a server)",
    )
    unit_id: int = Field(1, ge=0, le=255, description="Modbus unit (slave) id, 0..255")
    cycle_time: float = Field(..., gt=0, description="ideal cycle time per part, plant seconds, e.g. 30")
    cycle_jitter: float = Field(
        0.1, ge=0, le=2, description="actual cycle = ideal x (1 + jitter x U[0,1)); 0.1 means up to 10% slower"
    )
    scrap_rate: float = Field(0.02, ge=0, le=1, description="share of parts that are scrap, 0..1")
    setup_time: float = Field(600, ge=0, description="changeover time between jobs, plant seconds")
    idle_between_jobs: float = Field(
        120, ge=0, description="mean wait for material/operator between jobs, plant seconds"
    )
    jobs: list[JobConfig] = Field(
        default_factory=list, description="jobs to run in order (repeated); empty means random jobs"
    )
    job_quantity: tuple[int, int] = Field(
        (5, 40), description="random jobs: [min, max] good parts per job"
    )
    job_numbers: tuple[int, int] = Field(
        (1000, 1999), description="random jobs: [min, max] job/program number"
    )
    auto_jobs: bool = Field(
        True,
        description="true: start the next job on its own; false: wait idle for POST /api/machines/{id}/job",
    )
    faults: FaultConfig | None = Field(None, description="random faults (omit for none)")
    pauses: PauseConfig | None = Field(
        None, description="pauses in production the state does not show (omit for none), e.g. {every: 5, duration: 600}"
    )
    counter: CounterConfig = Field(default_factory=CounterConfig, description="part counter layout")
    min_state_duration: float | None = Field(
        None, ge=0, description="shortest time any state lasts, WALL-CLOCK seconds (default: the plant's)"
    )
    seed: int | None = Field(None, description="random seed for this machine (default: derived from the plant seed)")
    opcua: OpcuaEndpointConfig | None = Field(None, description="OPC UA endpoint options (protocol opcua only)")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> MachineConfig:
        for name in ("job_quantity", "job_numbers"):
            low, high = getattr(self, name)
            if low > high or low < 0:
                raise ValueError(f"{name} must be [min, max] with 0 <= min <= max, got [{low}, {high}]")
        if self.job_quantity[0] < 1:
            raise ValueError("job_quantity min must be at least 1")
        if self.job_numbers[1] > 65535:
            raise ValueError("job_numbers must fit in a 16-bit register (max 65535)")
        if self.opcua is not None and self.protocol != "opcua":
            raise ValueError("'opcua' options are only valid with protocol: opcua")
        return self


class PlantConfig(_Strict):
    """A whole simulated plant."""

    name: str = Field("plant", description="plant name, shown by the control API")
    seed: int = Field(1, description="random seed: the same seed gives the same jobs, faults and parts")
    speed: float = Field(
        1.0, gt=0, le=10000, description="time factor: 60 runs a plant hour in a wall-clock minute"
    )
    min_state_duration: float = Field(
        0.0, ge=0, description="shortest time any state lasts, WALL-CLOCK seconds (e.g. 1.0 above a 0.2 s poll)"
    )
    host: str = Field("127.0.0.1", description="address the PLC endpoints listen on")
    control_port: int = Field(8081, ge=0, le=65535, description="HTTP control API port; 0 picks a free one")
    machines: list[MachineConfig] = Field(..., min_length=1, description="the machines, at least one")

    @model_validator(mode="after")
    def _unique(self) -> PlantConfig:
        seen: set[str] = set()
        for m in self.machines:
            if m.id in seen:
                raise ValueError(f"machine id '{m.id}' appears twice; every machine needs its own id")
            seen.add(m.id)
        shared: dict[int, tuple[str, set[int]]] = {}
        for m in self.machines:
            if m.port == 0:
                continue
            proto, units = shared.setdefault(m.port, (m.protocol, set()))
            if proto != m.protocol:
                raise ValueError(f"port {m.port} is used by both a modbus and an opcua machine")
            if m.protocol == "modbus":
                if m.unit_id in units:
                    raise ValueError(
                        f"machines sharing port {m.port} need different unit_id values ({m.unit_id} twice)"
                    )
                units.add(m.unit_id)
        return self

    def machine(self, machine_id: str) -> MachineConfig:
        for m in self.machines:
            if m.id == machine_id:
                return m
        raise KeyError(machine_id)


def load_plant(path: Path | str) -> PlantConfig:
    """Load and check a plant file; raises plantpulse.configfile.ConfigError with a readable message."""
    return load_yaml_model(PlantConfig, path)


def parse_plant(text: str, source: str = "<plant>") -> PlantConfig:
    return parse_yaml_model(PlantConfig, text, source=source)


def with_manual_jobs(cfg: PlantConfig, machine_ids: Iterable[str]) -> PlantConfig:
    """``cfg`` with ``auto_jobs: false`` on ``machine_ids``: they wait for an outside driver such as the
    simulated operator (``--manual-jobs``). Why an option and not a second plant file: docker compose's
    demo runs the shipped plant with its operator, and two copies of the plant would drift apart.
    Raises ValueError naming an id the plant does not have."""
    wanted = set(machine_ids)
    unknown = wanted - {m.id for m in cfg.machines}
    if unknown:
        raise ValueError(f"no machine {', '.join(sorted(unknown))} in plant '{cfg.name}' "
                         f"(machines: {', '.join(m.id for m in cfg.machines)})")
    machines = [m.model_copy(update={"auto_jobs": False}) if m.id in wanted else m for m in cfg.machines]
    return cfg.model_copy(update={"machines": machines})
