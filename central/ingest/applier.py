"""One ingest round: messages in, one transaction and the follow-up actions out.

A round validates every message, lets the gateway's sequencer decide what to apply, runs the
pure reducers (status, intervals, counts) and collects all effects, the settled seq ranges
and the dead letters into one ``Transaction``. The service commits it and only then
acknowledges the messages to the broker and confirms the seqs to the gateways: a crash at any
moment either loses the whole round (the broker and the gateway send it again; the settled
ranges make it a duplicate where it was applied) or nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from central.ingest.live import LiveState
from central.ingest.messages import MAX_REASON, Incoming, Parsed, parse
from central.progress.clock import ClockRule, corrected
from central.progress.counts import CountRecord, place_count, plausible
from central.progress.status import (
    MachineStatus,
    apply_counts,
    apply_late_state,
    apply_state,
    set_gateway_online,
    set_gateway_skew,
)
from central.progress.timeline import StateInterval, place_state
from central.store.records import CountRow, DeadLetter, GapRow, GatewayRow, RawMessage, Transaction
from plantpulse.protocol.batch import RefusedEvent, event_json
from plantpulse.protocol.models import CountEvent, EventBatch, Health, Snapshot, StateEvent, Status
from plantpulse.protocol.sequencer import Applied, Decision, Gap, ReplayRequest

# the fields a gateway's health message and central's gateway record share (copied by name, not by hand)
_HEALTH_FIELDS = tuple(sorted(
    (set(Health.model_fields) & set(GatewayRow.model_fields)) - {"edge_id", "epoch", "machines"}))
MAX_UNANNOUNCED = 200  # messages of not yet announced epochs held per gateway (the oldest is dead-lettered)


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """An event applied in this round, for listeners (stream, time series, alert rules)."""

    edge_id: str
    applied: Applied
    received_at: float
    historic: bool
    at: float  # central's time axis: the interval start (state) or the count interval's end
    start: float | None = None  # counts: the interval's start on central's axis


@dataclass
class Round:
    tx: Transaction = field(default_factory=Transaction)
    acks: list[tuple[int, int, int]] = field(default_factory=list)  # (mid, qos, connection) to acknowledge
    confirm: set[tuple[str, str]] = field(default_factory=set)  # (edge_id, epoch) to confirm to the gateway
    replays: list[tuple[str, str, ReplayRequest]] = field(default_factory=list)  # (site, edge_id, request)
    applied: list[AppliedEvent] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    # every in-order state change as it happened (machine, status after it, time, historic): the
    # alert rules see a fault that came and went inside one round, too
    steps: list[tuple[str, MachineStatus, float, bool]] = field(default_factory=list)
    machines: set[str] = field(default_factory=set)
    gateways: set[str] = field(default_factory=set)
    oldest_received: float | None = None


IntervalLookup = Callable[[str, float], Awaitable[list[StateInterval]]]


class Applier:
    def __init__(self, live: LiveState, rule: ClockRule, lookup: IntervalLookup, *, site: str) -> None:
        """``site``: the one site this central serves (``CentralConfig.site``); another site's messages are
        set aside (``_other_site``)."""
        self.live = live
        self.site = site
        self.rule = rule
        self._lookup = lookup  # the store's intervals_from, for late state events
        self._counts: dict[str, list[CountRecord]] = {}  # this decision's placed counts, per machine
        # events messages of an epoch the gateway has not announced (yet): a birth releases them,
        # ``hold_max_age`` dead-letters them. Memory only: they are never confirmed, so the
        # gateway sends them again after a crash.
        self._unannounced: dict[str, list[Parsed]] = {}

    def reset(self) -> None:
        """Forget what is held in memory (after a failed round, the live state is reloaded from the store)."""
        self._counts.clear()
        self._unannounced.clear()

    async def messages(self, batch: list[Incoming], rnd: Round) -> Round:
        for msg in batch:
            rnd.acks.append((msg.mid, msg.qos, msg.generation))
            if rnd.oldest_received is None or msg.received_at < rnd.oldest_received:
                rnd.oldest_received = msg.received_at
            self.live.counters.messages += 1
            parsed = parse(msg)
            if isinstance(parsed, DeadLetter):
                rnd.tx.dead_letters.append(parsed)
                self.live.counters.dead_letters += 1
                continue
            if parsed.site != self.site:
                self._other_site(parsed, rnd)
                continue
            rnd = await self._message(parsed, rnd)
        return rnd

    async def tick(self, now: float, rnd: Round) -> Round:
        self._expire_unannounced(now, rnd)
        for edge_id, seq in list(self.live.sequencers.items()):
            gw = self.live.gateways.get(edge_id)
            if gw is None:
                continue  # restored epochs of a gateway not heard of since: nothing to ask it
            rnd = await self._decide(gw.site, edge_id, seq.tick(now), now, rnd)
        return rnd

    # ----------------------------------------------------------------- per message
    async def _message(self, p: Parsed, rnd: Round) -> Round:
        live = self.live
        gw = live.gateway(p.edge_id, p.site)
        gw.last_seen = p.received_at
        rnd.gateways.add(p.edge_id)
        rnd.tx.gateways[p.edge_id] = gw  # a gateway known only from its events is a gateway too
        seq = live.sequencer(p.edge_id)
        msg = p.message
        if isinstance(msg, EventBatch):
            if not seq.knows(msg.epoch):
                self._hold_unannounced(p, rnd)
                return rnd
            rnd.tx.messages.append(RawMessage(p.received_at, p.topic, p.edge_id, p.payload))
            decision = seq.on_batch(msg, p.received_at, rejected=[r.seq for r in p.refused if r.seq is not None])
            self._dead_letter_refused(p, decision, rnd)
            return await self._decide(p.site, p.edge_id, decision, p.received_at, rnd)
        if isinstance(msg, Status):
            if msg.birth < gw.birth:
                live.counters.stale_wills += 1
                return rnd  # a stale Will (or birth) of an earlier connection
            gw.birth, gw.online, gw.changed_at = msg.birth, msg.online, p.received_at
            if msg.online:
                gw.epoch, gw.version, gw.config_hash = msg.epoch, msg.version, msg.config_hash
                gw.machines, gw.latest_seq, gw.oldest_seq = list(msg.machines), msg.latest_seq, msg.oldest_seq
            for mid in live.machines_of(p.edge_id):
                self._set(mid, set_gateway_online(live.status(mid, p.edge_id), msg.online, p.received_at), rnd)
            rnd.tx.gateways[p.edge_id] = gw
            rnd = await self._decide(p.site, p.edge_id, seq.on_status(msg, p.received_at), p.received_at, rnd)
            return await self._release_unannounced(p.edge_id, rnd)
        if isinstance(msg, Health):
            gw.skew = live.skew_sample(p.edge_id, msg.ts, p.received_at)
            gw.health_at = p.received_at
            if seq.knows(msg.epoch):
                gw.epoch = msg.epoch
            for name in _HEALTH_FIELDS:  # what the health message says of the gateway's buffer, by name
                setattr(gw, name, getattr(msg, name))
            for mid in live.machines_of(p.edge_id):
                self._set(mid, set_gateway_skew(live.status(mid, p.edge_id), gw.skew), rnd)
            rnd.tx.gateways[p.edge_id] = gw
            decision = seq.on_health(msg.epoch, msg.oldest_seq, msg.latest_seq, msg.dropped, p.received_at)
            return await self._decide(p.site, p.edge_id, decision, p.received_at, rnd)
        assert isinstance(msg, Snapshot)  # live values only: never counted, nothing to store
        return rnd

    def _other_site(self, p: Parsed, rnd: Round) -> None:
        """Central subscribes to its own site only, so another site's message came through a misrouted
        subscription (a bridge, a hand-made one): central's record is keyed by its site, and applied here
        the other plant's machines would merge into this one's. Set aside, counted and said, never applied."""
        self.live.counters.site_conflicts += 1
        self._dead(rnd, p, p.payload, f"this central serves site {self.site!r}, not {p.site!r}: the message came "
                   "through a subscription to another site's topics; run that site's own central (docs/scaling.md)")

    def set_aside(self, msg: Incoming, reason: str) -> Round:
        """A round for a message that made central fail: dead-lettered, acknowledged, its seqs settled.

        Its events' seqs (where the message can be read and its epoch is known) become ``rejected``
        gaps, confirmed to the gateway like any settled range: otherwise the gateway would send the
        message again after its silence and central would ask for it, forever.
        """
        rnd = Round()
        rnd.acks.append((msg.mid, msg.qos, msg.generation))
        rnd.tx.dead_letters.append(DeadLetter(msg.received_at, msg.topic, msg.payload, reason[:MAX_REASON]))
        self.live.counters.dead_letters += 1
        parsed = parse(msg)
        if isinstance(parsed, DeadLetter) or not isinstance(parsed.message, EventBatch):
            return rnd
        batch = parsed.message
        seq = self.live.sequencer(parsed.edge_id)
        if not seq.knows(batch.epoch):
            return rnd
        seqs = [e.seq for e in batch.events if e.seq is not None] + [r.seq for r in parsed.refused if r.seq]
        empty = EventBatch.model_construct(v=1, edge_id=batch.edge_id, epoch=batch.epoch, sent_at=batch.sent_at,
                                           events=[])
        decision = seq.on_batch(empty, msg.received_at, rejected=sorted(seqs))
        self.live.counters.rejected_events += len(decision.gaps)
        rnd.tx.gaps.extend(GapRow(g, msg.received_at) for g in decision.gaps)
        rnd.gaps.extend(decision.gaps)
        self.live.counters.gaps += len(decision.gaps)
        if decision.gaps:
            rnd.confirm.add((parsed.edge_id, batch.epoch))
        for row in self.live.epoch_rows(parsed.edge_id):
            rnd.tx.epochs[(row.edge_id, row.epoch)] = row
        return rnd

    # ----------------------------------------------------------------- refused and unannounced events
    def _dead_letter_refused(self, p: Parsed, d: Decision, rnd: Round) -> None:
        """Each refused event once: those the sequencer settled now as ``rejected``, or with no usable seq."""
        if not p.refused:
            return
        settled_now = {g.first for g in d.gaps if g.reason == "rejected"}
        for r in p.refused:
            if r.seq is None or r.seq in settled_now:
                self._dead(rnd, p, event_json(r.event), _refusal(r))
                self.live.counters.rejected_events += 1

    def _hold_unannounced(self, p: Parsed, rnd: Round) -> None:
        held = self._unannounced.setdefault(p.edge_id, [])
        held.append(p)
        self.live.counters.unannounced_held += 1
        if len(held) > MAX_UNANNOUNCED:
            old = held.pop(0)
            self._dead(rnd, old, old.payload, _never_announced(old, "more messages waiting than the hold allows"))

    async def _release_unannounced(self, edge_id: str, rnd: Round) -> Round:
        """After a birth: apply the held messages whose epoch it announced (in arrival order)."""
        held = self._unannounced.get(edge_id)
        if not held:
            return rnd
        seq = self.live.sequencer(edge_id)
        ready = [p for p in held if isinstance(p.message, EventBatch) and seq.knows(p.message.epoch)]
        if not ready:
            return rnd
        self._unannounced[edge_id] = [p for p in held if p not in ready]
        for p in ready:
            rnd = await self._message(p, rnd)
        return rnd

    def _expire_unannounced(self, now: float, rnd: Round) -> None:
        age = self.live.cfg.hold_max_age
        for edge_id, held in list(self._unannounced.items()):
            keep = [p for p in held if now - p.received_at < age]
            for p in held:
                if p not in keep:
                    self._dead(rnd, p, p.payload, _never_announced(p, f"no birth announced it within {age:g} s"))
            if keep:
                self._unannounced[edge_id] = keep
            else:
                del self._unannounced[edge_id]

    def _dead(self, rnd: Round, p: Parsed, payload: bytes, reason: str) -> None:
        rnd.tx.dead_letters.append(DeadLetter(p.received_at, p.topic, payload, reason))
        self.live.counters.dead_letters += 1

    def held_unannounced(self) -> int:
        return sum(len(v) for v in self._unannounced.values())

    # ----------------------------------------------------------------- decisions
    async def _decide(self, site: str, edge_id: str, d: Decision, received_at: float, rnd: Round) -> Round:
        live = self.live
        for item in d.apply:
            rnd = await self._apply(edge_id, item, received_at, rnd)
        self._fold_counts(edge_id, received_at, rnd)
        live.counters.duplicates += d.duplicates
        for gap in d.gaps:
            rnd.tx.gaps.append(GapRow(gap, received_at))
            rnd.gaps.append(gap)
            live.counters.gaps += 1
        rnd.replays.extend((site, edge_id, r) for r in d.replays)
        live.counters.replays_asked += len(d.replays)
        if d.apply or d.gaps or d.duplicates:
            seq = live.sequencer(edge_id)
            for epoch in {i.epoch for i in d.apply} | {g.epoch for g in d.gaps} | (
                {seq.current} if d.duplicates and seq.current else set()
            ):
                rnd.confirm.add((edge_id, epoch))
        for row in live.epoch_rows(edge_id):
            rnd.tx.epochs[(row.edge_id, row.epoch)] = row
        return rnd

    async def _apply(self, edge_id: str, item: Applied, received_at: float, rnd: Round) -> Round:
        live = self.live
        event = item.event
        assert event.seq is not None
        mid = event.machine_id
        st = live.status(mid, edge_id)
        info = live.catalog.machine(mid)
        historic = received_at - corrected(event.ts, st.gateway_skew, self.rule) > live.cfg.historic_age
        if isinstance(event, CountEvent):
            ok = plausible(event.good + event.scrap, event.ts - event.start, info.ideal_cycle_time,
                           live.cfg.plausibility_factor)
            live.counters.implausible_counts += not ok
            record = place_count(event, received_at=received_at, skew=st.gateway_skew, rule=self.rule,
                                 implausible=not ok)
            rnd.tx.counts.append(CountRow(edge_id, item.epoch, event.seq, record))
            self._counts.setdefault(mid, []).append(record)  # folded into the status once per message
            at, start = record.at, record.start
        elif item.late:
            at = place_state(event, received_at=received_at, skew=st.gateway_skew, rule=self.rule).at
            after = await self._neighbour(mid, at, rnd)
            st, splice = apply_late_state(st, event, received_at, after=after, rule=self.rule)
            start = None
            if splice.remove is not None:
                if splice.remove in rnd.tx.intervals:  # closed in this very round: not stored yet
                    rnd.tx.intervals.remove(splice.remove)
                else:
                    rnd.tx.removed_intervals.append(splice.remove)
            rnd.tx.intervals.extend(splice.add)
            live.counters.late_events += 1
        else:
            assert isinstance(event, StateEvent)
            res = apply_state(st, event, received_at, rule=self.rule, faults=info.faults, uncertain=item.uncertain)
            if res.closed is not None:
                rnd.tx.intervals.append(res.closed)
            st, at, start = res.status, res.change.at, None
            rnd.steps.append((mid, st, at, historic))
        live.counters.events_applied += 1
        live.counters.uncertain_events += int(item.uncertain)
        live.counters.historic_events += int(historic)
        rnd.applied.append(AppliedEvent(edge_id, item, received_at, historic, at, start))
        if not isinstance(event, CountEvent):
            self._set(mid, st, rnd)
        return rnd

    def _fold_counts(self, edge_id: str, received_at: float, rnd: Round) -> None:
        """Add the decision's count events to each machine's status: one update per machine.

        Counts and states touch different fields of a status, so applying the counts after the
        states of the same message gives the same status as applying everything in seq order.
        """
        for mid, records in self._counts.items():
            calendar = self.live.catalog.calendar(mid)
            st = apply_counts(self.live.status(mid, edge_id), records, received_at, day_of=calendar.production_day)
            self._set(mid, st, rnd)
        self._counts.clear()

    async def _neighbour(self, machine_id: str, at: float, rnd: Round) -> StateInterval | None:
        """The closed interval containing ``at``, or the first after it: stored, or closed in this round.

        The round is committed whole, later: its own closed and removed intervals are merged in
        here instead of committing half a round to read them back.
        """
        removed = rnd.tx.removed_intervals
        candidates = [iv for iv in await self._lookup(machine_id, at) if iv not in removed]
        candidates += [iv for iv in rnd.tx.intervals if iv.machine_id == machine_id and iv.end > at]
        return min(candidates, key=lambda iv: (iv.start, iv.end), default=None)

    def _set(self, machine_id: str, status: MachineStatus, rnd: Round) -> None:
        if self.live.statuses.get(machine_id) is not status:
            self.live.statuses[machine_id] = status
            rnd.tx.statuses[machine_id] = status
            rnd.machines.add(machine_id)


def _refusal(r: RefusedEvent) -> str:
    settled = f"seq {r.seq} settled as a gap (rejected)" if r.seq is not None else "no usable seq: nothing settled"
    return f"event refused ({settled}): {r.reason}"[:MAX_REASON]


def _never_announced(p: Parsed, why: str) -> str:
    epoch = p.message.epoch if isinstance(p.message, EventBatch) else "?"
    return (f"events of epoch {epoch} that gateway {p.edge_id} never announced ({why}); "
            "an epoch starts only with the gateway's birth message")[:MAX_REASON]
