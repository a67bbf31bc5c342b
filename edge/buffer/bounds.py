"""What to coalesce and what to drop when the outbox is full (pure: rows in, decisions out).

The outbox is bounded by events and by bytes. When an emit would exceed a bound it first
**coalesces**: consecutive count events of one machine that were never handed to the
publisher are merged into the first of them (parts are summed, the interval spans all of
them, the flags are OR-ed, and ``absorbed`` lists every seq merged in, so the consumer sees no
gap and no part is lost, only timing detail). Runs never cross a state event of the machine
or a change of job, and a merged event absorbs at most ``MAX_ABSORBED`` seqs so that one
message stays small. Only if that is not enough does it **drop** the oldest events, down to a
low-water mark so that a full outbox does not drop (and log, and report) one event at a time.

Coalescing also stops at the low-water mark: it only ever merges what is needed to make
room, and a pass over a week of backlog is spread over several rounds instead of stalling
the emits for the whole pass.

The I/O around these rules lives in ``edge/buffer/writer.py``; this module only decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from plantpulse.protocol.models import CountEvent

MAX_ABSORBED = 500
"""Seqs one merged event may absorb: keeps it under ~5 kB on the wire."""

LOW_WATER = 0.9
"""Once dropping is needed, drop until held events and bytes are at most this share of the bounds."""


@dataclass(frozen=True)
class Bounds:
    max_events: int
    max_bytes: int

    def over(self, events: int, nbytes: int) -> bool:
        return events > self.max_events or nbytes > self.max_bytes

    def low_water(self) -> tuple[int, int]:
        return math.floor(self.max_events * LOW_WATER), math.floor(self.max_bytes * LOW_WATER)

    def excess(self, events: int, nbytes: int) -> tuple[int, int]:
        """Events and bytes to drop so that ``events``/``nbytes`` reach the low-water mark."""
        low_events, low_bytes = self.low_water()
        return max(0, events - low_events), max(0, nbytes - low_bytes)


# --------------------------------------------------------------------------- coalescing
@dataclass
class Run:
    """A count event other counts of its machine are being merged into (mutable during a pass).

    Merging accumulates here and the merged ``CountEvent`` is built once per flush (``event``),
    not once per absorbed event: a week of backlog coalesces in linear time.
    """

    seq: int
    machine_id: str
    job: str | None
    job_from: str | None
    start: float
    ts: float
    good: int
    scrap: int
    reset: bool
    possibly_lost: bool
    rebased: bool
    absorbed: list[int]
    size: int  # bytes of the row as last stored

    @classmethod
    def of(cls, event: CountEvent, size: int) -> Run:
        assert event.seq is not None
        return cls(event.seq, event.machine_id, event.job, event.job_from, event.start, event.ts, event.good,
                   event.scrap, event.reset, event.possibly_lost, event.rebased, list(event.absorbed), size)

    def copy(self) -> Run:
        return replace(self, absorbed=list(self.absorbed))

    def accepts(self, event: CountEvent) -> bool:
        """Same machine and job (and job change: parts spanning one never merge into others), a later seq,
        and room in the absorbed list."""
        return (
            event.machine_id == self.machine_id
            and event.job == self.job
            and event.job_from == self.job_from
            and event.seq is not None
            and event.seq > self.seq
            and len(self.absorbed) + 1 + len(event.absorbed) <= MAX_ABSORBED
        )

    def add(self, event: CountEvent) -> None:
        """Merge ``event``: parts summed, interval extended, flags OR-ed, its seqs absorbed."""
        assert event.seq is not None
        self.ts = max(self.ts, event.ts)
        self.good += event.good
        self.scrap += event.scrap
        self.reset |= event.reset
        self.possibly_lost |= event.possibly_lost
        self.rebased |= event.rebased
        tail_sorted = not self.absorbed or self.absorbed[-1] < event.seq
        self.absorbed.append(event.seq)
        self.absorbed.extend(event.absorbed)
        if not tail_sorted or event.absorbed:
            self.absorbed.sort()

    def event(self) -> CountEvent:
        """The merged event: the lowest seq, the first start, the last ts, every absorbed seq."""
        return CountEvent(
            seq=self.seq, machine_id=self.machine_id, start=self.start, ts=self.ts, good=self.good,
            scrap=self.scrap, job=self.job, job_from=self.job_from, reset=self.reset, possibly_lost=self.possibly_lost,
            rebased=self.rebased, absorbed=list(self.absorbed),
        )


@dataclass
class Coalescer:
    """Walks the never-handed-out events in seq order and merges count runs per machine.

    ``heads`` holds, per machine, the run that the machine's next count may merge into. It
    carries over from one pass to the next (the caller discards heads that were handed out or
    dropped since), so a run grows across passes instead of restarting at each one.
    """

    heads: dict[str, Run] = field(default_factory=dict)

    def copy(self) -> Coalescer:
        return Coalescer({m: run.copy() for m, run in self.heads.items()})

    def state(self, machine_id: str) -> None:
        """A state event of the machine: its next count starts a new run."""
        self.heads.pop(machine_id, None)

    def count(self, event: CountEvent, size: int) -> Run | None:
        """Feed a count event stored in ``size`` bytes: the run it was merged into, or None
        when it starts a run of its own."""
        run = self.heads.get(event.machine_id)
        if run is not None and run.accepts(event):
            run.add(event)
            return run
        self.heads[event.machine_id] = Run.of(event, size)
        return None

    def forget_upto(self, seq: int) -> None:
        """Runs whose event is at or below ``seq`` are no longer mergeable (handed out or dropped)."""
        self.heads = {m: run for m, run in self.heads.items() if run.seq > seq}


# --------------------------------------------------------------------------- dropping
@dataclass(frozen=True)
class DropRow:
    """What dropping needs to know of a held event (read oldest first)."""

    seq: int
    start: float
    ts: float
    cover: int  # the highest seq the row stands for: its own, or the highest it absorbed
    size: int


@dataclass(frozen=True)
class DropPlan:
    """Drop every held event with seq <= ``last``; report ``first..last`` as one dropped range."""

    first: int
    last: int
    count: int
    nbytes: int
    start_ts: float
    end_ts: float


class DropPlanner:
    """Consumes held rows oldest first until enough are dropped; then ``plan()``.

    The range it reports must cover every seq a dropped row stands for, including seqs a
    merged row absorbed, which can lie above later rows of other machines. So once enough is
    dropped it keeps dropping while rows lie at or below the highest seq covered so far: the
    range ``first..last`` then holds no surviving event, and the consumer can record all of it
    as a gap.
    """

    def __init__(self, excess_events: int, excess_bytes: int) -> None:
        self._need_events = excess_events
        self._need_bytes = excess_bytes
        self._first: int | None = None
        self._cut = 0
        self._count = 0
        self._bytes = 0
        self._start = math.inf
        self._end = -math.inf

    def wants(self, row: DropRow) -> bool:
        """Whether ``row`` (the next oldest) must be dropped too; feed rows while it says so."""
        enough = self._count >= self._need_events and self._bytes >= self._need_bytes
        if enough and row.seq > self._cut:
            return False
        if self._first is None:
            self._first = row.seq
        self._cut = max(self._cut, row.seq, row.cover)
        self._count += 1
        self._bytes += row.size
        self._start = min(self._start, row.start)
        self._end = max(self._end, row.ts)
        return True

    def plan(self) -> DropPlan | None:
        if self._first is None:
            return None
        return DropPlan(self._first, self._cut, self._count, self._bytes, self._start, self._end)
