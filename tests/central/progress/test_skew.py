"""The clock-skew estimate (central/progress/skew.py): least-delayed samples win, backlogged ones never count."""

from __future__ import annotations

import pytest

from central.progress.skew import SkewEstimator

T = 1_800_000_000.0


def feed(est: SkewEstimator, messages: list[tuple[float, float]]) -> list[float]:
    return [est.sample(ts, at) for ts, at in messages]


def test_live_messages_give_the_largest_recent_sample() -> None:
    est = SkewEstimator(window=5)
    # the gateway runs 3 s ahead; deliveries take 10-40 ms
    delays = [0.04, 0.01, 0.03, 0.02, 0.04, 0.03]
    out = feed(est, [(T + 10 * i + 3.0, T + 10 * i + d) for i, d in enumerate(delays)])
    assert out[0] is None  # a new gateway: no estimate until a sample is judged (it may have waited)
    assert out[-1] == pytest.approx(3.0 - 0.01, abs=1e-5)  # the least-delayed sample of the window


def test_a_backlog_after_a_central_restart_does_not_move_the_estimate() -> None:
    """Defect D: ten health messages queued while central was away arrive in one burst."""
    est = SkewEstimator(window=5, estimate=0.0)  # restored from the store
    restart = T + 100.0
    burst = [(T + 10 * i, restart + 0.001 * i) for i in range(10)]  # sent every 10 s, received at once
    assert feed(est, burst) == [0.0] * 10  # the old median would have said -50 s, then -10 s
    live = [(restart + 10 * i, restart + 10 * i + 0.01) for i in range(1, 4)]
    out = feed(est, live)
    assert out[0] == 0.0  # the last of the burst had waited: left out
    assert out[1:] == pytest.approx([-0.01, -0.01], abs=1e-5)


def test_a_burst_is_recognised_whatever_the_health_interval() -> None:
    est = SkewEstimator(window=5, estimate=0.0)
    burst = [(T + i, T + 20 + 0.001 * i) for i in range(10)]  # one health message a second, queued 20 s
    assert feed(est, burst) == [0.0] * 10


def test_a_lone_queued_sample_is_never_taken_for_the_skew() -> None:
    """A gateway whose first health messages central sees are queued ones (central restarted before it
    judged any): none of them may stand in for the skew, or the backlog's events move by their wait."""
    est = SkewEstimator(window=5)
    restart = T + 100.0
    out = feed(est, [(T + 80, restart), (T + 90, restart + 0.002)])  # waited 20 s and 10 s
    assert out == [None, None]
    out = feed(est, [(restart + 10, restart + 10.01), (restart + 20, restart + 20.02)])
    assert out[0] is None and out[1] == pytest.approx(-0.01, abs=1e-5)  # the first live sample judged


def test_a_clock_stepped_forward_is_followed_one_message_later() -> None:
    est = SkewEstimator(window=5)
    feed(est, [(T + 10 * i, T + 10 * i) for i in range(6)])
    out = feed(est, [(T + 10 * i + 30, T + 10 * i) for i in range(6, 9)])
    assert out == [0.0, 30.0, 30.0]  # the message before the step looks like it waited: left out


def test_a_clock_stepped_back_is_followed_once_the_window_forgets() -> None:
    est = SkewEstimator(window=3)
    feed(est, [(T + 10 * i, T + 10 * i) for i in range(5)])
    out = feed(est, [(T + 10 * i - 30, T + 10 * i) for i in range(5, 11)])
    assert out[0] == 0.0
    assert out[-1] == -30.0  # residual: window x interval seconds late, documented
