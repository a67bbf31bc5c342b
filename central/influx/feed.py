"""What central writes to InfluxDB, built in one place from its own data (docs/influx.md).

The live feed turns each committed round's applied states and counts into points; a backfill
turns the store's intervals and counts into the same points. Both go through ``state_point`` and
``count_point`` here, so a backfill lands exactly on what the live feed wrote (same measurement,
tags and millisecond timestamp) and overwrites instead of adding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from central.influx.backfill import backfill
from central.influx.config import InfluxConfig
from central.influx.oee_feed import hour_starts, machine_points
from central.influx.points import CountPoint, OeePoint, StatePoint
from central.influx.writer import InfluxWriter
from central.ingest.applier import Round
from central.ingest.live import LiveState
from central.orders.book import OrderBook
from central.progress.counts import CountRecord
from central.progress.machines import Catalog
from central.progress.status import MachineStatus
from central.progress.timeline import StateInterval
from central.store.base import Store
from plantpulse.protocol.models import MachineState, StateEvent

log = logging.getLogger(__name__)

SiteOf = Callable[[str], str | None]  # machine id -> site (from its gateway), or None


def state_point(catalog: Catalog, site_of: SiteOf, machine_id: str, ts: float, state: MachineState,
                fault_code: int | None, job: str | None) -> StatePoint:
    return StatePoint(machine_id, catalog.machine(machine_id).line, site_of(machine_id), ts, state.value,
                      fault_code, job)


def count_point(catalog: Catalog, site_of: SiteOf, rec: CountRecord) -> CountPoint:
    return CountPoint(rec.machine_id, catalog.machine(rec.machine_id).line, site_of(rec.machine_id), rec.start,
                      rec.at, rec.good, rec.scrap, rec.job)


class InfluxFeed:
    """An ingest listener: copies each committed round to the writer (best effort; the store is the record)."""

    def __init__(self, writer: InfluxWriter, catalog: Catalog, live: LiveState) -> None:
        self.writer = writer
        self.catalog = catalog
        self.live = live

    def site(self, machine_id: str) -> str | None:
        """The machine's site, from the gateway it was last seen through (None before it was)."""
        edge_id = self.live.machine_gateway.get(machine_id)
        gw = self.live.gateways.get(edge_id) if edge_id else None
        return gw.site if gw else None

    def on_round(self, rnd: Round) -> None:
        for item in rnd.applied:
            event = item.applied.event
            if isinstance(event, StateEvent):
                if item.applied.late:
                    continue  # spliced into history: `central backfill` rewrites the window exactly
                self.writer.add(state_point(self.catalog, self.site, event.machine_id, item.at, event.state,
                                            event.fault_code, event.job))
            else:
                rec = CountRecord(event.machine_id, item.start or item.at, item.at, event.good, event.scrap, event.job)
                self.writer.add(count_point(self.catalog, self.site, rec))


Progress = Callable[[int, int, int], None]  # (chunks read, chunks in all, points read so far)


@dataclass
class _Statuses:
    statuses: dict[str, MachineStatus]


@dataclass
class _StoreView:
    """What OEE is computed from (``oee_window.Sources``), from the store alone: the backfill has no central."""

    store: Store
    catalog: Catalog
    live: _Statuses
    orders: OrderBook
    clock: Callable[[], float]


async def run_backfill(store: Store, influx: InfluxConfig, catalog: Catalog, start: float, end: float,
                       *, chunk: float = 3600.0, progress: Progress | None = None, now: float | None = None) -> int:
    """Write every stored state interval start and count in ``[start, end)``, and each machine's OEE of
    every whole hour in it that has closed by ``now`` (with ``influx.oee``); returns points written.

    The window is read from the store ``chunk`` seconds at a time, so a year's backfill never
    holds the year in memory; ``progress`` is told after each chunk (states, counts, then OEE hours).
    """
    loaded = await store.load()
    sites = {m: gw.site for gw in loaded.gateways.values() for m in gw.machines}
    writer = InfluxWriter(influx)
    windows = _chunks(start, end, chunk)
    clock = time.time
    hours = list(hour_starts(start, min(end, clock() if now is None else now))) if influx.oee else []
    steps = 2 * len(windows) + len(hours)
    read = [0, 0]  # chunks, points

    def step() -> None:
        read[0] += 1
        if progress is not None:
            progress(read[0], steps, read[1])

    async def states() -> AsyncIterator[StatePoint]:
        for a, b in windows:
            intervals: list[StateInterval] = await store.intervals_between(a, b)
            for iv in intervals:
                read[1] += 1
                yield state_point(catalog, sites.get, iv.machine_id, iv.start, iv.state, iv.fault_code, iv.job)
            step()
        # the current (open) interval of each machine is not stored as an interval yet
        for mid, st in loaded.statuses.items():
            if st.state is not None and st.since is not None and start <= st.since < end:
                read[1] += 1
                yield state_point(catalog, sites.get, mid, st.since, st.state, st.fault_code, st.job)

    async def counts() -> AsyncIterator[CountPoint]:
        for a, b in windows:
            for rec in await store.counts(None, a, b):
                read[1] += 1
                yield count_point(catalog, sites.get, rec)
            step()

    async def oee() -> AsyncIterator[OeePoint]:
        if not hours:
            return
        book = OrderBook(store, catalog, clock=clock)
        await book.load()  # the operations' ideal cycle times weigh their parts
        view = _StoreView(store, catalog, _Statuses(dict(loaded.statuses)), book, clock)
        for h in hours:
            for point in await machine_points(view, sites.get, h):
                read[1] += 1
                yield point
            step()

    try:
        written = await backfill(writer, states(), counts(), oee())
    finally:
        await writer.stop()
    log.info("backfill wrote %d points", written)
    return written


def _chunks(start: float, end: float, size: float) -> list[tuple[float, float]]:
    out = []
    a = start
    while a < end:
        out.append((a, min(end, a + size)))
        a += size
    return out
