"""``central backup``: a consistent copy of the live SQLite store, taken while central runs.

Why SQLite's online backup API and not ``cp``: central commits a round every fraction of a
second into a WAL database; a file copy can catch the main file and the WAL at different
moments and give a database that is corrupt or silently misses rounds. The backup API copies
the pages of one read transaction, a snapshot of one instant; in WAL mode the reader blocks
no writer, so ingest goes on while it runs.

The whole database is copied in one step: stepping page by page would let every commit of
central (several a second) restart the copy from the beginning. The copy is written beside the
target, checked (``PRAGMA quick_check``, the schema version readable), flushed to disk, and only
then renamed to the target: a backup file that exists is a complete, checked one.
``sqlite3 central.sqlite "VACUUM INTO 'copy.sqlite'"`` is the equivalent with the sqlite3 tool
(docs/deployment.md, "Backups").
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    """The store could not be copied, or the copy did not check out; the message says which."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    schema_version: int
    seconds: float


def target_path(to: Path, now: float | None = None) -> Path:
    """``to`` itself, or ``to/central-YYYYmmdd-HHMMSS.sqlite`` when ``to`` is a folder."""
    if to.is_dir():
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
        return to / f"central-{stamp}.sqlite"
    return to


def backup(source: Path, to: Path) -> BackupResult:
    """Copy the store at ``source`` into ``to`` (a file, or a folder for a time-stamped name)."""
    started = time.monotonic()
    if not source.is_file():
        raise BackupError(f"{source}: no store there (check store.path in the configuration)")
    target = target_path(to)
    if target.exists():
        raise BackupError(f"{target} exists already: give a new name or a folder")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        # mode=rw: never create an empty database where the store should be
        src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # one step: a snapshot of one read transaction
                dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                version = dst.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        if check != "ok":
            raise BackupError(f"the copy of {source} does not check out ({check}); the store itself may be damaged")
        with partial.open("rb+") as fh:
            os.fsync(fh.fileno())
        partial.replace(target)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, int(version or 0), time.monotonic() - started)
