"""Projected start and finish of every open operation on every machine: list scheduling (issue 13).

One forward pass over every dispatch list, in time order (a heap of queue heads keyed by the
earliest time each could begin). An operation begins at the latest of:

* ``now``;
* when its machine is free: after the operation ahead of it, or after the machine is back from a
  fault, maintenance or an offline spell (``down_until``: the repair ETA entered by maintenance,
  else the mean repair time less the time already spent, never less than ``floor`` ahead);
* when its predecessor in the order has produced its transfer quantity (default: all of it);
* when its missing material is expected. Meanwhile the machine goes on with the rest of its list,
  as an operator would: the operation is set aside and taken back as soon as the machine is free
  after the arrival (an unknown arrival holds it indefinitely).

It then does its setup and makes its remaining good parts at ``seconds per good part /
availability`` of its machine, both only in planned time (the machine's ``Timetable``). A work
centre's operation is split over the centre's machines (those running it, else all of them) so
that they finish together. An order's projected finish is its last operation's.

A dispatch order that contradicts precedence (B of order X queued before A of X on another list,
each list waiting for the other) cannot be scheduled: it is reported as a ``Deadlock`` and broken by
moving an awaited operation up its list, so the rest of the plan still gets a projection.

Inputs and outputs (``MachineOutlook``, ``OpProjection``, ``Projection``, ``down_until``) live in
``outlook.py`` and are importable from here.

Every operation records what bound its start (``Binding``) and the operation ahead of it, so
``delay.py`` can walk an order's critical path and say why it is late. Pure; O(n log q) for n
operations on q dispatch lists, plus O(log spans) per calendar question.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from central.progress.assignment import Tally
from central.progress.centre_split import Row, split
from central.progress.orders import CENTRE, Operation, OpKey, OpStatus, Plan
from central.progress.outlook import (
    DEFAULT_DOWN,
    DOWN_FLOOR,
    INF,
    Binding,
    Deadlock,
    DownCause,
    MachineOutlook,
    OpProjection,
    Projection,
    down_until,
)
from central.progress.plan_index import PlanIndex
from central.progress.shifts import AlwaysPlanned
from central.progress.timetable import Timetable

__all__ = [  # the projection's inputs and outputs live in outlook.py; importable from here too
    "DEFAULT_DOWN", "DEFAULT_HORIZON", "DOWN_FLOOR", "INF", "Binding", "Deadlock", "DownCause", "MachineOutlook",
    "OpProjection", "Projection", "down_until", "project",
]

DAY = 86_400.0
DEFAULT_HORIZON = 120 * DAY
# builds an ``OpProjection`` from a ready tuple of all its fields without the named tuple's keyword
# handling (10,000 a projection)
_new = tuple.__new__
# the bindings as module constants: an enum member looked up on its class costs ~10x a global
_NOW, _MACHINE, _REPAIR, _PREDECESSOR, _MATERIAL = (
    Binding.NOW, Binding.MACHINE, Binding.REPAIR, Binding.PREDECESSOR, Binding.MATERIAL)


class _Pass(PlanIndex):
    """The mutable state of one projection; lives only inside ``project``."""

    def __init__(self, plan: Plan, machines: Mapping[str, MachineOutlook], now: float, horizon: float,
                 tallies: Mapping[OpKey, Tally], cycles: Mapping[OpKey, float],
                 running: Mapping[OpKey, Sequence[str]]) -> None:
        super().__init__(plan, tallies, cycles, running)
        self.plan, self.now, self.tallies, self.cycles, self.running = plan, now, tallies, cycles, running
        self.ops = plan.operations
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
        self.free_by: dict[str, tuple[Binding, OpKey | None, DownCause | None]] = {}
        for mid, m in self.outlook.items():
            same = ("always",) if isinstance(m.calendar, AlwaysPlanned) else id(m.calendar)
            tt = tables.get(same)
            if tt is None:
                tt = tables[same] = Timetable(m.calendar, now, now + horizon)
            self.table[mid] = tt
            if m.down is not None and m.down[0] > now:
                self.free[mid], self.free_by[mid] = m.down[0], (Binding.REPAIR, None, m.down[1])
            else:
                self.free[mid], self.free_by[mid] = now, (Binding.NOW, None, None)
        self.rate: dict[str, float] = {m: o.availability for m, o in self.outlook.items()}
        self.done: dict[OpKey, OpProjection] = {}
        self.start_of: dict[OpKey, float] = {}  # the Gantt rows' sort key
        self.pos: dict[str, int] = dict.fromkeys(self.lists, 0)
        self.waiters: dict[OpKey, list[str]] = {}
        self.version: dict[str, int] = dict.fromkeys(self.lists, 0)
        self.head: dict[str, tuple[OpKey, tuple[float, Binding, float]]] = {}  # chosen by ``push``
        self.held: dict[str, list[tuple[OpKey, tuple[float, Binding, float]]]] = {}  # set aside for material
        # lists of machines outside any work centre: drained without the heap (``drain``)
        self.alone = frozenset(q for q in self.lists if q not in self.centres and q not in self.centre_of)
        self.work: list[str] = []
        self.heap: list[tuple[float, int, str, int]] = []
        self.tick = 0
        self.unplaceable: list[OpKey] = []
        self.order_rows: dict[str, list[OpKey]] = {q: [] for q in self.lists}

    # ------------------------------------------------------------------ queue heads
    def machines_for(self, q: str, key: OpKey) -> list[str]:
        if not q.startswith(CENTRE):
            return [q]
        running = [m for m in self.running.get(key, ()) if m in self.outlook]
        return running or self.centres.get(q, [])

    def ready(self, key: OpKey) -> tuple[float, Binding, float] | None:
        """When precedence and material allow ``key``, which of them binds, and the other's time
        (None: its predecessor is not projected yet)."""
        fact = self.facts[key]
        pred = fact.pred
        when, binding, runner_up = self.now, Binding.NOW, self.now
        if pred is not None:
            released = self.release.get(pred)
            if released is None:
                return None
            if released > when:
                when, binding = released, Binding.PREDECESSOR
        arrival = fact.arrival
        if arrival is not None:
            if arrival > when:
                when, binding, runner_up = arrival, Binding.MATERIAL, when
            else:
                runner_up = max(runner_up, arrival)
        return when, binding, runner_up

    def free_of(self, q: str) -> float:
        """When the list's machine (a centre: its first machine) is free."""
        if q in self.centres:
            return min((self.free[m] for m in self.centres[q]), default=self.now)
        return self.free[q]

    def next_for(self, q: str) -> tuple[OpKey, tuple[float, Binding, float]] | None:
        """The list's next operation and when precedence and material allow it, taken off the list.

        An operation whose material arrives after the machine is free is set aside (``held``) and
        the machine goes on with its list, as an operator would; it is taken back as soon as the
        machine is free after its arrival (also while the machine would stand idle waiting for the next
        operation's predecessor, if the material comes first), and at the latest when the list is done.
        None: the next operation waits for a predecessor not projected yet (``q`` is woken when it is) or
        nothing is left.
        """
        held = self.held.get(q)
        free = self.free_of(q)
        if held:
            for i, (key, got) in enumerate(held):
                if got[0] <= free:
                    del held[i]
                    return key, got
        keys = self.lists[q]
        while self.pos[q] < len(keys):
            key = keys[self.pos[q]]
            ready = self.ready(key)
            if ready is None:
                pred = self.pred[key]
                assert pred is not None
                self.waiters.setdefault(pred, []).append(q)
                return None
            if ready[1] is Binding.MATERIAL and free < ready[0] < INF:
                self.pos[q] += 1
                self.held.setdefault(q, []).append((key, ready))
                continue
            aside = self.held.get(q)
            if aside and ready[0] > free:
                # the machine would stand idle until ``key`` is ready: an operation set aside whose material
                # arrives before that goes first (it is ahead of ``key`` in the list); ``key`` stays next
                first = min(range(len(aside)), key=lambda j: aside[j][1][0])
                if aside[first][1][0] <= ready[0]:
                    return aside.pop(first)
            self.pos[q] += 1
            return key, ready
        waiting = self.held.get(q)
        if waiting:
            first = min(range(len(waiting)), key=lambda j: waiting[j][1][0])
            return waiting.pop(first)
        return None

    def push(self, q: str) -> None:
        """Put the list's next operation on the heap at the time it could begin."""
        self.version[q] += 1
        chosen = self.head.get(q) or self.next_for(q)
        if chosen is None:
            return
        self.head[q] = chosen
        begin = chosen[1][0]
        free = self.free_of(q)
        self.tick += 1
        heapq.heappush(self.heap, (free if free > begin else begin, self.tick, q, self.version[q]))

    def wake(self, q: str) -> None:
        """``q`` may go on: a lone machine's list is drained at once, a shared one goes on the heap."""
        if q in self.alone:
            self.work.append(q)
        else:
            self.push(q)

    def drain(self, q: str) -> None:
        """Schedule a lone machine's list as far as precedence allows.

        A machine outside any work centre shares nothing with other lists: its operations' times
        depend only on its own order and on predecessors' releases, never on the order in which
        lists are processed, so it needs no heap (most of the plant: this is the fast path). While
        nothing is set aside for material, ``next_for`` and ``ready`` are done here inline (same
        rules): this loop runs for most of the 10,000 operations of a large plant.
        """
        keys, facts, release, free = self.lists[q], self.facts, self.release, self.free
        pos_of, held_of = self.pos, self.held
        now, inf = self.now, INF
        while True:
            if held_of.get(q):
                chosen = self.next_for(q)
                if chosen is None:
                    return
                self.schedule_machine(q, chosen[0], *chosen[1])
                continue
            pos = pos_of[q]
            if pos >= len(keys):
                return
            key = keys[pos]
            fact = facts[key]
            pred = fact.pred
            when, binding, runner_up = now, _NOW, now
            if pred is not None:
                released = release.get(pred)
                if released is None:
                    self.waiters.setdefault(pred, []).append(q)
                    return
                if released > when:
                    when, binding = released, _PREDECESSOR
            arrival = fact.arrival
            if arrival is not None:
                if arrival > when:
                    when, binding, runner_up = arrival, _MATERIAL, when
                    if free[q] < when < inf:  # set aside; the machine goes on with its list
                        pos_of[q] = pos + 1
                        held_of.setdefault(q, []).append((key, (when, binding, runner_up)))
                        continue
                elif arrival > runner_up:
                    runner_up = arrival
            pos_of[q] = pos + 1
            self.schedule_machine(q, key, when, binding, runner_up)

    def run(self) -> list[Deadlock]:
        for q in self.lists:
            self.wake(q)
        deadlocks: list[Deadlock] = []
        rounds = 0
        while True:
            rounds += 1
            if rounds > 2 * len(self.remaining) ** 2 + 10:  # each round moves an awaited operation up its list
                raise RuntimeError("projection made no progress: a bug, please report the plan that caused it")
            while self.work or self.heap:
                while self.work:
                    self.drain(self.work.pop())
                if self.heap:
                    _t, _tick, q, version = heapq.heappop(self.heap)
                    if version == self.version[q]:
                        self.schedule(q)
            blocked = [q for q in self.lists if self.pos[q] < len(self.lists[q]) and q not in self.head]
            if not blocked:
                return deadlocks
            stuck = [q for q in blocked if self.held.get(q)]
            if stuck:  # lists waiting for a predecessor while they hold back operations for material
                for q in stuck:
                    self.take_held(q)
                continue
            deadlocks.append(self.break_deadlock(blocked[0]))

    def take_held(self, q: str) -> None:
        """Schedule the held operation whose material comes first: its list waits for a predecessor
        that can only come after it (a chain through the held operation), so it goes now."""
        waiting = self.held[q]
        first = min(range(len(waiting)), key=lambda j: waiting[j][1][0])
        chosen = waiting.pop(first)
        if q in self.alone:
            self.schedule_machine(q, chosen[0], *chosen[1])
            self.wake(q)
        else:
            self.head[q] = chosen
            self.push(q)

    # ------------------------------------------------------------------ one operation
    def schedule(self, q: str) -> None:
        key, (ready, ready_by, runner_up) = self.head.pop(q)  # chosen by ``push``
        if q in self.centres:
            self.schedule_centre(q, key, ready, ready_by, runner_up)
        else:
            self.schedule_machine(q, key, ready, ready_by, runner_up)

    def schedule_machine(self, q: str, key: OpKey, ready: float, ready_by: Binding, runner_up: float) -> None:
        """One operation on one machine (the common case, kept lean: it runs 10,000 times a projection):
        ``place`` for one machine, done inline."""
        fact = self.facts[key]
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
        remaining = self.remaining[key]
        work = remaining / rate
        tt = self.table[q]
        start, setup_end, finish = tt.run(begin, setup, work)
        if finish < INF:
            transfer, pred = fact.transfer, fact.pred
            if transfer is not None and pred is not None:
                before = self.done.get(pred)
                if before is not None:  # a partial transfer: the last batch arrives with the predecessor's finish
                    finish = max(finish, tt.advance(before.finish, min(transfer, remaining) / rate))
            ideal_work = work * fact.ideal / cycle
            gap = (finish - start) - setup - work
            if gap < 0.0:
                gap = 0.0
            release = finish if key not in self.next_transfer else self.release_time(
                key, start, setup_end, finish, rate, tt)
        else:
            ideal_work, gap, release = INF, 0.0, INF
        result = _new(OpProjection, (key, (q,), start, finish, ready, binding,
                                     free_by[1] if binding is _MACHINE else None, wait, setup, work,
                                     ideal_work, gap, free_by[2] if binding is _REPAIR else None, release))
        if ready < INF:  # an operation held indefinitely does not block its machine
            self.free[q] = finish
            self.free_by[q] = (_MACHINE, key, None)
        # ``finish``, inline
        self.done[key] = result
        self.release[key] = release
        self.start_of[key] = start
        waiting = self.waiters.pop(key, None)
        if waiting is not None:
            for other in waiting:
                self.wake(other)
        self.order_rows[q].append(key)
        if q in self.alone:
            return  # ``drain`` goes on with the list
        self.push(q)
        centre = self.centre_of.get(q)
        if centre is not None and centre != q and centre in self.lists:
            self.push(centre)

    def schedule_centre(self, q: str, key: OpKey, ready: float, ready_by: Binding, runner_up: float) -> None:
        """A work-centre operation: split over the machines running it, else all of the centre's."""
        machines = self.machines_for(q, key)
        if not machines:
            self.unplaceable.append(key)
            self.finish(key, q, OpProjection(key, (), INF, INF, ready, ready_by, None, 0.0, 0.0, INF, INF, 0.0,
                                             release=INF))
            self.push(q)
            return
        op = self.ops[key]
        cycle = self.cycles.get(key, op.ideal_cycle_time)
        remaining = self.remaining[key]
        rows: list[Row] = []
        for m in machines:
            outlook, tt, free = self.outlook[m], self.table[m], self.free[m]
            if ready == INF:
                begin, binding, wait = INF, ready_by, INF
            elif free > ready:
                begin, binding, wait = free, self.free_by[m][0], free - ready
            else:
                begin, binding, wait = ready, ready_by, ready - max(free, runner_up)
            if m in self.running.get(key, ()) and op.status is OpStatus.RUNNING:
                setup = outlook.setup_left or 0.0
            else:
                setup = op.setup_time
            start, setup_end, _ = tt.run(begin, setup, 0.0)
            rows.append(Row(m, begin, binding, wait, start, setup_end, outlook.availability / cycle, tt, setup))
        finish, used = split(rows, remaining)
        first = min(used, key=lambda r: r.start)
        # the planned seconds the machines need together (what slow-rate attribution compares with the ideal)
        work = remaining / sum(r.rate for r in used) if finish < INF else INF
        self.place(q, key, op, tuple(r.machine for r in used), ready, first.binding, first.wait, first.start,
                   first.setup, first.setup_end, work, finish, first.rate, first.tt, cycle)

    def place(self, q: str, key: OpKey, op: Operation, used: tuple[str, ...], ready: float, binding: Binding,
              wait: float, start: float, setup: float, setup_end: float, work: float, finish: float, rate: float,
              tt: Timetable, cycle: float) -> None:
        """Record ``key``'s projection, occupy its machines until it finishes, and wake who waits."""
        if op.transfer_quantity is not None and finish < INF and self.pred.get(key) in self.done:
            pred = self.pred[key]
            assert pred is not None
            # a partial transfer: the last batch arrives with the predecessor's finish
            finish = max(finish, tt.advance(self.done[pred].finish, min(op.transfer_quantity, self.remaining[key])
                                            / rate))
        m = used[0]
        ahead = self.free_by[m][1] if binding is Binding.MACHINE else None
        down = self.free_by[m][2] if binding is Binding.REPAIR else None
        if finish < INF:
            ideal_work = work * op.ideal_cycle_time / cycle
            gap = (finish - start) - setup - work
            if gap < 0.0:
                gap = 0.0
            release = finish if self.next_transfer.get(key) is None else self.release_time(
                key, start, setup_end, finish, rate, tt)
        else:
            ideal_work, gap, release = INF, 0.0, INF
        result = OpProjection(key, used, start, finish, ready, binding, ahead, wait, setup, work, ideal_work,
                              gap, down, release)
        if ready < INF:  # an operation held indefinitely does not block its machine
            mark = (Binding.MACHINE, key, None)
            for machine_id in used:
                self.free[machine_id] = finish
                self.free_by[machine_id] = mark
        self.finish(key, q, result)
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

    def release_time(self, key: OpKey, start: float, setup_end: float, finish: float, rate: float,
                     tt: Timetable) -> float:
        """When the successor has the parts it needs from ``key`` (its transfer quantity; default all)."""
        transfer = self.next_transfer.get(key)
        if transfer is None:
            return finish
        made = self.planned[key] - self.remaining[key]
        if transfer <= made:
            return start
        return min(finish, tt.advance(setup_end, (transfer - made) / rate))

    def finish(self, key: OpKey, q: str, result: OpProjection) -> None:
        self.done[key] = result
        self.release[key] = result.release
        self.start_of[key] = result.start
        waiting = self.waiters.pop(key, None)
        if waiting is not None:
            for other in waiting:
                self.wake(other)
        self.order_rows[q].append(key)

    # ------------------------------------------------------------------ deadlocks
    def break_deadlock(self, first: str) -> Deadlock:
        """Follow "head waits for predecessor, queued in list L behind L's head" until a list repeats."""
        waits: list[tuple[OpKey, OpKey]] = []
        seen: dict[str, int] = {}
        q = first
        while q not in seen:
            seen[q] = len(waits)
            head = self.lists[q][self.pos[q]]
            pred = self.pred[head]
            assert pred is not None
            waits.append((head, pred))
            nq = self.queue_of.get(pred)
            if nq is None or pred in self.done:  # the predecessor is in no list: it will never be projected
                self.release[pred] = INF
                self.unplaceable.append(pred)
                self.wake(q)
                return Deadlock(tuple(waits), tuple(seen), pred)
            q = nq
        cycle = waits[seen[q]:]
        queues = tuple(list(seen)[seen[q]:])
        # move up a predecessor queued *behind* the head of its list (one that is itself a head only
        # waits in turn), preferring one that could start at once, else the earliest in its routing, so
        # that the move never creates the next deadlock; precedence is acyclic, so there is one
        movable = [(pred, where) for (_head, pred), where in zip(cycle, (*queues[1:], queues[0]), strict=True)
                   if self.lists[where].index(pred) > self.pos[where]]
        if movable:
            pred, where = min(movable, key=lambda m: (self.ready(m[0]) is None, m[0][1]))
            keys = self.lists[where]
            keys.insert(self.pos[where], keys.pop(keys.index(pred)))
        else:  # cannot happen (see above); give up on one rather than loop
            pred = cycle[0][1]
            self.release[pred] = INF
            self.unplaceable.append(pred)
        for name in queues:
            self.wake(name)
        return Deadlock(tuple(cycle), queues, pred)


def project(
    plan: Plan, machines: Mapping[str, MachineOutlook], now: float, *,
    tallies: Mapping[OpKey, Tally] | None = None, cycle_times: Mapping[OpKey, float] | None = None,
    running: Mapping[OpKey, Sequence[str]] | None = None, horizon: float = DEFAULT_HORIZON,
) -> Projection:
    """Project every open operation of ``plan`` from ``now``.

    ``machines``: an outlook per machine (a machine with a dispatch list but no outlook is planned
    around the clock at full availability). ``tallies``: good parts so far per operation
    (attribution plus reports). ``cycle_times``: running seconds per good part per operation
    (``Rate.running_seconds_per_good``; default the ideal cycle time). ``running``: machines each
    operation runs on now (``assignment.machines_running``), for setups and work-centre splits.
    """
    state = _Pass(plan, machines, now, horizon, tallies or {}, cycle_times or {}, running or {})
    deadlocks = state.run()
    orders: dict[str, float] = {}
    done = state.done
    for order_id, keys in state.order_keys.items():  # only orders with open operations have projected ones
        last = [done[k].finish for k in keys if k in done]
        if last:
            orders[order_id] = max(last)
    start_of = state.start_of.__getitem__
    rows = {q: tuple(sorted(keys, key=start_of)) for q, keys in state.order_rows.items() if keys}
    return Projection(now, state.done, orders, rows, tuple(deadlocks), tuple(state.unplaceable))
