"""Defect D of issue 11: after a central restart, queued health messages must not fake a clock skew.

Central is stopped while the gateway keeps publishing (a health message a second), then started: the
queued health messages arrive in one burst. Before the fix their samples (which measure the queueing,
not the clock) made a skew of several seconds, past the 2 s bound, and the outage's events were moved by
as much (faults placed 10 s late, counts clamped as 'future'). Now the skew stays what it was, no count
is clamped, and the state history matches the plant's ground truth per category.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.line import central_line, downtime_off_truth, plant_yaml
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import async_wait_until

pytestmark = pytest.mark.slow


async def test_a_central_restart_while_gateways_publish_keeps_the_skew_and_the_history(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto, plant={"micro_stop_threshold": 0})
    plant = plant_factory(plant_yaml(("m1", "m2"), cycle_time=4.0))
    line = central_line(tmp_path, mosquitto, plant, central, ("m1", "m2"))
    try:
        await line.start()
        assert line.resumed_at is not None
        await line.produce(10)
        await async_wait_until(lambda: central.gateway("gw1")["skew"] is not None, 10, what="a first skew")
        central.stop()
        stopped = time.time()
        plant.act("m1", "fault", {"code": 11, "duration": 2.0})
        await async_wait_until(lambda: time.time() - stopped > 10, 15, what="ten health messages queued")
        central.start()
        await line.produce(10)
        await line.expect_exact_totals()
        assert abs(central.gateway("gw1")["skew"]) < 0.5
        end = time.time()
        start = line.resumed_at + 0.5
        for mid in ("m1", "m2"):
            counts = central.get(f"/api/v1/machines/{mid}/counts", start=start - 60, end=end + 60)
            assert counts["clamped"] == 0, counts
            assert downtime_off_truth(central, plant, mid, start, end) == []
        assert expected_fault_seen(plant)
    finally:
        line.edge.stop()


def expected_fault_seen(plant: SimulatedPlant) -> bool:
    return any(iv["state"] == "fault" for iv in plant.truth("m1")["intervals"])
