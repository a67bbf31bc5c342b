"""Placing one operation on its machine(s): the projection's per-operation arithmetic (issue 13).

The list scheduler (``projection.py``) decides which operation comes next on which list and when
precedence and material allow it; this decides where it lands: it begins when its machine is free
(else when it is ready), does its setup and its remaining parts at ``cycle / availability`` in
planned time (``Timetable``), a work-centre operation split over the centre's machines
(``centre_split``), and records why it starts when it does (``Binding``) for the delay rules.
Apart from the scheduler because this is the machines' state and the other is the lists'; both
are one projection's mutable state (``Placer`` is the base of the scheduler's ``_Pass``). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from central.progress.assignment import Tally
from central.progress.centre_split import Row, split
from central.progress.orders import CENTRE, OpKey, Plan
from central.progress.outlook import INF, Binding, DownCause, MachineOutlook, OpProjection
from central.progress.plan_index import Fact, PlanIndex
from central.progress.shifts import AlwaysPlanned
from central.progress.timetable import Timetable

# builds an ``OpProjection`` (or ``Row``) from a tuple of all its fields without the named tuple's
# keyword handling (10,000 a projection)
_new = tuple.__new__
# the bindings as module constants: an enum member looked up on its class costs ~10x a global
_NOW, _MACHINE, _REPAIR = Binding.NOW, Binding.MACHINE, Binding.REPAIR
_FREE_NOW: tuple[Binding, DownCause | None] = (_NOW, None)
_AFTER_OP: tuple[Binding, DownCause | None] = (_MACHINE, None)


class Placer(PlanIndex):
    """The machines' state during one projection and the placing of one operation on them."""

    def __init__(self, plan: Plan, machines: Mapping[str, MachineOutlook], now: float, horizon: float,
                 tallies: Mapping[OpKey, Tally], cycles: Mapping[OpKey, float],
                 running: Mapping[OpKey, Sequence[str]]) -> None:
        super().__init__(plan, tallies, cycles, running)
        self.now, self.running = now, running
        self.outlook: dict[str, MachineOutlook] = dict(machines)
        self.centres: dict[str, list[str]] = {q: [] for q in plan.dispatch if q.startswith(CENTRE)}
        self.centre_of: dict[str, str] = {}
        for m in machines.values():
            if m.work_centre is not None:
                self.centres.setdefault(CENTRE + m.work_centre, []).append(m.machine_id)
                self.centre_of[m.machine_id] = CENTRE + m.work_centre
        for q in plan.dispatch:
            if not q.startswith(CENTRE) and q not in self.outlook:
                self.outlook[q] = MachineOutlook(q)
        tables: dict[object, Timetable] = {}  # one per calendar: machines of a line share theirs
        self.table: dict[str, Timetable] = {}
        self.free: dict[str, float] = {}
        # why a machine is free only from ``free``: after an operation (``_AFTER_OP``; which one in ``ahead``),
        # back from a repair (and why it was down), or now. Constant tuples: nothing allocated per operation
        self.free_by: dict[str, tuple[Binding, DownCause | None]] = {}
        self.ahead: dict[str, OpKey] = {}
        for mid, m in self.outlook.items():
            same = ("always",) if isinstance(m.calendar, AlwaysPlanned) else id(m.calendar)
            tt = tables.get(same)
            if tt is None:
                tt = tables[same] = Timetable(m.calendar, now, now + horizon)
            self.table[mid] = tt
            if m.down is not None and m.down[0] > now:
                self.free[mid], self.free_by[mid] = m.down[0], (Binding.REPAIR, m.down[1])
            else:
                self.free[mid], self.free_by[mid] = now, _FREE_NOW
        self.rate: dict[str, float] = {m: o.availability for m, o in self.outlook.items()}
        self.solo: dict[str, tuple[str]] = {m: (m,) for m in self.outlook}  # ``machines`` of an operation on one
        n = len(self.keys)
        self.done: list[OpProjection | None] = [None] * n  # by number
        self.out: dict[OpKey, OpProjection] = {}  # the same by key, in the order they were projected
        self.release: list[float | None] = [None] * n  # None: not projected yet
        self.start_of: list[float] = [0.0] * n  # the Gantt rows' sort key
        self.finish_of: list[float] = [-INF] * n  # orders' finish (-INF: not projected)
        self.waiters: dict[int, list[str]] = {}  # lists whose head waits for this operation's release
        self.order_rows: dict[str, list[int]] = {q: [] for q in self.lists}
        self.unplaceable: list[OpKey] = []
        # lists of machines outside any work centre: drained without the heap (``drain``)
        self.alone = frozenset(q for q in self.lists if q not in self.centres and q not in self.centre_of)
        self.work: list[str] = []  # lone lists woken, to drain

    def push(self, q: str) -> None:  # pragma: no cover - the scheduler's
        raise NotImplementedError

    def wake(self, q: str) -> None:  # pragma: no cover - the scheduler's
        raise NotImplementedError

    def machines_for(self, q: str, key: OpKey) -> list[str]:
        if not q.startswith(CENTRE):
            return [q]
        running = [m for m in self.running.get(key, ()) if m in self.outlook]
        return running or self.centres.get(q, [])

    def schedule_machine(self, q: str, i: int, ready: float, ready_by: Binding, runner_up: float) -> None:
        """Operation ``i`` on machine ``q`` (the common case, kept lean: it runs 10,000 times a projection):
        ``place`` and ``finish`` for one machine, done inline."""
        fact = self.facts[i]
        free = self.free[q]
        free_by = self.free_by[q]
        if ready == INF:
            begin, binding, wait = INF, ready_by, INF
        elif free > ready:
            begin, binding, wait = free, free_by[0], free - ready
        else:
            begin, binding, wait = ready, ready_by, ready - (free if free > runner_up else runner_up)
        setup = (self.outlook[q].setup_left or 0.0) if q in fact.runs_on else fact.setup
        cycle = fact.cycle
        rate = self.rate[q] / cycle
        remaining = self.remaining[i]
        work = remaining / rate
        tt = self.table[q]
        start, setup_end, finish = tt.run(begin, setup, work)
        finish, ideal_work, gap, release = self.outcome(i, fact, start, setup, setup_end, work, finish, rate, tt,
                                                        cycle)
        key = fact.key
        result = _new(OpProjection, (key, self.solo[q], start, finish, ready, binding,
                                     self.ahead[q] if binding is _MACHINE else None, wait, setup, work,
                                     ideal_work, gap, free_by[1] if binding is _REPAIR else None, release))
        if ready < INF:  # an operation held indefinitely does not block its machine
            self.free[q] = finish
            self.free_by[q] = _AFTER_OP
            self.ahead[q] = key
        # ``finish``, inline
        self.done[i] = result
        self.out[key] = result
        self.release[i] = release
        self.start_of[i] = start
        self.finish_of[i] = finish
        waiting = self.waiters.pop(i, None)
        alone = self.alone
        if waiting is not None:
            for other in waiting:  # ``wake``, inline
                if other in alone:
                    self.work.append(other)
                else:
                    self.push(other)
        self.order_rows[q].append(i)
        if q in alone:
            return  # ``drain`` goes on with the list
        self.push(q)
        centre = self.centre_of.get(q)
        if centre is not None and centre != q and centre in self.lists:
            self.push(centre)

    def schedule_centre(self, q: str, i: int, ready: float, ready_by: Binding, runner_up: float) -> None:
        """A work-centre operation: split over the machines running it, else all of the centre's."""
        fact = self.facts[i]
        key = fact.key
        machines = self.machines_for(q, key)
        if not machines:
            self.unplaceable.append(key)
            self.finish(i, q, OpProjection(key, (), INF, INF, ready, ready_by, None, 0.0, 0.0, INF, INF, 0.0,
                                           release=INF))
            self.push(q)
            return
        cycle = fact.cycle
        remaining = self.remaining[i]
        rows: list[Row] = []
        for m in machines:
            outlook, tt, free = self.outlook[m], self.table[m], self.free[m]
            if ready == INF:
                begin, binding, wait = INF, ready_by, INF
            elif free > ready:
                begin, binding, wait = free, self.free_by[m][0], free - ready
            else:
                begin, binding, wait = ready, ready_by, ready - max(free, runner_up)
            setup = (outlook.setup_left or 0.0) if m in fact.runs_on else fact.setup
            start, setup_end, _ = tt.run(begin, setup, 0.0)
            rows.append(_new(Row, (m, begin, binding, wait, start, setup_end, outlook.availability / cycle, tt,
                                   setup)))
        finish, used = split(rows, remaining)
        first = min(used, key=lambda r: r.start)
        # the planned seconds the machines need together (what slow-rate attribution compares with the ideal)
        work = remaining / sum(r.rate for r in used) if finish < INF else INF
        self.place(q, i, fact, tuple(r.machine for r in used), ready, first.binding, first.wait, first.start,
                   first.setup, first.setup_end, work, finish, first.rate, first.tt, cycle)

    def place(self, q: str, i: int, fact: Fact, used: tuple[str, ...], ready: float, binding: Binding,
              wait: float, start: float, setup: float, setup_end: float, work: float, finish: float, rate: float,
              tt: Timetable, cycle: float) -> None:
        """Record ``i``'s projection, occupy its machines until it finishes, and wake who waits."""
        finish, ideal_work, gap, release = self.outcome(i, fact, start, setup, setup_end, work, finish, rate, tt,
                                                        cycle)
        m = used[0]
        ahead = self.ahead[m] if binding is _MACHINE else None
        down = self.free_by[m][1] if binding is _REPAIR else None
        result = OpProjection(fact.key, used, start, finish, ready, binding, ahead, wait, setup, work, ideal_work,
                              gap, down, release)
        if ready < INF:  # an operation held indefinitely does not block its machine
            for machine_id in used:
                self.free[machine_id] = finish
                self.free_by[machine_id] = _AFTER_OP
                self.ahead[machine_id] = fact.key
        self.finish(i, q, result)
        if q in self.alone:
            return  # ``drain`` goes on with the list
        self.push(q)
        centre_of, lists = self.centre_of, self.lists
        for machine_id in used:
            if machine_id != q and machine_id in lists:
                self.push(machine_id)
            centre = centre_of.get(machine_id)
            if centre is not None and centre != q and centre in lists:
                self.push(centre)

    def outcome(self, i: int, fact: Fact, start: float, setup: float, setup_end: float, work: float,
                finish: float, rate: float, tt: Timetable, cycle: float) -> tuple[float, float, float, float]:
        """``i``'s finish (a partial transfer may hold it to its predecessor's), ideal work, the gap between
        its planned time and its span (breaks, shifts), and when its successor may start."""
        if finish == INF:
            return INF, INF, 0.0, INF
        transfer, pred = fact.transfer, fact.pred
        if transfer is not None and pred >= 0:
            before = self.done[pred]
            if before is not None:  # a partial transfer: the last batch arrives with the predecessor's finish
                finish = max(finish, tt.advance(before.finish, min(transfer, self.remaining[i]) / rate))
        gap = (finish - start) - setup - work
        if gap < 0.0:
            gap = 0.0
        needs = self.next_transfer[i]
        release = finish if needs is None else self.release_time(i, needs, start, setup_end, finish, rate, tt)
        return finish, work * fact.ideal / cycle, gap, release

    def release_time(self, i: int, transfer: int, start: float, setup_end: float, finish: float, rate: float,
                     tt: Timetable) -> float:
        """When the successor has the parts it needs from ``i`` (``transfer``, its transfer quantity)."""
        made = self.planned[i] - self.remaining[i]
        if transfer <= made:
            return start
        return min(finish, tt.advance(setup_end, (transfer - made) / rate))

    def finish(self, i: int, q: str, result: OpProjection) -> None:
        self.done[i] = result
        self.out[result.key] = result
        self.release[i] = result.release
        self.start_of[i] = result.start
        self.finish_of[i] = result.finish
        waiting = self.waiters.pop(i, None)
        if waiting is not None:
            for other in waiting:
                self.wake(other)
        self.order_rows[q].append(i)
