"""A gateway stand-in for the kill -9 tests: emits forever and reports each emit that returned.

``python -m tests.edge.buffer.crash_child DB REPORT MACHINES MAX_EVENTS PUBLISH``

Each machine emits a count event (and every seventh time a state event) with its memory,
then appends ``E machine k latest_seq`` to REPORT once ``emit`` has returned: the test then
knows which events the outbox promised to keep. With PUBLISH=1 a publisher stand-in also
hands out batches (falling behind now and then) and confirms most of them, writing
``c first last`` before and ``C first last`` after each confirmation (the ranges a consumer
applied: each event's seq and the seqs it absorbed). Lines are written whole and unbuffered,
so a kill -9 loses at most a line that was never written.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from edge.buffer import Outbox
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent
from plantpulse.protocol.ranges import RangeSet
from tests.edge.buffer.helpers import count, memory, state


async def main(db: Path, report: Path, machines: int, max_events: int, publish: bool) -> None:
    outbox = await Outbox.open(db, max_events=max_events, commit_interval=0.005)
    fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(line: str) -> None:
        os.write(fd, line.encode() + b"\n")

    async def machine(i: int) -> None:
        name = f"m{i}"
        k = 0
        while True:
            k += 1
            events: list[CountEvent | StateEvent] = [count(name, k)]
            if k % 7 == 0:
                events.append(state(name, k, MachineState.IDLE if k % 14 else MachineState.RUNNING))
            await outbox.emit(events, memory(name, k, good_raw=k))
            say(f"E {name} {k} {outbox.stats().latest_seq}")

    async def publisher() -> None:
        cursor = 0
        while True:
            # now and then it falls behind by 300 events (a slow link): the outbox must coalesce
            await outbox.wait_for_new(cursor + (300 if cursor % 1000 > 500 else 0))
            batch = await outbox.next_batch(cursor, 50)
            if batch:
                cursor = batch[-1].seq
                if batch[0].seq % 3:  # confirm two batches in three: a consumer that lags a bit
                    applied = RangeSet()  # what a consumer applies: each event's seq and what it absorbed
                    for e in batch:
                        event = e.event()
                        for seq in [e.seq, *(event.absorbed if isinstance(event, CountEvent) else [])]:
                            applied.add(seq)
                    for lo, hi in applied:
                        say(f"c {lo} {hi}")
                    await outbox.confirm(applied.ranges())
                    for lo, hi in applied:
                        say(f"C {lo} {hi}")

    tasks = [machine(i) for i in range(machines)] + ([publisher()] if publish else [])
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    db, report, machines, max_events, publish = sys.argv[1:6]
    asyncio.run(main(Path(db), Path(report), int(machines), int(max_events), publish == "1"))
