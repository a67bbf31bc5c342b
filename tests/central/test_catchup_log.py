"""Catch-up progress lines (central/ingest/catchup.py): when they come and what they say."""

from __future__ import annotations

from central.ingest.catchup import CatchUpLog


def test_a_backlog_is_announced_reported_with_its_rate_and_closed_once() -> None:
    log = CatchUpLog(threshold=1000, every=10.0)
    assert log.observe("gw1", 10, 500, 0.0) is None  # a few hundred behind: normal traffic
    assert log.observe("gw1", None, 50_000, 0.0) is None  # nothing applied of this epoch yet
    start = log.observe("gw1", 0, 50_000, 1.0)
    assert start == "gateway gw1 catching up: 50,000 events behind (applied 0 of 50,000)"
    assert log.observe("gw1", 10_000, 50_000, 5.0) is None  # not every round: every 10 s
    line = log.observe("gw1", 25_000, 50_000, 11.0)
    assert line == ("gateway gw1 catching up: 25,000 events behind (applied 25,000 of 50,000), "
                    "2,500 events/s, about 10 s left")
    assert log.observe("gw1", 25_000, 50_000, 21.0) == (
        "gateway gw1 catching up: 25,000 events behind (applied 25,000 of 50,000), 0 events/s, "
        "no progress in the last interval")
    assert log.observe("gw1", 50_000, 50_000, 26.0) == "gateway gw1 caught up: 50,000 events in 25 s (2,000 events/s)"
    assert log.observe("gw1", 50_000, 50_000, 40.0) is None  # said once


def test_gateways_are_followed_apart_and_forgotten() -> None:
    log = CatchUpLog(threshold=100, every=1.0)
    assert log.observe("a", 0, 1000, 0.0) is not None
    assert log.observe("b", 0, 50, 0.0) is None
    log.forget("a")
    assert log.observe("a", 1000, 1000, 5.0) is None  # no "caught up" for a gateway handed away
