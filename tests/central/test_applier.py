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
    applier = Applier(live, ClockRule(), store.intervals_from)
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


async def test_a_second_sites_gateway_with_the_same_edge_id_is_set_aside_never_merged(tmp_path: Path) -> None:
    """The broker lets two sites reuse an edge id (users ``<edge_id>@<site>``); central keys gateways by edge id,
    so site b's gw1 would share site a's sequencer and its events be taken as duplicates (lost). The first
    site keeps the id, also after a restart; the other's messages are dead-lettered, counted and say why."""
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    try:
        live = LiveState(IngestConfig(), Catalog(MachinesConfig()))
        applier = Applier(live, ClockRule(), store.intervals_from)
        rnd = await applier.messages([birth(), batch(state(1, MachineState.RUNNING, 0))], Round())
        await store.commit(rnd.tx)
        other = [Incoming(m.topic.replace("/s/", "/b/"), m.payload, 2, 1, T + 101)
                 for m in (birth(), batch(state(1, MachineState.IDLE, 5)))]
        rnd = await applier.messages(other, Round())
        await store.commit(rnd.tx)
        assert live.counters.site_conflicts == 2 and live.statuses["m1"].state is MachineState.RUNNING
        assert all("already belongs to site 's'" in d.reason and "'b'" in d.reason for d in rnd.tx.dead_letters)
        live = LiveState(IngestConfig(), Catalog(MachinesConfig()))  # a restart: the owner comes from the store
        live.restore(await store.load())
        rnd = await Applier(live, ClockRule(), store.intervals_from).messages(other[:1], Round())
        assert live.counters.site_conflicts == 1 and live.gateways["gw1"].site == "s"
    finally:
        await store.close()


async def test_a_machine_id_another_sites_gateway_reports_is_set_aside_never_merged(tmp_path: Path) -> None:
    """Site b's gateway gw2 reports a machine m1 while site s's gw1 already reports its own m1: b's events are
    dead-lettered with the reason and counted (its seqs settled, so the gateway is answered), s's m1 stays
    as it was; a machine moving between gateways of one site is still followed."""
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    try:
        live = LiveState(IngestConfig(), Catalog(MachinesConfig()))
        applier = Applier(live, ClockRule(), store.intervals_from)
        rnd = await applier.messages([birth(), batch(state(1, MachineState.RUNNING, 0))], Round())
        await store.commit(rnd.tx)

        def of(edge: str, site: str, message: Incoming) -> Incoming:
            body = message.payload.replace(b'"gw1"', f'"{edge}"'.encode())
            return Incoming(message.topic.replace("/s/gw1/", f"/{site}/{edge}/"), body, 3, 1, T + 102)

        rnd = await applier.messages([of("gw2", "b", birth()), of("gw2", "b", batch(state(1, MachineState.FAULT, 5)))],
                                     Round())
        await store.commit(rnd.tx)
        assert live.counters.site_conflicts == 1 and live.statuses["m1"].state is MachineState.RUNNING
        (dead,) = rnd.tx.dead_letters
        assert "machine id 'm1' already belongs to site 's'" in dead.reason and b'"fault"' in dead.payload
        assert live.sequencers["gw2"].progress().applied == 1  # settled: the gateway is answered, not asked again
        rnd = await applier.messages([of("gw3", "s", birth()), of("gw3", "s", batch(state(1, MachineState.IDLE, 6)))],
                                     Round())
        assert live.statuses["m1"].state is MachineState.IDLE  # moved to another gateway of the same site
    finally:
        await store.close()
