"""The SQLite store (aiosqlite): central's default, no server to install.

One connection, WAL, ``synchronous=FULL``: a transaction that returned is on disk, so a
confirmation sent to a gateway after it can never be taken back by a power loss. Each ingest
round is one transaction (``commit``), which keeps the cost of FULL small. Counts and raw events
are keyed by ``(edge_id, epoch, seq)``: even a bug upstream could not count an event twice.

Schema changes are numbered migrations applied at open (``schema_version``); a database newer
than this program is refused with a clear message instead of being misread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite

from central.progress.clock import Clamp
from central.progress.counts import CountRecord
from central.progress.timeline import StateInterval
from central.store.base import Loaded, Retention, StoreError
from central.store.records import (
    DeadLetter,
    Delivery,
    EpochRow,
    GapRow,
    GatewayRow,
    Transaction,
    status_from_json,
    status_to_json,
)
from central.store.schema import MIGRATIONS, check_site, statements
from central.store.sqlite_alerts import AlertReads, write_alerts
from central.store.sqlite_extras import ExtraReads, write_extras
from central.store.sqlite_orders import COUNT_INSERT, OrderReads, count_values, write_orders
from plantpulse.protocol.models import MachineState
from plantpulse.protocol.sequencer import Gap

log = logging.getLogger(__name__)


class SqliteStore(OrderReads, ExtraReads, AlertReads):
    def __init__(self, db: aiosqlite.Connection, path: Path, site: str) -> None:
        self._db = db
        self.path = path
        self.site = site  # every row this store reads or writes is this site's (schema.py, migration 9)
        self._lock = asyncio.Lock()  # one transaction at a time on the one connection
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """Why the store file can no longer be trusted, or None: a few system calls, cheap enough each second.

        SQLite would go on writing into a deleted file (the open descriptor keeps it alive) and
        lose everything at the next start; a read-only file system fails only at the next write,
        which may be long after the last confirmation. Checked from the outside instead.
        """
        path = self.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return f"the store file {path} was deleted while central ran: restore it or restart central"
        except OSError as exc:
            return f"the store file {path} cannot be read ({exc.strerror})"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"the store file {path} was replaced by another file while central ran: restart central"
        try:
            read_only_fs = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
        except OSError:
            read_only_fs = False
        if read_only_fs:
            return f"the file system of the store {path} is mounted read-only: remount it read-write"
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            return (f"the store {path} (or its folder) is not writable: check its permissions "
                    "and immutable flag (lsattr)")
        return None

    @classmethod
    async def open(cls, path: Path, site: str) -> SqliteStore:
        check_site(site)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            await _migrate(db, path, site)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, site)

    async def close(self) -> None:
        await self._db.close()

    # ----------------------------------------------------------------- write
    async def commit(self, tx: Transaction) -> None:
        """Write one ingest round atomically and durably."""
        if tx.empty():
            return
        async with self._lock:
            await self._commit(tx)

    async def _commit(self, tx: Transaction) -> None:
        db, site = self._db, self.site
        try:
            await db.execute("BEGIN IMMEDIATE")
            if tx.messages:
                await db.executemany(
                    "INSERT INTO messages (site, received_at, topic, edge_id, payload) VALUES (?, ?, ?, ?, ?)",
                    [(site, m.received_at, m.topic, m.edge_id, m.payload) for m in tx.messages],
                )
            if tx.counts:
                await db.executemany(COUNT_INSERT, count_values(site, tx.counts))
            for iv in tx.removed_intervals:
                await db.execute(
                    "DELETE FROM intervals WHERE id = (SELECT id FROM intervals WHERE site = ? AND machine_id = ? "
                    "AND start = ? AND end = ? AND state = ? LIMIT 1)",
                    (site, iv.machine_id, iv.start, iv.end, iv.state.value),
                )
            if tx.intervals:
                await db.executemany(
                    "INSERT INTO intervals (site, machine_id, start, end, state, fault_code, job, reason, uncertain, "
                    "repeats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(site, i.machine_id, i.start, i.end, i.state.value, i.fault_code, i.job, i.reason,
                      int(i.uncertain), json.dumps(i.repeats) if i.repeats else None)
                     for i in tx.intervals],
                )
            if tx.statuses:
                await db.executemany(
                    "INSERT INTO machine_status VALUES (?, ?, ?) "
                    "ON CONFLICT (site, machine_id) DO UPDATE SET data = excluded.data",
                    [(site, mid, status_to_json(s)) for mid, s in tx.statuses.items()],
                )
            if tx.epochs:
                await db.executemany(
                    "INSERT INTO epochs VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, edge_id, epoch) DO UPDATE SET "
                    "settled = excluded.settled, current = excluded.current",
                    [(site, e.edge_id, e.epoch, json.dumps(e.settled), int(e.current)) for e in tx.epochs.values()],
                )
            if tx.gateways:
                await db.executemany(
                    "INSERT INTO gateways VALUES (?, ?, ?) ON CONFLICT (site, edge_id) DO UPDATE SET "
                    "data = excluded.data",
                    [(site, g.edge_id, g.to_json()) for g in tx.gateways.values()],
                )
            if tx.gaps:
                await db.executemany(
                    "INSERT INTO gaps (site, edge_id, epoch, first, last, reason, count, start_ts, end_ts, "
                    "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(site, g.gap.edge_id, g.gap.epoch, g.gap.first, g.gap.last, g.gap.reason, g.gap.count,
                      g.gap.start_ts, g.gap.end_ts, g.recorded_at) for g in tx.gaps],
                )
            await write_alerts(db, site, tx)
            if tx.dead_letters:
                await db.executemany(
                    "INSERT INTO dead_letters (site, received_at, topic, payload, reason) VALUES (?, ?, ?, ?, ?)",
                    [(site, d.received_at, d.topic, d.payload, d.reason) for d in tx.dead_letters],
                )
            if tx.orders is not None:
                await write_orders(db, site, tx.orders)
            if tx.extras is not None:
                await write_extras(db, site, tx.extras)
            await db.execute("COMMIT")
        except BaseException:
            await rollback(db)
            raise

    async def purge(self, now: float, retention: Retention) -> dict[str, int]:
        """Delete what is older than the retention periods; returns rows deleted per table."""
        async with self._lock:  # never inside another coroutine's open transaction
            return await self._purge(now, retention)

    async def _purge(self, now: float, retention: Retention) -> dict[str, int]:
        day = 86_400.0
        deleted: dict[str, int] = {}
        for table, column, days in (
            ("messages", "received_at", retention.events_days),
            ("dead_letters", "received_at", retention.dead_letters_days),
            ("intervals", "end", retention.history_days),
            ("counts", "at", retention.history_days),
            ("gaps", "recorded_at", retention.history_days),
            ("notifications", "created_at", retention.history_days),
        ):
            cur = await self._db.execute(f"DELETE FROM {table} WHERE site = ? AND {column} < ?",  # noqa: S608 - fixed names above
                                         (self.site, now - days * day))
            deleted[table] = cur.rowcount
        return deleted

    # ----------------------------------------------------------------- read
    async def load(self) -> Loaded:
        site = (self.site,)
        statuses = {
            mid: status_from_json(data)
            async for mid, data in await self._db.execute(
                "SELECT machine_id, data FROM machine_status WHERE site = ?", site)
        }
        epochs = [
            EpochRow(edge, epoch, [(int(a), int(b)) for a, b in json.loads(settled)], bool(current))
            async for edge, epoch, settled, current in await self._db.execute(
                "SELECT edge_id, epoch, settled, current FROM epochs WHERE site = ?", site
            )
        ]
        gateways = {
            edge: GatewayRow.from_json(data)
            async for edge, data in await self._db.execute("SELECT edge_id, data FROM gateways WHERE site = ?", site)
        }
        dead = await self._scalar("SELECT count(*) FROM dead_letters WHERE site = ?", site)
        gaps = await self._scalar("SELECT count(*) FROM gaps WHERE site = ?", site)
        return Loaded(statuses, epochs, gateways, dead, gaps)

    async def _scalar(self, sql: str, params: tuple[object, ...] = ()) -> int:
        async with self._db.execute(sql, params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def intervals(self, machine_id: str, start: float, end: float) -> list[StateInterval]:
        """Closed intervals of a machine overlapping ``[start, end)``, by start."""
        rows = await self._db.execute_fetchall(
            "SELECT machine_id, state, start, end, fault_code, job, reason, uncertain, repeats FROM intervals "
            "WHERE site = ? AND machine_id = ? AND end >= ? AND start < ? ORDER BY start, id",
            (self.site, machine_id, start, end),
        )
        return _intervals(rows)

    async def intervals_between(self, start: float, end: float) -> list[StateInterval]:
        """Closed intervals of every machine starting in ``[start, end)`` (for backfills)."""
        rows = await self._db.execute_fetchall(
            "SELECT machine_id, state, start, end, fault_code, job, reason, uncertain, repeats FROM intervals "
            "WHERE site = ? AND start >= ? AND start < ? ORDER BY start, id",
            (self.site, start, end),
        )
        return _intervals(rows)

    async def intervals_from(self, machine_id: str, at: float, limit: int = 4) -> list[StateInterval]:
        """The first few stored intervals ending after ``at`` (the one containing it first), by start."""
        rows = await self._db.execute_fetchall(
            "SELECT machine_id, state, start, end, fault_code, job, reason, uncertain, repeats FROM intervals "
            "WHERE site = ? AND machine_id = ? AND end > ? ORDER BY start, id LIMIT ?",
            (self.site, machine_id, at, limit),
        )
        return _intervals(rows)

    async def counts(self, machine_id: str | None, start: float, end: float) -> list[CountRecord]:
        where, params = ("machine_id = ? AND ", (machine_id,)) if machine_id else ("", ())
        sql = (
            "SELECT machine_id, start, at, good, scrap, job, reset, possibly_lost, rebased, clamp, implausible, "  # noqa: S608 - fixed text
            f"job_from FROM counts WHERE site = ? AND {where}at >= ? AND at < ? ORDER BY at"
        )
        rows = await self._db.execute_fetchall(sql, (self.site, *params, start, end))
        return [
            CountRecord(m, a, b, g, s, job, bool(r), bool(p), bool(rb), Clamp(c) if c else None, bool(imp), jf)
            for m, a, b, g, s, job, r, p, rb, c, imp, jf in rows
        ]

    async def gaps(self, edge_id: str | None = None, limit: int = 100, offset: int = 0) -> list[GapRow]:
        where, params = ("AND edge_id = ? ", (edge_id,)) if edge_id else ("", ())
        sql = (
            "SELECT id, edge_id, epoch, first, last, reason, count, start_ts, end_ts, recorded_at FROM gaps "  # noqa: S608 - fixed text
            f"WHERE site = ? {where}ORDER BY id DESC LIMIT ? OFFSET ?"
        )
        rows = await self._db.execute_fetchall(sql, (self.site, *params, limit, offset))
        return [
            GapRow(Gap(edge, epoch, first, last, reason, start_ts, end_ts, count), recorded, gid)
            for gid, edge, epoch, first, last, reason, count, start_ts, end_ts, recorded in rows
        ]

    async def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        rows = await self._db.execute_fetchall(
            "SELECT id, received_at, topic, payload, reason FROM dead_letters WHERE site = ? "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (self.site, limit, offset),
        )
        return [DeadLetter(r, t, bytes(p), reason, i) for i, r, t, p, reason in rows]

    # ----------------------------------------------------------------- the notification queue
    async def update_deliveries(self, done: list[Delivery]) -> None:
        """Record delivery attempts: a transaction of its own (the SQL of the queue is in ``sqlite_alerts``)."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                await self._db.executemany(
                    "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, sent_at = ?, last_error = ? "
                    "WHERE site = ? AND notification_id = ? AND target = ?",
                    [(d.status, d.attempts, d.next_at, d.sent_at, d.last_error, self.site, d.notification_id, d.target)
                     for d in done],
                )
                await self._db.execute("COMMIT")
            except BaseException:
                await rollback(self._db)
                raise


async def _migrate(db: aiosqlite.Connection, path: Path, site: str) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT max(version) FROM schema_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > len(MIGRATIONS):
        raise StoreError(
            f"{path} has schema version {current}, newer than this plantpulse knows ({len(MIGRATIONS)}): "
            "run a newer plantpulse or restore a backup"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        try:
            await db.execute("BEGIN IMMEDIATE")
            for statement in statements(version, "sqlite", site):
                await db.execute(statement)
            await db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            await db.execute("COMMIT")
        except BaseException:
            await rollback(db)
            raise
        log.info("store %s migrated to schema version %d", path, version)


def _intervals(rows: object) -> list[StateInterval]:
    return [
        StateInterval(m, MachineState(s), a, b, fc, job, reason, bool(u),
                      repeats=tuple(json.loads(rep)) if rep else ())
        for m, s, a, b, fc, job, reason, u, rep in rows  # type: ignore[attr-defined]
    ]


async def rollback(db: aiosqlite.Connection) -> None:
    """Undo what a failed or cancelled transaction left open, and let the original error through.

    aiosqlite runs statements in its own thread, in order: a cancellation stops the await, not the
    statement, so the BEGIN or COMMIT being awaited may still run. The ROLLBACK is queued behind it
    either way; when the COMMIT went through there is nothing to undo, and SQLite's "no transaction is
    active" must not replace the cancellation (the sender's task once died of it at a shutdown).
    """
    with contextlib.suppress(sqlite3.OperationalError):
        await db.execute("ROLLBACK")
