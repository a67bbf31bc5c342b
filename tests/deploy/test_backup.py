"""Backups of the live SQLite store: ``central backup`` and the documented ``VACUUM INTO``, taken while a
writer commits round after round (as central does), give complete, checked, openable copies."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from central.store.config import StoreConfig
from central.store.open import open_store
from central.store.schema import MIGRATIONS
from tests.fixtures.procs import REPO
from tests.fixtures.waiting import wait_until


class Writer:
    """Commits one raw message per transaction into the store (WAL, synchronous=FULL) until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.committed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-writer")

    def _run(self) -> None:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous=FULL")
        try:
            while not self._stop.is_set():
                with db:
                    db.execute("INSERT INTO messages (received_at, topic, edge_id, payload) VALUES (?, ?, ?, ?)",
                               (float(self.committed), "plantpulse/v1/s/gw/events", "gw", b"x" * 512))
                self.committed += 1
        finally:
            db.close()

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """central's real store (schema by its migrations) with 20,000 messages already in it."""
    path = tmp_path / "central.sqlite"

    async def create() -> None:
        await (await open_store(StoreConfig(path=path), "s")).close()

    asyncio.run(create())
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO messages (received_at, topic, edge_id, payload) VALUES (?, 't', 'gw', ?)",
                       ((float(i), b"y" * 1024) for i in range(20_000)))
    return path


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def _checked(copy: Path, low: int, high: int) -> None:
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    assert low <= _rows(copy) <= high  # one instant's snapshot between the two counts

    async def reopen() -> None:  # central itself can start from the copy
        await (await open_store(StoreConfig(path=copy), "s")).close()

    asyncio.run(reopen())


def test_central_backup_copies_the_live_store(tmp_path: Path, store: Path) -> None:
    config = tmp_path / "central.yaml"
    config.write_text(yaml.safe_dump({"site": "s", "store": {"path": str(store)}}))
    folder = tmp_path / "backups"
    folder.mkdir()
    with Writer(store) as writer:
        wait_until(lambda: writer.committed > 100, 10, what="the writer committing")
        before = 20_000 + writer.committed
        done = subprocess.run([sys.executable, "-m", "central", "backup", "--config", str(config), "--to", str(folder)],
                              cwd=REPO, capture_output=True, timeout=120, check=False)
        after = 20_000 + writer.committed
    assert done.returncode == 0, done.stderr.decode()
    copies = list(folder.iterdir())
    assert len(copies) == 1 and copies[0].name.startswith("central-") and copies[0].suffix == ".sqlite"
    assert f"backup: {copies[0]}" in done.stdout.decode() and "checked" in done.stdout.decode()
    assert before <= after and writer.committed > 0
    _checked(copies[0], before, after)


def test_vacuum_into_as_documented(tmp_path: Path, store: Path) -> None:
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        pytest.skip("the sqlite3 tool is not installed (apt-get install sqlite3)")
    copy = tmp_path / "copy.sqlite"
    with Writer(store) as writer:
        wait_until(lambda: writer.committed > 100, 10, what="the writer committing")
        before = 20_000 + writer.committed
        subprocess.run([sqlite, str(store), f"VACUUM INTO '{copy}'"], check=True, timeout=120)
        after = 20_000 + writer.committed
    _checked(copy, before, after)


def test_backup_refuses_to_overwrite_or_to_invent_a_store(tmp_path: Path, store: Path) -> None:
    config = tmp_path / "central.yaml"
    existing = tmp_path / "existing.sqlite"
    existing.write_bytes(b"keep me")
    config.write_text(yaml.safe_dump({"site": "s", "store": {"path": str(store)}}))
    argv = [sys.executable, "-m", "central", "backup", "--config", str(config), "--to", str(existing)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=60, check=False)
    assert done.returncode == 1 and b"exists already" in done.stderr and existing.read_bytes() == b"keep me"
    config.write_text(yaml.safe_dump({"site": "s", "store": {"path": str(tmp_path / "nowhere.sqlite")}}))
    argv[-1] = str(tmp_path / "b.sqlite")
    done = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=60, check=False)
    assert done.returncode == 1 and b"no store there" in done.stderr
    assert not (tmp_path / "nowhere.sqlite").exists() and not (tmp_path / "b.sqlite").exists()
