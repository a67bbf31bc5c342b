"""Orders survive central's death: a real central process killed with SIGKILL restores its book (issue 13)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until

WRITE = "restart-write-key"
W = {"Authorization": f"Bearer {WRITE}"}


def test_orders_changes_and_the_audit_trail_survive_a_kill(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(
        mosquitto, api={"open_reads": True, "keys": [
            {"name": "planner", "role": "write", "sha256": hashlib.sha256(WRITE.encode()).hexdigest()}]},
        plant={"machines": [{"id": "cnc-01", "work_centre": "turning"}, {"id": "cnc-02", "work_centre": "turning"}]},
    )
    due = time.time() + 86_400
    body = {"id": "SO-7", "product": "flange", "quantity": 30, "due": due, "operations": [
        {"seq": 10, "name": "turn", "work_centre": "turning", "quantity": 30, "ideal_cycle_time": 20, "job": "77"},
        {"seq": 20, "name": "drill", "machine": "cnc-02", "quantity": 30, "ideal_cycle_time": 10}]}
    http = central.http
    assert http.post("/api/v1/orders", json=body, headers=W).status_code == 201
    for machine in ("cnc-01", "cnc-02"):  # a work-centre operation may run on several machines at once
        started = http.post("/api/v1/orders/SO-7/operations/10/start", json={"machine": machine}, headers=W)
        assert started.status_code == 200, started.text
    assert http.patch("/api/v1/orders/SO-7", json={"priority": 9}, headers=W).status_code == 200
    before = central.get("/api/v1/orders/SO-7")
    assert sorted(before["operations"][0]["running_on"]) == ["cnc-01", "cnc-02"]
    central.kill9()
    central.start()
    after = central.get("/api/v1/orders/SO-7")
    assert (after["priority"], after["status"], after["operations"][0]["status"]) == (9, "open", "running")
    assert sorted(after["operations"][0]["running_on"]) == ["cnc-01", "cnc-02"]
    wait_until(lambda: central.get("/api/v1/orders/SO-7")["projected_finish"] is not None, 10,
               what="the first projection after the restart")
    dispatch = central.get("/api/v1/machines/cnc-02/dispatch")
    assert [(e["order_id"], e["seq"]) for e in dispatch["operations"]] == [("SO-7", 20), ("SO-7", 10)]
    assert dispatch["running"] == ["SO-7/10"]
