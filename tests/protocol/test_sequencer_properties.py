"""The sequencer under any interleaving of duplicates, gaps, replays and epochs (hypothesis; issue 11).

A gateway's events reach central in batches the broker may repeat, reorder and lose, and a
gateway may start a new epoch (its outbox replaced) while old events are still on their way.
Whatever happens, each (epoch, seq) is applied at most once; once every event has arrived (the
gateway answers the replays in the end), each is applied exactly once or, for an epoch replaced
before it arrived, recorded as a gap; and the state events of an epoch are applied in seq order
except those the sequencer itself marks ``uncertain`` or ``late``.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plantpulse.protocol.models import CountEvent, Event, EventBatch, MachineState, StateEvent, Status
from plantpulse.protocol.sequencer import Decision, GatewaySequencer

T = 1_800_000_000.0
E1 = "00000000-0000-4000-8000-000000000001"
E2 = "00000000-0000-4000-8000-000000000002"


def stream(kinds: list[bool]) -> list[Event]:
    """Seqs 1..n: a state event where ``kinds`` says True, a count event otherwise."""
    return [StateEvent(seq=i, machine_id="m", ts=T + i, state=MachineState.RUNNING) if k
            else CountEvent(seq=i, machine_id="m", start=T, ts=T + i, good=1, scrap=0)
            for i, k in enumerate(kinds, start=1)]


def batch(events: list[Event], seqs: set[int], epoch: str) -> EventBatch:
    return EventBatch(edge_id="gw", epoch=epoch, sent_at=T, events=[events[s - 1] for s in sorted(seqs)])


class Recorder:
    """Keeps what the sequencer applied and recorded as gaps, per epoch."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, int, bool, bool]] = []  # epoch, seq, uncertain or late, is a state
        self.gaps: set[tuple[str, int]] = set()

    def take(self, d: Decision) -> None:
        for a in d.apply:
            assert a.event.seq is not None
            self.applied.append((a.epoch, a.event.seq, a.uncertain or a.late, isinstance(a.event, StateEvent)))
        for g in d.gaps:
            self.gaps.update((g.epoch, s) for s in range(g.first, g.last + 1))

    def seqs(self, epoch: str) -> list[int]:
        return [s for e, s, _, _ in self.applied if e == epoch]

    def states_in_order(self, epoch: str) -> bool:
        plain = [s for e, s, marked, is_state in self.applied if e == epoch and is_state and not marked]
        return plain == sorted(plain)


deliveries = st.lists(st.tuples(st.sets(st.integers(1, 30), max_size=8), st.floats(0, 12)), max_size=25)


@settings(max_examples=300, deadline=None)
@given(kinds=st.lists(st.booleans(), min_size=1, max_size=30), shuffled=deliveries)
def test_any_interleaving_of_one_epoch_applies_each_seq_exactly_once(
    kinds: list[bool], shuffled: list[tuple[set[int], float]]
) -> None:
    events = stream(kinds)
    n = len(events)
    s = GatewaySequencer("gw", hold_max_age=30, replay_retry=5)
    rec = Recorder()
    now = T
    rec.take(s.on_status(Status(edge_id="gw", online=True, birth=1, ts=T, epoch=E1), now))
    for seqs, wait in shuffled:  # repeated, reordered, some never sent until the end
        now += wait
        seqs = {x for x in seqs if x <= n}
        if seqs:
            rec.take(s.on_batch(batch(events, seqs, E1), now))
        rec.take(s.tick(now))
        assert len(rec.seqs(E1)) == len(set(rec.seqs(E1))), "a seq applied twice"
    # the gateway resends everything it holds (what the replays ask for), twice, then time passes
    for _ in range(2):
        now += 1
        rec.take(s.on_batch(batch(events, set(range(1, n + 1)), E1), now))
    rec.take(s.tick(now + 100))
    assert sorted(rec.seqs(E1)) == list(range(1, n + 1))
    assert rec.states_in_order(E1)
    assert s.ack_ranges(E1) == [(1, n)] and not rec.gaps


@settings(max_examples=300, deadline=None)
@given(kinds=st.lists(st.booleans(), min_size=1, max_size=30), first=deliveries, later=deliveries,
       old_later=deliveries)
def test_a_new_epoch_amid_duplicates_and_late_old_events_never_applies_anything_twice(
    kinds: list[bool], first: list[tuple[set[int], float]], later: list[tuple[set[int], float]],
    old_later: list[tuple[set[int], float]],
) -> None:
    events = stream(kinds)
    n = len(events)
    s = GatewaySequencer("gw", hold_max_age=30, replay_retry=5)
    rec = Recorder()
    now = T
    rec.take(s.on_status(Status(edge_id="gw", online=True, birth=1, ts=T, epoch=E1), now))
    for seqs, wait in first:
        now += wait
        if seqs := {x for x in seqs if x <= n}:
            rec.take(s.on_batch(batch(events, seqs, E1), now))
    # the outbox is replaced: a new epoch, while old events are still on their way (interleaved)
    rec.take(s.on_status(Status(edge_id="gw", online=True, birth=2, ts=now, epoch=E2,
                                latest_seq=None, oldest_seq=None), now))
    for (new, w1), (old, w2) in zip(later, old_later, strict=False):
        now += w1
        if new := {x for x in new if x <= n}:
            rec.take(s.on_batch(batch(events, new, E2), now))
        now += w2
        if old := {x for x in old if x <= n}:
            rec.take(s.on_batch(batch(events, old, E1), now))
        rec.take(s.tick(now))
    for epoch in (E1, E2):
        assert len(rec.seqs(epoch)) == len(set(rec.seqs(epoch))), f"a seq of {epoch[-1]} applied twice"
    # the new epoch's gateway resends everything; the old epoch closes
    now += 1
    rec.take(s.on_batch(batch(events, set(range(1, n + 1)), E2), now))
    rec.take(s.tick(now + 100))
    rec.take(s.on_batch(batch(events, set(range(1, n + 1)), E1), now + 101))  # too late: duplicates
    assert sorted(rec.seqs(E2)) == list(range(1, n + 1))
    assert rec.states_in_order(E2)
    old_applied = rec.seqs(E1)
    assert len(old_applied) == len(set(old_applied))
    # every old seq ever sent is applied or a gap, never both
    sent_old = {x for seqs, _ in [*first, *old_later] for x in seqs if x <= n}
    assert sent_old <= set(old_applied) | {q for e, q in rec.gaps if e == E1}
    assert not set(old_applied) & {q for e, q in rec.gaps if e == E1}
