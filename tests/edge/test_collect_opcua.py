"""OPC UA collection against real simulated servers, compared with the ground truth.

One plant for the module (two servers: starting one takes ~1.5 s): ``ua-sec`` has its own server
with a user login and a 16-bit counter that rolls over early; ``ua-a``, ``ua-b`` and ``ua-long``
share another server. States last at least 0.5 s and subscriptions publish every 0.1 s, except
for ``ua-long``, whose subscription publishes every 2 s: a 0.2 s fault injected there arrives
(most likely) inside one batch and must still come out as its own state (queue size > 1).

The simulated servers send no source timestamps, so within one batch only the order of each
variable's own values is known (see edge/collectors/opcua_values.py); states that each last
longer than the publishing interval keep the comparison with the truth exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.collectors import opcua
from edge.collectors.opcua_values import Change
from plantpulse.protocol.models import MachineState
from tests.fixtures.collection import STATES, Gateway, assert_states_match, in_state
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.waiting import async_wait_until

SHARED_PORT = free_port()
PLANT = f"""
name: edge-opcua
seed: 23
speed: 30
min_state_duration: 0.5
control_port: 0
machines:
  - id: ua-sec
    protocol: opcua
    cycle_time: 3
    cycle_jitter: 0.2
    scrap_rate: 0.1
    setup_time: 15
    idle_between_jobs: 10
    job_quantity: [10, 20]
    faults: {{mtbf: 30, mttr: 10, codes: {{701: 1, 702: 1}}}}
    counter: {{bits: 16, good_start: 65510}}
    opcua:
      users: [{{username: operator, password: s3cret}}]
  - id: ua-a
    protocol: opcua
    port: {SHARED_PORT}
    cycle_time: 4
    scrap_rate: 0.1
    setup_time: 15
    job_quantity: [5, 10]
    counter: {{bits: 32}}
  - id: ua-b
    protocol: opcua
    port: {SHARED_PORT}
    cycle_time: 4
    scrap_rate: 0.1
    setup_time: 20
    job_quantity: [5, 10]
    faults: {{mtbf: 40, mttr: 10}}
    counter: {{bits: 32}}
  - id: ua-long
    protocol: opcua
    port: {SHARED_PORT}
    cycle_time: 3
    scrap_rate: 0
    job_quantity: [100000, 100000]
    counter: {{bits: 32}}
    min_state_duration: 0.1
"""
NS = "urn:plantpulse:simulator"


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedPlant]:
    p = SimulatedPlant(Path(tmp_path_factory.mktemp("edge-opcua")), PLANT).start()
    yield p
    p.stop()


def opcua_yaml(plant: SimulatedPlant, mid: str, extra: str = "", publishing: float = 0.1, timeout: float = 1.0) -> str:
    bits = 16 if mid == "ua-sec" else 32
    return f"""
  - id: {mid}
    protocol: opcua
    endpoint: {plant.endpoint(mid)["endpoint"]}
    namespace_uri: {NS}
    publishing_interval: {publishing}
    sampling_interval: 0.05
    keepalive_interval: 0.5
    timeout: {timeout}
    retry_max: 1.0
    min_cycle_time: 0.05
    state_map: {STATES}
{extra}    tags:
      state: s={mid}.State
      fault_code: s={mid}.FaultCode
      good_count: {{node: s={mid}.GoodCount, bits: {bits}}}
      scrap_count: {{node: s={mid}.ScrapCount, bits: {bits}}}
      job: s={mid}.JobNumber
      power_on_count: s={mid}.PowerOnCount
"""


@pytest.mark.slow
async def test_subscriptions_and_polling_match_the_ground_truth(plant: SimulatedPlant) -> None:
    machines = ("ua-sec", "ua-a", "ua-b", "ua-long")
    since = plant.pause()
    first = plant.machine("ua-sec")["good_counter"]
    gw = Gateway(
        opcua_yaml(plant, "ua-sec") + opcua_yaml(plant, "ua-a", "    mode: polling\n    poll_interval: 0.1\n")
        + opcua_yaml(plant, "ua-b") + opcua_yaml(plant, "ua-long", publishing=2.0)
    ).start()
    try:
        for mid in machines:
            await gw.wait_read(mid, plant)
        plant.resume()
        plant.act("ua-long", "fault", {"code": 4242, "duration": 0.2})  # mostly inside one 2 s batch
        await async_wait_until(lambda: plant.machine("ua-sec")["good_counter"] < first, 30,
                               what="the 16-bit counter of ua-sec to roll over")
        await async_wait_until(lambda: sum(len(gw.states(m)) for m in machines) >= 12, 30, what="state changes")
        until = plant.pause()
        for mid in machines:
            await gw.settle(plant, mid)
    finally:
        await gw.stop()
        plant.resume()
    for mid in machines:
        assert gw.counts(mid) == gw.expected(plant, mid, since, until), mid
        assert_states_match(gw, plant, mid, since, until)
        assert not any(e.reset or e.rebased or e.possibly_lost for e in gw.count_events(mid))
    assert [(e.state.value, e.fault_code) for e in gw.states("ua-long")] == [
        ("running", None), ("fault", 4242), ("running", None)
    ]
    stats = gw.collection.stats()
    assert stats["notifications"] > 20 and stats["polls"] > 10


@pytest.mark.slow
async def test_server_restart_hang_and_a_dead_device_behind_a_shared_server(
    plant: SimulatedPlant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge")
    machines = ("ua-sec", "ua-a", "ua-b")
    since = plant.pause()
    gw = Gateway("".join(opcua_yaml(plant, mid) for mid in machines)).start()
    try:
        for mid in machines:
            await gw.wait_read(mid, plant)
        plant.resume()

        # the server restarts: session and subscription are re-created without restarting the gateway
        plant.act("ua-sec", "restart", {"down_seconds": 0.5})
        await async_wait_until(in_state(gw, "ua-sec", MachineState.OFFLINE), 10, what="ua-sec offline (restart)")
        await async_wait_until(in_state(gw, "ua-sec", None), 15, what="ua-sec back after the restart")
        notified = gw.collection.stats().get("notifications", 0)
        good = gw.snapshot("ua-sec").good_raw
        await async_wait_until(lambda: gw.snapshot("ua-sec").good_raw != good
                               and gw.collection.stats()["notifications"] > notified, 20,
                               what="notifications flowing on the new subscription")

        # a device behind the shared server dies: BadNoCommunication takes it offline, its neighbour goes on
        plant.act("ua-b", "unreachable", {"mode": "refuse"})
        await async_wait_until(in_state(gw, "ua-b", MachineState.OFFLINE), 10, what="ua-b offline")
        assert gw.health("ua-a").state != MachineState.OFFLINE

        # a server that accepts connections and never answers: offline within ~3 keep-alive intervals
        plant.act("ua-sec", "unreachable", {"mode": "hang"})
        await async_wait_until(in_state(gw, "ua-sec", MachineState.OFFLINE), 3 * 0.5 + 5, what="ua-sec offline (hang)")

        plant.act("ua-b", "reachable")
        plant.act("ua-sec", "reachable")
        for mid in ("ua-sec", "ua-b"):
            await async_wait_until(in_state(gw, mid, None), 20, what=f"{mid} back")
        until = plant.pause()
        for mid in machines:
            await gw.settle(plant, mid)
    finally:
        await gw.stop()
        plant.resume()
    for mid in machines:
        assert gw.counts(mid) == gw.expected(plant, mid, since, until), mid
    assert [e.state for e in gw.states("ua-sec")].count(MachineState.OFFLINE) == 2
    assert any("BadNoCommunication" in (e.reason or "") for e in gw.states("ua-b"))
    assert MachineState.OFFLINE not in [e.state for e in gw.states("ua-a")]
    logs = [r.getMessage() for r in caplog.records if "ua-b" in r.getMessage()]
    assert sum("is unreachable" in line for line in logs) == 1


@pytest.mark.slow
async def test_sign_and_encrypt_with_username_and_password(
    plant: SimulatedPlant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PP_TEST_UA_PASSWORD", "s3cret")
    monkeypatch.setenv("PP_TEST_UA_WRONG", "wrong")
    secure = (
        f"    security: SignAndEncrypt\n    certificate: {tmp_path}/edge-cert.der\n"
        f"    private_key: {tmp_path}/edge-key.pem\n    application_uri: urn:plantpulse:edge:test\n"
        "    username: operator\n"
    )
    # a secure handshake is RSA work on both sides: give it time on a busy machine
    good = Gateway(opcua_yaml(plant, "ua-sec", secure + "    password_env: PP_TEST_UA_PASSWORD\n", timeout=5)).start()
    bad = Gateway(opcua_yaml(plant, "ua-sec", secure + "    password_env: PP_TEST_UA_WRONG\n", timeout=5)).start()
    try:
        await good.wait_read("ua-sec")
        parts = good.snapshot("ua-sec").good_raw
        await async_wait_until(lambda: good.snapshot("ua-sec").good_raw != parts, 20, what="values flowing")
        await async_wait_until(in_state(bad, "ua-sec", MachineState.OFFLINE), 20, what="the wrong password offline")
    finally:
        await good.stop()
        await bad.stop()
    assert (tmp_path / "edge-cert.der").exists()  # created on first connect, self-signed
    assert bad.health("ua-sec").reads == 0
    reason = bad.states("ua-sec")[-1].reason or ""
    assert "Bad" in reason or "denied" in reason.lower(), reason


@pytest.mark.slow
async def test_the_counter_check_catches_changes_a_subscription_lost(
    plant: SimulatedPlant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscription that silently loses every GoodCount notification: the periodic read still counts."""
    keep = opcua._Subscription._changes

    def lossy(self: opcua._Subscription, batches: list[list[Any]]) -> list[Change]:
        return [c for c in keep(self, batches) if c.tag != "good_count"]

    monkeypatch.setattr(opcua._Subscription, "_changes", lossy)
    since = plant.pause()
    gw = Gateway(opcua_yaml(plant, "ua-long", "    counter_check_interval: 0.5\n")).start()
    try:
        await gw.wait_read("ua-long", plant)
        plant.resume()
        await async_wait_until(lambda: gw.counts("ua-long")[0] > 10, 30, what="parts counted through the check")
        until = plant.pause()
        await gw.settle(plant, "ua-long")
    finally:
        await gw.stop()
        plant.resume()
    assert gw.counts("ua-long") == gw.expected(plant, "ua-long", since, until)
    assert gw.collection.stats()["subscription_mismatches"] >= 2
