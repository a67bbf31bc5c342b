"""Good and scrap per machine, job and window from count deltas, computed by hand."""

from __future__ import annotations

import itertools

import pytest

from central.progress.clock import Clamp
from central.progress.counts import CountRecord, Parts, buckets, place_count, summarize, summarize_by_machine
from plantpulse.protocol.models import CountEvent

T = 1_800_000_000.0


def rec(start: float, end: float, good: int, scrap: int = 0, job: str | None = "J1", machine: str = "m1",
        **flags: bool) -> CountRecord:
    return CountRecord(machine, T + start, T + end, good, scrap, job, **flags)  # type: ignore[arg-type]


RECORDS = [
    rec(0, 20, 5),
    rec(20, 40, 4, 1),
    rec(40, 70, 6, 0, job="J2"),  # straddles 60: its end (70) is in the second minute
    rec(70, 90, 3, 2, job="J2", reset=True, possibly_lost=True),
    rec(90, 120, 0, 0, job=None, rebased=True),  # ends exactly at 120: belongs to [120, 180)
    rec(120, 130, 2, 0, job=None),
]


def test_a_count_belongs_to_the_window_that_contains_its_end() -> None:
    first = summarize(RECORDS, T, T + 60, machine_id="m1")
    assert (first.good, first.scrap, first.events) == (9, 1, 2)
    second = summarize(RECORDS, T + 60, T + 120)
    assert (second.good, second.scrap, second.events) == (9, 2, 2)
    third = summarize(RECORDS, T + 120, T + 180)
    assert (third.good, third.scrap, third.events) == (2, 0, 2)


def test_windows_partitioning_time_add_up_to_the_total() -> None:
    whole = summarize(RECORDS, T, T + 180)
    cuts = [0, 25, 60, 69.9, 70, 121, 180]
    parts = [summarize(RECORDS, T + a, T + b) for a, b in itertools.pairwise(cuts)]
    assert sum(p.good for p in parts) == whole.good == 20
    assert sum(p.scrap for p in parts) == whole.scrap == 3


def test_per_job_totals_and_parts_without_a_job() -> None:
    s = summarize(RECORDS, T, T + 180)
    assert s.by_job == {"J1": Parts(9, 1), "J2": Parts(9, 2), None: Parts(2, 0)}
    assert s.by_job["J2"].total == 11


def test_counter_anomalies_are_counted_never_silent() -> None:
    s = summarize(RECORDS, T, T + 180)
    assert (s.resets, s.possibly_lost, s.rebased) == (1, 1, 1)
    assert summarize(RECORDS, T, T + 60).resets == 0


def test_per_machine_summaries() -> None:
    records = [*RECORDS, rec(0, 30, 7, machine="m2"), rec(30, 200, 9, machine="m2")]
    by_machine = summarize_by_machine(records, T, T + 180)
    assert sorted(by_machine) == ["m1", "m2"]
    assert (by_machine["m1"].good, by_machine["m2"].good) == (20, 7)
    assert by_machine["m2"].machine_id == "m2"


def test_buckets_for_a_chart() -> None:
    out = buckets(RECORDS, T, T + 150, 60)
    assert [(b.start - T, b.end - T) for b in out] == [(0, 60), (60, 120), (120, 150)]  # last one shorter
    assert [b.good for b in out] == [9, 9, 2]
    with pytest.raises(ValueError, match="positive"):
        buckets(RECORDS, T, T + 150, 0)


def test_place_count_corrects_skew_and_clamps_the_future() -> None:
    event = CountEvent(machine_id="m1", start=T + 100, ts=T + 130, good=3, scrap=1, job="J9", reset=True)
    placed = place_count(event, received_at=T + 200, skew=50.0)
    assert placed == CountRecord("m1", T + 50, T + 80, 3, 1, "J9", reset=True)
    future = place_count(event, received_at=T + 60, skew=None)  # 70 s in the future of its receipt
    assert (future.start, future.at, future.clamp) == (T + 60, T + 60, Clamp.FUTURE)  # start never after at
    assert summarize([future], T, T + 100).clamped == 1
