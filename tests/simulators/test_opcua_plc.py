"""Simulated OPC UA PLCs read through asyncua clients, insecure and secure, against the ground truth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.waiting import async_wait_until

SHARED_PORT = free_port()
NS = "urn:plantpulse:simulator"

PLANT = f"""
name: opcua-test
seed: 5
speed: 20
min_state_duration: 0.3
control_port: 0
machines:
  - id: ua1
    protocol: opcua
    cycle_time: 2
    cycle_jitter: 0
    scrap_rate: 0
    job_quantity: [100000, 100000]
    counter: {{bits: 16, good_start: 65500}}
    opcua:
      users: [{{username: operator, password: s3cret}}]
  - id: ua2
    protocol: opcua
    cycle_time: 2
    job_quantity: [100000, 100000]
    counter: {{bits: 32}}
  - id: ua-a
    protocol: opcua
    port: {SHARED_PORT}
    cycle_time: 2
    job_quantity: [100000, 100000]
  - id: ua-b
    protocol: opcua
    port: {SHARED_PORT}
    cycle_time: 2
    job_quantity: [100000, 100000]
"""


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedPlant]:
    p = SimulatedPlant(Path(tmp_path_factory.mktemp("opcua-plant")), PLANT).start()
    yield p
    p.stop()


def url(plant: SimulatedPlant, machine_id: str) -> str:
    return str(plant.endpoint(machine_id)["endpoint"])


async def node(client: Client, machine_id: str, name: str) -> Any:
    idx = await client.get_namespace_index(NS)
    return client.get_node(ua.NodeId(f"{machine_id}.{name}", idx))


async def value(client: Client, machine_id: str, name: str) -> Any:
    return await (await node(client, machine_id, name)).read_value()


class Collect:
    def __init__(self) -> None:
        self.values: list[tuple[str, Any]] = []

    def datachange_notification(self, n: Any, val: Any, data: Any) -> None:
        self.values.append((n.nodeid.Identifier, val))


async def test_insecure_subscription_sees_counts_faults_and_rollover(plant: SimulatedPlant) -> None:
    client = Client(url(plant, "ua1"), timeout=5)
    await client.connect()
    try:
        handler = Collect()
        sub = await client.create_subscription(20, handler)
        await sub.subscribe_data_change(
            [await node(client, "ua1", n) for n in ("State", "FaultCode", "GoodCount", "CycleTime")],
            queuesize=100,
        )
        await async_wait_until(
            lambda: any(i == "ua1.GoodCount" and v < 100 for i, v in handler.values), 20,
            what="16-bit GoodCount rolled over",
        )
        counts = [v for i, v in handler.values if i == "ua1.GoodCount"]
        assert max(counts) >= 65530
        assert await value(client, "ua1", "CycleTime") == pytest.approx(2.0)

        plant.act("ua1", "fault", {"code": 777})
        await async_wait_until(lambda: ("ua1.FaultCode", 777) in handler.values, 5, what="fault notification")
        await async_wait_until(lambda: ("ua1.State", 3) in handler.values, 5, what="fault state notification")
        plant.act("ua1", "clear")
        await async_wait_until(lambda: handler.values[-1] != ("ua1.State", 3)
                               and await_state(handler) == 1, 5, what="running again")
    finally:
        await client.disconnect()


def await_state(handler: Collect) -> Any:
    states = [v for i, v in handler.values if i == "ua1.State"]
    return states[-1] if states else None


async def test_values_match_the_ground_truth_when_paused(plant: SimulatedPlant) -> None:
    client = Client(url(plant, "ua2"), timeout=5)
    await client.connect()
    try:
        await async_wait_until(lambda: plant.machine("ua2")["good_total"] > 3, 10, what="parts made")
        plant.pause()
        try:
            truth = plant.truth("ua2")
            good = await value(client, "ua2", "GoodCount")
            scrap = await value(client, "ua2", "ScrapCount")
            state = await value(client, "ua2", "State")
            job = await value(client, "ua2", "JobNumber")
            power = await value(client, "ua2", "PowerOnCount")
            job_parts = (await value(client, "ua2", "JobGoodCount"), await value(client, "ua2", "JobScrapCount"))
        finally:
            plant.resume()
        assert (good, scrap) == (truth["totals"]["good"], truth["totals"]["scrap"])
        of_job = truth["by_job"].get(str(job), {"good": 0, "scrap": 0})
        assert job_parts == (of_job["good"], of_job["scrap"])  # the per-job counters (ua2 runs a single job)
        last = truth["intervals"][-1]
        assert state == {"idle": 0, "running": 1, "setup": 2, "fault": 3, "maintenance": 4}[last["state"]]
        assert job == last["job"] and power == 1
        # the counter variables carry the PLC's width
        data_type = await (await node(client, "ua2", "GoodCount")).read_data_type_as_variant_type()
        assert data_type == ua.VariantType.UInt32
    finally:
        await client.disconnect()


async def test_sign_and_encrypt_with_username_password(plant: SimulatedPlant, tmp_path: Path) -> None:
    client = Client(url(plant, "ua1"), timeout=5)
    client.application_uri = "urn:plantpulse:test-client"
    key, cert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
    await setup_self_signed_certificate(
        key, cert, client.application_uri, "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "plantpulse test client"},
    )
    for mode in ("Sign", "SignAndEncrypt"):
        client = Client(url(plant, "ua1"), timeout=5)
        client.application_uri = "urn:plantpulse:test-client"
        await client.set_security_string(f"Basic256Sha256,{mode},{cert},{key}")
        client.set_user("operator")
        client.set_password("s3cret")
        await client.connect()
        try:
            assert client.security_policy.Mode == getattr(ua.MessageSecurityMode, mode)
            assert isinstance(await value(client, "ua1", "GoodCount"), int)
        finally:
            await client.disconnect()

    wrong = Client(url(plant, "ua1"), timeout=5)
    wrong.application_uri = "urn:plantpulse:test-client"
    await wrong.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
    wrong.set_user("operator")
    wrong.set_password("wrong")
    with pytest.raises(ua.UaError):
        await wrong.connect()
    await wrong.disconnect()


async def test_restart_keeps_node_ids_and_values(plant: SimulatedPlant) -> None:
    client = Client(url(plant, "ua2"), timeout=2)
    await client.connect()
    before = await value(client, "ua2", "GoodCount")
    plant.act("ua2", "restart", {"down_seconds": 0.3})

    async def old_session_broken() -> bool:
        try:
            await value(client, "ua2", "GoodCount")
        except (TimeoutError, ConnectionError, ua.UaError, OSError):
            return True
        return False

    await async_wait_until(old_session_broken, 5, what="the old session to break")
    await client.disconnect()

    async def fresh_read() -> Any:
        c = Client(url(plant, "ua2"), timeout=2)
        await c.connect()
        try:
            return await value(c, "ua2", "GoodCount")
        finally:
            await c.disconnect()

    after = await async_wait_until(fresh_read, 10, what="reading after restart")
    assert after >= before


async def test_unreachable_refuse_and_hang(plant: SimulatedPlant) -> None:
    plant.act("ua2", "unreachable", {"mode": "refuse"})
    with pytest.raises(OSError):
        await Client(url(plant, "ua2"), timeout=1).connect()
    plant.act("ua2", "unreachable", {"mode": "hang"})
    hung = Client(url(plant, "ua2"), timeout=1)
    with pytest.raises(asyncio.TimeoutError):
        await hung.connect()
    plant.act("ua2", "reachable")

    async def answers() -> bool:
        c = Client(url(plant, "ua2"), timeout=2)
        await c.connect()
        try:
            return isinstance(await value(c, "ua2", "State"), int)
        finally:
            await c.disconnect()

    await async_wait_until(answers, 10, what="answering after reachable")


async def test_shared_server_fails_one_machine_alone(plant: SimulatedPlant) -> None:
    assert url(plant, "ua-a") == url(plant, "ua-b")
    client = Client(url(plant, "ua-a"), timeout=5)
    await client.connect()
    try:
        plant.act("ua-b", "unreachable", {"mode": "refuse"})
        dv = await (await node(client, "ua-b", "GoodCount")).read_data_value(raise_on_bad_status=False)
        assert dv.StatusCode.value == ua.StatusCodes.BadNoCommunication
        assert isinstance(await value(client, "ua-a", "GoodCount"), int)
        plant.act("ua-b", "reachable")
        assert isinstance(await value(client, "ua-b", "GoodCount"), int)
    finally:
        await client.disconnect()
