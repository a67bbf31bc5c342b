"""The outbox's in-memory picture of its database, copied for each write round.

A round works on a copy and the outbox swaps it in only after the commit succeeded, so a
rolled-back transaction (a full disk, an I/O error) leaves no trace in memory either.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from edge.buffer.bounds import Coalescer
from edge.buffer.records import OutboxStats
from edge.buffer.schema import Totals
from plantpulse.protocol.models import DroppedRange
from plantpulse.protocol.ranges import RangeSet


@dataclass
class OutboxState:
    totals: Totals
    oldest: tuple[int, float] | None = None  # (seq, ts) of the oldest held event
    dropped: list[DroppedRange] = field(default_factory=list)  # unsettled, ascending by first
    settled: RangeSet = field(default_factory=RangeSet)  # confirmed seqs above confirmed_seq
    coalescer: Coalescer = field(default_factory=Coalescer)
    coalesced_upto: int = 0  # coalescing passes have looked at every seq up to here

    def copy(self) -> OutboxState:
        return OutboxState(
            totals=copy.copy(self.totals),
            oldest=self.oldest,
            dropped=list(self.dropped),
            settled=RangeSet(self.settled),
            coalescer=self.coalescer.copy(),
            coalesced_upto=self.coalesced_upto,
        )

    @property
    def confirmed_seq(self) -> int:
        """Every seq up to this one is settled: below the oldest held event and unsettled gap."""
        floors = [r.first for r in self.dropped[:1]]
        if self.oldest is not None:
            floors.append(self.oldest[0])
        return min(floors) - 1 if floors else self.totals.last_seq

    def prune_settled(self) -> None:
        """Forget settled seqs below ``confirmed_seq``: the set stays as small as the gaps."""
        floor = self.confirmed_seq
        first = self.settled.first()
        if first is not None and first <= floor:
            self.settled.remove(first, floor)

    def stats(self, now: float) -> OutboxStats:
        t = self.totals
        return OutboxStats(
            epoch=t.epoch,
            events=t.events,
            bytes=t.bytes,
            oldest_seq=self.oldest[0] if self.oldest else None,
            oldest_ts=self.oldest[1] if self.oldest else None,
            oldest_age=max(0.0, now - self.oldest[1]) if self.oldest else None,
            latest_seq=t.last_seq,
            confirmed_seq=self.confirmed_seq,
            coalesced_total=t.coalesced_total,
            dropped_total=t.dropped_total,
            dropped=list(self.dropped),
        )
