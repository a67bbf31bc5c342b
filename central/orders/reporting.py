"""Scan to report, stop reasons, imports, count reassignment and repair ETAs: the shop floor's and planners'
writes beside the order book's own changes (issue 13).

Each write is computed by the pure domain on the book's state under the book's ``lock`` (shared
with ingest rounds), committed in one transaction, and only then becomes the state; the book's
listeners (the projector, the stream) hear of it like of any change.

* **Reports** (``reports.accept``): idempotent by client id (a duplicate answers the first report;
  other content with a known id is a 409). A count report joins the operation's parts (a signed
  correction on a machine-counted operation, the count on a report-counted one, which completes
  when its good parts reach its planned quantity). A start, pause or finish report drives the
  assignment timeline through the book (cause ``scan``) and is recorded in that change's commit, so a
  refused start (operation done ...) records nothing and a crash never keeps the one without the other.
* **Stop reasons** (``stops.accept_stop``): same idempotency, stored for downtime and OEE.
* **Imports** (``imports.upsert``): every order of the file in one commit, with one audit row each.
* **Reassignment** of unassigned counts to an operation (``assignment.reassign``), audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from central.imports.rows import ImportedOrder
from central.imports.upsert import ImportPlan, plan_import
from central.orders.book import BookChanged, OrderBook, _Undo
from central.progress.assignment import Completed, StartCause, Tally, apply_facts, complete, reassign
from central.progress.orders import ConflictError, CountSource, OpKey, OrderError
from central.progress.progress import effective_quantities
from central.progress.reports import Outcome, Report, ReportIn, ReportKind, accept
from central.progress.stops import StopReason, StopReasonIn, accept_stop
from central.store.extra_records import ExtraWrites, RepairEta
from central.store.order_records import OrderWrites
from central.store.records import Transaction


@dataclass(frozen=True, slots=True)
class ReportResult:
    report: Report
    outcome: Outcome


def actor(key_name: str, operator: str) -> str:
    """Who, for the audit trail: the operator and the key (the device) they used."""
    return f"{operator} via {key_name}"[:100]


class FloorWrites:
    def __init__(self, book: OrderBook) -> None:
        self.book = book

    # ----------------------------------------------------------------- reports
    async def report(self, body: ReportIn, *, key_name: str) -> ReportResult:
        ob = self.book
        if body.kind is ReportKind.COUNT:
            return await self._count(body)
        async with ob.lock:
            checked = accept(ob.reports, body, ob.plan, at=ob.clock())
        if checked.outcome is Outcome.DUPLICATE:
            return ReportResult(checked.report, checked.outcome)
        by = actor(key_name, body.operator)
        report = Report(body, ob.clock(), checked.report.correction)
        if body.kind is ReportKind.START:  # the action and its report commit together: a crash keeps both or none
            await ob.start(body.key, by=by, machine=body.machine, cause=StartCause.SCAN, report=report)
        elif body.kind is ReportKind.PAUSE:
            await ob.pause(body.key, by=by, report=report)
        else:
            await ob.finish(body.key, by=by, report=report)
        known = ob.reports[body.client_id]
        if known is not report:  # the same scan twice at once: the other one did it and recorded it
            return ReportResult(known, Outcome.DUPLICATE)
        return ReportResult(report, Outcome.NEW)

    async def _count(self, body: ReportIn) -> ReportResult:
        ob = self.book
        async with ob.lock:
            now = ob.clock()
            acc = accept(ob.reports, body, ob.plan, at=now)
            if acc.outcome is Outcome.DUPLICATE:
                return ReportResult(acc.report, acc.outcome)
            key = body.key
            old = ob.reported.get(key)
            ob.reported[key] = Tally((old.good if old else 0) + body.good, (old.scrap if old else 0) + body.scrap,
                                     (old.events if old else 0) + 1)
            try:
                w = OrderWrites(reports=[acc.report])
                plan, book, changed = ob.plan, dict(ob.book), {}
                op = plan.operations[key]
                if op.count_source is CountSource.REPORTS and op.status.open:
                    good = ob.parts(key).good
                    planned = effective_quantities(plan, plan.order(key[0]), ob.tallies).get(key, op.quantity)
                    if good >= planned:
                        step = complete(book, plan, key, now, good=good, planned=planned, auto_next=ob.auto_next,
                                        work_centres={m: ob.catalog.machine(m).work_centre for m in book})
                        book, changed = dict(step.book), dict(step.changed_from)
                        plan = apply_facts(plan, book, step.facts)
                        for fact in step.facts:
                            if isinstance(fact, Completed):
                                ob.completed[fact.key] = fact
                w.plan(ob.plan, plan)
                for machine_id, since in changed.items():
                    w.segments(machine_id, since, book.get(machine_id, ()))
                undo = _Undo()
                w.recounted.extend(await ob.recount(book, changed, undo, plan))
                try:
                    await ob.store.commit(Transaction(orders=w))
                except BaseException:
                    ob.restore(undo)
                    raise
            except BaseException:
                if old is None:
                    ob.reported.pop(key, None)
                else:
                    ob.reported[key] = old
                raise
            ob.reports, ob.plan, ob.book = dict(acc.reports), plan, book
        self._tell(BookChanged(frozenset({key[0]}), frozenset(changed), by_people=True))
        return ReportResult(acc.report, Outcome.NEW)

    def _tell(self, changed: BookChanged) -> None:
        for listener in self.book.listeners:
            listener(changed)

    # ----------------------------------------------------------------- stop reasons
    async def stop(self, body: StopReasonIn) -> tuple[StopReason, bool]:
        ob = self.book
        async with ob.lock:
            known = await ob.store.stop_reason(body.client_id)
            reason, new = accept_stop(known, body, at=ob.clock())
            if new:
                await ob.store.commit(Transaction(extras=ExtraWrites(stops=[reason])))
        if new:
            self._tell(BookChanged(machines=frozenset({body.machine}), by_people=True))
        return reason, new

    # ----------------------------------------------------------------- imports
    async def import_orders(self, orders: Sequence[ImportedOrder], *, by: str, dry_run: bool) -> ImportPlan:
        """Upsert ``orders`` in one commit (``dry_run``: compute the answer, change nothing)."""
        ob = self.book
        if dry_run:
            return plan_import(ob.plan, orders, by=by, now=ob.clock())
        async with ob.lock:
            result = plan_import(ob.plan, orders, by=by, now=ob.clock())
            if result.audits:
                w = OrderWrites(audit=list(result.audits))
                w.plan(ob.plan, result.plan)
                await ob.store.commit(Transaction(orders=w))
                ob.plan = result.plan
                touched = frozenset(a.order_id for a in result.audits)
                queues = frozenset(q for q in w.dispatch if not q.startswith("wc:"))
        if result.audits:
            self._tell(BookChanged(touched, queues, by_people=True))
        return result

    # ----------------------------------------------------------------- unassigned counts
    async def reassign(self, machine_id: str, key: OpKey, start: float, end: float, *, by: str) -> int:
        """Give the counts of ``machine_id`` in ``[start, end)`` no operation ran for to ``key``; the number
        of count events moved. Audited (``reassign``)."""
        ob = self.book
        if end <= start:
            raise OrderError(f"the span is empty: end ({end}) must be after start ({start})")
        async with ob.lock:
            ob.plan.operation(key)
            for seg in ob.book.get(machine_id, ()):
                if seg.start < end and (seg.end is None or seg.end > start):
                    raise ConflictError(f"operation {seg.key[1]} of {seg.key[0]!r} ran on {machine_id} in that span: "
                                        "only counts no operation ran for can be reassigned (give a span without one)")
            now = ob.clock()
            step, audit = reassign(ob.book, machine_id, key, start, end, by=by, now=now)
            book = dict(step.book)
            undo = _Undo()
            recounts = await ob.recount(book, step.changed_from, undo, ob.plan)
            w = OrderWrites(audit=[audit])
            for m, since in step.changed_from.items():
                w.segments(m, since, book.get(m, ()))
            w.recounted.extend(recounts)
            try:
                await ob.store.commit(Transaction(orders=w))
            except BaseException:
                ob.restore(undo)
                raise
            ob.book = book
        self._tell(BookChanged(frozenset({key[0]}), frozenset(step.changed_from), by_people=True))
        return len(recounts)

    # ----------------------------------------------------------------- repair ETAs
    async def repair_eta(self, machine_id: str, until: float | None, *, by: str, note: str | None,
                         etas: dict[str, RepairEta]) -> RepairEta:
        """Record maintenance's ETA for ``machine_id`` (None withdraws it) and put it in ``etas`` (the projector's)."""
        ob = self.book
        eta = RepairEta(machine_id, until, by, ob.clock(), note)
        await ob.store.commit(Transaction(extras=ExtraWrites(repairs=[eta])))
        if until is None:
            etas.pop(machine_id, None)
        else:
            etas[machine_id] = eta
        self._tell(BookChanged(machines=frozenset({machine_id}), by_people=True))
        return eta
