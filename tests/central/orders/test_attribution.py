"""Counts to operations inside real ingest rounds against a real SQLite store (issue 13).

No broker: messages go to the applier as the MQTT thread would hand them, then the order hook
(``Attribution``) runs before the commit exactly as in ``IngestService``. Checked: a job number
starts its queued operation, counts go to the operation running at their *event* time (a late
backlog included), completion at the planned quantity with over-production recorded, an unmatched
job leaves the current operation running and is shown, counts with no operation are kept as
unassigned, and everything survives a reload from the store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from central.ingest.applier import Applier, Round
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.ingest.messages import Incoming
from central.orders.attribution import Attribution
from central.orders.book import OrderBook
from central.progress.assignment import Tally
from central.progress.clock import ClockRule
from central.progress.machines import Catalog, MachinesConfig
from central.progress.orders import ConflictError, OpStatus, OrderError, WorkOrderIn
from central.store.sqlite import SqliteStore
from plantpulse.protocol.models import CountEvent, EventBatch, MachineState, StateEvent, Status
from tests.fixtures.ids import EPOCH1

T = time.time() - 3600  # an hour ago: every event is in the past, as a gateway's would be


@dataclass
class Rig:
    store: SqliteStore
    book: OrderBook
    hook: Attribution
    applier: Applier
    seq: int = 0

    async def send(self, *events: tuple[str, float, str | None, int]) -> Round:
        """One round of events: (kind 'state'/'count', seconds after T, job, good parts)."""
        out: list[StateEvent | CountEvent] = []
        for kind, at, job, good in events:
            self.seq += 1
            if kind == "state":
                out.append(StateEvent(seq=self.seq, machine_id="m1", ts=T + at, state=MachineState.RUNNING, job=job))
            else:
                out.append(CountEvent(seq=self.seq, machine_id="m1", start=T + at - 1, ts=T + at, good=good,
                                      scrap=1 if good > 3 else 0, job=job))
        batch = EventBatch(edge_id="gw1", epoch=EPOCH1, sent_at=time.time(), events=out)
        msg = Incoming("plantpulse/v1/s/gw1/events", batch.model_dump_json().encode(), self.seq, 1, time.time())
        rnd = await self.applier.messages([msg], Round())
        await self.hook.on_round(rnd, time.time())
        await self.store.commit(rnd.tx)
        self.hook.committed(rnd)
        return rnd


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    catalog = Catalog(MachinesConfig.model_validate({"machines": [{"id": "m1", "work_centre": "turning"}]}))
    live = LiveState(IngestConfig(), catalog)
    applier = Applier(live, ClockRule(), store.intervals_from, site="s")
    book = OrderBook(store, catalog, clock=time.time)
    await book.load()
    birth = Status(edge_id="gw1", online=True, birth=1, ts=time.time(), epoch=EPOCH1)
    rnd = await applier.messages([Incoming("plantpulse/v1/s/gw1/status", birth.model_dump_json().encode(), 1, 1,
                                           time.time())], Round())
    await store.commit(rnd.tx)
    try:
        yield Rig(store, book, Attribution(book), applier)
    finally:
        await store.close()


def order(order_id: str, job: str, quantity: int = 10, **extra: object) -> WorkOrderIn:
    return WorkOrderIn.model_validate({
        "id": order_id, "product": "bracket", "quantity": quantity, "due": T + 86_400,
        "operations": [{"seq": 10, "name": "turn", "machine": "m1", "quantity": quantity, "ideal_cycle_time": 5,
                        "job": job, **extra}]})


async def test_a_job_number_starts_its_operation_and_counts_follow_event_time(rig: Rig) -> None:
    await rig.book.create(order("SO-1", "1001"), by="planner")
    await rig.book.create(order("SO-2", "1002"), by="planner")
    await rig.send(("count", 5, None, 2))  # before any job: unassigned, kept
    await rig.send(("state", 10, "1001", 0), ("count", 20, "1001", 3), ("count", 30, "1001", 4))
    book = rig.book
    assert book.plan.operations[("SO-1", 10)].status is OpStatus.RUNNING
    assert (book.tallies[("SO-1", 10)].good, book.tallies[("SO-1", 10)].scrap) == (7, 1)
    assert book.unassigned["m1"].good == 2
    # the machine switches to 1002; then the backlog of 1001's last parts arrives late: they belong to SO-1
    await rig.send(("state", 50, "1002", 0), ("count", 60, "1002", 1))
    await rig.send(("count", 40, "1001", 2))
    assert book.tallies[("SO-1", 10)].good == 9 and book.tallies[("SO-2", 10)].good == 1
    assert book.plan.operations[("SO-1", 10)].status is OpStatus.PAUSED
    # the same from the store: a restart restores the book exactly
    again = OrderBook(rig.store, book.catalog, clock=time.time)
    await again.load()
    assert again.plan.operations == book.plan.operations and again.book == book.book
    assert {k: (t.good, t.scrap) for k, t in again.tallies.items()} == {k: (t.good, t.scrap)
                                                                       for k, t in book.tallies.items()}


async def test_the_old_jobs_last_parts_sent_at_the_change_instant_stay_with_its_operation(rig: Rig) -> None:
    """The gateway's read that sees the job change sends the old job's parts of that read stamped with the
    change's instant and naming the old job, then the state with the new job (edge/tracker.py): they went
    to the new job's operation, whether in the same round, or stored before a late job change re-attributed
    them."""
    await rig.book.create(order("SO-1", "1001"), by="planner")
    await rig.book.create(order("SO-2", "1002"), by="planner")
    await rig.book.create(order("SO-3", "1003"), by="planner")
    await rig.send(("state", 10, "1001", 0), ("count", 20, "1001", 1))
    await rig.send(("count", 30, "1001", 2), ("state", 30, "1002", 0), ("count", 30, "1002", 1))
    book = rig.book
    assert (book.tallies[("SO-1", 10)].good, book.tallies[("SO-2", 10)].good) == (3, 1)
    await rig.send(("count", 50, "1002", 2))  # stored first; the change at that instant arrives later
    await rig.send(("state", 50, "1003", 0))
    assert (book.tallies[("SO-2", 10)].good, book.tallies.get(("SO-3", 10), Tally()).good) == (3, 0)
    again = OrderBook(rig.store, book.catalog, clock=time.time)
    await again.load()
    assert {k: t.good for k, t in again.tallies.items()} == {k: t.good for k, t in book.tallies.items()}


async def test_completion_at_the_planned_quantity_records_over_production(rig: Rig) -> None:
    await rig.book.create(order("SO-1", "1001", quantity=5), by="planner")
    await rig.send(("state", 10, "1001", 0), ("count", 20, "1001", 3), ("count", 30, "1001", 3))
    book = rig.book
    assert book.plan.operations[("SO-1", 10)].status is OpStatus.DONE
    assert book.plan.orders["SO-1"].status.value == "done"
    assert book.completed[("SO-1", 10)].over == 1  # 6 good for 5 planned
    await rig.send(("count", 40, "1001", 2))  # still running it: over-production, on the same operation
    assert book.tallies[("SO-1", 10)].good == 8
    assert book.plan.dispatch.get("m1") == ()


async def test_a_round_that_completes_a_running_operation_finds_the_count_that_did(rig: Rig) -> None:
    """The fast path (all of a machine's counts of a round to what it runs) also completes: at the count
    whose parts reach the quantity, in event time order (the counts arrive out of order here), exactly as
    the count-by-count walk does; the parts after it are over-production on the same operation."""
    await rig.book.create(order("SO-1", "1001", quantity=10), by="planner")
    await rig.book.create(order("SO-2", "1002", quantity=10), by="planner")
    await rig.send(("state", 10, "1001", 0), ("count", 15, "1001", 1))
    await rig.send(("count", 40, "1001", 3), ("count", 20, "1001", 3), ("count", 30, "1001", 2),
                   ("count", 50, "1001", 2))
    book = rig.book
    assert book.plan.operations[("SO-1", 10)].status is OpStatus.DONE
    assert book.completed[("SO-1", 10)].at == T + 50  # 1 + 3 (at 20) + 2 (at 30) + 3 (at 40) = 9, + 2 (at 50)
    assert book.tallies[("SO-1", 10)].good == 11 and book.plan.operations[("SO-2", 10)].status is OpStatus.PLANNED


async def test_an_unmatched_job_leaves_the_current_operation_and_is_shown(rig: Rig) -> None:
    await rig.book.create(order("SO-1", "1001"), by="planner")
    await rig.send(("state", 10, "1001", 0), ("count", 20, "1001", 2))
    await rig.send(("state", 30, "7777", 0), ("count", 40, "7777", 3))
    assert rig.book.unmatched["m1"].job == "7777"
    assert rig.book.tallies[("SO-1", 10)].good == 5  # the current operation goes on
    assert rig.book.running_on("m1") == ("SO-1", 10)


async def test_people_start_pause_and_finish_and_each_change_is_audited(rig: Rig) -> None:
    book = rig.book
    await book.create(order("SO-1", "1001"), by="planner")
    await book.create(order("SO-2", "1002", quantity=4), by="planner", rush=True)
    assert book.plan.dispatch["m1"] == (("SO-2", 10), ("SO-1", 10))  # the rush order goes first
    await book.start(("SO-1", 10), by="operator")
    assert book.running_on("m1") == ("SO-1", 10)
    await book.pause(("SO-1", 10), by="operator")
    assert book.plan.operations[("SO-1", 10)].status is OpStatus.PAUSED and book.running_on("m1") is None
    with pytest.raises(ConflictError):
        await book.pause(("SO-1", 10), by="operator")
    with pytest.raises(OrderError):
        await book.start(("SO-1", 10), by="operator", machine="m2")
    await book.finish(("SO-1", 10), by="operator")
    assert book.plan.operations[("SO-1", 10)].status is OpStatus.DONE
    await book.cancel("SO-2", by="planner", reason="customer")
    trail = await rig.store.audit_trail()
    assert [(a.action, a.by) for a in reversed(trail)] == [
        ("create", "planner"), ("insert_rush", "planner"), ("start", "operator"), ("pause", "operator"),
        ("finish", "operator"), ("cancel", "planner")]
    again = OrderBook(rig.store, book.catalog, clock=time.time)
    await again.load()
    assert (again.plan.orders, again.plan.operations) == (book.plan.orders, book.plan.operations)
    assert again.plan.dispatch == {q: ks for q, ks in book.plan.dispatch.items() if ks}


async def test_a_late_job_number_re_attributes_the_counts_stored_after_it(rig: Rig) -> None:
    await rig.book.create(order("SO-1", "1001"), by="planner")
    await rig.send(("count", 20, None, 2), ("count", 30, None, 3))  # no job known yet: unassigned
    assert rig.book.unassigned["m1"].good == 5 and ("SO-1", 10) not in rig.book.tallies
    await rig.send(("state", 10, "1001", 0))  # the job change from before them arrives late (a backlog)
    assert rig.book.tallies[("SO-1", 10)].good == 5 and rig.book.unassigned["m1"].good == 0
    assert [c.op for c in await rig.store.attributed_counts("m1", 0)] == [("SO-1", 10), ("SO-1", 10)]
    again = OrderBook(rig.store, rig.book.catalog, clock=time.time)
    await again.load()
    assert again.tallies[("SO-1", 10)].good == 5 and again.unassigned.get("m1") is None


async def test_auto_next_starts_the_next_operation_without_a_job_on_completion(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    try:
        catalog = Catalog(MachinesConfig.model_validate({"machines": [{"id": "m1"}]}))
        book = OrderBook(store, catalog, clock=time.time, auto_next=["m1"])
        await book.load()
        hook = Attribution(book)
        live = LiveState(IngestConfig(), catalog)
        rig = Rig(store, book, hook, Applier(live, ClockRule(), store.intervals_from, site="s"))
        birth = Status(edge_id="gw1", online=True, birth=1, ts=time.time(), epoch=EPOCH1)
        rnd = await rig.applier.messages([Incoming("plantpulse/v1/s/gw1/status", birth.model_dump_json().encode(),
                                                   1, 1, time.time())], Round())
        await store.commit(rnd.tx)
        await book.create(order("SO-1", "1001", quantity=3), by="planner")
        await book.create(WorkOrderIn.model_validate({
            "id": "SO-2", "product": "p", "quantity": 5, "due": T + 86_400,
            "operations": [{"seq": 10, "name": "saw", "machine": "m1", "quantity": 5, "ideal_cycle_time": 5}]}),
            by="planner")
        await rig.send(("state", 10, "1001", 0), ("count", 20, "1001", 3), ("count", 30, "1001", 2))
        assert book.plan.operations[("SO-1", 10)].status is OpStatus.DONE
        assert book.running_on("m1") == ("SO-2", 10)  # started by the completion, at the completing count's time
        assert book.tallies[("SO-2", 10)].good == 2 and book.tallies[("SO-1", 10)].good == 3
    finally:
        await store.close()


async def test_a_work_centre_operation_starts_on_the_machine_that_reports_its_job(rig: Rig) -> None:
    await rig.book.create(WorkOrderIn.model_validate({
        "id": "SO-9", "product": "p", "quantity": 4, "due": T + 86_400,
        "operations": [{"seq": 10, "name": "turn", "work_centre": "turning", "quantity": 4, "ideal_cycle_time": 5,
                        "job": "555"}]}), by="planner")
    await rig.send(("state", 10, "555", 0), ("count", 20, "555", 2))
    assert rig.book.running_on("m1") == ("SO-9", 10) and rig.book.tallies[("SO-9", 10)].good == 2
