"""The projector holds back while ingest runs flat out (a backlog drains), at most ``projection_interval_busy``;
a person's change never waits. Real store, the projector's own loop; the waits are short intervals, checked
against deadlines, not fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from central.alerts.config import AlertsConfig
from central.alerts.engine import AlertEngine
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.ingest.load import RoundLoad
from central.orders.book import BookChanged, OrderBook
from central.orders.config import OrdersConfig
from central.orders.projector import Projector
from central.progress.machines import Catalog, MachinesConfig
from central.store.sqlite import SqliteStore
from tests.fixtures.waiting import async_wait_until


def test_the_share_of_time_in_rounds_says_when_ingest_runs_flat_out() -> None:
    load = RoundLoad()
    for _ in range(200):  # live traffic: 5 ms rounds, 45 ms between messages
        load.add(0.005, 0.045)
    assert 0.05 < load.share < 0.15 and not load.flat_out
    load.add(2.0, 0.0)  # a backlog: one two-second round right after the last
    assert load.flat_out
    for _ in range(3):  # it drained: rounds are short again and wait for messages
        load.add(0.005, 0.5)
    assert not load.flat_out
    load.add(0.0, 0.0)  # nothing measured changes nothing
    assert not load.flat_out


async def test_passes_hold_back_while_ingest_is_busy_and_a_persons_change_never_waits(tmp_path: Path) -> None:
    catalog = Catalog(MachinesConfig.model_validate({"machines": [{"id": "m1"}]}))
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    busy = [False]
    try:
        book = OrderBook(store, catalog, clock=time.time)
        cfg = OrdersConfig(projection_interval=0.2, projection_interval_busy=1.5)
        projector = Projector(book, LiveState(IngestConfig(), catalog), catalog, cfg,
                              AlertEngine(AlertsConfig(), catalog, [], store, clock=time.time), store,
                              clock=time.time, busy=lambda: busy[0])
        task = asyncio.create_task(projector.run())
        try:
            await async_wait_until(lambda: projector.passes >= 1, 10)  # the first pass at start
            busy[0] = True
            started = time.monotonic()
            book._tell(BookChanged(frozenset({"SO-1"}), frozenset(), by_people=False))  # an ingest round's change
            await async_wait_until(lambda: projector.passes >= 2, 10)
            held = time.monotonic() - started
            assert held >= 1.0 and projector.held_back >= 1, held  # not at the 0.2 s pace: up to 1.5 s
            started = time.monotonic()
            book._tell(BookChanged(frozenset({"SO-1"}), frozenset(), by_people=True))  # a planner's change
            await async_wait_until(lambda: projector.passes >= 3, 10)
            assert time.monotonic() - started < 1.0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await store.close()
