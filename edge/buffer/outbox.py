"""The durable outbox: every event stays in SQLite until the consumer confirms it.

``emit`` (called by the collectors through the ``EventSink`` interface) queues a machine's
events and memory and returns once the transaction that stored them is durable. One writer
task commits whatever is queued in one transaction (group commit): a gateway with fifty
machines pays one fsync for many emits, not one each, which is what makes
``synchronous=FULL`` affordable on an SD card. ``commit_interval`` bounds how long the writer
waits for companions: after a round that carried N emits it waits (at most that long) until
N emits are queued again, so concurrent emitters travel together and a lone emit is not held.

The publisher reads with ``next_batch`` (the live tail from memory, a backlog from SQLite
through a second, read-only connection) and ``get_range`` (replays), and deletes with
``confirm`` what the consumer settled. The outbox remembers the highest seq it ever handed
out: only events above it may be coalesced when the outbox is full, because an event the
consumer may already have must never change. Coalescing and dropping take a lock that the
readers also take, so a batch is never read while its rows are being rewritten.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from edge.buffer import schema
from edge.buffer.bounds import Bounds
from edge.buffer.errors import OutboxClosedError, OutboxError, OutboxFullError
from edge.buffer.records import OutboxStats, StoredEvent, encode_body
from edge.buffer.state import OutboxState
from edge.buffer.tail import LiveTail
from edge.buffer.writer import NeedsLockError, Prepared, RoundResult, drop_for_disk, oldest, write_round
from edge.tracker import MachineMemory
from plantpulse.protocol.models import CountEvent, DroppedRange, Event
from plantpulse.protocol.ranges import RangeSet

log = logging.getLogger(__name__)

TAIL_CAPACITY = 10_000  # recent events kept in memory for next_batch
_AFTER = "SELECT seq, ts, machine_id, kind, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
_RANGE = (  # the range, and merged events below it whose absorbed seqs reach into it
    "SELECT seq, ts, machine_id, kind, payload FROM events WHERE seq BETWEEN ?1 AND ?2"
    " UNION ALL SELECT seq, ts, machine_id, kind, payload FROM events INDEXED BY events_cover"
    " WHERE cover >= ?1 AND seq < ?1"
    " ORDER BY seq"
)


@dataclass
class _Emit:
    events: list[Prepared]
    machine_id: str
    memory: str
    future: asyncio.Future[None]


@dataclass
class _Confirm:
    ranges: list[tuple[int, int]]
    future: asyncio.Future[int]


class Outbox:
    """A gateway's durable event store; implements ``edge.sink.EventSink``. Use ``Outbox.open``."""

    def __init__(
        self, path: Path, db: aiosqlite.Connection, reader: aiosqlite.Connection, st: OutboxState,
        bounds: Bounds, commit_interval: float, clock: Callable[[], float], tail_capacity: int,
    ) -> None:
        self.path = path
        self.epoch = st.totals.epoch
        self.bounds = bounds
        self.commit_interval = commit_interval
        self._db = db
        self._reader = reader
        self._st = st
        self._clock = clock
        self._handed = st.totals.last_seq  # after a restart, everything in the file counts as handed out
        self._tail = LiveTail(tail_capacity, st.totals.last_seq + 1)
        self._lock = asyncio.Lock()  # held by readers, and by rounds that coalesce or drop
        self._emits: list[_Emit] = []
        self._confirms: list[_Confirm] = []
        self._wake = asyncio.Event()  # something is queued (or closing)
        self._enough = asyncio.Event()  # as many emits queued as the linger waits for
        self._linger_target = 0
        self._last_round_emits = 0
        self._new = asyncio.Event()  # replaced after every commit that stored events
        self._closing = False
        self._closed = False
        self.commits = 0  # write transactions committed (group commits), for metrics
        self._writer = asyncio.create_task(self._run_writer(), name=f"outbox-writer:{path.name}")

    # ----------------------------------------------------------------- life cycle
    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        max_events: int = 2_500_000,
        max_bytes: int = 1_500_000_000,
        commit_interval: float = 0.02,
        clock: Callable[[], float] = time.time,
        max_pages: int | None = None,
        tail_capacity: int = TAIL_CAPACITY,
    ) -> Outbox:
        """Open (or create, with a new epoch) the outbox database at ``path``.

        ``max_pages`` caps the file with SQLite's ``max_page_count`` (pages of 4 KiB): reaching
        it is handled like a full disk (oldest events dropped with reason ``disk_full``).
        """
        if max_events < 1 or max_bytes < 1:
            raise ValueError(f"outbox bounds must be positive (max_events={max_events}, max_bytes={max_bytes})")
        if not 0 <= commit_interval <= 1:
            raise ValueError(f"commit_interval is seconds between 0 and 1, got {commit_interval}")
        path = Path(path)
        db = await schema.connect(path, writer=True, max_pages=max_pages)
        try:
            totals = await schema.init(db, path, clock())
            rows = await db.execute_fetchall(
                "SELECT first, last, count, start_ts, end_ts, reason FROM dropped ORDER BY first"
            )
            dropped = [
                DroppedRange(epoch=totals.epoch, first=r[0], last=r[1], count=r[2], start_ts=r[3], end_ts=r[4],
                             reason=r[5])
                for r in rows
            ]
            st = OutboxState(totals=totals, oldest=await oldest(db), dropped=dropped,
                             coalesced_upto=totals.last_seq)
            reader = await schema.connect(path, writer=False)
        except BaseException:
            await db.close()
            raise
        return cls(path, db, reader, st, Bounds(max_events, max_bytes), commit_interval, clock, tail_capacity)

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close the database (idempotent)."""
        if not self._closing:
            self._closing = True
            self._wake.set()
            self._enough.set()
        try:
            await asyncio.shield(self._writer)
        finally:
            if not self._closed:
                self._closed = True
                await self._reader.close()
                await self._db.close()
                self._signal_new()

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closing:
            raise OutboxClosedError(f"the outbox {self.path} is closed")

    # ----------------------------------------------------------------- EventSink
    async def load_memory(self) -> dict[str, MachineMemory]:
        self._check_open()
        rows = await self._reader.execute_fetchall("SELECT machine_id, data FROM memory")
        return {str(r[0]): MachineMemory.model_validate_json(r[1]) for r in rows}

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        """Store one machine's events and memory in one transaction; return once it is durable.

        A caller cancelled while waiting may still find its events stored (they were queued).
        """
        self._check_open()
        prepared: list[Prepared] = []
        for e in events:
            if e.machine_id != memory.machine_id:
                raise ValueError(
                    f"an emit carries one machine's events: event of {e.machine_id!r} with memory of"
                    f" {memory.machine_id!r}"
                )
            start = e.start if isinstance(e, CountEvent) else e.ts
            prepared.append(Prepared(e.machine_id, e.kind, start, e.ts, encode_body(e)))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._emits.append(_Emit(prepared, memory.machine_id, memory.model_dump_json(), future))
        if self._linger_target and len(self._emits) >= self._linger_target:
            self._enough.set()
        self._wake.set()
        await future

    # ----------------------------------------------------------------- publisher side
    async def next_batch(self, after_seq: int, limit: int) -> list[StoredEvent]:
        """Committed events with seq > ``after_seq``, ascending, at most ``limit``."""
        self._check_open()
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        async with self._lock:
            events = self._tail.after(after_seq, limit)
            if events is None:
                events = await self._select(_AFTER, (after_seq, limit))
            if events:
                self._handed = max(self._handed, events[-1].seq)
            return events

    async def get_range(self, first: int, last: int) -> list[StoredEvent]:
        """The held events for a replay of ``first..last``, ascending.

        Besides the events in the range, a merged event with a lower seq whose absorbed seqs
        reach into the range is returned too: a consumer that missed a seq that was absorbed
        gets the event that carries it.
        """
        self._check_open()
        async with self._lock:
            events = self._tail.range(first, last)
            if events is None:
                events = await self._select(_RANGE, (first, last))
            if events:
                self._handed = max(self._handed, events[-1].seq)
            return events

    async def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        """The consumer settled these seqs: delete the held events in them; returns how many.

        Settled means applied, or (for a dropped range) recorded as a data gap: a dropped range
        that lies fully inside settled seqs is no longer reported. Seqs above the latest one
        are ignored (they cannot have been settled).
        """
        self._check_open()
        latest = self._st.totals.last_seq
        wanted = RangeSet()
        for first, last in ranges:
            if last < first:
                raise ValueError(f"confirmed range {first}..{last} is empty (last < first)")
            first, last = max(first, 1), min(last, latest)
            if first <= last:
                wanted.add(first, last)
        if not wanted:
            return 0
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._confirms.append(_Confirm(wanted.ranges(), future))
        self._wake.set()
        return await future

    def stats(self) -> OutboxStats:
        return self._st.stats(self._clock())

    @property
    def dropped(self) -> list[DroppedRange]:
        """Dropped ranges the consumer has not settled yet (for health and the birth message)."""
        return list(self._st.dropped)

    async def wait_for_new(self, after_seq: int) -> None:
        """Return once an event with seq > ``after_seq`` is committed."""
        while self._st.totals.last_seq <= after_seq:
            self._check_open()
            await self._new.wait()

    async def _select(self, sql: str, params: tuple[int, int]) -> list[StoredEvent]:
        rows = await self._reader.execute_fetchall(sql, params)
        return [StoredEvent(int(r[0]), float(r[1]), str(r[2]), str(r[3]), bytes(r[4])) for r in rows]

    def _signal_new(self) -> None:
        self._new.set()
        self._new = asyncio.Event()

    # ----------------------------------------------------------------- the writer
    async def _run_writer(self) -> None:
        try:
            while True:
                if not self._emits and not self._confirms:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._linger()
                self._wake.clear()
                emits, self._emits = self._emits, []
                confirms, self._confirms = self._confirms, []
                self._last_round_emits = len(emits)
                try:
                    await self._round(emits, confirms)
                except Exception as exc:  # a bug must fail the callers, not hang them
                    log.exception("outbox write round failed")
                    _fail(emits, confirms, OutboxError(f"outbox write failed: {exc!r}"))
        finally:
            _fail(self._emits, self._confirms, OutboxClosedError(f"the outbox {self.path} is closed"))
            self._emits, self._confirms = [], []

    async def _linger(self) -> None:
        """Wait (at most ``commit_interval``) until as many emits are queued as last round."""
        target = self._last_round_emits
        if self._closing or len(self._emits) >= target or self.commit_interval <= 0:
            return
        self._enough.clear()
        self._linger_target = target
        try:
            async with asyncio.timeout(self.commit_interval):
                await self._enough.wait()
        except TimeoutError:
            pass
        finally:
            self._linger_target = 0

    async def _round(self, emits: list[_Emit], confirms: list[_Confirm]) -> None:
        batches = [(e.events, e.machine_id, e.memory) for e in emits]
        ranges = [c.ranges for c in confirms]
        locked = False
        try:
            while True:
                work = self._st.copy()
                try:
                    result = await write_round(
                        self._db, work, batches, ranges, self.bounds, lambda: self._handed, may_reshape=locked
                    )
                except NeedsLockError:
                    await self._lock.acquire()
                    locked = True
                    continue
                except sqlite3.Error as exc:
                    if not schema.is_disk_full(exc):
                        raise OutboxError(f"cannot write to the outbox {self.path}: {exc}") from exc
                    if not locked:
                        await self._lock.acquire()
                        locked = True
                    if not await self._free_disk():
                        _fail(emits, confirms, OutboxFullError(
                            f"the disk holding {self.path} is full and the outbox holds nothing more to drop:"
                            " free space on it (or raise max_pages)"
                        ))
                        return
                    continue
                self._apply(work, result, emits, confirms)
                return
        except OutboxError as exc:
            _fail(emits, confirms, exc)
        finally:
            if locked:
                self._lock.release()

    async def _free_disk(self) -> bool:
        """SQLITE_FULL: drop the oldest events in a transaction of their own; False if nothing left."""
        work = self._st.copy()
        try:
            plan = await drop_for_disk(self._db, work)
        except sqlite3.Error as exc:
            if schema.is_disk_full(exc):
                return False
            raise OutboxError(f"cannot drop events from the full outbox {self.path}: {exc}") from exc
        if plan is None:
            return False
        self._st = work
        self._tail.reset(work.totals.last_seq + 1)
        return True

    def _apply(self, work: OutboxState, result: RoundResult, emits: list[_Emit], confirms: list[_Confirm]) -> None:
        self._st = work
        self.commits += 1
        if result.reshaped:
            self._tail.reset(work.totals.last_seq - len(result.stored) + 1)
            if result.coalesced:
                log.info("outbox full: coalesced %d count events", result.coalesced)
        if result.settled:
            self._tail.discard(result.settled)
        if result.stored:
            self._tail.extend(result.stored)
            self._signal_new()
        for e in emits:
            if not e.future.done():
                e.future.set_result(None)
        for c, deleted in zip(confirms, result.deleted, strict=True):
            if not c.future.done():
                c.future.set_result(deleted)


def _fail(emits: Iterable[_Emit], confirms: Iterable[_Confirm], exc: Exception) -> None:
    futures: list[asyncio.Future[Any]] = [e.future for e in emits]
    futures += [c.future for c in confirms]
    for f in futures:
        if not f.done():
            f.set_exception(exc)

