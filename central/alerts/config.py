"""Alert thresholds, severities and escalation (the ``alerts:`` section of central's configuration).

Machine thresholds are set plant-wide (``machines_default``) and overridden per line and per
machine, field by field: a machine's value wins over its line's, the line's over the plant's,
the plant's over the built-in default. A line of slow five-axis machines can so have a longer
long-stop threshold than the plant without repeating every other setting.

Example::

    alerts:
      machines_default: {long_stop_after: 600, stall_factor: 3}
      lines:
        line-b: {long_stop_after: 1800, severity: {long_stop: critical}}
      machines:
        cnc-07: {disabled: [stall]}
      gateways: {offline_grace: 60}
      escalation: {after: 900, every: 1800, max_level: 2}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from central.alerts.conditions import MACHINE_RULES, Rule, Severity
from plantpulse.protocol.models import MachineState

DEFAULT_SEVERITY: dict[Rule, Severity] = {
    Rule.FAULT: Severity.CRITICAL,
    Rule.LONG_STOP: Severity.WARNING,
    Rule.STALL: Severity.WARNING,
    Rule.GATEWAY_OFFLINE: Severity.WARNING,
    Rule.DATA_GAP: Severity.WARNING,
    Rule.EVENTS_DROPPED: Severity.WARNING,
    Rule.CLOCK_SKEW: Severity.INFO,
    Rule.ORDER_AT_RISK: Severity.WARNING,
    Rule.ORDER_OVERDUE: Severity.CRITICAL,
    Rule.MATERIAL_SHORTAGE: Severity.WARNING,
    Rule.SHIFT_SUMMARY: Severity.INFO,
}
T = TypeVar("T")

DEFAULT_LONG_STOP_AFTER = 600.0  # seconds of shift time
DEFAULT_STALL_FACTOR = 3.0  # x the ideal cycle time
DEFAULT_STALL_MIN = 120.0  # seconds
DEFAULT_STOP_STATES = (MachineState.IDLE, MachineState.SETUP, MachineState.OFFLINE)
"""A fault has its own rule (open at once, escalating); maintenance is planned work."""

_SEVERITY_HINT = "rule -> info, warning or critical, e.g. {long_stop: critical}"


def _machine_rules_only(rules: Iterable[Rule], where: str) -> None:
    wrong = [r.value for r in rules if r not in MACHINE_RULES]
    if wrong:
        allowed = ", ".join(r.value for r in MACHINE_RULES)
        raise ValueError(f"{', '.join(wrong)} cannot be set {where}: only machine rules can ({allowed})")


class MachineRules(BaseModel):
    """Thresholds of the machine rules; every field left out falls back to the level above."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    long_stop_after: float | None = Field(
        None, gt=0, description="seconds of shift time a machine may stand still before a long-stop alert, e.g. 600"
    )
    long_stop_states: list[MachineState] | None = Field(
        None,
        min_length=1,
        description="machine states that count as standing still, e.g. [idle, setup, offline] (add fault to "
        "also get a long stop for a long fault)",
    )
    stall_factor: float | None = Field(
        None, gt=0, description="k: a running machine with no part for k x its ideal cycle time stalls, e.g. 3"
    )
    stall_min: float | None = Field(
        None, ge=0, description="seconds: the shortest stall, for machines with very short cycles, e.g. 120"
    )
    disabled: list[Rule] | None = Field(
        None, description="machine rules that never fire here, e.g. [stall] (fault, long_stop, stall)"
    )
    severity: dict[Rule, Severity] | None = Field(None, description=_SEVERITY_HINT)

    @field_validator("disabled")
    @classmethod
    def _disabled(cls, value: list[Rule] | None) -> list[Rule] | None:
        _machine_rules_only(value or (), "per machine or line")
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: dict[Rule, Severity] | None) -> dict[Rule, Severity] | None:
        _machine_rules_only((value or {}).keys(), "per machine or line")
        return value


class GatewayRules(BaseModel):
    """Thresholds of the gateway and data rules (plant-wide: they fire at any hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offline_grace: float = Field(
        30.0, ge=0, description="seconds a gateway may be offline (restart, network blip) before an alert, e.g. 30"
    )
    skew_bound: float = Field(
        10.0, gt=0, description="seconds a gateway clock may be off (either way) before an alert, e.g. 10"
    )
    dropped_hold: float = Field(
        1800.0, gt=0, description="seconds an events-dropped alert stays open after the counter last rose, e.g. 1800"
    )
    gap_hold: float = Field(
        1800.0, gt=0, description="seconds a data-gap alert stays open after the gap was recorded, e.g. 1800"
    )
    disabled: list[Rule] = Field(
        default_factory=list,
        description="gateway rules that never fire, e.g. [clock_skew] (gateway_offline, data_gap, events_dropped, "
        "clock_skew)",
    )

    @field_validator("disabled")
    @classmethod
    def _disabled(cls, value: list[Rule]) -> list[Rule]:
        wrong = [r.value for r in value if r in MACHINE_RULES]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} is a machine rule: disable it under machines_default, lines or machines"
            )
        return value


class EscalationConfig(BaseModel):
    """When an unacknowledged alert escalates (its level rises; targets can listen from a level on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: float = Field(
        900.0, gt=0, description="seconds an alert may stay unacknowledged before level 1, e.g. 900"
    )
    every: float | None = Field(
        None, gt=0, description="seconds between further levels, e.g. 1800; default: the same as after"
    )
    max_level: int = Field(3, ge=0, le=10, description="the highest level (0 turns escalation off), e.g. 3")
    min_severity: Severity = Field(
        Severity.WARNING, description="alerts below this severity never escalate: info, warning or critical"
    )

    @property
    def period(self) -> float:
        return self.every if self.every is not None else self.after


class AlertsConfig(BaseModel):
    """The ``alerts:`` section: thresholds per machine or line, severities, escalation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    machines_default: MachineRules = Field(
        default_factory=MachineRules, description="machine thresholds for the whole plant, e.g. {long_stop_after: 600}"
    )
    lines: dict[str, MachineRules] = Field(
        default_factory=dict,
        description="line id -> thresholds overriding the plant's, e.g. {line-a: {stall_factor: 5}}",
    )
    machines: dict[str, MachineRules] = Field(
        default_factory=dict,
        description="machine id -> thresholds overriding its line's, e.g. {cnc-01: {long_stop_after: 300}}",
    )
    gateways: GatewayRules = Field(
        default_factory=GatewayRules, description="gateway thresholds, e.g. {offline_grace: 30, skew_bound: 10}"
    )
    severity: dict[Rule, Severity] = Field(default_factory=dict, description=_SEVERITY_HINT)
    escalation: EscalationConfig = Field(
        default_factory=EscalationConfig, description="escalation of unacknowledged alerts, e.g. {after: 900}"
    )

    def unknown_references(self, line_ids: Iterable[str], machine_ids: Iterable[str]) -> list[str]:
        """Problems with line or machine ids that the plant's configuration does not have."""
        problems = []
        for kind, named, known in (("line", self.lines, set(line_ids)), ("machine", self.machines, set(machine_ids))):
            for name in sorted(set(named) - known):
                listed = ", ".join(sorted(known)) or "none configured"
                problems.append(f"alerts.{kind}s.{name}: there is no {kind} {name!r} (configured: {listed})")
        return problems

    def gateway_thresholds(self) -> GatewayThresholds:
        severity = {rule: self.severity.get(rule, DEFAULT_SEVERITY[rule]) for rule in Rule if rule not in MACHINE_RULES}
        gw = self.gateways
        return GatewayThresholds(
            offline_grace=gw.offline_grace, skew_bound=gw.skew_bound, dropped_hold=gw.dropped_hold,
            gap_hold=gw.gap_hold, disabled=frozenset(gw.disabled), severity=severity,
        )

    def machine_thresholds(self, machine_id: str, line: str | None) -> MachineThresholds:
        """The thresholds that apply to one machine: machine > line > plant > built-in default."""
        layers = [
            layer
            for layer in (self.machines.get(machine_id), self.lines.get(line) if line else None, self.machines_default)
            if layer is not None
        ]
        severity = {rule: self.severity.get(rule, DEFAULT_SEVERITY[rule]) for rule in MACHINE_RULES}
        for layer in reversed(layers):
            severity.update(layer.severity or {})
        states = _first((layer.long_stop_states for layer in layers), list(DEFAULT_STOP_STATES))
        return MachineThresholds(
            long_stop_after=_first((layer.long_stop_after for layer in layers), DEFAULT_LONG_STOP_AFTER),
            long_stop_states=frozenset(states),
            stall_factor=_first((layer.stall_factor for layer in layers), DEFAULT_STALL_FACTOR),
            stall_min=_first((layer.stall_min for layer in layers), DEFAULT_STALL_MIN),
            disabled=frozenset(_first((layer.disabled for layer in layers), [])),
            severity=severity,
        )


def _first(values: Iterable[T | None], default: T) -> T:
    for value in values:
        if value is not None:
            return value
    return default


@dataclass(frozen=True, slots=True)
class MachineThresholds:
    """One machine's resolved thresholds (every value concrete)."""

    long_stop_after: float
    long_stop_states: frozenset[MachineState]
    stall_factor: float
    stall_min: float
    disabled: frozenset[Rule]
    severity: dict[Rule, Severity]


@dataclass(frozen=True, slots=True)
class GatewayThresholds:
    """The resolved gateway and data-gap thresholds."""

    offline_grace: float
    skew_bound: float
    dropped_hold: float
    gap_hold: float
    disabled: frozenset[Rule]
    severity: dict[Rule, Severity]
