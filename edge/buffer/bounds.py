"""What to coalesce and what to drop when the outbox is full (pure: rows in, decisions out).

The outbox is bounded by events and by bytes. When an emit would exceed a bound it first
**coalesces**: consecutive count events of one machine that were never handed to the
publisher are merged into the first of them (parts are summed, the interval spans all of
them, the flags are OR-ed, and ``absorbed`` lists every seq merged in, so the consumer sees no
gap and no part is lost, only timing detail). Runs never cross a state event of the machine
or a change of job, and a merged event absorbs at most ``MAX_ABSORBED`` seqs so that one
message stays small. Only if that is not enough does it **drop** the oldest events, down to a
low-water mark so that a full outbox does not drop (and log, and report) one event at a time.

The I/O around these rules lives in ``edge/buffer/writer.py``; this module only decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from protocol.models import CountEvent

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

    def excess(self, events: int, nbytes: int) -> tuple[int, int]:
        """Events and bytes to drop so that ``events``/``nbytes`` reach the low-water mark."""
        low_events = math.floor(self.max_events * LOW_WATER)
        low_bytes = math.floor(self.max_bytes * LOW_WATER)
        return max(0, events - low_events), max(0, nbytes - low_bytes)


# --------------------------------------------------------------------------- coalescing
def can_merge(head: CountEvent, event: CountEvent) -> bool:
    """``event`` may be merged into ``head`` (same machine and job, absorbed list not full)."""
    return (
        head.machine_id == event.machine_id
        and head.job == event.job
        and len(head.absorbed) + 1 + len(event.absorbed) <= MAX_ABSORBED
    )


def merge_counts(head: CountEvent, event: CountEvent) -> CountEvent:
    """``head`` followed by ``event`` as one count event that keeps ``head``'s (lower) seq."""
    assert head.seq is not None and event.seq is not None and head.seq < event.seq
    return CountEvent(
        seq=head.seq,
        machine_id=head.machine_id,
        start=head.start,
        ts=max(head.ts, event.ts),
        good=head.good + event.good,
        scrap=head.scrap + event.scrap,
        job=head.job,
        reset=head.reset or event.reset,
        possibly_lost=head.possibly_lost or event.possibly_lost,
        rebased=head.rebased or event.rebased,
        absorbed=sorted([*head.absorbed, event.seq, *event.absorbed]),
    )


@dataclass(frozen=True)
class Head:
    """The count event a machine's next count may merge into, and its stored size in bytes."""

    event: CountEvent
    size: int


@dataclass
class Coalescer:
    """Walks the never-handed-out events in seq order and merges count runs per machine.

    ``heads`` holds, per machine, the count event that the next count of that machine may be
    merged into. It carries over from one pass to the next (the caller discards heads that
    were handed out or dropped since), so a run grows across passes instead of restarting.
    """

    heads: dict[str, Head] = field(default_factory=dict)

    def copy(self) -> Coalescer:
        return Coalescer(dict(self.heads))

    def state(self, machine_id: str) -> None:
        """A state event of the machine: its next count starts a new run."""
        self.heads.pop(machine_id, None)

    def count(self, event: CountEvent, size: int) -> tuple[Head, CountEvent] | None:
        """Feed a count event stored in ``size`` bytes.

        Returns ``(old head, merged event)`` when it was merged into the machine's head (the
        caller then stores the merged event and tells its size with ``resize``); None when it
        became the head itself.
        """
        head = self.heads.get(event.machine_id)
        if head is not None and can_merge(head.event, event):
            merged = merge_counts(head.event, event)
            self.heads[event.machine_id] = Head(merged, head.size)
            return head, merged
        self.heads[event.machine_id] = Head(event, size)
        return None

    def resize(self, machine_id: str, size: int) -> None:
        self.heads[machine_id] = Head(self.heads[machine_id].event, size)

    def forget_upto(self, seq: int) -> None:
        """Heads at or below ``seq`` are no longer mergeable (handed out or dropped)."""
        self.heads = {m: h for m, h in self.heads.items() if h.event.seq is not None and h.event.seq > seq}


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
