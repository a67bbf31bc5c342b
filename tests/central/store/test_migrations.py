"""One migration history for both stores: from an empty database and from every earlier version, once
under concurrent starts, refusing a newer database; the released SQLite text never changes."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from central.store.base import StoreError
from central.store.postgres import PostgresStore, migrate
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
    store = await SqliteStore.open(path)
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT max(version), count(*) FROM schema_version").fetchone() == (LATEST, LATEST)
    db.close()


@pytest.mark.parametrize("start", range(LATEST + 1))
async def test_postgresql_migrates_up_from_every_version(pg_dsn: str, start: int) -> None:
    con = await asyncpg.connect(pg_dsn)
    try:
        assert await migrate(con, upto=start) == start
        if start:  # a row written at the old version survives the later migrations
            await con.execute("INSERT INTO gateways VALUES ('gw1', '{\"edge_id\": \"gw1\", \"site\": \"s\"}')")
    finally:
        await con.close()
    store = await PostgresStore.open(pg_dsn)
    try:
        assert await store.pool.fetchval("SELECT max(version) FROM schema_version") == LATEST
        assert await store.pool.fetchval("SELECT count(*) FROM schema_version") == LATEST
        assert set((await store.load()).gateways) == ({"gw1"} if start else set())
    finally:
        await store.close()


async def test_postgresql_processes_starting_together_migrate_once(pg_dsn: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(pg_dsn, pool_size=1) for _ in range(4)))
    try:
        assert await stores[0].pool.fetchval("SELECT count(*) FROM schema_version") == LATEST
    finally:
        for store in stores:
            await store.close()


async def test_a_newer_database_is_refused_saying_what_to_do(pg_dsn: str, tmp_path: Path) -> None:
    store = await PostgresStore.open(pg_dsn)
    await store.pool.execute("INSERT INTO schema_version VALUES ($1)", LATEST + 1)
    await store.close()
    with pytest.raises(StoreError, match="newer than this plantpulse knows"):
        await PostgresStore.open(pg_dsn)
    path = tmp_path / "c.sqlite"
    _sqlite_at(path, LATEST)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (?)", (LATEST + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this plantpulse knows"):
        await SqliteStore.open(path)


async def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/none")
