"""The order book: central's work orders in memory, changed by people and by machine counts (issue 13).

State (the plan, each machine's assignment timeline, the parts per operation, the reports, the
unassigned counts) is loaded from the store at start and after a failed ingest round. Every
change is computed by the pure domain (``central/progress/changes.py``, ``assignment.py``) on the
current state, written with its audit row (who = the API key's name) in one transaction, and only
then becomes the state; a change the domain refuses raises ``OrderError`` and changes nothing.

One ``lock`` serialises the writers: people's changes and ingest rounds (the ingest holds it from
the attribution of a round to its commit, ``central/orders/attribution.py``), so a change never
interleaves with a round that a failed commit would roll back. Listeners hear of each committed
change (the projector re-projects at once; the stream tells the pages).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from central.progress import changes
from central.progress.assignment import (
    Book,
    Completed,
    EndCause,
    Fact,
    StartCause,
    Step,
    Tally,
    Timeline,
    UnmatchedJob,
    apply_facts,
    assign,
    attribute_one,
    machines_running,
    release,
)
from central.progress.assignment import finish as finish_op
from central.progress.machines import Catalog
from central.progress.orders import (
    Audit,
    Change,
    ConflictError,
    OpKey,
    OpStatus,
    OrderChangeIn,
    OrderError,
    Plan,
    ShortageIn,
    WorkOrder,
    WorkOrderIn,
)
from central.progress.reports import Report, combined
from central.progress.reports import tallies as report_tallies
from central.store.base import Store
from central.store.order_records import OrderWrites, Recount
from central.store.records import Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BookChanged:
    """What a committed change touched: the projector re-projects, the stream tells the pages."""

    orders: frozenset[str] = frozenset()
    machines: frozenset[str] = frozenset()
    by_people: bool = False  # a person's change: re-project at once (ingest changes wait for the pace)


@dataclass
class _Undo:
    """What an ingest round changed in memory, to put back if its attribution fails half way."""

    tallies: dict[OpKey, Tally | None] = field(default_factory=dict)
    unassigned: dict[str, Tally | None] = field(default_factory=dict)


class OrderBook:
    def __init__(self, store: Store, catalog: Catalog, *, clock: Callable[[], float],
                 auto_next: Iterable[str] = ()) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.auto_next = {m: True for m in auto_next}
        self.lock = asyncio.Lock()
        self.plan = Plan()
        self.book: dict[str, Timeline] = {}
        self.tallies: dict[OpKey, Tally] = {}  # machine counts per operation
        self.reports: dict[str, Report] = {}
        self.reported: dict[OpKey, Tally] = {}  # count reports per operation
        self.unassigned: dict[str, Tally] = {}  # machine -> counts no operation ran for (since the first order)
        self.unmatched: dict[str, UnmatchedJob] = {}  # machine -> the job it reports that no operation carries
        self.completed: dict[OpKey, Completed] = {}  # completions at planned quantity seen since start
        self.listeners: list[Callable[[BookChanged], None]] = []
        self.errors = 0  # attribution failures (the round's counts then stay unassigned, never lost)

    # ----------------------------------------------------------------- state
    async def load(self) -> None:
        loaded = await self.store.load_orders()
        self.plan, self.book, self.tallies = loaded.plan, dict(loaded.book), dict(loaded.tallies)
        self.reports = dict(loaded.reports)
        self.reported = report_tallies(self.reports.values())
        self.unassigned = dict(loaded.unassigned)

    async def reload(self) -> None:
        """Back to the last commit (a round failed: what it did in memory never happened)."""
        await self.load()

    def work_centres(self) -> dict[str, str | None]:
        return {m: self.catalog.machine(m).work_centre for m in self.book}

    def parts(self, key: OpKey) -> Tally:
        """Good and scrap of one operation: machine counts and report corrections, or reports alone."""
        return combined({key: self.tallies[key]} if key in self.tallies else {},
                        {key: self.reported[key]} if key in self.reported else {}, self.plan).get(key, Tally())

    def all_parts(self) -> dict[OpKey, Tally]:
        return combined(self.tallies, self.reported, self.plan)

    def running(self) -> dict[OpKey, list[str]]:
        """Operation -> machines running it now (their timeline's open segment)."""
        out: dict[OpKey, list[str]] = {}
        for machine_id, timeline in self.book.items():
            if timeline and timeline[-1].end is None:
                out.setdefault(timeline[-1].key, []).append(machine_id)
        return out

    def running_on(self, machine_id: str) -> OpKey | None:
        timeline = self.book.get(machine_id, ())
        return timeline[-1].key if timeline and timeline[-1].end is None else None

    def _tell(self, changed: BookChanged) -> None:
        for listener in self.listeners:
            try:
                listener(changed)
            except Exception:
                log.exception("an order book listener failed (the change is committed)")

    # ----------------------------------------------------------------- people's changes
    async def create(self, new: WorkOrderIn, *, by: str, rush: bool = False,
                     positions: Mapping[str, int] | None = None) -> WorkOrder:
        """A new order (``rush``: insert just after what each queue runs, or at ``positions[queue]``)."""
        for queue, position in (positions or {}).items():
            if not any(op.machine == queue or f"wc:{op.work_centre}" == queue for op in new.operations):
                raise OrderError(f"insert position for {queue!r}, which none of the order's operations uses")
            if position < 0:
                raise OrderError(f"position {position} for {queue!r}: positions count from 0 (the top)")
        await self._change(lambda: changes.create_order(self.plan, new, by=by, now=self.clock(), rush=rush,
                                                        positions=positions))
        return self.plan.order(new.id)

    async def change(self, order_id: str, patch: OrderChangeIn, *, by: str) -> WorkOrder:
        await self._change(lambda: changes.change_order(
            self.plan, order_id, by=by, now=self.clock(), quantity=patch.quantity, due=patch.due,
            priority=patch.priority, notes=patch.notes))
        return self.plan.order(order_id)

    async def cancel(self, order_id: str, *, by: str, reason: str | None = None) -> WorkOrder:
        async with self.lock:
            now = self.clock()
            change = changes.cancel_order(self.plan, order_id, by=by, now=now, reason=reason)
            step = Step(self.book)
            for key in self.plan.order(order_id).op_keys():  # what still runs stops now
                fin = finish_op(step.book, key, now)
                step = Step(fin.book, (), {**step.changed_from, **fin.changed_from})
            await self._commit(self.plan, change.plan, [change.audit], step)
        return self.plan.order(order_id)

    async def move(self, key: OpKey, *, by: str, machine: str | None = None, work_centre: str | None = None,
                   position: int | None = None) -> None:
        await self._change(lambda: changes.move_operation(self.plan, key, by=by, now=self.clock(), machine=machine,
                                                          work_centre=work_centre, position=position))

    async def material(self, key: OpKey, status: ShortageIn, *, by: str) -> None:
        await self._change(lambda: changes.set_shortage(self.plan, key, status.shortage(), by=by, now=self.clock()))

    async def start(self, key: OpKey, *, by: str, machine: str | None = None,
                    cause: StartCause = StartCause.API, report: Report | None = None) -> str | None:
        """Start (or resume) an operation on a machine now; returns the machine.

        ``report``: the scan that asked for it, recorded in the same commit (None returned when the same
        scan was recorded meanwhile: nothing is done twice)."""
        async with self.lock:
            if report is not None and report.content.client_id in self.reports:
                return None
            op = self.plan.operation(key)
            if not op.status.open:
                raise ConflictError(f"operation {key[1]} of {key[0]!r} is {op.status}: it cannot start")
            where = machine or op.machine
            if where is None:
                raise OrderError(f"operation {key[1]} of {key[0]!r} waits in work centre {op.work_centre!r}: "
                                 "say on which machine it starts ('machine')")
            if op.machine is not None and where != op.machine:
                raise OrderError(f"operation {key[1]} of {key[0]!r} is planned on {op.machine!r}: move it to "
                                 f"{where!r} first (POST .../move)")
            if op.work_centre is not None and self.catalog.machine(where).work_centre != op.work_centre:
                raise OrderError(f"machine {where!r} is not in work centre {op.work_centre!r} (see plant.machines)")
            now = self.clock()
            step = assign(self.book, where, key, now, cause)
            plan = apply_facts(self.plan, step.book, step.facts)
            audit = Audit(now, by, "start", key[0], key[1], before={"status": op.status.value},
                          after={"status": "running", "machine": where})
            await self._commit(self.plan, plan, [audit], step, report)
            return where

    async def pause(self, key: OpKey, *, by: str, report: Report | None = None) -> None:
        await self._stop(key, by=by, cause=EndCause.PAUSE, report=report)

    async def finish(self, key: OpKey, *, by: str, report: Report | None = None) -> None:
        await self._stop(key, by=by, cause=EndCause.FINISH, report=report)

    async def _stop(self, key: OpKey, *, by: str, cause: EndCause, report: Report | None) -> None:
        async with self.lock:
            if report is not None and report.content.client_id in self.reports:
                return
            op = self.plan.operation(key)
            if not op.status.open:
                raise ConflictError(f"operation {key[1]} of {key[0]!r} is {op.status} already")
            now = self.clock()
            machines = machines_running(self.book, key)
            if cause is EndCause.PAUSE and not machines:
                raise ConflictError(f"operation {key[1]} of {key[0]!r} is not running: nothing to pause")
            step = Step(self.book)
            facts: list[Fact] = []
            for machine_id in machines:
                one = release(step.book, machine_id, now, cause)
                facts.extend(one.facts)
                step = Step(one.book, (), {**step.changed_from, **one.changed_from})
            plan = apply_facts(self.plan, step.book, facts)
            if cause is EndCause.FINISH:
                plan = changes.set_status(plan, key, OpStatus.DONE)
            new_status = plan.operations[key].status.value
            audit = Audit(now, by, cause.value, key[0], key[1], before={"status": op.status.value},
                          after={"status": new_status, "machines": machines})
            await self._commit(self.plan, plan, [audit], step, report)

    async def _change(self, make: Callable[[], Change]) -> None:
        async with self.lock:
            change = make()  # computed on the state under the lock; raises OrderError, changing nothing
            await self._commit(self.plan, change.plan, [change.audit], Step(self.book))

    async def _commit(self, before: Plan, plan: Plan, audit: list[Audit], step: Step,
                      report: Report | None = None) -> None:
        """Write a person's change (with its re-attributed counts and the scan that asked for it, if any),
        then make it the state. Holds ``lock``."""
        w = OrderWrites(audit=list(audit), reports=[report] if report is not None else [])
        w.plan(before, plan)
        book = dict(step.book)
        for machine_id, since in step.changed_from.items():
            w.segments(machine_id, since, book.get(machine_id, ()))
        undo = _Undo()
        recounts = await self.recount(book, step.changed_from, undo, plan)
        w.recounted.extend(recounts)
        try:
            await self.store.commit(Transaction(orders=w))
        except BaseException:
            self.restore(undo)
            raise
        self.plan, self.book = plan, book
        if report is not None:
            self.reports = {**self.reports, report.content.client_id: report}
        touched = {a.order_id for a in audit} | {k[0] for k in w.operations}
        self._tell(BookChanged(frozenset(touched), frozenset(step.changed_from) | self._queues_machines(w),
                               by_people=True))

    @staticmethod
    def _queues_machines(w: OrderWrites) -> frozenset[str]:
        return frozenset(q for q in w.dispatch if not q.startswith("wc:"))

    # ----------------------------------------------------------------- counts under a changed timeline
    async def recount(self, book: Book, changed_from: Mapping[str, float], undo: _Undo,
                      plan: Plan) -> list[Recount]:
        """Stored counts whose operation the changed timelines move: their new operation, tallies moved.

        ``plan``: the plan these timelines go with (its jobs decide the counts at a job change's instant)."""
        out: list[Recount] = []
        for machine_id, since in changed_from.items():
            for c in await self.store.attributed_counts(machine_id, since):
                new = attribute_one(book, c.record, plan)
                if new == c.op:
                    continue
                self.take(c.op, machine_id, c.record.good, c.record.scrap, -1, undo)
                self.take(new, machine_id, c.record.good, c.record.scrap, 1, undo)
                out.append(Recount(c.edge_id, c.epoch, c.seq, new))
        return out

    def take(self, key: OpKey | None, machine_id: str, good: int, scrap: int, sign: int, undo: _Undo, *,
             events: int = 1) -> None:
        """Add (sign 1) or remove (sign -1) parts on an operation's tally, or the machine's unassigned."""
        if key is None:
            if machine_id not in undo.unassigned:
                old = self.unassigned.get(machine_id)
                undo.unassigned[machine_id] = Tally(old.good, old.scrap, old.events) if old is not None else None
            tally = self.unassigned.setdefault(machine_id, Tally())
        else:
            if key not in undo.tallies:
                old = self.tallies.get(key)
                undo.tallies[key] = Tally(old.good, old.scrap, old.events, old.spanning) if old is not None else None
            tally = self.tallies.setdefault(key, Tally())
        tally.good += sign * good
        tally.scrap += sign * scrap
        tally.events += sign * events

    def restore(self, undo: _Undo) -> None:
        for key, tally in undo.tallies.items():
            if tally is None:
                self.tallies.pop(key, None)
            else:
                self.tallies[key] = tally
        for machine_id, old in undo.unassigned.items():
            if old is None:
                self.unassigned.pop(machine_id, None)
            else:
                self.unassigned[machine_id] = old
