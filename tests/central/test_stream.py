"""The live stream: the whole state on connect, server time in every message, and at most one update
per machine per interval while a backlog pours in (a real central process, a hand-made gateway)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from plantpulse.protocol.models import EventBatch, MachineState, StateEvent, Status
from tests.fixtures.ids import EPOCH1
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until


def test_stream_snapshot_server_time_and_one_update_per_machine_per_interval(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]
) -> None:
    central = central_factory(mosquitto, site="s", api={"stream_min_interval": 1.0})
    events: list[tuple[str, dict[str, Any], float]] = []
    stop = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{central.url}/api/v1/stream", timeout=30) as response:
                name = ""
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        events.append((name, json.loads(line.split(":", 1)[1]), time.monotonic()))
        except httpx.HTTPError:
            if not stop.is_set():
                raise  # the stream broke while the test still listened

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    wait_until(lambda: events and events[0][0] == "snapshot", 10, what="the snapshot on connect")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="backlog")
    login = mosquitto.gateway_login("s", "gw1")  # a hand-made gateway gw1 with a backlog
    assert login is not None
    login.apply(client)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        now = time.time()
        birth = Status(edge_id="gw1", online=True, birth=1, ts=now, epoch=EPOCH1, machines=["m1"], latest_seq=0)
        client.publish("plantpulse/v1/s/gw1/status", birth.model_dump_json(), qos=1).wait_for_publish(5)
        states = [MachineState.RUNNING, MachineState.IDLE]
        started = time.monotonic()
        for i in range(60):  # a backlog: 600 state changes of one machine, as fast as they come
            batch = EventBatch(edge_id="gw1", epoch=EPOCH1, sent_at=now, events=[
                StateEvent(seq=i * 10 + k + 1, machine_id="m1", ts=now - 600 + i * 10 + k, state=states[k % 2])
                for k in range(10)
            ])
            client.publish("plantpulse/v1/s/gw1/events", batch.model_dump_json(), qos=1).wait_for_publish(5)
        wait_until(lambda: central.gateway("gw1")["applied_seq"] == 600, 30, what="the backlog applied")
        wait_until(lambda: any(n == "machine" and d["machine"]["state"] == "idle" and t > started
                               for n, d, t in events), 10, what="the final state on the stream")
        updates = [t for n, d, t in events if n == "machine" and d["machine"]["id"] == "m1"]
        span = updates[-1] - updates[0] if len(updates) > 1 else 0.0
        assert len(updates) <= span / 1.0 + 2, f"{len(updates)} updates of m1 in {span:.1f} s"
        assert all("server_time" in d for _, d, _ in events)
    finally:
        stop.set()
        client.loop_stop()
        client.disconnect()
