"""Gateway ownership by leases in PostgreSQL: a worker's heartbeat, its leases, taking and giving up.

Each cycle (a fifth of the lease) the worker renews its heartbeat and its leases in one statement,
reads all leases and the live workers, and asks ``balance.plan`` what to take and give up. Time is
the database's clock (``clock_timestamp()``), the same for every worker. Taking a lease bumps its
token; the store checks the token at every commit (``central/store/postgres.py``), so a worker that
lost a lease (expired while it was stalled, taken over) cannot commit for that gateway any more.

A worker that cannot renew (the database unreachable, a stalled process) stops applying once its
leases may have expired (``owns`` is false after ``valid_until``), before another worker can take the
gateways over. The commit itself is judged by the database: the token still the row's means nobody
took the gateway since, so a round that finished late is still committed when nobody took over.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from central.cluster.balance import Lease, plan

if TYPE_CHECKING:
    from central.store.pgqmark import Conn

log = logging.getLogger(__name__)

_NOW = "extract(epoch from clock_timestamp())"
_MARGIN = 1.0  # seconds before a lease's expiry at which this worker stops trusting it


APP_PREFIX = "plantpulse worker "


def new_worker_id() -> str:
    """Unique, readable, and short enough for ``application_name`` (63 bytes with the prefix)."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Changes:
    """What a cycle changed: gateways taken, lost (taken by another), to give up (all of this worker's site)."""

    gained: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)
    give_up: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.gained or self.lost or self.give_up)


class Ownership:
    """This worker's leases; the store's ``Fence`` (``owner``, ``token``)."""

    def __init__(self, pool: asyncpg.Pool, site: str, *, lease_seconds: float, moves: int,
                 owner: str | None = None) -> None:
        self.pool = pool
        self.site = site  # the workers of one site share its gateways; another site's are none of theirs
        self.owner = owner or new_worker_id()
        self.lease_seconds = lease_seconds
        self.moves = moves
        self.tokens: dict[str, int] = {}
        self.valid_until = 0.0  # monotonic: the leases may have expired after this
        self.giving_up: set[str] = set()

    @classmethod
    async def open(cls, dsn: str, site: str, *, lease_seconds: float, moves: int) -> Ownership:
        """Its own small pool: renewals never wait behind ingest commits for a connection. Its
        connections carry the worker's id (``application_name``): see ``_bury``."""
        owner = new_worker_id()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=max(2.0, lease_seconds / 3),
                                         max_inactive_connection_lifetime=0,
                                         server_settings={"application_name": APP_PREFIX + owner})
        return cls(pool, site, lease_seconds=lease_seconds, moves=moves, owner=owner)

    async def close(self) -> None:
        await self.pool.close()

    def token(self, edge_id: str) -> int | None:
        """The token this worker took the gateway with (checked by the store under the row lock: if it is
        still the row's, nobody took the gateway since, whatever the time, so the commit is safe)."""
        return self.tokens.get(edge_id)

    def owns(self, edge_id: str) -> bool:
        """Apply this gateway's messages? Not once the leases may have expired without a renewal."""
        return (time.monotonic() < self.valid_until and edge_id in self.tokens
                and edge_id not in self.giving_up)

    async def seen(self, edge_id: str) -> None:
        """A gateway announced itself: make it known (a free lease) so that some worker takes it."""
        await self.pool.execute(
            "INSERT INTO gateway_leases (site, edge_id, owner, token, expires_at) VALUES ($1, $2, NULL, 0, 0) "
            "ON CONFLICT (site, edge_id) DO NOTHING", self.site, edge_id)

    async def cycle(self) -> Changes:
        """Renew, then take and give up per the balancing rule. Raises on a database error (retry later)."""
        started = time.monotonic()
        changes = Changes()
        async with self.pool.acquire() as con:
            await con.execute(
                f"INSERT INTO workers (id, expires_at, started_at, site) VALUES ($1, {_NOW} + $2, {_NOW}, $3) "  # noqa: S608 - fixed text
                "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at", self.owner, self.lease_seconds,
                self.site)
            renewed = {r["edge_id"]: r["token"] for r in await con.fetch(
                f"UPDATE gateway_leases SET expires_at = {_NOW} + $2 WHERE owner = $1 AND site = $4 "  # noqa: S608 - fixed text
                "AND edge_id = ANY($3::text[]) RETURNING edge_id, token", self.owner, self.lease_seconds,
                list(self.tokens), self.site)}
            # rows still naming this worker that it no longer counts as its own (a fenced round): free them
            await con.execute("UPDATE gateway_leases SET owner = NULL, expires_at = 0 WHERE owner = $1 "
                              "AND NOT (site = $3 AND edge_id = ANY($2::text[]))", self.owner, list(renewed),
                              self.site)
            changes.lost = sorted(e for e, t in self.tokens.items() if renewed.get(e) != t)
            self.tokens = {e: t for e, t in self.tokens.items() if renewed.get(e) == t}
            self.valid_until = started + self.lease_seconds - _MARGIN
            await self._bury(con)
            now = float(await con.fetchval(f"SELECT {_NOW}"))
            workers = int(await con.fetchval("SELECT count(*) FROM workers WHERE site = $2 AND expires_at > $1", now,
                                             self.site))
            leases = [Lease(r["edge_id"], r["owner"], r["token"], r["expires_at"]) for r in
                      await con.fetch("SELECT edge_id, owner, token, expires_at FROM gateway_leases "
                                      "WHERE site = $1", self.site)]
            todo = plan(self.owner, leases, workers, now, moves=self.moves)
            for edge in todo.take:
                row = await con.fetchrow(
                    f"UPDATE gateway_leases SET owner = $1, token = token + 1, expires_at = {_NOW} + $3 "  # noqa: S608 - fixed text
                    f"WHERE site = $4 AND edge_id = $2 AND (owner IS NULL OR expires_at <= {_NOW}) "
                    "RETURNING token",
                    self.owner, edge, self.lease_seconds, self.site)
                if row is not None:  # another worker may have been faster
                    self.tokens[edge] = row["token"]
                    changes.gained.add(edge)
            changes.give_up = [e for e in todo.give_up if e in self.tokens]
        return changes

    async def _bury(self, con: Conn) -> None:
        """Free at once the leases of workers whose database connections are all gone.

        A worker killed (SIGKILL, a crash) loses its TCP connections with its process, and PostgreSQL
        ends their sessions at once: no session named after it is left in ``pg_stat_activity``. Its
        leases are then expired now instead of after ``lease_seconds``. Safety never depends on this
        (a commit is fenced by the token, which a taker bumps); it only shortens failover. A worker
        cut off by the network keeps its sessions until TCP gives up: then the lease expiry decides.
        """
        dead = await con.fetch(
            "DELETE FROM workers w WHERE w.id <> $1 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
            "WHERE a.application_name = $2 || w.id) RETURNING id", self.owner, APP_PREFIX)
        if dead:
            ids = [r["id"] for r in dead]
            await con.execute("UPDATE gateway_leases SET expires_at = 0 WHERE owner = ANY($1::text[])", ids)
            log.info("worker(s) %s went away (no database session left): their gateways are free now",
                     ", ".join(ids))

    async def give_up(self, edges: list[str]) -> None:
        """Hand gateways back (after their last round was committed): free at once for another worker."""
        async with self.pool.acquire() as con:
            await con.executemany(
                "UPDATE gateway_leases SET owner = NULL, expires_at = 0 WHERE site = $4 AND edge_id = $1 "
                "AND owner = $2 AND token = $3",
                [(e, self.owner, self.tokens[e], self.site) for e in edges if e in self.tokens])
        for e in edges:
            self.tokens.pop(e, None)
            self.giving_up.discard(e)

    async def leave(self) -> None:
        """A clean stop: every lease handed back, this worker no longer counted."""
        await self.give_up(list(self.tokens))
        await self.pool.execute("DELETE FROM workers WHERE id = $1", self.owner)
