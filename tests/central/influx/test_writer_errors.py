"""Token refusals, server errors and rejected data, against a scripted HTTP server of the test's own:
retried (or dropped) and counted, logged once per episode, never raised into the ingest."""

from __future__ import annotations

import logging
import time

import pytest

from central.influx import InfluxConfig, InfluxWriteError, InfluxWriter, StatePoint, backfill
from tests.central.influx.fake_influx import FakeInflux, Reply
from tests.fixtures.waiting import async_wait_until

WAIT = 60.0
BASE = 1_767_225_600.0  # the fake server takes any timestamp


def config(url: str, **overrides: object) -> InfluxConfig:
    settings: dict[str, object] = {
        "url": url, "org": "plant", "bucket": "plantpulse", "batch_size": 5, "flush_interval": 0.05,
        "retry_buffer": 100, "timeout": 5.0, "retry_initial_delay": 0.05, "retry_max_delay": 0.3,
    }
    settings.update(overrides)
    return InfluxConfig.model_validate(settings)


def enqueue(writer: InfluxWriter, count: int, first: int = 0) -> None:
    for i in range(first, first + count):
        writer.state(machine_id="m1", line=None, site=None, ts=BASE + i, state="running", fault_code=None, job=None)


def timestamps(lines: list[str]) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in lines]


def expected(count: int, first: int = 0) -> list[int]:
    return [round((BASE + i) * 1000) for i in range(first, first + count)]


def influx_logs(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "central.influx" and r.levelno == level and text in r.getMessage()]


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_token_is_logged_once_kept_and_retried_until_it_works(
    fake_influx: FakeInflux, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    caplog.set_level(logging.INFO, logger="central.influx")
    monkeypatch.setenv("PLANTPULSE_TEST_INFLUX_TOKEN", "s3cr3t")
    fake_influx.script(default=Reply(status, "unauthorized access"))
    writer = InfluxWriter(config(fake_influx.url, token_env="PLANTPULSE_TEST_INFLUX_TOKEN"))
    await writer.start()
    enqueue(writer, 12)
    await async_wait_until(lambda: writer.stats().failures >= 4, WAIT, what="repeated refusals")
    stats = writer.stats()
    assert stats.unauthorized and stats.written == 0 and stats.queued == 12 and stats.dropped == 0
    assert stats.last_error == f"HTTP {status}: unauthorized access"
    [refusal] = influx_logs(caplog, logging.ERROR, "refuses the token")
    assert "PLANTPULSE_TEST_INFLUX_TOKEN" in refusal.getMessage() and "s3cr3t" not in refusal.getMessage()

    fake_influx.script(default=Reply(204))  # the operator fixed the token's permissions
    await async_wait_until(lambda: writer.stats().written == 12, WAIT, what="points written after the fix")
    await writer.stop()
    stats = writer.stats()
    assert not stats.unauthorized and stats.dropped == 0
    assert timestamps(fake_influx.accepted_lines()) == expected(12)  # each exactly once, in order
    assert len(influx_logs(caplog, logging.ERROR, "refuses the token")) == 1
    assert len(influx_logs(caplog, logging.INFO, "takes writes again")) == 1
    request = fake_influx.requests[0]
    assert request.authorization == "Token s3cr3t" and request.path == "/api/v2/write"
    assert request.query == {"org": ["plant"], "bucket": ["plantpulse"], "precision": ["ms"]}


async def test_server_errors_are_retried_with_backoff_and_counted(
    fake_influx: FakeInflux, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="central.influx")
    fake_influx.script(Reply(500, "internal error"), Reply(503, "busy", retry_after="0.2"), Reply(502), Reply(504))
    writer = InfluxWriter(config(fake_influx.url))
    enqueue(writer, 10)
    await writer.start()
    await async_wait_until(lambda: writer.stats().written == 10, WAIT, what="points written after the errors")
    await writer.stop()
    stats = writer.stats()
    assert (stats.failures, stats.dropped, stats.queued) == (4, 0, 0)
    assert stats.last_error is not None and stats.last_error.startswith("HTTP 504")
    assert [r.status for r in fake_influx.requests] == [500, 503, 502, 504, 204, 204]
    assert timestamps(fake_influx.accepted_lines()) == expected(10)
    assert len(influx_logs(caplog, logging.WARNING, "cannot take writes")) == 1
    assert fake_influx.requests[0].authorization is None  # no token configured: no header


async def test_a_batch_the_server_rejects_as_invalid_is_dropped_counted_and_the_rest_goes_on(
    fake_influx: FakeInflux, caplog: pytest.LogCaptureFixture
) -> None:
    fake_influx.script(Reply(400, "partial write: field type conflict"))
    writer = InfluxWriter(config(fake_influx.url))
    enqueue(writer, 10)  # before start: batches are exactly [0..4] and [5..9]
    await writer.start()
    await async_wait_until(lambda: writer.stats().written == 5, WAIT, what="the second batch written")
    await writer.stop()
    stats = writer.stats()
    assert (stats.rejected, stats.dropped, stats.failures) == (5, 5, 1)
    assert timestamps(fake_influx.accepted_lines()) == expected(5, first=5)
    assert influx_logs(caplog, logging.ERROR, "field type conflict")


async def test_the_ingest_side_never_blocks_or_raises_and_stop_is_bounded_while_influx_fails(
    fake_influx: FakeInflux,
) -> None:
    fake_influx.script(default=Reply(503, "unavailable"))
    writer = InfluxWriter(config(fake_influx.url, retry_buffer=50))
    await writer.start()
    enqueue(writer, 30)
    await async_wait_until(lambda: writer.stats().failures >= 2, WAIT, what="writes failing")
    enqueue(writer, 10_000, first=30)  # far past the bound: plain appends, the oldest dropped and counted
    assert writer.stats().queued == 50 and writer.stats().dropped == 10_030 - 50
    await writer.stop(grace=5.0)
    stats = writer.stats()
    assert (stats.written, stats.queued, stats.dropped) == (0, 0, 10_030)
    enqueue(writer, 1, first=20_000)  # after stop: counted, not raised
    assert writer.stats().dropped == 10_031


async def test_a_hanging_server_times_out_and_stop_gives_up_within_its_grace(fake_influx: FakeInflux) -> None:
    fake_influx.script(default=Reply(204, hold=120))
    writer = InfluxWriter(config(fake_influx.url, timeout=0.5))
    enqueue(writer, 10)
    await writer.start()
    await async_wait_until(lambda: writer.stats().failures >= 1, WAIT, what="a write timing out")
    assert "Timeout" in (writer.stats().last_error or "")
    started = time.monotonic()
    await writer.stop(grace=1.0)
    assert time.monotonic() - started < 30.0  # bounded (grace 1 s + one 0.5 s request), generous under load
    stats = writer.stats()
    assert (stats.written, stats.queued, stats.dropped) == (0, 0, 10)


async def test_a_backfill_that_cannot_write_says_how_far_it_got(fake_influx: FakeInflux) -> None:
    fake_influx.script(Reply(204), default=Reply(500, "disk full"))
    writer = InfluxWriter(config(fake_influx.url))
    states = [StatePoint("m1", None, None, BASE + i, "idle", None, None) for i in range(12)]
    message = r"backfill stopped after 5 points.*3 attempt\(s\): HTTP 500: disk full"
    with pytest.raises(InfluxWriteError, match=message) as info:
        await backfill(writer, states, [], attempts=3)
    assert info.value.written == 5
    assert writer.stats().failures == 3 and writer.stats().written == 5

    fake_influx.script(Reply(400, "bad timestamp"), default=Reply(204))
    with pytest.raises(InfluxWriteError, match=r"after 1 attempt\(s\): HTTP 400: bad timestamp"):
        await backfill(writer, states, [], attempts=3)
    await writer.stop()
