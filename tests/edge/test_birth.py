"""The birth counter: increases across restarts and across a replaced disk (real files)."""

from __future__ import annotations

from pathlib import Path

from edge.gateway import BirthCounter


def test_birth_counter_increases_across_restarts_and_a_replaced_disk(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    first = BirthCounter(tmp_path / "birth", lambda: now[0])
    a = first.next()
    b = first.next()  # same millisecond: still increases
    assert b == a + 1
    again = BirthCounter(tmp_path / "birth", lambda: now[0])  # restarted process, same disk
    assert again.value == b and again.next() > b
    (tmp_path / "birth").unlink()  # the disk was replaced: the file is gone
    now[0] += 5.0
    fresh = BirthCounter(tmp_path / "birth", lambda: now[0])
    assert fresh.next() > again.value  # a later birth never looks stale
    now[0] -= 3600  # the clock stepped back an hour: the file keeps it increasing
    before = fresh.value
    assert fresh.next() == before + 1
