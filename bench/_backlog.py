"""A synthetic production line's events for the delivery benchmarks: what 50 machines report.

A week of one 50-machine line is about 2 million events (issue 5): mostly count events (a
running machine reports its parts every ``count_interval``) with a state change now and then
(setup, idle, a fault with its code, back to running). The benchmarks feed these events to the
real outbox with ``Outbox.emit`` as collection would, or publish them as a gateway does, with
the wire format built by the gateway's own code (``edge.buffer.records`` and
``edge.forwarder.batch_payload``), so every byte is what a real gateway sends.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from edge.buffer import Outbox, StoredEvent
from edge.buffer.records import Event, encode
from edge.forwarder import batch_payload
from edge.tracker import MachineMemory
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent

MACHINES = 50
SITE = "bench"
FAULTS = {101: {"zh": "主轴过载", "en": "spindle overload"}, 205: {"zh": "急停", "en": "emergency stop"}}
"""Fault texts for central's configuration of the benchmark machines (codes the events use)."""
WEEK = 7 * 24 * 3600.0
WEEK_EVENTS = 2_000_000
"""Events of a week of one 50-machine line (issue 5): ~40,000 per machine, one every ~15 s."""
STATE_EVERY = 25
"""One event in 25 is a state change; the rest are part counts."""
_CYCLE: tuple[tuple[MachineState, int | None], ...] = (
    (MachineState.IDLE, None), (MachineState.SETUP, None), (MachineState.RUNNING, None),
    (MachineState.FAULT, 101), (MachineState.RUNNING, None), (MachineState.FAULT, 205), (MachineState.RUNNING, None),
)


def machine_ids(machines: int = MACHINES) -> list[str]:
    return [f"m{i:03d}" for i in range(machines)]


def event(machine_id: str, k: int, ts: float, spacing: float) -> Event:
    """The ``k``-th event of a machine, observed at ``ts`` (``spacing`` after the previous one)."""
    job = f"WO-{k // 2000:05d}/op10"
    if k % STATE_EVERY == STATE_EVERY - 1:
        state, code = _CYCLE[(k // STATE_EVERY) % len(_CYCLE)]
        return StateEvent(machine_id=machine_id, ts=ts, state=state, fault_code=code, job=job, raw=int(k % 5))
    return CountEvent(machine_id=machine_id, start=ts - spacing, ts=ts, good=1 + k % 3, scrap=int(k % 17 == 0),
                      job=job)


def line_events(total: int, *, end: float, span: float, machines: int = MACHINES) -> list[Event]:
    """``total`` events of the line in time order (machines take turns), the last ones at ``end``."""
    per_machine = max(1, total // machines)
    spacing = span / per_machine
    ids = machine_ids(machines)
    out: list[Event] = []
    for k in range(per_machine):
        ts = end - span + (k + 1) * spacing
        out.extend(event(mid, k, ts, spacing) for mid in ids)
    return out[:total]


def wire_batches(edge_id: str, events: Sequence[Event], *, batch: int = 500, epoch: str | None = None,
                 first_seq: int = 1) -> tuple[str, list[bytes]]:
    """(epoch, ``EventBatch`` payloads) as the gateway publishes them: seqs from ``first_seq``, ``batch`` a message."""
    epoch = epoch or str(uuid.uuid4())
    stored = [StoredEvent(first_seq + i, e.ts, e.machine_id, e.kind, encode(first_seq + i, e))
              for i, e in enumerate(events)]
    now = time.time()
    return epoch, [batch_payload(edge_id, epoch, now, stored[i : i + batch]) for i in range(0, len(stored), batch)]


async def fill_outbox(path: Path, total: int, *, end: float, span: float = WEEK, machines: int = MACHINES,
                      per_emit: int = 100) -> float:
    """Store ``total`` events of the line in a new outbox at ``path`` (concurrent machines,
    ``per_emit`` events per emit, as a gateway catching up would); returns the seconds it took."""
    outbox = await Outbox.open(path, max_events=max(total + 1000, 2_500_000), max_bytes=10**11)
    try:
        per_machine = max(1, total // machines)
        spacing = span / per_machine

        async def machine(mid: str) -> None:
            for lo in range(0, per_machine, per_emit):
                ks = range(lo, min(per_machine, lo + per_emit))
                chunk = [event(mid, k, end - span + (k + 1) * spacing, spacing) for k in ks]
                await outbox.emit(chunk, MachineMemory(machine_id=mid, good_raw=lo, last_ts=chunk[-1].ts))

        started = time.perf_counter()
        await asyncio.gather(*(machine(mid) for mid in machine_ids(machines)))
        return time.perf_counter() - started
    finally:
        await outbox.close()
