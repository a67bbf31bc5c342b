"""The outbox database: tables, connection settings, and the one row of outbox state.

One SQLite file per gateway, in WAL mode with ``synchronous=FULL``: a commit returns only when
it is on disk, so an event is never published before it is durable (with ``NORMAL`` a power
loss can roll back events that were already published and then reuse their seqs).

Tables:

* ``events``: held (unconfirmed) events by seq, with the stored wire payload and the columns
  that dropping and coalescing need without parsing it. ``cover`` is the highest seq a merged
  event absorbed (NULL for an ordinary event; a partial index finds merged events whose
  absorbed seqs reach into a replayed range).
* ``memory``: each machine's ``MachineMemory`` (last raw counters), written in the same
  transaction as its events, never dropped.
* ``dropped``: dropped ranges not yet settled by the consumer (reported in health and birth).
* ``outbox``: one row: the epoch (a UUID made with the file), the last seq ever assigned
  (so seqs never go back, even when every event was deleted), and running totals, so that
  opening a week of backlog does not scan it.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from edge.buffer.errors import OutboxError
from edge.buffer.records import ROW_OVERHEAD

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    machine_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    start REAL NOT NULL,
    ts REAL NOT NULL,
    cover INTEGER,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_cover ON events (cover) WHERE cover IS NOT NULL;
CREATE TABLE IF NOT EXISTS memory (
    machine_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped (
    first INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    count INTEGER NOT NULL,
    start_ts REAL,
    end_ts REAL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    epoch TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seq INTEGER NOT NULL,
    events INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    coalesced_total INTEGER NOT NULL,
    dropped_total INTEGER NOT NULL
);
"""

ROW_SIZE_SQL = f"(length(payload) + length(machine_id) + {ROW_OVERHEAD})"
"""The SQL twin of ``records.row_bytes``."""


@dataclass
class Totals:
    """The ``outbox`` row: what survives a restart besides the tables themselves."""

    epoch: str
    created_at: float
    last_seq: int
    events: int
    bytes: int
    coalesced_total: int
    dropped_total: int


def is_disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL: the disk, or the ``max_page_count`` cap, has no room for the write."""
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


async def connect(path: Path, *, writer: bool, max_pages: int | None = None) -> aiosqlite.Connection:
    """Open one connection with the outbox's settings (the writer also creates the schema)."""
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise OutboxError(
            f"cannot open the outbox database {path}: {exc}; check that its directory exists and is writable"
        ) from exc
    try:
        await conn.execute("PRAGMA busy_timeout = 10000")
        mode = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
        await conn.execute("PRAGMA synchronous = FULL")
        if writer and max_pages is not None:
            await conn.execute(f"PRAGMA max_page_count = {int(max_pages)}")
        if not writer:
            await conn.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as exc:
        await conn.close()
        raise OutboxError(
            f"{path} is not a usable outbox database ({exc}); move it away to start a new outbox (a new epoch)"
        ) from exc
    except BaseException:
        await conn.close()
        raise
    if not mode or str(mode[0][0]).lower() != "wal":
        await conn.close()
        raise OutboxError(f"the outbox database {path} cannot use WAL mode (got {mode}); put it on a local disk")
    return conn


async def init(conn: aiosqlite.Connection, path: Path, now: float) -> Totals:
    """Create the tables and the epoch when the file is new (one transaction); read the outbox row."""
    try:
        await conn.execute("BEGIN IMMEDIATE")
        for statement in DDL.split(";"):
            if statement.strip():
                await conn.execute(statement)
        await conn.execute(
            "INSERT OR IGNORE INTO outbox (id, schema_version, epoch, created_at, last_seq, events, bytes,"
            " coalesced_total, dropped_total) VALUES (1, ?, ?, ?, 0, 0, 0, 0, 0)",
            (SCHEMA_VERSION, str(uuid.uuid4()), now),
        )
        await conn.execute("COMMIT")
        rows = list(
            await conn.execute_fetchall(
                "SELECT schema_version, epoch, created_at, last_seq, events, bytes, coalesced_total, dropped_total"
                " FROM outbox WHERE id = 1"
            )
        )
    except sqlite3.Error as exc:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise OutboxError(
            f"cannot initialise the outbox database {path}: {exc}; if it is not an outbox, move it away"
        ) from exc
    row = rows[0] if rows else None
    if row is None:  # pragma: no cover - the INSERT above guarantees it
        raise OutboxError(f"the outbox database {path} has no outbox row")
    version = int(row[0])
    if version != SCHEMA_VERSION:
        raise OutboxError(
            f"the outbox database {path} has schema version {version}, this gateway reads {SCHEMA_VERSION}:"
            " run the gateway version that wrote it until it is drained, or move the file away (new epoch)"
        )
    return Totals(
        epoch=str(row[1]), created_at=float(row[2]), last_seq=int(row[3]), events=int(row[4]),
        bytes=int(row[5]), coalesced_total=int(row[6]), dropped_total=int(row[7]),
    )
