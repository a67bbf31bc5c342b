"""A full disk (SQLITE_FULL) drops the oldest events with reason ``disk_full``, never crashes.

Filling a real filesystem needs root tricks (a loop device, a tmpfs with a size), so these
tests cap the database with SQLite's ``PRAGMA max_page_count`` (``Outbox.open(max_pages=)``):
a write that needs one more page then fails with the real ``SQLITE_FULL`` error ("database
or disk is full"), the same error code and code path a full disk produces.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from edge.buffer import OutboxFullError
from tests.edge.buffer.conftest import OpenOutbox
from tests.edge.buffer.helpers import audit, count, memory, state

BIG = 10**12


def page_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as con:
        (pages,) = con.execute("PRAGMA page_count").fetchone()
        return int(pages)


async def test_a_full_disk_drops_the_oldest_and_keeps_storing(open_outbox: OpenOutbox, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ob = await open_outbox(path, max_events=BIG, max_bytes=BIG, max_pages=60)
    for k in range(1, 3001):
        await ob.emit([state("m", k, job=f"job-{k:05d}-" + "x" * 40), count("m", k)], memory("m", k, good_raw=k))
    s = ob.stats()
    assert s.latest_seq == 6000 and s.dropped_total > 0
    assert s.dropped and {d.reason for d in s.dropped} == {"disk_full"}
    assert page_count(path) <= 60
    a = audit(path)
    assert a.covered.ranges() == [(1, 6000)]  # every seq held or reported dropped
    assert a.memory["m"] == memory("m", 3000, good_raw=3000)
    assert max(a.held) == 6000  # the newest events are all there


async def test_nothing_left_to_drop_fails_the_emit_with_what_to_do_and_the_outbox_goes_on(
    open_outbox: OpenOutbox, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.db"
    ob = await open_outbox(path)
    await ob.close()
    ob = await open_outbox(path, max_pages=page_count(path) + 2)
    huge = [state("m", 1 + i / 1000, job="j" * 256) for i in range(200)]  # tens of pages: more than the cap leaves
    with pytest.raises(OutboxFullError, match="free space"):
        await ob.emit(huge, memory("m", 1))
    await ob.emit([count("m", 2)], memory("m", 2))
    assert [e.seq for e in await ob.next_batch(0, 10)] == [1]  # the failed emit used no seq
