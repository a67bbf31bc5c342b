"""Two ingest guarantees at their exact moment, in process (real broker, real SQLite store):

* a confirmation to a gateway never covers seqs whose commit has not finished;
* a store that fails (a full disk, by SQLite's own page limit) ends the service instead of leaving
  it serving stale data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.config import CentralConfig
from central.ingest.catchup import CatchUpLog
from central.runtime import Central
from central.store.records import Transaction
from central.store.sqlite import SqliteStore
from plantpulse.protocol.models import CountEvent, EventBatch, MachineState, StateEvent, Status
from tests.fixtures.ids import EPOCH1
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import async_wait_until


def config(broker: Mosquitto, tmp_path: Path) -> CentralConfig:
    return CentralConfig.model_validate({
        "site": "s", "mqtt": broker.mqtt(broker.central_login(), keepalive=5, reconnect_max=1),
        "store": {"path": str(tmp_path / "central.sqlite")},
        "ingest": {"ack_interval": 0.05},
    })


class Gateway:
    """A hand-made gateway: publishes batches and records the confirmations it receives."""

    def __init__(self, broker: Mosquitto, latest: int | None = None) -> None:
        self.acks: list[list[tuple[int, int]]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hand-made-gw")
        self.client.on_message = lambda c, u, m: self.acks.append(
            [(r["first"], r["last"]) for r in json.loads(m.payload)["applied"]]
        )
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        login = broker.gateway_login("s", "gw1")  # it logs in as the gateway it plays
        if login is not None:
            login.apply(self.client)
        self.client.connect(broker.host, broker.port)
        self.client.subscribe("plantpulse/v1/s/gw1/cmd/ack", qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK for the ack topic"
        birth = Status(edge_id="gw1", online=True, birth=1, ts=time.time(), epoch=EPOCH1, oldest_seq=1,
                       latest_seq=latest)
        self.client.publish("plantpulse/v1/s/gw1/status", birth.model_dump_json(), qos=1).wait_for_publish(5)

    def send(self, first: int, n: int) -> None:
        now = time.time()
        events: list[Any] = [StateEvent(seq=first, machine_id="m1", ts=now, state=MachineState.RUNNING)]
        events += [CountEvent(seq=first + i, machine_id="m1", start=now, ts=now, good=1, scrap=0) for i in range(1, n)]
        batch = EventBatch(edge_id="gw1", epoch=EPOCH1, sent_at=now, events=events)
        self.client.publish("plantpulse/v1/s/gw1/events", batch.model_dump_json(), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def test_confirmations_never_run_ahead_of_the_commit(mosquitto: Mosquitto, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async with Central.running(config(mosquitto, tmp_path)) as central:
        await async_wait_until(lambda: central.ingest.connected, 10, what="central subscribed")
        gw = Gateway(mosquitto)
        try:
            gw.send(1, 10)
            await async_wait_until(lambda: gw.acks and gw.acks[-1] == [(1, 10)], 10, what="the first ack")
            real_commit = central.store.commit
            committing = asyncio.Event()
            release = asyncio.Event()

            async def slow_commit(tx: Transaction) -> None:
                if tx.counts:
                    committing.set()
                    await release.wait()  # the fsync of a slow SD card, stretched
                await real_commit(tx)

            monkeypatch.setattr(central.store, "commit", slow_commit)
            gw.send(11, 10)
            await asyncio.wait_for(committing.wait(), 10)
            acks_before = len(gw.acks)
            # the previous round's confirmation is still due (the ack timer had not fired yet): sending
            # it now must carry only what is on disk, not the round being committed
            central.ingest._confirm.add(("gw1", EPOCH1))  # white box: the state the ack timer would find
            central.ingest.confirm_now()
            await asyncio.sleep(0.3)  # give a wrong confirmation every chance to arrive (several ack intervals)
            assert all(max(b for _, b in ack) <= 10 for ack in gw.acks[acks_before:]), gw.acks
            release.set()
            await async_wait_until(lambda: gw.acks and gw.acks[-1] == [(1, 20)], 10,
                                   what="the ack after the commit")
        finally:
            gw.close()


async def test_a_backlog_being_caught_up_shows_its_progress_in_the_log(
        mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="central.ingest.service")
    async with Central.running(config(mosquitto, tmp_path)) as central:
        await async_wait_until(lambda: central.ingest.connected, 10, what="central subscribed")
        central.ingest._catchup = CatchUpLog(threshold=100, every=0.1)  # white box: a small backlog is enough
        gw = Gateway(mosquitto, latest=1200)  # its birth says: 1,200 events held
        try:
            for first in range(1, 1201, 200):
                gw.send(first, 200)
                await async_wait_until(lambda f=first: gw.acks and gw.acks[-1] == [(1, f + 199)], 10,
                                       what="the batch confirmed")
            await async_wait_until(lambda: any("caught up" in r.getMessage() for r in caplog.records), 10,
                                   what="the caught-up line")
            lines = [r.getMessage() for r in caplog.records if "gateway gw1 c" in r.getMessage()]
            assert lines[0].startswith("gateway gw1 catching up: ") and "of 1,200" in lines[0], lines
            assert lines[-1].startswith("gateway gw1 caught up: "), lines
        finally:
            gw.close()


async def test_a_failing_store_ends_the_service(mosquitto: Mosquitto, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("central.runtime.STORE_FAILURE_GRACE", 0.1)
    async with Central.running(config(mosquitto, tmp_path)) as central:
        await async_wait_until(lambda: central.ingest.connected, 10, what="central subscribed")
        gw = Gateway(mosquitto)
        try:
            gw.send(1, 5)
            await async_wait_until(lambda: gw.acks, 10, what="the first ack")
            # the disk is full: SQLite refuses to grow the file (its real SQLITE_FULL error path)
            assert isinstance(central.store, SqliteStore)
            db = central.store._db  # white box: the one connection's page limit
            pages = (await (await db.execute("PRAGMA page_count")).fetchone())[0]  # type: ignore[index]
            await db.execute(f"PRAGMA max_page_count = {pages}")
            for first in range(6, 600, 50):
                gw.send(first, 50)
            await asyncio.wait_for(central.wait_failed(), 20)
            assert central.failed == "ingest" and "store unusable" in (central.failure or "")
        finally:
            gw.close()
