"""An ack deletes only what this gateway has published in its epoch (in process: a real outbox, a
recording stand-in for the MQTT link). A forged or buggy ack that claims more deletes nothing more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from edge.buffer import Outbox
from edge.config import ForwardConfig
from edge.forwarder import Forwarder
from plantpulse.mqtt import MqttLink
from plantpulse.protocol.models import Ack, EventBatch, MachineState, Replay, SeqRange
from tests.edge.buffer.helpers import T0, count, memory, state
from tests.fixtures.ids import EPOCH2
from tests.fixtures.waiting import async_wait_until


class RecordingLink:
    """What the forwarder needs of MqttLink: a connection flag and publishes (recorded, acknowledged)."""

    def __init__(self, connected: bool) -> None:
        self.connected = connected
        self.generation = 1 if connected else 0
        self.batches: list[EventBatch] = []
        self._up = asyncio.Event()
        if connected:
            self._up.set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    def connect(self) -> None:
        self.connected, self.generation = True, self.generation + 1
        self._up.set()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> asyncio.Future[None]:
        self.batches.append(EventBatch.model_validate_json(payload))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def seqs(self) -> list[int]:
        return [e.seq for b in self.batches for e in b.events if e.seq is not None]


@contextlib.asynccontextmanager
async def running(outbox: Outbox, link: RecordingLink, **cfg: Any) -> AsyncIterator[Forwarder]:
    fwd = Forwarder(ForwardConfig(**cfg), outbox, cast(MqttLink, link), edge_id="gw1",
                    events_topic="plantpulse/v1/s/gw1/events")
    tasks = [asyncio.create_task(fwd.run()), asyncio.create_task(fwd.run_commands())]
    try:
        yield fwd
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def ack(outbox: Outbox, *ranges: tuple[int, int]) -> Ack:
    return Ack(edge_id="gw1", epoch=outbox.epoch, ts=T0, applied=[SeqRange(first=a, last=b) for a, b in ranges])


async def held(outbox: Outbox) -> list[int]:
    return [e.seq for e in await outbox.get_range(1, 10_000)]


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    ob = await Outbox.open(tmp_path / "outbox.sqlite", max_events=100)
    yield ob
    await ob.close()


async def test_an_ack_beyond_what_was_sent_deletes_only_what_was_sent(outbox: Outbox) -> None:
    for k in range(1, 11):
        await outbox.emit([count("m1", k)], memory("m1", k))
    link = RecordingLink(connected=True)
    # a window of 6: seqs 1..6 go out, 7..10 wait for a confirmation
    async with running(outbox, link, batch_max=4, window=6) as fwd:
        await async_wait_until(lambda: link.seqs() == [1, 2, 3, 4, 5, 6], 5, what="the window sent")
        assert fwd.max_sent == 6
        fwd.command(ack(outbox, (1, 1_000_000)))  # claims everything, and more
        await async_wait_until(lambda: outbox.stats().confirmed_seq == 6, 5, what="the sent part confirmed")
        assert fwd.clipped_acks == 1
        held_now = await held(outbox)
        assert held_now[:4] == [7, 8, 9, 10]  # never seen by anybody: kept
        # the window reopened: 7..10 are sent now, and a later ack deletes them
        await async_wait_until(lambda: link.seqs()[-1] == 10, 5, what="the rest sent")
        fwd.command(ack(outbox, (1, 10)))
        await async_wait_until(lambda: outbox.stats().events == 0, 5, what="everything confirmed")
        assert fwd.clipped_acks == 1


async def test_an_ack_of_another_epoch_or_before_any_send_deletes_nothing(outbox: Outbox) -> None:
    for k in range(1, 4):
        await outbox.emit([count("m1", k)], memory("m1", k))
    link = RecordingLink(connected=False)  # nothing published yet (a gateway just started, broker away)
    async with running(outbox, link) as fwd:
        fwd.command(ack(outbox, (1, 3)))
        fwd.command(Ack(edge_id="gw1", epoch=EPOCH2, ts=T0, applied=[SeqRange(first=1, last=3)]))
        fwd.command(Replay(edge_id="gw1", epoch=outbox.epoch, first=1, last=1, ts=T0))  # processed after the acks
        await async_wait_until(lambda: fwd._commands.empty(), 5, what="the commands processed")
        await asyncio.sleep(0)  # the replay's handler has returned (it publishes nothing while disconnected)
        assert await held(outbox) == [1, 2, 3] and fwd.clipped_acks == 1
        link.connect()
        await async_wait_until(lambda: link.seqs() == [1, 2, 3], 5, what="sent once connected")
        fwd.command(ack(outbox, (1, 3)))
        await async_wait_until(lambda: outbox.stats().events == 0, 5, what="confirmed after the send")


async def test_a_reported_dropped_range_can_be_settled_before_anything_was_sent(tmp_path: Path) -> None:
    ob = await Outbox.open(tmp_path / "small.sqlite", max_events=5)
    try:
        for k in range(1, 9):  # state events cannot be merged: the oldest are dropped and reported
            await ob.emit([state("m1", k, MachineState.RUNNING if k % 2 else MachineState.IDLE)], memory("m1", k))
        assert ob.dropped and ob.dropped[0].first == 1
        dropped_last = ob.dropped[0].last
        link = RecordingLink(connected=False)
        async with running(ob, link) as fwd:
            # central saw the dropped range in the birth/health, recorded a gap and settles it
            fwd.command(ack(ob, (1, 1_000)))
            await async_wait_until(lambda: not ob.dropped, 5, what="the dropped range settled")
            assert await held(ob) == list(range(dropped_last + 1, 9))  # the events still held stay
    finally:
        await ob.close()


async def test_absorbed_seqs_count_as_sent_with_the_event_that_absorbed_them(tmp_path: Path) -> None:
    ob = await Outbox.open(tmp_path / "merged.sqlite", max_events=10)
    try:
        for k in range(1, 13):  # counts of one machine only: merged when the outbox is full
            await ob.emit([count("m1", k)], memory("m1", k))
        assert [e.seq for e in await ob.get_range(1, 100)] == [1, 11, 12]  # seq 1 absorbed 2..10
        link = RecordingLink(connected=True)
        async with running(ob, link, batch_max=1, window=1) as fwd:  # one event at a time
            await async_wait_until(lambda: link.seqs() == [1], 5, what="seq 1 sent")
            assert link.batches[0].events[0].absorbed == list(range(2, 11))  # type: ignore[union-attr]
            assert fwd.max_sent == 10  # what seq 1 stands for
            fwd.command(ack(ob, (1, 12)))
            await async_wait_until(lambda: ob.stats().confirmed_seq == 10, 5, what="1..10 settled")
            assert (await held(ob))[:2] == [11, 12] and fwd.clipped_acks == 1
    finally:
        await ob.close()
