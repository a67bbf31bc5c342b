"""kill -9 of a process in the middle of emitting (issue 5, test 3, the outbox half).

A real child process (``crash_child``) emits in a loop and reports every emit that
returned; it is killed with SIGKILL mid-stream. The reopened file must hold every reported
event with a seq no higher than the latest seq reported with it, seqs must be unique and
contiguous, each machine's memory must be the one stored with its last stored event, and
new seqs must continue above the old ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plantpulse.protocol.models import CountEvent
from plantpulse.protocol.ranges import RangeSet
from tests.edge.buffer.conftest import OpenOutbox
from tests.edge.buffer.helpers import T0, audit, count, memory
from tests.fixtures.procs import ManagedProcess, python_module
from tests.fixtures.waiting import wait_until


def reported(report: Path) -> list[list[str]]:
    """Complete lines only: the child may die in the middle of writing one."""
    text = report.read_text() if report.exists() else ""
    return [line.split() for line in text.split("\n")[:-1]]


def run_and_kill(tmp_path: Path, *, machines: int, max_events: int, publish: bool, emits: int) -> Path:
    db, report = tmp_path / "outbox.db", tmp_path / "report.txt"
    child = ManagedProcess(
        "crash-child",
        python_module("tests.edge.buffer.crash_child", str(db), str(report), str(machines), str(max_events),
                      "1" if publish else "0"),
        tmp_path / "child.log",
    )
    child.start()
    try:
        wait_until(
            lambda: child.running() and sum(1 for r in reported(report) if r[0] == "E") >= emits,
            120, interval=0.05, what=f"{emits} emits reported by the child (log: {child.tail()})",
        )
        child.kill9()
    finally:
        child.stop()
    assert child.returncode() == -9
    return report


@pytest.mark.slow
async def test_kill_9_loses_no_returned_emit_and_reuses_no_seq(open_outbox: OpenOutbox, tmp_path: Path) -> None:
    report = run_and_kill(tmp_path, machines=8, max_events=10**7, publish=False, emits=3000)
    a = audit(tmp_path / "outbox.db")
    assert list(a.held) == list(range(1, a.last_seq + 1)), "seqs must be contiguous from 1"
    where = {(e.machine_id, e.ts): s for s, e in a.held.items() if isinstance(e, CountEvent)}
    emits = [r for r in reported(report) if r[0] == "E"]
    for _e, machine, k, latest in emits:
        seq = where.get((machine, T0 + int(k)))
        assert seq is not None, f"emit {machine} #{k} returned but is not in the outbox"
        assert seq <= int(latest), f"{machine} #{k} got seq {seq}, above the latest seq {latest} reported with it"
    for machine, mem in a.memory.items():
        last_k = max(int(ts - T0) for (m, ts) in where if m == machine)
        assert mem == memory(machine, last_k, good_raw=last_k), "memory and events must be one transaction"
        per_machine = sorted((ts, s) for (m, ts), s in where.items() if m == machine)
        assert [s for _ts, s in per_machine] == sorted(s for _ts, s in per_machine), "seq order = emit order"
    ob = await open_outbox(tmp_path / "outbox.db")
    assert ob.stats().latest_seq == a.last_seq
    await ob.emit([count("m0", 10**6)], memory("m0", 10**6))
    assert [e.seq for e in await ob.next_batch(a.last_seq, 10)] == [a.last_seq + 1]


@pytest.mark.slow
async def test_kill_9_while_publishing_coalescing_and_dropping_keeps_every_seq_accounted_for(
    open_outbox: OpenOutbox, tmp_path: Path
) -> None:
    report = run_and_kill(tmp_path, machines=8, max_events=300, publish=True, emits=4000)
    a = audit(tmp_path / "outbox.db")  # consistent totals, no seq accounted for twice
    lines = reported(report)
    intended, done = RangeSet(), RangeSet()
    for r in lines:
        if r[0] in ("c", "C"):
            (intended if r[0] == "c" else done).add(int(r[1]), int(r[2]))
    assert not any(a.in_rows.intersection(lo, hi) for lo, hi in done), "a confirmed event is still held"
    accounted = RangeSet(a.covered.ranges())
    for lo, hi in intended:
        accounted.add(lo, hi)
    assert accounted.missing(1, a.last_seq) == [], "seqs neither held, absorbed, dropped nor confirmed"
    assert a.totals["coalesced_total"] > 0 and a.totals["dropped_total"] > 0, f"a path was missed: {a.totals}"
    ob = await open_outbox(tmp_path / "outbox.db", max_events=300)
    before = ob.stats()
    assert (before.latest_seq, before.events) == (a.last_seq, a.totals["events"])
    await ob.emit([count("m0", 10**6)], memory("m0", 10**6))
    assert ob.stats().latest_seq == a.last_seq + 1
