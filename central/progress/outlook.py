"""What the projection takes and gives (issue 13): machine outlooks in, operation schedules out.

Split from ``projection.py`` (the list scheduler) so that the store, the API and the delay rules can
use these types without the scheduler's internals. ``down_until`` is the rule for a machine that is
down: the repair ETA entered by maintenance, else its mean repair time (MTTR) less the time already
spent but never less than half the MTTR ahead, else a configured default, never less than ``floor`` ahead.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from central.progress.orders import OpKey
from central.progress.shifts import AlwaysPlanned, Calendar
from plantpulse.protocol.models import MachineState

INF = math.inf
DEFAULT_DOWN = 1800.0  # seconds a machine is assumed down without an ETA or a mean repair time
DOWN_FLOOR = 300.0  # a stop running late is assumed to need at least this much longer (repairs: half their mean)


class Binding(enum.StrEnum):
    NOW = "now"
    MACHINE = "machine"  # the operation ahead on the machine
    REPAIR = "repair"  # the machine is down (fault, maintenance, offline)
    PREDECESSOR = "predecessor"  # the previous operation of the order
    MATERIAL = "material"


class DownCause(enum.StrEnum):
    FAULT = "fault"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"


_DOWN = {MachineState.FAULT: DownCause.FAULT, MachineState.MAINTENANCE: DownCause.MAINTENANCE,
         MachineState.OFFLINE: DownCause.OFFLINE}


def down_until(
    state: MachineState | None, since: float | None, now: float, *, eta: float | None = None,
    eta_at: float | None = None, mean: float | None = None, default: float = DEFAULT_DOWN, floor: float = DOWN_FLOOR,
) -> tuple[float, DownCause] | None:
    """When a machine in fault, maintenance or offline is expected back, or None if it is up.

    The ETA maintenance entered (at ``eta_at``) when still ahead and about this stop, i.e. entered after
    it began (one left from an earlier fault, withdrawn only once central sees the machine run, says
    nothing of a new one); else the mean duration (MTTR for a fault) less the time already spent; else
    ``default`` less it. Never less than ``floor`` from now: a repair running past its mean is not about
    to end this instant (and remaining time is never negative).

    With a mean repair time, never less than half of it from now either: repair times spread (the usual
    model is lognormal), and a repair that has lasted half its mean or more is the longer kind. Even for
    a narrow spread (lognormal, sigma 0.5) the expected time still to go stays near half the mean from
    then on (0.59, 0.49, 0.49 x the mean at 0.5, 1, 1.5 x the mean spent), and wider spreads only raise
    it; "mean less spent" alone says a repair past its mean ends within ``floor``, every round, and slides
    the projection forward a few minutes at a time, too late to warn the orders behind it.
    """
    cause = _DOWN.get(state) if state is not None else None
    if cause is None:
        return None
    if eta_at is not None and since is not None and eta_at < since:
        eta = None
    if eta is not None and eta > now:
        return max(eta, now), cause
    spent = now - since if since is not None else 0.0
    left = (mean if mean is not None else default) - spent
    if mean is not None:
        left = max(left, mean / 2)
    return now + max(left, floor if eta is None or eta <= now else 0.0), cause


@dataclass(frozen=True, slots=True)
class MachineOutlook:
    """What the projection needs to know about one machine now."""

    machine_id: str
    calendar: Calendar = field(default_factory=AlwaysPlanned)
    availability: float = 1.0  # share of planned time it produces (progress.availability)
    work_centre: str | None = None
    down: tuple[float, DownCause] | None = None  # ``down_until``
    setup_left: float | None = None  # in setup for the operation it runs: planned seconds still to go


class OpProjection(NamedTuple):
    """One open operation's projected schedule (INF: held indefinitely or beyond the horizon).

    A named tuple rather than a frozen dataclass: a projection makes 10,000 of them every few
    seconds and a tuple is built several times faster.
    """

    key: OpKey
    machines: tuple[str, ...]
    start: float  # first planned instant of its setup (or of its production without setup)
    finish: float
    ready: float  # precedence and material allow it from here
    binding: Binding
    ahead: OpKey | None  # the operation before it on its machine, when binding is MACHINE
    wait: float  # seconds the binding constraint added over the next one
    setup: float
    work: float  # planned seconds of production at the projected rate
    ideal_work: float  # ... at the ideal cycle time (same availability): work - ideal_work is speed loss
    gap: float  # unplanned seconds (shift ends, breaks, days off) inside [start, finish]
    down: DownCause | None = None  # binding REPAIR: why the machine is down
    release: float = 0.0  # when its successor may start


@dataclass(frozen=True, slots=True)
class Deadlock:
    """Dispatch lists that wait for each other: each pair is (waiting head, the predecessor it needs)."""

    waits: tuple[tuple[OpKey, OpKey], ...]
    queues: tuple[str, ...]
    broken_by: OpKey  # moved ahead in its list so the projection could go on


@dataclass(frozen=True, slots=True)
class Projection:
    now: float
    ops: Mapping[OpKey, OpProjection]
    orders: Mapping[str, float]  # order id -> projected finish (INF: not within the horizon)
    by_queue: Mapping[str, tuple[OpKey, ...]]  # Gantt rows: machine or centre -> operations in time order
    deadlocks: tuple[Deadlock, ...] = ()
    unplaceable: tuple[OpKey, ...] = ()  # a centre without machines, a predecessor in no list
