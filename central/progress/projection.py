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

Three modules: ``plan_index.py`` numbers the open operations and reads what never changes
(``Fact``); ``placement.py`` places one operation on its machine(s); this one runs the lists
(which operation next, the heap of shared lists, material set aside, deadlocks).
"""

from __future__ import annotations

import gc
import heapq
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from central.progress.assignment import Tally
from central.progress.orders import OpKey, Plan
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
from central.progress.placement import Placer

__all__ = [  # the projection's inputs and outputs live in outlook.py; importable from here too
    "DEFAULT_DOWN", "DEFAULT_HORIZON", "DOWN_FLOOR", "INF", "Binding", "Deadlock", "DownCause", "MachineOutlook",
    "OpProjection", "Projection", "down_until", "project",
]

DAY = 86_400.0
DEFAULT_HORIZON = 120 * DAY
# the bindings as module constants: an enum member looked up on its class costs ~10x a global
_NOW, _PREDECESSOR, _MATERIAL = Binding.NOW, Binding.PREDECESSOR, Binding.MATERIAL

Ready = tuple[float, Binding, float]  # when precedence and material allow an operation, which binds, the other


class _Pass(Placer):
    """The mutable state of one projection; lives only inside ``project``. Operations by number (``PlanIndex``)."""

    def __init__(self, plan: Plan, machines: Mapping[str, MachineOutlook], now: float, horizon: float,
                 tallies: Mapping[OpKey, Tally], cycles: Mapping[OpKey, float],
                 running: Mapping[OpKey, Sequence[str]]) -> None:
        super().__init__(plan, machines, now, horizon, tallies, cycles, running)
        self.pos: dict[str, int] = dict.fromkeys(self.lists, 0)
        self.version: dict[str, int] = dict.fromkeys(self.lists, 0)
        self.head: dict[str, tuple[int, Ready]] = {}  # chosen by ``push``
        self.held: dict[str, list[tuple[int, Ready]]] = {}  # set aside for material
        self.heap: list[tuple[float, int, str, int]] = []
        self.tick = 0

    # ------------------------------------------------------------------ queue heads
    def ready(self, i: int) -> Ready | None:
        """When precedence and material allow ``i``, which of them binds, and the other's time
        (None: its predecessor is not projected yet)."""
        fact = self.facts[i]
        pred = fact.pred
        when, binding, runner_up = self.now, _NOW, self.now
        if pred >= 0:
            released = self.release[pred]
            if released is None:
                return None
            if released > when:
                when, binding = released, _PREDECESSOR
        arrival = fact.arrival
        if arrival is not None:
            if arrival > when:
                when, binding, runner_up = arrival, _MATERIAL, when
            else:
                runner_up = max(runner_up, arrival)
        return when, binding, runner_up

    def free_of(self, q: str) -> float:
        """When the list's machine (a centre: its first machine) is free."""
        machines = self.centres.get(q)
        if machines is None:
            return self.free[q]
        free = self.free
        return min([free[m] for m in machines]) if machines else self.now

    def next_for(self, q: str) -> tuple[int, Ready] | None:
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
            for j, (i, got) in enumerate(held):
                if got[0] <= free:
                    del held[j]
                    return i, got
        ops = self.lists[q]
        while self.pos[q] < len(ops):
            i = ops[self.pos[q]]
            ready = self.ready(i)
            if ready is None:
                self.waiters.setdefault(self.facts[i].pred, []).append(q)
                return None
            if ready[1] is _MATERIAL and free < ready[0] < INF:
                self.pos[q] += 1
                self.held.setdefault(q, []).append((i, ready))
                continue
            aside = self.held.get(q)
            if aside and ready[0] > free:
                # the machine would stand idle until ``i`` is ready: an operation set aside whose material
                # arrives before that goes first (it is ahead of ``i`` in the list); ``i`` stays next
                first = min(range(len(aside)), key=lambda j: aside[j][1][0])
                if aside[first][1][0] <= ready[0]:
                    return aside.pop(first)
            self.pos[q] += 1
            return i, ready
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
        nothing is set aside for material, ``next_for`` is done here inline (same rule): this loop
        runs for most of the 10,000 operations of a large plant.
        """
        ops, facts, free, ready = self.lists[q], self.facts, self.free, self.ready
        pos_of, held_of = self.pos, self.held
        inf = INF
        while True:
            if held_of.get(q):
                chosen = self.next_for(q)
                if chosen is None:
                    return
                self.schedule_machine(q, chosen[0], *chosen[1])
                continue
            pos = pos_of[q]
            if pos >= len(ops):
                return
            i = ops[pos]
            state = ready(i)
            if state is None:
                self.waiters.setdefault(facts[i].pred, []).append(q)
                return
            pos_of[q] = pos + 1
            when, binding, _ = state
            if binding is _MATERIAL and free[q] < when < inf:  # set aside; the machine goes on with its list
                held_of.setdefault(q, []).append((i, state))
                continue
            self.schedule_machine(q, i, *state)

    def run(self) -> list[Deadlock]:
        for q in self.lists:
            self.wake(q)
        deadlocks: list[Deadlock] = []
        rounds = 0
        while True:
            rounds += 1
            if rounds > 2 * len(self.keys) ** 2 + 10:  # each round moves an awaited operation up its list
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

    def schedule(self, q: str) -> None:
        i, (ready, ready_by, runner_up) = self.head.pop(q)  # chosen by ``push``
        if q in self.centres:
            self.schedule_centre(q, i, ready, ready_by, runner_up)
        else:
            self.schedule_machine(q, i, ready, ready_by, runner_up)

    # ------------------------------------------------------------------ deadlocks
    def break_deadlock(self, first: str) -> Deadlock:
        """Follow "head waits for predecessor, queued in list L behind L's head" until a list repeats."""
        keys = self.keys
        waits: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        q = first
        while q not in seen:
            seen[q] = len(waits)
            head = self.lists[q][self.pos[q]]
            pred = self.facts[head].pred
            assert pred >= 0
            waits.append((head, pred))
            nq = self.queue_of.get(pred)
            if nq is None or self.done[pred] is not None:  # the predecessor is in no list: never projected
                self.release[pred] = INF
                self.unplaceable.append(keys[pred])
                self.wake(q)
                return Deadlock(tuple((keys[h], keys[p]) for h, p in waits), tuple(seen), keys[pred])
            q = nq
        cycle = waits[seen[q]:]
        queues = tuple(list(seen)[seen[q]:])
        # move up a predecessor queued *behind* the head of its list (one that is itself a head only
        # waits in turn), preferring one that could start at once, else the earliest in its routing, so
        # that the move never creates the next deadlock; precedence is acyclic, so there is one
        movable = [(pred, where) for (_head, pred), where in zip(cycle, (*queues[1:], queues[0]), strict=True)
                   if self.lists[where].index(pred) > self.pos[where]]
        if movable:
            pred, where = min(movable, key=lambda m: (self.ready(m[0]) is None, keys[m[0]][1]))
            ops = self.lists[where]
            ops.insert(self.pos[where], ops.pop(ops.index(pred)))
        else:  # cannot happen (see above); give up on one rather than loop
            pred = cycle[0][1]
            self.release[pred] = INF
            self.unplaceable.append(keys[pred])
        for name in queues:
            self.wake(name)
        return Deadlock(tuple((keys[h], keys[p]) for h, p in cycle), queues, keys[pred])


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic garbage collection during a projection, then one of the youngest generation.

    A projection allocates ~50,000 short-lived tuples (and its ~10,000 results): the collector
    would run some 50 times meanwhile and promote the pass's temporaries to older generations,
    which then triggers full collections of the whole process (~40 ms each on the benchmark
    machine, one every second or third projection). The pass creates no reference cycles, so
    pausing loses nothing; the young survivors (the results) are collected once at the end so that
    the cost stays here. Left alone when the caller has disabled the collector itself.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)


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
    with _collector_paused():  # the pass's state is gone when the young generation is collected
        return _project(_Pass(plan, machines, now, horizon, tallies or {}, cycle_times or {}, running or {}))


def _project(state: _Pass) -> Projection:
    deadlocks = state.run()
    orders: dict[str, float] = {}
    finish_of = state.finish_of.__getitem__
    for order_id, numbers in state.order_ops.items():  # only orders with open operations have projected ones
        last = max(map(finish_of, numbers))
        if last > -INF:  # some projected
            orders[order_id] = last
    key_of, start_of = state.keys.__getitem__, state.start_of.__getitem__
    rows = {q: tuple(map(key_of, sorted(numbers, key=start_of))) for q, numbers in state.order_rows.items() if numbers}
    return Projection(state.now, state.out, orders, rows, tuple(deadlocks), tuple(state.unplaceable))
