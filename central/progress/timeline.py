"""State intervals per machine, built from edge time (docs/central.md, "State intervals").

A machine's history is a sequence of contiguous intervals: each state event closes the open
interval at the event's time and opens the next one. Intervals are keyed by (state, fault
code, job): an event that repeats the open key changes nothing. Times go through the
clock-skew rule (``clock.py``); the rule's last step lives here because only the timeline knows
the open interval: an event older than the open interval's start is clamped to it, so no
interval ever has a negative length.

A change that repeats the open key is not lost, though: its time is kept in the interval's
``repeats``. It is how history is right again when a change between two such repeats arrives late
(a gap filled by a replay): R@1, (I@2 missing), R@3 applied as one running interval with a
repeat at 3; I@2 arriving late then splits it into R [1, 2), I [2, 3), R from 3.

``uncertain`` marks intervals whose edges or content we cannot vouch for: built from an event
whose time was clamped, from the first event after a data gap (the caller says so), from an
event applied out of order after a bounded hold (``insert_late``), or overlapping a data gap's
time span (``mark_gaps``).

Pure: no I/O, time passed in. ``advance`` and ``insert_late`` are O(1); the window helpers are
O(n) in the intervals they are given (plus O(g log g) for gaps).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from central.progress.clock import DEFAULT_RULE, Clamp, ClockRule, corrected, to_central
from plantpulse.protocol.models import DroppedRange, MachineState, StateEvent


@dataclass(frozen=True, slots=True)
class StateChange:
    """A state event placed on central's time axis (``at``) by the clock-skew rule."""

    machine_id: str
    at: float
    state: MachineState
    fault_code: int | None = None
    job: str | None = None
    reason: str | None = None
    uncertain: bool = False
    clamp: Clamp | None = None  # why ``at`` differs from the (corrected) edge time, if it does

    @property
    def key(self) -> tuple[MachineState, int | None, str | None]:
        return (self.state, self.fault_code, self.job)


@dataclass(frozen=True, slots=True)
class StateInterval:
    """``[start, end)`` in one state; ``ongoing`` when it is the open interval cut at "now"."""

    machine_id: str
    state: MachineState
    start: float
    end: float
    fault_code: int | None = None
    job: str | None = None
    reason: str | None = None
    uncertain: bool = False
    ongoing: bool = False
    repeats: tuple[float, ...] = ()  # times a change repeated this interval's key (a state missed between)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class OpenInterval:
    """The machine's current interval: started, not yet ended."""

    machine_id: str
    state: MachineState
    start: float
    fault_code: int | None = None
    job: str | None = None
    reason: str | None = None
    uncertain: bool = False
    repeats: tuple[float, ...] = ()

    @property
    def key(self) -> tuple[MachineState, int | None, str | None]:
        return (self.state, self.fault_code, self.job)

    def close(self, end: float, *, uncertain: bool = False) -> StateInterval:
        return StateInterval(
            self.machine_id, self.state, self.start, end, self.fault_code, self.job, self.reason,
            self.uncertain or uncertain, repeats=tuple(r for r in self.repeats if r < end),
        )

    def until(self, now: float) -> StateInterval:
        """The open interval as it stands at ``now`` (for window queries), marked ``ongoing``."""
        return StateInterval(
            self.machine_id, self.state, self.start, max(now, self.start), self.fault_code, self.job, self.reason,
            self.uncertain, ongoing=True,
        )

    @classmethod
    def opened_by(cls, change: StateChange) -> OpenInterval:
        return cls(
            change.machine_id, change.state, change.at, change.fault_code, change.job, change.reason,
            change.uncertain or change.clamp is not None,
        )


def place_state(
    event: StateEvent,
    *,
    received_at: float,
    skew: float | None,
    rule: ClockRule = DEFAULT_RULE,
    uncertain: bool = False,
) -> StateChange:
    """Steps 1-2 of the clock rule for a state event (``uncertain``: the caller knows of a gap)."""
    at, clamp = to_central(event.ts, received_at=received_at, skew=skew, rule=rule)
    return StateChange(
        event.machine_id, at, event.state, event.fault_code, event.job, event.reason, uncertain, clamp
    )


@dataclass(frozen=True, slots=True)
class Advance:
    """What applying one in-order change did: the interval it closed (to store) and the new open one."""

    closed: StateInterval | None
    open: OpenInterval
    change: StateChange  # the change as applied (``at`` possibly clamped to the open start)


def advance(open_: OpenInterval | None, change: StateChange) -> Advance:
    """Apply a change in seq order: close the open interval at ``change.at`` and open the next.

    Step 3 of the clock rule: a change older than the open interval's start is clamped to it
    (both the closed, now empty, interval and the new one are uncertain). A change with the
    open interval's key leaves it open (only ``uncertain`` accumulates).
    """
    if open_ is not None and change.at < open_.start:
        change = replace(change, at=open_.start, clamp=Clamp.BEFORE_OPEN)
    flagged = change.uncertain or change.clamp is not None
    if open_ is None:
        return Advance(None, OpenInterval.opened_by(change), change)
    if change.key == open_.key:
        if flagged and not open_.uncertain:
            open_ = replace(open_, uncertain=True)
        if change.at > open_.start and change.at not in open_.repeats:
            open_ = replace(open_, repeats=(*open_.repeats, change.at)[-MAX_REPEATS:])
        return Advance(None, open_, change)
    return Advance(open_.close(change.at, uncertain=flagged), OpenInterval.opened_by(change), change)


@dataclass(frozen=True, slots=True)
class LateInsert:
    """How a late change rewrites history: drop ``remove`` (if any), store ``add``, keep ``open``."""

    remove: StateInterval | None
    add: tuple[StateInterval, ...]
    open: OpenInterval | None


MAX_REPEATS = 64  # repeats kept per interval (each one a state event missed around a gap)


def _repeat_after(repeats: tuple[float, ...], at: float) -> float | None:
    return min((r for r in repeats if r > at), default=None)


def insert_late(change: StateChange, *, after: StateInterval | None, open_: OpenInterval | None) -> LateInsert:
    """Apply a change that arrives after later-seq events of its gateway were applied (after a hold).

    Its state belongs to history, not to the present: it is spliced in by time and the
    machine's current state is left alone. ``after`` is the stored closed interval that
    contains ``change.at`` or, when none does, the first one that starts after it; ``None``
    when no closed interval ends after ``change.at`` (then the open interval is the neighbour).
    Every interval the splice creates or cuts is uncertain.
    """
    if after is not None:
        if change.at < after.start:  # before the known history (or in a hole of it): fill up to it
            return LateInsert(None, (_late(change, change.at, after.start),), open_)
        back = _repeat_after(after.repeats, change.at)
        if back is not None and back < after.end:  # the interval's state came back later: the late one ends there
            before = replace(after, end=change.at, uncertain=True, repeats=tuple(r for r in after.repeats
                                                                                 if r < change.at))
            rest = replace(after, start=back, uncertain=True, repeats=tuple(r for r in after.repeats if r > back))
            parts: tuple[StateInterval, ...] = (before,) if change.at > after.start else ()
            return LateInsert(after, (*parts, _late(change, change.at, back), rest), open_)
        cut = replace(after, end=change.at, uncertain=True)
        if change.at == after.start:  # same instant: the older (late) change first, empty
            return LateInsert(after, (_late(change, after.start, after.start), replace(after, uncertain=True)), open_)
        return LateInsert(after, (cut, _late(change, change.at, after.end)), open_)
    if open_ is None:  # no history at all: the late change is all we know
        return LateInsert(None, (), OpenInterval.opened_by(replace(change, uncertain=True)))
    if change.at < open_.start:
        return LateInsert(None, (_late(change, change.at, open_.start),), open_)
    back = _repeat_after(open_.repeats, change.at)
    if back is not None:  # a missed change between two of the open state's: it ran until the repeat
        ahead: tuple[StateInterval, ...] = (open_.close(change.at, uncertain=True),) if change.at > open_.start else ()
        reopened = replace(open_, start=back, uncertain=True, repeats=tuple(r for r in open_.repeats if r > back))
        return LateInsert(None, (*ahead, _late(change, change.at, back)), reopened)
    # stamped inside the open interval although older by seq: the clocks disagree; keep the
    # present, record the late state as an empty interval at the open start
    return LateInsert(
        None, (_late(change, open_.start, open_.start),), replace(open_, uncertain=True)
    )


def _late(change: StateChange, start: float, end: float) -> StateInterval:
    return StateInterval(
        change.machine_id, change.state, start, end, change.fault_code, change.job, change.reason, uncertain=True
    )


# --------------------------------------------------------------------------- window helpers
@dataclass(frozen=True, slots=True)
class DataGap:
    """A span of central time in which a gateway dropped events: history there is uncertain."""

    start: float
    end: float

    @classmethod
    def from_dropped(
        cls, dropped: DroppedRange, *, skew: float | None, rule: ClockRule = DEFAULT_RULE
    ) -> DataGap | None:
        """The gap's time span (skew-corrected), or None when the gateway did not say when it was."""
        if dropped.start_ts is None and dropped.end_ts is None:
            return None
        first = dropped.start_ts if dropped.start_ts is not None else dropped.end_ts
        last = dropped.end_ts if dropped.end_ts is not None else dropped.start_ts
        assert first is not None and last is not None
        lo, hi = corrected(min(first, last), skew, rule), corrected(max(first, last), skew, rule)
        return cls(lo, hi)


def mark_gaps(intervals: Iterable[StateInterval], gaps: Iterable[DataGap]) -> list[StateInterval]:
    """Mark uncertain every interval that touches a gap (closed on both ends: touching counts).

    A dropped state event at time t changed the state at t: both the interval that ends at t
    and the one that starts there are wrong, hence "touching". O((n + g) log g).
    """
    spans = sorted((g.start, g.end) for g in gaps)
    if not spans:
        return list(intervals)
    merged: list[list[float]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out: list[StateInterval] = []
    j = 0
    for iv in sorted(intervals, key=lambda i: i.start):
        while j < len(merged) and merged[j][1] < iv.start:
            j += 1
        touches = j < len(merged) and merged[j][0] <= iv.end
        out.append(replace(iv, uncertain=True) if touches and not iv.uncertain else iv)
    return out


def clip(intervals: Iterable[StateInterval], start: float, end: float) -> list[StateInterval]:
    """The parts of ``intervals`` inside ``[start, end)`` (a timeline window), in order. O(n)."""
    out: list[StateInterval] = []
    for iv in intervals:
        lo, hi = max(iv.start, start), min(iv.end, end)
        if hi > lo or (iv.start == iv.end and start <= iv.start < end):
            out.append(iv if (lo, hi) == (iv.start, iv.end) else replace(iv, start=lo, end=hi))
    return out


def check_ordered(intervals: Sequence[StateInterval]) -> None:
    """Raise ValueError unless the intervals are sorted by start and do not overlap."""
    for prev, cur in itertools.pairwise(intervals):
        if cur.start < prev.end or cur.end < cur.start:
            raise ValueError(
                f"intervals of {cur.machine_id} overlap or run backwards at {cur.start}: "
                "pass one machine's intervals sorted by start"
            )
    if intervals and intervals[0].end < intervals[0].start:
        raise ValueError(f"interval of {intervals[0].machine_id} ends before it starts at {intervals[0].start}")
