"""A full outbox (real SQLite files): coalesce counts never handed out, then drop the oldest.

The outbox half of issue 5's test 5: counts are coalesced first (no part lost, no seq
unaccounted for), then the oldest events are dropped down to the low-water mark, every
dropped range is recorded persistently and reported until the consumer settles it.
"""

from __future__ import annotations

import random
from pathlib import Path

from edge.buffer.outbox import Outbox
from plantpulse.protocol.models import CountEvent, DroppedRange, MachineState, StateEvent
from plantpulse.protocol.ranges import RangeSet
from tests.edge.buffer.conftest import OpenOutbox
from tests.edge.buffer.helpers import T0, audit, count, memory, state

BIG = 10**12


async def test_counts_never_handed_out_are_coalesced_and_no_part_or_seq_is_lost(
    open_outbox: OpenOutbox, tmp_path: Path
) -> None:
    ob = await open_outbox(max_events=20, max_bytes=BIG)
    await ob.emit([state("m", 0)], memory("m", 0))
    for k in range(1, 61):
        await ob.emit([count("m", k, good=k)], memory("m", k))
    s = ob.stats()
    assert s.events <= 20 and s.dropped_total == 0 and s.dropped == []
    assert s.coalesced_total == 61 - s.events
    a = audit(tmp_path / "outbox.db")
    assert a.good() == sum(range(1, 61))
    assert a.covered.ranges() == [(1, 61)]  # every seq is held or absorbed by a held event
    merged = [e for e in a.held.values() if isinstance(e, CountEvent) and e.absorbed]
    assert merged and all(e.start < e.ts and e.ts - e.start == len(e.absorbed) + 1 for e in merged)


async def test_events_handed_out_are_never_changed(open_outbox: OpenOutbox, tmp_path: Path) -> None:
    ob = await open_outbox(max_events=12, max_bytes=BIG)
    for k in range(1, 9):
        await ob.emit([count("m", k)], memory("m", k))
    handed = {e.seq: e.payload for e in await ob.next_batch(0, 5)}
    for k in range(9, 40):
        await ob.emit([count("m", k)], memory("m", k))
    assert ob.stats().coalesced_total > 0
    a = audit(tmp_path / "outbox.db")
    for seq, payload in handed.items():
        assert a.held[seq].model_dump() == CountEvent.model_validate_json(payload).model_dump()
    assert all(not e.absorbed for s, e in a.held.items() if s <= 5 and isinstance(e, CountEvent))
    assert max(s for s, e in a.held.items() if isinstance(e, CountEvent) and e.absorbed) > 5


async def test_runs_end_at_a_state_event_and_at_a_job_change(open_outbox: OpenOutbox, tmp_path: Path) -> None:
    ob = await open_outbox(max_events=24, max_bytes=BIG)
    script: list[tuple[str, CountEvent | StateEvent]] = []
    k = 0
    for job in ("J1", "J2"):
        for _ in range(2):
            for _ in range(4):
                k += 1
                script += [("m", count("m", k, job=job)), ("n", count("n", k, job="J9"))]
            k += 1
            script.append(("m", state("m", k, MachineState.IDLE, job=job)))
    for machine, event in script:
        await ob.emit([event], memory(machine, k))
    for k2 in range(k + 1, k + 10):  # trigger: the outbox is over its bound now
        await ob.emit([count("n", k2, job="J9")], memory("n", k2))
    a = audit(tmp_path / "outbox.db")
    m_events = [e for e in a.held.values() if e.machine_id == "m"]
    shape = [(e.kind, e.job, len(e.absorbed) if isinstance(e, CountEvent) else None) for e in m_events]
    assert shape == [
        ("count", "J1", 3), ("state", "J1", None), ("count", "J1", 3), ("state", "J1", None),
        ("count", "J2", 3), ("state", "J2", None), ("count", "J2", 3), ("state", "J2", None),
    ]
    assert a.covered.ranges() == [(1, a.last_seq)]
    assert a.good() == len([e for _m, e in script if isinstance(e, CountEvent)]) + 9


async def test_when_coalescing_is_not_enough_the_oldest_are_dropped_and_reported(
    open_outbox: OpenOutbox, tmp_path: Path
) -> None:
    ob = await open_outbox(max_events=20, max_bytes=BIG)
    for k in range(1, 27):  # state events cannot be coalesced
        s = MachineState.RUNNING if k % 2 else MachineState.IDLE
        await ob.emit([state("m", k, s)], memory("m", k, good_raw=k))
    st = ob.stats()
    # at 21 held: drop to 90% (18 with the new one): seqs 1..3; at 24 again: 4..6, one range
    assert (st.events, st.dropped_total, st.oldest_seq, st.confirmed_seq) == (20, 6, 7, 0)
    assert st.dropped == [DroppedRange(epoch=ob.epoch, first=1, last=6, count=6, start_ts=T0 + 1, end_ts=T0 + 6,
                                       reason="buffer_full")]
    await ob.close()
    ob = await open_outbox(max_events=20, max_bytes=BIG)  # reported across a restart
    assert ob.stats().dropped == st.dropped and ob.stats().dropped_total == 6
    assert await ob.load_memory() == {"m": memory("m", 26, good_raw=26)}  # memory is never dropped
    assert audit(tmp_path / "outbox.db").covered.ranges() == [(1, 26)]
    assert await ob.confirm([(1, 3)]) == 0
    assert ob.stats().dropped == st.dropped  # only part of the gap settled
    assert await ob.confirm([(4, 8)]) == 2
    s2 = ob.stats()
    assert s2.dropped == [] and s2.confirmed_seq == 8 and s2.oldest_seq == 9
    assert audit(tmp_path / "outbox.db").dropped == []


async def test_the_bytes_bound_holds_as_well(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox(max_events=BIG, max_bytes=20_000)
    for k in range(1, 400):
        await ob.emit([state("m", k, job=f"job-{k:04d}")], memory("m", k))
        assert ob.stats().bytes <= 20_000
    assert ob.stats().dropped_total > 0


async def test_after_a_restart_every_stored_event_counts_as_handed_out(open_outbox: OpenOutbox,
                                                                      tmp_path: Path) -> None:
    ob = await open_outbox(max_events=BIG, max_bytes=BIG)
    for k in range(1, 11):
        await ob.emit([count("m", k)], memory("m", k))
    await ob.close()
    ob = await open_outbox(max_events=12, max_bytes=BIG)
    for k in range(11, 31):
        await ob.emit([count("m", k)], memory("m", k))
    a = audit(tmp_path / "outbox.db")
    merged = [e for e in a.held.values() if isinstance(e, CountEvent) and e.absorbed]
    assert merged and all(e.seq is not None and e.seq > 10 for e in merged)
    old = [s for s in a.held if s <= 10]
    assert all(not a.held[s].absorbed for s in old)  # type: ignore[union-attr]
    assert a.covered.ranges() == [(1, 30)]


async def test_a_dropped_range_covers_what_its_merged_events_absorbed(open_outbox: OpenOutbox,
                                                                     tmp_path: Path) -> None:
    ob = await open_outbox(max_events=10, max_bytes=BIG)
    for k in range(1, 6):  # m's counts interleaved with n's state events: m's run spans n's events
        await ob.emit([count("m", k)], memory("m", k))
        await ob.emit([state("n", k, MachineState.RUNNING if k % 2 else MachineState.IDLE)], memory("n", k))
    await ob.emit([count("m", 6)], memory("m", 6))  # over the bound: m's counts merge into seq 1
    assert audit(tmp_path / "outbox.db").held[1].absorbed == [3, 5, 7, 9]  # type: ignore[union-attr]
    for k in range(7, 14):  # n's states cannot merge: the oldest go, seq 1 with everything it stands for
        await ob.emit([state("n", k, MachineState.RUNNING if k % 2 else MachineState.IDLE)], memory("n", k))
    a = audit(tmp_path / "outbox.db")
    # seq 1 went first; it stood for seqs up to 11, so n's states 2..10 inside went too
    assert a.dropped == [(1, 11, 6, "buffer_full")]
    assert a.covered.ranges() == [(1, a.last_seq)]


async def test_random_traffic_with_a_consumer_keeps_every_seq_accounted_for(open_outbox: OpenOutbox,
                                                                           tmp_path: Path) -> None:
    """Emits, hand-outs, replays and confirmations in random order on a small outbox.

    Whatever happens, every seq is applied at most once, a replayed event is the same as the
    first time it was handed out, and every seq is either held, absorbed, reported dropped,
    or confirmed; with nothing dropped every part arrives.
    """
    totals = {"dropped": 0}
    for seed in range(3):
        rng = random.Random(seed)
        path = tmp_path / f"random{seed}.db"
        ob: Outbox = await open_outbox(path, max_events=40, max_bytes=BIG, tail_capacity=16)
        applied = RangeSet()
        seen: dict[int, bytes] = {}
        good_in = good_applied = 0
        cursor = 0
        jobs = {m: "J1" for m in "abcd"}
        for step in range(400):
            r = rng.random()
            if 100 <= step < 250:  # the consumer is away: only the machines go on
                r = 0.0
            machine = rng.choice("abcd")
            if r < 0.75:
                if rng.random() < 0.3:
                    jobs[machine] = rng.choice(["J1", "J2"])
                    event: CountEvent | StateEvent = state(machine, step, job=jobs[machine])
                else:
                    g = rng.randint(0, 5)
                    good_in += g
                    event = count(machine, step, good=g, job=jobs[machine])
                await ob.emit([event], memory(machine, step))
            elif r < 0.87:
                batch = await ob.next_batch(cursor, rng.randint(1, 20))
                for e in batch:
                    assert seen.setdefault(e.seq, e.payload) == e.payload
                    parsed = e.event()
                    ids = [e.seq, *(parsed.absorbed if isinstance(parsed, CountEvent) else [])]
                    assert not any(i in applied for i in ids), f"seq applied twice: {ids}"
                    for i in ids:
                        applied.add(i)
                    if isinstance(parsed, CountEvent):
                        good_applied += parsed.good
                if batch:
                    cursor = batch[-1].seq
            elif r < 0.93 and cursor:
                lo = rng.randint(1, cursor)
                for e in await ob.get_range(lo, min(cursor, lo + 10)):
                    assert seen.get(e.seq, e.payload) == e.payload, "a handed-out event changed"
            else:
                for d in ob.stats().dropped:  # the consumer records the gap and settles it
                    applied.add(d.first, d.last)
                if applied:
                    await ob.confirm(applied.ranges())
        a = audit(path)
        st = ob.stats()
        assert (st.events, st.latest_seq) == (a.totals["events"], a.last_seq)
        confirmed = RangeSet(applied.ranges())
        for lo, hi in a.covered:
            confirmed.add(lo, hi)
        assert confirmed.missing(1, a.last_seq) == [], f"seed {seed}: seqs neither held nor confirmed"
        if st.dropped_total == 0:
            assert good_applied + a.good() - sum(
                e.good for s, e in a.held.items() if isinstance(e, CountEvent) and s <= cursor
            ) == good_in
        assert st.coalesced_total > 0, f"seed {seed}: the scenario should make the outbox coalesce"
        totals["dropped"] += st.dropped_total
    assert totals["dropped"] > 0, "no seed made the outbox drop: the scenario misses a path"


async def test_a_replay_of_an_absorbed_seq_returns_the_event_that_carries_it(open_outbox: OpenOutbox) -> None:
    ob = await open_outbox(max_events=10, max_bytes=BIG)
    for k in range(1, 6):  # m's counts interleaved with n's states; over the bound they merge into seq 1
        await ob.emit([count("m", k)], memory("m", k))
        await ob.emit([state("n", k, MachineState.RUNNING if k % 2 else MachineState.IDLE)], memory("n", k))
    await ob.emit([count("m", 6)], memory("m", 6))
    replay = await ob.get_range(5, 6)
    assert [e.seq for e in replay] == [1, 6]  # seq 5 was absorbed by seq 1
    carrier = replay[0].event()
    assert isinstance(carrier, CountEvent) and 5 in carrier.absorbed
    assert [e.seq for e in await ob.get_range(12, 20)] == []  # nothing reaches there
