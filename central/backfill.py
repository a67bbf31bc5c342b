"""``central backfill``: rewrite a window of InfluxDB time series from the store (the record).

After an InfluxDB outage longer than the writer's retry buffer, a wiped bucket or a schema
change. Idempotent (docs/influx.md): running it twice, or over what the live writer wrote,
changes nothing.
"""

from __future__ import annotations

import logging

from central.config import CentralConfig
from central.influx.backfill import backfill
from central.influx.points import CountRecord, StateRecord
from central.influx.writer import InfluxWriter
from central.progress.machines import Catalog
from central.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


async def run_backfill(cfg: CentralConfig, start: float, end: float) -> int:
    """Write every stored state interval start and count in ``[start, end)``; returns points written."""
    if cfg.influx is None:
        raise ValueError("there is no 'influx:' section in the configuration: nothing to backfill into")
    catalog = Catalog(cfg.plant)
    store = await SqliteStore.open(cfg.store.path)
    writer = InfluxWriter(cfg.influx)
    try:
        loaded = await store.load()
        site_of = {m: gw.site for gw in loaded.gateways.values() for m in gw.machines}
        states = [
            StateRecord(iv.machine_id, catalog.machine(iv.machine_id).line, site_of.get(iv.machine_id), iv.start,
                        iv.state.value, iv.fault_code, iv.job)
            for iv in await store.intervals_between(start, end)
        ]
        # the current (open) interval of each machine is not stored as an interval yet
        for mid, st in loaded.statuses.items():
            if st.state is not None and st.since is not None and start <= st.since < end:
                states.append(StateRecord(mid, catalog.machine(mid).line, site_of.get(mid), st.since,
                                          st.state.value, st.fault_code, st.job))
        counts = [
            CountRecord(c.machine_id, catalog.machine(c.machine_id).line, site_of.get(c.machine_id), c.start, c.at,
                        c.good, c.scrap, c.job)
            for c in await store.counts(None, start, end)
        ]
        written = await backfill(writer, states, counts)
        log.info("backfill wrote %d points (%d states, %d counts)", written, len(states), len(counts))
        return written
    finally:
        await writer.stop()
        await store.close()
