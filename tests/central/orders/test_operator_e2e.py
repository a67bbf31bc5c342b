"""Issue 13's end-to-end test: simulators -> edge -> mosquitto -> central -> simulated operator, real processes.

Two orders of two operations each on two simulated machines that wait for their jobs (``auto_jobs:
false``). The simulated operator (``python -m simulators operator``, its own process) follows each
machine's dispatch list from central's API and loads the next operation's job with its setup through
the simulator's control API, as a person would. Half way, the broker goes away: the gateway keeps
collecting into its outbox while the operator goes on switching jobs, and the backlog reaches central
late. Every operation's good and scrap must then equal the simulator's ground truth for its job,
exactly: counts are attributed by their event time, not by what runs when they arrive.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.line import Line
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import ManagedProcess, python_module
from tests.fixtures.services import CentralProcess, CentralReader, EdgeProcess, modbus_machine
from tests.fixtures.waiting import async_wait_until

pytestmark = pytest.mark.slow
WRITE = "e2e-operator-write-key"
W = {"Authorization": f"Bearer {WRITE}"}
MACHINE = """
  - id: {id}
    protocol: modbus
    cycle_time: 2
    cycle_jitter: 0.2
    scrap_rate: 0.15
    setup_time: 10
    idle_between_jobs: 1
    auto_jobs: false
    counter: {{bits: 16, good_start: 65000}}
"""
PLANT = "name: e2e\nseed: 11\nspeed: 20\nmin_state_duration: 0.2\ncontrol_port: 0\nmachines:" + "".join(
    MACHINE.format(id=m) for m in ("cnc-01", "mill-01"))
# (order, [(seq, machine, job, parts)]): 2 plant seconds a part at x20 = 0.1 s on central's clock
ORDERS = [("SO-1", [(10, "cnc-01", "1101", 15), (20, "mill-01", "1201", 15)]),
          ("SO-2", [(10, "cnc-01", "2101", 20), (20, "mill-01", "2201", 20)])]


def order(order_id: str, ops: list[tuple[int, str, str, int]]) -> dict[str, Any]:
    return {"id": order_id, "product": "shaft", "quantity": ops[0][3], "due": time.time() + 3600, "operations": [
        {"seq": seq, "name": f"op{seq}", "machine": m, "quantity": n, "ideal_cycle_time": 0.1, "setup_time": 0.5,
         "job": job} for seq, m, job, n in ops]}


async def test_every_operation_equals_the_truth_of_its_job_across_a_gateway_outage(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(
        mosquitto,
        api={"open_reads": True, "keys": [{"name": "planner", "role": "write",
                                           "sha256": hashlib.sha256(WRITE.encode()).hexdigest()}]},
        orders={"projection_interval": 0.3},
        plant={"machines": [{"id": "cnc-01", "ideal_cycle_time": 0.1}, {"id": "mill-01", "ideal_cycle_time": 0.1}]},
    )
    plant = plant_factory(PLANT)
    machines = [modbus_machine(plant, m, poll=0.1, timeout=0.5) for m in ("cnc-01", "mill-01")]
    for m in machines:  # the PLC's per-job counters split the parts of the read that sees a job change exactly
        m["tags"].update({"job_good_count": {"address": 10}, "job_scrap_count": {"address": 11}})
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw1", site="t", machines=machines, count_interval=0.5,
                       forward={"resend_after": 3.0})
    line = Line(plant, edge, CentralReader(central), ("cnc-01", "mill-01"))
    operator = ManagedProcess("operator", python_module(
        "simulators", "operator", "--central", central.url, "--control", plant.ready["control_url"],
        "--interval", "0.1", "--think", "0.5", "--log-level", "INFO"), tmp_path / "operator.log")

    def ops() -> dict[tuple[str, int], dict[str, Any]]:
        return {(o, op["seq"]): op for o, _ in ORDERS for op in central.get(f"/api/v1/orders/{o}")["operations"]}

    def made(job: str, machine: str) -> int:
        return int(plant.truth(machine)["by_job"].get(job, {}).get("good", 0))

    try:
        await line.start()
        for order_id, routing in ORDERS:
            created = central.http.post("/api/v1/orders", json=order(order_id, routing), headers=W)
            assert created.status_code == 201, created.text
        operator.start()
        # the operator loads SO-1/10; once it has made a few parts the gateway loses the broker
        await async_wait_until(lambda: made("1101", "cnc-01") >= 3, 30, interval=0.1, what="SO-1/10 under way")
        mosquitto.stop()
        # meanwhile SO-1/10 finishes on the machine and the operator moves cnc-01 on to SO-2/10 by the list
        await async_wait_until(lambda: made("2101", "cnc-01") >= 3, 30, interval=0.1,
                               what="the operator switched cnc-01 to SO-2/10 during the outage")
        mosquitto.start()
        # the backlog arrives; mill-01 gets SO-1/20 once central sees SO-1/10 done, then SO-2/20
        await async_wait_until(lambda: made("2201", "mill-01") >= 20, 60, interval=0.2,
                               what="every job made (the last: SO-2/20 on mill-01)")
        plant.pause()
        truth = {m: plant.truth(m)["by_job"] for m in ("cnc-01", "mill-01")}
        expected = {(o, seq): (truth[m][job]["good"], truth[m][job]["scrap"])
                    for o, routing in ORDERS for seq, m, job, _n in routing}

        def settled() -> bool:
            return {k: (v["good"], v["scrap"]) for k, v in ops().items()} == expected

        try:
            await async_wait_until(settled, 30, interval=0.2, what="every operation equals its job's truth")
        except AssertionError:
            got = {k: (v["good"], v["scrap"], v["status"]) for k, v in ops().items()}
            raise AssertionError(f"central {got}\ntruth {expected}\n{operator.tail()}") from None
        assert all(op["status"] == "done" for op in ops().values())
        # OEE over the run counts the same parts, per machine and per operation (over the time it ran)
        assert line.resumed_at is not None
        for m in ("cnc-01", "mill-01"):
            (figures,) = central.get("/api/v1/oee", machine=m, start=line.resumed_at - 1)["machines"]
            made_here = [v for (o, seq), v in expected.items() if dict((s, mm) for s, mm, _j, _n in
                                                                         dict(ORDERS)[o])[seq] == m]
            assert (figures["good"], figures["scrap"]) == tuple(map(sum, zip(*made_here, strict=True)))
            assert figures["availability"] is not None and figures["performance"] is not None
        first = central.get("/api/v1/orders/SO-1/operations/10/oee")["oee"]
        assert (first["good"], first["scrap"]) == expected[("SO-1", 10)]
        assert all(central.get(f"/api/v1/orders/{o}")["status"] == "done" for o, _ in ORDERS)
        unassigned = central.get("/api/v1/machines/cnc-01/dispatch")
        assert (unassigned["unassigned_good"], unassigned["unassigned_scrap"]) == (0, 0)
    finally:
        operator.stop()
        line.edge.stop()
