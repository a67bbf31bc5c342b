"""A small reference consumer of protocol v1: what a third party needs to read plantpulse gateways.

It subscribes with a persistent session, validates every message with the protocol models,
applies each event once through the ``GatewaySequencer``, confirms what it applied (in batches),
asks for replays of gaps and records data gaps. "Applying" here means adding to in-memory
totals and state lists; the central service follows the same rules with a durable store. The
tests use it to check the gateway end to end; docs/protocol.md describes the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from plantpulse.mqtt import MqttConfig, MqttLink
from plantpulse.protocol import topics
from plantpulse.protocol.models import Ack, CountEvent, EventBatch, Health, SeqRange, StateEvent, Status
from plantpulse.protocol.models import Replay as ReplayMsg
from plantpulse.protocol.sequencer import Applied, Decision, Gap, GatewaySequencer

log = logging.getLogger(__name__)


@dataclass
class MachineTotals:
    good: int = 0
    scrap: int = 0
    states: list[StateEvent] = field(default_factory=list)
    counts: list[CountEvent] = field(default_factory=list)


@dataclass
class GatewayView:
    site: str
    online: bool = False
    birth: int = -1
    status: Status | None = None
    health: Health | None = None
    applied_seqs: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


class ReferenceConsumer:
    def __init__(
        self,
        mqtt: MqttConfig,
        *,
        client_id: str = "plantpulse-reference-consumer",
        site: str = "+",
        ack_interval: float = 0.2,
        hold_max_age: float = 30.0,
        replay_retry: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mqtt = mqtt
        self.client_id = client_id
        self.site = site
        self.ack_interval = ack_interval
        self.hold_max_age = hold_max_age
        self.replay_retry = replay_retry
        self.clock = clock
        self.machines: dict[tuple[str, str], MachineTotals] = defaultdict(MachineTotals)
        self.gateways: dict[str, GatewayView] = {}
        self.sequencers: dict[str, GatewaySequencer] = {}
        self.gaps: list[Gap] = []
        self.duplicates = 0
        self.dead_letters: list[tuple[str, bytes, str]] = []
        self.replays_asked = 0
        self._dirty: set[tuple[str, str]] = set()  # (edge_id, epoch) with unconfirmed applied seqs
        self._link: MqttLink | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        subs = [(t, 1) for t in topics.subscriptions(self.site)]
        self._link = MqttLink(self.mqtt, self.client_id, clean_start=False, subscriptions=subs)
        self._link.on_message = self._on_message
        self._link.start()
        self._tasks = [
            asyncio.create_task(self._ack_loop(), name="consumer-ack"),
            asyncio.create_task(self._tick_loop(), name="consumer-tick"),
        ]
        await self._link.wait_connected()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._link is not None:
            await self._flush_acks()
            await self._link.stop()
            self._link = None

    # ----------------------------------------------------------------- views for tests
    def totals(self, machine_id: str, edge_id: str | None = None) -> tuple[int, int]:
        good = scrap = 0
        for (edge, machine), t in self.machines.items():
            if machine == machine_id and (edge_id is None or edge == edge_id):
                good += t.good
                scrap += t.scrap
        return good, scrap

    def states(self, machine_id: str) -> list[StateEvent]:
        return [s for (_, m), t in self.machines.items() if m == machine_id for s in t.states]

    def applied(self, edge_id: str, epoch: str) -> list[int]:
        view = self.gateways.get(edge_id)
        return list(view.applied_seqs.get(epoch, [])) if view else []

    # ----------------------------------------------------------------- messages
    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        parsed = topics.parse(topic)
        if parsed is None:
            self.dead_letters.append((topic, payload, "not a gateway topic"))
            return
        try:
            if parsed.channel == "events":
                batch = EventBatch.model_validate_json(payload)
                self._check_edge(batch.edge_id, parsed.edge_id)
                self._decide(parsed.site, batch.edge_id, self._sequencer(batch.edge_id).on_batch(batch, self.clock()))
            elif parsed.channel == "status":
                self._status(parsed.site, Status.model_validate_json(payload), parsed.edge_id)
            elif parsed.channel == "health":
                health = Health.model_validate_json(payload)
                self._check_edge(health.edge_id, parsed.edge_id)
                self._view(health.edge_id, parsed.site).health = health
                decision = self._sequencer(health.edge_id).on_health(
                    health.epoch, health.oldest_seq, health.latest_seq, health.dropped, self.clock()
                )
                self._decide(parsed.site, health.edge_id, decision)
            elif parsed.channel == "snapshot":
                pass  # live values only: never counted
            else:
                self.dead_letters.append((topic, payload, f"unknown channel {parsed.channel}"))
        except (ValidationError, ValueError) as exc:
            self.dead_letters.append((topic, payload, str(exc)[:500]))

    def _check_edge(self, edge_id: str, topic_edge: str) -> None:
        if edge_id != topic_edge:
            raise ValueError(f"payload edge_id {edge_id!r} does not match the topic's {topic_edge!r}")

    def _status(self, site: str, status: Status, topic_edge: str) -> None:
        self._check_edge(status.edge_id, topic_edge)
        view = self._view(status.edge_id, site)
        if status.birth < view.birth:
            return  # a stale Will (or birth) of an earlier connection
        view.birth = status.birth
        view.online = status.online
        view.status = status
        self._decide(site, status.edge_id, self._sequencer(status.edge_id).on_status(status, self.clock()))

    def _decide(self, site: str, edge_id: str, decision: Decision) -> None:
        view = self._view(edge_id, site)
        for item in decision.apply:
            self._apply(edge_id, view, item)
        self.duplicates += decision.duplicates
        self.gaps.extend(decision.gaps)
        for gap in decision.gaps:
            self._dirty.add((edge_id, gap.epoch))
        if decision.duplicates:
            # a resend of what we already applied: confirm again so the gateway can delete it
            seq = self._sequencer(edge_id)
            if seq.current is not None:
                self._dirty.add((edge_id, seq.current))
        for req in decision.replays:
            self._send(site, edge_id, "cmd/replay",
                       ReplayMsg(edge_id=edge_id, epoch=req.epoch, first=req.first, last=req.last, ts=self.clock())
                       .model_dump_json().encode())
            self.replays_asked += 1

    def _apply(self, edge_id: str, view: GatewayView, item: Applied) -> None:
        event = item.event
        assert event.seq is not None
        totals = self.machines[(edge_id, event.machine_id)]
        if isinstance(event, CountEvent):
            totals.good += event.good
            totals.scrap += event.scrap
            totals.counts.append(event)
        else:
            totals.states.append(event)
        view.applied_seqs[item.epoch].append(event.seq)
        self._dirty.add((edge_id, item.epoch))

    def _view(self, edge_id: str, site: str) -> GatewayView:
        view = self.gateways.get(edge_id)
        if view is None:
            view = self.gateways[edge_id] = GatewayView(site)
        return view

    def _sequencer(self, edge_id: str) -> GatewaySequencer:
        seq = self.sequencers.get(edge_id)
        if seq is None:
            seq = self.sequencers[edge_id] = GatewaySequencer(
                edge_id, hold_max_age=self.hold_max_age, replay_retry=self.replay_retry
            )
        return seq

    def _send(self, site: str, edge_id: str, channel: topics.CommandChannel, payload: bytes) -> None:
        if self._link is not None and self._link.connected:
            self._link.publish(topics.gateway_topic(site, edge_id, channel), payload, qos=1)

    # ----------------------------------------------------------------- background
    async def _ack_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ack_interval)
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for edge_id, epoch in dirty:
            ranges = self.sequencers[edge_id].ack_ranges(epoch)
            if not ranges:
                continue
            ack = Ack(edge_id=edge_id, epoch=epoch, ts=self.clock(),
                      applied=[SeqRange(first=a, last=b) for a, b in ranges])
            self._send(self.gateways[edge_id].site, edge_id, "cmd/ack", ack.model_dump_json().encode())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for edge_id, seq in self.sequencers.items():
                self._decide(self.gateways[edge_id].site, edge_id, seq.tick(self.clock()))

