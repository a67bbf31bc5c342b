"""A hand-made plant for the alert tests: one line with day shifts, machines on and off that line.

Line A works Monday to Friday 08:00-17:00 with lunch 12:00-13:00 (Asia/Shanghai); machines
without a line are planned around the clock. ``at("mon", "09:10")`` gives the Unix time of a
wall-clock moment in the week of Monday 2026-11-23.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from central.alerts.alert import Alert, TransitionKind
from central.alerts.conditions import Condition, Evaluation, Rule
from central.alerts.config import AlertsConfig, EscalationConfig
from central.alerts.lifecycle import Reconciled, reconcile
from central.alerts.rules import AlertRules
from central.progress.machines import Catalog, MachinesConfig
from central.progress.status import MachineStatus
from plantpulse.configfile import parse_yaml_model
from plantpulse.protocol.models import MachineState

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, tzinfo=TZ)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

PLANT = """
timezone: Asia/Shanghai
lines:
  - id: line-a
    shifts:
      timezone: Asia/Shanghai
      shifts:
        - {name: day, days: [mon, tue, wed, thu, fri], start: '08:00', end: '17:00',
           breaks: [{start: '12:00', end: '13:00'}]}
machines:
  - id: cnc-01
    name: CNC 1
    line: line-a
    ideal_cycle_time: 60
    faults:
      101: {zh: 主轴过载, en: spindle overload}
  - id: press-01
    line: line-a
  - id: robot-01
    ideal_cycle_time: 10
"""

RUN, IDLE, SETUP, FAULT = MachineState.RUNNING, MachineState.IDLE, MachineState.SETUP, MachineState.FAULT
MAINT, OFFLINE = MachineState.MAINTENANCE, MachineState.OFFLINE


def at(day: str, clock: str, seconds: float = 0.0, *, week: int = 0) -> float:
    """Unix time of ``clock`` on ``day`` of the week of Monday 2026-11-23 (``week=1``: the week after)."""
    hours, minutes = (int(x) for x in clock.split(":"))
    moment = MONDAY + timedelta(days=DAYS.index(day) + 7 * week, hours=hours, minutes=minutes, seconds=seconds)
    return moment.timestamp()


def catalog() -> Catalog:
    return Catalog(parse_yaml_model(MachinesConfig, PLANT))


def rules(config_yaml: str = "") -> AlertRules:
    return AlertRules(parse_yaml_model(AlertsConfig, config_yaml), catalog())


def status(
    machine: str, state: MachineState | None, since: float | None, *, fault_code: int | None = None,
    last_part_at: float | None = None, gateway_online: bool | None = True, job: str | None = "J-1001",
) -> MachineStatus:
    return MachineStatus(
        machine, state=state, since=since, fault_code=fault_code,
        fault_text=catalog().machine(machine).fault_text(fault_code), job=job, last_part_at=last_part_at,
        gateway_online=gateway_online,
    )


class Store:
    """What the central store does with reconcile's results: keep alerts by id, record what was sent."""

    def __init__(self, escalation: EscalationConfig) -> None:
        self.escalation = escalation
        self.alerts: dict[str, Alert] = {}
        self.sent: list[str] = []
        self.kinds: list[tuple[str, TransitionKind]] = []

    def apply(self, result: Reconciled) -> Reconciled:
        for change in result.changes:
            assert change.created == (change.alert.id not in self.alerts)
            self.alerts[change.alert.id] = change.alert
        self.sent += [n.id for n in result.notifications]
        self.kinds += [(n.subject, n.kind) for n in result.notifications]
        return result

    def active(self) -> list[Alert]:
        return [a for a in self.alerts.values() if a.active]

    def tick(self, conditions: Iterable[Condition] | Evaluation, now: float, historic: bool = False) -> Reconciled:
        return self.apply(reconcile(self.active(), conditions, now, historic, escalation=self.escalation))

    def one(self, rule: Rule = Rule.FAULT, subject: str = "cnc-01") -> Alert:
        (alert,) = [a for a in self.active() if a.key == (rule, subject)]
        return alert
