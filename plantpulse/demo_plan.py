"""The demo's production plan: a few small work orders over the demo plant's machines. Pure.

``make demo`` posts these orders to central's API (``POST /api/v1/orders``, as a planner or an ERP
would) right after central is ready, and releases one more (``order(n, now)``) whenever fewer than
``OPEN_TARGET`` orders are open, so the orders page, the Gantt, the machine pages and the scan page
always have work to show. The simulated operator (``python -m simulators operator``) then loads
each operation's job number on its machine; the machines report the job and their counts, and
central moves the operations from them.

Why these numbers: the demo plant runs at speed x10 (``simulators/plants/demo.yaml``), and central
works in wall-clock seconds, so an operation's ideal cycle time and setup time here are the plant's
divided by 10 (the same ideal cycle times as ``examples/demo-central.yaml``). Job numbers are
``2NNNNS`` style integers below 65536 (the PLC's 16-bit job register): order number and step, never
the same for two operations in a row on one machine. The first operation of the seeded plan on each
machine has no setup: the previous shift left the machine set up for it (and the demo shows parts
within seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SPEED = 10.0  # the demo plant's time factor (simulators/plants/demo.yaml)
OPEN_TARGET = 6  # the demo planner releases an order whenever fewer are open
SEED_ORDERS = 6


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of a routing: what is done, where, and the machine's ideal cycle and setup (plant s)."""

    name: str
    machine: str
    cycle_time: float  # plant seconds per part, as the simulated machine's ideal
    setup_time: float  # plant seconds


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    customer: str
    quantity: tuple[int, int]  # smallest and largest order
    routing: tuple[Step, ...]


# The routings: turning -> milling -> testing; pressing -> welding -> assembly -> testing; ...
PRODUCTS: tuple[Product, ...] = (
    Product("bracket 支架", "华东机电", (20, 40), (
        Step("stamp 冲压", "press-01", 6, 600), Step("weld 焊接", "weld-01", 90, 600),
        Step("assemble 装配", "asm-01", 75, 600))),
    Product("shaft 轴", "ACME", (8, 16), (
        Step("turn 车削", "cnc-01", 45, 900), Step("mill 铣削", "mill-01", 120, 1800),
        Step("test 测试", "test-01", 40, 300))),
    Product("flange 法兰", "宁波精工", (6, 12), (
        Step("turn 车削", "cnc-02", 60, 1200), Step("drill 钻孔", "mill-01", 120, 1800))),
    Product("housing 壳体", "Nordtech", (6, 12), (
        Step("turn 车削", "cnc-01", 45, 900), Step("assemble 装配", "asm-01", 75, 600),
        Step("test 测试", "test-01", 40, 300))),
)

# Machines the simulated operator drives (the demo writes them ``auto_jobs: false`` into its plant
# file): every machine of a routing. The others (moulding, the second welding robot) run random jobs of their own.
OPERATED: frozenset[str] = frozenset(step.machine for p in PRODUCTS for step in p.routing)


def job_number(n: int, step: int) -> str:
    """The job (program) number of order ``n``'s ``step``-th operation (1-based): fits 16 bits."""
    return str(20000 + (n % 4000) * 10 + step)


def order_id(n: int) -> str:
    return f"SO-{1000 + n}"


def order_number(oid: str) -> int | None:
    """``n`` of a demo order id (``order_id(n)``); None for any other id."""
    digits = oid.removeprefix("SO-")
    if digits == oid or not digits.isdigit() or int(digits) <= 1000:
        return None
    return int(digits) - 1000


def resume(existing: Iterable[str]) -> tuple[list[int], int]:
    """A planner (re)starting on a central that may know orders already (compose keeps central's store):
    the seed orders still to post, and the first order number to release after them."""
    numbers = {n for n in map(order_number, existing) if n is not None}
    missing = [n for n in range(1, SEED_ORDERS + 1) if n not in numbers]
    return missing, max([SEED_ORDERS, *numbers]) + 1


def order(n: int, now: float, *, due_in: float | None = None, set_up: Iterable[str] = ()) -> dict[str, Any]:
    """Order ``n`` (1, 2, ...) as ``POST /api/v1/orders`` takes it, due ``due_in`` seconds after ``now``.

    ``set_up``: machines already set up for this order's operation there (no setup time).
    Deterministic in ``n``: the product cycles, the quantity varies within the product's range.
    """
    product = PRODUCTS[(n - 1) % len(PRODUCTS)]
    low, high = product.quantity
    quantity = low + (n * 7919) % (high - low + 1)
    work = sum(s.cycle_time * quantity + s.setup_time for s in product.routing) / SPEED
    due = now + (due_in if due_in is not None else 1800 + 1.5 * work)
    ready = set(set_up)
    operations = []
    for i, step in enumerate(product.routing, start=1):
        op: dict[str, Any] = {
            "seq": 10 * i, "name": step.name, "machine": step.machine, "quantity": quantity,
            "ideal_cycle_time": step.cycle_time / SPEED,
            "setup_time": 0.0 if step.machine in ready else step.setup_time / SPEED,
            "job": job_number(n, i),
        }
        if i > 1:  # the next operation may start once a first batch has arrived
            op["transfer_quantity"] = max(1, quantity // 4)
        operations.append(op)
    return {"id": order_id(n), "product": product.name, "customer": product.customer, "quantity": quantity,
            "due": round(due), "priority": 0, "notes": "demo plan", "operations": operations}


def seed(now: float, count: int = SEED_ORDERS) -> list[dict[str, Any]]:
    """The plan at the demo's start: ``count`` orders, staggered due times, one of them tight (it goes
    at risk: the orders page has something to explain), each machine set up for its first operation."""
    out = []
    set_up: set[str] = set()
    for n in range(1, count + 1):
        product = PRODUCTS[(n - 1) % len(PRODUCTS)]
        first_here = {s.machine for s in product.routing} - set_up
        due_in = 600.0 if n == 3 else 1800.0 + 600.0 * n
        out.append(order(n, now, due_in=due_in, set_up=first_here))
        set_up |= first_here
    return out
