"""Each machine's OEE per closed hour into InfluxDB (``machine_oee``, docs/influx.md), for Grafana.

Grafana shows only what central writes, so central writes OEE itself, from the same figures as
``GET /api/v1/oee`` (``central.orders.oee_window.machine_figures``: downtime against the shift
calendar, micro-stops, parts weighed by their operation's ideal cycle time, stop reasons). Every
``interval`` seconds the task looks whether an hour (on the UTC hour grid) has closed; if so it
writes each machine's point for that hour, and rewrites the ``rewrite`` hours before it, so counts
of a gateway's backlog that arrived after their hour closed still land in its figures. At start it
writes the last closed hours the same way (an hour central was down for is written by
``central backfill``).

Best effort through the live writer's bounded buffer, like every other point. A point is keyed by
machine, tags and the hour's start, so writing an hour again replaces it: rewrites and backfills
are idempotent. Hours with no planned time (off shift), or with no data at all for a machine, have
no OEE and are not written.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterator

from central.influx.points import OEE_PERIOD, OeePoint
from central.influx.writer import InfluxWriter
from central.orders.oee_window import Sources, machine_figures, machine_ids
from central.store.base import StoreUnusableError

log = logging.getLogger(__name__)

SiteOf = Callable[[str], str | None]


def closed_hours(since: float | None, now: float, *, rewrite: int, period: float = OEE_PERIOD) -> list[float]:
    """Starts of the windows to write at ``now``: those closed after ``since`` (the end of the last
    window written; None: nothing written yet, so only the last one) and ``rewrite`` before them."""
    end = math.floor(now / period) * period  # the end of the last closed window
    if since is not None and end <= since:
        return []
    first = (end - period if since is None else since) - rewrite * period
    return [first + i * period for i in range(round((end - first) / period))]


def hour_starts(start: float, end: float, period: float = OEE_PERIOD) -> Iterator[float]:
    """Starts of the whole windows inside ``[start, end)`` (for a backfill)."""
    h = math.ceil(start / period) * period
    while h + period <= end:
        yield h
        h += period


async def machine_points(central: Sources, site_of: SiteOf, start: float, period: float = OEE_PERIOD
                         ) -> list[OeePoint]:
    """Every machine's OEE point over ``[start, start + period)``; machines without planned time, or without
    any data in it, are left out (an hour before a machine was connected is unknown, not 0 % available)."""
    out = []
    for machine_id in machine_ids(central):
        figures = (await machine_figures(central, machine_id, start, start + period)).oee
        if figures.planned <= 0 or figures.losses.get("no_data", 0.0) >= figures.planned:
            continue  # off shift, or nothing known of the machine that hour (not yet connected): no OEE
        out.append(OeePoint.of(figures, machine_id, central.catalog.machine(machine_id).line, site_of(machine_id)))
    return out


class OeeFeed:
    """The periodic task (see the module docstring); ``step`` does one look and returns the points queued."""

    def __init__(self, central: Sources, writer: InfluxWriter, site_of: SiteOf, *, interval: float = 30.0,
                 rewrite: int = 1) -> None:
        self.central = central
        self.writer = writer
        self.site_of = site_of
        self.interval = interval
        self.rewrite = rewrite
        self.written = 0
        self._since: float | None = None  # end of the last window written

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except (asyncio.CancelledError, StoreUnusableError):
                raise  # a store that is gone is central's failure, not this task's to retry
            except Exception:  # best effort like every InfluxDB write: logged, tried at the next look
                log.exception("OEE for InfluxDB: this look failed; trying again in %.0f s", self.interval)
            await asyncio.sleep(self.interval)

    async def step(self) -> int:
        now = self.central.clock()
        starts = closed_hours(self._since, now, rewrite=self.rewrite)
        queued = 0
        for start in starts:
            for point in await machine_points(self.central, self.site_of, start):
                self.writer.add(point)
                queued += 1
        if starts:
            self._since = starts[-1] + OEE_PERIOD
        self.written += queued
        return queued
