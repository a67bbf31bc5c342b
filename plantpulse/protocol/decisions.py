"""What the sequencer decides, as values (``plantpulse.protocol.sequencer``, docs/protocol.md).

The consumer and the stores act on these: events to apply, data gaps to record, ranges to ask the
gateway to replay, and where a gateway's stream stands. They live apart from the sequencer's rules
so that a store recording a ``Gap`` needs only the value, not the logic that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plantpulse.protocol.models import Event


@dataclass(frozen=True)
class Applied:
    """An event to apply now; ``uncertain``: released past a gap; ``late``: older than applied states."""

    epoch: str
    event: Event
    uncertain: bool = False
    late: bool = False


@dataclass(frozen=True)
class Gap:
    """Seqs the consumer will never get: recorded as a data gap (API, metrics, alerts)."""

    edge_id: str
    epoch: str
    first: int
    last: int
    reason: str  # buffer_full, disk_full, unavailable, epoch_replaced, rejected
    start_ts: float | None = None
    end_ts: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class ReplayRequest:
    epoch: str
    first: int
    last: int


@dataclass
class Decision:
    apply: list[Applied] = field(default_factory=list)
    duplicates: int = 0
    gaps: list[Gap] = field(default_factory=list)
    replays: list[ReplayRequest] = field(default_factory=list)
    unannounced: bool = False  # the input's epoch was never announced by a birth: nothing was done


@dataclass(frozen=True)
class StreamProgress:
    """Where a gateway's current epoch stands, for the API, metrics and alert rules."""

    epoch: str | None
    applied: int | None  # every seq of the epoch up to this one is settled (None: no epoch yet)
    held: int  # state events waiting behind a gap
    missing: list[tuple[int, int]]  # unsettled ranges below the highest seq received

    def caught_up(self, announced_latest: int | None) -> bool:
        """Nothing held and every seq the gateway announced is settled."""
        return (self.applied is not None and self.held == 0 and announced_latest is not None
                and self.applied >= announced_latest)
