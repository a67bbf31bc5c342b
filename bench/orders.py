"""Work orders under load (issue 13, "Benchmarks", speed): ingest beside 10,000 open operations, and the progress
of one order of 10,000 operations.

``python -m bench orders`` (or ``python -m bench.orders [--events N] [--ops N] [--repeat N] [--quick]``) runs a
private mosquitto and prints two tables:

* **ingest**: the backlog of ``bench ingest`` (50 machines, live edge times, 500 events a message)
  drained by ``Central`` in process (store, attribution, projector and all), once on a store without
  orders (the baseline) and once on a store holding ``--ops`` open operations (2,000 orders of 5
  operations over the 50 machines: 200 in each dispatch list; each machine's first one carries the
  job number its events report, so every count is attributed to an operation, which completes half
  way and goes on as over-production). The two alternate between repeats; same backlog size, same
  run. Target: with orders at least 90% of the baseline's events per second.
* **progress**: ``GET /api/v1/orders/{id}`` (through the ASGI app, no socket) for one order of
  ``--ops`` operations in the store (chained over the 50 machines, the first few done), beside the
  same call for an order of 5 operations in the same central. Target: p99 under 50 ms. The answer is
  kept until the order or the projection changes (``central/orders/answers.py``), so the table also
  shows the first request after a change, ``--changes`` times each: after a count on one operation (as
  an ingest round tells the book, right after a pass so that none runs meanwhile) and after a projector
  pass (every operation's projected times move), and what rendering the whole answer costs
  (``order_public``, as every request after a change did before the rows were kept).

``--only ingest`` or ``--only progress`` runs one of the two parts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._backlog import MACHINES, SITE, machine_ids
from bench._mqtt import publish_all, register_session
from bench._procs import Stack, exit_on_sigterm, machine, row
from bench.ingest import AckWatcher, backlog_messages, central_drain, plant_config
from central.api.app import create_app
from central.config import CentralConfig
from central.orders.book import BookChanged, _Undo
from central.orders.config import OrdersConfig
from central.orders.render import order_public
from central.progress.changes import create_order
from central.progress.orders import Operation, OpStatus, Plan, WorkOrder, WorkOrderIn
from central.runtime import Central
from central.store.config import StoreConfig
from central.store.open import open_store
from central.store.order_records import OrderWrites
from central.store.records import Transaction
from tests.fixtures.mosquitto import BrokerOptions, Mosquitto

JOB = "WO-00000/op10"  # the job the backlog's events report (bench/_backlog.py) for their first 2,000 per machine
INGEST_TARGET, PROGRESS_TARGET = 0.90, 0.050


def open_plan(ops: int, machines: list[str]) -> Plan:
    """``ops`` open operations, 5 an order, spread over the machines; each machine's first one has ``JOB``."""
    plan = Plan()
    due = time.time() + 30 * 86_400
    first: set[str] = set()
    for i in range(ops // 5):
        routing = []
        for j in range(5):
            m = machines[(i * 5 + j) % len(machines)]
            job = JOB if m not in first else f"J{i:05d}-{j}"
            first.add(m)
            routing.append({"seq": (j + 1) * 10, "name": f"op{j + 1}", "machine": m, "quantity": 2000 if job == JOB
                            else 50, "ideal_cycle_time": 15.0, "setup_time": 300.0, "job": job})
        order = WorkOrderIn.model_validate({"id": f"SO-{i:05d}", "product": "part", "quantity": 50, "due": due,
                                            "operations": routing})
        plan = create_order(plan, order, by="bench", now=time.time()).plan
    return plan


def long_order(ops: int, machines: list[str]) -> Plan:
    """One order of ``ops`` operations (built directly: the API caps a routing at 200), and one of 5."""
    now = time.time()
    operations: dict[tuple[str, int], Operation] = {}
    dispatch: dict[str, list[tuple[str, int]]] = {}
    orders = {}
    for order_id, n in (("BIG", ops), ("SMALL", 5)):
        seqs = []
        for k in range(n):
            seq = (k + 1) * 10
            m = machines[k % len(machines)]
            status = OpStatus.DONE if order_id == "BIG" and k < 20 else OpStatus.PLANNED
            operations[(order_id, seq)] = Operation(order_id, seq, f"op{seq}", m, None, 10, 15.0, 60.0, None,
                                                    status=status)
            if status.open:
                dispatch.setdefault(m, []).append((order_id, seq))
            seqs.append(seq)
        orders[order_id] = WorkOrder(order_id, "part", None, 10, now + 90 * 86_400, seqs=tuple(seqs), created_at=now)
    return Plan(orders, operations, {q: tuple(k) for q, k in dispatch.items()})


async def store_plan(path: Path, plan: Plan) -> None:
    store = await open_store(StoreConfig(path=path), "s")
    try:
        w = OrderWrites()
        w.plan(Plan(), plan)
        await store.commit(Transaction(orders=w))
    finally:
        await store.close()


def attributed(path: Path) -> tuple[int, int]:
    """(count events with an operation, all count events) in a store."""
    with sqlite3.connect(path) as db:
        with_op, total = db.execute("SELECT count(order_id), count(*) FROM counts").fetchone()
    return int(with_op), int(total)


def ingest(broker: Mosquitto, root: Path, events: int, ops: int, repeat: int,
           orders: OrdersConfig | None = None) -> dict[str, list[float]]:
    acks = AckWatcher(broker.port).start()
    machines = machine_ids(MACHINES)
    plan = open_plan(ops, machines)
    rates: dict[str, list[float]] = {"none": [], "orders": [], "none ready": [], "orders ready": []}
    shares: list[float] = []
    try:
        for run in range(repeat):
            kinds = ("none", "orders") if run % 2 == 0 else ("orders", "none")
            for kind in kinds:
                edge_id, client_id = f"gw-{kind}-{run}", f"bench-orders-{kind}-{run}"
                folder = root / f"central-{kind}-{run}"
                folder.mkdir()
                if kind == "orders":
                    asyncio.run(store_plan(folder / "central.sqlite", plan))
                register_session(broker.port, client_id)
                epoch, messages = backlog_messages(edge_id, events)
                publish_all(broker.port, messages)
                result = asyncio.run(central_drain(broker.port, folder, client_id, acks, epoch, events, orders))
                if result["applied"] != events or result["duplicates"] or result["dead"]:
                    raise RuntimeError(f"central did not apply every event exactly once: {result}")
                rates[kind].append(events / result["confirmed_s"])
                rates[f"{kind} ready"].append(events / (result["confirmed_s"] - result["ready_s"]))
                if kind == "orders":
                    with_op, total = attributed(folder / "central.sqlite")
                    shares.append(with_op / total if total else 0.0)
    finally:
        acks.stop()
    rates["attributed"] = shares
    return rates


async def progress(broker: Mosquitto, root: Path, ops: int, requests: int, changes: int) -> dict[str, list[float]]:
    folder = root / "central-progress"
    folder.mkdir()
    await store_plan(folder / "central.sqlite", long_order(ops, machine_ids(MACHINES)))
    cfg = CentralConfig.model_validate({
        "site": SITE, "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "store": {"path": str(folder / "central.sqlite")},
        "ingest": {"client_id": "bench-progress"}, "api": {"open_reads": True}, "plant": plant_config()})
    times: dict[str, list[float]] = {"BIG": [], "SMALL": [], "cold": [], "count": [], "pass": []}
    async with Central.running(cfg) as central:
        await asyncio.wait_for(central.projector.settled(), 120)
        transport = httpx.ASGITransport(app=create_app(central))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for order_id in ("BIG", "SMALL"):
                answer = await http.get(f"/api/v1/orders/{order_id}")
                answer.raise_for_status()
                assert len(answer.json()["operations"]) == (ops if order_id == "BIG" else 5)
            for _ in range(5):  # what a request after a change costs: the answer rendered again
                started = time.perf_counter()
                order_public(central.orders, central.projector, "BIG", operations=True).model_dump_json()
                times["cold"].append(time.perf_counter() - started)
            for i in range(requests):
                for order_id in ("BIG", "SMALL") if i % 2 == 0 else ("SMALL", "BIG"):
                    started = time.perf_counter()
                    (await http.get(f"/api/v1/orders/{order_id}")).raise_for_status()
                    times[order_id].append(time.perf_counter() - started)
            book = central.orders
            for i in range(changes):
                await asyncio.wait_for(central.projector.settled(), 120)  # a pass: every projected time moves
                started = time.perf_counter()
                (await http.get("/api/v1/orders/BIG")).raise_for_status()
                times["pass"].append(time.perf_counter() - started)
                # a count on one open operation, told as an ingest round tells it (the next pass waits for the
                # projection interval: none runs during the request)
                key = book.plan.order("BIG").op_keys()[20 + i % (ops - 20)]
                machine_id = book.plan.operations[key].machine or ""
                book.take(key, machine_id, 1, 0, 1, _Undo())
                book._tell(BookChanged(orders=frozenset({"BIG"}), machines=frozenset({machine_id})))
                started = time.perf_counter()
                answer = await http.get("/api/v1/orders/BIG")
                times["count"].append(time.perf_counter() - started)
                answer.raise_for_status()
                assert answer.json()["operations"][20 + i % (ops - 20)]["good"] == book.parts(key).good
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per ingest run (default 100000)")
    parser.add_argument("--ops", type=int, default=10_000, help="open operations / operations of the order")
    parser.add_argument("--repeat", type=int, default=3, help="ingest runs of each kind, median shown (default 3)")
    parser.add_argument("--requests", type=int, default=200, help="progress requests per order (default 200)")
    parser.add_argument("--projection-interval", type=float, help="orders.projection_interval for the ingest "
                        "runs (default: the shipped 5 s; e.g. 600 to see ingest without the projector's passes)")
    parser.add_argument("--projection-interval-busy", type=float, help="orders.projection_interval_busy for the "
                        "ingest runs (default: the shipped 30 s; 5 makes the projector pass every 5 s during the "
                        "backlog too, as before it held back)")
    parser.add_argument("--changes", type=int, default=20, help="first requests after a count, and after a "
                        "projector pass, each (default 20)")
    parser.add_argument("--only", choices=("ingest", "progress"), help="run only this part")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    logging.getLogger("plantpulse.mqtt").setLevel(logging.ERROR)
    events, ops, repeat, requests, changes = (10_000, 1_000, 1, 30, 5) if args.quick else (
        args.events, args.ops, args.repeat, args.requests, args.changes)
    print(f"orders benchmark on {machine()}; {events:,} events per ingest run, {ops:,} operations, "
          f"median of {repeat}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as tmp, Stack() as stack:
        root = Path(tmp)
        broker = stack.started(Mosquitto(root / "broker", BrokerOptions(anonymous=True, max_queued_messages=1_000_000)))
        broker.start()
        paces = {k: v for k, v in (("projection_interval", args.projection_interval),
                                   ("projection_interval_busy", args.projection_interval_busy)) if v is not None}
        pace = OrdersConfig.model_validate(paces) if paces else None
        if args.only != "progress":
            ok &= ingest_table(ingest(broker, root, events, ops, repeat, pace), ops)
            print()
        if args.only != "ingest":
            ok &= progress_table(asyncio.run(progress(broker, root, ops, requests, changes)), ops)
    return 0 if ok else 1


def ingest_table(rates: dict[str, list[float]], ops: int) -> bool:
    """From central's start (the order book's loading included), and from when it was ready (subscribed):
    the target is judged on ingest, the second; the first shows what a restart costs on top."""
    widths = (70, 11, 9, 11, 9)
    print(row(["ingest: events applied, stored and confirmed per second", "from start", "x none", "from ready",
               "x none"], widths))
    base, base_ready = statistics.median(rates["none"]), statistics.median(rates["none ready"])
    loaded, loaded_ready = statistics.median(rates["orders"]), statistics.median(rates["orders ready"])
    print(row(["central, no orders (baseline)", f"{base:,.0f}", "1.000", f"{base_ready:,.0f}", "1.000"], widths))
    print(row([f"central, {ops:,} open operations (counts attributed: "
               f"{statistics.median(rates['attributed']):.0%})", f"{loaded:,.0f}", f"{loaded / base:.3f}",
               f"{loaded_ready:,.0f}", f"{loaded_ready / base_ready:.3f}"], widths))
    pairs = sorted(o / n for o, n in zip(rates["orders ready"], rates["none ready"], strict=True))
    print(f"  each repeat's ratio (from ready, side by side): {', '.join(f'{r:.2f}' for r in pairs)}")
    met = loaded_ready / base_ready >= INGEST_TARGET
    print(f"  target: at least {INGEST_TARGET:.0%} of the baseline: {'met' if met else 'MISSED'}")
    return met


def progress_table(times: dict[str, list[float]], ops: int) -> bool:
    cols = (70, 9, 9, 9)
    print(row(["progress: GET /api/v1/orders/{id} (ASGI, in process)", "p50 ms", "p99 ms", "max ms"], cols))
    for name, label in (("SMALL", "an order of 5 operations (baseline)"),
                        ("BIG", f"an order of {ops:,} operations"),
                        ("count", f"  the first request after a count on one operation ({len(times['count'])}x)"),
                        ("pass", f"  the first request after a projector pass ({len(times['pass'])}x)"),
                        ("cold", f"  the whole answer rendered (order_public, {len(times['cold'])}x)")):
        t = times[name]
        if t:
            print(row([label, f"{pct(t, 0.5) * 1e3:.1f}", f"{pct(t, 0.99) * 1e3:.1f}", f"{max(t) * 1e3:.1f}"], cols))
    worst = max(pct(times[name], 0.99) for name in ("BIG", "count", "pass") if times[name])
    met = worst < PROGRESS_TARGET
    print(f"  target: p99 under {PROGRESS_TARGET * 1e3:.0f} ms, also right after a change: "
          f"{'met' if met else 'MISSED'}")
    return met


if __name__ == "__main__":
    sys.exit(main())
