"""API latency: ``GET /api/v1/machines`` with 500 machines, beside ``GET /healthz`` on the same server.

``python -m bench api`` (or ``python -m bench.api [--requests N] [--machines N] [--quick]``) runs a
private mosquitto and ``python -m central run`` (its 500 machines configured in ten lines, with
names, cycle times and fault texts), populates every machine through real ingest (a gateway's
birth, then one state event per machine), and times requests from this process (httpx),
alternating the two routes so that both see the same load:

* ``/healthz`` is the baseline: the same server, client and framework with an answer of a few
  fields, so what remains of the difference is the machine list itself;
* over one keep-alive connection (what a browser or a dashboard does) and with a new
  connection per request (``Connection: close``): small answers on a reused connection wait
  for the client's delayed ACK when the server's socket has Nagle's algorithm on;
* both again while a gateway publishes 500 events a second (every machine one part count a
  second), so ingest rounds compete with the requests for central's event loop.

The target (issue 6) is p99 under 20 ms for the machine list.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench._backlog import FAULTS, SITE, wire_batches
from bench._mqtt import Client
from bench._procs import Stack, exit_on_sigterm, machine, percentile, row, scrape, wait_for
from plantpulse.protocol import topics
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent, Status
from tests.fixtures.mosquitto import BrokerOptions, Mosquitto
from tests.fixtures.services import CentralProcess

TARGET_P99_MS = 20.0
EDGE = "line-gw"
_STATES = [(MachineState.RUNNING, None), (MachineState.RUNNING, None), (MachineState.IDLE, None),
           (MachineState.SETUP, None), (MachineState.FAULT, 101), (MachineState.MAINTENANCE, None)]


def ids(machines: int) -> list[str]:
    return [f"mc{i:04d}" for i in range(machines)]


def plant(machines: int) -> dict[str, Any]:
    lines = max(1, machines // 50)
    return {
        "lines": [{"id": f"line-{k:02d}", "name": f"Line {k}"} for k in range(lines)],
        "machines": [{"id": mid, "name": f"Machine {mid}", "line": f"line-{i % lines:02d}", "work_centre": "milling",
                      "ideal_cycle_time": 30.0, "faults": FAULTS} for i, mid in enumerate(ids(machines))],
    }


class Publisher:
    """One gateway's traffic: its birth, one state event per machine, then (optionally) a steady load."""

    def __init__(self, port: int, machines: int) -> None:
        self.client = Client(port, f"bench-api-gateway-{time.monotonic_ns()}", clean_start=True)
        self.machines = ids(machines)
        self.seq = 0
        self.epoch = "6f1d2c3b-0000-4000-8000-00000000a11e"
        self.stop_load = threading.Event()
        self.thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> Publisher:
        self.client.start()
        return self

    def _publish(self, events: Sequence[StateEvent | CountEvent]) -> None:
        _, batches = wire_batches(EDGE, events, epoch=self.epoch, first_seq=self.seq + 1)
        self.seq += len(events)
        for payload in batches:
            self.client.client.publish(topics.gateway_topic(SITE, EDGE, "events"), payload, qos=1)

    def populate(self) -> None:
        birth = Status(edge_id=EDGE, online=True, birth=1, ts=time.time(), version="bench", machines=self.machines,
                       epoch=self.epoch, oldest_seq=1, latest_seq=len(self.machines))
        self.client.client.publish(topics.gateway_topic(SITE, EDGE, "status"),
                                   birth.model_dump_json(exclude_none=True).encode(), qos=1, retain=True)
        now = time.time()
        self._publish([StateEvent(machine_id=mid, ts=now, state=_STATES[i % len(_STATES)][0],
                                  fault_code=_STATES[i % len(_STATES)][1], job=f"WO-{i:05d}")
                       for i, mid in enumerate(self.machines)])

    def start_load(self, per_second: int) -> None:
        """``per_second`` count events a second, in ten messages a second, from a thread."""
        def run() -> None:
            tick, k = time.monotonic(), 0
            while not self.stop_load.wait(max(0.0, tick - time.monotonic())):
                now = time.time()
                chunk = [CountEvent(machine_id=self.machines[(k + j) % len(self.machines)], start=now - 1.0, ts=now,
                                    good=1, scrap=0) for j in range(per_second // 10)]
                k += len(chunk)
                self._publish(chunk)
                self.sent += len(chunk)
                tick += 0.1

        self.thread = threading.Thread(target=run, name="bench-api-load", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_load.set()
        if self.thread is not None:
            self.thread.join(10)
        self.client.stop()


ROUTES = ("/healthz", "/api/v1/machines")
MODES = ("keep-alive", "new connection")


def measure(clients: dict[str, httpx.Client], requests: int) -> dict[tuple[str, str], list[float]]:
    """Latencies (ms) per (mode, route), all four alternating; every answer must be a 200."""
    out: dict[tuple[str, str], list[float]] = {(m, r): [] for m in MODES for r in ROUTES}
    for _ in range(requests):
        for mode, route in out:
            started = time.perf_counter()
            response = clients[mode].get(route)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"GET {route}: {response.status_code} {response.text[:300]}")
            out[(mode, route)].append(elapsed)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_ms(pid: int, http: httpx.Client, route: str, requests: int, background: float) -> float:
    """Central's CPU milliseconds per request of ``route`` (one route at a time), less its
    ``background`` CPU seconds per second (ingest ticks, alert rules) over the same time.

    CPU time is what the server spends on a request whatever the neighbours do, so this is the
    figure to compare when the latencies of a shared machine are noisy.
    """
    before, started = cpu_seconds(pid), time.monotonic()
    for _ in range(requests):
        http.get(route).raise_for_status()
    used = cpu_seconds(pid) - before - background * (time.monotonic() - started)
    return used * 1000 / requests


def background_cpu(pid: int, seconds: float = 3.0) -> float:
    """Central's CPU seconds per second while nobody asks it anything (a fixed measuring window)."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests per route, connection and phase (default 1000)")
    parser.add_argument("--machines", type=int, default=500, help="machines in central (default 500)")
    parser.add_argument("--load", type=int, default=500, help="events per second during the loaded phase")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    logging.getLogger("plantpulse.mqtt").setLevel(logging.ERROR)
    requests = 200 if args.quick else args.requests
    print(f"api benchmark on {machine()}; {args.machines} machines, {requests} requests per route and phase")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, Stack() as stack:
        root = Path(tmp)
        # an open broker: the load generator has no login (figures comparable with docs/performance.md)
        broker = stack.started(Mosquitto(root / "broker", BrokerOptions(anonymous=True, max_queued_messages=100_000)))
        broker.start()
        central = stack.started(CentralProcess(root / "central", broker, site=SITE, plant=plant(args.machines),
                                               api={"stream_min_interval": 1.0}, ingest={"ack_interval": 0.5}))
        central.start(timeout=120)
        publisher = stack.started(Publisher(broker.port, args.machines)).start()
        publisher.populate()

        def populated() -> bool:
            machines = central.get("/api/v1/machines")["machines"]
            return len(machines) >= args.machines and all(m["state"] and m["gateway_id"] == EDGE for m in machines)

        wait_for(populated, 120, what=f"{args.machines} machines with a state in the API", interval=0.2)
        size = len(central.http.get("/api/v1/machines").content)
        clients = {
            "keep-alive": stack.enter_context(httpx.Client(base_url=central.url, timeout=30.0)),
            "new connection": stack.enter_context(httpx.Client(base_url=central.url, timeout=30.0,
                                                               headers={"connection": "close"})),
        }
        measure(clients, max(20, requests // 10))  # warm-up: connections, caches, first-call imports
        phases = {"idle": measure(clients, requests)}
        pid = central.process.pid
        background = background_cpu(pid)
        cpu = {route: server_cpu_ms(pid, clients["keep-alive"], route, requests, background) for route in ROUTES}
        applied = scrape(f"{central.url}/metrics")["plantpulse_central_events_applied_total"]
        publisher.start_load(args.load)
        started = time.monotonic()
        phases[f"{args.load} events/s"] = measure(clients, requests)
        loaded_s = time.monotonic() - started
        publisher.stop_load.set()
        applied = scrape(f"{central.url}/metrics")["plantpulse_central_events_applied_total"] - applied
        widths = (58, 8, 8, 8, 8, 11)
        print(row(["route, connection, ingest load", "p50 ms", "p99 ms", "max ms", "mean ms", "p99 x base"], widths))
        verdicts = []
        for phase, lat in phases.items():
            for mode in MODES:
                base_p99 = percentile(lat[(mode, "/healthz")], 99)
                for route in ROUTES:
                    values = lat[(mode, route)]
                    p99 = percentile(values, 99)
                    label = "/healthz (baseline)" if route == "/healthz" else f"/api/v1/machines ({size / 1000:.0f} kB)"
                    print(row([f"{label}, {mode}, {phase}", f"{percentile(values, 50):.2f}", f"{p99:.2f}",
                               f"{max(values):.2f}", f"{sum(values) / len(values):.2f}", f"{p99 / base_p99:.2f}"],
                              widths))
                p99 = percentile(lat[(mode, "/api/v1/machines")], 99)
                verdicts.append(f"{phase}, {mode}: p99 {p99:.1f} ms = {p99 / TARGET_P99_MS:.2f} x target"
                                f" ({'met' if p99 < TARGET_P99_MS else 'MISSED'})")
        print(f"  target p99 < {TARGET_P99_MS:g} ms: " + "; ".join(verdicts))
        print(f"  during the loaded phase central applied {applied / loaded_s:,.0f} events/s")
        print(f"  central's CPU per request (idle, keep-alive, {requests} of one route in a row, less its background"
              f" {background * 100:.1f}% of a core): /healthz {cpu['/healthz']:.2f} ms,"
              f" /api/v1/machines {cpu['/api/v1/machines']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
