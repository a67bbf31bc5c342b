"""Projection: setups, precedence, shifts, machines down, material, work centres, deadlocks (hand-computed)."""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.progress.assignment import Tally
from central.progress.changes import set_shortage, set_status
from central.progress.orders import OpKey, OpStatus, Plan, Shortage
from central.progress.projection import (
    INF,
    Binding,
    DownCause,
    MachineOutlook,
    down_until,
    project,
)
from central.progress.shifts import ShiftCalendar, ShiftCalendarConfig
from central.progress.timetable import Overtime, Timetable
from plantpulse.configfile import parse_yaml_model
from plantpulse.protocol.models import MachineState
from tests.central.progress.orderkit import H, order_in, plan_of

DUE = 2_000_000_000.0
T8 = datetime(2026, 3, 2, 8, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # Monday 08:00
CAL = ShiftCalendar(parse_yaml_model(ShiftCalendarConfig, """
timezone: Asia/Shanghai
shifts:
  - {name: day, days: [mon, tue, wed, thu, fri], start: '08:00', end: '17:30',
     breaks: [{start: '12:00', end: '13:00'}]}
"""))


def test_setups_precedence_and_the_machine_queue() -> None:
    """A: turn 10 x 60 s after a 600 s setup on m1 [0, 1200], then mill 10 x 120 s on m2 [1200, 2400].
    B: 10 x 30 s after a 300 s setup, queued behind A on m1: [1200, 1800]."""
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 60, "setup_time": 600},
                            {"machine": "m2", "cycle": 120}),
                   order_in("B", DUE, {"machine": "m1", "cycle": 30, "setup_time": 300}))
    p = project(plan, {}, 0.0)
    a10, a20, b10 = p.ops[("A", 10)], p.ops[("A", 20)], p.ops[("B", 10)]
    assert (a10.start, a10.finish, a10.binding, a10.setup, a10.work) == (0.0, 1200.0, Binding.NOW, 600.0, 600.0)
    assert (a20.start, a20.finish, a20.binding, a20.wait) == (1200.0, 2400.0, Binding.PREDECESSOR, 1200.0)
    assert (b10.start, b10.finish, b10.binding, b10.ahead) == (1200.0, 1800.0, Binding.MACHINE, ("A", 10))
    assert p.orders == {"A": 2400.0, "B": 1800.0}
    assert p.by_queue["m1"] == (("A", 10), ("B", 10))
    assert p.deadlocks == ()


def test_parts_made_running_operation_and_availability() -> None:
    """A running with 4 of 10 made: no setup again; 6 x 60 s at 75% availability = 480 s."""
    plan = set_status(plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 60, "setup_time": 600})), ("A", 10),
                      OpStatus.RUNNING)
    p = project(plan, {"m1": MachineOutlook("m1", availability=0.75)}, 100.0, tallies={("A", 10): Tally(4, 1)},
                running={("A", 10): ("m1",)})
    assert (p.ops[("A", 10)].start, p.ops[("A", 10)].finish) == (100.0, 580.0)
    slow = project(plan, {"m1": MachineOutlook("m1", availability=0.75)}, 100.0, tallies={("A", 10): Tally(4, 1)},
                   running={("A", 10): ("m1",)}, cycle_times={("A", 10): 90.0})
    assert slow.ops[("A", 10)].finish == 100.0 + 6 * 120
    assert slow.ops[("A", 10)].work - slow.ops[("A", 10)].ideal_work == pytest.approx(240.0)  # speed loss


def test_production_only_inside_shifts() -> None:
    """Monday 08:00: 1800 s setup then 10 h of work in a 08:00-17:30 shift with lunch 12-13.
    Mon: 0.5 h setup + 3.5 h to 12:00, 4.5 h 13:00-17:30 (8 h done); Tue 08:00-10:00 the last 2 h."""
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 3600, "setup_time": 1800}))
    p = project(plan, {"m1": MachineOutlook("m1", CAL)}, T8 - 86_400)  # asked on Sunday morning
    op = p.ops[("A", 10)]
    assert op.start == T8
    assert op.finish == T8 + 26 * H
    assert op.gap == pytest.approx(26 * H - 0.5 * H - 10 * H)  # lunch, the evening and the night
    overtime = Overtime(CAL, [(T8 + 9.5 * H, T8 + 11.5 * H)])  # Monday 17:30-19:30 added
    assert project(plan, {"m1": MachineOutlook("m1", overtime)}, T8).ops[("A", 10)].finish == T8 + 11.5 * H


def test_a_machine_in_fault_projects_from_its_repair_eta_or_mttr_never_negative() -> None:
    now = 10_000.0
    assert down_until(MachineState.FAULT, now - 600, now, mean=1800) == (now + 1200, DownCause.FAULT)
    assert down_until(MachineState.FAULT, now - 600, now, eta=now + 7200, mean=1800) == (now + 7200, DownCause.FAULT)
    # a repair half its mean old or more still needs half the mean (repair times spread): not just the floor
    assert down_until(MachineState.FAULT, now - 900, now, mean=1800) == (now + 900, DownCause.FAULT)
    assert down_until(MachineState.FAULT, now - 1200, now, mean=1800) == (now + 900, DownCause.FAULT)
    assert down_until(MachineState.FAULT, now - 5000, now, mean=1800) == (now + 900, DownCause.FAULT)
    assert down_until(MachineState.FAULT, now - 5000, now, mean=300) == (now + 300, DownCause.FAULT)  # floor
    assert down_until(MachineState.MAINTENANCE, now - 5000, now) == (now + 300, DownCause.MAINTENANCE)  # no mean
    assert down_until(MachineState.FAULT, now - 600, now, eta=now - 1) == (now + 1200, DownCause.FAULT)
    # an ETA entered during this fault counts; one left from an earlier fault (entered before it began) does not
    assert down_until(MachineState.FAULT, now - 600, now, eta=now + 7200, eta_at=now - 300,
                      mean=1800) == (now + 7200, DownCause.FAULT)
    assert down_until(MachineState.FAULT, now - 600, now, eta=now + 7200, eta_at=now - 900,
                      mean=1800) == (now + 1200, DownCause.FAULT)
    assert down_until(MachineState.MAINTENANCE, now, now, default=900) == (now + 900, DownCause.MAINTENANCE)
    assert down_until(MachineState.RUNNING, now, now) is None
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 60}),
                   order_in("B", DUE, {"machine": "m1", "cycle": 60}))
    down = MachineOutlook("m1", down=down_until(MachineState.FAULT, now - 600, now, mean=1800))
    p = project(plan, {"m1": down}, now)
    a, b = p.ops[("A", 10)], p.ops[("B", 10)]
    assert (a.start, a.finish, a.binding, a.wait, a.down) == (now + 1200, now + 1800, Binding.REPAIR, 1200.0,
                                                              DownCause.FAULT)
    assert (b.start, b.binding, b.ahead) == (now + 1800, Binding.MACHINE, ("A", 10))


def test_a_transfer_quantity_lets_the_next_operation_start_early() -> None:
    """A10 makes 10 x 60 s from 0; A20 needs 2 parts (at 120 s); its last 2 parts arrive at 600: 600 + 2 x 30."""
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 60},
                            {"machine": "m2", "cycle": 30, "transfer_quantity": 2}))
    p = project(plan, {}, 0.0)
    assert p.ops[("A", 10)].release == 120.0
    assert (p.ops[("A", 20)].start, p.ops[("A", 20)].finish) == (120.0, 660.0)


def test_material_shortage_holds_the_operation_until_arrival_and_the_machine_goes_on() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 60}),
                   order_in("B", DUE, {"machine": "m1", "cycle": 60}))
    short = set_shortage(plan, ("A", 10), Shortage(5000.0), by="store", now=0.0).plan
    p = project(short, {}, 0.0)
    a = p.ops[("A", 10)]
    # the machine goes on with B [0, 600) meanwhile; A waits 4400 s more than the machine would have
    assert (p.ops[("B", 10)].start, p.ops[("B", 10)].finish) == (0.0, 600.0)
    assert (a.start, a.finish, a.binding, a.wait) == (5000.0, 5600.0, Binding.MATERIAL, 4400.0)
    late = set_shortage(plan, ("A", 10), Shortage(300.0), by="store", now=0.0).plan
    q = project(late, {}, 0.0)  # arrives while B runs: A is taken back as soon as m1 is free
    assert (q.ops[("B", 10)].finish, q.ops[("A", 10)].start) == (600.0, 600.0)
    unknown = set_shortage(plan, ("A", 10), Shortage(None), by="store", now=0.0).plan
    q = project(unknown, {}, 0.0)
    assert q.ops[("A", 10)].finish == INF and q.orders["A"] == INF
    assert (q.ops[("B", 10)].start, q.ops[("B", 10)].finish) == (0.0, 600.0)  # held indefinitely: skipped


def test_an_operation_set_aside_for_material_goes_first_when_the_machine_would_otherwise_stand_idle() -> None:
    """m2's list: [A20 (short, material at 1000), B10, C20]. B10 runs [0, 600); C20 waits for C10 on m1
    (10 x 300 s: until 3000). The machine is free from 600 and idle until 3000: A20 (it has no predecessor
    left open here, its material comes at 1000) is taken at 1000 and runs [1000, 1600), then C20 [3000, 3600).
    Before, A20 came only after C20 ([3600, 4200)): a 43-minute ghost delay of order A."""
    plan = plan_of(order_in("A", DUE, {"machine": "m2", "cycle": 60}),
                   order_in("B", DUE, {"machine": "m2", "cycle": 60}),
                   order_in("C", DUE, {"machine": "m1", "cycle": 300}, {"machine": "m2", "cycle": 60}))
    plan = set_shortage(plan, ("A", 10), Shortage(1000.0), by="store", now=0.0).plan
    assert plan.dispatch["m2"] == (("A", 10), ("B", 10), ("C", 20))
    p = project(plan, {}, 0.0)
    a, c = p.ops[("A", 10)], p.ops[("C", 20)]
    assert (p.ops[("B", 10)].start, p.ops[("B", 10)].finish) == (0.0, 600.0)
    assert (a.start, a.finish, a.binding, a.wait) == (1000.0, 1600.0, Binding.MATERIAL, 400.0)
    assert (c.start, c.finish, c.binding) == (3000.0, 3600.0, Binding.PREDECESSOR)
    # material after C20 could start (3500 > 3000): C20 goes on at 3000, A20 after it at 3600
    later = set_shortage(plan, ("A", 10), Shortage(3500.0), by="store", now=0.0).plan
    q = project(later, {}, 0.0)
    assert (q.ops[("C", 20)].start, q.ops[("A", 10)].start, q.ops[("A", 10)].finish) == (3000.0, 3600.0, 4200.0)


def test_a_work_centre_operation_is_split_so_its_machines_finish_together() -> None:
    """100 x 60 s on m1 (free at 1000) and m2 (50% available, free now): rates 1/60 and 1/120 per s.
    m2 alone would need 12000 s, so m1 joins at 1000: P(T) = (100 + 1000/60) / (1/60 + 1/120) = 4666.7 s."""
    plan = plan_of(order_in("X", DUE, {"machine": "m1", "cycle": 50}, quantity=20),
                   order_in("W", DUE, {"work_centre": "milling", "cycle": 60}, quantity=100))
    machines = {"m1": MachineOutlook("m1", work_centre="milling"),
                "m2": MachineOutlook("m2", availability=0.5, work_centre="milling")}
    p = project(plan, machines, 0.0)
    w = p.ops[("W", 10)]
    assert set(w.machines) == {"m1", "m2"}
    assert w.finish == pytest.approx(4666.67, abs=1.0)
    assert w.start == 0.0
    other = {**machines, "m2": MachineOutlook("m2", Overtime(machines["m1"].calendar, []), 0.5, "milling")}
    searched = project(plan, other, 0.0).ops[("W", 10)]  # two calendars: a binary search, never early
    assert 4666.67 <= searched.finish <= 4666.67 + 60
    lone = project(plan_of(order_in("W", DUE, {"work_centre": "empty", "cycle": 60})), machines, 0.0)
    assert lone.unplaceable == (("W", 10),) and lone.orders["W"] == INF


def test_a_dispatch_order_that_deadlocks_with_precedence_is_reported_and_broken() -> None:
    """m1: [Y20, X10], m2: [X20, Y10]: each list's head waits for an operation behind the other's head."""
    plan = plan_of(order_in("X", DUE, {"machine": "m1", "cycle": 60}, {"machine": "m2", "cycle": 60}),
                   order_in("Y", DUE, {"machine": "m2", "cycle": 60}, {"machine": "m1", "cycle": 60}))
    plan = Plan(plan.orders, plan.operations, {"m1": (("Y", 20), ("X", 10)), "m2": (("X", 20), ("Y", 10))})
    p = project(plan, {}, 0.0)
    assert len(p.deadlocks) == 1
    lock = p.deadlocks[0]
    assert set(lock.waits) == {(("Y", 20), ("Y", 10)), (("X", 20), ("X", 10))}
    assert set(lock.queues) == {"m1", "m2"}
    assert all(op.finish < INF for op in p.ops.values())
    same = Plan(plan.orders, plan.operations, {"m1": (("X", 20), ("X", 10)), "m2": (("Y", 10), ("Y", 20))})
    q = project(same, {}, 0.0)  # X20 queued before X10 on the same machine
    assert q.deadlocks[0].waits == ((("X", 20), ("X", 10)),) and q.deadlocks[0].broken_by == ("X", 10)
    assert q.ops[("X", 20)].start >= q.ops[("X", 10)].finish


def test_timetable_answers_like_the_calendar() -> None:
    tt = Timetable(CAL, T8 - 86_400, T8 + 30 * 86_400)
    assert tt.next_planned(T8 - 3600) == T8
    assert tt.advance(T8 + 3 * H, 2 * H) == T8 + 6 * H  # 11:00 + 2 h over lunch: 14:00
    assert tt.planned_between(T8, T8 + 24 * H) == 8.5 * H
    assert tt.advance(T8, 1e9) == INF  # beyond the horizon


machines3 = ["m1", "m2", "m3"]
op_rows = st.lists(
    st.tuples(st.sampled_from(machines3), st.floats(1, 600), st.sampled_from([0.0, 300.0, 3600.0]),
              st.sampled_from([None, 1, 3])),
    min_size=1, max_size=4)


@settings(max_examples=80, deadline=None)
@given(st.lists(op_rows, min_size=1, max_size=6), st.integers(0, 6 * 24),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.floats(0, 60 * H)), max_size=3))
def test_projection_respects_precedence_shifts_and_machines(orders: list[list[tuple[str, float, float, int | None]]],
                                                            hour: int,
                                                            shortages: list[tuple[int, int, float]]) -> None:
    """Never before the predecessor's release or the material, never starting outside a shift, one
    operation at a time per machine, whatever the lists and shortages."""
    built = []
    for i, rows in enumerate(orders):
        ops = [{"machine": m, "cycle": c, "setup_time": s, **({"transfer_quantity": t} if t and j else {})}
               for j, (m, c, s, t) in enumerate(rows)]
        built.append(order_in(f"O{i}", DUE, *ops, quantity=5))
    plan = plan_of(*built)
    now = T8 + hour * H
    for o, seq, after in shortages:
        key = (f"O{o}", (seq + 1) * 10)
        if key in plan.operations:
            plan = set_shortage(plan, key, Shortage(now + after), by="store", now=now).plan
    p = project(plan, {m: MachineOutlook(m, CAL) for m in machines3}, now)
    assert p.deadlocks == ()
    assert set(p.ops) == set(plan.operations)
    for key, op in p.ops.items():
        shortage = plan.operations[key].shortage
        if shortage is not None and shortage.expected is not None:
            assert op.start >= shortage.expected
    for key, op in p.ops.items():
        assert now <= op.start <= op.finish
        assert CAL.is_planned(op.start)
        pred = plan.predecessor(key)
        if pred is not None:
            assert op.start >= p.ops[pred.key].release >= p.ops[pred.key].start
            if plan.operations[key].transfer_quantity is None:
                assert op.start >= p.ops[pred.key].finish
            assert op.finish >= p.ops[pred.key].finish
    for keys in p.by_queue.values():
        spans: list[tuple[float, float, OpKey]] = sorted((p.ops[k].start, p.ops[k].finish, k) for k in keys)
        for (_s1, f1, _k1), (s2, _f2, _k2) in itertools.pairwise(spans):
            assert s2 >= f1


@settings(max_examples=80, deadline=None)
@given(st.lists(op_rows, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_any_dispatch_order_is_projected_deadlocks_broken(orders: list[list[tuple[str, float, float, int | None]]],
                                                          rnd: random.Random) -> None:
    """Lists shuffled at random (deadlocks likely): every operation still gets a projection after its predecessor."""
    plan = plan_of(*(order_in(f"O{i}", DUE, *({"machine": m, "cycle": c, "setup_time": s} for m, c, s, _t in rows),
                              quantity=3) for i, rows in enumerate(orders)))
    lists = {q: list(keys) for q, keys in plan.dispatch.items()}
    for keys in lists.values():
        rnd.shuffle(keys)
    shuffled = Plan(plan.orders, plan.operations, {q: tuple(keys) for q, keys in lists.items()})
    p = project(shuffled, {}, 0.0)
    assert set(p.ops) == set(plan.operations)
    for key, op in p.ops.items():
        pred = plan.predecessor(key)
        if pred is not None:
            assert op.start >= p.ops[pred.key].finish
