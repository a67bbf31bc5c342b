"""Work orders end to end: simulated machine -> real gateway -> mosquitto -> central (real processes).

The simulated machine waits for its job (``auto_jobs: false``) as a machine whose operator loads a
program does; the test plays that operator through the simulator's control API. The job number the
PLC then reports starts the order's operation in central, and the operation's good and scrap must
equal the simulator's ground truth for that job, exactly. Then a fault on the machine makes the
next order go at risk (cause: the machine is down) well before its due time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.line import central_line
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import async_wait_until

pytestmark = pytest.mark.slow
WRITE = "e2e-write-key"
W = {"Authorization": f"Bearer {WRITE}"}
PLANT = """
name: orders
seed: 5
speed: 20
min_state_duration: 0.2
control_port: 0
machines:
  - id: cnc-01
    protocol: modbus
    cycle_time: 2
    cycle_jitter: 0
    scrap_rate: 0.15
    setup_time: 10
    idle_between_jobs: 1
    auto_jobs: false
    counter: {bits: 16, good_start: 100}
"""


def order(order_id: str, job: str, parts: int, due: float) -> dict[str, Any]:
    # the plant runs 20x fast: 2 plant seconds per part are 0.1 s on the clock central projects with
    return {"id": order_id, "product": "pin", "quantity": parts, "due": due,
            "operations": [{"seq": 10, "name": "turn", "machine": "cnc-01", "quantity": parts,
                            "ideal_cycle_time": 0.1, "job": job}]}


async def test_a_job_number_starts_the_operation_its_counts_match_the_truth_and_a_fault_warns_in_time(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(
        mosquitto,
        api={"open_reads": True, "keys": [{"name": "planner", "role": "write",
                                           "sha256": hashlib.sha256(WRITE.encode()).hexdigest()}]},
        orders={"projection_interval": 0.3, "confirm": 0, "margin": 30, "hysteresis": 10, "uncertainty": 0,
                "default_repair": 600},
        plant={"machines": [{"id": "cnc-01", "ideal_cycle_time": 0.1}]},
    )
    plant = plant_factory(PLANT)
    line = central_line(tmp_path, mosquitto, plant, central, machines=("cnc-01",))
    http = central.http
    try:
        await line.start()
        created = http.post("/api/v1/orders", json=order("SO-1", "1234", 40, time.time() + 3600), headers=W)
        assert created.status_code == 201, created.text
        plant.act("cnc-01", "job", {"number": 1234, "quantity": 40, "setup_time": 10})

        def op(order_id: str) -> dict[str, Any]:
            result: dict[str, Any] = central.get(f"/api/v1/orders/{order_id}")["operations"][0]
            return result

        await async_wait_until(lambda: op("SO-1")["status"] == "running", 20, what="the job number started SO-1/10")
        truth: dict[str, Any] = {}

        def job_done() -> bool:
            truth.update(plant.truth("cnc-01")["by_job"].get("1234", {}))
            return int(truth.get("good", 0)) >= 40

        await async_wait_until(job_done, 60, interval=0.2, what="the simulated job made its 40 good parts")
        plant.pause()
        expected = plant.truth("cnc-01")["by_job"]["1234"]
        await async_wait_until(lambda: (op("SO-1")["good"], op("SO-1")["scrap"]) == (expected["good"],
                                                                                     expected["scrap"]),
                               30, what=f"SO-1/10 good/scrap equal the truth {expected}")
        done = central.get("/api/v1/orders/SO-1")
        assert done["status"] == "done" and done["operations"][0]["status"] == "done"
        assert done["operations"][0]["over"] == expected["good"] - 40
        plant.resume()

        # the next order needs 5 s of work and is due in 120 s; the machine then fails: at risk at once
        due = time.time() + 120
        assert http.post("/api/v1/orders", json=order("SO-2", "2345", 50, due), headers=W).status_code == 201
        assert central.get("/api/v1/orders/SO-2")["at_risk"] is False
        plant.act("cnc-01", "fault", {"code": 7})
        try:
            await async_wait_until(lambda: central.get("/api/v1/orders/SO-2")["at_risk"], 20,
                                   what="SO-2 at risk after the fault")
        except AssertionError:
            raise AssertionError(f"{central.machine('cnc-01')}\n{central.get('/api/v1/orders/SO-2')}\n"
                                 f"{central.process.tail()}") from None
        assert time.time() < due - 60  # warned well before its due time
        why = central.get("/api/v1/orders/SO-2")["why"]
        assert (why["cause"], why["machine"], why["order_id"], why["seq"]) == ("fault", "cnc-01", "SO-2", 10)
        (alert,) = central.get("/api/v1/alerts", rule="order_at_risk")["alerts"]
        assert alert["subject"] == "SO-2" and alert["details"]["cause"] == "fault"
    finally:
        line.edge.stop()
