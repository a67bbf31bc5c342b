"""The consumer's rules for one gateway's event stream: pure logic, time passed in (docs/protocol.md).

Exactly-once effect = at-least-once delivery + applying each ``(edge_id, epoch, seq)`` once. The
sequencer decides, for every batch that arrives, which events to apply now, which are
duplicates, which state events to hold behind a gap, and which ranges to ask the gateway to
replay. It keeps per epoch the set of *settled* seqs (applied, absorbed by a coalesced event,
or reported dropped): a set of ranges, not a high-water mark, so a gap filled late by a replay
is still applied exactly once.

Rules:
* Count events are applied at once (deltas add up in any order).
* A state event is applied only when every lower seq of its epoch is settled; otherwise it is
  held and the missing range is asked for (``Replay``, at most ``MAX_REPLAY`` per request,
  again every ``replay_retry`` seconds). Held events are released in seq order when the gap
  closes, or, past ``hold_max_events`` or ``hold_max_age``, released anyway and marked
  ``uncertain`` (the history around the gap is not exact).
* A missing range stays open and is asked for again while the gateway still holds it. When it
  arrives it is applied (a state event arriving after later ones were released is ``late``).
* Ranges the gateway reports dropped (buffer or disk full) become data gaps and are settled.
  Seqs below the gateway's oldest held seq that were never settled are gone: a gap, reason
  ``unavailable``.
* A new epoch (outbox replaced) closes the previous one: its unsettled remainder up to the
  latest seq the gateway announced becomes a gap, reason ``epoch_replaced``; held events are
  released as uncertain. Only the gateway's birth (an online ``Status``) starts an epoch: events
  or health of an epoch never announced change nothing (``Decision.unannounced``; the caller
  holds such events for a while, then dead-letters them), so a stray or forged message can never
  retire the real epoch.
* Events the consumer refuses (invalid, see ``plantpulse/protocol/batch.py``) are settled as a gap, reason
  ``rejected``, once: a resend of the same seq is a duplicate.

Work per input is bounded by the number of ranges, never by their size: a seq far beyond the
settled ones is one missing range, asked for one ``MAX_REPLAY`` chunk at a time.

The caller applies ``Decision.apply`` durably, storing each epoch's ``settled`` ranges in the same
transaction, and only then acknowledges ``ack_ranges()`` to the gateway: a confirmation never
runs ahead of the commit. Held events live in memory only: they are not confirmed, so after a
consumer crash the gateway sends them again.

The values it decides (``Applied``, ``Gap``, ``ReplayRequest``, ``Decision``, ``StreamProgress``) are
in ``plantpulse.protocol.decisions``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from plantpulse.protocol.decisions import Applied, Decision, Gap, ReplayRequest, StreamProgress
from plantpulse.protocol.models import MAX_REPLAY, CountEvent, DroppedRange, Event, EventBatch, StateEvent, Status
from plantpulse.protocol.ranges import RangeSet

# the decisions are re-exported: the consumer, the stores and the tests import them from here
__all__ = ["MAX_RANGES_ASKED", "Applied", "Decision", "EpochState", "Gap", "GatewaySequencer", "ReplayRequest",
           "StreamProgress"]

MAX_RANGES_ASKED = 100  # missing ranges asked for per input: the rest on the next ticks


@dataclass
class EpochState:
    """What is known of one epoch of a gateway; the caller persists ``settled`` (and which is current)."""

    epoch: str
    settled: RangeSet = field(default_factory=RangeSet)  # applied, absorbed, dropped or before our time
    latest: int = 0  # highest seq the gateway announced or sent
    received: int = 0  # highest seq received in a batch: holes below it are gaps to ask for
    oldest_held: int | None = None  # the gateway's oldest held seq, from its birth or health
    held: dict[int, StateEvent] = field(default_factory=dict)
    held_order: list[int] = field(default_factory=list)  # a heap of the held seqs
    held_since: float | None = None
    asked: dict[tuple[int, int], float] = field(default_factory=dict)
    released_upto: int = 0  # highest seq of a state event applied (for "late" detection)
    replaced_at: float | None = None  # when a newer epoch appeared (closed hold_max_age later)
    drops: dict[int, int] = field(default_factory=dict)  # dropped events recorded, by the range's first seq

    def contiguous(self) -> int:
        return self.settled.contiguous_from(1)


class GatewaySequencer:
    """The stream of one gateway, across its epochs."""

    def __init__(
        self,
        edge_id: str,
        *,
        hold_max_events: int = 5_000,
        hold_max_age: float = 30.0,
        replay_retry: float = 5.0,
    ) -> None:
        self.edge_id = edge_id
        self.hold_max_events = hold_max_events
        self.hold_max_age = hold_max_age
        self.replay_retry = replay_retry
        self.epochs: dict[str, EpochState] = {}
        self.current: str | None = None

    # ----------------------------------------------------------------- restore
    def restore(self, epoch: str, settled: RangeSet, *, current: bool) -> None:
        """Load what the caller persisted (at start)."""
        last = settled.last() or 0
        self.epochs[epoch] = EpochState(epoch, settled=settled, latest=last, received=last)
        if current:
            self.current = epoch

    # ----------------------------------------------------------------- inputs
    def on_status(self, status: Status, now: float) -> Decision:
        """A birth of the gateway: its epoch, the oldest seq it holds, the ranges it dropped."""
        if status.epoch is None or not status.online:
            return Decision()
        return self.on_health(status.epoch, status.oldest_seq, status.latest_seq, status.dropped, now, birth=True)

    def on_health(self, epoch: str, oldest_seq: int | None, latest_seq: int | None,
                  dropped: list[DroppedRange], now: float, *, birth: bool = False) -> Decision:
        """Health (or, with ``birth``, the birth): what the gateway holds, what it dropped.

        Only a birth may start a new epoch; health of an unknown epoch is ``unannounced``.
        """
        decision = Decision()
        if epoch not in self.epochs and not birth:
            decision.unannounced = True
            return decision
        st = self._epoch(epoch, now, oldest=oldest_seq, latest=latest_seq)
        if latest_seq is not None:
            st.latest = max(st.latest, latest_seq)
        self._drop(st, dropped, decision)
        self._note_oldest(st, oldest_seq, latest_seq, decision)
        self._release(st, decision, now)
        self._close_replaced(decision, now)
        return decision

    def knows(self, epoch: str) -> bool:
        """The gateway announced this epoch (a birth), or it was restored from the store."""
        return epoch in self.epochs

    def on_batch(self, batch: EventBatch, now: float, rejected: Iterable[int] = ()) -> Decision:
        """Events of one message; ``rejected``: seqs of its events the consumer refused (settled once)."""
        decision = Decision()
        st = self.epochs.get(batch.epoch)
        if st is None:
            decision.unannounced = True
            return decision
        for seq in rejected:
            st.latest = max(st.latest, seq)
            st.received = max(st.received, seq)
            if seq in st.settled or seq in st.held:
                decision.duplicates += 1
                continue
            st.settled.add(seq)
            decision.gaps.append(Gap(self.edge_id, st.epoch, seq, seq, "rejected", count=1))
        for event in batch.events:
            assert event.seq is not None  # EventBatch validates it
            seq = event.seq
            st.latest = max(st.latest, seq)
            st.received = max(st.received, seq)
            if seq in st.settled or seq in st.held:
                decision.duplicates += 1
                continue
            if isinstance(event, CountEvent) or seq == st.contiguous() + 1:
                decision.apply.append(Applied(st.epoch, event, late=seq < st.released_upto))
                if isinstance(event, StateEvent):
                    st.released_upto = max(st.released_upto, seq)
                self._mark(st, event)
            else:
                st.held[seq] = event
                heapq.heappush(st.held_order, seq)
                if st.held_since is None:
                    st.held_since = now
        self._release(st, decision, now)
        self._close_replaced(decision, now)
        return decision

    def tick(self, now: float) -> Decision:
        """Time passes: release holds past their age, ask again for ranges still missing."""
        decision = Decision()
        for st in self.epochs.values():
            self._release(st, decision, now)
        self._close_replaced(decision, now)
        return decision

    def progress(self) -> StreamProgress:
        """The current epoch's applied prefix, held events and missing ranges."""
        if self.current is None:
            return StreamProgress(None, None, 0, [])
        st = self.epochs[self.current]
        return StreamProgress(self.current, st.contiguous(), len(st.held), self.missing(self.current))

    def held_events(self) -> int:
        return sum(len(st.held) for st in self.epochs.values())

    # ----------------------------------------------------------------- acknowledgement
    def ack_ranges(self, epoch: str) -> list[tuple[int, int]]:
        """Every settled seq range of ``epoch`` (what ``cmd/ack`` carries).

        The whole set, not only what the gateway still holds: a dropped range it reports sits
        below its oldest held event, and it forgets the range only when an ack covers it. The
        set is one range in the normal case, a few after gaps.
        """
        st = self.epochs.get(epoch)
        return st.settled.ranges() if st is not None else []

    def missing(self, epoch: str, upto: int | None = None) -> list[tuple[int, int]]:
        """Unsettled, not held seqs of ``epoch`` up to ``upto`` (default: the highest received)."""
        st = self.epochs.get(epoch)
        if st is None:
            return []
        top = st.received if upto is None else upto
        if top < 1:
            return []
        gaps = st.settled.missing(1, top)
        if not st.held:
            return gaps
        # held seqs sit inside the gaps: cut them out in one merge pass over the sorted seqs
        out: list[tuple[int, int]] = []
        held = iter(sorted(s for s in st.held if s <= top))
        nxt = next(held, None)
        for a, b in gaps:
            cursor = a
            while nxt is not None and nxt <= b:
                if nxt >= cursor:
                    if nxt > cursor:
                        out.append((cursor, nxt - 1))
                    cursor = nxt + 1
                nxt = next(held, None)
            if cursor <= b:
                out.append((cursor, b))
        return out

    # ----------------------------------------------------------------- internals
    def _epoch(self, epoch: str, now: float, *, oldest: int | None, latest: int | None) -> EpochState:
        st = self.epochs.get(epoch)
        if st is not None:
            return st
        st = EpochState(epoch)
        # seqs the gateway no longer holds were settled before this consumer knew the epoch
        floor = (oldest - 1) if oldest is not None else (latest if latest is not None else 0)
        if floor >= 1:
            st.settled.add(1, floor)
            st.latest = st.received = floor
        self.epochs[epoch] = st
        previous = self.epochs.get(self.current) if self.current is not None else None
        if previous is not None and previous.replaced_at is None:
            previous.replaced_at = now  # closed later: its queued events may still be on their way
        self.current = epoch
        return st

    def _close_replaced(self, decision: Decision, now: float) -> None:
        """An epoch replaced ``hold_max_age`` ago: what is still missing of it will never come."""
        for st in self.epochs.values():
            if st.replaced_at is None or now - st.replaced_at < self.hold_max_age:
                continue
            self._release(st, decision, now, force=True)
            for first, last in self.missing(st.epoch, upto=st.latest):
                decision.gaps.append(Gap(self.edge_id, st.epoch, first, last, "epoch_replaced",
                                         count=last - first + 1))
                st.settled.add(first, last)
            st.replaced_at = None
            st.oldest_held = None

    def _note_oldest(self, st: EpochState, oldest: int | None, latest: int | None, decision: Decision) -> None:
        """Seqs below the gateway's oldest held one that were never settled are gone for good.

        With nothing held (``oldest`` None), that is every seq up to the latest the gateway *says* it
        assigned, never up to the highest seq received: a stray seq far ahead must not declare the
        real events between unavailable (they are asked for, and arrive).
        """
        top = (oldest - 1) if oldest is not None else (latest or 0)
        st.oldest_held = oldest
        if top < 1:
            return
        for first, last in self.missing(st.epoch, upto=top):
            decision.gaps.append(Gap(self.edge_id, st.epoch, first, last, "unavailable", count=last - first + 1))
            st.settled.add(first, last)
        st.received = max(st.received, top)

    def _drop(self, st: EpochState, dropped: list[DroppedRange], decision: Decision) -> None:
        """Record what the gateway dropped, once, even as it extends a range it reported before.

        The gateway grows its last dropped range while it keeps dropping (``first`` stays, ``last``
        and ``count`` grow), so a range may come back partly recorded: only its unsettled part is a
        new gap, with the events not yet counted for that range. After a restart of the consumer
        the earlier count is not known: the new part then counts at most its missing seqs (an
        upper bound, exact unless dropped events had absorbed others).
        """
        for d in dropped:
            if d.epoch != st.epoch:
                continue  # another epoch's
            parts = st.settled.missing(d.first, d.last)
            if not parts:
                continue  # already recorded
            whole = parts == [(d.first, d.last)]
            known = st.drops.get(d.first)
            left = d.count - known if known is not None else min(d.count, sum(b - a + 1 for a, b in parts))
            for a, b in parts:
                count = d.count if whole else max(0, min(left, b - a + 1) if len(parts) > 1 else left)
                left -= count
                decision.gaps.append(Gap(
                    self.edge_id, st.epoch, a, b, d.reason,
                    d.start_ts if a == d.first else None, d.end_ts if b == d.last else None, count or None,
                ))
                st.settled.add(a, b)
            st.drops[d.first] = d.count
            st.latest = max(st.latest, d.last)
            st.received = max(st.received, d.last)

    def _mark(self, st: EpochState, event: Event) -> None:
        assert event.seq is not None
        st.settled.add(event.seq)
        if isinstance(event, CountEvent):
            for seq in event.absorbed:
                st.settled.add(seq)

    def _release(self, st: EpochState, decision: Decision, now: float, *, force: bool = False) -> None:
        """Apply held state events whose predecessors are settled; past the bounds, apply them anyway."""
        while st.held_order:
            seq = st.held_order[0]
            if seq > st.contiguous() + 1:
                break
            heapq.heappop(st.held_order)
            self._apply_held(st, seq, decision, uncertain=False)
        if not st.held:
            st.held_since = None
        expired = st.held_since is not None and now - st.held_since >= self.hold_max_age
        if st.held and (force or expired or len(st.held) > self.hold_max_events):
            for seq in sorted(st.held):
                self._apply_held(st, seq, decision, uncertain=True)
            st.held_order.clear()
            st.held_since = None
        if not force:
            self._ask(st, decision, now)

    def _apply_held(self, st: EpochState, seq: int, decision: Decision, *, uncertain: bool) -> None:
        event = st.held.pop(seq)
        decision.apply.append(Applied(st.epoch, event, uncertain=uncertain, late=seq < st.released_upto))
        st.released_upto = max(st.released_upto, seq)
        self._mark(st, event)

    def _ask(self, st: EpochState, decision: Decision, now: float) -> None:
        """Ask for the first ``MAX_REPLAY`` seqs of each missing range (the rest once those came).

        One request per range, whatever its length: a seq far beyond the settled ones costs one
        request, not a walk over the range. A range whose start lies in a request still in flight
        (asked less than ``replay_retry`` ago) waits for it: the answer arrives in several batches,
        and asking again after each would have the gateway send the same events many times.
        """
        st.asked = {c: t for c, t in st.asked.items() if now - t < self.replay_retry}
        for first, last in self.missing(st.epoch)[:MAX_RANGES_ASKED]:
            if st.oldest_held is not None and last < st.oldest_held:
                continue  # the gateway no longer holds it (settled as unavailable on its next health)
            if any(a <= first <= b for a, b in st.asked):
                continue
            chunk = (first, min(last, first + MAX_REPLAY - 1))
            st.asked[chunk] = now
            decision.replays.append(ReplayRequest(st.epoch, *chunk))
