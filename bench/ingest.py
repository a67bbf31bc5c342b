"""Central ingest: events applied per second beside a raw paho subscriber draining the same messages,
and the catch-up of a week of one line's backlog.

``python -m bench ingest`` (or ``python -m bench.ingest [--events N] [--catch-up N] [--quick]``)
runs a private mosquitto and prints:

* throughput: a gateway's backlog of N events (50 machines, one state change in 25 events, the
  rest part counts, edge times of the last two minutes: live, not historic) published once as
  the gateway publishes it (``EventBatch`` messages of 500 events, after a birth) while two
  persistent sessions are away: a raw paho subscriber's and central's. Then, one after the
  other (the order alternates between repeats):
  - **raw drain** (the baseline): a paho MQTT v5 client resumes its session (QoS 1, automatic
    PUBACK) and receives every queued message; timed from ``connect`` to the last message, no
    parsing;
  - **central**: ``central.runtime.Central`` in this process (store in a temp folder, the
    shipping ingest defaults) starts, resumes its session and applies everything (validated,
    deduplicated, status and history updated, stored in SQLite, acknowledged to the broker,
    confirmed to the gateway); timed from ``start`` to the ``cmd/ack`` that covers every seq.
  Beside them, for the analysis: validating the same messages with the protocol's pydantic
  models alone (no I/O).
* catch-up: a week of a 50-machine line (2 million events by default) in a real gateway's
  outbox; ``python -m edge run`` publishes its first window while central is down, then
  ``python -m central run`` starts and is timed until ``/api/v1/gateways`` shows every seq
  applied, and until the gateway's outbox is empty (confirmed end to end).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench._backlog import (
    FAULTS,
    MACHINES,
    SITE,
    WEEK,
    WEEK_EVENTS,
    fill_outbox,
    line_events,
    machine_ids,
    wire_batches,
)
from bench._mqtt import Client, publish_all, raw_drain, register_session
from bench._procs import (
    FatalError,
    Stack,
    exit_on_sigterm,
    machine,
    peak_rss_mb,
    row,
    scrape,
    unreachable_machine,
    wait_for,
)
from central.config import CentralConfig
from central.ingest.config import IngestConfig
from central.orders.config import OrdersConfig
from central.progress.machines import MachinesConfig
from central.runtime import Central
from central.store.config import StoreConfig
from edge.config import ForwardConfig
from plantpulse.mqtt import MqttConfig
from plantpulse.protocol import topics
from plantpulse.protocol.models import Ack, EventBatch, Status
from tests.fixtures.mosquitto import BrokerOptions, Mosquitto
from tests.fixtures.procs import free_port
from tests.fixtures.services import CentralProcess, EdgeProcess

BATCH = ForwardConfig().batch_max


def plant_config() -> dict[str, Any]:
    """Central's ``plant:`` section: the line's 50 machines with names, cycle times and fault texts."""
    return {
        "lines": [{"id": "line-a", "name": "Line A"}],
        "machines": [{"id": mid, "name": f"Machine {mid}", "line": "line-a", "ideal_cycle_time": 15.0,
                      "faults": FAULTS} for mid in machine_ids()],
    }


def single_event_drain(port: int, client_id: str, messages: list[tuple[str, bytes]]) -> float:
    """Seconds a raw subscriber takes to drain the same events queued as one event per message.

    Not the baseline (those are not the messages a gateway sends); it shows what paho costs per
    message. The messages go to a topic only this session subscribes to.
    """
    topic = f"bench/single/{client_id}/events"
    register_session(port, client_id, [topic])
    payloads: list[tuple[str, bytes]] = []
    for _, payload in messages:
        batch = EventBatch.model_validate_json(payload) if b'"events"' in payload else None
        if batch is not None:
            payloads += [(topic, batch.model_copy(update={"events": [e]}).model_dump_json(exclude_defaults=True)
                          .encode()) for e in batch.events]
    publish_all(port, payloads)
    return raw_drain(port, client_id, len(payloads))


class AckWatcher:
    """Subscribes to the gateways' ``cmd/ack``: tells when central has confirmed seqs 1..N of an epoch."""

    def __init__(self, port: int) -> None:
        self.client = Client(port, f"bench-acks-{time.monotonic_ns()}", clean_start=True)
        self.client.on_message = self._on_message
        self.wanted: tuple[str, int] | None = None
        self.done = threading.Event()
        self.at = 0.0

    def start(self) -> AckWatcher:
        self.client.start()
        self.client.subscribe([topics.gateway_topic(SITE, "+", "cmd/ack")])
        return self

    def expect(self, epoch: str, last: int) -> None:
        self.done.clear()
        self.wanted = (epoch, last)

    def _on_message(self, topic: str, payload: bytes) -> None:
        ack = Ack.model_validate_json(payload)
        if self.wanted and ack.epoch == self.wanted[0] and any(
                r.first <= 1 and r.last >= self.wanted[1] for r in ack.applied):
            self.at = time.perf_counter()
            self.done.set()

    def stop(self) -> None:
        self.client.stop()


# --------------------------------------------------------------------------- throughput
def backlog_messages(edge_id: str, total: int) -> tuple[str, list[tuple[str, bytes]]]:
    """A birth and ``total`` live events of the line in ``EventBatch`` messages, as the gateway sends them."""
    events = line_events(total, end=time.time(), span=120.0)
    epoch, batches = wire_batches(edge_id, events, batch=BATCH)
    birth = Status(edge_id=edge_id, online=True, birth=1, ts=time.time(), version="bench", machines=machine_ids(),
                   epoch=epoch, oldest_seq=1, latest_seq=len(events))
    out = [(topics.gateway_topic(SITE, edge_id, "status"), birth.model_dump_json(exclude_none=True).encode())]
    out += [(topics.gateway_topic(SITE, edge_id, "events"), b) for b in batches]
    return epoch, out


async def central_drain(port: int, folder: Path, client_id: str, acks: AckWatcher, epoch: str,
                        total: int, orders: OrdersConfig | None = None) -> dict[str, float]:
    """``Central`` in process: seconds from start until every seq is applied (counter) and confirmed (ack)."""
    cfg = CentralConfig(
        site=SITE, mqtt=MqttConfig(host="127.0.0.1", port=port), store=StoreConfig(path=folder / "central.sqlite"),
        ingest=IngestConfig(client_id=client_id), plant=MachinesConfig.model_validate(plant_config()),
        orders=orders or OrdersConfig(),
    )
    acks.expect(epoch, total)
    started = time.perf_counter()
    async with Central.running(cfg) as central:
        ready = time.perf_counter()  # store, order book and alerts loaded, subscribed: ingest starts
        applied_at = 0.0
        deadline = time.monotonic() + 900
        while not acks.done.is_set():
            if not applied_at and central.live.counters.events_applied >= total:
                applied_at = time.perf_counter()
            if time.monotonic() > deadline or central.failed:
                raise RuntimeError(f"central did not confirm {total} events: {central.live.counters}"
                                   f" (failed task: {central.failed})")
            await asyncio.sleep(0.005)
        c = central.live.counters
        return {"applied_s": (applied_at or acks.at) - started, "confirmed_s": acks.at - started,
                "ready_s": ready - started,
                "applied": c.events_applied, "duplicates": c.duplicates, "dead": c.dead_letters,
                "rounds": c.rounds, "commit_s": c.commit_seconds}


def validate_only(messages: list[tuple[str, bytes]]) -> float:
    """Seconds to validate the event messages with the protocol models alone."""
    started = time.perf_counter()
    for topic, payload in messages:
        if topic.endswith("/events"):
            EventBatch.model_validate_json(payload)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- catch-up through real processes
def catch_up(root: Path, broker: Mosquitto, events: int, stack: Stack) -> dict[str, Any]:
    folder = root / "catch-up"
    data = folder / "edge" / "data"
    data.mkdir(parents=True)
    fill_s = asyncio.run(fill_outbox(data / "outbox.sqlite", events, end=time.time(), span=WEEK))
    defaults = CentralConfig(site=SITE)
    central = stack.started(CentralProcess(
        folder / "central", broker, site=SITE, ingest={"ack_interval": defaults.ingest.ack_interval},
        api={"stream_min_interval": defaults.api.stream_min_interval}, plant=plant_config(),
    ))
    central.start(timeout=120)  # registers central's persistent session, then central is down
    central.stop()
    metrics_port = free_port()
    edge = stack.started(EdgeProcess(folder / "edge", broker, edge_id="line-a", site=SITE,
                                     machines=[unreachable_machine()],
                                     health={"interval": 10.0, "metrics_port": metrics_port}))
    watcher = Client(broker.port, "bench-window-watcher", clean_start=True)
    seen = 0

    def on_events(topic: str, payload: bytes) -> None:
        nonlocal seen
        seen += payload.count(b'"seq":')

    watcher.on_message = on_events
    stack.started(watcher).start()
    watcher.subscribe([topics.gateway_topic(SITE, "line-a", "events")])
    edge.start()
    window = min(events, ForwardConfig().window)
    wait_for(lambda: seen >= window, 300, what="the gateway's first window published while central is down")
    watcher.stop()
    edge_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    started = time.perf_counter()
    central.start(timeout=120)

    def applied() -> bool:
        if not central.process.running():
            raise FatalError(f"central exited:\n{central.process.tail()}")
        gw = central.gateway("line-a")
        return bool(gw["applied_seq"] and gw["applied_seq"] >= events)

    wait_for(applied, 3600, what="every seq applied by central", interval=0.25)
    applied_s = time.perf_counter() - started
    wait_for(lambda: scrape(edge_metrics)["plantpulse_edge_buffer_events"] == 0, 300,
             what="the gateway's outbox empty (every event confirmed)", interval=0.1)
    confirmed_s = time.perf_counter() - started
    metrics = scrape(f"{central.url}/metrics")
    return {"events": events, "fill_s": fill_s, "applied_s": applied_s, "confirmed_s": confirmed_s,
            "central_rss_mb": peak_rss_mb(central.process.pid), "gateway_rss_mb": peak_rss_mb(edge.process.pid),
            "duplicates": metrics.get("plantpulse_central_duplicates_total", 0.0),
            "dead": metrics.get("plantpulse_central_dead_letters_total", 0.0),
            "gaps": metrics.get("plantpulse_central_gaps_total", 0.0),
            "store_mb": sum(p.stat().st_size for p in (folder / "central").glob("central.sqlite*")) / 1e6}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per throughput run (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, median shown (default 3)")
    parser.add_argument("--catch-up", type=int, default=WEEK_EVENTS,
                        help=f"events in the catch-up backlog (default {WEEK_EVENTS}: a week of a 50-machine line)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the first central run here and print"
                        " the top functions (central's loop thread; SQLite runs in aiosqlite's thread)")
    parser.add_argument("--no-catch-up", action="store_true", help="throughput runs only")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    logging.getLogger("plantpulse.mqtt").setLevel(logging.ERROR)  # each central run says it disconnected
    n, backlog, repeat = (10_000, 50_000, 1) if args.quick else (args.events, args.catch_up, args.repeat)
    print(f"ingest benchmark on {machine()}; {n:,} events per run ({MACHINES} machines, {BATCH} per message),"
          f" median of {repeat}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, Stack() as stack:
        root = Path(tmp)
        # anonymous on purpose: the load generators here connect without logins, and the figures in
        # docs/performance.md were taken on an open broker (an ACL check per message would change them)
        broker = stack.started(Mosquitto(root / "broker", BrokerOptions(anonymous=True, max_queued_messages=1_000_000)))
        broker.start()
        acks = stack.started(AckWatcher(broker.port)).start()
        raw_rates, central_rates, applied_rates, validate_rates, commit_share, single_rates = [], [], [], [], [], []
        for run in range(repeat):
            edge_id, raw_id, central_id = f"gw{run}", f"bench-raw-{run}", f"bench-central-{run}"
            register_session(broker.port, raw_id)
            register_session(broker.port, central_id)
            epoch, messages = backlog_messages(edge_id, n)
            publish_all(broker.port, messages)
            batches = len(messages) - 1

            def drain_raw(raw_id: str = raw_id, batches: int = batches) -> None:
                raw_rates.append(n / raw_drain(broker.port, raw_id, batches))

            def drain_central(central_id: str = central_id, epoch: str = epoch, run: int = run) -> None:
                drain = central_drain(broker.port, root / f"central-{run}", central_id, acks, epoch, n)
                if args.profile and run == 0:
                    with cProfile.Profile() as prof:
                        result = asyncio.run(drain)
                    prof.dump_stats(args.profile)
                    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
                else:
                    result = asyncio.run(drain)
                if result["applied"] != n or result["duplicates"] or result["dead"]:
                    raise RuntimeError(f"central did not apply every event exactly once: {result}")
                central_rates.append(n / result["confirmed_s"])
                applied_rates.append(n / result["applied_s"])
                commit_share.append(result["commit_s"] / result["applied_s"])

            for step in (drain_raw, drain_central) if run % 2 == 0 else (drain_central, drain_raw):
                step()
            validate_rates.append(n / validate_only(messages))
            single_rates.append(n / single_event_drain(broker.port, f"bench-single-{run}", messages))
        raw = median(raw_rates)
        widths = (72, 11, 8)
        print(row(["events per second (ratio against the raw drain)", "events/s", "x raw"], widths))
        print(row([f"raw paho subscriber draining the queued messages ({BATCH} events each)", f"{raw:,.0f}", "1.00"],
                  widths))
        print(row(["central: applied, stored, acked to the broker, confirmed to the gateway",
                   f"{median(central_rates):,.0f}", f"{median(central_rates) / raw:.3f}"], widths))
        print(row(["  (central: last event through the apply step, before its commit)", f"{median(applied_rates):,.0f}",
                   f"{median(applied_rates) / raw:.3f}"], widths))
        print(row(["pydantic validation of the same messages alone (no I/O)", f"{median(validate_rates):,.0f}",
                   f"{median(validate_rates) / raw:.3f}"], widths))
        print(row(["raw paho subscriber draining the same events, 1 per message", f"{median(single_rates):,.0f}",
                   f"{median(single_rates) / raw:.3f}"], widths))
        print(f"  central spent {median(commit_share):.0%} of its time in SQLite commits;"
              " every event applied exactly once (no duplicates, no dead letters)")

        if args.no_catch_up:
            return 0
        up = catch_up(root, broker, backlog, stack)
        print()
        print(f"catch-up: {up['events']:,} events of a week of {MACHINES} machines in a gateway's outbox"
              f" (filled in {up['fill_s']:.0f} s); central started after the gateway published its first window:")
        print(f"  every seq applied in {up['applied_s']:.1f} s ({up['events'] / up['applied_s']:,.0f} events/s,"
              f" {up['events'] / up['applied_s'] / raw:.3f} x raw drain; target 300 s:"
              f" {up['applied_s'] / 300:.2f} of it); gateway outbox empty after {up['confirmed_s']:.1f} s")
        print(f"  peak RSS: central {up['central_rss_mb']:.0f} MB, gateway {up['gateway_rss_mb']:.0f} MB;"
              f" store {up['store_mb']:.0f} MB; duplicates {up['duplicates']:.0f}, dead letters {up['dead']:.0f},"
              f" gaps {up['gaps']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
