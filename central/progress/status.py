"""A machine's live status, kept by pure reducers the ingest calls for every applied event.

``apply_state`` is also what builds the machine's state history: it advances the open interval
(``timeline.advance``) and returns the interval it closed, for the store. The status and the
history therefore cannot disagree about the current state or since when it holds.

The gateway's online flag is a live-view fact only: a gateway going offline changes neither
the machine's state nor its history (its buffered events arrive later and tell what the
machines did). Every reducer is O(1) and returns a new value; time is always an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import NamedTuple

from central.progress.clock import DEFAULT_RULE, ClockRule, to_central
from central.progress.counts import CountRecord
from central.progress.machines import FaultText, MachineInfo
from central.progress.timeline import (
    LateInsert,
    OpenInterval,
    StateChange,
    StateInterval,
    advance,
    insert_late,
    place_state,
)
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """What the live view shows for one machine (all times on central's axis, Unix seconds)."""

    machine_id: str
    configured: bool = True
    state: MachineState | None = None  # None until the first state event
    since: float | None = None
    fault_code: int | None = None
    fault_text: FaultText | None = None  # zh/en text of fault_code when the configuration knows it
    job: str | None = None
    reason: str | None = None  # why the machine is offline, as the edge said
    uncertain: bool = False  # the current interval's start or state is uncertain
    last_part_at: float | None = None
    good_total: int = 0  # since central started counting this machine
    scrap_total: int = 0
    day: date | None = None  # production day of good_today / scrap_today
    good_today: int = 0
    scrap_today: int = 0
    last_event_at: float | None = None  # when central received the latest applied event
    gateway_online: bool | None = None  # None: no birth or Will seen yet
    gateway_changed_at: float | None = None
    gateway_skew: float | None = None  # edge clock minus central clock, seconds
    repeats: tuple[float, ...] = ()  # times a change repeated the current state (see timeline.py)

    def open_interval(self) -> OpenInterval | None:
        if self.state is None or self.since is None:
            return None
        return OpenInterval(
            self.machine_id, self.state, self.since, self.fault_code, self.job, self.reason, self.uncertain,
            self.repeats,
        )

    def counts_on(self, day: date) -> tuple[int, int]:
        """(good, scrap) made on production day ``day``: zero when no part has been counted on it."""
        return (self.good_today, self.scrap_today) if self.day == day else (0, 0)


def new_status(info: MachineInfo) -> MachineStatus:
    return MachineStatus(info.id, configured=info.configured)


class StateApplied(NamedTuple):
    status: MachineStatus
    closed: StateInterval | None  # the interval the event closed: store it
    change: StateChange  # the event as placed on central's axis (``clamp`` says if it was moved)


def apply_state(
    status: MachineStatus,
    event: StateEvent,
    received_at: float,
    *,
    rule: ClockRule = DEFAULT_RULE,
    faults: Mapping[int, FaultText] | None = None,
    uncertain: bool = False,
) -> StateApplied:
    """Apply a state event in seq order (``uncertain``: the first event after a gap or a hold)."""
    _same_machine(status, event)
    change = place_state(event, received_at=received_at, skew=status.gateway_skew, rule=rule, uncertain=uncertain)
    step = advance(status.open_interval(), change)
    opened = step.open
    fault_text = status.fault_text
    if step.closed is not None or status.state is None:  # a new interval: look its fault text up
        fault_text = faults.get(opened.fault_code) if faults and opened.fault_code is not None else None
    new = replace(
        status, state=opened.state, since=opened.start, fault_code=opened.fault_code, fault_text=fault_text,
        job=opened.job, reason=opened.reason, uncertain=opened.uncertain, repeats=opened.repeats,
        last_event_at=_later(status.last_event_at, received_at),
    )
    return StateApplied(new, step.closed, step.change)


def apply_late_state(
    status: MachineStatus,
    event: StateEvent,
    received_at: float,
    *,
    after: StateInterval | None,
    rule: ClockRule = DEFAULT_RULE,
) -> tuple[MachineStatus, LateInsert]:
    """Apply a state event that arrived after later events of its gateway (see ``insert_late``).

    The current state stays; only the history changes (and the current interval may become
    uncertain when the clocks disagree).
    """
    _same_machine(status, event)
    change = place_state(event, received_at=received_at, skew=status.gateway_skew, rule=rule, uncertain=True)
    result = insert_late(change, after=after, open_=status.open_interval())
    opened = result.open
    if opened is None:
        return status, result
    new = replace(
        status, state=opened.state, since=opened.start, fault_code=opened.fault_code, job=opened.job,
        reason=opened.reason, uncertain=opened.uncertain, repeats=opened.repeats,
        last_event_at=_later(status.last_event_at, received_at),
    )
    return new, result


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def apply_count(
    status: MachineStatus,
    event: CountEvent,
    received_at: float,
    *,
    rule: ClockRule = DEFAULT_RULE,
    day_of: Callable[[float], date] = utc_day,
) -> MachineStatus:
    """Add a count delta (any order). ``day_of``: the line calendar's ``production_day``.

    Parts count for the production day of the interval's end; a delta from an older day (a
    backlog) adds to the totals but not to today's figures.
    """
    _same_machine(status, event)
    at, _clamp = to_central(event.ts, received_at=received_at, skew=status.gateway_skew, rule=rule)
    parts = event.good + event.scrap
    day = day_of(at)
    good_today, scrap_today, current_day = status.good_today, status.scrap_today, status.day
    if current_day is None or day > current_day:
        current_day, good_today, scrap_today = day, event.good, event.scrap
    elif day == current_day:
        good_today, scrap_today = good_today + event.good, scrap_today + event.scrap
    return replace(
        status,
        good_total=status.good_total + event.good,
        scrap_total=status.scrap_total + event.scrap,
        day=current_day, good_today=good_today, scrap_today=scrap_today,
        last_part_at=_later(status.last_part_at, at) if parts else status.last_part_at,
        last_event_at=_later(status.last_event_at, received_at),
    )


def apply_counts(
    status: MachineStatus,
    records: Sequence[CountRecord],
    received_at: float,
    *,
    day_of: Callable[[float], date] = utc_day,
) -> MachineStatus:
    """``apply_count`` for many count events of one machine at once, already placed (``place_count``).

    Same result as applying them one by one, in any order, but one new status instead of one per
    event: during a catch-up a round carries hundreds of counts per machine.
    """
    good_total, scrap_total = status.good_total, status.scrap_total
    day, good_today, scrap_today = status.day, status.good_today, status.scrap_today
    last_part = status.last_part_at
    for rec in records:
        if rec.machine_id != status.machine_id:
            raise ValueError(f"count of machine {rec.machine_id} applied to the status of {status.machine_id}")
        good_total += rec.good
        scrap_total += rec.scrap
        rec_day = day_of(rec.at)
        if day is None or rec_day > day:
            day, good_today, scrap_today = rec_day, rec.good, rec.scrap
        elif rec_day == day:
            good_today, scrap_today = good_today + rec.good, scrap_today + rec.scrap
        if rec.good + rec.scrap and (last_part is None or rec.at > last_part):
            last_part = rec.at
    return replace(
        status, good_total=good_total, scrap_total=scrap_total, day=day, good_today=good_today,
        scrap_today=scrap_today, last_part_at=last_part, last_event_at=_later(status.last_event_at, received_at),
    )


def set_gateway_online(status: MachineStatus, online: bool, at: float) -> MachineStatus:
    """The gateway's birth (online) or Last Will (offline): the live view only, never history."""
    if status.gateway_online == online:
        return status
    return replace(status, gateway_online=online, gateway_changed_at=at)


def set_gateway_skew(status: MachineStatus, skew: float | None) -> MachineStatus:
    """The gateway's measured clock skew (edge minus central), used for the following events."""
    return status if status.gateway_skew == skew else replace(status, gateway_skew=skew)


def _later(a: float | None, b: float) -> float:
    return b if a is None or b > a else a


def _same_machine(status: MachineStatus, event: StateEvent | CountEvent) -> None:
    if event.machine_id != status.machine_id:
        raise ValueError(f"event of machine {event.machine_id} applied to the status of {status.machine_id}")
