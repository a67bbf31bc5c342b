"""The SQLite store's part for work orders (issue 13): writes inside ``commit``, and the order reads.

Split from ``sqlite.py`` (one concept per module, and that one is full): ``write_orders`` runs inside
the store's open transaction; ``OrderReads`` is mixed into ``SqliteStore``. The SQL is portable on
purpose (the PostgreSQL store runs the same statements with its own placeholders): no
``INSERT OR ...``, no boolean sums, no reserved column names.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import aiosqlite

from central.progress.assignment import Tally, Timeline
from central.progress.clock import Clamp
from central.progress.counts import CountRecord
from central.progress.orders import Audit, OpKey, Plan
from central.progress.reports import Report
from central.store.order_records import (
    AttributedCount,
    LoadedOrders,
    OrderWrites,
    assignment_from_row,
    assignment_row,
    audit_from_row,
    audit_to_json,
    operation_from_json,
    operation_to_json,
    order_from_json,
    order_to_json,
    report_from_row,
    report_row,
)

COUNT_INSERT = (
    "INSERT INTO counts (site, edge_id, epoch, seq, machine_id, job, start, at, good, scrap, reset, possibly_lost, "
    "rebased, clamp, implausible, job_from, order_id, op_seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, edge_id, epoch, seq) DO NOTHING"
)


async def write_orders(db: aiosqlite.Connection, site: str, w: OrderWrites) -> None:
    """Write one transaction's order effects for ``site`` (the caller holds the transaction open)."""
    if w.orders:
        await db.executemany(
            "INSERT INTO orders (site, id, status, due, priority, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, id) DO UPDATE SET status = excluded.status, due = excluded.due, "
            "priority = excluded.priority, data = excluded.data",
            [(site, o.id, o.status.value, o.due, o.priority, o.created_at, order_to_json(o))
             for o in w.orders.values()],
        )
    if w.operations:
        await db.executemany(
            "INSERT INTO operations (site, order_id, seq, queue, status, data) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, order_id, seq) DO UPDATE SET queue = excluded.queue, status = excluded.status, "
            "data = excluded.data",
            [(site, op.order_id, op.seq, op.queue, op.status.value, operation_to_json(op))
             for op in w.operations.values()],
        )
    for queue, keys in w.dispatch.items():
        await db.execute("DELETE FROM dispatch WHERE site = ? AND queue = ?", (site, queue))
        await db.executemany("INSERT INTO dispatch (site, queue, position, order_id, seq) VALUES (?, ?, ?, ?, ?)",
                             [(site, queue, i, k[0], k[1]) for i, k in enumerate(keys)])
    for machine_id, write in w.assignments.items():
        await db.execute(
            "DELETE FROM assignments WHERE site = ? AND machine_id = ? AND (end_at IS NULL OR end_at >= ?)",
            (site, machine_id, write.since))
        await db.executemany(
            "INSERT INTO assignments (site, machine_id, start_at, end_at, order_id, seq, started_by, ended_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(site, *assignment_row(a)) for a in write.segments],
        )
    if w.recounted:
        await db.executemany(
            "UPDATE counts SET order_id = ?, op_seq = ? WHERE site = ? AND edge_id = ? AND epoch = ? AND seq = ?",
            [(r.op[0] if r.op else None, r.op[1] if r.op else None, site, r.edge_id, r.epoch, r.seq)
             for r in w.recounted],
        )
    if w.reports:
        await db.executemany(
            "INSERT INTO reports (site, client_id, order_id, seq, operator, kind, good, scrap, at, correction, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, client_id) DO NOTHING",
            [(site, *report_row(r)) for r in w.reports],
        )
    if w.audit:
        await db.executemany(
            "INSERT INTO audit (site, id, at, actor, action, order_id, seq, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(site, uuid.uuid4().hex, a.at, a.by, a.action, a.order_id, a.seq, audit_to_json(a)) for a in w.audit],
        )


def count_values(site: str, rows: Any) -> list[tuple[object, ...]]:
    """The counts table's row for each ``CountRow`` (``op``: its operation, or unassigned)."""
    return [(site, c.edge_id, c.epoch, c.seq, r.machine_id, r.job, r.start, r.at, r.good, r.scrap, int(r.reset),
             int(r.possibly_lost), int(r.rebased), r.clamp.value if r.clamp else None, int(r.implausible),
             r.job_from, c.op[0] if c.op else None, c.op[1] if c.op else None)
            for c in rows for r in (c.record,)]


def _record(row: Any) -> CountRecord:
    m, a, b, g, s, job, r, p, rb, c, imp, jf = row
    return CountRecord(m, a, b, g, s, job, bool(r), bool(p), bool(rb), Clamp(c) if c else None, bool(imp), jf)


_RECORD = "machine_id, start, at, good, scrap, job, reset, possibly_lost, rebased, clamp, implausible, job_from"


class OrderReads:
    """The order reads of the SQLite store (mixed into ``SqliteStore``, which owns ``_db``)."""

    _db: aiosqlite.Connection
    site: str

    async def load_orders(self) -> LoadedOrders:
        db, site = self._db, (self.site,)
        orders = {oid: order_from_json(data) for oid, data in await db.execute_fetchall(
            "SELECT id, data FROM orders WHERE site = ?", site)}
        operations = {(op.order_id, op.seq): op for op in (operation_from_json(data) for (data,) in
                                                            await db.execute_fetchall(
                                                                "SELECT data FROM operations WHERE site = ?", site))}
        dispatch: dict[str, list[OpKey]] = {}
        for queue, order_id, seq in await db.execute_fetchall(
                "SELECT queue, order_id, seq FROM dispatch WHERE site = ? ORDER BY queue, position", site):
            dispatch.setdefault(queue, []).append((order_id, int(seq)))
        book: dict[str, list[Any]] = {}
        for row in await db.execute_fetchall(
                "SELECT machine_id, start_at, end_at, order_id, seq, started_by, ended_by FROM assignments "
                "WHERE site = ? ORDER BY machine_id, start_at", site):
            book.setdefault(row[0], []).append(assignment_from_row(row))
        tallies = {
            (order_id, int(seq)): Tally(int(g), int(s), int(n), int(sp))
            for order_id, seq, g, s, n, sp in await db.execute_fetchall(
                "SELECT order_id, op_seq, sum(good), sum(scrap), count(*), "
                "sum(CASE WHEN job_from IS NULL THEN 0 ELSE 1 END) FROM counts WHERE site = ? AND order_id IS NOT NULL "
                "GROUP BY order_id, op_seq", site)
        }
        reports = {cid: report_from_row(data, at, corr) for cid, data, at, corr in await db.execute_fetchall(
            "SELECT client_id, data, at, correction FROM reports WHERE site = ?", site)}
        unassigned: dict[str, Tally] = {}
        if orders:
            since = min(o.created_at for o in orders.values())
            unassigned = {m: Tally(int(g), int(s), int(n)) for m, g, s, n in await db.execute_fetchall(
                "SELECT machine_id, sum(good), sum(scrap), count(*) FROM counts WHERE site = ? AND order_id IS NULL "
                "AND at >= ? GROUP BY machine_id", (self.site, since))}
        timelines: dict[str, Timeline] = {m: tuple(segs) for m, segs in book.items()}
        return LoadedOrders(Plan(orders, operations, {q: tuple(k) for q, k in dispatch.items()}), timelines,
                            tallies, reports, unassigned)

    async def audit_trail(self, *, order_id: str | None = None, since: float | None = None,
                          until: float | None = None, limit: int = 100, offset: int = 0) -> list[Audit]:
        """Audit rows, newest first."""
        where: list[str] = ["site = ?"]
        params: list[object] = [self.site]
        for clause, value in (("order_id = ?", order_id), ("at >= ?", since), ("at < ?", until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (f"SELECT at, actor, action, order_id, seq, data FROM audit WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
               "ORDER BY at DESC, id LIMIT ? OFFSET ?")
        rows = await self._db.execute_fetchall(sql, (*params, limit, offset))
        return [audit_from_row(*row) for row in rows]

    async def attributed_counts(self, machine_id: str, since: float, until: float | None = None
                                ) -> list[AttributedCount]:
        """A machine's counts with ``at`` at or after ``since`` (and before ``until``) and their operation, by time."""
        rows = await self._db.execute_fetchall(
            f"SELECT edge_id, epoch, seq, order_id, op_seq, {_RECORD} FROM counts "  # noqa: S608 - fixed text
            "WHERE site = ? AND machine_id = ? AND at >= ? AND at < ? ORDER BY at, edge_id, epoch, seq",
            (self.site, machine_id, since, math.inf if until is None else until))
        return [AttributedCount(e, ep, int(sq), _record(rest), (o, int(s)) if o is not None else None)
                for e, ep, sq, o, s, *rest in rows]

    async def unassigned_counts(self, machine_id: str | None, start: float, end: float,
                                limit: int = 1000) -> list[AttributedCount]:
        """Counts no operation ran for (by time), in ``[start, end)``, optionally of one machine."""
        where, params = ("machine_id = ? AND ", (machine_id,)) if machine_id else ("", ())
        rows = await self._db.execute_fetchall(
            f"SELECT edge_id, epoch, seq, order_id, op_seq, {_RECORD} FROM counts "  # noqa: S608 - fixed text
            f"WHERE site = ? AND {where}order_id IS NULL AND at >= ? AND at < ? ORDER BY at LIMIT ?",
            (self.site, *params, start, end, limit))
        return [AttributedCount(e, ep, int(sq), _record(rest), None) for e, ep, sq, _o, _s, *rest in rows]

    async def op_counts(self, key: OpKey) -> list[CountRecord]:
        """The machine counts attributed to one operation, by time."""
        rows = await self._db.execute_fetchall(
            f"SELECT {_RECORD} FROM counts WHERE site = ? AND order_id = ? AND op_seq = ? ORDER BY at",  # noqa: S608
            (self.site, *key))
        return [_record(row) for row in rows]

    async def reports_between(self, start: float, end: float, order_id: str | None = None) -> list[Report]:
        where, params = ("order_id = ? AND ", (order_id,)) if order_id else ("", ())
        rows = await self._db.execute_fetchall(
            f"SELECT data, at, correction FROM reports WHERE site = ? AND {where}at >= ? AND at < ? ORDER BY at",  # noqa: S608
            (self.site, *params, start, end))
        return [report_from_row(*row) for row in rows]
