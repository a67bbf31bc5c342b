"""No message can stop ingest, by construction (issue 10): a message that makes central itself fail is
set aside (dead-lettered, acknowledged, its seqs settled as ``rejected``) and the rest of its round is
applied; only a store that became unusable ends ingest, and then it says so and acknowledges nothing.

The failures here are injected on purpose, because the protocol's bounds leave no valid message that
makes central fail (that is the point); the injection is one machine id that raises in the store or in
the applier, standing for any bug we do not know of yet. Everything else is real: broker, SQLite file,
central in process (so the injection is possible), a real central process for the store checks.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.config import CentralConfig
from central.ingest.applier import Applier, Round
from central.runtime import Central
from central.store.records import Transaction
from plantpulse.protocol.models import CountEvent, EventBatch, Status
from tests.fixtures.ids import EPOCH1
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import async_wait_until, wait_until


def config(broker: Mosquitto, tmp_path: Path) -> CentralConfig:
    return CentralConfig.model_validate({
        "site": "s", "mqtt": broker.mqtt(broker.central_login(), keepalive=5, reconnect_max=1),
        "store": {"path": str(tmp_path / "central.sqlite")},
        "ingest": {"ack_interval": 0.05, "client_id": "survivor"},
    })


class Gateway:
    """A hand-made gateway: a birth, then batches of count events; records the confirmations."""

    def __init__(self, broker: Mosquitto, edge_id: str = "gw1") -> None:
        self.edge_id = edge_id
        self.acks: list[list[tuple[int, int]]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hand-made-{edge_id}")
        self.client.on_message = lambda c, u, m: self.acks.append(
            [(r["first"], r["last"]) for r in json.loads(m.payload)["applied"]])
        self.client.on_subscribe = lambda *args: subscribed.set()
        login = broker.gateway_login("s", edge_id)  # it logs in as the gateway it plays
        if login is not None:
            login.apply(self.client)
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"plantpulse/v1/s/{edge_id}/cmd/ack", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10)
        birth = Status(edge_id=edge_id, online=True, birth=1, ts=time.time(), epoch=EPOCH1)
        self.publish("status", birth.model_dump_json(), retain=True)  # as a gateway does

    def publish(self, channel: str, payload: str, *, retain: bool = False) -> None:
        topic = f"plantpulse/v1/s/{self.edge_id}/{channel}"
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def counts(self, first: int, machine: str, n: int = 1, good: int = 1) -> None:
        now = time.time()
        events: list[Any] = [CountEvent(seq=first + i, machine_id=machine, start=now, ts=now, good=good, scrap=0)
                             for i in range(n)]
        self.publish("events", EventBatch(edge_id=self.edge_id, epoch=EPOCH1, sent_at=now,
                                          events=events).model_dump_json())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def good(central: Central, machine: str) -> int:
    st = central.live.statuses.get(machine)
    return st.good_total if st is not None else 0


async def test_a_message_that_makes_central_fail_is_set_aside_and_never_comes_back(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw = Gateway(mosquitto)
    try:
        async with Central.running(config(mosquitto, tmp_path)) as central:
            real_commit = central.store.commit

            async def commit(tx: Transaction) -> None:
                if any(c.record.machine_id == "poison" for c in tx.counts):
                    raise OverflowError("Python int too large to convert to SQLite INTEGER")  # as SQLite says it
                await real_commit(tx)

            monkeypatch.setattr(central.store, "commit", commit)
            real_apply = Applier._apply

            async def apply(self: Applier, edge_id: str, item: Any, received_at: float, rnd: Round) -> Round:
                if item.event.machine_id == "boom":
                    raise RuntimeError("a bug we do not know of yet")
                return await real_apply(self, edge_id, item, received_at, rnd)

            monkeypatch.setattr(Applier, "_apply", apply)
            await async_wait_until(lambda: central.ingest.connected, 10, what="central subscribed")
            gw.counts(1, "m1", 3)
            gw.counts(4, "poison", 2)  # fails in the commit
            gw.counts(6, "m1", 2)
            gw.counts(8, "boom")  # fails while applying
            gw.counts(9, "m1", 1)
            await async_wait_until(lambda: good(central, "m1") == 6, 10, what="the valid messages applied")
            await async_wait_until(lambda: gw.acks and gw.acks[-1] == [(1, 9)], 10,
                                   what="every seq confirmed, the set-aside ones as rejected")
            assert central.failed is None and central.live.counters.failed_rounds >= 1
            letters = await central.store.dead_letters()
            reasons = sorted(d.reason for d in letters)
            assert len(letters) == 2
            assert "OverflowError" in reasons[0] and "RuntimeError" in reasons[1]
            gaps = await central.store.gaps()
            assert sorted((g.gap.first, g.gap.last, g.gap.reason) for g in gaps) == [
                (4, 4, "rejected"), (5, 5, "rejected"), (8, 8, "rejected")]
            # the gateway resends the poison (its confirmation was lost, say): a duplicate now, not a loop
            gw.counts(4, "poison", 2)
            gw.counts(10, "m1", 1)
            await async_wait_until(lambda: good(central, "m1") == 7, 10)
            assert len(await central.store.dead_letters()) == 2
        # a new central on the same store and broker session: nothing comes back, nothing counts twice
        monkeypatch.undo()
        async with Central.running(config(mosquitto, tmp_path)) as again:
            await async_wait_until(lambda: again.ingest.connected, 10)
            gw.counts(11, "m1", 1)
            await async_wait_until(lambda: good(again, "m1") == 8, 10, what="central goes on after the restart")
            assert len(await again.store.dead_letters()) == 2
            assert again.failed is None
    finally:
        gw.close()


async def test_an_alert_rule_that_raises_never_blocks_the_data(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a rule divided by zero")

    gw = Gateway(mosquitto)
    try:
        async with Central.running(config(mosquitto, tmp_path)) as central:
            monkeypatch.setattr(central.alerts, "on_round", broken)
            await async_wait_until(lambda: central.ingest.connected, 10)
            gw.counts(1, "m1", 3)
            await async_wait_until(lambda: good(central, "m1") == 3, 10)
            assert central.live.counters.hook_errors >= 1 and central.failed is None
    finally:
        gw.close()


# --------------------------------------------------------------------------- the store itself
def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def immutable_supported(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.write_text("x")
    try:
        chattr("+i", probe)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    chattr("-i", probe)
    return True


def health(central: CentralProcess) -> tuple[int, dict[str, Any]]:
    response = central.http.get("/healthz")
    return response.status_code, response.json()


@pytest.mark.slow
def test_a_store_file_made_read_only_stops_acknowledging_and_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, central_factory: Callable[..., CentralProcess],
) -> None:
    if not immutable_supported(tmp_path):
        pytest.skip("this file system has no immutable flag (chattr +i): the read-only case cannot be made here")
    central = central_factory(mosquitto, site="s", ingest={"client_id": "ro"})
    gw = Gateway(mosquitto)
    store = Path(central.config["store"]["path"])
    try:
        gw.counts(1, "m1", 3)
        wait_until(lambda: central.machine("m1")["good_total"] == 3, 10)
        chattr("+i", store)  # even root cannot write it now
        _, body = wait_until(lambda: (h := health(central))[0] == 503 and h, 5,
                                  what="healthz says the store is unusable")
        assert "not writable" in body["failure"], body
        acks = len(gw.acks)
        gw.counts(4, "m1", 2)  # published while the store is unusable: must wait in the broker
        wait_until(lambda: not central.process.running(), 20, what="central ended after its grace period")
        assert central.process.returncode() == 1
        assert "store is unusable" in central.process.log_text()
        assert all(max(b for _, b in ack) <= 3 for ack in gw.acks[acks:])  # nothing new was confirmed
        chattr("-i", store)
        central.start()
        wait_until(lambda: central.machine("m1")["good_total"] == 5, 20,
                   what="what waited in the broker applied after the restart")
    finally:
        chattr("-i", store)
        gw.close()


@pytest.mark.slow
def test_a_deleted_store_file_is_said_within_seconds(
    mosquitto: Mosquitto, tmp_path: Path, central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto)
    store = Path(central.config["store"]["path"])
    wait_until(lambda: health(central)[0] == 200, 10)
    started = time.monotonic()
    store.unlink()
    _, body = wait_until(lambda: (h := health(central))[0] == 503 and h, 5, what="healthz says the store is gone")
    assert "was deleted" in body["failure"] and time.monotonic() - started < 3
    wait_until(lambda: not central.process.running(), 20, what="central ended")
    assert central.process.returncode() == 1

