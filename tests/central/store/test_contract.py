"""The store contract: what ingest, alerts, the sender and the API rely on, for every implementation.

Each test takes the ``opener`` fixture, parametrised over the implementations (SQLite, and
PostgreSQL in a database of its own on the machine's server). A store passes when it keeps what a
committed transaction wrote, atomically, durably across a reopen, each count once per (edge, epoch,
seq), and answers the reads the API makes in the documented order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from central.alerts.alert import AlertStatus, TransitionKind
from central.alerts.conditions import Condition, Rule, Severity, Texts
from central.alerts.lifecycle import reconcile
from central.alerts.notifications import Notification
from central.progress.assignment import EndCause, StartCause, assign, release
from central.progress.changes import create_order, set_shortage
from central.progress.counts import CountRecord
from central.progress.orders import Audit, Plan, Shortage, WorkOrderIn
from central.progress.reports import Report, ReportIn
from central.progress.status import MachineStatus
from central.progress.timeline import StateInterval
from central.store.base import Retention, Store
from central.store.config import StoreConfig
from central.store.open import open_store
from central.store.order_records import OrderWrites, Recount
from central.store.records import (
    CountRow,
    DeadLetter,
    Delivery,
    EpochRow,
    GapRow,
    GatewayRow,
    RawMessage,
    Transaction,
)
from plantpulse.protocol.models import MachineState
from plantpulse.protocol.sequencer import Gap
from tests.fixtures.ids import EPOCH1
from tests.fixtures.postgres import create_database, drop_database, write_dsn_file

T = 1_800_000_000.0
DAY = 86_400.0
Opener = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens the same store again and again (to test durability across a reopen); closes them all."""
    opened: list[Store] = []
    dsn = await create_database() if request.param == "postgresql" else None
    cfg = (StoreConfig(kind="postgresql", dsn_file=write_dsn_file(tmp_path, dsn)) if dsn is not None
           else StoreConfig(path=tmp_path / "central.sqlite"))

    async def open_(site: str = "s") -> Store:
        store = await open_store(cfg, site)
        opened.append(store)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            await store.close()
        if dsn is not None:
            await drop_database(dsn)


def count(seq: int, at: float, good: int = 1, machine: str = "m1", job: str | None = "J1", **flags: object) -> CountRow:
    return CountRow("gw1", EPOCH1, seq, CountRecord(machine, at - 5, at, good, 0, job, **flags))  # type: ignore[arg-type]


def interval(start: float, end: float, state: MachineState = MachineState.RUNNING,
             machine: str = "m1") -> StateInterval:
    return StateInterval(machine, state, start, end, None, "J1", None, False)


def a_round() -> Transaction:
    tx = Transaction()
    tx.messages.append(RawMessage(T, "plantpulse/v1/s/gw1/events", "gw1", b"{}"))
    tx.counts += [count(1, T + 10, 2), count(2, T + 20, 3, implausible=True), count(3, T + 30, 1, job_from="J0")]
    tx.intervals += [interval(T, T + 15), interval(T + 15, T + 25, MachineState.IDLE), interval(T + 25, T + 40)]
    tx.statuses["m1"] = MachineStatus("m1", state=MachineState.RUNNING, since=T + 40, good_total=6)
    tx.epochs[("gw1", EPOCH1)] = EpochRow("gw1", EPOCH1, [(1, 3), (5, 9)], True)
    tx.gateways["gw1"] = GatewayRow(edge_id="gw1", site="s", online=True, birth=7, machines=["m1"], skew=0.1)
    tx.gaps.append(GapRow(Gap("gw1", EPOCH1, 4, 4, "rejected", count=1), T + 30))
    tx.dead_letters += [DeadLetter(T + i, f"t/{i}", b"x" * i, f"reason {i}") for i in range(3)]
    return tx


async def test_a_committed_round_is_read_back_and_survives_a_reopen(opener: Opener) -> None:
    store = await opener()
    empty = await store.load()
    assert (empty.statuses, empty.epochs, empty.gateways, empty.dead_letters, empty.gaps) == ({}, [], {}, 0, 0)
    await store.commit(a_round())
    for s in (store, await opener()):  # the same answers from a second connection: it is on disk
        loaded = await s.load()
        assert loaded.statuses["m1"].good_total == 6 and loaded.statuses["m1"].state is MachineState.RUNNING
        assert loaded.epochs == [EpochRow("gw1", EPOCH1, [(1, 3), (5, 9)], True)]
        assert loaded.gateways["gw1"].skew == 0.1 and loaded.gateways["gw1"].machines == ["m1"]
        assert (loaded.dead_letters, loaded.gaps) == (3, 1)
        counts = await s.counts("m1", T, T + 60)
        assert [(c.at, c.good, c.implausible, c.job_from) for c in counts] == [
            (T + 10, 2, False, None), (T + 20, 3, True, None), (T + 30, 1, False, "J0")]
        assert await s.counts(None, T + 15, T + 25) == [counts[1]]
        assert [iv.state for iv in await s.intervals("m1", T + 10, T + 20)] == [MachineState.RUNNING,
                                                                               MachineState.IDLE]
        assert [iv.start for iv in await s.intervals_between(T + 10, T + 30)] == [T + 15, T + 25]
        assert [iv.start for iv in await s.intervals_from("m1", T + 20, limit=2)] == [T + 15, T + 25]
        (gap,) = await s.gaps("gw1")
        assert (gap.gap.first, gap.gap.reason, gap.recorded_at) == (4, "rejected", T + 30)
        assert await s.gaps("other") == []
        letters = await s.dead_letters(limit=2)
        assert [d.reason for d in letters] == ["reason 2", "reason 1"]  # newest first
        assert [d.payload for d in await s.dead_letters(limit=2, offset=2)] == [b""]
        assert s.problem() is None


async def test_each_count_is_kept_once_per_edge_epoch_and_seq(opener: Opener) -> None:
    store = await opener()
    tx = Transaction(counts=[count(1, T + 10, 5)])
    await store.commit(tx)
    await store.commit(Transaction(counts=[count(1, T + 10, 5), count(2, T + 11, 1)]))  # a replay of seq 1
    assert [c.good for c in await store.counts("m1", T, T + 60)] == [5, 1]


async def test_a_failed_commit_leaves_nothing_behind(opener: Opener) -> None:
    store = await opener()
    tx = a_round()
    tx.counts.append(count(9, T + 50, good=2**63))  # no store can keep that integer: the commit fails
    with pytest.raises((OverflowError, ValueError)):
        await store.commit(tx)
    loaded = await store.load()
    assert (loaded.statuses, loaded.epochs, loaded.dead_letters) == ({}, [], 0)
    assert await store.counts(None, 0, T + 100) == []
    await store.commit(a_round())  # the store is still usable
    assert len(await store.counts(None, 0, T + 100)) == 3


async def test_a_spliced_interval_is_replaced(opener: Opener) -> None:
    store = await opener()
    await store.commit(Transaction(intervals=[interval(T, T + 30)]))
    await store.commit(Transaction(removed_intervals=[interval(T, T + 30)],
                                   intervals=[interval(T, T + 10), interval(T + 10, T + 30, MachineState.FAULT)]))
    assert [(iv.start, iv.state) for iv in await store.intervals("m1", T, T + 60)] == [
        (T, MachineState.RUNNING), (T + 10, MachineState.FAULT)]


async def test_alerts_notifications_and_deliveries(opener: Opener) -> None:
    store = await opener()
    fault = Condition(Rule.FAULT, "m1", Severity.CRITICAL, Texts("故障 7", "fault 7"), since=T, episode="7")
    result = reconcile([], [fault], T)
    (change,) = result.changes
    tx = Transaction(alerts={change.alert.id: change.alert}, notifications=list(result.notifications))
    tx.deliveries += [Delivery(n.id, target, "s", next_at=T) for n in result.notifications
                      for target in ("mqtt", "wecom")]
    await store.commit(tx)
    (active,) = await store.active_alerts()
    assert active.id == change.alert.id and active.message.zh == "故障 7"
    assert [a.id for a in await store.alerts(status="open", rule="fault")] == [active.id]
    assert await store.alerts(subject="other") == []
    assert (await store.alert(active.id)) == active and await store.alert("nope") is None
    due = await store.due_deliveries(T + 1, "wecom")
    assert [(d.target, n.alert_id) for d, n in due] == [("wecom", active.id)]
    assert await store.due_deliveries(T - 1, "wecom") == []  # not yet due
    assert await store.next_delivery_at("mqtt") == T
    delivery = due[0][0]
    await store.update_deliveries([Delivery(delivery.notification_id, "wecom", "s", "sent", 1, T, T + 1, None)])
    assert await store.due_deliveries(T + 5, "wecom") == []
    assert await store.delivery_counts() == {"pending": 1, "sent": 1}
    # the same notification row committed again (a replayed round) is kept once
    await store.commit(Transaction(notifications=list(result.notifications)))
    assert len(await store.due_deliveries(T + 5, "mqtt")) == 1


async def test_due_deliveries_come_most_urgent_first_then_oldest(opener: Opener) -> None:
    """A rate-limited sender asks for as many as it may send: it gets the most urgent (critical failure
    alerts, then by severity, order alerts, shift summaries), the oldest first within each; the rest stay
    as they were, and the same order holds after a reopen."""
    store = await opener()

    def note(i: int, rule: Rule, severity: Severity, at: float) -> Notification:
        return Notification(id=f"a{i}.0-opened", alert_id=f"a{i}", kind=TransitionKind.OPENED, at=at, rule=rule,
                            subject="m1", severity=severity, status=AlertStatus.OPEN, level=0,
                            message=Texts("x", "x"), details={}, since=None, opened_at=at)

    notes = [note(0, Rule.SHIFT_SUMMARY, Severity.INFO, T), note(1, Rule.ORDER_AT_RISK, Severity.CRITICAL, T + 1),
             note(2, Rule.LONG_STOP, Severity.WARNING, T + 2), note(3, Rule.FAULT, Severity.CRITICAL, T + 5),
             note(4, Rule.FAULT, Severity.CRITICAL, T + 3), note(5, Rule.DATA_GAP, Severity.INFO, T + 4),
             note(6, Rule.LONG_STOP, Severity.WARNING, T + 1)]
    await store.commit(Transaction(notifications=notes, deliveries=[Delivery(n.id, "robot", next_at=T) for n in notes]))
    first = await store.due_deliveries(T + 10, "robot", limit=3)
    assert [n.alert_id for _, n in first] == ["a4", "a3", "a6"]
    await store.update_deliveries([replace(d, status="sent", attempts=1, sent_at=T + 10) for d, _ in first])
    store = await opener()
    rest = await store.due_deliveries(T + 11, "robot")  # not claimed by the first call (PostgreSQL): untouched
    assert [n.alert_id for _, n in rest] == ["a2", "a5", "a1", "a0"]
    assert all(d.attempts == 0 and d.status == "pending" for d, _ in rest)
    await store.update_deliveries([replace(rest[0][0], status="sent", attempts=1, sent_at=T + 70)])
    assert await store.sent_since("robot", T + 10) == [T + 10] * 3 + [T + 70]
    assert await store.sent_since("robot", T + 11) == [T + 70]
    assert await store.sent_since("other", T) == []


async def test_retention_deletes_only_what_is_older(opener: Opener) -> None:
    store = await opener()
    await store.commit(a_round())
    deleted = await store.purge(T + 20 + 14 * DAY, Retention(events_days=14, dead_letters_days=1, history_days=400))
    assert deleted["messages"] == 1 and deleted["dead_letters"] == 3 and deleted["counts"] == 0
    assert (await store.load()).dead_letters == 0
    assert len(await store.counts(None, 0, T + 100)) == 3


# --------------------------------------------------------------------------- work orders (issue 13)
def a_plan() -> tuple[Plan, Audit]:
    new = WorkOrderIn.model_validate({
        "id": "SO-1", "product": "bracket", "customer": "ACME", "quantity": 10, "due": T + DAY,
        "operations": [{"seq": 10, "name": "turn", "machine": "m1", "quantity": 10, "ideal_cycle_time": 30,
                        "job": "J1"},
                       {"seq": 20, "name": "mill", "work_centre": "mills", "quantity": 10, "ideal_cycle_time": 60}]})
    change = create_order(Plan(), new, by="planner", now=T)
    return change.plan, change.audit


async def test_an_order_change_is_read_back_whole(opener: Opener) -> None:
    store = await opener()
    assert (await store.load_orders()).plan == Plan()
    plan, audit = a_plan()
    w = OrderWrites()
    w.plan(Plan(), plan)
    w.audit.append(audit)
    await store.commit(Transaction(orders=w))
    shorter = set_shortage(plan, ("SO-1", 20), Shortage(T + 3600, "castings"), by="planner", now=T + 1)
    w2 = OrderWrites()
    w2.plan(plan, shorter.plan)
    w2.audit.append(shorter.audit)
    await store.commit(Transaction(orders=w2))
    for s in (store, await opener()):
        loaded = await s.load_orders()
        assert loaded.plan == shorter.plan
        assert loaded.plan.dispatch == {"m1": (("SO-1", 10),), "wc:mills": (("SO-1", 20),)}
        trail = await s.audit_trail(order_id="SO-1")
        assert [(a.action, a.by, a.seq) for a in trail] == [("material", "planner", 20), ("create", "planner", None)]
        assert trail[0].after == {"short": True, "expected": T + 3600, "note": "castings"}
        assert await s.audit_trail(order_id="other") == []
        assert [a.action for a in await s.audit_trail(since=T + 0.5)] == ["material"]


async def test_counts_carry_their_operation_and_timelines_splice(opener: Opener) -> None:
    store = await opener()
    plan, _ = a_plan()
    key = ("SO-1", 10)
    step = assign({}, "m1", key, T + 10, StartCause.JOB)
    w = OrderWrites()
    w.plan(Plan(), plan)
    w.segments("m1", T + 10, step.book["m1"])
    tx = Transaction(orders=w, counts=[replace(count(1, T + 20, 3), op=key), replace(count(2, T + 30, 2), op=key),
                                       count(3, T + 5, 4)])
    await store.commit(tx)
    loaded = await store.load_orders()
    assert loaded.book == {"m1": step.book["m1"]}
    assert (loaded.tallies[key].good, loaded.tallies[key].events) == (5, 2)
    assert loaded.unassigned["m1"].good == 4  # a count before the operation started: kept, unassigned
    # a pause at T + 25 splices the timeline; the count at T + 30 no longer belongs to the operation
    paused = release(step.book, "m1", T + 25, EndCause.PAUSE)
    w = OrderWrites()
    w.segments("m1", T + 25, paused.book["m1"])
    w.recounted.append(Recount("gw1", EPOCH1, 2, None))
    await store.commit(Transaction(orders=w))
    loaded = await store.load_orders()
    assert loaded.book["m1"] == paused.book["m1"] and loaded.book["m1"][0].end == T + 25
    assert loaded.tallies[key].good == 3
    assert [c.seq for c in await store.attributed_counts("m1", T + 20)] == [1, 2]
    assert [(c.seq, c.op) for c in await store.attributed_counts("m1", T)] == [(3, None), (1, key), (2, None)]
    assert [c.record.good for c in await store.unassigned_counts("m1", T, T + 60)] == [4, 2]
    assert [c.good for c in await store.op_counts(key)] == [3]


async def test_reports_are_kept_once_per_client_id(opener: Opener) -> None:
    store = await opener()
    plan, _ = a_plan()
    scan = ReportIn(client_id="c-1", operator="op7", order_id="SO-1", seq=10, good=4)
    report = Report(scan, T + 5, correction=True)
    w = OrderWrites(reports=[report])
    w.plan(Plan(), plan)
    await store.commit(Transaction(orders=w))
    await store.commit(Transaction(orders=OrderWrites(reports=[report])))  # a retried request
    assert (await store.load_orders()).reports == {"c-1": report}
    assert await store.reports_between(T, T + 10) == [report]
    assert await store.reports_between(T, T + 10, order_id="SO-2") == []


async def test_a_failed_commit_leaves_no_order_behind(opener: Opener) -> None:
    store = await opener()
    plan, audit = a_plan()
    w = OrderWrites(audit=[audit])
    w.plan(Plan(), plan)
    tx = Transaction(orders=w, counts=[count(9, T + 50, good=2**63)])
    with pytest.raises((OverflowError, ValueError)):
        await store.commit(tx)
    loaded = await store.load_orders()
    assert loaded.plan == Plan() and await store.audit_trail() == []


async def test_a_cancellation_anywhere_in_a_write_leaves_the_store_usable(opener: Opener) -> None:
    """A shutdown cancels what is awaiting the store: at any point of a commit or of a deliveries update
    the caller gets its cancellation (not a database error: SQLite's ROLLBACK after a COMMIT that went
    through said 'no transaction is active', and the sender's task died of it), and the next write works."""
    store = await opener()
    note = Notification(id="a1.0-opened", alert_id="a1", kind=TransitionKind.OPENED, at=T, rule=Rule.FAULT,
                        subject="m1", severity=Severity.CRITICAL, status=AlertStatus.OPEN, level=0,
                        message=Texts("x", "x"), details={}, since=None, opened_at=T)
    await store.commit(Transaction(notifications=[note], deliveries=[Delivery(note.id, "robot", next_at=T)]))
    for steps in range(40):
        tx = Transaction(counts=[count(100 + 2 * steps, T + steps), count(101 + 2 * steps, T + steps)])
        for write in (store.commit(tx),
                      store.update_deliveries([Delivery(note.id, "robot", None, "pending", steps, T, None, None)])):
            task = asyncio.ensure_future(write)
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            assert outcome is None or isinstance(outcome, asyncio.CancelledError), repr(outcome)
    await store.commit(Transaction(counts=[count(1000, T + 100, 7)]))
    assert sum(c.good for c in await store.counts("m1", T + 99, T + 101)) == 7
    store = await opener()  # nothing left half done
    assert sum(c.good for c in await store.counts("m1", T + 99, T + 101)) == 7
