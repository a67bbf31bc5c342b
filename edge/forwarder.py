"""Store and forward: drain the outbox to the broker in seq order, within a credit window.

The broker's PUBACK only means the broker has a message; an event is done when the consumer
confirms it (``cmd/ack``) and the outbox deletes it. So the forwarder:

* publishes committed events in seq order, in batches, while fewer than ``window`` events are
  sent but unconfirmed (a week of backlog never floods the broker's queue for the consumer);
* starts again from the oldest unconfirmed event on every (re)connect and whenever no
  confirmation arrived for ``resend_after`` seconds (a lost tail is otherwise never noticed);
* answers ``cmd/replay`` from what the outbox holds, and applies ``cmd/ack`` by deleting, but
  only seqs this process has published (or that lie in a reported dropped range, which holds no
  events): an ack claiming more, forged or buggy, never deletes an event nobody has seen. After
  a restart that clips genuine acks until the resend reaches them; they are simply sent again.

Batches are built by joining the stored wire payloads: no event is serialised twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from edge.buffer.outbox import Outbox
from edge.buffer.records import StoredEvent
from edge.config import ForwardConfig
from plantpulse.mqtt import MqttLink
from plantpulse.protocol.models import Ack, CountEvent, Replay, SeqRange
from plantpulse.protocol.ranges import Range, RangeSet

log = logging.getLogger(__name__)

_LOG_EVERY = 60.0  # seconds between two notes about clipped acks


def batch_payload(edge_id: str, epoch: str, sent_at: float, events: list[StoredEvent]) -> bytes:
    """An ``EventBatch`` message, joined from stored payloads (valid protocol v1 JSON)."""
    head = json.dumps({"v": 1, "edge_id": edge_id, "epoch": epoch, "sent_at": sent_at})
    return head[:-1].encode() + b', "events": [' + b",".join(e.payload for e in events) + b"]}"


def highest_seq(events: list[StoredEvent]) -> int:
    """The highest seq a batch stands for: its last seq, or a seq a merged count event absorbed
    (absorbed seqs lie above their event's own; only a full outbox merges, so parsing is rare)."""
    top = events[-1].seq
    for e in events:
        if e.kind == "count" and b'"absorbed"' in e.payload:
            event = e.event()
            if isinstance(event, CountEvent) and event.absorbed:
                top = max(top, *event.absorbed)
    return top


class Forwarder:
    """Publishes the outbox's events and handles the consumer's confirmations and replay requests."""

    def __init__(
        self,
        cfg: ForwardConfig,
        outbox: Outbox,
        link: MqttLink,
        *,
        edge_id: str,
        events_topic: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.link = link
        self.edge_id = edge_id
        self.events_topic = events_topic
        self.clock = clock
        self.sent_upto = 0
        self.published_batches = 0
        self.published_events = 0
        self.resends = 0
        self.replayed_events = 0
        self.max_sent = 0  # highest seq this process has published, absorbed ones included (one epoch)
        self.clipped_acks = 0
        self._clip_logged = -_LOG_EVERY
        self._progress = asyncio.Event()
        self._last_progress = time.monotonic()
        self.looped_at = time.monotonic()  # the send loop's last turn: the gateway's watchdog reads it
        self._confirmed = outbox.stats().confirmed_seq
        self._commands: asyncio.Queue[Ack | Replay] = asyncio.Queue()

    # ----------------------------------------------------------------- commands from the consumer
    def command(self, cmd: Ack | Replay) -> None:
        """Queue a validated ``cmd/ack`` or ``cmd/replay`` (called from the MQTT message callback)."""
        self._commands.put_nowait(cmd)
        self._progress.set()

    def kick(self) -> None:
        """Something changed (connection, new events): re-check what to send now."""
        self._progress.set()

    async def run_commands(self) -> None:
        while True:
            cmd = await self._commands.get()
            if cmd.epoch != self.outbox.epoch:
                log.info("ignoring %s for epoch %s (ours is %s)", type(cmd).__name__, cmd.epoch, self.outbox.epoch)
                continue
            if isinstance(cmd, Ack):
                await self.outbox.confirm(self._confirmable(cmd.applied))
                confirmed = self.outbox.stats().confirmed_seq
                if confirmed > self._confirmed:
                    self._confirmed = confirmed
                    self._last_progress = time.monotonic()
                self._progress.set()
            else:
                await self._replay(cmd)

    def _confirmable(self, applied: list[SeqRange]) -> list[Range]:
        """The part of an ack that may delete: seqs up to ``max_sent``, and reported dropped ranges."""
        allowed = RangeSet([(d.first, d.last) for d in self.outbox.dropped if d.epoch == self.outbox.epoch])
        if self.max_sent:
            allowed.add(1, self.max_sent)
        out = [(max(r.first, a), min(r.last, b)) for r in applied for a, b in allowed
               if max(r.first, a) <= min(r.last, b)]
        # allowed ranges are disjoint, so an applied range is kept whole iff its pieces add up to it
        if sum(b - a + 1 for a, b in out) < sum(r.last - r.first + 1 for r in applied):
            self.clipped_acks += 1
            if time.monotonic() - self._clip_logged >= _LOG_EVERY:
                self._clip_logged = time.monotonic()
                log.info("an ack covers seqs this gateway has not sent since it started (highest sent: %d): "
                         "they stay until sent and confirmed (%d such acks so far)", self.max_sent, self.clipped_acks)
        return out

    async def _replay(self, cmd: Replay) -> None:
        events = await self.outbox.get_range(cmd.first, cmd.last)
        for i in range(0, len(events), self.cfg.batch_max):
            if not self.link.connected:
                return
            chunk = events[i : i + self.cfg.batch_max]
            self.link.publish(self.events_topic, batch_payload(self.edge_id, self.outbox.epoch, self.clock(), chunk))
            self.replayed_events += len(chunk)
            self.max_sent = max(self.max_sent, highest_seq(chunk))

    # ----------------------------------------------------------------- sending
    async def run(self) -> None:
        while True:
            await self.link.wait_connected()
            generation = self.link.generation
            self._restart_from_oldest("connected")
            while self.link.connected and self.link.generation == generation:
                await self._send_some()

    def _restart_from_oldest(self, why: str) -> None:
        stats = self.outbox.stats()
        if stats.latest_seq > stats.confirmed_seq:
            log.info("sending from seq %d (%s)", stats.confirmed_seq + 1, why)
        self.sent_upto = stats.confirmed_seq
        self._last_progress = time.monotonic()

    async def _send_some(self) -> None:
        self.looped_at = time.monotonic()
        stats = self.outbox.stats()
        unconfirmed = self.sent_upto - stats.confirmed_seq
        if unconfirmed > 0 and time.monotonic() - self._last_progress > self.cfg.resend_after:
            self.resends += 1
            self._restart_from_oldest(f"no confirmation for {self.cfg.resend_after:g} s")
            unconfirmed = 0
        room = self.cfg.window - unconfirmed
        if room > 0:
            batch = await self.outbox.next_batch(self.sent_upto, min(self.cfg.batch_max, room))
            if batch:
                self.link.publish(
                    self.events_topic, batch_payload(self.edge_id, self.outbox.epoch, self.clock(), batch)
                )
                self.sent_upto = batch[-1].seq
                self.max_sent = max(self.max_sent, highest_seq(batch))
                self.published_batches += 1
                self.published_events += len(batch)
                return
        # nothing to send now: wait for new events, a confirmation, a reconnect, or the resend timer
        self._progress.clear()
        waiter = asyncio.ensure_future(self.outbox.wait_for_new(self.sent_upto)) if room > 0 else None
        progress = asyncio.ensure_future(self._progress.wait())
        timeout = max(0.05, self.cfg.resend_after - (time.monotonic() - self._last_progress)) if unconfirmed else 1.0
        waiting = {progress} | ({waiter} if waiter else set())
        try:
            await asyncio.wait(waiting, timeout=min(timeout, 1.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in waiting:
                fut.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fut

    async def drain(self, seconds: float) -> bool:
        """At shutdown: wait until everything committed was published (not confirmed); True if so."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.link.connected or self.sent_upto >= self.outbox.stats().latest_seq:
                break
            await asyncio.sleep(0.02)
        return self.sent_upto >= self.outbox.stats().latest_seq
