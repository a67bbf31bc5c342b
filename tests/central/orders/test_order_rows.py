"""``GET /api/v1/orders/{id}`` rendered incrementally (``central/orders/rows.py``) gives the same bytes as
rendering the whole answer (``order_public(...).model_dump_json()``) after every kind of change: counts on
some operations (reports, machine counts), projector passes, plan changes (start, finish short, material,
the order's fields, a cancel), and redoes only the rows a change touched. Real SQLite store, real book
and projector; no broker (the changes go through the book as the API's and ingest's writes do).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from central.alerts.config import AlertsConfig
from central.alerts.engine import AlertEngine
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.orders.answers import OrderAnswers
from central.orders.book import BookChanged, OrderBook, _Undo
from central.orders.config import OrdersConfig
from central.orders.projector import Projector
from central.orders.render import order_public
from central.orders.reporting import FloorWrites
from central.progress.machines import Catalog, MachinesConfig
from central.progress.orders import (
    CountSource,
    NotFoundError,
    Operation,
    OpKey,
    OpStatus,
    OrderChangeIn,
    Plan,
    ShortageIn,
    WorkOrder,
    WorkOrderIn,
)
from central.progress.reports import ReportIn, ReportKind
from central.store.order_records import OrderWrites
from central.store.records import Transaction
from central.store.sqlite import SqliteStore

MACHINES = ["m1", "m2", "m3", "m4"]
LONG = 300  # operations of the long order (the benchmark's has 10,000, built the same way)


@dataclass
class Rig:
    book: OrderBook
    projector: Projector
    answers: OrderAnswers
    floor: FloorWrites
    reports: int = 0

    def check(self, *order_ids: str) -> None:
        for order_id in order_ids or tuple(self.book.plan.orders):
            whole = order_public(self.book, self.projector, order_id, operations=True).model_dump_json().encode()
            assert self.answers.order_json(order_id) == whole, order_id

    async def count(self, key: OpKey, good: int, scrap: int = 0) -> None:
        """A count report (scan to report) on one operation."""
        self.reports += 1
        await self.floor.report(ReportIn(client_id=f"r-{self.reports}", operator="W-1", order_id=key[0], seq=key[1],
                                         kind=ReportKind.COUNT, good=good, scrap=scrap), key_name="scanner")

    def machine_count(self, key: OpKey, machine_id: str, good: int) -> None:
        """Machine counts on an operation as an ingest round books them, then tells the book's listeners."""
        self.book.take(key, machine_id, good, 1, 1, _Undo())
        self.book._tell(BookChanged(orders=frozenset({key[0]}), machines=frozenset({machine_id})))


def long_plan() -> Plan:
    """One order of ``LONG`` operations chained over the machines, built as the benchmark builds its
    10,000 (the API caps a routing at 200); one of them counted by reports, two cancelled (one the last)."""
    now = time.time()
    operations: dict[OpKey, Operation] = {}
    dispatch: dict[str, list[OpKey]] = {}
    seqs = []
    for k in range(LONG):
        seq, m = (k + 1) * 10, MACHINES[k % len(MACHINES)]
        status = OpStatus.CANCELLED if k in (5, LONG - 1) else OpStatus.PLANNED
        source = CountSource.REPORTS if k == 40 else CountSource.MACHINE
        operations[("BIG", seq)] = Operation("BIG", seq, f"op{seq}", m, None, 20, 15, 60, f"J{k}",
                                             count_source=source, status=status)
        if status.open:
            dispatch.setdefault(m, []).append(("BIG", seq))
        seqs.append(seq)
    order = WorkOrder("BIG", "part", "客户 \"A\"", 20, now + 30 * 86_400, seqs=tuple(seqs), created_at=now)
    return Plan({"BIG": order}, operations, {q: tuple(k) for q, k in dispatch.items()})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    catalog = Catalog(MachinesConfig.model_validate({"machines": [
        {"id": "m1"}, {"id": "m2"}, {"id": "m3", "work_centre": "milling"}, {"id": "m4", "work_centre": "milling"}]}))
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    try:
        writes = OrderWrites()
        writes.plan(Plan(), long_plan())
        await store.commit(Transaction(orders=writes))
        book = OrderBook(store, catalog, clock=time.time)
        await book.load()
        projector = Projector(book, LiveState(IngestConfig(), catalog), catalog, OrdersConfig(),
                              AlertEngine(AlertsConfig(), catalog, [], store, clock=time.time), store,
                              clock=time.time)
        await book.create(WorkOrderIn.model_validate({
            "id": "SO-7", "product": "支架 bracket", "customer": "ACME \\ 东方", "quantity": 12,
            "due": time.time() + 86_400, "notes": "rush: \"today\"\n第二行", "operations": [
                {"seq": 10, "name": "车削 turn", "machine": "m1", "quantity": 12, "ideal_cycle_time": 45,
                 "setup_time": 900, "job": "1001"},
                {"seq": 20, "name": "mill", "work_centre": "milling", "quantity": 12, "ideal_cycle_time": 120.5},
                {"seq": 30, "name": "check", "machine": "m2", "quantity": 12, "ideal_cycle_time": 7,
                 "count_source": "reports"}]}), by="planner")
        yield Rig(book, projector, OrderAnswers(book, projector), FloorWrites(book))
    finally:
        await store.close()


async def test_the_incremental_answer_is_the_whole_answer_after_every_change(rig: Rig) -> None:
    book, rows = rig.book, rig.answers.rows
    rig.check()  # no projection yet: no projected times
    assert rows.rendered == LONG + 3
    await rig.projector.project_now()
    rig.check()
    assert rows.rendered == LONG + 3  # a pass moves projected times only: no row rendered again
    assert rows.placed == 2 * (LONG + 3)  # every row's projected part written again (cancelled ones: null)

    # counts on some operations: only their rows are rendered again
    before = rows.rendered
    await rig.count(("BIG", 120), 3)
    await rig.count(("BIG", 410), 5, scrap=1)  # the report-counted one
    rig.machine_count(("BIG", 130), "m1", 4)
    await rig.count(("SO-7", 30), 2)
    rig.check()
    assert rows.rendered == before + 4
    assert rig.answers.order_json("BIG") == rig.answers.order_json("BIG")  # kept until the next change
    await rig.projector.project_now()
    rig.check()

    # plan changes: a start (status, running_on), a finish short (caps the quantities downstream), material
    before = rows.rendered
    await book.start(("BIG", 110), by="planner")
    await book.start(("SO-7", 20), by="planner", machine="m3")
    rig.check()
    assert rows.rendered == before + 2
    before = rows.rendered
    await book.finish(("BIG", 110), by="planner")  # done with 0 of 20: every later quantity is capped to 0
    rig.check()
    assert rows.rendered >= before + LONG - 12
    before = rows.rendered
    await rig.count(("BIG", 110), 6)  # parts on the done operation: the cap moves to 6
    rig.check()
    assert rows.rendered >= before + LONG - 12
    await book.material(("BIG", 150), ShortageIn(short=True, expected=time.time() + 7200, note="铸件 \"late\""),
                        by="buyer")
    await book.change("SO-7", OrderChangeIn(quantity=20, priority=5, notes="更改"), by="planner")
    rig.check()
    await rig.projector.project_now()
    rig.check()
    rig.machine_count(("SO-7", 20), "m3", 7)
    rig.check()
    before = rows.rendered
    await book.start(("SO-7", 20), by="planner", machine="m4")  # a second machine of the centre joins
    rig.check()
    assert rows.rendered == before + 1
    await book.cancel("SO-7", by="planner", reason="customer")
    await rig.projector.project_now()
    rig.check()
    # no field is computed from the request's time: a month later, between two passes, the same answer
    later = rig.answers.rows.render(book, rig.projector, "BIG")
    rig.projector.clock = lambda: time.time() + 30 * 86_400
    assert order_public(book, rig.projector, "BIG", operations=True).model_dump_json().encode() == later


async def test_rows_are_kept_for_the_last_orders_only(rig: Rig) -> None:
    rows = rig.answers.rows
    rows.kept = 10
    await rig.projector.project_now()
    for order_id in ("BIG", "SO-7"):  # BIG's rows are dropped for SO-7's
        rows.render(rig.book, rig.projector, order_id)
    assert list(rows._orders) == ["SO-7"] and rows._count == 3
    whole = order_public(rig.book, rig.projector, "BIG", operations=True).model_dump_json().encode()
    assert rows.render(rig.book, rig.projector, "BIG") == whole  # the order just asked is always kept
    assert list(rows._orders) == ["BIG"] and rows._count == LONG
    with pytest.raises(NotFoundError):
        rig.answers.order_json("SO-404")
