"""Outbox throughput beside raw SQLite inserts, and a week-of-backlog catch-up drain.

``python -m bench outbox`` (or ``python -m bench.outbox [--catch-up N] [--quick]``) prints:

* raw ``sqlite3`` inserts of the same rows in WAL mode with ``synchronous=FULL``: one row per
  commit (what a naive durable outbox does) and 100 rows per commit, measured in this run;
* the outbox: events per second durably emitted by N concurrent machine emitters (each
  awaiting its own emit, one count event per emit), then drained by ``next_batch`` and
  ``confirm`` as the publisher does; ratios are against raw one-row-per-commit inserts;
* catch-up: N events (default 2 million, a week of a 50-machine line) stored, then drained in
  a fresh process (so peak RSS is the drain's alone), and the bytes each event costs on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from edge.buffer import Outbox
from edge.buffer.records import encode
from edge.tracker import MachineMemory
from plantpulse.protocol.models import CountEvent

T0 = 1_800_000_000.0
EMITTERS = (1, 10, 50)


def _event(machine: str, k: int) -> CountEvent:
    return CountEvent(machine_id=machine, start=T0 + k * 20.0, ts=T0 + k * 20.0 + 20.0, good=3, scrap=0,
                      job="WO-2026-00417/op20")


def _raw_sqlite(path: Path, seconds: float, per_commit: int) -> float:
    """Rows per second inserted with stdlib sqlite3, WAL + FULL, ``per_commit`` rows a commit."""
    payloads = [encode(i + 1, _event(f"m{i % 50:02d}", i)) for i in range(per_commit)]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, machine_id TEXT, kind TEXT, start REAL,"
                    " ts REAL, cover INTEGER, payload BLOB)")
        seq = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO events VALUES (?, ?, 'count', ?, ?, NULL, ?)",
                [(seq + i + 1, f"m{i % 50:02d}", T0, T0, p) for i, p in enumerate(payloads)],
            )
            con.execute("COMMIT")
            seq += per_commit
        return seq / (time.perf_counter() - started)
    finally:
        con.close()


async def _outbox_round_trip(path: Path, emitters: int, seconds: float) -> tuple[float, float, float]:
    """(emitted events/s, drained events/s, events per commit) for ``emitters`` concurrent machines."""
    outbox = await Outbox.open(path)
    try:
        emitted = 0
        deadline = time.perf_counter() + seconds

        async def machine(i: int) -> None:
            nonlocal emitted
            name = f"m{i:02d}"
            k = 0
            while time.perf_counter() < deadline:
                await outbox.emit([_event(name, k)], MachineMemory(machine_id=name, good_raw=k))
                k += 1
                emitted += 1

        started = time.perf_counter()
        await asyncio.gather(*(machine(i) for i in range(emitters)))
        emit_rate = emitted / (time.perf_counter() - started)
        per_commit = emitted / outbox.commits
        started = time.perf_counter()
        drained = await _drain(outbox)
        drain_rate = drained / (time.perf_counter() - started)
        assert drained == emitted and outbox.stats().events == 0
        return emit_rate, drain_rate, per_commit
    finally:
        await outbox.close()


async def _drain(outbox: Outbox, batch: int = 500) -> int:
    """Hand out and confirm everything, as the publisher does once the consumer keeps up."""
    cursor = drained = 0
    while events := await outbox.next_batch(cursor, batch):
        cursor = events[-1].seq
        drained += await outbox.confirm([(events[0].seq, cursor)])
    return drained


async def _fill(path: Path, events: int, *, max_events: int | None = None) -> float:
    """Store ``events`` count events from 50 machines (100 per emit); returns seconds."""
    outbox = await Outbox.open(path, max_events=max_events or max(events + 1, 2_500_000))
    try:
        per_machine = events // 50

        async def machine(i: int) -> None:
            name = f"m{i:02d}"
            for lo in range(0, per_machine, 100):
                chunk = [_event(name, k) for k in range(lo, min(per_machine, lo + 100))]
                await outbox.emit(chunk, MachineMemory(machine_id=name, good_raw=lo))

        started = time.perf_counter()
        await asyncio.gather(*(machine(i) for i in range(50)))
        return time.perf_counter() - started
    finally:
        await outbox.close()


async def _first_coalesce(path: Path, events: int) -> tuple[float, int, int]:
    """A full outbox, never handed out: (seconds the emit that finds it full waits, events before, after).

    That emit coalesces down to the low-water mark (``bounds.LOW_WATER``): the longest stall
    an emitter sees from a full outbox.
    """
    await _fill(path, events, max_events=events)
    outbox = await Outbox.open(path, max_events=events)
    try:
        outbox._handed = 0  # as if the publisher had been offline since the file was created
        outbox._st.coalesced_upto = 0
        before = outbox.stats().events
        started = time.perf_counter()
        await outbox.emit([_event("m00", 10**6)], MachineMemory(machine_id="m00"))
        return time.perf_counter() - started, before, outbox.stats().events
    finally:
        await outbox.close()


async def _drain_file(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    outbox = await Outbox.open(path, max_events=10**9)
    try:
        drained = await _drain(outbox, batch=1000)
    finally:
        await outbox.close()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"events": drained, "seconds": seconds, "peak_rss_mb": peak_mb}


def _file_stats(path: Path) -> tuple[int, int, float]:
    """(events, file bytes after a checkpoint, mean payload bytes)."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n, payload = con.execute("SELECT count(*), avg(length(payload)) FROM events").fetchone()
    return int(n), path.stat().st_size, float(payload)


def _machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), SQLite {sqlite3.sqlite_version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.splitlines()[0])
    parser.add_argument("--catch-up", type=int, default=2_000_000, help="events in the catch-up drain")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput run")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per figure (median shown)")
    parser.add_argument("--coalesce", type=int, default=2_500_000, help="events in the full-outbox run")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--drain-file", help=argparse.SUPPRESS)  # internal: the catch-up child
    args = parser.parse_args(argv)
    if args.drain_file:
        print(json.dumps(asyncio.run(_drain_file(Path(args.drain_file)))))
        return 0
    seconds, catch_up, coalesce = (0.5, 20_000, 20_000) if args.quick else (args.seconds, args.catch_up, args.coalesce)

    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        root = Path(tmp)
        print(f"outbox benchmark on {_machine()}; median of {args.repeat} interleaved runs of {seconds:g} s each")
        names = ["raw sqlite3, 1 row per commit", "raw sqlite3, 100 rows per commit"]
        names += [f"outbox emit, {n} concurrent emitters" for n in EMITTERS]
        rates: dict[str, list[float]] = {n: [] for n in names}
        ratios: dict[str, list[float]] = {n: [] for n in names}
        drains: dict[str, list[float]] = {n: [] for n in names}
        batching: dict[str, list[float]] = {n: [] for n in names}
        for run in range(args.repeat):
            raw1 = _raw_sqlite(root / f"raw1-{run}.db", seconds, 1)
            measured = {names[0]: raw1, names[1]: _raw_sqlite(root / f"raw100-{run}.db", seconds, 100)}
            batching[names[0]].append(1)
            batching[names[1]].append(100)
            for n, name in zip(EMITTERS, names[2:], strict=True):
                emit_rate, drain_rate, per_commit = asyncio.run(
                    _outbox_round_trip(root / f"outbox{n}-{run}.db", n, seconds)
                )
                measured[name] = emit_rate
                drains[name].append(drain_rate)
                batching[name].append(per_commit)
            for name, rate in measured.items():
                rates[name].append(rate)
                ratios[name].append(rate / raw1)
        print(f"{'durable writes (WAL, synchronous=FULL)':<42} {'events/s':>10} {'x raw 1/commit':>15}"
              f" {'events/commit':>14} {'drain events/s':>15}")
        for name in names:
            drain = f"{median(drains[name]):,.0f}" if drains[name] else ""
            print(f"{name:<42} {median(rates[name]):>10,.0f} {median(ratios[name]):>15.2f}"
                  f" {median(batching[name]):>14.1f} {drain:>15}")

        db = root / "catch-up.db"
        fill_seconds = asyncio.run(_fill(db, catch_up))
        held, file_bytes, payload = _file_stats(db)
        child = subprocess.run(
            [sys.executable, "-m", "bench.outbox", "--drain-file", str(db)],
            check=True, capture_output=True, text=True,
        )
        drain = json.loads(child.stdout)
        print()
        print(f"catch-up of {held:,} events (50 machines): stored in {fill_seconds:.1f} s"
              f" ({held / fill_seconds:,.0f}/s, 100 events per emit)")
        print(f"  on disk: {file_bytes / held:.0f} bytes per event (payload {payload:.0f}),"
              f" {file_bytes / 1e6:.0f} MB for the backlog")
        print(f"  drained by next_batch(1000) + confirm in a fresh process: {drain['seconds']:.1f} s"
              f" ({drain['events'] / drain['seconds']:,.0f} events/s), peak RSS {drain['peak_rss_mb']:.0f} MB")
        db.unlink()
        stall, before, after = asyncio.run(_first_coalesce(root / "coalesce.db", coalesce))
        print(f"full outbox of {before:,} count events never handed out: the emit that coalesces it to the"
              f" low-water mark waited {stall:.2f} s ({before:,} -> {after:,} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
