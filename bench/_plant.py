"""A small plant for the Foresight benchmark: machines working their dispatch lists in virtual time.

Not the simulators' ``MachineModel``: that one bounds every state by a wall-clock minimum duration
and takes its jobs from its own configuration or the control API, which makes driving it through a
whole day in virtual time, with central's dispatch lists, more plumbing than this benchmark needs.
This model is deliberately simple and seeded:

* each machine takes the first unfinished operation of its dispatch list (as the simulated operator
  of issue 13 would) once its predecessor is done, skipping one whose material has not arrived; does its setup,
  then makes parts at the ideal cycle time x a jitter (1.0-1.15) x its slowdown, 2% scrap, until the
  planned good quantity is reached;
* only inside the shift calendar's planned time;
* random faults while running (exponential, mean ``mtbf`` running seconds), repaired after an
  exponential time of mean ``mttr``;
* stepped every ``dt`` plant seconds (60 s by default).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from central.progress.orders import OpKey, Plan
from central.progress.shifts import Calendar


@dataclass(slots=True)
class OpTruth:
    good: int = 0
    scrap: int = 0
    run_seconds: float = 0.0
    started: float | None = None
    done: float | None = None


@dataclass(slots=True)
class MachineTruth:
    current: OpKey | None = None
    setup_left: float = 0.0
    progress: float = 0.0
    fault_left: float = 0.0
    fault_since: float | None = None
    planned_seconds: float = 0.0  # planned time seen (for availability)
    run_seconds: float = 0.0
    fault_seconds: float = 0.0
    current_fault_seconds: float = 0.0
    window: list[tuple[float, float]] = field(default_factory=list)  # (run, fault) seconds per step, last 8 h


@dataclass(frozen=True, slots=True)
class PlantEvent:
    at: float
    kind: str  # fault, rush, material, slowdown
    machine: str | None
    detail: str


class Plant:
    def __init__(self, calendar: Calendar, machines: list[str], rng: random.Random, *, mtbf: float, mttr: float,
                 slowdown: Callable[[str, float], float], scrap_rate: float = 0.02, dt: float = 60.0) -> None:
        self.calendar, self.rng, self.mtbf, self.mttr, self.dt = calendar, rng, mtbf, mttr, dt
        self.slowdown, self.scrap_rate = slowdown, scrap_rate
        self.machines = {m: MachineTruth() for m in machines}
        self.ops: dict[OpKey, OpTruth] = {}
        self.arrivals: dict[OpKey, float] = {}  # material really arrives then
        self.events: list[PlantEvent] = []

    def _eligible(self, plan: Plan, m: str, t: float) -> OpKey | None:
        """The first unfinished operation of the machine's list, if it may start now."""
        for key in plan.dispatch.get(m, ()):
            truth = self.ops.get(key)
            if truth is not None and truth.done is not None:
                continue
            if not plan.operations[key].status.open:
                continue
            pred = plan.predecessor(key)
            if pred is not None and pred.status.open and (self.ops.get(pred.key) is None or
                                                          self.ops[pred.key].done is None):
                return None
            if self.arrivals.get(key, t) > t:
                continue  # no material yet: the operator goes on with the list
            return key
        return None

    def step(self, plan: Plan, t: float) -> list[OpKey]:
        """Advance every machine by ``dt`` from ``t``; returns the operations completed."""
        dt, finished = self.dt, []
        planned = self.calendar.is_planned(t)
        for m, s in self.machines.items():
            if not planned:
                continue
            run = fault = 0.0
            if s.fault_left > 0:
                fault = dt
                s.current_fault_seconds += dt
                s.fault_left -= dt
                if s.fault_left <= 0:
                    s.fault_since = None
            else:
                if s.current is None:
                    s.current = self._eligible(plan, m, t)
                    if s.current is not None:
                        truth = self.ops.setdefault(s.current, OpTruth())
                        truth.started = t
                        s.setup_left, s.progress = plan.operations[s.current].setup_time, 0.0
                if s.current is not None and s.setup_left > 0:
                    s.setup_left -= dt
                elif s.current is not None:
                    if self.rng.random() < dt / self.mtbf:
                        s.fault_left = self.rng.expovariate(1 / self.mttr)
                        s.fault_since = t
                        s.current_fault_seconds = 0.0
                        self.events.append(PlantEvent(t, "fault", m, f"fault on {m} for {s.fault_left / 60:.0f} min"))
                    else:
                        run = dt
                        op = plan.operations[s.current]
                        truth = self.ops[s.current]
                        truth.run_seconds += dt
                        cycle = op.ideal_cycle_time * self.slowdown(m, t) * self.rng.uniform(1.0, 1.15)
                        s.progress += dt / cycle
                        while s.progress >= 1 and truth.good < op.quantity:
                            s.progress -= 1
                            if self.rng.random() < self.scrap_rate:
                                truth.scrap += 1
                            else:
                                truth.good += 1
                        if truth.good >= op.quantity:
                            truth.done = t + dt
                            finished.append(s.current)
                            s.current = None
            s.planned_seconds += dt
            s.run_seconds += run
            s.fault_seconds += fault
            s.window.append((run, fault))
            if len(s.window) > 8 * 3600 / dt:
                s.window.pop(0)
        return finished

    def availability(self, m: str, prior: float = 0.88, weight: float = 8 * 3600) -> float:
        """Run share of the time the machine had work (run + fault) since the start, blended with a
        prior of ``prior`` worth ``weight`` seconds: one long fault in a short history must not make the
        machine look 80% down for the rest of the plan (the current fault has its own repair ETA).
        Waiting for work is not an availability loss of the rate; the ongoing fault is left out."""
        s = self.machines[m]
        fault = s.fault_seconds - self.current_fault(m)  # the ongoing repair has its own ETA (down_until)
        return (s.run_seconds + prior * weight) / (s.run_seconds + fault + weight)

    def current_fault(self, m: str) -> float:
        """Seconds of the ongoing fault counted so far (0 when the machine is not in fault)."""
        s = self.machines[m]
        return s.current_fault_seconds if s.fault_left > 0 else 0.0
