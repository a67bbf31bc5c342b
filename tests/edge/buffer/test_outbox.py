"""The outbox on real SQLite files: epoch, seqs, memory, batches, confirmation, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from edge.buffer import Outbox, OutboxClosedError, OutboxError
from edge.sink import EventSink
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent
from tests.edge.buffer.conftest import OpenOutbox
from tests.edge.buffer.helpers import T0, audit, count, memory, state, wipe


async def test_a_new_file_gets_an_epoch_that_survives_reopening(open_outbox: OpenOutbox, tmp_path: Path) -> None:
    first = await open_outbox()
    epoch = first.epoch
    assert len(epoch) == 36 and first.stats().latest_seq == 0
    await first.close()
    assert (await open_outbox()).epoch == epoch


async def test_a_deleted_outbox_starts_a_new_epoch_and_a_replaced_file_brings_its_own(
    open_outbox: OpenOutbox, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.db"
    old = await open_outbox(path)
    await old.emit([count("m", 1)], memory("m", 1))
    await old.close()
    wipe(path)
    new = await open_outbox(path)
    assert new.epoch != old.epoch
    await new.emit([count("m", 2)], memory("m", 2))
    assert [e.seq for e in await new.next_batch(0, 10)] == [1]  # a new epoch starts at seq 1
    other = await open_outbox(tmp_path / "other.db")
    assert other.epoch not in (old.epoch, new.epoch)


async def test_seqs_increase_and_never_go_back_even_when_everything_was_confirmed(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox()
    await ob.emit([state("m", 0), count("m", 1), count("m", 2)], memory("m", 2))
    await ob.emit([count("n", 1)], memory("n", 1))
    batch = await ob.next_batch(0, 10)
    assert [(e.seq, e.machine_id, e.kind) for e in batch] == [(1, "m", "state"), (2, "m", "count"),
                                                              (3, "m", "count"), (4, "n", "count")]
    assert await ob.confirm([(1, 4)]) == 4
    assert ob.stats().events == 0 and ob.stats().confirmed_seq == 4
    await ob.close()
    ob = await open_outbox()
    assert ob.stats().latest_seq == 4 and ob.stats().confirmed_seq == 4
    await ob.emit([count("m", 3)], memory("m", 3))
    assert [e.seq for e in await ob.next_batch(0, 10)] == [5]


async def test_the_memory_is_stored_with_the_events_and_loaded_back(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox()
    assert await ob.load_memory() == {}
    await ob.emit([count("m", 1)], memory("m", 1, good_raw=10))
    await ob.emit([], memory("n", 5, good_raw=3))  # a memory alone (nothing to report) is stored too
    await ob.emit([count("m", 2)], memory("m", 2, good_raw=11))
    await ob.close()
    ob = await open_outbox()
    assert await ob.load_memory() == {"m": memory("m", 2, good_raw=11), "n": memory("n", 5, good_raw=3)}


async def test_an_emit_carries_one_machine(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox()
    with pytest.raises(ValueError, match="one machine"):
        await ob.emit([count("m", 1), count("n", 1)], memory("m", 1))


async def test_payloads_are_the_wire_events_with_their_seq(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox()
    s = StateEvent(machine_id="m", ts=T0, state=MachineState.FAULT, fault_code=7, job="J1", raw=3)
    c = count("m", 1, 4, scrap=2)
    await ob.emit([s, c], memory("m", 1))
    got = await ob.next_batch(0, 10)
    assert [e.event() for e in got] == [s.model_copy(update={"seq": 1}), c.model_copy(update={"seq": 2})]
    assert [(e.ts, e.machine_id, e.kind) for e in got] == [(T0, "m", "state"), (T0 + 1, "m", "count")]


async def test_backlog_and_live_tail_give_the_same_batches(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox(tail_capacity=50)
    for k in range(200):
        await ob.emit([count(f"m{k % 3}", k)], memory(f"m{k % 3}", k))
    await ob.confirm([(20, 29), (101, 101)])
    from_memory: list[int] = []
    after = 0
    while batch := await ob.next_batch(after, 7):
        from_memory += [e.seq for e in batch]
        after = batch[-1].seq
    await ob.close()
    reopened = await open_outbox()  # a fresh tail: every batch comes from SQLite
    from_sqlite: list[int] = []
    after = 0
    while batch := await reopened.next_batch(after, 7):
        from_sqlite += [e.seq for e in batch]
        after = batch[-1].seq
    expected = [s for s in range(1, 201) if not (20 <= s <= 29 or s == 101)]
    assert from_memory == from_sqlite == expected
    assert [e.seq for e in await reopened.get_range(18, 31)] == [18, 19, 30, 31]


async def test_selective_confirmation_deletes_exactly_the_confirmed_seqs(open_outbox: OpenOutbox,
                                                                        tmp_path: Path) -> None:
    ob = await open_outbox()
    for k in range(10):
        await ob.emit([count("m", k)], memory("m", k))
    assert await ob.confirm([(4, 6), (9, 9)]) == 4
    s = ob.stats()
    assert (s.events, s.oldest_seq, s.confirmed_seq) == (6, 1, 0)
    assert await ob.confirm([(1, 3), (5, 6)]) == 3  # 5 and 6 are already gone
    s = ob.stats()
    assert (s.events, s.oldest_seq, s.oldest_ts, s.confirmed_seq) == (3, 7, T0 + 6, 6)
    assert await ob.confirm([(8, 1000)]) == 2  # seqs above the latest are ignored
    assert await ob.confirm([(11, 20)]) == 0
    assert [e.seq for e in await ob.next_batch(0, 10)] == [7]
    a = audit(tmp_path / "outbox.db")
    assert a.totals["events"] == 1 and list(a.held) == [7]
    with pytest.raises(ValueError, match="empty"):
        await ob.confirm([(5, 4)])


async def test_stats_track_the_oldest_event_and_its_age_on_the_given_clock(open_outbox: OpenOutbox) -> None:
    now = [T0 + 100]
    ob = await open_outbox(clock=lambda: now[0])
    await ob.emit([count("m", 10), count("m", 20)], memory("m", 20))
    s = ob.stats()
    assert (s.oldest_seq, s.oldest_ts, s.oldest_age, s.latest_seq) == (1, T0 + 10, 90.0, 2)
    assert s.bytes > 2 * 80
    now[0] += 50
    assert ob.stats().oldest_age == 140.0


async def test_concurrent_emits_share_commits(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox(commit_interval=0.05)

    async def machine(i: int) -> None:
        for k in range(20):
            await ob.emit([count(f"m{i}", k)], memory(f"m{i}", k))

    await asyncio.gather(*(machine(i) for i in range(50)))
    assert ob.stats().latest_seq == 1000
    assert ob.commits < 200, f"{ob.commits} commits for 1000 emits of 50 concurrent machines"
    per_machine: dict[str, list[int]] = {}
    for e in await ob.next_batch(0, 2000):
        per_machine.setdefault(e.machine_id, []).append(e.seq)
    assert all(s == sorted(s) and len(s) == 20 for s in per_machine.values())


async def test_a_lone_emit_is_not_held_for_companions(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox(commit_interval=1.0)
    started = time.monotonic()
    for k in range(5):  # each round carried one emit: the next one has no companion to wait for
        await ob.emit([count("m", k)], memory("m", k))
    assert time.monotonic() - started < 4.0, "lone emits waited for companions (5 x 1 s)"


async def test_wait_for_new_returns_once_a_later_seq_is_committed(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox()
    await ob.emit([count("m", 1)], memory("m", 1))
    await asyncio.wait_for(ob.wait_for_new(0), timeout=5)  # already there
    waiter = asyncio.create_task(ob.wait_for_new(1))
    await asyncio.sleep(0)
    assert not waiter.done()
    await ob.emit([count("m", 2)], memory("m", 2))
    await asyncio.wait_for(waiter, timeout=30)
    closing = asyncio.create_task(ob.wait_for_new(2))
    await ob.close()
    with pytest.raises(OutboxClosedError):
        await asyncio.wait_for(closing, timeout=30)


async def test_close_commits_what_is_queued_and_later_calls_fail(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox()
    pending = [asyncio.create_task(ob.emit([count("m", k)], memory("m", k))) for k in range(5)]
    await asyncio.sleep(0)  # one loop step: each task queues its emit (no time passes)
    await ob.close()
    await asyncio.gather(*pending)
    with pytest.raises(OutboxClosedError):
        await ob.emit([count("m", 9)], memory("m", 9))
    with pytest.raises(OutboxClosedError):
        await ob.next_batch(0, 10)
    await ob.close()  # idempotent
    reopened = await open_outbox()
    assert reopened.stats().latest_seq == 5


async def test_unusable_files_are_reported_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="directory exists"):
        await Outbox.open(tmp_path / "missing" / "outbox.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match="move it away"):
        await Outbox.open(junk)
    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as con:
        con.execute("CREATE TABLE outbox (id INTEGER)")
    with pytest.raises(OutboxError, match="move it away"):
        await Outbox.open(foreign)
    with pytest.raises(ValueError, match="positive"):
        await Outbox.open(tmp_path / "x.db", max_events=0)


async def test_count_events_keep_their_parts_through_a_restart(open_outbox: OpenOutbox, tmp_path: Path) -> None:
    ob = await open_outbox()
    for k in range(30):
        await ob.emit([count("m", k, good=k % 4, scrap=1)], memory("m", k))
    await ob.close()
    a = audit(tmp_path / "outbox.db")
    assert a.good() == sum(k % 4 for k in range(30))
    assert all(isinstance(e, CountEvent) for e in a.held.values())


async def test_the_outbox_is_an_event_sink(open_outbox: OpenOutbox) -> None:
    sink: EventSink = await open_outbox()  # mypy checks the interface; the calls check the behaviour
    await sink.emit([count("m", 1)], memory("m", 1, good_raw=4))
    assert await sink.load_memory() == {"m": memory("m", 1, good_raw=4)}
