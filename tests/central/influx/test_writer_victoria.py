"""The real writer into a real VictoriaMetrics (InfluxDB's v2 write API): values, tags, timestamps,
an outage bridged by the retry buffer, drops above its bound, stop flushing, and an idempotent backfill."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from central.influx import CountPoint, InfluxConfig, InfluxWriter, StatePoint, backfill
from tests.fixtures.victoria import VictoriaMetrics
from tests.fixtures.waiting import async_wait_until

WAIT = 60.0  # generous: two shared cores, other engineers' tests running at the same time


def config(url: str, **overrides: object) -> InfluxConfig:
    settings: dict[str, object] = {
        "url": url, "org": "plant", "bucket": "plantpulse", "batch_size": 50, "flush_interval": 0.05,
        "retry_buffer": 1000, "timeout": 5.0, "retry_initial_delay": 0.05, "retry_max_delay": 0.5,
    }
    settings.update(overrides)
    return InfluxConfig.model_validate(settings)


def hour_ago() -> float:
    """A whole second an hour back: recent enough for any retention, exact in milliseconds."""
    return float(int(time.time()) - 3600)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def tags(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


async def test_states_and_counts_arrive_with_their_values_tags_and_timestamps(victoria: VictoriaMetrics) -> None:
    base = hour_ago()
    writer = InfluxWriter(config(victoria.url), clock=lambda: 1234.5)
    await writer.start()
    writer.state(machine_id="cnc-01", line="line-a", site="sz", ts=base + 0.25, state="running", fault_code=None,
                 job="J-1")
    writer.state(machine_id="cnc-01", line="line-a", site="sz", ts=base + 10.5, state="fault", fault_code=101,
                 job="J-1")
    writer.count(machine_id="cnc-01", line="line-a", site="sz", start=base + 0.25, ts=base + 60.0, good=10, scrap=2,
                 job="J-1")
    writer.state(machine_id="inj-01", line=None, site="sz", ts=base + 1.001, state="idle", fault_code=None, job=None)
    await async_wait_until(lambda: writer.stats().written == 4, WAIT, what="4 points written")
    await writer.stop()

    cnc = tags(machine="cnc-01", line="line-a", site="sz", job="J-1")
    inj = tags(machine="inj-01", site="sz")
    assert victoria.samples() == {
        ("machine_state_state_code", cnc): {ms(base + 0.25): 1, ms(base + 10.5): 4},
        ("machine_state_fault_code", cnc): {ms(base + 0.25): 0, ms(base + 10.5): 101},
        ("machine_state_state", cnc): {ms(base + 0.25): 0, ms(base + 10.5): 0},  # strings become 0 here
        ("machine_count_good", cnc): {ms(base + 60): 10},
        ("machine_count_scrap", cnc): {ms(base + 60): 2},
        ("machine_count_interval_s", cnc): {ms(base + 60): 59.75},
        # VictoriaMetrics keeps 12 significant digits of a float
        ("machine_count_rate_per_hour", cnc): {ms(base + 60): pytest.approx(12 * 3600 / 59.75, rel=1e-11)},
        ("machine_state_state_code", inj): {ms(base + 1.001): 2},
        ("machine_state_fault_code", inj): {ms(base + 1.001): 0},
        ("machine_state_state", inj): {ms(base + 1.001): 0},
    }
    stats = writer.stats()
    assert (stats.written, stats.queued, stats.dropped, stats.failures, stats.last_error) == (4, 0, 0, 0, None)
    assert stats.last_success_at == 1234.5


def state_codes(victoria: VictoriaMetrics) -> dict[int, float]:
    series = [points for (name, _), points in victoria.samples().items() if name == "machine_state_state_code"]
    return {ts: value for points in series for ts, value in points.items()}


async def test_an_outage_is_bridged_by_the_buffer_and_nothing_is_lost(victoria: VictoriaMetrics) -> None:
    base = hour_ago()
    victoria.stop()
    writer = InfluxWriter(config(victoria.url))
    await writer.start()
    for i in range(120):
        writer.state(machine_id="m1", line=None, site=None, ts=base + i, state="running", fault_code=None, job=None)
    await async_wait_until(lambda: writer.stats().failures >= 2, WAIT, what="writes failing while down")
    for i in range(120, 300):  # more arrive while InfluxDB is still down
        writer.state(machine_id="m1", line=None, site=None, ts=base + i, state="idle", fault_code=None, job=None)
    stats = writer.stats()
    assert (stats.written, stats.queued, stats.dropped) == (0, 300, 0)
    assert stats.last_error is not None and "Connection" in stats.last_error

    victoria.start()
    await async_wait_until(lambda: writer.stats().written == 300, WAIT, what="the backlog written")
    await writer.stop()
    assert state_codes(victoria) == {ms(base + i): (1 if i < 120 else 2) for i in range(300)}
    assert writer.stats().dropped == 0 and writer.stats().queued == 0


async def test_above_the_bound_the_oldest_points_are_dropped_and_counted(victoria: VictoriaMetrics) -> None:
    base = hour_ago()
    victoria.stop()
    writer = InfluxWriter(config(victoria.url, retry_buffer=100, batch_size=10))
    for i in range(250):  # before start: no batch in flight, so exactly the newest 100 stay
        writer.state(machine_id="m1", line=None, site=None, ts=base + i, state="running", fault_code=None, job=None)
    await writer.start()
    await async_wait_until(lambda: writer.stats().failures >= 2, WAIT, what="writes failing while down")
    stats = writer.stats()
    assert (stats.written, stats.queued, stats.dropped) == (0, 100, 150)

    victoria.start()
    await async_wait_until(lambda: writer.stats().written == 100, WAIT, what="the kept points written")
    await writer.stop()
    assert sorted(state_codes(victoria)) == [ms(base + i) for i in range(150, 250)]
    assert writer.stats().dropped == 150


async def test_stop_flushes_what_is_queued(victoria: VictoriaMetrics) -> None:
    base = hour_ago()
    writer = InfluxWriter(config(victoria.url, batch_size=1000, retry_buffer=2000, flush_interval=60))
    await writer.start()
    for i in range(20):
        writer.count(machine_id="m1", line=None, site=None, start=base + i, ts=base + i + 1, good=1, scrap=0, job=None)
    await writer.stop()
    assert writer.stats().written == 20
    good = victoria.samples()[("machine_count_good", tags(machine="m1"))]
    assert good == {ms(base + i + 1): 1 for i in range(20)}


def records(base: float) -> tuple[list[StatePoint], list[CountPoint]]:
    states = [StatePoint(f"m{i % 2}", "line-a", "sz", base + i * 7.5, ("running", "idle", "fault")[i % 3],
                          101 if i % 3 == 2 else None, f"J-{i // 10}") for i in range(30)]
    counts = [CountPoint(f"m{i % 2}", "line-a", "sz", base + i * 7.5, base + i * 7.5 + 7.5, i, i % 2,
                          f"J-{i // 10}") for i in range(30)]
    return states, counts


async def test_backfill_rewrites_a_window_idempotently(victoria: VictoriaMetrics) -> None:
    base = hour_ago()
    states, counts = records(base)
    live = InfluxWriter(config(victoria.url))  # the live path wrote the first half before the outage
    await live.start()
    for r in states[:15]:
        live.state(machine_id=r.machine_id, line=r.line, site=r.site, ts=r.ts, state=r.state,
                   fault_code=r.fault_code, job=r.job)
    await async_wait_until(lambda: live.stats().written == 15, WAIT, what="live points written")
    await live.stop()

    async def streamed(items: list[CountPoint]) -> AsyncIterator[CountPoint]:
        for item in items:
            yield item

    writer = InfluxWriter(config(victoria.url, batch_size=7, retry_buffer=100))  # never started: backfill only
    assert await backfill(writer, states, counts) == 60
    first = victoria.samples()
    assert await backfill(writer, iter(states), streamed(counts)) == 60
    second = victoria.samples()
    await writer.stop()

    assert first == second
    series = {name: sum(len(points) for (n, _), points in first.items() if n == name) for name, _ in first}
    assert series["machine_state_state_code"] == 30 and series["machine_count_good"] == 30
    fault = first[("machine_state_fault_code", tags(machine="m0", line="line-a", site="sz", job="J-0"))]
    assert fault == {ms(base + i * 7.5): (101 if i % 3 == 2 else 0) for i in range(0, 10, 2)}
    assert writer.stats().written == 120 and writer.stats().failures == 0
