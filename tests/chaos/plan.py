"""The chaos run's plant and script, drawn from a seed (pure: no I/O, no clock).

A ``Plan`` is everything a run does, decided before it starts, so a seed names a run exactly and
a failure can be replayed: which machines the plant has (protocol, counter width, how near the
wrap, which counter tags their gateway reads) and, at which second of the run, what breaks
(``Action``). The runner (``tests/chaos/run.py``) only executes it; the checks
(``tests/chaos/checks.py``) compare what central made of it with the simulators' ground truth.

What the script does, and why each:

* plant-wide: the broker stops (once deleting its persistence: queued messages and sessions gone),
  each gateway is killed with SIGKILL (its outbox and tracker memory must carry it over), central is
  killed with SIGKILL (its store and the gateways' resends must), the OPC UA servers and a shared
  Modbus port restart (sessions, subscriptions and connections must come back without a gateway
  restart);
* per machine: faults (each one alert), unreachable PLCs that refuse or hang, power cycles (with
  the PLC off a while, also while unreachable: issue 11 G), counter presets up, down and to just
  below the wrap (A, B), job changes (also while the machine's gateway is down: F).

Durations are wall seconds; the plant runs ``speed`` times faster than the wall clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SPEED = 10.0  # plant seconds per wall second
FAULT_CODES = (101, 205, 317, 4242)
RESTART_DOWN = 1.0  # wall seconds an endpoint is down when it restarts


@dataclass(frozen=True)
class MachineSpec:
    """One simulated machine and how its gateway reads it."""

    id: str
    protocol: str  # modbus | opcua
    gateway: str
    bits: int  # 16 | 32
    near_wrap: bool  # starts a few parts below the wrap
    power_on: bool  # the gateway reads the PLC's power-on counter
    job_counters: bool  # the gateway reads the per-job counters
    port_group: str | None  # machines with the same group share one endpoint (port)
    cycle_time: float  # plant seconds

    @property
    def wall_cycle(self) -> float:
        return self.cycle_time / SPEED


@dataclass(frozen=True)
class Action:
    """One thing the script does at ``at`` seconds into the run; ``duration``: how long it lasts."""

    at: float
    kind: str
    target: str  # a machine id, a gateway id, "broker" or "central"
    duration: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        span = f" for {self.duration:.1f} s" if self.duration else ""
        return f"t+{self.at:6.1f} s  {self.kind:<16} {self.target}{span} {extra}".rstrip()


@dataclass(frozen=True)
class Plan:
    seed: int
    duration: float
    machines: tuple[MachineSpec, ...]
    actions: tuple[Action, ...]
    intensity: Intensity
    gateways: tuple[str, ...] = ("gw1", "gw2")

    def machine(self, machine_id: str) -> MachineSpec:
        return next(m for m in self.machines if m.id == machine_id)

    def of_gateway(self, gateway: str) -> list[MachineSpec]:
        return [m for m in self.machines if m.gateway == gateway]

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)


@dataclass(frozen=True)
class Intensity:
    """How many plant-wide disruptions a run has (the issue's full form: 3, 2 per gateway, 2, 2)."""

    broker_stops: int = 3
    gateway_kills: int = 2  # per gateway
    central_kills: int = 2
    opcua_restarts: int = 2
    modbus_restarts: int = 1

    @classmethod
    def short(cls) -> Intensity:
        return cls(broker_stops=2, gateway_kills=1, central_kills=1, opcua_restarts=1, modbus_restarts=1)


def machines(n: int) -> tuple[MachineSpec, ...]:
    """``n`` machines: a third OPC UA, 16- and 32-bit counters, half near the wrap, some without
    a power-on counter (rule 4 decides for them) or per-job counters (spans are flagged for them),
    Modbus machines in pairs behind one port (a serial-to-TCP gateway), two OPC UA machines on one server."""
    out = []
    opcua_seen = 0
    for i in range(n):
        protocol = "opcua" if i % 3 == 2 else "modbus"
        group: str | None = None
        if protocol == "modbus" and i % 6 in (0, 1) and i + 1 < n:
            group = f"mb{i // 6}"
        if protocol == "opcua":
            group = "ua-shared" if opcua_seen < 2 else None
            opcua_seen += 1
        out.append(MachineSpec(
            id=f"{'ua' if protocol == 'opcua' else 'mb'}{i + 1:02d}", protocol=protocol,
            gateway="gw1" if i % 2 == 0 else "gw2", bits=16 if i % 4 in (0, 2) else 32,
            near_wrap=i % 4 in (0, 1), power_on=i % 5 != 4, job_counters=i % 2 == 0,
            port_group=group, cycle_time=8.0 + 4.0 * (i % 3),
        ))
    return tuple(out)


def make_plan(seed: int, n_machines: int, duration: float, intensity: Intensity | None = None) -> Plan:
    """The machines and a seeded script of ``duration`` wall seconds (at least 40)."""
    if n_machines < 3:
        raise ValueError("the chaos run needs at least 3 machines (both protocols)")
    if duration < 40:
        raise ValueError("the chaos run needs at least 40 s")
    rng = random.Random(seed)
    intensity = intensity or Intensity()
    specs = machines(n_machines)
    actions: list[Action] = []
    busy: dict[str, float] = {}  # plant-wide targets: busy until

    def spread(kind: str, target: str, count: int, down: tuple[float, float], **params: Any) -> None:
        """``count`` disruptions of ``target`` spread over the run, never two at once."""
        for k in range(count):
            lo = duration * (0.1 + 0.75 * k / count)
            hi = duration * (0.1 + 0.75 * (k + 1) / count) - down[1]
            at = max(rng.uniform(lo, max(lo, hi)), busy.get(target, 0.0) + 1.0)
            length = rng.uniform(*down)
            extra = {key: (value(k) if callable(value) else value) for key, value in params.items()}
            actions.append(Action(round(at, 2), kind, target, round(length, 2), extra))
            busy[target] = at + length

    spread("broker_stop", "broker", intensity.broker_stops, (2.0, 5.0), delete_persistence=lambda k: k == 0)
    for gw in ("gw1", "gw2"):
        spread("gateway_kill", gw, intensity.gateway_kills, (2.0, 6.0))
    spread("central_kill", "central", intensity.central_kills, (2.0, 5.0))
    opcua = [m for m in specs if m.protocol == "opcua"]
    shared_mb = [m for m in specs if m.protocol == "modbus" and m.port_group is not None]
    if opcua:
        targets = [opcua[0].id, *[m.id for m in opcua if m.port_group is None][:1]]
        spread("restart", "opcua-servers", intensity.opcua_restarts, (RESTART_DOWN, RESTART_DOWN),
               machine=lambda k: targets[k % len(targets)])
    if shared_mb:
        spread("restart", "modbus-shared", intensity.modbus_restarts, (RESTART_DOWN, RESTART_DOWN),
               machine=shared_mb[0].id)
    actions = [a if a.kind != "restart" else Action(a.at, "restart", a.params["machine"], a.duration, {})
               for a in actions]

    for spec in specs:
        actions.extend(_machine_script(rng, spec, duration))
    # a job change while no gateway reads the machine (issue 11 F): one per gateway kill
    for kill in [a for a in actions if a.kind == "gateway_kill"]:
        mine = [m for m in specs if m.gateway == kill.target]
        spec = rng.choice(mine)
        actions.append(Action(round(kill.at + kill.duration / 2, 2), "job", spec.id, 0.0,
                              {"number": rng.randint(2000, 2999), "quantity": rng.randint(5, 30),
                               "setup_time": 0}))
    actions.sort(key=lambda a: (a.at, a.kind, a.target))
    return Plan(seed, duration, specs, tuple(actions), intensity)


def _machine_script(rng: random.Random, spec: MachineSpec, duration: float) -> list[Action]:
    """One machine's disruptions, one at a time, with quiet gaps between (so each is observable)."""
    kinds = ["fault", "fault", "unreachable", "power_cycle", "preset", "job", "unreachable_power_cycle",
             "preset_wrap", "fault", "job"]
    rng.shuffle(kinds)
    out: list[Action] = []
    t = rng.uniform(2.0, 6.0)
    top = (1 << spec.bits) - 1
    i = 0
    while t < duration - 8.0:
        kind = kinds[i % len(kinds)]
        i += 1
        if kind == "fault":
            length = rng.uniform(1.5, 4.0)
            out.append(Action(t, "fault", spec.id, length, {"code": rng.choice(FAULT_CODES)}))
        elif kind == "unreachable":
            length = rng.uniform(2.0, 5.0)
            out.append(Action(t, "unreachable", spec.id, length, {"mode": rng.choice(("refuse", "hang"))}))
        elif kind == "power_cycle":
            length = rng.uniform(1.0, 3.0)
            out.append(Action(t, "power_cycle", spec.id, length, {}))
        elif kind == "unreachable_power_cycle":
            length = rng.uniform(4.0, 6.0)
            out.append(Action(t, "unreachable", spec.id, length, {"mode": rng.choice(("refuse", "hang"))}))
            out.append(Action(round(t + 1.0, 2), "power_cycle", spec.id, rng.uniform(0.5, 1.5), {}))
        elif kind == "preset":
            length = 0.0
            out.append(Action(t, "preset", spec.id, 0.0,
                              {"good": rng.randint(0, 5000), "scrap": rng.randint(0, 500)}))
        elif kind == "preset_wrap":
            length = 0.0
            out.append(Action(t, "preset", spec.id, 0.0, {"good": top - rng.randint(2, 8),
                                                          "scrap": top - rng.randint(0, 3)}))
        else:  # job
            length = 0.0
            out.append(Action(t, "job", spec.id, 0.0, {"number": rng.randint(3000, 3999),
                                                      "quantity": rng.randint(5, 40),
                                                      "setup_time": rng.choice((0, 10, 20))}))
        t += length + rng.uniform(3.0, 8.0)
    return [Action(round(a.at, 2), a.kind, a.target, round(a.duration, 2), a.params) for a in out]


def plant_yaml(plan: Plan, ports: dict[str, int]) -> str:
    """The simulators' plant file; ``ports``: a free port per port group (others pick their own)."""
    lines = [f"name: chaos-{plan.seed}", f"seed: {plan.seed}", f"speed: {SPEED:g}", "min_state_duration: 0.6",
             "control_port: 0", "machines:"]
    units: dict[str, int] = {}
    for spec in plan.machines:
        top = 1 << spec.bits
        start = top - 12 - (hash_int(spec.id) % 20) if spec.near_wrap else 100 + hash_int(spec.id) % 900
        scrap = top - 2 - hash_int(spec.id) % 3 if spec.near_wrap else start // 7
        port = ports[spec.port_group] if spec.port_group else 0
        unit = 1
        if spec.port_group:
            unit = units[spec.port_group] = units.get(spec.port_group, 0) + 1
        lines.append(
            f"  - {{id: {spec.id}, protocol: {spec.protocol}, port: {port}, unit_id: {unit},"
            f" cycle_time: {spec.cycle_time:g}, cycle_jitter: 0.2, scrap_rate: 0.08, setup_time: 15,"
            f" idle_between_jobs: 10, job_quantity: [8, 30], job_numbers: [1000, 1999],"
            f" counter: {{bits: {spec.bits}, good_start: {start}, scrap_start: {scrap}}}}}"
        )
    return "\n".join(lines) + "\n"


def hash_int(text: str) -> int:
    """A stable small number from a machine id (Python's ``hash`` of a str changes per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))
