"""An API replica's live view: reloaded from the store when a worker commits (LISTEN/NOTIFY).

Every commit of the PostgreSQL store ends with ``NOTIFY plantpulse_round``. The follower listens on
a connection of its own, and at most every ``refresh_interval`` reloads machine statuses and
gateways from the store, tells the stream which ones changed and sends alert changes since the
last look. Every replica reads the same committed rows, so they give the same answers; a
notification lost with a dropped connection only delays the view until the periodic reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from central.api.hub import StreamHub
from central.ingest.applier import Round
from central.ingest.live import LiveState
from central.store.postgres import ROUND_CHANNEL, PostgresStore

log = logging.getLogger(__name__)

_ORDERS_EVERY = 2.0  # seconds between reloads of the order book at most
_IDLE_RELOAD = 5.0  # seconds: reload anyway when no notification came (a lost one, a restarted server)


class Follower:
    def __init__(self, store: PostgresStore, live: LiveState, hub: StreamHub, *, interval: float,
                 clock: Callable[[], float], reload_alerts: Callable[[], Awaitable[None]] | None = None,
                 reload_orders: Callable[[], Awaitable[None]] | None = None) -> None:
        """``reload_alerts``: re-read the active alerts (a person acts on the store's version, not on a
        stale copy); ``reload_orders``: re-read the order book (its tallies follow the workers' counts),
        at most every ``_ORDERS_EVERY`` seconds: it sums the counts of every operation."""
        self.store = store
        self.reload_alerts = reload_alerts
        self.reload_orders = reload_orders
        self._orders_at = 0.0
        self.live = live
        self.hub = hub
        self.interval = interval
        self.clock = clock
        self.reloads = 0
        self._changed = asyncio.Event()
        self._alerts_since = clock()

    async def run(self) -> None:
        while True:
            try:
                con = await asyncpg.connect(self.store.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen for changes (%s): reloading every %g s", exc, _IDLE_RELOAD)
                await self._follow_without()
                continue
            try:
                await con.add_listener(ROUND_CHANNEL, self._notified)
                await self._follow(con)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("the change listener failed (%s): listening again", exc)
            finally:
                with contextlib.suppress(Exception):
                    await con.close()

    def _notified(self, _con: object, _pid: int, _channel: str, site: object) -> None:
        if site == self.store.site:  # another site's central may share the database
            self._changed.set()

    async def _follow(self, con: asyncpg.Connection) -> None:
        while not con.is_closed():
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can lose a shutdown's cancellation
                async with asyncio.timeout(_IDLE_RELOAD):
                    await self._changed.wait()
            self._changed.clear()
            await self.refresh()
            await asyncio.sleep(self.interval)

    async def _follow_without(self) -> None:
        await asyncio.sleep(_IDLE_RELOAD)
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await self.refresh()

    async def refresh(self) -> None:
        """Reload the live view from the store and tell the stream what changed."""
        before_s, before_g = self.live.statuses, self.live.gateways
        loaded = await self.store.load()
        since, self._alerts_since = self._alerts_since, self.clock()
        alerts = await self.store.alerts(since=since - 1.0, limit=500)
        self.live.reload(loaded)
        self.reloads += 1
        rnd = Round()
        rnd.machines = {m for m, s in self.live.statuses.items() if before_s.get(m) != s}
        rnd.gateways = {e for e, g in self.live.gateways.items() if before_g.get(e) != g}
        rnd.tx.alerts = {a.id: a for a in alerts}
        if self.reload_alerts is not None and alerts:
            await self.reload_alerts()
        if self.reload_orders is not None and time.monotonic() - self._orders_at >= _ORDERS_EVERY:
            self._orders_at = time.monotonic()
            await self.reload_orders()
        self.hub.on_round(rnd)
