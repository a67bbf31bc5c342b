"""The ingest service: MQTT in (persistent session, manual acknowledgement), rounds, confirmations out.

paho hands every message to the event loop; a round takes what has arrived (up to
``batch_max_messages``), applies it (``Applier``), commits it in one transaction, and only then
acknowledges the messages to the broker (MQTT v5 manual ack), confirms the applied seqs to the
gateways (``cmd/ack``, batched every ``ack_interval``) and tells the listeners (stream, time
series, alerts). The broker redelivers what was not acknowledged, the gateways resend what was
not confirmed: a crash at any point loses nothing and counts nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from central.commands import CommandSigner
from central.ingest.applier import Applier, Round
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.ingest.messages import Incoming
from central.progress.clock import ClockRule
from central.progress.machines import Catalog
from central.store.sqlite import Retention, SqliteStore
from plantpulse.mqtt import MqttConfig, MqttLink
from protocol import topics
from protocol.models import Ack, Replay, SeqRange

log = logging.getLogger(__name__)

Listener = Callable[[Round], None]
BeforeCommit = Callable[[Round, bool], None]  # (round, complete): alert evaluation
_TICK = 1.0
_PURGE_EVERY = 3600.0


class IngestService:
    def __init__(
        self,
        cfg: IngestConfig,
        mqtt: MqttConfig,
        store: SqliteStore,
        catalog: Catalog,
        *,
        rule: ClockRule,
        retention: Retention,
        clock: Callable[[], float] = time.time,
        signer: CommandSigner | None = None,
    ) -> None:
        self.cfg = cfg
        self.signer = signer  # signs cmd/ack and cmd/replay for gateways with a key
        self.mqtt = mqtt
        self.store = store
        self.rule = rule
        self.retention = retention
        self.clock = clock
        self.live = LiveState(cfg, catalog)
        self.applier = Applier(live=self.live, rule=rule, lookup=store.intervals_from)
        self.listeners: list[Listener] = []
        self.before_commit: BeforeCommit | None = None
        self._queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self._confirm: set[tuple[str, str]] = set()
        # settled ranges as last committed, per (edge, epoch): confirmations come only from here,
        # never from the sequencer's memory, which runs ahead of the store during a commit
        self._committed: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._link: MqttLink | None = None
        self.ready = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    @property
    def link(self) -> MqttLink | None:
        return self._link

    async def start(self) -> None:
        """Restore the live state from the store, then connect (messages wait in the broker until then)."""
        loaded = await self.store.load()
        self.live.restore(loaded)
        self._committed = {(row.edge_id, row.epoch): list(row.settled) for row in loaded.epochs}
        subs = [(t, 1) for site in self.cfg.sites for t in topics.subscriptions(site)]
        link = self._link = MqttLink(self.mqtt, self.cfg.client_id, clean_start=False, subscriptions=subs,
                                     manual_ack=True)
        link.on_message = self._on_message
        link.start()
        self.ready.set()

    async def stop(self) -> None:
        if self._link is not None:
            await self._link.stop()
            self._link = None

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        # Bounded by the broker: with manual acknowledgement it sends at most its inflight limit
        # (mosquitto's max_inflight_messages) of unacknowledged QoS 1 messages.
        generation = self._link.generation if self._link is not None else 0
        self._queue.put_nowait(Incoming(topic, payload, mid, qos, self.clock(), generation))

    # ----------------------------------------------------------------- rounds
    async def run(self) -> None:
        """Apply rounds forever; run next to ``confirm_loop`` in the same task group."""
        next_tick = time.monotonic() + _TICK
        next_purge = time.monotonic() + 60.0
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            batch: list[Incoming] = []
            with contextlib.suppress(TimeoutError):
                batch.append(await asyncio.wait_for(self._queue.get(), timeout))
            while batch and len(batch) < self.cfg.batch_max_messages and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            rnd = Round()
            if batch:
                rnd = await self.applier.messages(batch, rnd)
            tick = time.monotonic() >= next_tick
            if tick:
                next_tick = time.monotonic() + _TICK
                rnd = await self.applier.tick(self.clock(), rnd)
            if self.before_commit is not None:
                try:
                    self.before_commit(rnd, tick)
                except Exception:  # alert evaluation must never block ingest: the data goes in anyway
                    self.live.counters.hook_errors += 1
                    log.exception("alert evaluation failed for this round (ingest goes on)")
            await self._finish(rnd)
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + _PURGE_EVERY
                deleted = await self.store.purge(self.clock(), self.retention)
                self.live.counters.purged += sum(deleted.values())
                if any(deleted.values()):
                    log.info("retention: deleted %s", deleted)

    async def _finish(self, rnd: Round) -> None:
        started = time.monotonic()
        # a cancellation (shutdown) must not abort a commit half way: let it finish or fail whole
        await asyncio.shield(self.store.commit(rnd.tx))
        for (edge_id, epoch), row in rnd.tx.epochs.items():
            self._committed[(edge_id, epoch)] = list(row.settled)
        counters = self.live.counters
        counters.commit_seconds += time.monotonic() - started
        counters.rounds += 1
        if rnd.oldest_received is not None:
            counters.last_apply_lag = self.clock() - rnd.oldest_received
        link = self._link
        if link is not None:
            for mid, qos, generation in rnd.acks:
                if generation == link.generation:  # a message id of an earlier connection means nothing now
                    link.ack(mid, qos)
            for site, edge_id, req in rnd.replays:
                msg = Replay(edge_id=edge_id, epoch=req.epoch, first=req.first, last=req.last, ts=self.clock())
                topic = topics.gateway_topic(site, edge_id, "cmd/replay")
                link.publish(topic, self._signed(site, edge_id, topic, msg.model_dump_json().encode()))
        self._confirm |= rnd.confirm
        for listener in self.listeners:
            try:
                listener(rnd)
            except Exception:
                log.exception("an ingest listener failed (ingest goes on)")

    async def confirm_loop(self) -> None:
        """Every ``ack_interval``: tell each gateway which seqs are settled (after their commit)."""
        while True:
            await asyncio.sleep(self.cfg.ack_interval)
            self.confirm_now()

    def confirm_now(self) -> None:
        link = self._link
        if link is None or not link.connected or not self._confirm:
            return
        pending, self._confirm = self._confirm, set()
        for edge_id, epoch in pending:
            ranges = self._committed.get((edge_id, epoch))
            gw = self.live.gateways.get(edge_id)
            if not ranges or gw is None:
                continue
            ack = Ack(edge_id=edge_id, epoch=epoch, ts=self.clock(),
                      applied=[SeqRange(first=a, last=b) for a, b in ranges])
            topic = topics.gateway_topic(gw.site, edge_id, "cmd/ack")
            link.publish(topic, self._signed(gw.site, edge_id, topic, ack.model_dump_json().encode()))

    def _signed(self, site: str, edge_id: str, topic: str, payload: bytes) -> bytes:
        """A command as sent: signed when signing is configured (docs/protocol.md, "Signed commands")."""
        return payload if self.signer is None else self.signer.sign(site, edge_id, topic, payload)
