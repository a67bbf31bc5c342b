"""Ingest rounds against a real SQLite store: late state events spliced into history within a round.

No broker here: the messages are handed to the applier as the MQTT thread would, so the test can
place two late events in the same round (the case that once needed a half-round commit).
"""

from __future__ import annotations

import time
from pathlib import Path

from central.ingest.applier import Applier, Round
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.ingest.messages import Incoming
from central.progress.clock import ClockRule
from central.progress.machines import Catalog, MachinesConfig
from central.progress.timeline import check_ordered
from central.store.sqlite import SqliteStore
from plantpulse.protocol.models import EventBatch, MachineState, StateEvent, Status
from tests.fixtures.ids import EPOCH1

T = time.time()


def batch(*events: StateEvent) -> Incoming:
    b = EventBatch(edge_id="gw1", epoch=EPOCH1, sent_at=T, events=list(events))
    return Incoming("plantpulse/v1/s/gw1/events", b.model_dump_json().encode(), 1, 1, T + 100)


def birth() -> Incoming:
    b = Status(edge_id="gw1", online=True, birth=1, ts=T, epoch=EPOCH1)
    return Incoming("plantpulse/v1/s/gw1/status", b.model_dump_json().encode(), 1, 1, T + 100)


def state(seq: int, s: MachineState, at: float) -> StateEvent:
    return StateEvent(seq=seq, machine_id="m1", ts=T + at, state=s)


async def test_two_late_states_in_one_round_splice_history_consistently(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    live = LiveState(IngestConfig(hold_max_age=1.0), Catalog(MachinesConfig()))
    applier = Applier(live, ClockRule(), store.intervals_from, site="s")
    try:
        async def round_of(*messages: Incoming, tick: float | None = None) -> Round:
            rnd = await applier.messages(list(messages), Round())
            if tick is not None:
                rnd = await applier.tick(tick, rnd)
            await store.commit(rnd.tx)
            return rnd

        await round_of(birth())
        await round_of(batch(state(1, MachineState.RUNNING, 0)))
        await round_of(batch(state(2, MachineState.IDLE, 10)))
        # seqs 3..4 go missing; 5 (fault at 40) is held, then applied uncertain past the hold
        await round_of(batch(state(5, MachineState.FAULT, 40)))
        await round_of(tick=T + 200)
        assert live.statuses["m1"].state is MachineState.FAULT
        # the missing two arrive late, together: history changes, the present stays a fault
        rnd = await round_of(batch(state(3, MachineState.SETUP, 20), state(4, MachineState.RUNNING, 30)))
        assert [a.applied.late for a in rnd.applied] == [True, True]
        assert live.statuses["m1"].state is MachineState.FAULT
        history = await store.intervals("m1", T - 1, T + 100)
        check_ordered(history)
        assert [(iv.state, iv.start - T, iv.end - T) for iv in history] == [
            (MachineState.RUNNING, 0, 10),
            (MachineState.IDLE, 10, 20),
            (MachineState.SETUP, 20, 30),
            (MachineState.RUNNING, 30, 40),
        ]
        assert all(iv.uncertain for iv in history[2:])
    finally:
        await store.close()


async def test_another_sites_message_is_dead_lettered_and_counted_never_applied(tmp_path: Path) -> None:
    """Central serves one site and subscribes to its topics only: site b's messages reach it only through a
    misrouted subscription. Applied, b's gw1 and m1 would merge into site s's (same ids, another plant); they
    are dead-lettered with a reason naming both sites, counted, and s's machine stays as it was."""
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    try:
        live = LiveState(IngestConfig(), Catalog(MachinesConfig()))
        applier = Applier(live, ClockRule(), store.intervals_from, site="s")
        rnd = await applier.messages([birth(), batch(state(1, MachineState.RUNNING, 0))], Round())
        await store.commit(rnd.tx)
        other = [Incoming(m.topic.replace("/s/", "/b/"), m.payload, 2, 1, T + 101)
                 for m in (birth(), batch(state(1, MachineState.IDLE, 5)))]
        rnd = await applier.messages(other, Round())
        await store.commit(rnd.tx)
        assert live.counters.site_conflicts == 2 and live.counters.dead_letters == 2
        assert [d.topic for d in rnd.tx.dead_letters] == [m.topic for m in other]
        assert all("serves site 's', not 'b'" in d.reason for d in rnd.tx.dead_letters)
        assert not rnd.applied and not rnd.tx.gateways and not rnd.confirm
        assert live.statuses["m1"].state is MachineState.RUNNING and live.gateways["gw1"].site == "s"
        assert live.sequencers["gw1"].progress().applied == 1
    finally:
        await store.close()
