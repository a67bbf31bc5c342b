"""Counts of an ingest round to the operation running at each event's time, inside the round (issue 13).

Runs in every ingest round *before its commit*, with the order book's lock held until the commit
(``IngestService``), so the counts, the operation each belongs to, the operations their job
numbers started and the ones they completed are one transaction: a crash never counts a part
without its operation, or an operation's part twice.

The round's job observations (a state event's job, a count's job) and counts are walked in event
time order through the pure rules (``assignment.py``): a job number starts the first queued
operation with that job on the machine (or its work centre); each count goes to the operation
running at its ``at`` (a backlog's counts land on what ran then); an operation completes when its
good parts reach its effective planned quantity (later parts while it still runs are its
over-production). A history change that reaches back before this round re-attributes the stored
counts after it. Counts with no operation are unassigned: stored as such, summed per machine.

If attribution fails (a bug), the round still commits with its counts unassigned (visible,
reassignable) and the book as it was: ingest never stops for orders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from central.orders.book import BookChanged, OrderBook, _Undo
from central.progress.assignment import (
    Completed,
    Started,
    Timeline,
    UnmatchedJob,
    apply_facts,
    attribute_one,
    complete,
    observe_job,
)
from central.progress.orders import CountSource, OpKey, OpStatus, Plan
from central.progress.progress import effective_quantities
from plantpulse.protocol.models import StateEvent

if TYPE_CHECKING:
    from central.ingest.applier import Round

log = logging.getLogger(__name__)
_JOB, _COUNT = 0, 1  # at equal times a job change comes before the count it explains


@dataclass(slots=True)
class _MachineCounts:
    """One machine's counts in a round, summed in one pass (what the fast path needs)."""

    first: float  # the earliest ``at``
    indices: list[int] = field(default_factory=list)
    good: int = 0
    scrap: int = 0
    spanning: int = 0


class Attribution:
    """The ingest's order hook: ``on_round`` before the commit, ``committed`` after it."""

    def __init__(self, book: OrderBook) -> None:
        self.orders = book
        self.lock = book.lock
        self._pending: BookChanged | None = None

    async def reload(self) -> None:
        self._pending = None
        await self.orders.reload()

    def committed(self, rnd: Round) -> None:
        """The round is on disk: tell the book's listeners what it changed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.orders._tell(pending)

    async def on_round(self, rnd: Round, now: float) -> None:
        if not rnd.tx.counts and not rnd.applied:
            return
        ob = self.orders
        if not ob.plan.operations:
            return  # no order yet: counts stay unassigned (the "since the first order" sums start later)
        undo = _Undo()
        try:
            await self._attribute(rnd, undo)
        except Exception:
            ob.restore(undo)
            ob.errors += 1
            log.exception("attributing a round's counts to operations failed: they stay unassigned")

    async def _attribute(self, rnd: Round, undo: _Undo) -> None:
        ob = self.orders
        ops: dict[int, OpKey] = {}
        touched: set[str] = set()
        items: list[tuple[float, int, int, str, str | None]] = []  # (at, kind, index, machine, job)
        jobs: dict[str, set[str]] = {}
        for ev in rnd.applied:
            event = ev.applied.event
            if isinstance(event, StateEvent) and event.job is not None:
                items.append((ev.at, _JOB, 0, event.machine_id, event.job))
                jobs.setdefault(event.machine_id, set()).add(event.job)
        per_machine: dict[str, _MachineCounts] = {}
        for i, row in enumerate(rnd.tx.counts):  # one pass: the fast path needs nothing else of each count
            rec = row.record
            mc = per_machine.get(rec.machine_id)
            if mc is None:
                mc = per_machine[rec.machine_id] = _MachineCounts(rec.at)
            mc.indices.append(i)
            mc.first = min(mc.first, rec.at)
            mc.good += rec.good
            mc.scrap += rec.scrap
            if rec.job_from is not None:
                mc.spanning += 1
            if rec.job is not None:
                jobs.setdefault(rec.machine_id, set()).add(rec.job)
        completions: list[tuple[OpKey, float]] = []
        bulk: list[tuple[list[int], OpKey]] = []
        for machine_id, mc in per_machine.items():
            if not self._bulk(rnd, machine_id, mc, jobs.get(machine_id, set()), bulk, touched, undo, completions):
                for i in mc.indices:
                    rec = rnd.tx.counts[i].record
                    if rec.job is not None:
                        items.append((rec.at, _JOB, 0, rec.machine_id, rec.job))
                    items.append((rec.at, _COUNT, i, rec.machine_id, None))
        items.sort()  # plain tuples: time, then a job change before the counts it explains (no key: fast)
        plan, book = ob.plan, dict(ob.book)
        changed: dict[str, float] = {}
        for done, when in completions:  # found by ``_bulk``; they change nothing any other count goes to
            plan, book = self._complete(plan, book, done, when, changed)
        centres: dict[str, str | None] = {}

        def centre(machine_id: str) -> str | None:
            if machine_id not in centres:
                centres[machine_id] = ob.catalog.machine(machine_id).work_centre
            return centres[machine_id]

        seen: dict[str, str | None] = {}  # machine -> the job it reported last in this walk
        quick: dict[OpKey, int] = {}  # operation -> good parts below which no count can complete it
        for at, kind, index, machine_id, job in items:
            if kind == _JOB:
                # the same job again, later: a no-op (its operation runs, or it is unmatched, or it is done
                # and over-producing), except where a completion may start the next one (auto_next)
                if seen.get(machine_id, "") == job and not ob.auto_next.get(machine_id):
                    continue
                seen[machine_id] = job
                step = observe_job(book, plan, machine_id, job, at, work_centre=centre(machine_id))
                if not step.facts:
                    continue
                for fact in step.facts:
                    if isinstance(fact, UnmatchedJob):
                        ob.unmatched[machine_id] = fact
                    elif isinstance(fact, Started):
                        ob.unmatched.pop(machine_id, None)
                        touched.add(fact.key[0])
                book = dict(step.book)
                plan = apply_facts(plan, book, step.facts)
                for m, since in step.changed_from.items():
                    changed[m] = min(since, changed.get(m, since))
                continue
            rec = rnd.tx.counts[index].record
            key = attribute_one(book, rec, plan)
            ob.take(key, machine_id, rec.good, rec.scrap, 1, undo)
            if key is None:
                continue
            ops[index] = key
            touched.add(key[0])
            tally = ob.tallies[key]
            if rec.job_from is not None:
                tally.spanning += 1
            below = quick.get(key)
            if below is not None and tally.good < below:
                continue
            plan, book = self._complete(plan, book, key, rec.at, changed)
            if plan.operations[key].status.open:  # not complete: the bound holds until the plan changes
                quick[key] = self._bound(plan, key)
            else:
                quick.clear()  # statuses changed: bounds of other operations may have too
        recounts = await ob.recount(book, changed, undo, plan) if changed else []
        if not (ops or bulk or changed or recounts or plan is not ob.plan):
            return
        w = rnd.tx.order_writes()
        if plan is not ob.plan:
            w.plan(ob.plan, plan)
        for machine_id, since in changed.items():
            w.segments(machine_id, since, book.get(machine_id, ()))
        w.recounted.extend(recounts)
        counts = rnd.tx.counts
        for index, key in ops.items():
            counts[index].op = key
        for indices, key in bulk:
            for index in indices:
                counts[index].op = key
        touched |= {k[0] for k in w.operations}
        ob.plan, ob.book = plan, book
        self._pending = BookChanged(frozenset(touched), frozenset(changed))

    def _bulk(self, rnd: Round, machine_id: str, mc: _MachineCounts, jobs: set[str],
              bulk: list[tuple[list[int], OpKey]], touched: set[str], undo: _Undo,
              completions: list[tuple[OpKey, float]]) -> bool:
        """The usual case in one step: every count of the machine in this round is after the start of what
        it runs now (or it runs nothing and nothing ends later) and its job numbers are that operation's.
        Then they all belong to it (or are unassigned) with no rule to walk count by count. If they complete
        it, the count that does is found by a running sum and the completion goes to ``completions``, as
        long as completing changes where no later count goes: an operation of this machine alone (not a
        work centre's, whose other machines' counts interleave), not capped by a finished predecessor, and
        no ``auto_next`` (which starts the next operation at that instant). False: walk them one by one
        (``_attribute``)."""
        ob = self.orders
        timeline = ob.book.get(machine_id, ())
        first, good, scrap, indices = mc.first, mc.good, mc.scrap, mc.indices
        last = timeline[-1] if timeline else None
        key: OpKey | None = None
        if last is None or last.end is not None:
            if jobs or (last is not None and last.end is not None and first < last.end):
                return False
        else:
            op = ob.plan.operations.get(last.key)
            if op is None or first < last.start or any(job != op.job for job in jobs):
                return False
            key = last.key
        if key is not None:
            op = ob.plan.operations[key]
            if op.status.open and op.count_source is CountSource.MACHINE:
                machine, reported = ob.tallies.get(key), ob.reported.get(key)
                so_far = (machine.good if machine else 0) + (reported.good if reported else 0)
                before = ob.plan.predecessor(key)
                capped = before is not None and before.status is OpStatus.DONE
                if capped or (so_far + good >= op.quantity and (op.machine is None or ob.auto_next.get(machine_id))):
                    return False  # its completion may move later counts: walk them to find the exact count
                if so_far + good >= op.quantity:
                    completions.append((key, _crossing(rnd, indices, op.quantity - so_far)))
        ob.take(key, machine_id, good, scrap, 1, undo, events=len(indices))
        if key is not None:
            ob.tallies[key].spanning += mc.spanning
            touched.add(key[0])
            bulk.append((indices, key))
        return True

    def _bound(self, plan: Plan, key: OpKey) -> int:
        """Machine-counted good parts below which ``key`` cannot complete (reports' corrections included)."""
        op = plan.operations[key]
        if op.count_source is not CountSource.MACHINE:
            return 2**62
        before = plan.predecessor(key)
        if before is not None and before.status is OpStatus.DONE:
            return 0  # capped by what its predecessor delivered: check every count
        reported = self.orders.reported.get(key)
        return op.quantity - (reported.good if reported else 0)

    def _complete(self, plan: Plan, book: dict[str, Timeline], key: OpKey, at: float,
                  changed: dict[str, float]) -> tuple[Plan, dict[str, Timeline]]:
        """Complete ``key`` at ``at`` if its good parts reached its effective planned quantity."""
        ob = self.orders
        op = plan.operations.get(key)
        if op is None or not op.status.open or op.count_source is not CountSource.MACHINE:
            return plan, book
        machine, reported = ob.tallies.get(key), ob.reported.get(key)
        good = (machine.good if machine else 0) + (reported.good if reported else 0)  # counts + corrections
        planned = op.quantity
        if good < planned:  # the usual case; only an upstream operation done short lowers the plan (its cap)
            before = plan.predecessor(key)
            if before is None or before.status is not OpStatus.DONE:
                return plan, book
            planned = effective_quantities(plan, plan.order(key[0]), ob.tallies).get(key, op.quantity)
            if good < planned:
                return plan, book
        centres = {m: ob.catalog.machine(m).work_centre for m in book}
        step = complete(book, plan, key, at, good=good, planned=planned, auto_next=ob.auto_next,
                        work_centres=centres)
        book = dict(step.book)
        plan = apply_facts(plan, book, step.facts)
        for fact in step.facts:
            if isinstance(fact, Completed):
                ob.completed[fact.key] = fact
        for m, since in step.changed_from.items():
            changed[m] = min(since, changed.get(m, since))
        return plan, book


def _crossing(rnd: Round, indices: list[int], need: int) -> float:
    """The time of the count (in event time order, as the walk takes them) whose good parts reach ``need``."""
    total = 0
    at = -1.0
    for _, i in sorted((rnd.tx.counts[i].record.at, i) for i in indices):
        rec = rnd.tx.counts[i].record
        total += rec.good
        at = rec.at
        if total >= need:
            break
    return at
