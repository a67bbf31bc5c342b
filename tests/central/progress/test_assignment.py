"""Which operation runs when: job numbers, scans, completion, and counts attributed by their event time."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from central.progress.assignment import (
    Assignment,
    Book,
    Completed,
    EndCause,
    Ended,
    StartCause,
    Started,
    UnmatchedJob,
    apply_facts,
    assign,
    attribute,
    complete,
    finish,
    observe_job,
    reassign,
    release,
    running_at,
    statuses,
)
from central.progress.changes import set_status
from central.progress.counts import CountRecord
from central.progress.orders import OpStatus
from tests.central.progress.orderkit import order_in, plan_of

DUE = 1_000_000.0
A, B, C = ("A", 10), ("B", 10), ("C", 10)


def plan3():  # type: ignore[no-untyped-def]
    return plan_of(
        order_in("A", DUE, {"machine": "m1", "cycle": 10, "job": "1001"}),
        order_in("B", DUE, {"machine": "m1", "cycle": 10, "job": "1002"}),
        order_in("C", DUE, {"machine": "m1", "cycle": 10}),  # no job number: started by API, scan or completion
    )


def count(at: float, good: int = 1, scrap: int = 0, machine: str = "m1", job: str | None = None,
          job_from: str | None = None) -> CountRecord:
    return CountRecord(machine, at - 20, at, good, scrap, job, job_from=job_from)


def test_a_job_number_starts_the_first_queued_operation_with_it() -> None:
    plan = plan3()
    step = observe_job({}, plan, "m1", "1002", 100.0)
    assert step.facts == (Started("m1", B, 100.0, StartCause.JOB),)
    assert step.book["m1"] == (Assignment("m1", B, 100.0, None, StartCause.JOB),)
    again = observe_job(step.book, plan, "m1", "1002", 150.0)  # the same job again: nothing changes
    assert again.book is step.book and again.facts == ()
    nxt = observe_job(step.book, plan, "m1", "1001", 200.0)
    assert nxt.facts == (Ended("m1", B, 200.0, EndCause.NEXT), Started("m1", A, 200.0, StartCause.JOB))
    assert [(a.key, a.start, a.end) for a in nxt.book["m1"]] == [(B, 100.0, 200.0), (A, 200.0, None)]
    assert nxt.changed_from == {"m1": 200.0}


def test_an_unmatched_job_leaves_the_current_operation_running_and_is_shown() -> None:
    plan = plan3()
    book = observe_job({}, plan, "m1", "1001", 100.0).book
    step = observe_job(book, plan, "m1", "9999", 150.0)
    assert step.book is book
    assert step.facts == (UnmatchedJob("m1", "9999", 150.0),)
    assert observe_job(book, plan, "m1", None, 150.0).facts == ()


def test_a_work_centre_operation_matches_and_runs_on_two_machines_counts_add_up() -> None:
    plan = plan_of(order_in("W", DUE, {"work_centre": "milling", "cycle": 10, "job": "77"}))
    book = observe_job({}, plan, "m1", "77", 100.0, work_centre="milling").book
    book = observe_job(book, plan, "m2", "77", 130.0, work_centre="milling").book
    assert running_at(book["m1"], 140.0) is not None and running_at(book["m2"], 140.0) is not None
    result = attribute(book, [count(120, 2, machine="m1"), count(140, 3, 1, machine="m2"), count(125, 5, machine="m2")])
    assert result.per_op[("W", 10)].good == 5 and result.per_op[("W", 10)].scrap == 1
    assert [r.good for r in result.unassigned] == [5]  # m2 at 125: before it started the operation


def test_late_counts_go_to_the_operation_running_at_their_time_not_now() -> None:
    """A gateway's backlog arrives after the machine changed jobs: each count goes where it was made."""
    plan = plan3()
    book = observe_job({}, plan, "m1", "1001", 1000.0).book
    book = observe_job(book, plan, "m1", "1002", 5000.0).book  # now B runs
    backlog = [count(1020, 3), count(4980, 2), count(5000, 1, job="1002", job_from="1001"), count(5100, 4)]
    result = attribute(book, backlog)
    assert result.per_op[A].good == 5  # made before 5000, applied after: still A's
    assert result.per_op[B].good == 5 and result.per_op[B].spanning == 1
    assert result.unassigned == []
    early = attribute(book, [count(500, 7)])  # before anything was started: kept, unassigned
    assert early.unassigned == [count(500, 7)] and early.per_op == {}


def test_the_old_jobs_last_parts_at_the_change_instant_stay_with_the_old_operation() -> None:
    """The read that sees a job change: the gateway sends the old job's parts of that read (split off by a
    per-job counter) stamped with the change's time, naming the old job; they were booked to the new
    job's operation, which starts at that same instant."""
    plan = plan3()
    book = observe_job({}, plan, "m1", "1001", 1000.0).book
    book = observe_job(book, plan, "m1", "1002", 5000.0).book
    result = attribute(book, [count(5000, 2, 1, job="1001"), count(5000, 3, job="1002"), count(5000, 4)], plan)
    assert (result.per_op[A].good, result.per_op[A].scrap) == (2, 1)
    assert result.per_op[B].good == 7  # its own job, and a count naming no job: the instant is the new one's
    finished = finish(book, B, 6000.0).book  # an explicit finish: its last parts at that instant are still its
    assert attribute(finished, [count(6000, 1, job="1002")], plan).per_op[B].good == 1
    assert attribute(finished, [count(6000, 1, job="1002")]).unassigned != []  # without the plan: unassigned


def test_events_in_any_order_build_the_same_timeline() -> None:
    plan = plan3()
    in_order = observe_job(observe_job({}, plan, "m1", "1001", 100.0).book, plan, "m1", "1002", 200.0).book
    late = observe_job(observe_job({}, plan, "m1", "1002", 200.0).book, plan, "m1", "1001", 100.0).book
    assert in_order == late


def test_scan_start_pause_finish_and_completion_with_auto_next() -> None:
    plan = plan3()
    step = assign({}, "m1", A, 100.0, StartCause.SCAN)
    paused = release(step.book, "m1", 150.0, EndCause.PAUSE)
    assert paused.facts == (Ended("m1", A, 150.0, EndCause.PAUSE),)
    assert attribute(paused.book, [count(160)]).unassigned  # paused: nothing runs
    assert statuses(plan, paused.book, paused.facts) == {A: OpStatus.PAUSED}
    resumed = assign(paused.book, "m1", A, 170.0, StartCause.SCAN)
    done = complete(resumed.book, plan, A, 300.0, good=10, planned=10, auto_next={"m1": True})
    # the next queued operation without a job number (B has one: it waits for its job report) starts
    assert done.facts == (Completed(A, 300.0, 10, 10), Ended("m1", A, 300.0, EndCause.NEXT),
                          Started("m1", C, 300.0, StartCause.PREVIOUS_COMPLETED))
    new = statuses(plan, done.book, done.facts)
    assert new == {A: OpStatus.DONE, C: OpStatus.RUNNING}
    after = apply_facts(plan, done.book, done.facts)
    assert after.operations[A].status is OpStatus.DONE and after.dispatch["m1"] == (B, C)
    stay = complete(resumed.book, plan, A, 300.0, good=12, planned=10)
    assert stay.facts == (Completed(A, 300.0, 12, 10),) and stay.facts[0].over == 2  # type: ignore[union-attr]
    assert attribute(stay.book, [count(400, 3)]).per_op[A].good == 3  # still running: over-production is A's
    ended = finish(stay.book, A, 500.0)
    assert ended.facts == (Ended("m1", A, 500.0, EndCause.FINISH),)
    assert statuses(set_status(plan, A, OpStatus.RUNNING), ended.book, ended.facts) == {A: OpStatus.DONE}


def test_counts_before_their_order_existed_can_be_reassigned_with_an_audit() -> None:
    plan = plan3()
    book = observe_job({}, plan, "m1", "1002", 1000.0).book
    step, audit = reassign(book, "m1", A, 100.0, 400.0, by="planner", now=2000.0)
    assert [(a.key, a.start, a.end) for a in step.book["m1"]] == [(A, 100.0, 400.0), (B, 1000.0, None)]
    assert attribute(step.book, [count(300, 4)]).per_op[A].good == 4
    assert (audit.by, audit.action, audit.order_id, audit.seq) == ("planner", "reassign", "A", 10)


segments = st.lists(st.tuples(st.sampled_from(["1001", "1002", "9999"]), st.floats(0, 10_000)), max_size=8)
counts = st.lists(st.tuples(st.floats(0, 12_000), st.integers(0, 50), st.integers(0, 5)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(segments, counts)
def test_attribution_conserves_parts(jobs: list[tuple[str, float]], parts: list[tuple[float, int, int]]) -> None:
    """Assigned + unassigned = all parts, whatever the job changes and counts (and their order)."""
    plan = plan3()
    book: Book = {}
    for job, at in jobs:
        book = observe_job(book, plan, "m1", job, at).book
    timeline = book.get("m1", ())
    assert all(a.end is None or a.start < a.end for a in timeline)
    assert all(x.end == y.start for x, y in itertools.pairwise(timeline))
    records = [count(at, good, scrap) for at, good, scrap in parts]
    result = attribute(book, records)
    assigned = sum(t.good + t.scrap for t in result.per_op.values())
    unassigned = sum(r.good + r.scrap for r in result.unassigned)
    assert assigned + unassigned == sum(g + s for _, g, s in parts)
