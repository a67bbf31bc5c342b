"""One migration history for both stores: from an empty database and from every earlier version, once
under concurrent starts, refusing a newer database; the released SQLite text never changes."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from central.progress.status import MachineStatus
from central.store.base import StoreError
from central.store.postgres import PostgresStore, migrate
from central.store.records import status_to_json
from central.store.schema import MIGRATIONS, render, statements
from central.store.sqlite import SqliteStore

# sha256 of the SQLite text of each released migration: a released migration is never edited
RELEASED = [
    "6a867abf8b1bba4e91eab30f40f3eb59decbf27e024fbe4f197f315223e24384",
    "0634ddf604eb45dfbe954504e246812b6e5cc73ac87d406c5ca16c0002bf4a9e",
    "ba57dd5ec4cffb6518473670962ca553e5ff9562d7d73becf1f383530b690cec",
    "35c5e8abae5a98b35b13ccad2df5d52e2626dcaf06a89004fe6e96038eb85347",
    "6fe3819f9096f90427176fb38abccb44d1306b889ae3984abb488ce24f8f0e5c",
    "1d64fde5aaa28061eb4c6eec687c803d946a5b7a2397c3624ac24195a5b4376e",
    "cec195acaf6f7753cbb6e0907bbb62944a59892e342954a9d02fdc5398a45859",
    "b8855378c97db506a10df12c777d16e990fb51100059ca6687884fde901d36b6",
    "9a017f547a15955891bc090b758c46469763e70ec947f3d2eef5174a4b81c32a",
]
LATEST = len(MIGRATIONS)


def test_released_migrations_render_to_their_released_sqlite_text() -> None:
    for text, digest in zip(MIGRATIONS, RELEASED, strict=False):
        assert hashlib.sha256(render(text, "sqlite").encode()).hexdigest() == digest
    for version in range(1, LATEST + 1):
        for dialect in ("sqlite", "postgresql"):
            assert "{" not in "".join(statements(version, dialect))  # type: ignore[arg-type]


def test_an_unknown_dialect_token_is_said_at_once() -> None:
    with pytest.raises(KeyError, match="unknown dialect token"):
        render("CREATE TABLE t (x {bool})", "postgresql")


def _sqlite_at(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for v in range(1, version + 1):
        for s in statements(v, "sqlite"):
            db.execute(s)
        db.execute("INSERT INTO schema_version VALUES (?)", (v,))
    db.commit()
    db.close()


@pytest.mark.parametrize("start", range(LATEST + 1))
async def test_sqlite_migrates_up_from_every_version(tmp_path: Path, start: int) -> None:
    path = tmp_path / "c.sqlite"
    if start:
        _sqlite_at(path, start)
    store = await SqliteStore.open(path, "s")
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT max(version), count(*) FROM schema_version").fetchone() == (LATEST, LATEST)
    db.close()


@pytest.mark.parametrize("start", range(LATEST + 1))
async def test_postgresql_migrates_up_from_every_version(pg_dsn: str, start: int) -> None:
    con = await asyncpg.connect(pg_dsn)
    try:
        assert await migrate(con, "s", upto=start) == start
        if start:  # a row written at the old version survives the later migrations
            site = ("site, ", "'s', ") if start >= 9 else ("", "")
            await con.execute(f"INSERT INTO gateways ({site[0]}edge_id, data) "  # noqa: S608 - fixed text
                              f"VALUES ({site[1]}'gw1', '{{\"edge_id\": \"gw1\", \"site\": \"s\"}}')")
    finally:
        await con.close()
    store = await PostgresStore.open(pg_dsn, "s")
    try:
        assert await store.pool.fetchval("SELECT max(version) FROM schema_version") == LATEST
        assert await store.pool.fetchval("SELECT count(*) FROM schema_version") == LATEST
        assert set((await store.load()).gateways) == ({"gw1"} if start else set())
    finally:
        await store.close()


async def test_postgresql_processes_starting_together_migrate_once(pg_dsn: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(pg_dsn, "s", pool_size=1) for _ in range(4)))
    try:
        assert await stores[0].pool.fetchval("SELECT count(*) FROM schema_version") == LATEST
    finally:
        for store in stores:
            await store.close()


async def test_a_newer_database_is_refused_saying_what_to_do(pg_dsn: str, tmp_path: Path) -> None:
    store = await PostgresStore.open(pg_dsn, "s")
    await store.pool.execute("INSERT INTO schema_version VALUES ($1)", LATEST + 1)
    await store.close()
    with pytest.raises(StoreError, match="newer than this plantpulse knows"):
        await PostgresStore.open(pg_dsn, "s")
    path = tmp_path / "c.sqlite"
    _sqlite_at(path, LATEST)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (?)", (LATEST + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this plantpulse knows"):
        await SqliteStore.open(path, "s")


async def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/none", "s")


# one row in every table at version 8 (the last before the site keys), columns in table order
ROWS_AT_8 = {
    "gateways": "'gw1', '{\"edge_id\": \"gw1\", \"site\": \"suzhou-1\"}'",
    "epochs": "'gw1', 'e1', '[]', 1",
    "machine_status": f"'m1', '{status_to_json(MachineStatus('m1'))}'",
    "intervals": "{id}, 'm1', 1.0, 2.0, 'running', NULL, NULL, NULL, 0, NULL",
    "counts": "'gw1', 'e1', 1, 'm1', 'J1', 1.0, 2.0, 1, 0, 0, 0, 0, NULL, 0, NULL, 'SO-1', 10",
    "messages": "{id}, 1.0, 't', 'gw1', 'x'",
    "gaps": "{id}, 'gw1', 'e1', 1, 2, 'lost', NULL, NULL, NULL, 1.0",
    "dead_letters": "{id}, 1.0, 't', 'x', 'bad'",
    "alerts": "'a1', 'fault', 'm1', 'open', 1, 0, 'critical', 1.0, 1.0, '{}'",
    "notifications": "'n1', 'a1', 1.0, '{}', 10",
    "deliveries": "'n1', 'mqtt', 'plant', 'pending', 0, 1.0, NULL, NULL",
    "orders": "'SO-1', 'open', 9.0, 0, 1.0, '{}'",
    "operations": "'SO-1', 10, 'm1', 'queued', '{}'",
    "dispatch": "'m1', 0, 'SO-1', 10",
    "assignments": "'m1', 1.0, NULL, 'SO-1', 10, 'job', NULL",
    "reports": "'c1', 'SO-1', 10, 'op1', 'good', 1, 0, 1.0, 0, '{}'",
    "audit": "'u1', 1.0, 'planner', 'create', 'SO-1', NULL, '{}'",
    "stop_reasons": "'c2', 'm1', 1.0, NULL, 'material', 'op1', 1.0, '{}'",
    "shift_summaries": "'x1', NULL, 'day', 1.0, 2.0, 2.0, '{}'",
    "repair_etas": "'m1', 5.0, 'maint', 1.0, NULL",
    "gateway_leases": "'gw1', 'plant', NULL, 0, 0",
    "workers": "'w1', 1.0, 1.0",
}


async def _rows_per_site(fetch: Callable[[str], Awaitable[list[tuple[object, ...]]]]) -> dict[str, dict[object, int]]:
    return {t: {site: int(n) for site, n in await fetch(f"SELECT site, count(*) FROM {t} GROUP BY site")}  # noqa: S608
            for t in ROWS_AT_8}


async def test_sqlite_rows_written_before_the_site_keys_become_the_migrating_sites(tmp_path: Path) -> None:
    """Migration 9 rebuilds the keyed tables: every row kept, each now the migrating central's site's (a lease
    keeps its gateway's own site); the store of another site sharing the file sees none of them."""
    path = tmp_path / "c.sqlite"
    _sqlite_at(path, 8)
    db = sqlite3.connect(path)
    for table, values in ROWS_AT_8.items():
        db.execute(f"INSERT INTO {table} VALUES ({values.replace('{id}', 'NULL')})")  # noqa: S608 - fixed text
    db.commit()
    db.close()
    store = await SqliteStore.open(path, "suzhou-1")
    try:
        loaded = await store.load()
        assert set(loaded.gateways) == {"gw1"} and set(loaded.statuses) == {"m1"} and len(loaded.epochs) == 1
    finally:
        await store.close()
    db = sqlite3.connect(path)
    per_site = await _rows_per_site(lambda sql: _fetch_sqlite(db, sql))
    db.close()
    expected = {t: {"suzhou-1": 1} for t in ROWS_AT_8} | {"gateway_leases": {"plant": 1}}
    assert per_site == expected
    other = await SqliteStore.open(path, "ningbo-2")
    try:
        loaded = await other.load()
        assert (loaded.gateways, loaded.statuses, loaded.epochs, loaded.dead_letters, loaded.gaps) == ({}, {}, [], 0, 0)
        assert await other.counts(None, 0, 10) == [] and await other.active_alerts() == []
    finally:
        await other.close()


async def _fetch_sqlite(db: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return db.execute(sql).fetchall()


async def test_postgresql_rows_written_before_the_site_keys_become_the_migrating_sites(pg_dsn: str) -> None:
    con = await asyncpg.connect(pg_dsn)
    try:
        await migrate(con, "x", upto=8)
        for table, values in ROWS_AT_8.items():
            await con.execute(f"INSERT INTO {table} VALUES ({values.replace('{id}', 'DEFAULT')})")  # noqa: S608
    finally:
        await con.close()
    store = await PostgresStore.open(pg_dsn, "suzhou-1")
    try:
        async def fetch(sql: str) -> list[tuple[object, ...]]:
            return [tuple(r) for r in await store.pool.fetch(sql)]

        per_site = await _rows_per_site(fetch)
        assert per_site == {t: {"suzhou-1": 1} for t in ROWS_AT_8} | {"gateway_leases": {"plant": 1}}
        # the numbered tables go on numbering after the rows kept
        await store.pool.execute("INSERT INTO intervals (site, machine_id, start, \"end\", state, uncertain) "
                                 "VALUES ('suzhou-1', 'm1', 2.0, 3.0, 'idle', 0)")
        assert await store.pool.fetchval("SELECT max(id) FROM intervals") == 2
    finally:
        await store.close()
