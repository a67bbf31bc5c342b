"""Which operation runs on each machine at every instant, and which operation each count belongs to (issue 13).

Each machine has an **assignment timeline**: segments ``[start, end)`` (``end`` None: still open),
each naming one operation and how it started (``api``, ``scan``, ``job``, ``previous_completed``)
and ended. Counts are attributed by the **event's time** ``at`` through this timeline, never by
"what runs now": a gateway's backlog, applied as history an hour late, lands on the operation
that was running then. Counts at a time no segment covers are *unassigned*: kept, visible,
reassignable (``reassign``, audited), never dropped.

Rules (issue 13, "Precisions"):

* a reported job number starts the first open operation with that job in the machine's dispatch
  list, else in its work centre's; an unmatched job leaves the current operation running and is
  returned as an ``UnmatchedJob`` fact (shown, never guessed);
* an operation without a job number is started by the API, a scan, or, on a machine configured
  with ``auto_next``, by the completion of the previous one;
* a work-centre operation may run on several machines at once: each machine has its own segment
  for it, and their counts add up;
* an operation completes when its planned good quantity is reached (parts after that, while it
  still runs, are its over-production) or on an explicit finish (which ends its segments).

Every change splices by time like ``timeline.insert_late``: the segment around ``at`` is cut there
and the new one runs to the next segment's start, so events in any order build the same history.
``Step.changed_from`` says from when each machine's history changed: re-attribute that machine's
counts with ``at`` at or after it. Pure; a splice is O(s) in the machine's segments, a look-up
O(log s).
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from central.progress.changes import set_status
from central.progress.counts import CountRecord
from central.progress.orders import CENTRE, Audit, OpKey, OpStatus, Plan


class StartCause(enum.StrEnum):
    API = "api"
    SCAN = "scan"
    JOB = "job"  # the machine reported the operation's job number
    PREVIOUS_COMPLETED = "previous_completed"


class EndCause(enum.StrEnum):
    NEXT = "next"  # another operation started on the machine
    PAUSE = "pause"
    FINISH = "finish"  # explicit finish (API or scan)


@dataclass(frozen=True, slots=True)
class Assignment:
    """``key`` runs on ``machine_id`` in ``[start, end)``; ``end`` None: it still runs."""

    machine_id: str
    key: OpKey
    start: float
    end: float | None = None
    started_by: StartCause = StartCause.API
    ended_by: EndCause | None = None

    def covers(self, at: float) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


Timeline = tuple[Assignment, ...]
Book = Mapping[str, Timeline]
"""Machine id -> its assignment timeline (sorted by start, non-overlapping)."""


@dataclass(frozen=True, slots=True)
class Started:
    machine_id: str
    key: OpKey
    at: float
    cause: StartCause


@dataclass(frozen=True, slots=True)
class Ended:
    machine_id: str
    key: OpKey
    at: float
    cause: EndCause


@dataclass(frozen=True, slots=True)
class UnmatchedJob:
    """The machine reported a job no open operation of its lists carries; the current one goes on."""

    machine_id: str
    job: str
    at: float


@dataclass(frozen=True, slots=True)
class Completed:
    key: OpKey
    at: float
    good: int
    planned: int

    @property
    def over(self) -> int:
        """Good parts beyond the plan (over-production) when it completed."""
        return max(0, self.good - self.planned)


Fact = Started | Ended | UnmatchedJob | Completed


@dataclass(frozen=True, slots=True)
class Step:
    """The book after a change, what happened, and from when each machine's history changed."""

    book: Book
    facts: tuple[Fact, ...] = ()
    changed_from: Mapping[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- look-ups
def running_at(timeline: Timeline, at: float) -> Assignment | None:
    """The segment covering ``at``, if any. O(log s)."""
    i = bisect.bisect_right(timeline, at, key=lambda a: a.start) - 1
    if i >= 0 and timeline[i].covers(at):
        return timeline[i]
    return None


def machines_running(book: Book, key: OpKey) -> list[str]:
    """Machines whose open segment is ``key`` (a work-centre operation may have several)."""
    return [m for m, tl in book.items() if tl and tl[-1].end is None and tl[-1].key == key]


# --------------------------------------------------------------------------- splicing
def _splice(timeline: Timeline, new: Assignment | None, at: float, end_cause: EndCause) -> Timeline:
    """Cut the segment around ``at`` there (ended by ``end_cause``); put ``new`` (starting at ``at``)
    up to the next segment's start. Adjacent segments of the same operation are merged."""
    out: list[Assignment] = []
    nxt: float | None = None
    for seg in timeline:
        if seg.start >= at:  # a segment starting exactly at ``at`` is replaced
            if seg.start > at:
                if nxt is None:
                    nxt = seg.start
                out.append(seg)
            continue
        if seg.end is None or seg.end > at:
            seg = replace(seg, end=at, ended_by=end_cause)
        out.append(seg)
    if new is not None:
        out.append(replace(new, end=nxt, ended_by=EndCause.NEXT if nxt is not None else None))
    out.sort(key=lambda a: a.start)
    merged: list[Assignment] = []
    for seg in out:
        if seg.end is not None and seg.end <= seg.start:
            continue
        last = merged[-1] if merged else None
        if last is not None and last.key == seg.key and last.end == seg.start:
            merged[-1] = replace(last, end=seg.end, ended_by=seg.ended_by)
        else:
            merged.append(seg)
    return tuple(merged)


def assign(book: Book, machine_id: str, key: OpKey, at: float, cause: StartCause) -> Step:
    """``key`` runs on ``machine_id`` from ``at`` (the operation there before is cut at ``at``)."""
    timeline = book.get(machine_id, ())
    current = running_at(timeline, at)
    if current is not None and current.key == key:
        return Step(book)
    facts: list[Fact] = []
    if current is not None:
        facts.append(Ended(machine_id, current.key, at, EndCause.NEXT))
    facts.append(Started(machine_id, key, at, cause))
    spliced = _splice(timeline, Assignment(machine_id, key, at, None, cause), at, EndCause.NEXT)
    return Step({**book, machine_id: spliced}, tuple(facts), {machine_id: at})


def release(book: Book, machine_id: str, at: float, cause: EndCause) -> Step:
    """Stop what runs on ``machine_id`` at ``at`` (pause or finish): counts after it are unassigned
    until something starts."""
    timeline = book.get(machine_id, ())
    current = running_at(timeline, at)
    if current is None:
        return Step(book)
    spliced = _splice(timeline, None, at, cause)
    return Step({**book, machine_id: spliced}, (Ended(machine_id, current.key, at, cause),), {machine_id: at})


def candidates(plan: Plan, machine_id: str, work_centre: str | None) -> list[OpKey]:
    """Open operations the machine may run, in dispatch order: its own list, then its centre's."""
    keys = list(plan.dispatch.get(machine_id, ()))
    if work_centre is not None:
        keys += plan.dispatch.get(CENTRE + work_centre, ())
    return [k for k in keys if plan.operations[k].status.open]


def observe_job(
    book: Book, plan: Plan, machine_id: str, job: str | None, at: float, *, work_centre: str | None = None
) -> Step:
    """The machine reported ``job`` at ``at`` (a state event's job, or a count's).

    Starts the first open operation with that job (machine list, then work centre list) unless it
    already runs there; an unmatched job changes nothing and is returned as ``UnmatchedJob``.
    ``None`` (no job known) changes nothing.
    """
    if job is None:
        return Step(book)
    current = running_at(book.get(machine_id, ()), at)
    if current is not None and plan.operations.get(current.key) is not None and \
            plan.operations[current.key].job == job:
        return Step(book)
    for key in candidates(plan, machine_id, work_centre):
        if plan.operations[key].job == job:
            return assign(book, machine_id, key, at, StartCause.JOB)
    return Step(book, (UnmatchedJob(machine_id, job, at),))


def complete(
    book: Book, plan: Plan, key: OpKey, at: float, *, good: int, planned: int,
    auto_next: Mapping[str, bool] | None = None, work_centres: Mapping[str, str | None] | None = None,
) -> Step:
    """``key`` reached its planned good quantity at ``at`` (the count that reached it).

    Its segments stay open (parts still made are its over-production) unless a machine is set to
    ``auto_next``: there the next queued operation without a job number starts at ``at``.
    """
    facts: list[Fact] = [Completed(key, at, good, planned)]
    changed: dict[str, float] = {}
    for machine_id in machines_running(book, key):
        if not (auto_next or {}).get(machine_id, False):
            continue
        centre = (work_centres or {}).get(machine_id)
        for nxt in candidates(plan, machine_id, centre):
            op = plan.operations[nxt]
            if nxt != key and op.job is None and op.status is OpStatus.PLANNED:
                step = assign(book, machine_id, nxt, at, StartCause.PREVIOUS_COMPLETED)
                book, changed = step.book, {**changed, **step.changed_from}
                facts.extend(step.facts)
                break
    return Step(book, tuple(facts), changed)


def finish(book: Book, key: OpKey, at: float) -> Step:
    """Explicit finish: every machine running ``key`` stops it at ``at``."""
    facts: list[Fact] = []
    changed: dict[str, float] = {}
    for machine_id in machines_running(book, key):
        step = release(book, machine_id, at, EndCause.FINISH)
        book = step.book
        facts.extend(step.facts)
        changed.update(step.changed_from)
    return Step(book, tuple(facts), changed)


def reassign(
    book: Book, machine_id: str, key: OpKey, start: float, end: float, *, by: str, now: float
) -> tuple[Step, Audit]:
    """Give ``[start, end)`` of a machine to ``key`` (counts made before their order existed), audited."""
    if end <= start:
        raise ValueError(f"reassign needs end > start, got {start}..{end}")
    timeline = book.get(machine_id, ())
    after_end = running_at(timeline, end)
    spliced = _splice(timeline, Assignment(machine_id, key, start, None, StartCause.API), start, EndCause.NEXT)
    if after_end is not None and after_end.key != key:  # what ran at ``end`` resumes there
        spliced = _splice(spliced, replace(after_end, start=end, end=None), end, EndCause.NEXT)
    elif after_end is None:
        spliced = _splice(spliced, None, end, EndCause.FINISH)
    audit = Audit(now, by, "reassign", key[0], key[1], after={"machine": machine_id, "start": start, "end": end})
    return Step({**book, machine_id: spliced}, (), {machine_id: start}), audit


# --------------------------------------------------------------------------- counts
@dataclass(slots=True)
class Tally:
    """Parts attributed to one operation."""

    good: int = 0
    scrap: int = 0
    events: int = 0
    spanning: int = 0  # events whose interval spans a job change (booked to the new job's operation)

    @property
    def total(self) -> int:
        return self.good + self.scrap


@dataclass(slots=True)
class Attribution:
    per_op: dict[OpKey, Tally] = field(default_factory=dict)
    unassigned: list[CountRecord] = field(default_factory=list)

    def add(self, key: OpKey | None, rec: CountRecord) -> None:
        if key is None:
            self.unassigned.append(rec)
            return
        tally = self.per_op.get(key)
        if tally is None:
            tally = self.per_op[key] = Tally()
        tally.good += rec.good
        tally.scrap += rec.scrap
        tally.events += 1
        tally.spanning += rec.job_from is not None


def attribute_one(book: Book, rec: CountRecord, plan: Plan | None = None) -> OpKey | None:
    """The operation running on the record's machine at its time ``at``, else None (unassigned).

    At a job change's instant the record's job decides: the gateway sends the old job's last parts
    (those its read before the change saw, or a per-job counter split off) stamped with the very time
    the new job starts, naming the old job. Such a record goes to the operation that ended at that
    instant when that one carries the record's job and the new one does not (``plan`` gives the jobs;
    without it the instant belongs to the new operation).
    """
    timeline = book.get(rec.machine_id, ())
    seg = running_at(timeline, rec.at)
    if plan is not None and rec.job is not None and (seg is None or _job(plan, seg.key) != rec.job):
        i = bisect.bisect_left(timeline, rec.at, key=lambda a: a.start) - 1  # the last one begun before ``at``
        if i >= 0 and timeline[i].end == rec.at and _job(plan, timeline[i].key) == rec.job:
            return timeline[i].key
    return seg.key if seg is not None else None


def _job(plan: Plan, key: OpKey) -> str | None:
    op = plan.operations.get(key)
    return op.job if op is not None else None


def attribute(book: Book, records: Iterable[CountRecord], plan: Plan | None = None) -> Attribution:
    """Every record to the operation running at its ``at``; assigned + unassigned = all parts."""
    out = Attribution()
    for rec in records:
        out.add(attribute_one(book, rec, plan), rec)
    return out


def apply_facts(plan: Plan, book: Book, facts: Iterable[Fact]) -> Plan:
    """The plan with the operation statuses the facts imply (``statuses`` applied with ``set_status``)."""
    for key, status in statuses(plan, book, facts).items():
        plan = set_status(plan, key, status)
    return plan


def statuses(plan: Plan, book: Book, facts: Iterable[Fact]) -> dict[OpKey, OpStatus]:
    """Operation statuses the facts imply (apply each with ``changes.set_status``).

    Started: running. Completed or finished: done. Ended otherwise (paused, or another operation
    started on that machine) while no machine runs it any more: paused.
    """
    out: dict[OpKey, OpStatus] = {}
    for fact in facts:
        if isinstance(fact, UnmatchedJob) or fact.key not in plan.operations:
            continue
        if isinstance(fact, Started):
            out[fact.key] = OpStatus.RUNNING
        elif isinstance(fact, Completed) or fact.cause is EndCause.FINISH:
            out[fact.key] = OpStatus.DONE
        elif out.get(fact.key) is not OpStatus.DONE and plan.operations[fact.key].status is not OpStatus.DONE \
                and not machines_running(book, fact.key):
            out[fact.key] = OpStatus.PAUSED
    return out
