"""Modbus collection: one gateway polling N simulated machines, beside a raw pymodbus loop.

``python -m bench collect_modbus`` (or ``python -m bench.collect_modbus [--machines N] [--seconds S]``)
starts a simulated plant of N Modbus PLCs (one port each) in its own process and measures, in
this process and one after the other:

* paced: every machine polled every 100 ms (6 tags in one 8-register block read) by a raw
  pymodbus loop (one client per machine, one read per tick) and by ``Collection``: achieved
  against configured poll rate, polls that started more than one interval late, and CPU
  seconds per 1,000 tag reads;
* flat out: the same reads back to back (poll interval ~0): polls per second, and the
  collector's rate as a share of the raw loop's.

Raw loop and collector alternate (``--rounds``) so that a neighbour's load hits both alike; the
raw loop is the baseline measured in the same run, and the ratios are the result. The
simulator runs in its own process and its CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from edge.config import EdgeConfig, parse_edge_config
from edge.pipeline import Collection
from edge.tracker import MachineMemory
from plantpulse.protocol.models import Event

TAGS = 6  # state, fault code, good (32-bit), scrap (32-bit), job, power-on: registers 0..7
REGISTERS = 8


class NullSink:
    """Counts what it is given: the benchmark measures collection, not storage."""

    def __init__(self) -> None:
        self.events = 0

    async def load_memory(self) -> dict[str, MachineMemory]:
        return {}

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        self.events += len(events)


class Plant:
    """``python -m simulators`` in a child process, ports chosen free, stopped on exit."""

    def __init__(self, plant_yaml: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="plantpulse-bench-"))
        (self.folder / "plant.yaml").write_text(plant_yaml)
        self.ready_file = self.folder / "ready.json"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    def __enter__(self) -> Plant:
        log = (self.folder / "simulators.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--plant", str(self.folder / "plant.yaml"), "--control-port", "0",
             "--state-dir", str(self.folder / "state"), "--ready-file", str(self.ready_file), "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 120
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start: {(self.folder / 'simulators.log').read_text()[-2000:]}")
            time.sleep(0.1)
        self.ready = json.loads(self.ready_file.read_text())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def machines(self) -> list[dict[str, Any]]:
        return list(self.ready["machines"])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all held open while choosing, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def plant_yaml(machines: int) -> str:
    rows = "".join(
        f"  - {{id: m{i:03d}, protocol: modbus, port: {port}, cycle_time: 30, job_quantity: [100000, 100000], "
        "counter: {bits: 32}}\n"
        for i, port in enumerate(free_ports(machines))
    )
    return f"name: bench-modbus\nseed: 1\nspeed: 10\ncontrol_port: 0\nmachines:\n{rows}"


def gateway_config(plant: Plant, interval: float) -> EdgeConfig:
    rows = "".join(
        f"""  - id: {m["id"]}
    protocol: modbus
    host: 127.0.0.1
    port: {m["port"]}
    unit_id: {m["unit_id"]}
    poll_interval: {interval}
    timeout: 2.0
    min_cycle_time: 0.5
    state_map: {{0: idle, 1: running, 2: setup, 3: fault, 4: maintenance}}
    tags:
      state: {{address: 0}}
      fault_code: {{address: 1}}
      good_count: {{address: 2, type: uint32}}
      scrap_count: {{address: 4, type: uint32}}
      job: {{address: 6}}
      power_on_count: {{address: 7}}
"""
        for m in plant.machines()
    )
    return parse_edge_config(f"edge_id: bench\nsite: bench\nmachines:\n{rows}")


async def raw_loop(plant: Plant, seconds: float, interval: float | None) -> tuple[int, int, float]:
    """(reads, late ticks, CPU s): one pymodbus client per machine, one 8-register read per tick."""
    clients = [AsyncModbusTcpClient("127.0.0.1", port=m["port"], timeout=2.0, retries=0, reconnect_delay=0)
               for m in plant.machines()]
    for client in clients:
        await client.connect()
    reads = late = 0

    async def machine(client: AsyncModbusTcpClient, unit: int, offset: float) -> None:
        nonlocal reads, late
        task = asyncio.current_task()
        assert task is not None
        due = time.monotonic() + offset
        while True:
            if interval is not None:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif -delay > interval:
                    late += 1
                due = max(due + interval, time.monotonic())
            response = await client.read_holding_registers(0, count=REGISTERS, device_id=unit)
            if not response.isError():
                reads += 1
            if task.cancelling():  # Python 3.11's wait_for (inside pymodbus) can swallow a cancel
                raise asyncio.CancelledError

    units = [m["unit_id"] for m in plant.machines()]
    # every machine's first read at once, as Collection does (one connection per machine here)
    tasks = [asyncio.create_task(machine(c, u, 0.0)) for c, u in zip(clients, units, strict=True)]
    await asyncio.sleep(1.0)  # warm up, then measure
    reads0, late0, cpu0, t0 = reads, late, time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    measured = reads - reads0, late - late0, time.process_time() - cpu0
    elapsed = time.monotonic() - t0
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for client in clients:
        client.close()
    return measured[0], measured[1], measured[2] * seconds / elapsed


async def collector(plant: Plant, seconds: float, interval: float) -> tuple[int, int, float]:
    """(polls, late polls, CPU s) of ``Collection`` over the same machines and registers."""
    collection = Collection(gateway_config(plant, interval), NullSink())
    task = asyncio.create_task(collection.run())
    await asyncio.sleep(1.0)
    stats0, cpu0, t0 = collection.stats(), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    stats1, cpu1 = collection.stats(), time.process_time()
    elapsed = time.monotonic() - t0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    polls = stats1.get("polls", 0) - stats0.get("polls", 0)
    late = stats1.get("late_polls", 0) - stats0.get("late_polls", 0)
    return polls, late, (cpu1 - cpu0) * seconds / elapsed


async def measure(machines: int, seconds: float, interval: float, rounds: int) -> list[list[str]]:
    """Raw and collector alternate ``rounds`` times per mode (the machine is shared and noisy); sums are kept."""
    total: dict[str, list[float]] = {}

    def add(name: str, result: tuple[int, int, float]) -> None:
        acc = total.setdefault(name, [0.0, 0.0, 0.0])
        for i, v in enumerate(result):
            acc[i] += v

    with Plant(plant_yaml(machines)) as plant:
        for _ in range(rounds):
            add("raw pymodbus loop, paced", await raw_loop(plant, seconds, interval))
            add("Collection, paced", await collector(plant, seconds, interval))
        for _ in range(rounds):
            add("raw pymodbus loop, flat out", await raw_loop(plant, seconds, None))
            add("Collection, flat out", await collector(plant, seconds, 1e-6))
    configured = machines / interval
    window = seconds * rounds
    rows: list[list[str]] = []
    for name, (polls, late, cpu) in total.items():
        paced = name.endswith("paced")
        rate = polls / window
        rows.append([
            name,
            f"{configured:,.0f}" if paced else "-",
            f"{rate:,.0f}",
            f"{rate / configured:.1%}" if paced else "-",
            f"{late:.0f}" if paced else "-",
            f"{cpu / window:.1%}",
            f"{cpu / (polls * TAGS) * 1000:.4f}" if polls else "-",
        ])

    def per_read(name: str) -> float:
        polls, _late, cpu = total[name]
        return cpu / max(polls, 1.0)

    ratio_cpu = per_read("Collection, paced") / per_read("raw pymodbus loop, paced")
    ratio_flat = total["Collection, flat out"][0] / max(total["raw pymodbus loop, flat out"][0], 1.0)
    rows.append(["Collection / raw", "", "", "", "", f"paced CPU per read x{ratio_cpu:.2f}",
                 f"flat-out rate {ratio_flat:.0%}"])
    return rows


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print(title)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collect_modbus", description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window of each phase")
    parser.add_argument("--interval", type=float, default=0.1, help="configured poll interval, seconds")
    parser.add_argument("--rounds", type=int, default=2, help="raw/collector alternations per mode")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.machines, args.seconds, args.interval, args.rounds))
    print_table(
        f"collect_modbus: {args.machines} machines x {TAGS} tags ({REGISTERS} registers, 1 read), "
        f"poll {args.interval * 1000:.0f} ms, {args.rounds} x {args.seconds:g} s per run, nproc {os.cpu_count()}",
        ["run", "configured polls/s", "achieved polls/s", "achieved/configured", "late polls", "CPU (1 core)",
         "CPU s / 1,000 tag reads"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
