"""Simulated Modbus PLCs read through two independent Modbus masters, compared with the ground truth.

The simulator runs as its own process; registers are decoded here by hand (struct), not with
the simulator's own encoder, so a wrong register map cannot agree with itself.
"""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pyModbusTCP.client import ModbusClient

from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.waiting import async_wait_until, wait_until

SHARED_PORT = free_port()
CYCLE_WALL = 0.1  # cycle_time 2 plant s at speed 20

PLANT = f"""
name: modbus-test
seed: 11
speed: 20
min_state_duration: 0.3
control_port: 0
machines:
  - id: roll
    protocol: modbus
    cycle_time: 2
    cycle_jitter: 0
    scrap_rate: 0.1
    job_quantity: [100000, 100000]
    counter: {{bits: 16, good_start: 65500, scrap_start: 65535}}
  - id: wide
    protocol: modbus
    cycle_time: 2
    cycle_jitter: 0
    scrap_rate: 0
    job_quantity: [100000, 100000]
    counter: {{bits: 32, good_start: 70000, word_order: little}}
  - id: breaker
    protocol: modbus
    cycle_time: 2
    job_quantity: [100000, 100000]
  - id: gw-a
    protocol: modbus
    port: {SHARED_PORT}
    unit_id: 1
    cycle_time: 2
    job_quantity: [100000, 100000]
  - id: gw-b
    protocol: modbus
    port: {SHARED_PORT}
    unit_id: 2
    cycle_time: 2
    job_quantity: [100000, 100000]
"""


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedPlant]:
    p = SimulatedPlant(Path(tmp_path_factory.mktemp("modbus-plant")), PLANT).start()
    yield p
    p.stop()


def decode(regs: list[int], bits: int = 16, word_order: str = "big") -> dict[str, float]:
    def counter(words: list[int]) -> int:
        if bits == 16:
            return words[0]
        high, low = (words[0], words[1]) if word_order == "big" else (words[1], words[0])
        return (high << 16) | low

    return {
        "state": regs[0],
        "fault": regs[1],
        "good": counter(regs[2:4]),
        "scrap": counter(regs[4:6]),
        "job": regs[6],
        "power_on": regs[7],
        "cycle_time": struct.unpack(">f", struct.pack(">HH", regs[8], regs[9]))[0],
    }


async def read(client: AsyncModbusTcpClient, unit: int = 1, input_regs: bool = False) -> list[int]:
    fn = client.read_input_registers if input_regs else client.read_holding_registers
    rr = await fn(0, count=10, device_id=unit)
    assert not rr.isError(), rr
    return list(rr.registers)


async def connect(plant: SimulatedPlant, machine_id: str, timeout: float = 1.0) -> AsyncModbusTcpClient:
    ep = plant.endpoint(machine_id)
    client = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=timeout, retries=0)
    assert await client.connect(), f"cannot connect to {machine_id}"
    return client


async def test_counts_rise_at_the_configured_rate_and_roll_over(plant: SimulatedPlant) -> None:
    client = await connect(plant, "roll")
    try:
        first = decode(await read(client))
        t0 = time.monotonic()
        seen = [first["good"]]
        # 65500 + 36 good parts wraps: wait until the 16-bit counter has gone through 0
        async def wrapped() -> bool:
            seen.append(decode(await read(client))["good"])
            return seen[-1] < 1000

        await async_wait_until(wrapped, 30, interval=0.05, what="16-bit good counter rollover")
        rate = ((seen[-1] - first["good"]) % 65536) / (time.monotonic() - t0)
        # 0.1 s wall per cycle with 10 % scrap: about 9 good parts per second
        assert 6.0 < rate < 10.5, rate
        assert max(seen) > 65500
        assert first["state"] == 1  # running
        # the input registers show the same map
        same = decode(await read(client, input_regs=True))
        assert same["job"] == first["job"]
        assert same["cycle_time"] == pytest.approx(2.0)
    finally:
        client.close()


async def test_registers_match_the_ground_truth_when_paused(plant: SimulatedPlant) -> None:
    client = await connect(plant, "roll")
    wide = await connect(plant, "wide")
    try:
        await async_wait_until(lambda: plant.machine("wide")["good_total"] > 5, 10, what="parts made")
        plant.pause()
        try:
            roll_truth = plant.truth("roll")
            wide_truth = plant.truth("wide")
            roll = decode(await read(client))
            w = decode(await read(wide), bits=32, word_order="little")
        finally:
            plant.resume()
        assert roll["good"] == (65500 + roll_truth["totals"]["good"]) % 65536
        assert roll["scrap"] == (65535 + roll_truth["totals"]["scrap"]) % 65536
        assert w["good"] == 70000 + wide_truth["totals"]["good"]
        assert w["good"] > 65535  # really uses both words
        last = roll_truth["intervals"][-1]
        assert last["end"] is None and last["state"] == "running" and roll["state"] == 1
        assert roll["job"] == last["job"]
        # every part in the truth carries its time and job
        parts = roll_truth["parts"]
        assert all(p["job"] == last["job"] for p in parts)
        assert all(a["ts"] < b["ts"] for a, b in itertools.pairwise(parts))
    finally:
        client.close()
        wide.close()


def test_an_independent_modbus_master_reads_the_same(plant: SimulatedPlant) -> None:
    ep = plant.endpoint("wide")
    master = ModbusClient(host=ep["host"], port=ep["port"], unit_id=1, auto_open=True, timeout=2.0)
    try:
        plant.pause()
        try:
            regs = master.read_holding_registers(0, 10)
            inputs = master.read_input_registers(0, 10)
            bits = master.read_discrete_inputs(0, 5)
            truth = plant.truth("wide")
        finally:
            plant.resume()
        assert regs is not None and inputs == regs, master.last_error_as_txt
        values = decode(regs, bits=32, word_order="little")
        assert values["good"] == 70000 + truth["totals"]["good"]
        assert bits == [True, False, False, False, False]  # running
    finally:
        master.close()


async def test_fault_appears_and_clears(plant: SimulatedPlant) -> None:
    client = await connect(plant, "breaker")
    try:
        plant.act("breaker", "fault", {"code": 321})
        regs = decode(await read(client))
        assert (regs["state"], regs["fault"]) == (3, 321)
        di = await client.read_discrete_inputs(0, count=5, device_id=1)
        assert di.bits[:5] == [False, True, False, False, False]
        before = regs["good"]
        plant.act("breaker", "clear")
        regs = decode(await read(client))
        assert (regs["state"], regs["fault"]) == (1, 0)
        async def counting() -> bool:
            return decode(await read(client))["good"] > before
        await async_wait_until(counting, 5, what="parts after the fault cleared")
        truth = plant.truth("breaker")["intervals"]
        fault = [i for i in truth if i["state"] == "fault"]
        assert fault[-1]["fault_code"] == 321 and fault[-1]["end"] is not None
    finally:
        client.close()


async def test_power_cycle_restarts_counters(plant: SimulatedPlant) -> None:
    client = await connect(plant, "wide")
    try:
        plant.pause()
        try:
            before = decode(await read(client), bits=32, word_order="little")
            plant.act("wide", "power-cycle")
            after = decode(await read(client), bits=32, word_order="little")
            truth = plant.truth("wide")
        finally:
            plant.resume()
        assert before["good"] > 70000
        assert (after["good"], after["scrap"]) == (0, 0)
        assert after["power_on"] == before["power_on"] + 1
        assert truth["power_cycles"][-1]["power_on_count"] == after["power_on"]

        async def counting_again() -> bool:
            return decode(await read(client), bits=32, word_order="little")["good"] > 0
        await async_wait_until(counting_again, 5, what="counting from 0 after the power cycle")
    finally:
        client.close()


async def test_counter_presets_are_recorded_as_presets_not_parts(plant: SimulatedPlant) -> None:
    client = await connect(plant, "roll")
    try:
        plant.pause()
        try:
            before = plant.machine("roll")
            shown = plant.act("roll", "counter", {"good": 65533, "scrap": 65534})
            rr = await client.read_holding_registers(0, count=12, device_id=1)
            truth = plant.truth("roll")
        finally:
            plant.resume()
        regs = decode(list(rr.registers))
        assert (shown["good_counter"], shown["scrap_counter"]) == (regs["good"], regs["scrap"]) == (65533, 65534)
        assert shown["good_total"] == before["good_total"]  # a preset is not production
        assert truth["presets"][-2:] == [
            {"ts": truth["presets"][-2]["ts"], "counter": "good", "before": before["good_counter"], "after": 65533},
            {"ts": truth["presets"][-1]["ts"], "counter": "scrap", "before": before["scrap_counter"], "after": 65534},
        ]
        assert (rr.registers[10], rr.registers[11]) == (shown["job_good"], shown["job_scrap"])  # per-job counters
        assert sum(truth["by_job"][str(shown["job"])].values()) == len(truth["parts"])  # one job so far
        assert plant.http.post("/api/machines/roll/counter", json={"good": 65536}).status_code == 409  # 16-bit
        assert plant.http.post("/api/machines/roll/counter", json={}).status_code == 422
    finally:
        client.close()


async def test_a_power_cycle_while_unreachable_stays_unreachable_until_reachable(plant: SimulatedPlant) -> None:
    plant.act("breaker", "unreachable", {"mode": "refuse"})
    power_on = plant.machine("breaker")["power_on_count"]
    plant.act("breaker", "power-cycle", {"off_seconds": 0.3})
    assert not plant.machine("breaker")["powered"]
    wait_until(lambda: plant.machine("breaker")["powered"], 5, what="power back on")
    assert plant.machine("breaker")["reachability"] == "refuse"  # still cut off: the power-up did not undo it
    plant.act("breaker", "reachable")
    client = await connect(plant, "breaker")
    try:
        assert decode(await read(client))["power_on"] == power_on + 1
    finally:
        client.close()
    truth = plant.truth("breaker")
    cycle = truth["power_cycles"][-1]
    assert cycle["off_ts"] < cycle["ts"] and cycle["power_on_count"] == power_on + 1
    assert [c["status"] for c in truth["comm"]][-2:] == ["refuse", "reachable"]
    assert truth["comm"][-2]["ts"] < cycle["off_ts"] < cycle["ts"] < truth["comm"][-1]["ts"]


async def test_unreachable_refuse_and_hang_then_reachable(plant: SimulatedPlant) -> None:
    ep = plant.endpoint("breaker")
    client = await connect(plant, "breaker", timeout=0.5)
    try:
        await read(client)  # the server has taken the connection on (not only the kernel)
        plant.act("breaker", "unreachable", {"mode": "refuse"})
        with pytest.raises(ModbusException):
            await read(client)
        refused = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=0.5, retries=0)
        assert not await refused.connect()
        refused.close()
        assert plant.machine("breaker")["reachability"] == "refuse"

        plant.act("breaker", "reachable")
        client.close()
        client = await connect(plant, "breaker", timeout=0.5)
        assert decode(await read(client))["state"] in (0, 1, 2, 3, 4)

        plant.act("breaker", "unreachable", {"mode": "hang"})
        hung = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=0.5, retries=0)
        assert await hung.connect()  # the connection is accepted...
        t0 = time.monotonic()
        with pytest.raises(ModbusException):
            await read(hung)  # ...but nothing is answered
        assert time.monotonic() - t0 >= 0.45
        hung.close()

        plant.act("breaker", "reachable")
        async def answers() -> bool:
            return decode(await read(client))["state"] in (0, 1, 2, 3, 4)
        await async_wait_until(answers, 5, what="answers after reachable")
    finally:
        client.close()


async def test_shared_gateway_port_fails_one_unit_alone(plant: SimulatedPlant) -> None:
    a, b = plant.endpoint("gw-a"), plant.endpoint("gw-b")
    assert a["port"] == b["port"] == SHARED_PORT and (a["unit_id"], b["unit_id"]) == (1, 2)
    client = await connect(plant, "gw-a", timeout=0.5)
    try:
        assert decode(await read(client, unit=2))["state"] == 1
        plant.act("gw-b", "unreachable", {"mode": "refuse"})
        rr = await client.read_holding_registers(0, count=10, device_id=2)
        assert rr.isError() and rr.exception_code == 0x0B  # gateway target failed to respond
        assert decode(await read(client, unit=1))["state"] == 1
        plant.act("gw-b", "unreachable", {"mode": "hang"})
        with pytest.raises(ModbusException):
            await read(client, unit=2)
        # the plant goes on while a unit is refused or hung: its registers keep following the truth
        before = plant.machine("gw-b")["good_total"]
        await async_wait_until(lambda: plant.machine("gw-b")["good_total"] > before + 3, 10,
                               what="production of the hung machine goes on")
        plant.act("gw-b", "reachable")
        async def unit2_back() -> bool:
            return decode(await read(client, unit=2))["state"] == 1
        await async_wait_until(unit2_back, 5, what="unit 2 answering again")
        assert decode(await read(client, unit=1))["state"] == 1
        plant.pause()
        try:
            assert decode(await read(client, unit=2))["good"] == plant.truth("gw-b")["totals"]["good"]
        finally:
            plant.resume()
    finally:
        client.close()


async def test_restart_drops_connections_and_comes_back(plant: SimulatedPlant) -> None:
    client = await connect(plant, "breaker", timeout=0.5)
    try:
        await read(client)
        plant.act("breaker", "restart", {"down_seconds": 0.5})
        with pytest.raises(ModbusException):
            await read(client)  # the old connection is gone
        client.close()
        ep = plant.endpoint("breaker")

        async def reconnect() -> bool:
            c = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=0.5, retries=0)
            try:
                return bool(await c.connect()) and decode(await read(c))["state"] in (0, 1, 2, 3, 4)
            finally:
                c.close()

        await async_wait_until(reconnect, 5, what="answers after restart")
    finally:
        client.close()


async def test_a_refusing_plc_stays_unreachable_through_a_restart(plant: SimulatedPlant) -> None:
    """A restart is of a PLC that is up: one that refuses connections does not come back by it (chaos run)."""
    plant.act("breaker", "unreachable", {"mode": "refuse"})
    try:
        plant.act("breaker", "restart", {"down_seconds": 0.2})
        assert plant.machine("breaker")["reachability"] == "refuse"
        ep = plant.endpoint("breaker")
        c = AsyncModbusTcpClient(ep["host"], port=ep["port"], timeout=0.5, retries=0)
        try:
            assert not await c.connect()
        finally:
            c.close()
    finally:
        plant.act("breaker", "reachable")


def test_unknown_machine_is_404(plant: SimulatedPlant) -> None:
    response = plant.http.post("/api/machines/nope/fault", json={"code": 1})
    assert response.status_code == 404 and "nope" in response.text
    response = plant.http.post("/api/machines/roll/fault", json={"code": 0})
    assert response.status_code == 422
    wait_until(lambda: plant.machine("roll")["state"] == "running", 2, what="roll still running")
