"""Rows of the PostgreSQL store: a transaction as insert statements, and rows back into records (no I/O
of its own beyond the queries it is handed a connection for). Kept apart from ``postgres.py`` so the
store module stays about what PostgreSQL adds (locks, fencing, pool)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from central.alerts.ratelimit import priority
from central.progress.timeline import StateInterval
from central.store.base import Loaded, Retention
from central.store.pgqmark import numbered
from central.store.records import (
    EpochRow,
    GatewayRow,
    Transaction,
    alert_to_json,
    notification_to_json,
    status_from_json,
    status_to_json,
)
from central.store.sqlite_orders import COUNT_INSERT, count_values
from plantpulse.protocol.models import MachineState

Statement = tuple[str, list[tuple[Any, ...]]]
if TYPE_CHECKING:
    from central.store.pgqmark import Conn


def inserts(site: str, tx: Transaction) -> list[Statement]:
    """The inserts and upserts of one round, in a fixed order (``removed_intervals`` go first, by the caller)."""
    out: list[Statement] = []

    def add(sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        rows = list(rows)
        if rows:
            out.append((sql, rows))

    add("INSERT INTO messages (site, received_at, topic, edge_id, payload) VALUES ($1, $2, $3, $4, $5)",
        ((site, m.received_at, m.topic, m.edge_id, m.payload) for m in tx.messages))
    add(numbered(COUNT_INSERT), count_values(site, tx.counts))
    return out


def upserts(site: str, tx: Transaction) -> list[Statement]:
    """What follows the removal of replaced intervals: new intervals, live rows, alerts and the outbox."""
    out: list[Statement] = []

    def add(sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        rows = list(rows)
        if rows:
            out.append((sql, rows))

    add('INSERT INTO intervals (site, machine_id, start, "end", state, fault_code, job, reason, uncertain, repeats) '
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ((site, i.machine_id, i.start, i.end, i.state.value, i.fault_code, i.job, i.reason, int(i.uncertain),
          json.dumps(i.repeats) if i.repeats else None) for i in tx.intervals))
    add("INSERT INTO machine_status VALUES ($1, $2, $3) ON CONFLICT (site, machine_id) DO UPDATE SET "
        "data = excluded.data",
        ((site, mid, status_to_json(s)) for mid, s in tx.statuses.items()))
    add("INSERT INTO epochs VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site, edge_id, epoch) DO UPDATE SET "
        "settled = excluded.settled, current = excluded.current",
        ((site, e.edge_id, e.epoch, json.dumps(e.settled), int(e.current)) for e in tx.epochs.values()))
    add("INSERT INTO gateways VALUES ($1, $2, $3) ON CONFLICT (site, edge_id) DO UPDATE SET data = excluded.data",
        ((site, g.edge_id, g.to_json()) for g in tx.gateways.values()))
    add("INSERT INTO gaps (site, edge_id, epoch, first, last, reason, count, start_ts, end_ts, recorded_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ((site, g.gap.edge_id, g.gap.epoch, g.gap.first, g.gap.last, g.gap.reason, g.gap.count, g.gap.start_ts,
          g.gap.end_ts, g.recorded_at) for g in tx.gaps))
    add("INSERT INTO alerts VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (site, id) DO UPDATE SET "
        "status = excluded.status, condition_active = excluded.condition_active, historic = excluded.historic, "
        "severity = excluded.severity, updated_at = excluded.updated_at, data = excluded.data",
        ((site, a.id, a.rule.value, a.subject, a.status.value, int(a.condition_active), int(a.historic),
          a.severity.value, a.opened_at, a.history[-1].at if a.history else a.opened_at, alert_to_json(a))
         for a in tx.alerts.values()))
    add("INSERT INTO notifications (site, id, alert_id, created_at, data, priority) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT DO NOTHING",
        ((site, n.id, n.alert_id, n.at, notification_to_json(n), priority(n)) for n in tx.notifications))
    add("INSERT INTO deliveries VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        ((site, d.notification_id, d.target, d.status, d.attempts, d.next_at, d.sent_at, d.last_error)
         for d in tx.deliveries))
    add("INSERT INTO dead_letters (site, received_at, topic, payload, reason) VALUES ($1, $2, $3, $4, $5)",
        ((site, d.received_at, d.topic, d.payload, d.reason) for d in tx.dead_letters))
    return out


def retained(retention: Retention) -> list[tuple[str, str, float]]:
    """(table, time column, days kept) of everything retention deletes."""
    return [
        ("messages", "received_at", retention.events_days),
        ("dead_letters", "received_at", retention.dead_letters_days),
        ("intervals", '"end"', retention.history_days),
        ("counts", "at", retention.history_days),
        ("gaps", "recorded_at", retention.history_days),
        ("notifications", "created_at", retention.history_days),
    ]


async def load(con: Conn, site: str) -> Loaded:
    statuses = {r[0]: status_from_json(r[1]) for r in await con.fetch(
        "SELECT machine_id, data FROM machine_status WHERE site = $1", site)}
    epochs = [EpochRow(r[0], r[1], [(int(a), int(b)) for a, b in json.loads(r[2])], bool(r[3]))
              for r in await con.fetch("SELECT edge_id, epoch, settled, current FROM epochs WHERE site = $1", site)]
    gateways = {r[0]: GatewayRow.from_json(r[1]) for r in await con.fetch(
        "SELECT edge_id, data FROM gateways WHERE site = $1", site)}
    dead = int(await con.fetchval("SELECT count(*) FROM dead_letters WHERE site = $1", site))
    gaps = int(await con.fetchval("SELECT count(*) FROM gaps WHERE site = $1", site))
    return Loaded(statuses, epochs, gateways, dead, gaps)


def intervals(rows: Sequence[asyncpg.Record]) -> list[StateInterval]:
    return [
        StateInterval(m, MachineState(s), a, b, fc, job, reason, bool(u), repeats=tuple(json.loads(rep)) if rep else ())
        for m, s, a, b, fc, job, reason, u, rep in rows
    ]
