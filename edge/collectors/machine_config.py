"""What every machine's configuration has, whatever its protocol (edge/config.py assembles the file).

Tag names are fixed: ``state``, ``fault_code``, ``good_count``, ``scrap_count``, ``job``,
``power_on_count`` and the per-job counters ``job_good_count``/``job_scrap_count``; each protocol
says where to find them (modbus_config.py, opcua_config.py).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plantpulse.protocol.models import ID_PATTERN, MachineState

TAG_NAMES = ("state", "fault_code", "good_count", "scrap_count", "job", "power_on_count", "job_good_count",
             "job_scrap_count")
COUNTER_TAGS = ("good_count", "scrap_count", "power_on_count", "job_good_count", "job_scrap_count")
# The per-job counters: parts of the current job, reset by the PLC at each job change. They split
# the parts of a read that saw a job change exactly (edge/tracker.py); nothing else counts from them.
JOB_COUNTER_HELP = ("{kind} parts of the current job, reset by the PLC at each job change: splits the parts "
                    "read together with a job change exactly between the two jobs")


class Strict(BaseModel):
    """Every configuration model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class MachineBase(Strict):
    """Identity, plausibility, state map and offline rules: the same for every protocol."""

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
