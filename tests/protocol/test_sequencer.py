"""The consumer's sequencing rules, with hand-made batches (pure: no broker)."""

from __future__ import annotations

from plantpulse.protocol.models import CountEvent, DroppedRange, EventBatch, MachineState, StateEvent, Status
from plantpulse.protocol.ranges import RangeSet
from plantpulse.protocol.sequencer import GatewaySequencer

T = 1_800_000_000.0
E1 = "00000000-0000-4000-8000-000000000001"
E2 = "00000000-0000-4000-8000-000000000002"


def born(s: GatewaySequencer, epoch: str = E1) -> GatewaySequencer:
    """A sequencer that has seen the gateway's birth of ``epoch`` with nothing sent yet."""
    s.on_status(Status(edge_id=s.edge_id, online=True, birth=1, ts=T, epoch=epoch), T)
    return s


def count(seq: int, good: int = 1, absorbed: list[int] | None = None) -> CountEvent:
    return CountEvent(seq=seq, machine_id="m", start=T, ts=T + seq % 1000, good=good, scrap=0, absorbed=absorbed or [])


def state(seq: int, s: MachineState = MachineState.RUNNING) -> StateEvent:
    return StateEvent(seq=seq, machine_id="m", ts=T + seq, state=s)


def batch(*events: CountEvent | StateEvent, epoch: str = E1) -> EventBatch:
    return EventBatch(edge_id="gw", epoch=epoch, sent_at=T, events=list(events))


def seqs(decision: object) -> list[int]:
    return [a.event.seq for a in decision.apply]  # type: ignore[attr-defined,misc]


def test_in_order_stream_applies_everything_once() -> None:
    s = born(GatewaySequencer("gw"))
    d = s.on_batch(batch(state(1), count(2), count(3)), T)
    assert seqs(d) == [1, 2, 3] and not d.replays
    again = s.on_batch(batch(state(1), count(2), count(3)), T)
    assert seqs(again) == [] and again.duplicates == 3
    assert s.ack_ranges(E1) == [(1, 3)]


def test_gap_holds_states_applies_counts_and_asks_for_a_replay() -> None:
    s = born(GatewaySequencer("gw", replay_retry=5))
    s.on_batch(batch(state(1), count(2)), T)
    d = s.on_batch(batch(count(5), state(6), count(7)), T + 1)
    assert seqs(d) == [5, 7]  # counts at once, the state waits behind the gap 3..4
    assert [(r.first, r.last) for r in d.replays] == [(3, 4)]
    assert s.on_batch(batch(count(8)), T + 2).replays == []  # asked already, not again so soon
    assert [(r.first, r.last) for r in s.tick(T + 7).replays] == [(3, 4)]  # asked again later
    filled = s.on_batch(batch(state(3, MachineState.IDLE), count(4)), T + 8)
    assert seqs(filled) == [3, 4, 6]
    assert not any(a.uncertain or a.late for a in filled.apply)
    assert s.ack_ranges(E1) == [(1, 8)]


def test_hold_is_bounded_in_time_then_released_uncertain_and_the_gap_still_filled_later() -> None:
    s = born(GatewaySequencer("gw", hold_max_age=30))
    s.on_batch(batch(state(1)), T)
    s.on_batch(batch(state(3, MachineState.FAULT)), T + 1)
    d = s.tick(T + 31)
    assert [(a.event.seq, a.uncertain) for a in d.apply] == [(3, True)]
    assert s.missing(E1) == [(2, 2)]  # still open, still asked for
    late = s.on_batch(batch(state(2, MachineState.IDLE)), T + 40)
    assert [(a.event.seq, a.late) for a in late.apply] == [(2, True)]
    assert s.missing(E1) == []


def test_hold_is_bounded_in_count() -> None:
    s = born(GatewaySequencer("gw", hold_max_events=3))
    s.on_batch(batch(state(1)), T)
    d = s.on_batch(batch(state(3), state(4), state(5), state(6)), T)
    assert seqs(d) == [3, 4, 5, 6] and all(a.uncertain for a in d.apply)


def test_dropped_ranges_become_gaps_and_are_settled() -> None:
    s = born(GatewaySequencer("gw"))
    s.on_batch(batch(state(1)), T)
    held = s.on_batch(batch(state(10)), T)
    assert seqs(held) == []
    dropped = DroppedRange(epoch=E1, first=2, last=9, count=8, start_ts=T, end_ts=T + 9)
    d = s.on_health(E1, 10, 10, [dropped], T + 1)
    assert [(g.first, g.last, g.reason, g.count) for g in d.gaps] == [(2, 9, "buffer_full", 8)]
    assert seqs(d) == [10]  # the gap is settled, the held state follows
    assert s.ack_ranges(E1) == [(1, 10)]  # the dropped range too: the gateway forgets it when acked
    assert s.on_health(E1, 10, 10, [dropped], T + 2).gaps == []  # reported once


def test_a_dropped_range_the_gateway_extends_is_counted_once() -> None:
    # the gateway keeps dropping while the broker is away: its last range grows from 2..9 to 2..30
    s = born(GatewaySequencer("gw"))
    s.on_batch(batch(state(1)), T)
    first = DroppedRange(epoch=E1, first=2, last=9, count=8, start_ts=T, end_ts=T + 9)
    grown = DroppedRange(epoch=E1, first=2, last=30, count=25, start_ts=T, end_ts=T + 30)  # 4 absorbed seqs
    assert [(g.first, g.last, g.count) for g in s.on_health(E1, 10, 31, [first], T + 1).gaps] == [(2, 9, 8)]
    d = s.on_health(E1, 31, 31, [grown], T + 2)
    assert [(g.first, g.last, g.count, g.start_ts, g.end_ts) for g in d.gaps] == [(10, 30, 17, None, T + 30)]
    assert s.on_health(E1, 31, 31, [grown], T + 3).gaps == []
    # a consumer that restarted knows the settled seqs but not the earlier count: at most the missing seqs
    fresh = born(GatewaySequencer("gw"))
    fresh.on_batch(batch(state(1)), T)
    fresh.epochs[E1].settled.add(2, 9)
    assert [(g.first, g.last, g.count) for g in fresh.on_health(E1, 31, 31, [grown], T + 4).gaps] == [(10, 30, 21)]


def test_absorbed_seqs_are_settled_with_the_merged_event() -> None:
    s = born(GatewaySequencer("gw"))
    d = s.on_batch(batch(count(1, good=6, absorbed=[2, 3]), state(4)), T)
    assert seqs(d) == [1, 4] and not d.replays
    assert s.ack_ranges(E1) == [(1, 4)]


def test_new_epoch_closes_the_old_one_after_its_queued_events_had_time() -> None:
    s = GatewaySequencer("gw", hold_max_age=30)
    s.on_status(Status(edge_id="gw", online=True, birth=1, ts=T, epoch=E1, oldest_seq=1, latest_seq=5), T)
    s.on_batch(batch(state(1), count(2), count(3)), T)
    # the outbox was deleted: a new epoch starts at seq 1
    d = s.on_status(Status(edge_id="gw", online=True, birth=2, ts=T, epoch=E2, oldest_seq=None,
                           latest_seq=None), T + 1)
    assert d.gaps == [] and s.current == E2
    new = s.on_batch(batch(state(1), count(2), epoch=E2), T + 2)
    assert seqs(new) == [1, 2] and new.duplicates == 0  # nothing discarded as a duplicate
    old_late = s.on_batch(batch(count(4), epoch=E1), T + 3)
    assert seqs(old_late) == [4]  # still on its way from the broker: applied
    closed = s.tick(T + 40)
    assert [(g.epoch, g.first, g.last, g.reason) for g in closed.gaps] == [(E1, 5, 5, "epoch_replaced")]


def test_a_consumer_without_history_starts_at_the_gateways_oldest_held_seq() -> None:
    s = GatewaySequencer("gw")
    d = s.on_status(Status(edge_id="gw", online=True, birth=3, ts=T, epoch=E1, oldest_seq=500,
                           latest_seq=510), T)
    assert d.gaps == [] and d.replays == []
    d = s.on_batch(batch(state(500), count(501)), T)
    assert seqs(d) == [500, 501] and not d.replays


def test_unconfirmed_seqs_the_gateway_no_longer_holds_are_recorded_unavailable() -> None:
    s = born(GatewaySequencer("gw"))
    s.on_batch(batch(state(1)), T)
    s.on_batch(batch(state(5)), T)
    d = s.on_health(E1, 5, 5, [], T + 1)
    assert [(g.first, g.last, g.reason) for g in d.gaps] == [(2, 4, "unavailable")]
    assert seqs(d) == [5]


def test_restore_continues_exactly() -> None:
    s = GatewaySequencer("gw")
    s.restore(E1, RangeSet([(1, 100)]), current=True)
    d = s.on_batch(batch(count(99), count(100), state(101)), T)
    assert seqs(d) == [101] and d.duplicates == 2


def test_replays_are_bounded() -> None:
    s = born(GatewaySequencer("gw", replay_retry=5))
    s.on_batch(batch(state(1)), T)
    d = s.on_batch(batch(state(25_002)), T)
    assert [(r.first, r.last) for r in d.replays] == [(2, 10_001)]  # one request per range, the rest later
    assert s.on_batch(batch(count(2), count(3)), T + 1).replays == []  # the answer is on its way
    assert [(r.first, r.last) for r in s.tick(T + 6).replays] == [(4, 10_003)]  # asked again past the retry


def test_a_seq_far_beyond_is_one_missing_range_not_a_walk() -> None:
    """Issue 10: a seq of 2**53 must cost what a seq of 10 costs (no loop over the range)."""
    s = born(GatewaySequencer("gw"))
    s.on_batch(batch(state(1)), T)
    d = s.on_batch(batch(count(2**53)), T)
    assert [(r.first, r.last) for r in d.replays] == [(2, 10_001)]
    assert s.missing(E1) == [(2, 2**53 - 1)]
    for i in range(100):
        assert len(s.tick(T + 10 * i).replays) <= 1
    # the gateway says it holds nothing and assigned up to 1: the stray seq does not make 2.. unavailable
    assert s.on_health(E1, None, 1, [], T + 2000).gaps == []
    assert seqs(s.on_batch(batch(count(2), state(3)), T + 2001)) == [2, 3]


def test_an_epoch_never_announced_changes_nothing() -> None:
    """Issue 10: events or health of a random epoch never retire the gateway's real epoch."""
    s = born(GatewaySequencer("gw"))
    s.on_batch(batch(state(1), count(2)), T)
    stray = s.on_batch(batch(state(1), count(2), epoch=E2), T + 1)
    assert stray.unannounced and seqs(stray) == [] and s.current == E1
    assert s.on_health(E2, 1, 2, [], T + 2).unannounced and s.current == E1
    assert s.tick(T + 100).gaps == []  # nothing was declared replaced
    d = s.on_status(Status(edge_id="gw", online=True, birth=2, ts=T, epoch=E2), T + 3)
    assert not d.unannounced and s.current == E2  # the gateway's own birth does it


def test_refused_seqs_are_settled_once_as_rejected() -> None:
    s = born(GatewaySequencer("gw"))
    d = s.on_batch(batch(state(1), state(3)), T, rejected=[2])
    assert seqs(d) == [1, 3]  # the state after the refused seq is not held behind it
    assert [(g.first, g.last, g.reason) for g in d.gaps] == [(2, 2, "rejected")]
    again = s.on_batch(batch(state(1), state(3)), T + 1, rejected=[2])
    assert again.gaps == [] and again.duplicates == 3
    assert s.ack_ranges(E1) == [(1, 3)]


def test_a_late_fill_of_several_states_never_becomes_the_current_state() -> None:
    s = born(GatewaySequencer("gw", hold_max_age=30))
    s.on_batch(batch(state(1)), T)
    s.on_batch(batch(state(6, MachineState.FAULT)), T + 1)
    released = s.tick(T + 31)  # 2..5 missing: the fault is applied, uncertain
    assert [(a.event.seq, a.uncertain) for a in released.apply] == [(6, True)]
    late = s.on_batch(batch(state(2, MachineState.IDLE), state(3, MachineState.SETUP), count(4), count(5)), T + 40)
    assert [(a.event.seq, a.late) for a in late.apply if isinstance(a.event, StateEvent)] == [(2, True), (3, True)]
    assert s.missing(E1) == []


def test_missing_cuts_held_seqs_out_of_the_gaps() -> None:
    s = born(GatewaySequencer("gw"))
    s.on_batch(batch(state(1)), T)
    s.on_batch(batch(state(4), state(7), state(8), count(12)), T)
    assert s.missing(E1) == [(2, 3), (5, 6), (9, 11)]
