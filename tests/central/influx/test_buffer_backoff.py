"""The bounded retry buffer (oldest dropped first, every drop counted) and the backoff schedule. Pure."""

from __future__ import annotations

import pytest

from central.influx.buffer import PointBuffer
from central.influx.retry import parse_retry_after, retry_delay
from plantpulse.backoff import backoff_delay


def test_past_capacity_the_oldest_waiting_items_are_dropped_and_counted() -> None:
    buffer: PointBuffer[int] = PointBuffer(5)
    dropped = [buffer.add(i) for i in range(8)]
    assert dropped == [False] * 5 + [True] * 3
    assert buffer.dropped == 3 and len(buffer) == 5
    assert buffer.take(10) == [3, 4, 5, 6, 7]


def test_a_failed_batch_goes_back_to_the_front_in_order() -> None:
    buffer: PointBuffer[int] = PointBuffer(10)
    for i in range(6):
        buffer.add(i)
    assert buffer.take(4) == [0, 1, 2, 3]
    buffer.add(6)
    assert (buffer.waiting, buffer.in_flight, len(buffer)) == (3, 4, 7)
    buffer.give_back()
    assert buffer.take(100) == [0, 1, 2, 3, 4, 5, 6]
    assert buffer.done() == 7 and len(buffer) == 0 and buffer.dropped == 0


def test_the_bound_counts_the_batch_in_flight_and_drops_the_oldest_waiting_item() -> None:
    buffer: PointBuffer[int] = PointBuffer(4)
    for i in range(4):
        buffer.add(i)
    assert buffer.take(2) == [0, 1]
    assert buffer.add(4) is True  # 2 in flight + 2 waiting = full: item 2 (oldest waiting) goes
    buffer.give_back()
    assert buffer.take(10) == [0, 1, 3, 4] and buffer.dropped == 1


def test_when_only_the_batch_in_flight_fills_the_buffer_the_new_item_is_the_one_dropped() -> None:
    buffer: PointBuffer[int] = PointBuffer(2)
    buffer.add(0)
    buffer.add(1)
    buffer.take(2)
    assert buffer.add(2) is True
    assert buffer.dropped == 1 and len(buffer) == 2


def test_rejected_batches_and_whatever_is_left_at_the_end_count_as_dropped() -> None:
    buffer: PointBuffer[int] = PointBuffer(10)
    for i in range(5):
        buffer.add(i)
    buffer.take(2)
    assert buffer.reject() == 2
    buffer.take(1)
    assert buffer.discard_all() == 3
    assert buffer.dropped == 5 and len(buffer) == 0


def test_one_batch_in_flight_at_a_time() -> None:
    buffer: PointBuffer[int] = PointBuffer(10)
    buffer.add(1)
    buffer.take(1)
    with pytest.raises(RuntimeError, match="already in flight"):
        buffer.take(1)


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    low = [backoff_delay(n, initial=0.5, cap=30, rnd=lambda: 0.0) for n in range(1, 10)]
    high = [backoff_delay(n, initial=0.5, cap=30, rnd=lambda: 1.0) for n in range(1, 10)]
    assert high == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert low == [h / 2 for h in high]
    assert backoff_delay(0, initial=0.5, cap=30) == 0.0
    assert backoff_delay(100_000, initial=0.5, cap=30, rnd=lambda: 1.0) == 30.0  # no overflow after days down


def test_retry_after_lengthens_the_wait_but_never_past_the_cap() -> None:
    assert retry_delay(1, initial=0.5, cap=30, retry_after=5, rnd=lambda: 1.0) == 5
    assert retry_delay(1, initial=0.5, cap=30, retry_after=120, rnd=lambda: 1.0) == 30
    assert retry_delay(3, initial=0.5, cap=30, retry_after=0.1, rnd=lambda: 1.0) == 2.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
