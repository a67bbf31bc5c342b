"""One leader among the API replicas: the tasks that span every gateway (the projection of orders, shift
summaries) run in exactly one process.

The leader holds a PostgreSQL session advisory lock on a connection of its own; the others try again
every few seconds and take over when that connection ends (its process died or was stopped). The
lock needs a direct connection to PostgreSQL (not a transaction-pooling pgbouncer); what the leader
writes is idempotent by stable ids (alerts, notifications, summaries), so a short overlap while a
dead leader's connection times out costs nothing but a repeated computation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from plantpulse.tasks import cancel_all

log = logging.getLogger(__name__)

LEADER_LOCK = "plantpulse leader {site}"  # hashed to the site's advisory lock key: one leader per site
_RETRY = 3.0


class Leader:
    def __init__(self, dsn: str, site: str, tasks: Callable[[], list[Coroutine[Any, Any, None]]]) -> None:
        self.dsn = dsn
        self.site = site  # another site's central may share the database: it has a leader of its own
        self.tasks = tasks
        self.leading = False

    async def run(self) -> None:
        while True:
            try:
                con = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(_RETRY)
                continue
            try:
                if await con.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                                      LEADER_LOCK.format(site=self.site)):
                    await self._lead(con)
                else:
                    await asyncio.sleep(_RETRY)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("leader connection failed (%s)", exc)
            finally:
                self.leading = False
                with contextlib.suppress(Exception):
                    await con.close()

    async def _lead(self, con: asyncpg.Connection) -> None:
        """Run the tasks while the lock's connection lives (checked every few seconds)."""
        log.info("this API replica leads: it runs the projection and the shift summaries")
        self.leading = True
        running = [asyncio.create_task(c) for c in self.tasks()]
        try:
            while all(not t.done() for t in running):
                await asyncio.sleep(_RETRY)
                await con.fetchval("SELECT 1")
            for t in running:
                if t.done() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            await cancel_all(running)
