"""The SQLite store's part for stop reasons and shift summaries (issue 13); portable SQL, like sqlite_orders."""

from __future__ import annotations

import aiosqlite

from central.progress.stops import StopReason
from central.store.extra_records import (
    ExtraWrites,
    RepairEta,
    SummaryRow,
    stop_from_row,
    stop_row,
    summary_from_row,
    summary_row,
)

_SUMMARY = "id, line, shift, start_at, end_at, at, data"


async def write_extras(db: aiosqlite.Connection, site: str, w: ExtraWrites) -> None:
    """Write one transaction's extras for ``site`` (the caller holds the transaction open)."""
    if w.stops:
        await db.executemany(
            "INSERT INTO stop_reasons (site, client_id, machine_id, start_at, end_at, reason, operator, at, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, client_id) DO NOTHING",
            [(site, *stop_row(s)) for s in w.stops],
        )
    if w.summaries:
        await db.executemany(
            f"INSERT INTO shift_summaries (site, {_SUMMARY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - fixed text
            "ON CONFLICT (site, id) DO NOTHING",
            [(site, *summary_row(s)) for s in w.summaries],
        )
    if w.repairs:
        await db.executemany(
            "INSERT INTO repair_etas (site, machine_id, until_at, actor, at, note) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, machine_id) DO UPDATE SET until_at = excluded.until_at, actor = excluded.actor, "
            "at = excluded.at, note = excluded.note",
            [(site, r.machine_id, r.until, r.by, r.at, r.note) for r in w.repairs],
        )


class ExtraReads:
    """Reads of stop reasons and shift summaries (mixed into ``SqliteStore``, which owns ``_db``)."""

    _db: aiosqlite.Connection
    site: str

    async def stop_reason(self, client_id: str) -> StopReason | None:
        rows = list(await self._db.execute_fetchall(
            "SELECT data, start_at, end_at, at FROM stop_reasons WHERE site = ? AND client_id = ?",
            (self.site, client_id)))
        return stop_from_row(*rows[0]) if rows else None

    async def stop_reasons(self, machine_id: str | None, start: float, end: float) -> list[StopReason]:
        """Reasons that may cover ``[start, end)`` (open ones included), by start."""
        where, params = ("machine_id = ? AND ", (machine_id,)) if machine_id else ("", ())
        rows = await self._db.execute_fetchall(
            "SELECT data, start_at, end_at, at FROM stop_reasons "  # noqa: S608 - fixed fragments
            f"WHERE site = ? AND {where}start_at < ? AND (end_at IS NULL OR end_at > ?) ORDER BY start_at, at",
            (self.site, *params, end, start))
        return [stop_from_row(*row) for row in rows]

    async def shift_summary(self, summary_id: str) -> SummaryRow | None:
        rows = list(await self._db.execute_fetchall(
            f"SELECT {_SUMMARY} FROM shift_summaries WHERE site = ? AND id = ?",  # noqa: S608 - fixed text
            (self.site, summary_id)))
        return summary_from_row(rows[0]) if rows else None

    async def shift_summaries(self, *, line: str | None = None, since: float | None = None,
                              until: float | None = None, limit: int = 50) -> list[SummaryRow]:
        """Summaries sent, newest shift end first."""
        where: list[str] = ["site = ?"]
        params: list[object] = [self.site]
        for clause, value in (("line = ?", line), ("end_at >= ?", since), ("end_at < ?", until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = await self._db.execute_fetchall(
            f"SELECT {_SUMMARY} FROM shift_summaries WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
            "ORDER BY end_at DESC LIMIT ?", (*params, limit))
        return [summary_from_row(r) for r in rows]

    async def repair_etas(self) -> list[RepairEta]:
        """The repair ETAs in force (withdrawn ones left out)."""
        rows = await self._db.execute_fetchall(
            "SELECT machine_id, until_at, actor, at, note FROM repair_etas WHERE site = ? AND until_at IS NOT NULL",
            (self.site,))
        return [RepairEta(m, float(u), a, float(at), n) for m, u, a, at, n in rows]
