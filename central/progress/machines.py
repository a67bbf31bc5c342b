"""Machines and lines from configuration, and what central assumes about machines it was not told of.

Metadata (name, line, work centre, ideal cycle time, fault texts in Chinese and English,
micro-stop threshold) comes from central's YAML configuration. Events are the truth about
which machines exist, though: a machine seen in events but missing from the configuration
gets a default entry flagged ``configured=False``; its events are kept, never dropped, and the
flag tells the operator to add it (docs/central.md, "Machines").
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from central.progress.shifts import AlwaysPlanned, Calendar, ShiftCalendar, ShiftCalendarConfig, TimeZoneName
from plantpulse.protocol.models import ID_PATTERN

DEFAULT_MICRO_STOP = 120.0
"""Seconds: a stop shorter than two minutes is loading, a quick reset, a glance at a drawing;
longer ones are availability losses that deserve a reason (docs/central.md, "Micro-stops")."""


class FaultText(BaseModel):
    """What a PLC fault code means, in Chinese and English."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(..., min_length=1, description="the Chinese text, e.g. 主轴过载")
    en: str = Field(..., min_length=1, description="the English text, e.g. spindle overload")


class MachineConfig(BaseModel):
    """One machine as configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., pattern=ID_PATTERN, description="the machine id the edge reports, e.g. cnc-01")
    name: str | None = Field(None, min_length=1, description="display name, e.g. 'CNC 1 (DMG Mori)'; default: id")
    line: str | None = Field(None, description="id of a configured line, e.g. line-a")
    work_centre: str | None = Field(None, description="work centre the machine belongs to, e.g. milling")
    ideal_cycle_time: float | None = Field(
        None, gt=0, description="seconds per part at ideal speed, e.g. 42.5"
    )
    faults: dict[int, FaultText] = Field(
        default_factory=dict, description="fault code -> {zh: ..., en: ...}, e.g. {101: {zh: 急停, en: e-stop}}"
    )
    micro_stop_threshold: float | None = Field(
        None, ge=0, description="seconds; stops shorter than this are micro-stops (0: none); default: the site's"
    )


class LineConfig(BaseModel):
    """A production line and its shift calendar."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., pattern=ID_PATTERN, description="line id, e.g. line-a")
    name: str | None = Field(None, min_length=1, description="display name, e.g. 'Line A 机加工'; default: id")
    shifts: ShiftCalendarConfig | None = Field(
        None, description="the line's shift calendar; omitted: planned around the clock"
    )


class MachinesConfig(BaseModel):
    """The plant's lines and machines (a section of central's configuration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = Field(
        "UTC", description="IANA timezone for days of lines without a calendar, e.g. Asia/Shanghai"
    )
    micro_stop_threshold: float = Field(
        DEFAULT_MICRO_STOP, ge=0, description="seconds; stops shorter than this are micro-stops (0: none), e.g. 120"
    )
    lines: list[LineConfig] = Field(default_factory=list, description="the production lines")
    machines: list[MachineConfig] = Field(default_factory=list, description="the machines")

    @model_validator(mode="after")
    def _references(self) -> MachinesConfig:
        for kind, ids in (("line", [li.id for li in self.lines]), ("machine", [m.id for m in self.machines])):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind} ids must be unique; repeated: {', '.join(dupes)}")
        lines = {li.id for li in self.lines}
        for machine in self.machines:
            if machine.line is not None and machine.line not in lines:
                known = ", ".join(sorted(lines)) or "none configured"
                raise ValueError(f"machine {machine.id} names line {machine.line!r}, which is not a line ({known})")
        return self


class MachineInfo(BaseModel):
    """A machine's resolved metadata; ``configured=False`` for one only seen in events."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    line: str | None
    work_centre: str | None
    ideal_cycle_time: float | None
    micro_stop_threshold: float
    faults: dict[int, FaultText]
    configured: bool

    def fault_text(self, code: int | None) -> FaultText | None:
        return None if code is None else self.faults.get(code)


class Catalog:
    """Resolves machine ids to metadata and calendars (immutable after construction)."""

    def __init__(self, config: MachinesConfig) -> None:
        self.config = config
        self._tz: tzinfo = ZoneInfo(config.timezone)
        self._machines = {
            m.id: MachineInfo(
                id=m.id, name=m.name or m.id, line=m.line, work_centre=m.work_centre,
                ideal_cycle_time=m.ideal_cycle_time,
                micro_stop_threshold=(
                    m.micro_stop_threshold if m.micro_stop_threshold is not None else config.micro_stop_threshold
                ),
                faults=m.faults, configured=True,
            )
            for m in config.machines
        }
        self._always: Calendar = AlwaysPlanned(self._tz)
        self._calendars: dict[str, Calendar] = {
            li.id: ShiftCalendar(li.shifts) if li.shifts is not None else self._always for li in config.lines
        }

    def machine(self, machine_id: str) -> MachineInfo:
        """The configured entry, or a default one flagged ``configured=False`` (never an error)."""
        info = self._machines.get(machine_id)
        if info is not None:
            return info
        return MachineInfo(
            id=machine_id, name=machine_id, line=None, work_centre=None, ideal_cycle_time=None,
            micro_stop_threshold=self.config.micro_stop_threshold, faults={}, configured=False,
        )

    def configured_ids(self) -> list[str]:
        return [m.id for m in self.config.machines]

    def calendar(self, machine_id: str) -> Calendar:
        """The shift calendar of the machine's line; around the clock without one."""
        line = self.machine(machine_id).line
        return self._calendars.get(line, self._always) if line is not None else self._always
