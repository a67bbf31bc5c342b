"""Failure alerts through the whole path: plant fault -> edge -> broker -> central -> API and a webhook.

The webhook receiver is a real HTTP server in the test. It can hold a request without answering
(so central can be killed between sending a notification and recording it as sent) or be down.
Every notification id must arrive at least once, and twice only after such a kill.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.line import plant_yaml
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.services import CentralProcess, EdgeProcess, modbus_machine
from tests.fixtures.waiting import wait_until
from tests.fixtures.webhook import serve

pytestmark = pytest.mark.slow
WRITE, READ = "write-key-for-tests", "read-key-for-tests"
POLL = 0.5


class Receiver:
    """A webhook receiver: records every notification id it is sent; can hang or be down."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ids: list[str] = []
        self.hang = threading.Event()  # set: hold requests without answering
        self.release = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.server = serve(self.port, self._post)

    def _post(self, _path: str, body: dict[str, Any]) -> bytes | None:
        self.ids.append(body["id"])
        if self.hang.is_set():
            self.release.wait(60)
            return None  # no answer at all: the connection just dies with the process
        return b'{"ok": true}'

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


def alerts(central: CentralProcess, **params: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = central.get("/api/v1/alerts", **params)["alerts"]
    return result


def open_fault(central: CentralProcess, machine_id: str) -> dict[str, Any] | None:
    found = [a for a in alerts(central, rule="fault", subject=machine_id) if a["status"] != "resolved"]
    return found[0] if found else None


def test_fault_to_alert_to_webhook_with_ack_and_kills(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess], receiver: Receiver,
) -> None:
    plant = plant_factory(plant_yaml(("m1", "m2"), faults=False))
    central = central_factory(
        mosquitto,
        api={"open_reads": False, "keys": [
            {"name": "tablet", "role": "write", "sha256": hashlib.sha256(WRITE.encode()).hexdigest()},
            {"name": "board", "role": "read", "sha256": hashlib.sha256(READ.encode()).hexdigest()},
        ]},
        notify={"webhooks": [{"name": "hook", "kind": "generic", "url": f"http://127.0.0.1:{receiver.port}/h"}]},
    )
    central.http.headers["authorization"] = f"Bearer {READ}"
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw1", site="t", count_interval=1.0,
                       machines=[modbus_machine(plant, m, poll=POLL) for m in ("m1", "m2")])
    edge.start()
    try:
        wait_until(lambda: all(central.machine(m)["state"] == "running" for m in ("m1", "m2")), 30,
                   what="both machines running in central")

        # 1. a fault is an open alert in the API (within the poll interval + 1 s on a quiet machine: the
        # latency is measured by `python -m bench fault_alert`; the deadline here leaves room for a loaded
        # test machine -- it failed once at poll + 1 s while other suites ran beside it)
        injected = time.monotonic()
        plant.act("m1", "fault", {"code": 321})
        alert = wait_until(lambda: open_fault(central, "m1"), 10, interval=0.01, what="the fault alert in the API")
        latency = time.monotonic() - injected
        assert alert["details"]["fault_code"] == 321 and alert["severity"] == "critical"
        opened_id = f"{alert['id']}.0-opened"
        wait_until(lambda: opened_id in receiver.ids, 10, what="the webhook got the alert")

        # 2. writes need a write key; reads a key too (open_reads is off here)
        url = f"{central.url}/api/v1/alerts/{alert['id']}"
        assert httpx.post(f"{url}/ack").status_code == 401
        assert httpx.get(f"{central.url}/api/v1/alerts").status_code == 401
        assert httpx.post(f"{url}/ack", headers={"authorization": f"Bearer {READ}"}).status_code == 403
        assert httpx.post(f"{url}/resolve", headers={"authorization": f"Bearer {READ}"}).status_code == 403
        assert httpx.post(f"{url}/ack", headers={"authorization": "Bearer nope"}).status_code == 401
        acked = httpx.post(f"{url}/ack", json={"by": "张工", "note": "换刀中"},
                           headers={"authorization": f"Bearer {WRITE}"})
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "张工"
        wait_until(lambda: f"{alert['id']}.1-acknowledged" in receiver.ids, 10, what="the acknowledgement sent")

        # 3. central dies between sending a notification and recording it: the receiver holds the
        #    request, central is killed, and the restarted central sends the same id again
        receiver.hang.set()
        plant.act("m1", "clear")
        wait_until(lambda: any(i.endswith("-resolved") and i.startswith(alert["id"]) for i in receiver.ids), 15,
                   what="the resolved notification in flight")
        in_flight = next(i for i in receiver.ids if i.startswith(alert["id"]) and i.endswith("-resolved"))
        central.kill9()
        receiver.hang.clear()
        receiver.release.set()
        central.start()
        central.http.headers["authorization"] = f"Bearer {READ}"
        wait_until(lambda: receiver.ids.count(in_flight) == 2, 30, what="the in-flight notification sent again")

        # 4. central dies after an alert was committed but before it could be sent (receiver down)
        receiver.stop()
        plant.act("m2", "fault", {"code": 555})
        second = wait_until(lambda: open_fault(central, "m2"), 10, interval=0.02, what="the second fault alert")
        central.kill9()
        receiver.release.clear()
        receiver.start()
        central.start()
        second_id = f"{second['id']}.0-opened"
        wait_until(lambda: second_id in receiver.ids, 30, what="the pending notification delivered after restart")
        plant.act("m2", "clear")
        wait_until(lambda: f"{second['id']}.1-resolved" in receiver.ids, 30, what="the second resolved")

        # every id at least once; twice only for the one in flight at a kill
        counts = Counter(receiver.ids)
        assert {opened_id, f"{alert['id']}.1-acknowledged", in_flight, second_id} <= set(counts)
        assert {i for i, n in counts.items() if n > 1} == {in_flight}, counts
        print(f"fault-to-alert latency in the API: {latency * 1000:.0f} ms")
    finally:
        edge.stop()



def test_alerts_from_a_backlog_are_history_and_page_only_what_still_stands(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess], receiver: Receiver,
) -> None:
    plant = plant_factory(plant_yaml(("m1", "m2"), faults=False))
    central = central_factory(
        mosquitto, ingest={"historic_age": 2.0, "ack_interval": 0.2},
        notify={"webhooks": [{"name": "hook", "kind": "generic", "url": f"http://127.0.0.1:{receiver.port}/h"}]},
    )
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw1", site="t", count_interval=1.0,
                       machines=[modbus_machine(plant, m, poll=0.2) for m in ("m1", "m2")])
    edge.start()
    try:
        wait_until(lambda: all(central.machine(m)["state"] == "running" for m in ("m1", "m2")), 30,
                   what="both machines running in central")
        central.stop()
        # while central is away: m1 breaks down and is repaired; m2 breaks down and stays down
        plant.act("m1", "fault", {"code": 11, "duration": 1.0})
        plant.act("m2", "fault", {"code": 22})
        faulted = time.monotonic()
        wait_until(lambda: plant.machine("m1")["state"] == "running", 10, what="m1 repaired")
        wait_until(lambda: time.monotonic() - faulted > 3.0, 5)  # the backlog is older than historic_age
        central.start()
        wait_until(lambda: central.machine("m2")["state"] == "fault" and central.machine("m1")["state"] == "running",
                   30, what="the backlog applied")
        m1 = wait_until(lambda: alerts(central, rule="fault", subject="m1"), 10, what="m1's alert recorded")
        assert m1[0]["historic"] is True and m1[0]["status"] == "resolved", json.dumps([m1, central.gateway("gw1")])
        # m2 still stands after the catch-up: its alert pages once the gateway is caught up
        m2 = wait_until(lambda: [a for a in alerts(central, rule="fault", subject="m2") if a["live_at"]], 15,
                        what="m2's alert confirmed live")
        wait_until(lambda: any(i.startswith(m2[0]["id"]) for i in receiver.ids), 15, what="m2 paged")
        assert not any(i.startswith(m1[0]["id"]) for i in receiver.ids), "a historic alert paged someone"
    finally:
        edge.stop()
