"""Central with real gateways, a real broker and a simulated plant: exact totals through every break.

Each test breaks the system for real (central killed with SIGKILL, the broker restarted without
persistence while central is away, the broker dropping what it queued for central) and then
requires central's API to show exactly what the plant made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plantpulse.broker_auth import provision
from tests.fixtures.line import (
    central_line,
    central_metric,
    downtime_off_truth,
    plant_yaml,
)
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import async_wait_until

pytestmark = pytest.mark.slow


async def test_central_killed_and_broker_restarted_while_away_totals_stay_exact(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto)
    line = central_line(tmp_path, mosquitto, plant_factory(plant_yaml()), central)
    try:
        await line.start()
        for _ in range(2):
            await line.produce(15)
            central.kill9()  # mid-stream, no goodbye
            await line.produce(10)
            central.start()
        await line.produce(10)
        central.stop()
        await line.produce(20)
        mosquitto.restart()  # without persistence: what it queued for central is gone
        await line.produce(10)
        central.start()
        await line.produce(10)
        # central away, the gateway killed and restarted: it sends everything unconfirmed again,
        # so central finds those events twice in its queue: duplicates, never double counts
        central.stop()
        await line.produce(20)
        line.edge.kill9()
        line.edge.start()
        await line.produce(10)
        central.start()
        await async_wait_until(lambda: central_metric(central, "duplicates") > 0, 30,
                               what="the resent events recognised as duplicates")
        await line.expect_exact_totals()
        gw = central.gateway("gw1")
        await async_wait_until(lambda: central.gateway("gw1")["applied_seq"] == central.gateway("gw1")["latest_seq"],
                               20, what="every seq applied")
        assert gw["held_events"] == 0
        assert central.get("/api/v1/gaps")["gaps"] == []
    finally:
        line.edge.stop()


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
async def test_a_gap_left_by_the_broker_is_closed_by_a_replay(
    tmp_path: Path, broker_factory: Callable[..., Mosquitto], plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess], signed: bool,
) -> None:
    # the broker keeps only 3 messages for an absent central: the rest of the backlog is dropped
    # there, and when central returns the live stream runs ahead of what it has
    broker = broker_factory(max_queued_messages=3)
    central_settings: dict[str, Any] = {}
    edge_settings: dict[str, Any] = {}
    if signed:  # central's signed replay requests (and acks) are what closes the gap
        provision(tmp_path / "keys", "t", ["gw1"], sign=True)
        central_settings["commands"] = {"keys_dir": str(tmp_path / "keys/central/command-keys")}
        edge_settings["commands"] = {"secret_file": str(tmp_path / "keys/edge/t/gw1/command.key")}
    central = central_factory(broker, **central_settings)
    # resend_after 60: only a replay can close the gap within the test's deadline
    line = central_line(tmp_path, broker, plant_factory(plant_yaml()), central,
                        forward={"batch_max": 5, "resend_after": 60.0}, **edge_settings)
    try:
        await line.start()
        await line.produce(10)
        central.stop()
        await line.produce(60)
        central.start()
        await line.expect_exact_totals()
        assert central_metric(central, "replays_asked") > 0
        assert central.get("/api/v1/gaps")["gaps"] == []
        assert central.gateway("gw1")["missing"] == []
        assert "ignoring a command" not in line.edge.process.log_text()
        if signed:
            assert central_metric(central, "commands_signed") > 0 and central_metric(central, "commands_unsigned") == 0
    finally:
        line.edge.stop()


async def test_dropped_ranges_duplicates_and_a_new_epoch(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto)
    line = central_line(tmp_path, mosquitto, plant_factory(plant_yaml(speed=60)), central,
                        buffer={"max_events": 100, "max_bytes": 1_000_000})
    try:
        await line.start()
        await line.produce(10)
        mosquitto.stop()
        await line.produce(900)
        mosquitto.start()
        await async_wait_until(lambda: central.get("/api/v1/gaps")["gaps"], 30, what="a data gap in the API")
        await async_wait_until(
            lambda: (gw := central.gateway("gw1"))["buffer_events"] == 0 and gw["applied_seq"] == gw["latest_seq"],
            60, what="the gateway confirmed past the gaps")
        # read once every gap is in: under load the first gaps are listed before the later ones arrive
        gaps = central.get("/api/v1/gaps")["gaps"]
        assert {g["reason"] for g in gaps} == {"buffer_full"}
        assert central_metric(central, "gaps") == len(gaps)
        epoch = central.gateway("gw1")["epoch"]
        # a replaced disk: a new epoch, whose seqs start again at 1 and are all applied
        line.edge.kill9()
        for f in line.edge.data_dir.glob("outbox.sqlite*"):
            f.unlink()
        line.edge.start()
        await async_wait_until(lambda: central.gateway("gw1")["epoch"] != epoch, 30, what="the new epoch")
        await async_wait_until(lambda: (central.gateway("gw1")["applied_seq"] or 0) > 3, 30,
                               what="new-epoch events applied")
        before = {m: central.machine(m)["good_total"] for m in line.machines}
        await line.produce(30)
        await async_wait_until(
            lambda: sum(central.machine(m)["good_total"] for m in line.machines) > sum(before.values()), 30,
            what="counting goes on in the new epoch")
    finally:
        line.edge.stop()


async def test_downtime_per_category_matches_the_ground_truth(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto, plant={"micro_stop_threshold": 0})
    plant = plant_factory(plant_yaml(("m1",), cycle_time=4.0))
    line = central_line(tmp_path, mosquitto, plant, central, ("m1",))
    try:
        await line.start()
        assert line.resumed_at is not None
        plant.act("m1", "maintenance", {"duration": 1.0})
        await line.produce(40)
        plant.act("m1", "setup", {"duration": 1.0})
        await line.produce(20)
        await line.expect_exact_totals()
        end = time.time()
        start = line.resumed_at + 0.5
        assert downtime_off_truth(central, plant, "m1", start, end) == []  # one poll (0.1 s) per transition
        states = {iv["state"] for iv in plant.truth("m1")["intervals"]}
        assert {"setup", "maintenance", "running"} <= states
        report = central.get("/api/v1/machines/m1/downtime", start=start, end=end)
        assert report["offline"] == 0 and report["no_data"] <= 0.3
    finally:
        line.edge.stop()
