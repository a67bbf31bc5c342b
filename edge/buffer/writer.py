"""One write round of the outbox: confirmations, bounds, new events, in one SQLite transaction.

The outbox's writer task collects every emit and confirmation that arrived since the last
commit and hands them to ``write_round`` (group commit: one fsync for all of them). Inside one
``BEGIN IMMEDIATE ... COMMIT`` it

1. deletes confirmed events and forgets dropped ranges the consumer has settled,
2. when the new events would exceed a bound: coalesces, then drops the oldest (``bounds.py``),
3. assigns seqs, inserts the events, upserts each machine's memory, saves the totals row.

Everything changes a copy of ``OutboxState``; the caller swaps it in after the commit. A full
disk (SQLITE_FULL) rolls the round back; ``drop_for_disk`` then frees room in a transaction of
its own and the caller retries the round.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiosqlite

from edge.buffer.bounds import Bounds, DropPlan, DropPlanner, DropRow, Run
from edge.buffer.records import StoredEvent, decode, encode, row_bytes, with_seq
from edge.buffer.schema import ROW_SIZE_SQL
from edge.buffer.state import OutboxState
from plantpulse.protocol.models import CountEvent, DroppedRange

log = logging.getLogger(__name__)

CHUNK = 5000  # rows read at a time while coalescing or dropping
DISK_FULL_SHARE = 0.1  # a full disk drops this share of the held events before retrying


@dataclass(frozen=True)
class Prepared:
    """An event encoded at emit time; its seq is assigned in the round."""

    machine_id: str
    kind: str
    start: float
    ts: float
    body: bytes


class NeedsLockError(Exception):
    """The round must coalesce or drop, which needs the outbox's read lock: retry holding it."""


@dataclass
class RoundResult:
    stored: list[StoredEvent] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)  # per confirmation, in order
    settled: list[tuple[int, int]] = field(default_factory=list)  # every confirmed range
    reshaped: bool = False  # rows were merged or dropped: the live tail is stale
    coalesced: int = 0
    drops: list[DropPlan] = field(default_factory=list)


async def write_round(
    conn: aiosqlite.Connection,
    st: OutboxState,
    emits: Sequence[tuple[Sequence[Prepared], str, str]],  # (events, machine id, memory JSON)
    confirms: Sequence[Sequence[tuple[int, int]]],
    bounds: Bounds,
    handed: Callable[[], int],
    *,
    may_reshape: bool,
) -> RoundResult:
    """Run one round on ``conn`` and commit it; ``st`` is updated in place (pass a copy).

    Coalescing and dropping rewrite rows the publisher may be reading, so they run only when
    the caller holds the outbox's lock (``may_reshape``); otherwise ``NeedsLockError``.
    """
    out = RoundResult()
    await conn.execute("BEGIN IMMEDIATE")
    try:
        for ranges in confirms:
            out.deleted.append(await _confirm(conn, st, ranges))
            out.settled.extend(ranges)
        if confirms:
            await _forget_settled_drops(conn, st)
            st.coalescer.heads = {m: run for m, run in st.coalescer.heads.items() if run.seq not in st.settled}

        t = st.totals
        seq = t.last_seq
        rows: list[tuple[int, str, str, float, float, bytes]] = []
        new_bytes = 0
        for events, _machine, _memory in emits:
            for p in events:
                seq += 1
                payload = with_seq(seq, p.kind, p.body)
                rows.append((seq, p.machine_id, p.kind, p.start, p.ts, payload))
                new_bytes += row_bytes(len(payload), p.machine_id)
        if bounds.over(t.events + len(rows), t.bytes + new_bytes):
            await _make_room(conn, st, len(rows), new_bytes, bounds, handed, may_reshape, out)

        if rows:
            await conn.executemany(
                "INSERT INTO events (seq, machine_id, kind, start, ts, cover, payload) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                rows,
            )
            if st.oldest is None:
                st.oldest = (rows[0][0], rows[0][4])
        if emits:
            await conn.executemany(
                "INSERT INTO memory (machine_id, data) VALUES (?, ?)"
                " ON CONFLICT (machine_id) DO UPDATE SET data = excluded.data",
                [(machine, memory) for _events, machine, memory in emits],
            )
        t.last_seq = seq
        t.events += len(rows)
        t.bytes += new_bytes
        await save_totals(conn, st)
        await conn.execute("COMMIT")
    except BaseException:
        await rollback(conn)
        raise
    st.prune_settled()
    out.stored = [StoredEvent(r[0], r[4], r[1], r[2], r[5]) for r in rows]
    return out


async def _make_room(
    conn: aiosqlite.Connection, st: OutboxState, new_events: int, new_bytes: int, bounds: Bounds,
    handed: Callable[[], int], may_reshape: bool, out: RoundResult,
) -> None:
    """The new events would exceed a bound: coalesce, then drop the oldest if still needed."""
    if not may_reshape:
        raise NeedsLockError
    t = st.totals
    low_events, low_bytes = bounds.low_water()
    out.coalesced = await _coalesce(conn, st, handed(), low_events - new_events, low_bytes - new_bytes)
    out.reshaped = True
    if bounds.over(t.events + new_events, t.bytes + new_bytes):
        excess_events, excess_bytes = bounds.excess(t.events + new_events, t.bytes + new_bytes)
        plan = await drop_oldest(conn, st, excess_events, excess_bytes, "buffer_full")
        if plan is not None:
            out.drops.append(plan)


async def drop_for_disk(conn: aiosqlite.Connection, st: OutboxState) -> DropPlan | None:
    """The disk is full: drop the oldest ``DISK_FULL_SHARE`` of the held events (at least one)."""
    if st.totals.events == 0:
        return None
    await conn.execute("BEGIN IMMEDIATE")
    try:
        plan = await drop_oldest(conn, st, max(1, math.ceil(st.totals.events * DISK_FULL_SHARE)), 0, "disk_full")
        await save_totals(conn, st)
        await conn.execute("COMMIT")
    except BaseException:
        await rollback(conn)
        raise
    return plan


async def rollback(conn: aiosqlite.Connection) -> None:
    if conn.in_transaction:
        await conn.execute("ROLLBACK")


async def save_totals(conn: aiosqlite.Connection, st: OutboxState) -> None:
    t = st.totals
    await conn.execute(
        "UPDATE outbox SET last_seq = ?, events = ?, bytes = ?, coalesced_total = ?, dropped_total = ? WHERE id = 1",
        (t.last_seq, t.events, t.bytes, t.coalesced_total, t.dropped_total),
    )


async def oldest(conn: aiosqlite.Connection) -> tuple[int, float] | None:
    rows = list(await conn.execute_fetchall("SELECT seq, ts FROM events ORDER BY seq LIMIT 1"))
    return (int(rows[0][0]), float(rows[0][1])) if rows else None


async def _confirm(conn: aiosqlite.Connection, st: OutboxState, ranges: Sequence[tuple[int, int]]) -> int:
    deleted = 0
    for first, last in ranges:
        st.settled.add(first, last)
        (row,) = await conn.execute_fetchall(
            f"SELECT count(*), total({ROW_SIZE_SQL}) FROM events WHERE seq BETWEEN ? AND ?",  # noqa: S608 - a constant
            (first, last),
        )
        count = int(row[0])
        if count:
            await conn.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, last))
            st.totals.events -= count
            st.totals.bytes -= int(row[1])
            deleted += count
            if st.oldest is not None and first <= st.oldest[0] <= last:
                st.oldest = await oldest(conn)
    return deleted


async def _forget_settled_drops(conn: aiosqlite.Connection, st: OutboxState) -> None:
    """A dropped range the consumer has settled (recorded as a gap) is no longer reported."""
    keep: list[DroppedRange] = []
    for d in st.dropped:
        if st.settled.contiguous_from(d.first) >= d.last:
            await conn.execute("DELETE FROM dropped WHERE first = ?", (d.first,))
        else:
            keep.append(d)
    st.dropped = keep


async def _coalesce(
    conn: aiosqlite.Connection, st: OutboxState, handed: int, enough_events: int, enough_bytes: int
) -> int:
    """Merge count runs among the events never handed out; returns how many were absorbed.

    Stops once the held events and bytes are down to ``enough_*`` (the low-water mark minus
    the new events), so one pass over a week of backlog is spread over several rounds; the
    next pass continues where this one stopped (``coalesced_upto``, and the open runs).
    """
    co = st.coalescer
    co.forget_upto(handed)
    after = max(handed, st.coalesced_upto)
    absorbed = 0
    while st.totals.events > enough_events or st.totals.bytes > enough_bytes:
        rows = list(
            await conn.execute_fetchall(
                "SELECT seq, machine_id, kind, length(payload), payload FROM events WHERE seq > ?"
                " ORDER BY seq LIMIT ?",
                (after, CHUNK),
            )
        )
        if not rows:
            break
        touched: dict[int, Run] = {}
        deletes: list[tuple[int]] = []
        for seq, machine, kind, length, payload in rows:
            if kind != "count":
                co.state(machine)
                continue
            event = decode(payload)
            assert isinstance(event, CountEvent)
            size = row_bytes(length, machine)
            run = co.count(event, size)
            if run is None:
                continue
            touched[run.seq] = run
            deletes.append((seq,))
            st.totals.bytes -= size
            st.totals.events -= 1
            absorbed += 1
        after = int(rows[-1][0])
        updates = []
        for run in touched.values():
            merged = run.event()
            payload = encode(run.seq, merged)
            size = row_bytes(len(payload), run.machine_id)
            st.totals.bytes += size - run.size
            run.size = size
            updates.append((merged.ts, merged.absorbed[-1], payload, run.seq))
        if updates:
            await conn.executemany("UPDATE events SET ts = ?, cover = ?, payload = ? WHERE seq = ?", updates)
        if deletes:
            await conn.executemany("DELETE FROM events WHERE seq = ?", deletes)
    st.coalesced_upto = after
    st.totals.coalesced_total += absorbed
    if absorbed:
        st.oldest = await oldest(conn)  # a merged event keeps its seq but takes a later ts
    return absorbed


async def drop_oldest(
    conn: aiosqlite.Connection, st: OutboxState, excess_events: int, excess_bytes: int, reason: str
) -> DropPlan | None:
    """Drop the oldest events (at least the excess) and record the range; memory is never dropped."""
    planner = DropPlanner(excess_events, excess_bytes)
    after = 0
    wanting = True
    while wanting:
        rows = list(
            await conn.execute_fetchall(
                f"SELECT seq, start, ts, coalesce(cover, seq), {ROW_SIZE_SQL} FROM events WHERE seq > ?"  # noqa: S608 - a constant
                " ORDER BY seq LIMIT ?",
                (after, CHUNK),
            )
        )
        if not rows:
            break
        for r in rows:
            if not planner.wants(DropRow(int(r[0]), float(r[1]), float(r[2]), int(r[3]), int(r[4]))):
                wanting = False
                break
        after = int(rows[-1][0])
    plan = planner.plan()
    if plan is None:
        return None
    await conn.execute("DELETE FROM events WHERE seq <= ?", (plan.last,))
    t = st.totals
    t.events -= plan.count
    t.bytes -= plan.nbytes
    t.dropped_total += plan.count
    await _record_drop(conn, st, plan, reason)
    st.coalescer.forget_upto(plan.last)
    st.oldest = await oldest(conn)
    log.warning(
        "outbox %s: dropped %d events (seq %d..%d, edge time %.3f..%.3f); the consumer records a gap",
        reason.replace("_", " "), plan.count, plan.first, plan.last, plan.start_ts, plan.end_ts,
    )
    return plan


async def _record_drop(conn: aiosqlite.Connection, st: OutboxState, plan: DropPlan, reason: str) -> None:
    """Persist the dropped range, extending the previous one when they touch."""
    prev = st.dropped[-1] if st.dropped else None
    if prev is not None and prev.last + 1 == plan.first and prev.reason == reason:
        merged = prev.model_copy(
            update={"last": plan.last, "count": prev.count + plan.count, "end_ts": plan.end_ts}
        )
        st.dropped[-1] = merged
        await conn.execute(
            "UPDATE dropped SET last = ?, count = ?, end_ts = ? WHERE first = ?",
            (merged.last, merged.count, merged.end_ts, merged.first),
        )
        return
    new = DroppedRange(
        epoch=st.totals.epoch, first=plan.first, last=plan.last, count=plan.count,
        start_ts=plan.start_ts, end_ts=plan.end_ts, reason=reason,
    )
    st.dropped.append(new)
    await conn.execute(
        "INSERT INTO dropped (first, last, count, start_ts, end_ts, reason) VALUES (?, ?, ?, ?, ?, ?)",
        (new.first, new.last, new.count, new.start_ts, new.end_ts, new.reason),
    )
