"""State intervals with late events in any order (hypothesis; central/progress/timeline.py, read-only use).

A machine's history is a list of state changes. Applied in order (``advance``) they give the
reference intervals. Central may receive some of them late, after later changes of the same
gateway were applied; it splices each one in with ``insert_late``, given the neighbour the store
finds (the closed interval containing the change, or the first one after it; as
central/ingest/applier.py ``_neighbour`` does). Whatever the order the late ones arrive in, and
whenever, the history must come out the same: same states over the same spans (a splice may leave
two adjacent pieces of one state, and marks what it touched uncertain; both are allowed).

Found by this property (and fixed in timeline.py): when the changes applied in order around a late
one have the same key, ``advance`` merged them into one interval and the late change's span was lost;
intervals now keep the times of such repeats, and the splice ends the late state there.
``test_a_late_state_between_two_changes_to_one_state_keeps_its_span`` is the minimal case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from central.progress.timeline import OpenInterval, StateChange, StateInterval, advance, insert_late
from plantpulse.protocol.models import MachineState

T = 1_800_000_000.0
STATES = [MachineState.RUNNING, MachineState.IDLE, MachineState.SETUP, MachineState.FAULT]
Key = tuple[MachineState, int | None, str | None]


@dataclass
class Store:
    """What central keeps for one machine: closed intervals and the open one."""

    closed: list[StateInterval] = field(default_factory=list)
    open: OpenInterval | None = None

    def apply(self, change: StateChange) -> None:
        step = advance(self.open, change)
        if step.closed is not None:
            self.closed.append(step.closed)
        self.open = step.open

    def splice(self, change: StateChange) -> None:
        after = min((iv for iv in self.closed if iv.end > change.at), key=lambda iv: (iv.start, iv.end), default=None)
        result = insert_late(change, after=after, open_=self.open)
        if result.remove is not None:
            self.closed.remove(result.remove)
        self.closed.extend(result.add)
        self.open = result.open

    def spans(self) -> list[tuple[Key, float, float | None]]:
        """(key, start, end) over the whole history, adjacent pieces of one key merged, empty ones dropped."""
        pieces: list[tuple[Key, float, float | None]] = [
            ((iv.state, iv.fault_code, iv.job), iv.start, iv.end)
            for iv in sorted(self.closed, key=lambda iv: (iv.start, iv.end))
            if iv.end > iv.start
        ]
        if self.open is not None:
            pieces.append((self.open.key, self.open.start, None))
        merged: list[tuple[Key, float, float | None]] = []
        for key, start, end in pieces:
            if merged and merged[-1][0] == key and merged[-1][2] == start:
                merged[-1] = (key, merged[-1][1], end)
            else:
                merged.append((key, start, end))
        return merged


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[StateChange], list[int], list[int]]:
    """Changes at distinct increasing times; which arrive late, and in what order and when."""
    n = draw(st.integers(2, 12))
    gaps = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    keys = draw(st.lists(st.tuples(st.sampled_from(STATES), st.sampled_from(["J1", "J2"])), min_size=n, max_size=n))
    changes, t = [], 0
    for gap, (state, job) in zip(gaps, keys, strict=True):
        t += gap
        fault = 7 if state is MachineState.FAULT else None
        changes.append(StateChange("m1", T + t, state, fault_code=fault, job=job))
    late = draw(st.lists(st.integers(0, n - 2), unique=True))  # the last change is never late
    order = draw(st.permutations(late))
    # when each late change arrives: after how many of the in-order changes (at least one later one)
    in_order = [i for i in range(n) if i not in late]
    arrival = [draw(st.integers(sum(1 for j in in_order if j < i) + 1, len(in_order))) for i in order]
    return changes, list(order), arrival


@settings(max_examples=300, deadline=None)
@given(histories())
def test_late_states_in_any_order_give_the_same_intervals(
    history: tuple[list[StateChange], list[int], list[int]],
) -> None:
    changes, order, arrival = history
    reference = Store()
    for change in changes:
        reference.apply(change)
    late = set(order)
    in_order = [c for i, c in enumerate(changes) if i not in late]
    received = Store()
    applied = 0
    pending = sorted(zip(arrival, order, strict=True), key=lambda item: item[0])  # stable: drawn order
    for k, change in enumerate(in_order, start=1):
        received.apply(change)
        applied = k
        while pending and pending[0][0] <= applied:
            _, i = pending.pop(0)
            received.splice(changes[i])
    assert received.spans() == reference.spans()


def test_a_late_state_between_two_changes_to_one_state_keeps_its_span() -> None:
    running_a, idle, running_b = (StateChange("m1", T + t, state, job="J1") for t, state in
                                  ((1, MachineState.RUNNING), (2, MachineState.IDLE), (3, MachineState.RUNNING)))
    reference = Store()
    for change in (running_a, idle, running_b):
        reference.apply(change)
    received = Store()
    received.apply(running_a)
    received.apply(running_b)  # seq 2 (idle) was missing; seq 3 applied after the hold: same key, merged
    received.splice(idle)  # seq 2 arrives late
    assert received.spans() == reference.spans()  # idle [2, 3) must be there


def test_a_late_state_inside_a_closed_interval_with_a_repeat_ends_at_the_repeat() -> None:
    changes = [StateChange("m1", T + t, state, job="J1") for t, state in
               ((1, MachineState.RUNNING), (2, MachineState.IDLE), (3, MachineState.RUNNING), (5, MachineState.SETUP))]
    reference = Store()
    for change in changes:
        reference.apply(change)
    received = Store()
    for i in (0, 2, 3):
        received.apply(changes[i])  # the running interval [1, 5) is closed, with a repeat at 3
    received.splice(changes[1])
    assert received.spans() == reference.spans()
