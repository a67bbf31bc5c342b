"""The PostgreSQL store (asyncpg, a pool): the record shared by several ingest workers and API replicas.

Same tables, same migrations (central/store/schema.py, rendered for PostgreSQL) and same contract
as the SQLite store (tests/central/store/test_contract.py). What PostgreSQL adds is coordination:

- Migrations run at open under ``pg_advisory_lock``: several processes starting together migrate
  once, the others wait and find the schema current.
- A commit locks the row of every gateway whose applied ranges it writes (``SELECT ... FOR UPDATE``
  on ``gateway_leases``) and, when the store was opened with a ``Fence`` (an ingest worker), checks
  in the same transaction that this worker still holds that gateway's lease with the token it took
  it with. A worker whose lease was taken over fails its commit (``FencedError``) and applies
  nothing: two processes can never both commit the same seq, even while ownership changes hands.
- ``notify`` channels (``plantpulse_round``) tell API replicas that a round was committed (the payload is
  the site: the processes of another site sharing the database ignore it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

import asyncpg

from central.alerts.alert import Alert
from central.alerts.notifications import Notification
from central.progress.clock import Clamp
from central.progress.counts import CountRecord
from central.progress.timeline import StateInterval
from central.store import pgrows
from central.store.base import FencedError, Loaded, Retention, StoreError, StoreUnusableError
from central.store.pgqmark import QmarkAdapter, as_aiosqlite
from central.store.records import (
    DeadLetter,
    Delivery,
    GapRow,
    Transaction,
    alert_from_json,
    notification_from_json,
)
from central.store.schema import MIGRATIONS, check_site, statements
from central.store.sqlite_extras import ExtraReads, write_extras
from central.store.sqlite_orders import OrderReads, write_orders
from plantpulse.protocol.sequencer import Gap

if TYPE_CHECKING:
    from central.store.pgqmark import Conn

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x706C616E74  # pg_advisory_lock key of the migrations ("plant")
ROUND_CHANNEL = "plantpulse_round"  # NOTIFY after each committed round: API replicas refresh
# NOTIFY after a commit that is no gateway's round (a person's action on an alert, an order change, the
# leader's projection): the workers re-read their alerts and the order book
PEOPLE_CHANNEL = "plantpulse_people"
CLAIM_SECONDS = 300.0  # a claimed delivery is another sender's again after this (its sender died)


class Fence(Protocol):
    """What the store asks an ingest worker at commit: which lease token it holds for a gateway."""

    owner: str

    def token(self, edge_id: str) -> int | None:
        """The token this worker took the gateway's lease with, or None when it never took it or gave it up."""


_COLS_IV = 'machine_id, state, start, "end", fault_code, job, reason, uncertain, repeats'


class PostgresStore(OrderReads, ExtraReads):
    def __init__(self, pool: asyncpg.Pool, dsn: str, site: str, fence: Fence | None = None) -> None:
        self.pool = pool
        self.site = site  # every row this store reads or writes is this site's (schema.py, migration 9)
        self._db = as_aiosqlite(QmarkAdapter(pool))  # the order and extras reads, shared with SQLite
        self.dsn = dsn
        self.fence = fence
        self._problem: str | None = None

    @classmethod
    async def open(cls, dsn: str, site: str, *, pool_size: int = 8, fence: Fence | None = None) -> PostgresStore:
        check_site(site)
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, command_timeout=60)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({type(exc).__name__}: {exc}): check store.dsn_file "
                             "and that the server runs and accepts this user") from None
        try:
            async with pool.acquire() as con:
                await migrate(con, site)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, dsn, site, fence)

    async def close(self) -> None:
        """Close the pool, giving running queries a few seconds (a stop must not hang on a dead server)."""
        try:
            await asyncio.wait_for(self.pool.close(), 5.0)
        except TimeoutError:
            self.pool.terminate()

    def problem(self) -> str | None:
        """Why the store can no longer be trusted, or None (set when the server refused a commit for good)."""
        return self._problem

    # ----------------------------------------------------------------- write
    async def commit(self, tx: Transaction) -> None:
        """Write one ingest round atomically and durably, fenced by the leases of its gateways."""
        if tx.empty():
            return
        try:
            async with self.pool.acquire() as con, con.transaction():
                await self._lock_gateways(con, tx)
                await self._write(con, tx)
                await con.execute("SELECT pg_notify($1, $2)", ROUND_CHANNEL, self.site)
                if not (tx.gateways or tx.epochs) and (tx.alerts or tx.orders is not None):
                    await con.execute("SELECT pg_notify($1, $2)", PEOPLE_CHANNEL, self.site)
        except asyncpg.exceptions.DataError as exc:
            raise ValueError(str(exc)) from exc
        except asyncpg.exceptions.ReadOnlySQLTransactionError as exc:
            self._problem = f"PostgreSQL refuses writes ({exc}): is this a standby? point store.dsn_file at the primary"
            raise StoreUnusableError(self._problem) from exc

    async def _lock_gateways(self, con: Conn, tx: Transaction) -> None:
        """Lock the gateways' rows (sorted: two committers never deadlock) and check the fence."""
        edges = sorted({edge for edge, _ in tx.epochs} | set(tx.gateways) | {c.edge_id for c in tx.counts})
        if not edges:
            return
        await con.executemany(
            "INSERT INTO gateway_leases (site, edge_id, owner, token, expires_at) VALUES ($1, $2, NULL, 0, 0) "
            "ON CONFLICT (site, edge_id) DO NOTHING",
            [(self.site, e) for e in edges],
        )
        rows = await con.fetch(
            "SELECT edge_id, owner, token FROM gateway_leases WHERE site = $1 AND edge_id = ANY($2::text[]) "
            "ORDER BY edge_id FOR UPDATE", self.site, edges,
        )
        if self.fence is None:
            return
        fence = self.fence
        held = tx.tokens.get if tx.tokens is not None else fence.token  # the tokens the round was computed under
        lost = [r["edge_id"] for r in rows if r["owner"] != fence.owner or r["token"] != held(r["edge_id"])]
        if lost:
            raise FencedError(lost)

    async def _write(self, con: Conn, tx: Transaction) -> None:
        site = self.site
        for sql, args in pgrows.inserts(site, tx):
            await con.executemany(sql, args)
        for iv in tx.removed_intervals:
            await con.execute(
                "DELETE FROM intervals WHERE id = (SELECT id FROM intervals WHERE site = $1 AND machine_id = $2 "
                'AND start = $3 AND "end" = $4 AND state = $5 LIMIT 1)', site, iv.machine_id, iv.start, iv.end,
                iv.state.value,
            )
        for sql, args in pgrows.upserts(site, tx):
            await con.executemany(sql, args)
        if tx.orders is not None:
            await write_orders(as_aiosqlite(QmarkAdapter(con)), site, tx.orders)
        if tx.extras is not None:
            await write_extras(as_aiosqlite(QmarkAdapter(con)), site, tx.extras)

    async def purge(self, now: float, retention: Retention) -> dict[str, int]:
        """Delete what is older than the retention periods; returns rows deleted per table."""
        day = 86_400.0
        deleted: dict[str, int] = {}
        async with self.pool.acquire() as con:
            for table, column, days in pgrows.retained(retention):
                status = await con.execute(f"DELETE FROM {table} WHERE site = $1 AND {column} < $2",  # noqa: S608 - fixed names
                                           self.site, now - days * day)
                deleted[table] = int(status.split()[-1])
        return deleted

    # ----------------------------------------------------------------- read
    async def load(self) -> Loaded:
        async with self.pool.acquire() as con, con.transaction(isolation="repeatable_read", readonly=True):
            return await pgrows.load(con, self.site)

    async def intervals(self, machine_id: str, start: float, end: float) -> list[StateInterval]:
        rows = await self.pool.fetch(
            f'SELECT {_COLS_IV} FROM intervals WHERE site = $1 AND machine_id = $2 AND "end" >= $3 AND start < $4 '  # noqa: S608 - fixed text
            "ORDER BY start, id", self.site, machine_id, start, end)
        return pgrows.intervals(rows)

    async def intervals_between(self, start: float, end: float) -> list[StateInterval]:
        rows = await self.pool.fetch(
            f"SELECT {_COLS_IV} FROM intervals WHERE site = $1 AND start >= $2 AND start < $3 ORDER BY start, id",  # noqa: S608 - fixed text
            self.site, start, end)
        return pgrows.intervals(rows)

    async def intervals_from(self, machine_id: str, at: float, limit: int = 4) -> list[StateInterval]:
        rows = await self.pool.fetch(
            f'SELECT {_COLS_IV} FROM intervals WHERE site = $1 AND machine_id = $2 AND "end" > $3 '  # noqa: S608 - fixed text
            "ORDER BY start, id LIMIT $4", self.site, machine_id, at, limit)
        return pgrows.intervals(rows)

    async def counts(self, machine_id: str | None, start: float, end: float) -> list[CountRecord]:
        where, params = ("machine_id = $4 AND ", (machine_id,)) if machine_id else ("", ())
        rows = await self.pool.fetch(
            "SELECT machine_id, start, at, good, scrap, job, reset, possibly_lost, rebased, clamp, implausible, "  # noqa: S608 - fixed text
            f"job_from FROM counts WHERE site = $1 AND {where}at >= $2 AND at < $3 ORDER BY at", self.site, start, end,
            *params)
        return [CountRecord(m, a, b, g, s, job, bool(r), bool(p), bool(rb), Clamp(c) if c else None, bool(imp), jf)
                for m, a, b, g, s, job, r, p, rb, c, imp, jf in rows]

    async def gaps(self, edge_id: str | None = None, limit: int = 100, offset: int = 0) -> list[GapRow]:
        where, params = ("AND edge_id = $4 ", (edge_id,)) if edge_id else ("", ())
        rows = await self.pool.fetch(
            "SELECT id, edge_id, epoch, first, last, reason, count, start_ts, end_ts, recorded_at FROM gaps "  # noqa: S608 - fixed text
            f"WHERE site = $1 {where}ORDER BY id DESC LIMIT $2 OFFSET $3", self.site, limit, offset, *params)
        return [GapRow(Gap(edge, epoch, first, last, reason, start_ts, end_ts, count), recorded, gid)
                for gid, edge, epoch, first, last, reason, count, start_ts, end_ts, recorded in rows]

    async def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        rows = await self.pool.fetch(
            "SELECT id, received_at, topic, payload, reason FROM dead_letters WHERE site = $1 "
            "ORDER BY id DESC LIMIT $2 OFFSET $3", self.site, limit, offset)
        return [DeadLetter(r, t, bytes(p), reason, i) for i, r, t, p, reason in rows]

    # ----------------------------------------------------------------- alerts and deliveries
    async def active_alerts(self) -> list[Alert]:
        rows = await self.pool.fetch(
            "SELECT data FROM alerts WHERE site = $1 AND (status != 'resolved' OR condition_active = 1)", self.site)
        return [alert_from_json(r[0]) for r in rows]

    async def alerts(self, *, status: str | None = None, rule: str | None = None, subject: str | None = None,
                     since: float | None = None, limit: int = 100, offset: int = 0) -> list[Alert]:
        params: list[object] = []

        def arg(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        where: list[str] = [f"site = {arg(self.site)}"]

        if status == "active":
            where.append("status != 'resolved'")
        elif status is not None:
            where.append(f"status = {arg(status)}")
        for column, value in (("rule", rule), ("subject", subject)):
            if value is not None:
                where.append(f"{column} = {arg(value)}")
        if since is not None:
            where.append(f"updated_at >= {arg(since)}")
        sql = (f"SELECT data FROM alerts WHERE {' AND '.join(where)} ORDER BY opened_at DESC "  # noqa: S608 - fixed fragments
               f"LIMIT {arg(limit)} OFFSET {arg(offset)}")
        return [alert_from_json(r[0]) for r in await self.pool.fetch(sql, *params)]

    async def alert(self, alert_id: str) -> Alert | None:
        data = await self.pool.fetchval("SELECT data FROM alerts WHERE site = $1 AND id = $2", self.site, alert_id)
        return alert_from_json(data) if data is not None else None

    async def due_deliveries(self, now: float, target: str, limit: int = 50) -> list[tuple[Delivery, Notification]]:
        """Due deliveries, claimed for this sender: several workers' senders share one outbox.

        Claimed in one transaction (``FOR UPDATE SKIP LOCKED``: another sender skips them instead of
        waiting) by moving their ``next_at`` ``CLAIM_SECONDS`` ahead; the sender records the outcome
        (``update_deliveries``) well before that. A sender that dies meanwhile leaves them to be sent
        again after the claim: at least once, and the receiver recognises the stable id."""
        lease = CLAIM_SECONDS
        async with self.pool.acquire() as con, con.transaction():
            rows = await con.fetch(
                "SELECT d.notification_id, d.target, d.site, d.status, d.attempts, d.next_at, d.sent_at, "
                "d.last_error, n.data FROM deliveries d "
                "JOIN notifications n ON n.site = d.site AND n.id = d.notification_id "
                "WHERE d.site = $1 AND d.target = $2 AND d.status = 'pending' AND d.next_at <= $3 "
                "ORDER BY n.priority, n.created_at, d.notification_id LIMIT $4 "
                "FOR UPDATE OF d SKIP LOCKED", self.site, target, now, limit)
            await con.executemany(
                "UPDATE deliveries SET next_at = $1 WHERE site = $2 AND notification_id = $3 AND target = $4",
                [(now + lease, self.site, r[0], r[1]) for r in rows])
        return [(Delivery(*tuple(row)[:8]), notification_from_json(row[8])) for row in rows]

    async def next_delivery_at(self, target: str) -> float | None:
        value = await self.pool.fetchval(
            "SELECT min(next_at) FROM deliveries WHERE site = $1 AND target = $2 AND status = 'pending'",
            self.site, target)
        return float(value) if value is not None else None

    async def sent_since(self, target: str, since: float) -> list[float]:
        rows = await self.pool.fetch(
            "SELECT sent_at FROM deliveries WHERE site = $1 AND target = $2 AND sent_at >= $3 ORDER BY sent_at",
            self.site, target, since)
        return [float(r[0]) for r in rows]

    async def update_deliveries(self, done: list[Delivery]) -> None:
        async with self.pool.acquire() as con, con.transaction():
            await con.executemany(
                "UPDATE deliveries SET status = $1, attempts = $2, next_at = $3, sent_at = $4, last_error = $5 "
                "WHERE site = $6 AND notification_id = $7 AND target = $8",
                [(d.status, d.attempts, d.next_at, d.sent_at, d.last_error, self.site, d.notification_id, d.target)
                 for d in done])

    async def delivery_counts(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT status, count(*) FROM deliveries WHERE site = $1 GROUP BY status",
                                     self.site)
        return {status: int(n) for status, n in rows}


async def migrate(con: Conn, site: str, upto: int | None = None) -> int:
    """Apply the missing migrations (up to ``upto``, default all) under an advisory lock; returns the version.
    ``site``: whose the rows written before migration 9 are (the site of the central that migrates)."""
    target = len(MIGRATIONS) if upto is None else upto
    await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = int(await con.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))
        if current > len(MIGRATIONS):
            raise StoreError(
                f"the PostgreSQL store has schema version {current}, newer than this plantpulse knows "
                f"({len(MIGRATIONS)}): run a newer plantpulse or restore a backup")
        for version in range(current + 1, target + 1):
            async with con.transaction():
                for statement in statements(version, "postgresql", site):
                    await con.execute(statement)
                await con.execute("INSERT INTO schema_version VALUES ($1)", version)
            log.info("PostgreSQL store migrated to schema version %d", version)
        return max(current, target)
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
