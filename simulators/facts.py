"""What a simulated machine does and shows: the facts the ground truth records, the values a PLC serves.

Pure data, shared by the model (which produces them), the truth recorder and the endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class RawState(IntEnum):
    """The state register's values (see docs/simulators.md, register map)."""

    IDLE = 0
    RUNNING = 1
    SETUP = 2
    FAULT = 3
    MAINTENANCE = 4


@dataclass(frozen=True)
class StateFact:
    machine_id: str
    ts: float
    state: RawState
    fault_code: int
    job: int


@dataclass(frozen=True)
class PartFact:
    machine_id: str
    ts: float
    good: bool
    job: int
    cycle_time: float


@dataclass(frozen=True)
class PowerCycleFact:
    machine_id: str
    ts: float  # power back on (counters at 0 from here)
    power_on_count: int
    off_ts: float  # power lost (production stopped here)


@dataclass(frozen=True)
class PresetFact:
    """A counter set to a value by an operator or the PLC program: not production."""

    machine_id: str
    ts: float
    counter: str  # "good" or "scrap"
    before: int
    after: int


@dataclass(frozen=True)
class PauseFact:
    """A pause in production that the state does not show (the machine still says running)."""

    machine_id: str
    ts: float
    end: float  # as planned; a state change (fault, setup...) ends it earlier


Fact = StateFact | PartFact | PowerCycleFact | PresetFact | PauseFact


@dataclass(frozen=True)
class MachineValues:
    """What the PLC shows at one moment (counters already wrapped to their width)."""

    state: RawState
    fault_code: int
    good_counter: int
    scrap_counter: int
    job: int
    power_on_count: int
    last_cycle_time: float
    good_total: int
    scrap_total: int
    job_good: int = 0  # parts of the current job (reset at each job change and power-up)
    job_scrap: int = 0
