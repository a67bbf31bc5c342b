"""The store's schema as numbered migrations: applied in order at open, never edited once released.

Add a change as a new entry at the end; ``schema_version`` records which entries a database has.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: ingest and machine status
    """
    CREATE TABLE gateways (edge_id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE epochs (
        edge_id TEXT NOT NULL, epoch TEXT NOT NULL, settled TEXT NOT NULL, current INTEGER NOT NULL,
        PRIMARY KEY (edge_id, epoch));
    CREATE TABLE machine_status (machine_id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE intervals (
        id INTEGER PRIMARY KEY, machine_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
        state TEXT NOT NULL, fault_code INTEGER, job TEXT, reason TEXT, uncertain INTEGER NOT NULL);
    CREATE INDEX intervals_machine ON intervals (machine_id, start);
    CREATE TABLE counts (
        edge_id TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, machine_id TEXT NOT NULL,
        job TEXT, start REAL NOT NULL, at REAL NOT NULL, good INTEGER NOT NULL, scrap INTEGER NOT NULL,
        reset INTEGER NOT NULL, possibly_lost INTEGER NOT NULL, rebased INTEGER NOT NULL, clamp TEXT,
        PRIMARY KEY (edge_id, epoch, seq));
    CREATE INDEX counts_machine ON counts (machine_id, at);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY, received_at REAL NOT NULL, topic TEXT NOT NULL, edge_id TEXT NOT NULL,
        payload BLOB NOT NULL);
    CREATE INDEX messages_received ON messages (received_at);
    CREATE TABLE gaps (
        id INTEGER PRIMARY KEY, edge_id TEXT NOT NULL, epoch TEXT NOT NULL, first INTEGER NOT NULL,
        last INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER, start_ts REAL, end_ts REAL,
        recorded_at REAL NOT NULL);
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY, received_at REAL NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
        reason TEXT NOT NULL);
    CREATE INDEX dead_letters_received ON dead_letters (received_at);
    """,
    # 2: alerts and the notification outbox (written in the transaction of the alert change)
    """
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL,
        condition_active INTEGER NOT NULL, historic INTEGER NOT NULL, severity TEXT NOT NULL,
        opened_at REAL NOT NULL, updated_at REAL NOT NULL, data TEXT NOT NULL);
    CREATE INDEX alerts_active ON alerts (status, condition_active);
    CREATE INDEX alerts_opened ON alerts (opened_at);
    CREATE TABLE notifications (
        id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, created_at REAL NOT NULL, data TEXT NOT NULL);
    CREATE TABLE deliveries (
        notification_id TEXT NOT NULL, target TEXT NOT NULL, site TEXT, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, next_at REAL NOT NULL, sent_at REAL, last_error TEXT,
        PRIMARY KEY (notification_id, target));
    CREATE INDEX deliveries_due ON deliveries (status, next_at);
    """,
    # 3: flags of count events: implausible (central's check), a span over a job change (the edge's)
    """
    ALTER TABLE counts ADD COLUMN implausible INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE counts ADD COLUMN job_from TEXT;
    """,
    # 4: times a state repeated within an interval (a change missed between; a late fill splits there)
    """
    ALTER TABLE intervals ADD COLUMN repeats TEXT;
    """,
    # 5: work orders (issue 13): orders, operations, dispatch lists, the assignment timeline per machine,
    # scan-to-report reports (client id unique), the audit trail; each count remembers its operation.
    # Portable SQL (a PostgreSQL store runs the same list): no AUTOINCREMENT, no reserved column names.
    """
    CREATE TABLE orders (
        id TEXT PRIMARY KEY, status TEXT NOT NULL, due REAL NOT NULL, priority INTEGER NOT NULL,
        created_at REAL NOT NULL, data TEXT NOT NULL);
    CREATE INDEX orders_status_due ON orders (status, due);
    CREATE TABLE operations (
        order_id TEXT NOT NULL, seq INTEGER NOT NULL, queue TEXT NOT NULL, status TEXT NOT NULL,
        data TEXT NOT NULL, PRIMARY KEY (order_id, seq));
    CREATE TABLE dispatch (
        queue TEXT NOT NULL, position INTEGER NOT NULL, order_id TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (queue, position));
    CREATE TABLE assignments (
        machine_id TEXT NOT NULL, start_at REAL NOT NULL, end_at REAL, order_id TEXT NOT NULL,
        seq INTEGER NOT NULL, started_by TEXT NOT NULL, ended_by TEXT, PRIMARY KEY (machine_id, start_at));
    CREATE TABLE reports (
        client_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, seq INTEGER NOT NULL, operator TEXT NOT NULL,
        kind TEXT NOT NULL, good INTEGER NOT NULL, scrap INTEGER NOT NULL, at REAL NOT NULL,
        correction INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE INDEX reports_at ON reports (at);
    CREATE INDEX reports_op ON reports (order_id, seq);
    CREATE TABLE audit (
        id TEXT PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        order_id TEXT NOT NULL, seq INTEGER, data TEXT NOT NULL);
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_order ON audit (order_id, at);
    ALTER TABLE counts ADD COLUMN order_id TEXT;
    ALTER TABLE counts ADD COLUMN op_seq INTEGER;
    CREATE INDEX counts_op ON counts (order_id, op_seq);
    """,
    # 6: stop reasons people give (issue 13, central/progress/stops.py), unique by client id; and the shift
    # summaries already sent (a restart never sends one twice); the repair ETA maintenance entered per machine
    # (until_at NULL: withdrawn). Portable SQL.
    """
    CREATE TABLE stop_reasons (
        client_id TEXT PRIMARY KEY, machine_id TEXT NOT NULL, start_at REAL NOT NULL, end_at REAL,
        reason TEXT NOT NULL, operator TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL);
    CREATE INDEX stop_reasons_machine ON stop_reasons (machine_id, start_at);
    CREATE TABLE shift_summaries (
        id TEXT PRIMARY KEY, line TEXT, shift TEXT NOT NULL, start_at REAL NOT NULL, end_at REAL NOT NULL,
        at REAL NOT NULL, data TEXT NOT NULL);
    CREATE INDEX shift_summaries_end ON shift_summaries (end_at);
    CREATE TABLE repair_etas (
        machine_id TEXT PRIMARY KEY, until_at REAL, actor TEXT NOT NULL, at REAL NOT NULL, note TEXT);
    """,
]
