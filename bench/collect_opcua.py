"""OPC UA collection: N machines on subscriptions at a fixed change rate, beside a raw asyncua client.

``python -m bench collect_opcua`` (or ``python -m bench.collect_opcua [--machines N] [--seconds S]``)
starts a simulated plant of N OPC UA machines on one server (its own process), each making a
part every ``1 / --parts`` seconds, and measures in this process, one after the other:

* a raw asyncua client: one session, one subscription (iterator mode) on the same nodes with the
  same queue sizes, counting notifications;
* ``Collection``: the same subscription, notifications cut into readings, counted by the
  trackers; the plant is paused before and after, and every machine's counted parts are compared
  with the ground truth ("no change lost").

Reported: notifications per second and CPU per 1,000 notifications of each, and their ratio.
Raw client and collector alternate (``--rounds``) so that a neighbour's load hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
from asyncua import ua
from asyncua.client.client import Client

from bench.collect_modbus import Plant, free_ports, print_table
from edge.config import EdgeConfig, parse_edge_config
from edge.pipeline import Collection
from edge.tracker import MachineMemory
from plantpulse.protocol.models import CountEvent, Event

NS = "urn:plantpulse:simulator"
NODES = ("State", "FaultCode", "GoodCount", "ScrapCount", "JobNumber", "PowerOnCount")
QUEUED = ("State", "FaultCode")  # queue_size 10 in both clients; the others 1


class CountingSink:
    """Adds up each machine's counted parts: the benchmark measures collection, not storage."""

    def __init__(self) -> None:
        self.good: dict[str, int] = {}

    async def load_memory(self) -> dict[str, MachineMemory]:
        return {}

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        for e in events:
            if isinstance(e, CountEvent):
                self.good[e.machine_id] = self.good.get(e.machine_id, 0) + e.good


def plant_yaml(machines: int, parts_per_second: float) -> str:
    port = free_ports(1)[0]
    rows = "".join(
        f"  - {{id: u{i:03d}, protocol: opcua, port: {port}, cycle_time: {1 / parts_per_second:g}, cycle_jitter: 0,"
        " scrap_rate: 0, job_quantity: [1000000, 1000000], counter: {bits: 32}, opcua: {security: [None]}}\n"
        for i in range(machines)
    )
    return f"name: bench-opcua\nseed: 1\nspeed: 1\ncontrol_port: 0\nmachines:\n{rows}"


def gateway_config(plant: Plant) -> EdgeConfig:
    rows = "".join(
        f"""  - id: {m["id"]}
    protocol: opcua
    endpoint: {m["endpoint"]}
    namespace_uri: {NS}
    publishing_interval: 0.1
    sampling_interval: 0.05
    queue_size: 10
    counter_check_interval: 3600
    keepalive_interval: 5
    timeout: 10
    min_cycle_time: 0.01
    state_map: {{0: idle, 1: running, 2: setup, 3: fault, 4: maintenance}}
    tags:
      state: s={m["id"]}.State
      fault_code: s={m["id"]}.FaultCode
      good_count: s={m["id"]}.GoodCount
      scrap_count: s={m["id"]}.ScrapCount
      job: s={m["id"]}.JobNumber
      power_on_count: s={m["id"]}.PowerOnCount
"""
        for m in plant.machines()
    )
    return parse_edge_config(f"edge_id: bench\nsite: bench\nmachines:\n{rows}")


async def raw_client(plant: Plant, seconds: float) -> tuple[int, float]:
    """(notifications, CPU s) of a plain asyncua subscription on the same nodes."""
    client = Client(plant.machines()[0]["endpoint"], timeout=10)
    await client.connect()
    try:
        idx = await client.get_namespace_index(NS)
        sub = await client.create_subscription(100, None, queue_maxsize=1_000_000)
        for name in NODES:
            nodes = [client.get_node(ua.NodeId.from_string(f"ns={idx};s={m['id']}.{name}")) for m in plant.machines()]
            await sub.subscribe_data_change(nodes, queuesize=10 if name in QUEUED else 1,
                                            sampling_interval=ua.Double(50.0))
        count = 0

        async def drain() -> None:
            nonlocal count
            async for _event in sub:
                count += 1

        task = asyncio.create_task(drain())
        await asyncio.sleep(1.0)  # initial values and warm-up
        count0, cpu0, t0 = count, time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        measured, cpu = count - count0, time.process_time() - cpu0
        elapsed = time.monotonic() - t0
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return measured, cpu * seconds / elapsed
    finally:
        await client.disconnect()


async def collector(plant: Plant, http: httpx.AsyncClient, seconds: float) -> tuple[int, float, int, int]:
    """(notifications, CPU s, machines counted exactly, machines) for ``Collection``, checked against the truth."""
    machines = [m["id"] for m in plant.machines()]
    await http.post("/api/pause")
    start = {m["id"]: m for m in (await http.get("/api/machines")).json()["machines"]}
    sink = CountingSink()
    collection = Collection(gateway_config(plant), sink)
    task = asyncio.create_task(collection.run())
    await _until(lambda: all(h.reads > 0 for h in collection.health()), "first reads")
    await http.post("/api/resume")
    await asyncio.sleep(1.0)
    stats0, cpu0, t0 = collection.stats(), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    stats1, cpu1 = collection.stats(), time.process_time()
    elapsed = time.monotonic() - t0
    await http.post("/api/pause")
    end = {m["id"]: m for m in (await http.get("/api/machines")).json()["machines"]}
    await _until(lambda: all(s.good_raw == end[s.machine_id]["good_counter"] for s in collection.snapshot()),
                 "final counters read")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await http.post("/api/resume")
    exact = sum(sink.good.get(m, 0) == end[m]["good_total"] - start[m]["good_total"] for m in machines)
    notifications = stats1.get("notifications", 0) - stats0.get("notifications", 0)
    return notifications, (cpu1 - cpu0) * seconds / elapsed, exact, len(machines)


async def _until(probe: Any, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark: {what} not reached within {limit:g} s")
        await asyncio.sleep(0.05)


async def measure(machines: int, parts: float, seconds: float, rounds: int) -> tuple[list[list[str]], bool]:
    raw_n = raw_cpu = ours_n = ours_cpu = 0.0
    exact = total = 0
    with Plant(plant_yaml(machines, parts)) as plant:
        async with httpx.AsyncClient(base_url=plant.ready["control_url"], timeout=30) as http:
            for _ in range(rounds):
                n, cpu = await raw_client(plant, seconds)
                raw_n, raw_cpu = raw_n + n, raw_cpu + cpu
                n2, cpu2, ok, count = await collector(plant, http, seconds)
                ours_n, ours_cpu = ours_n + n2, ours_cpu + cpu2
                exact, total = exact + ok, total + count
    window = seconds * rounds
    raw_per = raw_cpu / max(raw_n, 1) * 1000
    ours_per = ours_cpu / max(ours_n, 1) * 1000
    return [
        ["raw asyncua subscription", f"{raw_n / window:,.0f}", f"{raw_cpu / window:.1%}", f"{raw_per:.3f}", "-"],
        ["Collection", f"{ours_n / window:,.0f}", f"{ours_cpu / window:.1%}", f"{ours_per:.3f}",
         f"{exact} of {total} machines exact"],
        ["Collection / raw", "", "", f"x{ours_per / raw_per:.2f}", "no change lost" if exact == total else "LOST"],
    ], exact == total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collect_opcua", description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--parts", type=float, default=5.0, help="parts per second per machine (the change rate)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window of each run")
    parser.add_argument("--rounds", type=int, default=2, help="raw/collector alternations")
    args = parser.parse_args(argv)
    rows, exact = asyncio.run(measure(args.machines, args.parts, args.seconds, args.rounds))
    print_table(
        f"collect_opcua: {args.machines} machines x {len(NODES)} monitored nodes on one server, "
        f"{args.parts:g} parts/s each, publishing 100 ms, {args.rounds} x {args.seconds:g} s per run, "
        f"nproc {os.cpu_count()}",
        ["run", "notifications/s", "CPU (1 core)", "CPU s / 1,000 notifications", "counts vs ground truth"],
        rows,
    )
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
