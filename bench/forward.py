"""Store and forward end to end: events durably stored, delivered and confirmed, beside raw paho and raw SQLite.

``python -m bench forward`` (or ``python -m bench.forward [--events N] [--catch-up N] [--quick]``)
runs a private mosquitto (``set_tcp_nodelay true``, ``max_queued_messages`` set) and the
reference consumer (``plantpulse/consumer.py``) in a child process, and prints:

* baselines measured in the same run: a raw paho QoS 1 publisher sending one event per
  message (default inflight window of 20), timed until the broker acknowledged the last one;
  raw ``sqlite3`` inserts, one row per commit, WAL and ``synchronous=FULL`` (what a naive
  durable outbox pays per event);
* store and forward: 50 machines each emitting one event at a time into the real ``Outbox``
  (as collection does), the real ``edge.forwarder.Forwarder`` publishing it to the broker, the
  reference consumer applying and confirming it (``cmd/ack``); timed from the first emit until
  the outbox holds the last event as confirmed. Beside it the same emits with no forwarder;
* catch-up: a week of a 50-machine line (2 million events by default) in a gateway's outbox,
  drained by a real ``python -m edge run`` to the consumer: time, and the gateway process's
  peak resident memory.
Raw publisher, outbox-only and store-and-forward runs alternate (``--repeat``); medians shown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench._backlog import MACHINES, SITE, WEEK, WEEK_EVENTS, fill_outbox, line_events
from bench._mqtt import WINDOW
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
from edge.buffer import Outbox, StoredEvent
from edge.buffer.records import encode
from edge.config import ForwardConfig
from edge.forwarder import Forwarder, batch_payload
from edge.tracker import MachineMemory
from plantpulse.consumer import GatewayView, ReferenceConsumer
from plantpulse.mqtt import MqttConfig, MqttLink
from plantpulse.protocol import topics
from plantpulse.protocol.models import Ack, CountEvent, Replay
from plantpulse.protocol.sequencer import Applied
from tests.fixtures.mosquitto import BrokerOptions, Mosquitto
from tests.fixtures.procs import ManagedProcess, free_port, python_module
from tests.fixtures.services import EdgeProcess


# --------------------------------------------------------------------------- the consumer (child process)
class CountingConsumer(ReferenceConsumer):
    """The reference consumer, adding up what it applies instead of keeping every event.

    Validation, sequencing, duplicates, replays and the batched ``cmd/ack`` are the reference
    consumer's own; only ``_apply`` differs, because a week of events kept as objects would
    not fit in memory.
    """

    def __init__(self, mqtt: MqttConfig, client_id: str) -> None:
        super().__init__(mqtt, client_id=client_id)
        self.applied_events: Counter[str] = Counter()
        self.good: Counter[str] = Counter()

    def _apply(self, edge_id: str, view: GatewayView, item: Applied) -> None:
        if isinstance(item.event, CountEvent):
            self.good[edge_id] += item.event.good
        self.applied_events[edge_id] += 1
        self._dirty.add((edge_id, item.epoch))

    def report(self) -> dict[str, Any]:
        return {"applied": dict(self.applied_events), "good": dict(self.good), "duplicates": self.duplicates,
                "gaps": len(self.gaps), "dead_letters": len(self.dead_letters), "peak_rss_mb": peak_rss_mb()}


async def _consume(port: int, ready: Path, result: Path) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = CountingConsumer(MqttConfig(host="127.0.0.1", port=port), client_id=f"bench-consumer-{ready.stem}")
    await consumer.start()
    await asyncio.to_thread(ready.write_text, "connected")
    await stop.wait()
    await consumer.stop()
    await asyncio.to_thread(result.write_text, json.dumps(consumer.report()))


class Consumer:
    """``python -m bench.forward --consumer``: the counting reference consumer as its own process."""

    def __init__(self, folder: Path, name: str, port: int) -> None:
        self.ready, self.result = folder / f"{name}.ready", folder / f"{name}.json"
        self.process = ManagedProcess(
            name, python_module("bench.forward", "--consumer", str(port), str(self.ready), str(self.result)),
            folder / f"{name}.log",
        )

    def start(self) -> Consumer:
        self.process.start()
        wait_for(lambda: self.ready.exists() or not self.process.running(), 60, what="the consumer connected")
        if not self.process.running():
            raise RuntimeError(f"the consumer exited at start:\n{self.process.tail()}")
        return self

    def stop(self) -> None:
        self.process.stop()

    def report(self) -> dict[str, Any]:
        self.stop()
        if not self.result.exists():
            raise RuntimeError(f"the consumer left no report:\n{self.process.tail()}")
        data: dict[str, Any] = json.loads(self.result.read_text())
        return data


# --------------------------------------------------------------------------- baselines
def raw_sqlite(path: Path, seconds: float) -> float:
    """Rows per second by stdlib sqlite3, one row per commit, WAL + FULL (a naive durable outbox)."""
    payload = encode(1, line_events(1, end=1.8e9, span=20.0)[0])
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, machine_id TEXT, ts REAL, payload BLOB)")
        n = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            n += 1
            con.execute("INSERT INTO events VALUES (?, 'm000', 1.8e9, ?)", (n, payload))
        return n / (time.perf_counter() - started)
    finally:
        con.close()


def raw_publish(port: int, payloads: list[bytes], topic: str) -> float:
    """Messages per second: one paho client, QoS 1, default inflight window, until the last PUBACK.

    At most ``WINDOW`` messages are outstanding (paho's packet ids are 16-bit).
    """
    acked = 0
    done = threading.Event()
    window = threading.BoundedSemaphore(WINDOW)

    def on_publish(client: paho.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == len(payloads):
            done.set()

    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{time.monotonic_ns()}",
                         protocol=paho.MQTTv5)
    client.on_publish = on_publish
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(30):
            raise RuntimeError("the raw publisher could not connect to the broker")
        started = time.perf_counter()
        for payload in payloads:
            if not window.acquire(timeout=60):
                raise RuntimeError(f"the broker stopped acknowledging raw publishes ({acked} of {len(payloads)})")
            client.publish(topic, payload, qos=1)
        if not done.wait(300):
            raise RuntimeError(f"the broker acknowledged {acked} of {len(payloads)} raw publishes")
        return len(payloads) / (time.perf_counter() - started)
    finally:
        client.disconnect()
        client.loop_stop()


def single_event_payloads(n: int) -> list[bytes]:
    """``n`` one-event ``EventBatch`` messages, as a gateway without batching would send them."""
    events = line_events(n, end=time.time(), span=600.0)
    epoch, now = "00000000-0000-4000-8000-000000000000", time.time()
    return [batch_payload("raw", epoch, now, [StoredEvent(i + 1, e.ts, e.machine_id, e.kind, encode(i + 1, e))])
            for i, e in enumerate(events)]


# --------------------------------------------------------------------------- store and forward, in process
async def store_and_forward(port: int | None, path: Path, edge_id: str, total: int, machines: int) -> dict[str, float]:
    """``machines`` emitters store ``total`` events one by one; with a port the real forwarder
    sends them and the run ends when the consumer has confirmed the last one."""
    outbox = await Outbox.open(path)
    link: MqttLink | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        forwarder: Forwarder | None = None
        if port is not None:
            link = MqttLink(MqttConfig(host="127.0.0.1", port=port), f"bench-gateway-{edge_id}",
                            subscriptions=[(topics.gateway_topic(SITE, edge_id, "cmd/ack"), 1),
                                           (topics.gateway_topic(SITE, edge_id, "cmd/replay"), 1)])
            fwd = forwarder = Forwarder(ForwardConfig(), outbox, link, edge_id=edge_id,
                                        events_topic=topics.gateway_topic(SITE, edge_id, "events"))

            def on_message(topic: str, payload: bytes, mid: int, qos: int) -> None:
                cmd = Ack if topic.endswith("/cmd/ack") else Replay
                fwd.command(cmd.model_validate_json(payload))

            link.on_message = on_message
            link.on_disconnected = fwd.kick
            link.start()
            await asyncio.wait_for(link.wait_connected(), 30)
            tasks = [asyncio.create_task(fwd.run(), name="forwarder"),
                     asyncio.create_task(fwd.run_commands(), name="commands")]
        per_machine = total // machines
        events = line_events(per_machine * machines, end=time.time(), span=600.0, machines=machines)

        async def emitter(i: int) -> None:
            for e in events[i::machines]:
                await outbox.emit([e], MachineMemory(machine_id=e.machine_id, last_ts=e.ts))

        started = time.perf_counter()
        await asyncio.gather(*(emitter(i) for i in range(machines)))
        stored = time.perf_counter() - started
        latest = outbox.stats().latest_seq
        if forwarder is not None:
            deadline = time.monotonic() + 300
            while outbox.stats().confirmed_seq < latest:
                if time.monotonic() > deadline or any(t.done() for t in tasks):
                    raise RuntimeError(f"not confirmed: {outbox.stats()}")
                await asyncio.sleep(0.005)
        done = time.perf_counter() - started
        return {"events": latest, "stored_s": stored, "done_s": done, "per_commit": latest / outbox.commits,
                "batches": forwarder.published_batches if forwarder else 0}
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if link is not None:
            await link.stop()
        await outbox.close()


# --------------------------------------------------------------------------- catch-up through a real gateway
def catch_up(root: Path, broker: Mosquitto, events: int, stack: Stack) -> dict[str, Any]:
    """Fill a gateway's outbox with ``events`` of a week, then let ``python -m edge run`` drain it."""
    folder = root / "catch-up"
    data = folder / "data"
    data.mkdir(parents=True)
    fill_s = asyncio.run(fill_outbox(data / "outbox.sqlite", events, end=time.time(), span=WEEK))
    with contextlib.closing(sqlite3.connect(data / "outbox.sqlite")) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        held = int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    file_mb = (data / "outbox.sqlite").stat().st_size / 1e6
    consumer = stack.started(Consumer(root, "catch-up-consumer", broker.port)).start()
    metrics_port = free_port()
    edge = stack.started(EdgeProcess(
        folder, broker, edge_id="line-a", site=SITE, machines=[unreachable_machine()],
        health={"interval": 10.0, "metrics_port": metrics_port},
    ))
    started = time.perf_counter()
    edge.start()
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def drained() -> bool:
        if not edge.process.running():
            raise FatalError(f"the gateway exited:\n{edge.process.tail()}")
        m = scrape(url)
        return m["plantpulse_edge_confirmed_seq"] >= held and m["plantpulse_edge_buffer_events"] == 0

    wait_for(drained, 1800, what="the gateway's outbox drained and confirmed", interval=0.1)
    seconds = time.perf_counter() - started
    rss = peak_rss_mb(edge.process.pid)
    edge.stop()
    report = consumer.report()
    return {"events": held, "fill_s": fill_s, "file_mb": file_mb, "seconds": seconds, "gateway_rss_mb": rss,
            "consumer_rss_mb": report["peak_rss_mb"], "applied": report["applied"].get("line-a", 0),
            "duplicates": report["duplicates"], "gaps": report["gaps"]}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forward", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="events per throughput run (default 60000)")
    parser.add_argument("--machines", type=int, default=MACHINES, help="concurrent emitting machines (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per figure, median shown (default 3)")
    parser.add_argument("--catch-up", type=int, default=WEEK_EVENTS,
                        help=f"events in the catch-up backlog (default {WEEK_EVENTS}: a week of a 50-machine line)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--consumer", nargs=3, help=argparse.SUPPRESS)  # internal: the consumer child
    args = parser.parse_args(argv)
    if args.consumer:
        asyncio.run(_consume(int(args.consumer[0]), Path(args.consumer[1]), Path(args.consumer[2])))
        return 0
    exit_on_sigterm()
    logging.getLogger("plantpulse.mqtt").setLevel(logging.ERROR)  # each run's link says it disconnected
    n, backlog, repeat = (5_000, 50_000, 1) if args.quick else (args.events, args.catch_up, args.repeat)
    print(f"forward benchmark on {machine()}; {n:,} events per run, {args.machines} machines, median of {repeat}")
    with tempfile.TemporaryDirectory(prefix="bench-forward-") as tmp, Stack() as stack:
        root = Path(tmp)
        # anonymous on purpose: the load generators here connect without logins, and the figures in
        # docs/performance.md were taken on an open broker (an ACL check per message would change them)
        broker = stack.started(Mosquitto(root / "broker", BrokerOptions(anonymous=True, max_queued_messages=100_000)))
        broker.start()
        consumer = stack.started(Consumer(root, "consumer", broker.port)).start()
        payloads = single_event_payloads(n)
        rates: dict[str, list[float]] = {k: [] for k in ("sqlite", "raw", "emit", "forward")}
        detail: dict[str, list[float]] = {k: [] for k in ("stored", "per_commit", "batches", "emit_commit")}
        for run in range(repeat):
            rates["sqlite"].append(raw_sqlite(root / f"raw-{run}.db", 2.0))
            rates["raw"].append(raw_publish(broker.port, payloads, f"{topics.ROOT}/rawsite/raw/bench"))
            alone = asyncio.run(store_and_forward(None, root / f"alone-{run}.sqlite", f"alone{run}", n, args.machines))
            rates["emit"].append(alone["events"] / alone["stored_s"])
            detail["emit_commit"].append(alone["per_commit"])
            fwd = asyncio.run(store_and_forward(broker.port, root / f"fwd-{run}.sqlite", f"gw{run}", n, args.machines))
            rates["forward"].append(fwd["events"] / fwd["done_s"])
            detail["stored"].append(fwd["events"] / fwd["stored_s"])
            detail["per_commit"].append(fwd["per_commit"])
            detail["batches"].append(fwd["events"] / max(1, fwd["batches"]))
        report = consumer.report()
        expected = (n // args.machines) * args.machines
        wrong = {f"gw{r}": report["applied"].get(f"gw{r}") for r in range(repeat)
                 if report["applied"].get(f"gw{r}") != expected}
        if wrong or report["duplicates"] or report["gaps"] or report["dead_letters"]:
            print(f"error: the consumer did not apply every event once: {wrong} {report}", file=sys.stderr)
            return 1
        raw = median(rates["raw"])
        widths = (62, 10, 10, 14)
        print(row(["what (events/s; ratio against the raw paho publisher)", "events/s", "x raw pub", "note"], widths))
        print(row(["raw paho QoS 1 publish, 1 event per message, until last PUBACK", f"{raw:,.0f}", "1.00",
                   "baseline"], widths))
        print(row(["raw sqlite3 insert, 1 row per commit (WAL, FULL)", f"{median(rates['sqlite']):,.0f}",
                   f"{median(rates['sqlite']) / raw:.2f}", ""], widths))
        print(row([f"outbox.emit alone, {args.machines} machines, 1 event per emit", f"{median(rates['emit']):,.0f}",
                   f"{median(rates['emit']) / raw:.2f}", f"{median(detail['emit_commit']):.0f} ev/commit"], widths))
        print(row([f"stored + forwarded + confirmed by the consumer ({args.machines} machines)",
                   f"{median(rates['forward']):,.0f}", f"{median(rates['forward']) / raw:.2f}",
                   f"{median(detail['batches']):.0f} ev/message"], widths))
        print(f"  (in that run: stored at {median(detail['stored']):,.0f} events/s,"
              f" {median(detail['per_commit']):.0f} events per commit; every event applied once by the consumer)")

        up = catch_up(root, broker, backlog, stack)
        print()
        print(f"catch-up: {up['events']:,} events of a week of {MACHINES} machines in the outbox"
              f" ({up['file_mb']:.0f} MB, filled in {up['fill_s']:.0f} s), drained by `python -m edge run`"
              f" to the consumer and confirmed: {up['seconds']:.1f} s ({up['events'] / up['seconds']:,.0f} events/s,"
              f" {up['events'] / up['seconds'] / raw:.2f} x raw publish)")
        print(f"  peak RSS: gateway process {up['gateway_rss_mb']:.0f} MB, consumer {up['consumer_rss_mb']:.0f} MB;"
              f" consumer applied {up['applied']:,}, duplicates {up['duplicates']}, gaps {up['gaps']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
