"""The pure coalesce and drop rules (no database)."""

from __future__ import annotations

from edge.buffer.bounds import MAX_ABSORBED, Bounds, Coalescer, DropPlanner, DropRow, Run
from plantpulse.protocol.models import CountEvent
from tests.edge.buffer.helpers import T0, count


def seqd(event: CountEvent, seq: int, absorbed: list[int] | None = None) -> CountEvent:
    return event.model_copy(update={"seq": seq, "absorbed": absorbed or []})


def merged(*events: CountEvent) -> CountEvent:
    run = Run.of(events[0], 100)
    for e in events[1:]:
        assert run.accepts(e)
        run.add(e)
    return run.event()


def test_merge_sums_parts_keeps_the_interval_ors_flags_and_lists_absorbed_seqs() -> None:
    a = seqd(count("m", 1, 3, scrap=1), 10, [12])
    b = seqd(count("m", 5, 2, reset=True, possibly_lost=True), 14, [15, 17])
    assert merged(a, b) == CountEvent(
        seq=10, machine_id="m", start=T0, ts=T0 + 5, good=5, scrap=1, job="J1", reset=True, possibly_lost=True,
        rebased=False, absorbed=[12, 14, 15, 17],
    )
    assert merged(a, b, seqd(count("m", 6, 1, rebased=True), 20)).rebased
    assert merged(seqd(count("m", 1), 1), seqd(count("m", 2), 3), seqd(count("m", 3), 2)).absorbed == [2, 3]


def test_only_the_same_machine_and_job_and_later_seqs_merge_and_absorbed_lists_stay_bounded() -> None:
    run = Run.of(seqd(count("m", 1), 5), 100)
    assert run.accepts(seqd(count("m", 2), 6))
    assert not run.accepts(seqd(count("m", 2, job="J2"), 6))
    assert not run.accepts(seqd(count("other", 2), 6))
    assert not run.accepts(seqd(count("m", 2), 4))
    full = Run.of(seqd(count("m", 1), 1, list(range(2, MAX_ABSORBED + 1))), 100)
    assert len(full.absorbed) == MAX_ABSORBED - 1
    assert full.accepts(seqd(count("m", 2), 10_000))
    assert not full.accepts(seqd(count("m", 2), 10_000, [10_001]))


def test_counts_spanning_a_job_change_merge_only_with_counts_spanning_the_same_change() -> None:
    spanning = seqd(count("m", 2, job="J2").model_copy(update={"job_from": "J1"}), 6)
    assert not Run.of(seqd(count("m", 1, job="J2"), 5), 100).accepts(spanning)  # plain J2 parts stay exact
    run = Run.of(spanning, 100)
    assert not run.accepts(seqd(count("m", 3, job="J2"), 7))
    also = seqd(count("m", 3, job="J2").model_copy(update={"job_from": "J1"}), 7)
    assert run.accepts(also)
    run.add(also)
    assert (run.event().job, run.event().job_from, run.event().good) == ("J2", "J1", 2)


def test_coalescer_merges_runs_per_machine_and_a_state_event_ends_a_run() -> None:
    co = Coalescer()
    assert co.count(seqd(count("a", 1), 1), 100) is None  # starts a run
    assert co.count(seqd(count("b", 1), 2), 100) is None  # another machine: its own run
    run = co.count(seqd(count("a", 2), 3), 100)
    assert run is not None and run.seq == 1 and run.absorbed == [3]
    co.state("a")
    assert co.count(seqd(count("a", 3), 4), 100) is None  # after the state event: a new run
    run = co.count(seqd(count("b", 3), 5), 100)
    assert run is not None and run.seq == 2 and run.event().absorbed == [5]


def test_a_copied_coalescer_is_independent_so_a_rolled_back_pass_leaves_no_trace() -> None:
    co = Coalescer()
    co.count(seqd(count("a", 1), 1), 100)
    attempt = co.copy()
    attempt.count(seqd(count("a", 2), 2), 100)
    assert attempt.heads["a"].absorbed == [2] and co.heads["a"].absorbed == [] and co.heads["a"].good == 1


def test_coalescer_forgets_heads_that_were_handed_out() -> None:
    co = Coalescer()
    co.count(seqd(count("a", 1), 1), 100)
    co.count(seqd(count("b", 1), 5), 100)
    co.forget_upto(4)
    assert set(co.heads) == {"b"}
    assert co.count(seqd(count("a", 2), 6), 100) is None


def test_excess_is_measured_to_the_low_water_mark() -> None:
    b = Bounds(max_events=100, max_bytes=10_000)
    assert not b.over(100, 10_000) and b.over(101, 0) and b.over(0, 10_001)
    assert b.excess(101, 5_000) == (11, 0)
    assert b.excess(50, 10_500) == (0, 1_500)


def row(seq: int, cover: int | None = None, size: int = 10) -> DropRow:
    return DropRow(seq=seq, start=T0 + seq - 0.5, ts=T0 + seq, cover=cover or seq, size=size)


def test_drop_planner_drops_the_oldest_until_both_excesses_are_met() -> None:
    p = DropPlanner(excess_events=2, excess_bytes=35)
    taken = [r.seq for r in map(row, [3, 4, 7, 8, 9]) if p.wants(r)]
    assert taken == [3, 4, 7, 8]  # two events would do, 35 bytes need four rows of 10
    plan = p.plan()
    assert plan is not None
    assert (plan.first, plan.last, plan.count, plan.nbytes) == (3, 8, 4, 40)
    assert (plan.start_ts, plan.end_ts) == (T0 + 2.5, T0 + 8)


def test_drop_planner_extends_the_range_over_seqs_a_dropped_merged_event_absorbed() -> None:
    p = DropPlanner(excess_events=1, excess_bytes=0)
    # seq 1 absorbed seqs up to 6; rows 2 and 5 (other machines) lie inside and must go too
    taken = [r.seq for r in [row(1, cover=6), row(2), row(5), row(7), row(8)] if p.wants(r)]
    assert taken == [1, 2, 5]
    plan = p.plan()
    assert plan is not None and (plan.first, plan.last, plan.count) == (1, 6, 3)


def test_nothing_to_drop_gives_no_plan() -> None:
    assert DropPlanner(0, 0).plan() is None
    p = DropPlanner(0, 0)
    assert not p.wants(row(1))
    assert p.plan() is None
