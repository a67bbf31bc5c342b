"""The gateway under systemd: READY=1 once it runs, WATCHDOG=1 only while collection and forwarding turn,
STOPPING=1 when it stops (a real gateway, a real plant and broker, a real notification socket)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import parse_edge_config
from edge.forwarder import Forwarder
from edge.gateway import Gateway
from edge.liveness import Beats, stalls
from plantpulse.sdnotify import Notifier
from tests.fixtures.line import edge_machines, plant_yaml
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.notify import NotifySocket
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.services import CentralProcess, EdgeProcess
from tests.fixtures.waiting import wait_until


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_stalls_name_the_loop_that_stands_still() -> None:
    assert stalls(100.0, Beats(collection=99.0, forwarder=99.5, connected=True)) == []
    assert stalls(100.0, Beats(collection=99.0, forwarder=10.0, connected=False)) == []  # waits for the broker
    assert stalls(100.0, Beats(collection=99.0, forwarder=10.0, connected=True)) == [
        "forwarding has not turned for 90 s while connected"]
    assert stalls(100.0, Beats(collection=80.0, forwarder=99.0, connected=True), limit=15) == [
        "collection has not turned for 20 s"]


@pytest.mark.slow
def test_a_gateway_process_says_ready_feeds_the_watchdog_and_says_stopping(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant], listener: NotifySocket,
) -> None:
    plant = plant_factory(plant_yaml(("m1",)))
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw", site="s1", machines=edge_machines(plant, ("m1",)))
    edge.process.env = {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "1000000"}
    edge.start()
    ready = listener.wait_for("READY=1", 30)
    first = listener.wait_for("WATCHDOG=1", 5, after=ready)
    listener.wait_for("WATCHDOG=1", 5, after=first + 1)  # fed again, every half WatchdogSec at most
    assert edge.process.proc is not None
    edge.process.proc.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING=1", 10)
    assert edge.stop() == 0


@pytest.mark.slow
async def test_a_stuck_forwarder_starves_the_watchdog_until_it_turns_again(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant], listener: NotifySocket,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    plant = plant_factory(plant_yaml(("m1",)))
    cfg: dict[str, Any] = {
        "edge_id": "gw", "site": "s1", "data_dir": str(tmp_path / "data"), "machines": edge_machines(plant, ("m1",)),
        "mqtt": mosquitto.mqtt(mosquitto.gateway_login("s1", "gw"), keepalive=5, reconnect_max=1),
    }
    gateway = Gateway(parse_edge_config(yaml.safe_dump(cfg)), config_hash="test", stall_after=1.5,
                      notifier=Notifier({"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "600000"}))
    stuck = asyncio.Event()
    release = asyncio.Event()
    send_some = Forwarder._send_some

    async def maybe_stuck(self: Forwarder) -> None:
        if stuck.is_set():  # as if the outbox's disk hung under the send loop
            await release.wait()
        await send_some(self)

    monkeypatch.setattr(Forwarder, "_send_some", maybe_stuck)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.to_thread(listener.wait_for, "WATCHDOG=1", 30)
        stuck.set()
        await asyncio.to_thread(wait_until, lambda: gateway.stalls(), 10, what="the stall seen")
        await asyncio.to_thread(listener.drain, 0.5)  # a ping sent before the stall was seen
        assert "WATCHDOG=1" not in await asyncio.to_thread(listener.drain, 1.5)
        assert any("is stuck (forwarding has not turned" in r.getMessage() for r in caplog.records)
        release.set()
        stuck.clear()
        await asyncio.to_thread(listener.wait_for, "WATCHDOG=1", 5, after=len(listener.received))
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.slow
def test_central_says_ready_once_the_api_serves_and_feeds_its_watchdog(
    tmp_path: Path, mosquitto: Mosquitto, listener: NotifySocket,
) -> None:
    central = CentralProcess(tmp_path / "central", mosquitto, site="s1")
    central.process.env = {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "1000000"}
    central.start()
    ready = listener.wait_for("READY=1", 10)
    assert listener.received[ready].startswith("READY=1\nSTATUS=API http://127.0.0.1:")
    assert central.http.get("/healthz").status_code in (200, 503)  # serving when READY came
    listener.wait_for("WATCHDOG=1", 5, after=ready)
    assert central.process.proc is not None
    central.process.proc.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING=1", 10)
    # wait for the ordered shutdown to end by itself: a second SIGTERM (stop()) would cut it short
    assert central.process.proc.wait(30) == 0
    central.stop()  # the process has ended: this only closes the test's HTTP client
