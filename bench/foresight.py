"""Foresight: does the at-risk alert come before orders are late? A seeded day in virtual time (issue 13).

``python -m bench foresight`` (or ``python -m bench.foresight [--seed N] [--orders N] [--quick]``) plays a
plant day without sleeping: 12 machines on a two-shift calendar (06:00-22:00 with breaks), 45 orders of 2-6
operations, random faults, two rush orders (at 09:00 and 13:00), one material shortage (announced at 07:00 for
an operation not started yet, arriving at 12:20 instead of the announced 12:00), one machine losing speed
through the day. The plant is ``bench/_plant.py`` (a small seeded model stepped every plant minute, not the
simulators' ``MachineModel``: see its docstring). Every 5 plant minutes central's own code runs on what the
plant shows: ``projection.project`` and ``delay.evaluate`` (confirmation 5 min, margin 15 min, hysteresis 15
min). The **naive baseline** feeds the same at-risk rule with a spreadsheet ETA: now plus the remaining
planned durations of the order's operations, one after the other (no queue, faults or shifts).

Printed per order: due, actual finish, the event that made it late (the cause the first alert named,
matched to the plant event of that kind on that machine) and when, and when each method's at-risk alert
came. Then recall (late orders warned before their due time), the false-alarm rate (alerted orders that
finished on time) and the median warning lead, for both. Targets (issue 13, "Benchmarks"): every late
order warned before its due time; those whose cause came 30+ plant minutes before due warned 30+ minutes
ahead; under 10% false alarms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bench._plant import Plant, PlantEvent
from central.progress.assignment import Tally
from central.progress.changes import create_order, set_shortage, set_status
from central.progress.delay import Cause, DelayConfig, RiskState, evaluate, step_risk
from central.progress.orders import OpKey, OpStatus, Plan, Shortage, WorkOrderIn
from central.progress.projection import MachineOutlook, down_until, project
from central.progress.shifts import ShiftCalendar, ShiftCalendarConfig
from plantpulse.protocol.models import MachineState

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 6, tzinfo=TZ).timestamp()  # Monday 06:00
H = 3600.0
MACHINES = [f"m{i:02d}" for i in range(1, 13)]
SLOW = "m05"
MTBF, MTTR = 5 * H, 40 * 60.0
TICK = 300.0
CONFIG = DelayConfig(margin=900.0, confirm=300.0, hysteresis=900.0)  # --margin/--confirm change it
CAL = ShiftCalendar(ShiftCalendarConfig.model_validate({"timezone": "Asia/Shanghai", "shifts": [
    {"name": "early", "days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "06:00", "end": "14:00",
     "breaks": [{"start": "10:00", "end": "10:15"}]},
    {"name": "late", "days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "14:00", "end": "22:00",
     "breaks": [{"start": "18:00", "end": "18:30"}]}]}))


def PLANNED(a: float, b: float) -> float:  # noqa: N802 - a constant-like function: the baseline's same rule
    """Planned seconds of CAL in ``[a, b)`` (the at-risk rule measures lateness in work time)."""
    return sum(hi - lo for lo, hi in CAL.planned(a, b)) if b > a else 0.0


def slowdown(machine: str, t: float) -> float:
    """m05 loses speed through Monday: 1.0 at 06:00, 1.6 by 22:00; maintenance restores it overnight."""
    if machine != SLOW or t >= T0 + 16 * H:
        return 1.0
    return 1.0 + 0.6 * max(0.0, t - T0) / (16 * H)


def routing(rng: random.Random, order_id: str, due: float, rush: bool = False) -> WorkOrderIn:
    quantity = rng.randint(8, 30) if not rush else rng.randint(10, 20)
    n = rng.randint(2, 3) if rush else rng.randint(2, 6)
    machines = rng.sample(MACHINES, n)
    ops = [{"seq": (i + 1) * 10, "name": f"op{i + 1}", "machine": m, "quantity": quantity,
            "ideal_cycle_time": rng.uniform(30, 90), "setup_time": rng.choice((300.0, 600.0, 900.0))}
           for i, m in enumerate(machines)]
    return WorkOrderIn.model_validate({"id": order_id, "product": "part", "quantity": quantity, "due": due,
                                       "operations": ops})


def initial_plan(rng: random.Random, n: int) -> Plan:
    """``n`` orders whose due times are their undisturbed projected finish (at 72% availability) plus a
    slack, a fifth of them tight (under 30 min); dispatch lists in the order the orders came."""
    drafts = [routing(rng, f"SO-{i:03d}", T0 + 30 * H) for i in range(n)]
    plan = Plan()
    for d in drafts:
        plan = create_order(plan, d, by="planner", now=T0).plan
    calm = project(plan, {m: MachineOutlook(m, CAL, 0.72) for m in MACHINES}, T0)
    dated = []
    for d in drafts:
        slack = rng.uniform(0, 0.5 * H) if rng.random() < 0.2 else rng.uniform(1 * H, 5 * H)
        dated.append(d.model_copy(update={"due": calm.orders[d.id] + slack}))
    plan = Plan()
    for d in dated:  # the same dispatch lists as the projection that dated them
        plan = create_order(plan, d, by="planner", now=T0).plan
    return plan


def spreadsheet_eta(plan: Plan, order_id: str, plant: Plant, now: float) -> float:
    """Now plus the remaining planned durations of the order's open operations, one after the other."""
    eta = now
    for key in plan.order(order_id).op_keys():
        op = plan.operations[key]
        truth = plant.ops.get(key)
        if not op.status.open:
            continue
        good = truth.good if truth is not None else 0
        eta += (op.setup_time if truth is None else 0.0) + max(0, op.quantity - good) * op.ideal_cycle_time
    return eta


def central_tick(plan: Plan, plant: Plant, t: float, states: dict[str, RiskState], config: DelayConfig,
                 ) -> tuple[dict[str, RiskState], dict[str, tuple[Cause, str | None]]]:
    tallies = {k: Tally(v.good, v.scrap) for k, v in plant.ops.items()}
    speed: dict[str, float] = {}
    running: dict[OpKey, tuple[str, ...]] = {}
    outlooks = {}
    for m, s in plant.machines.items():
        down = down_until(MachineState.FAULT, s.fault_since, t, mean=MTTR) if s.fault_left > 0 else None
        setup_left = s.setup_left if s.current is not None and s.setup_left > 0 else None
        outlooks[m] = MachineOutlook(m, CAL, plant.availability(m), None, down, setup_left)
        if s.current is not None:
            running[s.current] = (m,)
            truth = plant.ops[s.current]
            parts = truth.good + truth.scrap
            if parts >= 5:  # the machine's measured speed applies to what it runs next, too
                speed[m] = truth.run_seconds / parts / plan.operations[s.current].ideal_cycle_time
    cycles = {k: op.ideal_cycle_time * speed[op.queue] for k, op in plan.operations.items()
              if op.status.open and op.queue in speed}
    projection = project(plan, outlooks, t, tallies=tallies, cycle_times=cycles, running=running)
    result = evaluate(plan, projection, states, t, config=config, calendar_of=lambda _order: CAL)
    causes = {f.subject: (f.why.cause, f.why.machine) for f in result.findings if f.why is not None}
    return dict(result.states), causes


def run(seed: int, n_orders: int, config: DelayConfig, *, verbose: bool = True, tick: float = TICK
        ) -> tuple[Score, Score]:
    rng = random.Random(seed)
    plan = initial_plan(rng, n_orders)
    plant = Plant(CAL, MACHINES, random.Random(seed + 1), mtbf=MTBF, mttr=MTTR, slowdown=slowdown)
    plant.events.append(PlantEvent(
        T0, "slowdown", SLOW, f"{SLOW} loses speed (x1.6 by 22:00 Mon)"))
    rushes = {T0 + 3 * H: "RUSH-1", T0 + 7 * H: "RUSH-2"}
    states: dict[str, RiskState] = {}
    naive: dict[str, RiskState] = {}
    first: dict[str, float] = {}
    first_naive: dict[str, float] = {}
    cause_at_first: dict[str, tuple[Cause, str | None]] = {}
    finished: dict[str, float] = {}
    t = T0
    while t < T0 + 7 * 24 * H and len(finished) < len(plan.orders):
        if t in rushes:
            rush = routing(rng, rushes[t], t + 4 * H, rush=True)
            plan = create_order(plan, rush, by="boss", now=t, rush=True).plan
            where = ", ".join(o.machine or "" for o in rush.operations)
            plant.events.append(PlantEvent(t, "rush", None, f"rush order {rush.id} inserted on {where}"))
        if t == T0 + 1 * H:
            # castings short for a job not started yet (one already running has its material at the machine,
            # and the plant only holds back an operation it has not started)
            short_key = next(k for k, op in plan.operations.items() if k[1] == 20 and op.status is OpStatus.PLANNED
                             and k not in plant.ops and plan.orders[k[0]].due > T0 + 8 * H)
            plan = set_shortage(plan, short_key, Shortage(T0 + 6 * H, "castings"), by="store", now=t).plan
            plant.arrivals[short_key] = T0 + 6 * H + 20 * 60
            plant.events.append(PlantEvent(
                t, "material", plan.operations[short_key].machine, f"{short_key[0]}/{short_key[1]} short of material"))
        for key in plant.step(plan, t):
            plan = set_status(plan, key, OpStatus.DONE)
        for s in plant.machines.values():
            if s.current is not None and plan.operations[s.current].status is OpStatus.PLANNED:
                plan = set_status(plan, s.current, OpStatus.RUNNING)
        t += plant.dt
        for order in plan.orders.values():
            if order.id not in finished and order.status.value == "done":
                finished[order.id] = max(plant.ops[k].done or t for k in order.op_keys())
        if (t - T0) % tick == 0:
            states, causes = central_tick(plan, plant, t, states, config)
            for oid, st in states.items():
                if st.raised and oid not in first:
                    first[oid] = t
                    if oid in causes:
                        cause_at_first[oid] = causes[oid]
            for order in plan.orders.values():
                if order.status.value != "open":
                    continue
                naive[order.id] = step_risk(naive.get(order.id, RiskState()),
                                            spreadsheet_eta(plan, order.id, plant, t), order.due, t, config,
                                            planned=PLANNED)
                if naive[order.id].raised and order.id not in first_naive:
                    first_naive[order.id] = t
    return report(plan, plant, finished, first, first_naive, cause_at_first, verbose=verbose)


@dataclass(frozen=True, slots=True)
class Score:
    """One method's figures on one seed (see the module docstring for the targets)."""

    late: int  # orders finished after their due time (or never)
    warned: int  # ... of them alerted before their due time
    alerts: int  # orders alerted at all
    false_alarms: int  # ... that finished on time
    early_cause: int  # late orders whose cause came 30+ plant minutes before due
    ahead: int  # ... of them warned 30+ minutes ahead
    leads: tuple[float, ...]  # minutes of warning, per warned late order

    @property
    def recall_met(self) -> bool:
        return self.warned == self.late

    @property
    def ahead_met(self) -> bool:
        return self.ahead == self.early_cause

    @property
    def false_met(self) -> bool:
        return self.false_alarms < 0.1 * self.alerts or self.alerts == 0

    @property
    def share(self) -> float:
        return self.false_alarms / self.alerts if self.alerts else 0.0

    def cells(self) -> tuple[str, str, str, str]:
        lead = f"{statistics.median(self.leads):.0f} min" if self.leads else "-"
        return (f"{self.warned}/{self.late}", f"{self.false_alarms}/{self.alerts} {100 * self.share:.0f}%", lead,
                f"{self.ahead}/{self.early_cause}")


def score(plan: Plan, late_orders: list[str], events: dict[str, float | None], alerts: dict[str, float]) -> Score:
    warned = [o for o in late_orders if o in alerts and alerts[o] < plan.orders[o].due]
    on_time = [o for o in alerts if o not in late_orders]
    early = [o for o in late_orders if (at := events.get(o)) is not None and at <= plan.orders[o].due - 1800]
    ahead = [o for o in early if o in warned and plan.orders[o].due - alerts[o] >= 1800]
    return Score(len(late_orders), len(warned), len(alerts), len(on_time), len(early), len(ahead),
                 tuple((plan.orders[o].due - alerts[o]) / 60 for o in warned))


def report(plan: Plan, plant: Plant, finished: dict[str, float], first: dict[str, float],
           first_naive: dict[str, float], causes: dict[str, tuple[Cause, str | None]], *, verbose: bool = True,
           ) -> tuple[Score, Score]:
    def hm(ts: float | None) -> str:
        if ts is None:
            return "-"
        local = datetime.fromtimestamp(ts, TZ)
        return local.strftime("%a %H:%M")

    def say(line: str = "") -> None:
        if verbose:
            print(line)

    kinds = {Cause.FAULT: "fault", Cause.RUSH_AHEAD: "rush", Cause.MATERIAL: "material", Cause.SLOW_RATE: "slowdown"}
    say(f"{'order':<8} {'due':>9} {'finished':>9} {'late':>5}  {'event that made it late':<48} {'at':>9}"
        f" {'alert':>9} {'naive':>9}")
    late_orders: list[str] = []
    events: dict[str, float | None] = {}
    for order in sorted(plan.orders.values(), key=lambda o: o.due):
        done = finished.get(order.id)
        late = done is None or done > order.due
        event = None
        if late and order.id in causes:
            cause, machine = causes[order.id]
            kind = kinds.get(cause)
            candidates = [e for e in plant.events if e.kind == kind and e.machine in (machine, None)
                          and e.at <= first.get(order.id, order.due)]
            event = candidates[-1] if candidates else None
            text = event.detail if event is not None else f"{cause.value} on {machine}"
        elif order.id in causes:
            text = f"(on time; alerted for {causes[order.id][0].value} on {causes[order.id][1]})"
        else:
            text = "-"
        if late:
            late_orders.append(order.id)
            events[order.id] = event.at if event is not None else None
        say(f"{order.id:<8} {hm(order.due):>9} {hm(done):>9} {'LATE' if late else '':>5}  {text[:48]:<48}"
            f" {hm(event.at if event else None):>9} {hm(first.get(order.id)):>9} {hm(first_naive.get(order.id)):>9}")
    ours, naive = score(plan, late_orders, events, first), score(plan, late_orders, events, first_naive)
    say()
    say(f"{'':<34} {'recall':>8} {'false alarms':>13} {'median lead':>12} {'30-min rule':>12}")
    for name, figures in (("projection + delay rules", ours), ("naive baseline (spreadsheet ETA)", naive)):
        recall, fa, lead, rule = figures.cells()
        say(f"{name:<34} {recall:>8} {fa:>13} {lead:>12} {rule:>12}")
    say(f"{len(plan.orders)} orders, {len(late_orders)} late; {sum(e.kind == 'fault' for e in plant.events)} faults")
    return ours, naive


def seed_list(text: str) -> list[int]:
    """``1-20,13,21`` -> [1, ..., 20, 13, 21] without repeats, in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        for seed in range(int(lo), int(hi or lo) + 1):
            if seed not in seeds:
                seeds.append(seed)
    return seeds


def summary(seeds: list[int], n_orders: int, config: DelayConfig, tick: float = TICK) -> int:
    """One line per seed (ours, then naive) and how many seeds meet each target."""
    print(f"{'seed':>4} {'late':>4}  {'recall':>7} {'false alarms':>12} {'lead':>8} {'30-min':>6}   |"
          f" naive: {'recall':>7} {'false alarms':>12} {'lead':>8} {'30-min':>6}")
    scores: list[tuple[Score, Score]] = []
    for seed in seeds:
        ours, naive = run(seed, n_orders, config, verbose=False, tick=tick)
        scores.append((ours, naive))
        a, b = ours.cells(), naive.cells()
        print(f"{seed:>4} {ours.late:>4}  {a[0]:>7} {a[1]:>12} {a[2]:>8} {a[3]:>6}   |"
              f"        {b[0]:>7} {b[1]:>12} {b[2]:>8} {b[3]:>6}")
    n = len(scores)
    for i, name in enumerate(("ours", "naive")):
        mine = [s[i] for s in scores]
        leads = [lead for s in mine for lead in s.leads]
        print(f"{name:>5}: recall met on {sum(s.recall_met for s in mine)}/{n} seeds"
              f" ({sum(s.warned for s in mine)}/{sum(s.late for s in mine)} orders),"
              f" 30-min rule on {sum(s.ahead_met for s in mine)}/{n}"
              f" ({sum(s.ahead for s in mine)}/{sum(s.early_cause for s in mine)}),"
              f" false alarms < 10% on {sum(s.false_met for s in mine)}/{n}"
              f" ({sum(s.false_alarms for s in mine)}/{sum(s.alerts for s in mine)} alerts),"
              f" median lead {statistics.median(leads) if leads else 0:.0f} min")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.foresight", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--orders", type=int, default=45)
    parser.add_argument("--margin", type=float, default=CONFIG.margin / 60, help="at-risk margin, minutes")
    parser.add_argument("--confirm", type=float, default=CONFIG.confirm / 60, help="confirmation time, minutes")
    parser.add_argument("--tick", type=float, default=TICK / 60,
                        help="plant minutes between two passes of central's projection and delay rules")
    parser.add_argument("--seeds", type=seed_list, default=None,
                        help="several seeds, e.g. 1-20,21: one summary line each and the seeds meeting each target")
    parser.add_argument("--quick", action="store_true", help="(same run: it takes a few seconds)")
    args = parser.parse_args(argv)
    config = DelayConfig(margin=args.margin * 60, confirm=args.confirm * 60, hysteresis=CONFIG.hysteresis)
    seeds = ",".join(map(str, args.seeds)) if args.seeds else args.seed
    print(f"foresight: seed {seeds}, {args.orders} orders, {len(MACHINES)} machines, plant minute steps,"
          f" central every {args.tick:g} plant minutes; margin {config.margin / 60:.0f} min,"
          f" confirm {config.confirm / 60:.0f} min, hysteresis {config.hysteresis / 60:.0f} min")
    if args.seeds:
        return summary(args.seeds, args.orders, config, args.tick * 60)
    run(args.seed, args.orders, config, tick=args.tick * 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
