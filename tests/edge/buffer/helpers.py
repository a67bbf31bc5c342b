"""Events to feed the outbox, and an audit of an outbox file read with plain sqlite3."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.buffer.records import decode, row_bytes
from edge.tracker import MachineMemory
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent
from plantpulse.protocol.ranges import RangeSet

T0 = 1_800_000_000.0


def count(
    machine: str, k: float, good: int = 1, *, scrap: int = 0, job: str | None = "J1", **flags: bool
) -> CountEvent:
    """Parts made in ``T0 + k - 1 .. T0 + k``."""
    return CountEvent(machine_id=machine, start=T0 + k - 1, ts=T0 + k, good=good, scrap=scrap, job=job, **flags)


def state(machine: str, k: float, s: MachineState = MachineState.RUNNING, *, job: str | None = "J1") -> StateEvent:
    return StateEvent(machine_id=machine, ts=T0 + k, state=s, job=job)


def memory(machine: str, k: float = 0, good_raw: int | None = None) -> MachineMemory:
    return MachineMemory(machine_id=machine, good_raw=good_raw, last_ts=T0 + k)


@dataclass
class Audit:
    last_seq: int
    held: dict[int, CountEvent | StateEvent]  # seq -> event (parsed from the stored payload)
    covered: RangeSet  # seqs held, absorbed by held events, or in unsettled dropped ranges
    in_rows: RangeSet  # seqs held or absorbed by held events
    dropped: list[tuple[int, int, int, str]]  # first, last, count, reason
    memory: dict[str, MachineMemory]
    totals: dict[str, int]

    def good(self) -> int:
        return sum(e.good for e in self.held.values() if isinstance(e, CountEvent))


def wipe(path: Path) -> None:
    """Delete an outbox with its WAL and shared-memory files (a new disk, a wiped directory)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def audit(path: Path) -> Audit:
    """Read an outbox file and check its invariants (raises AssertionError on a violation).

    * every stored payload is a valid wire event carrying its own row's seq and machine;
    * no seq is accounted for twice: held rows, the seqs they absorbed (all above their own)
      and the unsettled dropped ranges are disjoint, and none lies above the last seq;
    * the totals row matches a recount (events and bytes).
    """
    with contextlib.closing(sqlite3.connect(path)) as con:
        (last_seq, events, nbytes, coalesced, dropped_total) = con.execute(
            "SELECT last_seq, events, bytes, coalesced_total, dropped_total FROM outbox"
        ).fetchone()
        rows = con.execute("SELECT seq, machine_id, kind, cover, payload FROM events ORDER BY seq").fetchall()
        drops = con.execute("SELECT first, last, count, reason FROM dropped ORDER BY first").fetchall()
        mems = con.execute("SELECT machine_id, data FROM memory").fetchall()
    covered = RangeSet()
    held: dict[int, CountEvent | StateEvent] = {}
    size = 0
    for seq, machine, kind, cover, payload in rows:
        event = decode(payload)
        assert (event.seq, event.machine_id, event.kind) == (seq, machine, kind), payload
        assert seq not in covered, f"seq {seq} accounted for twice"
        covered.add(seq)
        absorbed = event.absorbed if isinstance(event, CountEvent) else []
        assert cover == (max(absorbed) if absorbed else None), (seq, cover, absorbed)
        for a in absorbed:
            assert a > seq and a not in covered, f"absorbed seq {a} of {seq} accounted for twice"
            covered.add(a)
        held[seq] = event
        size += row_bytes(len(payload), machine)
    in_rows = RangeSet(covered.ranges())
    for first, last, n, _reason in drops:
        assert not covered.intersection(first, last), f"dropped range {first}..{last} overlaps held seqs"
        assert n >= 1
        covered.add(first, last)
    top = covered.last()
    assert top is None or top <= last_seq, f"seq {top} accounted for above the last seq {last_seq}"
    assert (events, nbytes) == (len(rows), size), "totals row differs from a recount"
    return Audit(
        last_seq=last_seq, held=held, covered=covered, in_rows=in_rows, dropped=[tuple(d) for d in drops],
        memory={m: MachineMemory.model_validate_json(d) for m, d in mems},
        totals={"events": events, "bytes": nbytes, "coalesced_total": coalesced, "dropped_total": dropped_total},
    )
