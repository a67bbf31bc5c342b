"""OEE in InfluxDB (``machine_oee``): the point of a machine's hour, the hours the periodic task writes, and
the figures written into a real VictoriaMetrics by central's task and by ``central backfill`` from a real
SQLite store: the same figures as ``/api/v1/oee``, at each hour's start, rewritten idempotently."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from central.config import CentralConfig, load_central_config
from central.influx.feed import run_backfill
from central.influx.oee_feed import closed_hours, hour_starts
from central.influx.points import OEE_MEASUREMENT, OeePoint, line_protocol
from central.progress.counts import CountRecord
from central.progress.downtime import DowntimeReport
from central.progress.machines import Catalog
from central.progress.oee import PartsAt, oee
from central.progress.timeline import StateInterval
from central.runtime import Central
from central.store.open import open_store
from central.store.records import CountRow, Transaction
from plantpulse.protocol.models import MachineState
from tests.fixtures.ids import EPOCH1
from tests.fixtures.victoria import VictoriaMetrics
from tests.fixtures.waiting import async_wait_until

H = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
T = float(int(time.time()) // 3600 * 3600 - 8 * 3600)  # whole hours in the past (VictoriaMetrics refuses the future)
HOURS = 6


def test_the_point_of_the_worked_example_has_the_ratios_and_the_seconds_they_come_from() -> None:
    """docs/progress.md's worked day (510 planned minutes, 380 good and 10 scrap at 60 s) as one point."""
    report = DowntimeReport("cnc-01", T0, T0 + 510 * 60, 510 * 60, running=406.5 * 60, micro_stop_time=3.5 * 60,
                            fault={101: 50 * 60}, setup=600, idle=600, maintenance=600, offline=600, no_data=600)
    figures = oee(report, [PartsAt(60.0, 380, 10)])
    [line] = line_protocol([OeePoint.of(figures, "cnc-01", "line-a", "sz")])
    head, fields, ts = line.split(" ")
    assert head == "machine_oee,line=line-a,machine=cnc-01,period=1h,site=sz" and ts == "1767225600000"
    values = dict(f.split("=") for f in fields.split(","))
    assert {k: v for k, v in values.items() if k in ("good", "scrap")} == {"good": "380i", "scrap": "10i"}
    floats = {k: float(v) for k, v in values.items() if k not in ("good", "scrap")}
    assert floats == pytest.approx({
        "availability": 410 / 510, "performance": 390 / 410, "quality": 380 / 390, "oee": 380 / 510,
        "planned_s": 30600, "run_s": 24600, "net_run_s": 23400, "fully_productive_s": 22800})


def test_unknown_ratios_are_left_out_and_the_job_is_not_a_tag() -> None:
    report = DowntimeReport("m1", T0, T0 + H, H, running=0.0, idle=H)
    [line] = line_protocol([OeePoint.of(oee(report, []), "m1", None, None)])
    # fields in name order; a whole float is written without its decimals (still a float: no "i")
    assert line == ("machine_oee,machine=m1,period=1h availability=0,fully_productive_s=0,good=0i,net_run_s=0,"
                    "planned_s=3600,run_s=0,scrap=0i 1767225600000")


@pytest.mark.parametrize(("since", "now", "rewrite", "expected"), [
    (None, T0 + 10, 1, [T0 - 2 * H, T0 - H]),           # first look: the last closed hour and the one before
    (T0, T0 + H - 1, 1, []),                            # nothing closed since
    (T0, T0 + H, 1, [T0 - H, T0]),                      # an hour closed: it, and the one before again
    (T0, T0 + 3 * H + 5, 0, [T0, T0 + H, T0 + 2 * H]),  # central was busy: every hour closed since
])
def test_closed_hours(since: float | None, now: float, rewrite: int, expected: list[float]) -> None:
    assert closed_hours(since, now, rewrite=rewrite) == expected


def test_a_backfill_takes_the_whole_hours_of_its_window() -> None:
    assert list(hour_starts(T0 - 1, T0 + 2 * H + 1)) == [T0, T0 + H]
    assert list(hour_starts(T0 + 1, T0 + H)) == []


def _config(tmp_path: Path, victoria: VictoriaMetrics) -> CentralConfig:
    cfg = {"site": "s", "store": {"path": str(tmp_path / "central.sqlite")},
           "influx": {"url": victoria.url, "org": "plant", "bucket": "plantpulse", "batch_size": 10,
                      "flush_interval": 0.05, "retry_buffer": 100},
           "plant": {"machines": [{"id": "m1", "ideal_cycle_time": 30}]}}
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_central_config(path)


async def _fill(cfg: CentralConfig) -> None:
    """Six hours of m1: running and idle 10 minutes each in turn; 5 good and 1 scrap every 10 minutes."""
    store = await open_store(cfg.store, cfg.site)
    try:
        tx = Transaction()
        for i in range(HOURS * 6):
            at = T + i * 600
            state = MachineState.RUNNING if i % 2 == 0 else MachineState.IDLE
            tx.intervals.append(StateInterval("m1", state, at, at + 600, None, "J1", None, False))
            tx.counts.append(CountRow("gw1", EPOCH1, i + 1, CountRecord("m1", at, at + 600, 5, 1, "J1")))
        await store.commit(tx)
    finally:
        await store.close()


def _oee_samples(victoria: VictoriaMetrics) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for (name, labels), points in victoria.samples(f'{{__name__=~"{OEE_MEASUREMENT}_.*"}}').items():
        assert dict(labels) == {"machine": "m1", "period": "1h"}
        out[name.removeprefix(OEE_MEASUREMENT + "_")] = points
    return out


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# each whole hour but the first: 3 x 10 min running, 6 counts ending in it (5 good, 1 scrap each) at 30 s
FULL_HOUR = {"availability": 0.5, "performance": 36 * 30 / 1800, "quality": 30 / 36, "oee": 30 * 30 / H,
             "planned_s": H, "run_s": 1800.0, "net_run_s": 1080.0, "fully_productive_s": 900.0, "good": 30.0,
             "scrap": 6.0}


async def test_backfill_writes_each_closed_hour_with_data_once_whatever_the_runs(tmp_path: Path,
                                                                      victoria: VictoriaMetrics) -> None:
    cfg = _config(tmp_path, victoria)
    assert cfg.influx is not None
    await _fill(cfg)
    store = await open_store(cfg.store, cfg.site)
    try:
        window = (T, T + (HOURS + 2) * H + 1)  # two more hours, without any data: no OEE points for them
        first = await run_backfill(store, cfg.influx, Catalog(cfg.plant), *window, now=window[1])
        written = _oee_samples(victoria)
        again = await run_backfill(store, cfg.influx, Catalog(cfg.plant), *window, now=window[1])
        assert _oee_samples(victoria) == written and again == first
    finally:
        await store.close()
    assert first == 2 * HOURS * 6 + HOURS  # states, counts, and one OEE point per machine and whole hour
    for name, value in FULL_HOUR.items():
        assert written[name] == {_ms(T + h * H): pytest.approx(value) for h in range(1, HOURS)} | {
            _ms(T): pytest.approx(written[name][_ms(T)])}, name
    assert written["good"][_ms(T)] == 25  # the first hour: the count ending at T + 1 h belongs to the next


async def test_central_writes_the_hours_as_they_close_and_rewrites_the_one_before(
    tmp_path: Path, victoria: VictoriaMetrics,
) -> None:
    cfg = _config(tmp_path, victoria)
    await _fill(cfg)
    now = [T + 5 * H + 10]  # hours up to T + 5 h have closed
    store = await open_store(cfg.store, cfg.site)
    try:
        central = Central(cfg, store, clock=lambda: now[0])
        assert central.oee_feed is not None and central.influx is not None
        await central.orders.load()
        writer = central.influx.writer
        await writer.start()
        try:
            assert await central.oee_feed.step() == 2  # the last closed hour and the one before
            assert await central.oee_feed.step() == 0  # nothing closed since
            now[0] += H
            assert await central.oee_feed.step() == 2  # T + 5 h closed: it, and T + 4 h again
            await async_wait_until(lambda: writer.stats().written == 4, 30, what="4 OEE points written")
        finally:
            await writer.stop()
    finally:
        await store.close()
    written = _oee_samples(victoria)
    assert set(written["oee"]) == {_ms(T + 3 * H), _ms(T + 4 * H), _ms(T + 5 * H)}
    for name, value in FULL_HOUR.items():
        assert written[name] == {_ms(T + h * H): pytest.approx(value) for h in (3, 4, 5)}, name
