"""The chaos run's checks on hand-made runs: each rule passes what it must and catches what it must."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.chaos.checks import (
    AlertRow,
    CountRow,
    MachineRun,
    Part,
    Span,
    check_machine,
    check_seqs,
    observed,
    overlap,
    subtract,
)

T = 1_000.0


def parts(times: list[float], job: str = "7", scrap: tuple[float, ...] = ()) -> list[Part]:
    return [Part(T + t, t not in scrap, job) for t in times]


def row(seq: int, start: float, at: float, good: int, scrap: int = 0, job: str = "7", **flags: object) -> CountRow:
    return CountRow("gw", "e1", seq, T + start, T + at, good, scrap, job, **flags)  # type: ignore[arg-type]


def run(**changes: object) -> MachineRun:
    base = MachineRun(
        machine_id="m", window=(T, T + 20), parts=parts([1, 2, 3, 4, 5], scrap=(3,)),
        truth=[Span(T - 5, T + 20, "running")], unreachable=[], counts=[row(1, 0, 2.1, 2), row(2, 2.1, 5.1, 2, 1)],
        central=[Span(T - 5, None, "running")], alerts=[], poll=0.2, poll_p99=0.01,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_interval_arithmetic() -> None:
    assert subtract([(0, 10)], [(2, 3), (5, 12)]) == [(0, 2), (3, 5)]
    assert subtract([(0, 10)], [(-1, 11)]) == []
    assert overlap((1, 4), [(0, 2), (3, 10)]) == 2
    r = run(unreachable=[(T + 2, T + 4)], central=[Span(T - 5, T + 6, "running"), Span(T + 6, T + 8, "offline"),
                                                  Span(T + 8, None, "running")])
    assert observed(r) == [(T, T + 2), (T + 4, T + 6), (T + 8, T + 20)]


def test_exact_totals_pass_and_one_part_too_many_without_a_flag_fails() -> None:
    assert check_machine(run()).ok
    verdict = check_machine(run(counts=[row(1, 0, 2.1, 2), row(2, 2.1, 5.1, 3, 1)]))
    assert verdict.failures == ["good: counted 5, truth 4 (+1); flagged events explain at most -0/+0",
                                "good: count gw#2 [1002.10, 1005.10] has 1 of its 3 parts nowhere in the truth",
                                "job 7 good: booked 5, truth 4 (+1); flagged events naming it explain at most -0/+0"]


def test_parts_lost_inside_a_flagged_window_are_allowed_and_listed_beyond_it_they_fail() -> None:
    # a power cycle between 2.1 and 5.1: the PLC only showed 1 of the 3 parts made there
    lost = run(counts=[row(1, 0, 2.1, 2), row(2, 2.1, 5.1, 1, 0, possibly_lost=True, reset=True)])
    verdict = check_machine(lost)
    assert verdict.ok, verdict.failures
    assert verdict.truth == (4, 1) and verdict.counted == (3, 0)
    # its window, widened by one poll and its p99 on each side (times are read times), holds 3 + 1 parts
    assert [f.row.seq for f in verdict.flagged] == [2] and verdict.flagged[0].truth_good == 3
    assert "possibly_lost" in verdict.flagged[0].describe()
    # the same loss, but the flagged window holds no part: nothing explains it
    wrong = run(counts=[row(1, 0, 5.1, 3), row(2, 6, 7, 0, 0, possibly_lost=True)])
    assert any(f.startswith("good: counted 3, truth 4") for f in check_machine(wrong).failures)


def test_a_span_over_a_job_change_is_booked_to_neither_job_and_explains_both() -> None:
    made = parts([1, 2], job="7") + parts([3.5, 4.5], job="8")
    counts = [row(1, 0, 2.5, 2), row(2, 2.5, 4.0, 1, job="8", job_from="7"), row(3, 4.0, 5.0, 1, job="8")]
    verdict = check_machine(run(parts=made, counts=counts))
    assert verdict.ok, verdict.failures
    assert verdict.jobs_off == ["8: booked 1+0, truth 2+0 (flagged)"]
    # a part of job 8 booked to job 7 without any flag is a failure
    silent = [row(1, 0, 3.6, 3), row(2, 3.6, 5.0, 1, job="8")]
    failures = check_machine(run(parts=made, counts=silent)).failures
    assert failures == ["job 7 good: booked 3, truth 2 (+1); flagged events naming it explain at most -0/+0",
                        "job 8 good: booked 1, truth 2 (-1); flagged events naming it explain at most -0/+0"]


def test_downtime_within_a_poll_per_transition_outside_offline_and_unreachable_time() -> None:
    truth = [Span(T - 5, T + 10, "running"), Span(T + 10, T + 12, "fault", 101), Span(T + 12, None, "running")]
    central = [Span(T - 5, T + 10.15, "running"), Span(T + 10.15, T + 12.1, "fault", 101),
               Span(T + 12.1, T + 14, "running"), Span(T + 14, T + 16, "offline"), Span(T + 16, None, "running")]
    alert = [AlertRow("a1", T + 10.15, "101")]
    good = run(truth=truth, central=central, alerts=alert, counts=[row(1, 0, 5.1, 4, 1)])
    verdict = check_machine(good)
    assert verdict.ok, verdict.failures
    assert verdict.downtime["fault"][1] == pytest.approx(1.95) and verdict.worst_transition == pytest.approx(0.15)
    late = [Span(T - 5, T + 10.6, "running"), Span(T + 10.6, T + 12, "fault", 101), Span(T + 12, None, "running")]
    failures = check_machine(replace(good, central=late)).failures
    assert failures[0].startswith("running: central 18.60 s, truth 18.00 s") and len(failures) == 2


def test_every_observable_fault_has_exactly_one_alert_and_no_alert_lacks_a_fault() -> None:
    truth = [Span(T - 5, T + 4, "running"), Span(T + 4, T + 6, "fault", 205), Span(T + 6, T + 10, "running"),
             Span(T + 10, T + 12, "fault", 101), Span(T + 12, None, "running")]
    central = [Span(T - 5, T + 4.1, "running"), Span(T + 4.1, T + 6.1, "fault", 205),
               Span(T + 6.1, T + 9, "running"), Span(T + 9, T + 13, "offline"), Span(T + 13, None, "running")]
    counts = [row(1, 0, 5.1, 4, 1)]
    # the second fault was never observable (offline the whole time): no alert needed
    one = run(truth=truth, central=central, counts=counts, alerts=[AlertRow("a", T + 4.1, "205")])
    verdict = check_machine(one)
    assert verdict.ok, verdict.failures
    assert (verdict.faults, verdict.observable_faults, verdict.alerts) == (2, 1, 1)
    twice = replace(one, alerts=[AlertRow("a", T + 4.1, "205"), AlertRow("b", T + 4.1, "205")])
    assert check_machine(twice).failures == ["fault 205 at 1004.00-1006.00 (observed 2.00 s): 2 alerts"]
    none = replace(one, alerts=[])
    assert check_machine(none).failures == ["fault 205 at 1004.00-1006.00 (observed 2.00 s): 0 alerts"]
    stray = replace(one, alerts=[AlertRow("a", T + 4.1, "205"), AlertRow("z", T + 15, "205")])
    assert check_machine(stray).failures == ["alert z (since 1015.0, episode 205) matches no fault"]


def test_a_seq_applied_twice_and_a_data_gap_fail() -> None:
    assert check_seqs([("gw", "e1", 1), ("gw", "e1", 2), ("gw", "e2", 1)]) == []
    assert check_seqs([("gw", "e1", 1), ("gw", "e1", 1)]) == ["gw/e1 seq 1 applied 2 times"]
    assert check_seqs([], ["gw e1 5-9 unavailable"]) == ["data gap: gw e1 5-9 unavailable"]


def test_a_job_that_came_and_went_inside_a_span_is_explained_by_the_span() -> None:
    # job 8 ran between two reads (the PLC unreachable); the span from 7 to 9 holds its parts
    made = parts([1], job="7") + parts([2.5, 3.0], job="8") + parts([4.5], job="9")
    counts = [row(1, 0, 1.5, 1), row(2, 1.5, 4.0, 2, job="9", job_from="7"), row(3, 4.0, 5.0, 1, job="9")]
    verdict = check_machine(run(parts=made, counts=counts))
    assert verdict.ok, verdict.failures
    assert "8: booked 0+0, truth 2+0 (flagged)" in verdict.jobs_off


def test_a_count_of_a_part_never_made_fails_even_when_flags_would_cover_the_totals() -> None:
    # one part lost in a flagged window, one counted that was never made: the totals agree, the counts do not
    counts = [row(1, 0, 2.1, 2), row(2, 2.1, 4.5, 0, 1, possibly_lost=True), row(3, 4.5, 5.1, 1),
              row(4, 6.0, 7.0, 1)]
    verdict = check_machine(run(counts=counts))
    assert verdict.truth == verdict.counted == (4, 1)
    assert verdict.failures == ["good: count gw#4 [1006.00, 1007.00] has 1 of its 1 parts nowhere in the truth"]
