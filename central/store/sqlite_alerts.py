"""The SQLite store's part for alerts, their notifications and deliveries; mixed into ``SqliteStore``.

Like ``sqlite_orders`` and ``sqlite_extras``: the writes run inside the store's open transaction
(``write_alerts``), the reads are a mixin over the store's one connection. The notifier's queue is
the ``deliveries`` table: due ones by priority, the next due time, and what was sent lately (the
rate limit after a restart). Opening transactions stays with the store (``sqlite.py``: the lock,
and the rollback after a cancellation), so its ``update_deliveries`` is there.
"""

from __future__ import annotations

import aiosqlite

from central.alerts.alert import Alert
from central.alerts.notifications import Notification
from central.alerts.ratelimit import priority
from central.store.records import (
    Delivery,
    Transaction,
    alert_from_json,
    alert_to_json,
    notification_from_json,
    notification_to_json,
)


async def write_alerts(db: aiosqlite.Connection, site: str, tx: Transaction) -> None:
    """Write one transaction's alerts, notifications and deliveries (the caller holds the transaction open)."""
    if tx.alerts:
        await db.executemany(
            "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, id) DO UPDATE SET "
            "status = excluded.status, condition_active = excluded.condition_active, "
            "historic = excluded.historic, severity = excluded.severity, updated_at = excluded.updated_at, "
            "data = excluded.data",
            [(site, a.id, a.rule.value, a.subject, a.status.value, int(a.condition_active), int(a.historic),
              a.severity.value, a.opened_at, a.history[-1].at if a.history else a.opened_at,
              alert_to_json(a)) for a in tx.alerts.values()],
        )
    if tx.notifications:
        await db.executemany(
            "INSERT OR IGNORE INTO notifications (site, id, alert_id, created_at, data, priority) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(site, n.id, n.alert_id, n.at, notification_to_json(n), priority(n)) for n in tx.notifications],
        )
    if tx.deliveries:
        await db.executemany(
            "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(site, d.notification_id, d.target, d.status, d.attempts, d.next_at, d.sent_at, d.last_error)
             for d in tx.deliveries],
        )


class AlertReads:
    """Alerts and the notification queue (mixed into ``SqliteStore``, which owns ``_db``)."""

    _db: aiosqlite.Connection
    site: str

    async def active_alerts(self) -> list[Alert]:
        """Alerts holding their (rule, subject) key: not resolved, or resolved by hand while still true."""
        rows = await self._db.execute_fetchall(
            "SELECT data FROM alerts WHERE site = ? AND (status != 'resolved' OR condition_active = 1)", (self.site,)
        )
        return [alert_from_json(data) for (data,) in rows]

    async def alerts(self, *, status: str | None = None, rule: str | None = None, subject: str | None = None,
                     since: float | None = None, limit: int = 100, offset: int = 0) -> list[Alert]:
        where: list[str] = ["site = ?"]
        params: list[object] = [self.site]
        if status == "active":
            where.append("status != 'resolved'")
        elif status is not None:
            where.append("status = ?")
            params.append(status)
        for column, value in (("rule", rule), ("subject", subject)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("updated_at >= ?")
            params.append(since)
        sql = f"SELECT data FROM alerts WHERE {' AND '.join(where)} ORDER BY opened_at DESC LIMIT ? OFFSET ?"  # noqa: S608 - fixed fragments
        rows = await self._db.execute_fetchall(sql, (*params, limit, offset))
        return [alert_from_json(data) for (data,) in rows]

    async def alert(self, alert_id: str) -> Alert | None:
        rows = list(await self._db.execute_fetchall("SELECT data FROM alerts WHERE site = ? AND id = ?",
                                                    (self.site, alert_id)))
        return alert_from_json(rows[0][0]) if rows else None

    async def due_deliveries(self, now: float, target: str, limit: int = 50) -> list[tuple[Delivery, Notification]]:
        rows = await self._db.execute_fetchall(
            "SELECT d.notification_id, d.target, d.site, d.status, d.attempts, d.next_at, d.sent_at, d.last_error, "
            "n.data FROM deliveries d JOIN notifications n ON n.site = d.site AND n.id = d.notification_id "
            "WHERE d.site = ? AND d.target = ? AND d.status = 'pending' AND d.next_at <= ? "
            "ORDER BY n.priority, n.created_at, d.notification_id LIMIT ?",
            (self.site, target, now, limit),
        )
        return [(Delivery(*row[:8]), notification_from_json(row[8])) for row in rows]

    async def next_delivery_at(self, target: str) -> float | None:
        rows = list(await self._db.execute_fetchall(
            "SELECT min(next_at) FROM deliveries WHERE site = ? AND target = ? AND status = 'pending'",
            (self.site, target)
        ))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def sent_since(self, target: str, since: float) -> list[float]:
        rows = await self._db.execute_fetchall(
            "SELECT sent_at FROM deliveries WHERE site = ? AND target = ? AND sent_at >= ? ORDER BY sent_at",
            (self.site, target, since))
        return [float(at) for (at,) in rows]

    async def delivery_counts(self) -> dict[str, int]:
        rows = await self._db.execute_fetchall(
            "SELECT status, count(*) FROM deliveries WHERE site = ? GROUP BY status", (self.site,))
        return {status: int(n) for status, n in rows}
