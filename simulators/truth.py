"""Ground truth: what really happened in the simulated plant, for tests to compare against.

Every state interval and every part is stored in an SQLite file (so it survives the simulator
and can be read after a test), with wall-clock timestamps: the same clock an edge gateway
stamps its events with, so a comparison needs no conversion.

What is not production is recorded as what it is, so a test can tell a count error from an
event a gateway cannot see through: counter presets (never parts), power cycles (with the
moment power was lost), unreported pauses, and every change of reachability (``comm``).
Parts are totalled per job as well, so job bookings can be checked exactly.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from simulators.facts import Fact, PartFact, PauseFact, PowerCycleFact, PresetFact, RawState, StateFact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (
    machine_id TEXT NOT NULL, start REAL NOT NULL, end REAL, state TEXT NOT NULL,
    fault_code INTEGER NOT NULL, job INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS states_machine ON states (machine_id, start);
CREATE TABLE IF NOT EXISTS parts (
    machine_id TEXT NOT NULL, ts REAL NOT NULL, good INTEGER NOT NULL, job INTEGER NOT NULL,
    cycle_time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS parts_machine ON parts (machine_id, ts);
CREATE TABLE IF NOT EXISTS power_cycles (
    machine_id TEXT NOT NULL, ts REAL NOT NULL, power_on_count INTEGER NOT NULL, off_ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS presets (
    machine_id TEXT NOT NULL, ts REAL NOT NULL, counter TEXT NOT NULL, before INTEGER NOT NULL,
    after INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pauses (machine_id TEXT NOT NULL, ts REAL NOT NULL, end REAL NOT NULL);
CREATE TABLE IF NOT EXISTS comm (machine_id TEXT NOT NULL, ts REAL NOT NULL, status TEXT NOT NULL);
"""
_TABLES = ("states", "parts", "power_cycles", "presets", "pauses", "comm")


class TruthRecorder:
    """Append-only record of facts; one instance per simulator run (the file starts empty)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The plant loop is single-threaded; the control API reads from the same loop.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript("".join(f"DROP TABLE IF EXISTS {table};" for table in _TABLES))
        self._db.executescript(_SCHEMA)
        self._open: dict[str, int] = {}  # machine id -> rowid of its open state interval
        self._db.execute("BEGIN")
        self._pending = False

    def record(self, facts: list[Fact]) -> None:
        for fact in facts:
            if isinstance(fact, StateFact):
                self._state(fact)
            elif isinstance(fact, PartFact):
                self._db.execute(
                    "INSERT INTO parts VALUES (?, ?, ?, ?, ?)",
                    (fact.machine_id, fact.ts, int(fact.good), fact.job, fact.cycle_time),
                )
            elif isinstance(fact, PowerCycleFact):
                self._db.execute(
                    "INSERT INTO power_cycles VALUES (?, ?, ?, ?)",
                    (fact.machine_id, fact.ts, fact.power_on_count, fact.off_ts),
                )
            elif isinstance(fact, PresetFact):
                self._db.execute(
                    "INSERT INTO presets VALUES (?, ?, ?, ?, ?)",
                    (fact.machine_id, fact.ts, fact.counter, fact.before, fact.after),
                )
            elif isinstance(fact, PauseFact):
                self._db.execute("INSERT INTO pauses VALUES (?, ?, ?)", (fact.machine_id, fact.ts, fact.end))
            self._pending = True

    def comm(self, machine_id: str, ts: float, status: str) -> None:
        """The machine's endpoint changed reachability: ``refuse``, ``hang``, ``off`` (no power) or ``reachable``."""
        self._db.execute("INSERT INTO comm VALUES (?, ?, ?)", (machine_id, ts, status))
        self._pending = True

    def _state(self, fact: StateFact) -> None:
        rowid = self._open.get(fact.machine_id)
        if rowid is not None:
            self._db.execute("UPDATE states SET end = ? WHERE rowid = ?", (fact.ts, rowid))
        cur = self._db.execute(
            "INSERT INTO states VALUES (?, ?, NULL, ?, ?, ?)",
            (fact.machine_id, fact.ts, RawState(fact.state).name.lower(), fact.fault_code, fact.job),
        )
        assert cur.lastrowid is not None
        self._open[fact.machine_id] = cur.lastrowid

    def flush(self) -> None:
        """Commit what was recorded so far (the plant loop calls this once per wake-up)."""
        if self._pending:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = False

    def close(self) -> None:
        self.flush()
        self._db.execute("COMMIT")
        self._db.close()

    def machine(self, machine_id: str, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        """The truth of one machine in the window: state intervals, parts, what was not production, totals."""
        self.flush()
        lo = since if since is not None else float("-inf")
        hi = until if until is not None else float("inf")
        intervals = [
            {"state": s, "fault_code": c, "job": j, "start": a, "end": b}
            for a, b, s, c, j in self._db.execute(
                "SELECT start, end, state, fault_code, job FROM states WHERE machine_id = ? "
                "AND (end IS NULL OR end > ?) AND start < ? ORDER BY start, rowid",
                (machine_id, lo, hi),
            )
        ]
        parts = [
            {"ts": ts, "good": bool(g), "job": j, "cycle_time": ct}
            for ts, g, j, ct in self._db.execute(
                "SELECT ts, good, job, cycle_time FROM parts WHERE machine_id = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts, rowid",
                (machine_id, lo, hi),
            )
        ]
        cycles = [
            {"ts": ts, "power_on_count": n, "off_ts": off}
            for ts, n, off in self._db.execute(
                "SELECT ts, power_on_count, off_ts FROM power_cycles WHERE machine_id = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts",
                (machine_id, lo, hi),
            )
        ]
        presets = [
            {"ts": ts, "counter": counter, "before": before, "after": after}
            for ts, counter, before, after in self._db.execute(
                "SELECT ts, counter, before, after FROM presets WHERE machine_id = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts, rowid",
                (machine_id, lo, hi),
            )
        ]
        pauses = [
            {"ts": ts, "end": end}
            for ts, end in self._db.execute(
                "SELECT ts, end FROM pauses WHERE machine_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
                (machine_id, lo, hi),
            )
        ]
        comm = [
            {"ts": ts, "status": status}
            for ts, status in self._db.execute(
                "SELECT ts, status FROM comm WHERE machine_id = ? AND ts >= ? AND ts < ? ORDER BY ts, rowid",
                (machine_id, lo, hi),
            )
        ]
        by_job: dict[str, dict[str, int]] = {}
        for p in parts:
            job = by_job.setdefault(str(p["job"]), {"good": 0, "scrap": 0})
            job["good" if p["good"] else "scrap"] += 1
        good = sum(1 for p in parts if p["good"])
        return {
            "machine_id": machine_id,
            "intervals": intervals,
            "parts": parts,
            "power_cycles": cycles,
            "presets": presets,
            "pauses": pauses,
            "comm": comm,
            "totals": {"good": good, "scrap": len(parts) - good},
            "by_job": by_job,
        }
