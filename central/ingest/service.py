"""The ingest service: MQTT in (persistent session, manual acknowledgement), rounds, confirmations out.

paho hands every message to the event loop; a round takes what has arrived (up to
``batch_max_messages``), applies it (``Applier``), commits it in one transaction, and only then
acknowledges the messages to the broker (MQTT v5 manual ack), confirms the applied seqs to the
gateways (``cmd/ack``, batched every ``ack_interval``) and tells the listeners (stream, time
series, alerts). The broker redelivers what was not acknowledged, the gateways resend what was
not confirmed: a crash at any point loses nothing and counts nothing twice.

No message can stop ingest: a round that raises anywhere (validating, applying, evaluating or
committing) is rolled back, the live state is reloaded from the store, and the round's messages
are applied again one by one; the one that fails alone is dead-lettered with the error and
acknowledged, the others are applied. Only a store that refuses even a dead letter, or whose
file disappeared or became read-only (checked every second), ends ingest: ``StoreUnusableError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from central.ingest.applier import Applier, Round
from central.ingest.catchup import CatchUpLog
from central.ingest.commands import CommandSigner
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.ingest.load import RoundLoad
from central.ingest.messages import MAX_REASON, Incoming
from central.progress.clock import ClockRule
from central.store.base import FencedError, Loaded, Retention, Store, StoreUnusableError
from central.store.records import DeadLetter
from plantpulse.mqtt import MqttConfig, MqttLink
from plantpulse.protocol import topics
from plantpulse.protocol.models import Ack, Replay, SeqRange

log = logging.getLogger(__name__)

Listener = Callable[[Round], None]
_TICK = 1.0


class RoundHook(Protocol):
    """Runs inside every round, before its commit (the alert engine): its changes join the transaction."""

    def on_round(self, rnd: Round, live: LiveState, now: float, *, complete: bool) -> None: ...

    async def reload(self) -> None:
        """Forget uncommitted changes: a round failed and the live state is reloaded from the store."""


class OrdersHook(Protocol):
    """Attribution of counts to work-order operations (central/orders/attribution.py): inside every round,
    before its commit, with ``lock`` held from before the round to after its commit."""

    lock: asyncio.Lock

    async def on_round(self, rnd: Round, now: float) -> None: ...

    async def reload(self) -> None: ...

    def committed(self, rnd: Round) -> None: ...


_PURGE_EVERY = 3600.0


class IngestService:
    def __init__(
        self,
        cfg: IngestConfig,
        mqtt: MqttConfig,
        store: Store,
        live: LiveState,
        *,
        site: str,
        rule: ClockRule,
        retention: Retention,
        clock: Callable[[], float] = time.time,
        hook: RoundHook | None = None,
        listeners: Sequence[Listener] = (),
        signer: CommandSigner | None = None,
        orders: OrdersHook | None = None,
    ) -> None:
        """Call inside the event loop (the MQTT link binds to it); ``start`` restores and connects.

        ``site`` is the one site this central serves (``CentralConfig.site``): only its topics are
        subscribed, and a message of another site is set aside, never applied."""
        self.cfg = cfg
        self.site = site
        self.signer = signer  # signs cmd/ack and cmd/replay for gateways with a key
        self.store = store
        self.rule = rule
        self.retention = retention
        self.clock = clock
        self.live = live
        self.applier = Applier(live=live, rule=rule, lookup=store.intervals_from, site=site)
        self.listeners: list[Listener] = list(listeners)
        self.hook = hook
        self.orders = orders
        self._queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.load = RoundLoad()  # share of time in rounds: background work holds back while it is high
        self._round_since: float | None = None  # when the round under way began
        self._committing: asyncio.Future[None] | None = None  # the last round's commit (shielded)
        self.purges = True  # retention runs here (scaled out: in the leading API replica, once for all)
        self._confirm: set[tuple[str, str]] = set()
        self._catchup = CatchUpLog()  # progress lines while a gateway's backlog drains
        # settled ranges as last committed, per (edge, epoch): confirmations come only from here,
        # never from the sequencer's memory, which runs ahead of the store during a commit
        self._committed: dict[tuple[str, str], list[tuple[int, int]]] = {}
        subs = [(t, 1) for t in self._subscriptions()]
        self.link = MqttLink(mqtt, cfg.client_id, clean_start=False, subscriptions=subs, manual_ack=True,
                             on_message=self._on_message)

    def _subscriptions(self) -> list[str]:
        """The topics subscribed at every connection (a worker subscribes per gateway besides)."""
        return topics.subscriptions(self.site)

    async def _load(self) -> Loaded:
        """The live state to restore from the store (a worker keeps only its gateways')."""
        return await self.store.load()

    async def _between_rounds(self) -> None:
        """Called before every round (a worker hands gateways over and takes them here)."""

    async def _fenced(self, exc: FencedError, batch: list[Incoming]) -> None:
        """A commit was refused because another worker took a gateway over (only ever with leases)."""
        raise exc

    @property
    def connected(self) -> bool:
        return self.link.connected

    async def start(self) -> None:
        """Restore the live state from the store, then connect (messages wait in the broker until then)."""
        loaded = await self._load()
        self.live.restore(loaded)
        self._committed = {(row.edge_id, row.epoch): list(row.settled) for row in loaded.epochs}
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    async def settle(self) -> None:
        """Wait for a commit a shutdown's cancellation left running (shielded), so the store is not closed
        under it; its round is not acknowledged, so the broker sends it again either way."""
        committing = self._committing
        if committing is not None and not committing.done():
            with contextlib.suppress(Exception):
                await committing

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        # Bounded by the broker: with manual acknowledgement it sends at most its inflight limit
        # (mosquitto's max_inflight_messages) of unacknowledged QoS 1 messages.
        self._queue.put_nowait(Incoming(topic, payload, mid, qos, self.clock(), self.link.generation))

    @property
    def saturated(self) -> bool:
        """Ingest runs flat out (a backlog drains; or a round has been running for over half a second, as
        the first round of a backlog does, where a live one takes milliseconds): background work should
        hold back."""
        since = self._round_since
        return self.load.flat_out or (since is not None and time.monotonic() - since > 0.5)

    # ----------------------------------------------------------------- rounds
    async def run(self) -> None:
        """Apply rounds forever; run next to ``confirm_loop`` in the same task group."""
        next_tick = time.monotonic() + _TICK
        next_purge = time.monotonic() + 60.0
        while True:
            await self._between_rounds()
            timeout = max(0.0, next_tick - time.monotonic())
            waiting = time.monotonic()
            batch: list[Incoming] = []
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can lose a cancellation (3.11)
                async with asyncio.timeout(timeout):
                    batch.append(await self._queue.get())
            while batch and len(batch) < self.cfg.batch_max_messages and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            tick = time.monotonic() >= next_tick
            if tick:
                next_tick = time.monotonic() + _TICK
                problem = self.store.problem()
                if problem is not None:  # nothing is acknowledged any more: the broker keeps it all
                    raise StoreUnusableError(problem)
            started = self._round_since = time.monotonic()
            try:
                await self._round(batch, tick)
            finally:
                self._round_since = None
            self.load.add(time.monotonic() - started, started - waiting)
            if self.purges and time.monotonic() >= next_purge:
                next_purge = time.monotonic() + _PURGE_EVERY
                deleted = await self.store.purge(self.clock(), self.retention)
                self.live.counters.purged += sum(deleted.values())
                if any(deleted.values()):
                    log.info("retention: deleted %s", deleted)

    async def _round(self, batch: list[Incoming], tick: bool) -> None:
        if self.orders is None:
            await self._round_locked(batch, tick)
            return
        async with self.orders.lock:  # people's order changes wait for the round's commit (and vice versa)
            await self._round_locked(batch, tick)

    async def _round_locked(self, batch: list[Incoming], tick: bool) -> None:
        try:
            rnd = self._new_round()
            if batch:
                rnd = await self.applier.messages(batch, rnd)
            if tick:
                rnd = await self.applier.tick(self.clock(), rnd)
            if self.orders is not None:
                await self.orders.on_round(rnd, self.clock())
            self._evaluate(rnd, complete=tick)
            await self._commit(rnd)
        except StoreUnusableError:
            raise
        except FencedError as exc:
            await self._fenced(exc, batch)
            return
        except Exception:
            self.live.counters.failed_rounds += 1
            log.exception("an ingest round of %d messages failed: applying them again one by one", len(batch))
            await self._reload()
            try:
                for msg in batch:
                    await self._alone(msg)
            except FencedError as exc:
                await self._fenced(exc, batch)
            return
        self._after_commit(rnd)

    def _new_round(self) -> Round:
        return Round()

    async def _alone(self, msg: Incoming) -> None:
        """Apply one message in its own round; if it fails, dead-letter it (and acknowledge it)."""
        try:
            rnd = await self.applier.messages([msg], self._new_round())
            if self.orders is not None:
                await self.orders.on_round(rnd, self.clock())
            self._evaluate(rnd, complete=False)
            await self._commit(rnd)
        except (StoreUnusableError, FencedError):
            raise
        except Exception as exc:
            log.exception("central failed on a message of %s: dead-lettered", msg.topic)
            await self._reload()
            reason = f"central failed on this message ({type(exc).__name__}: {exc}); it was set aside"
            try:
                rnd = self.applier.set_aside(msg, reason)
                await self._commit(rnd)
            except Exception:
                log.exception("setting the message aside failed too: storing it as a plain dead letter")
                await self._reload()
                rnd = Round()
                rnd.acks.append((msg.mid, msg.qos, msg.generation))
                rnd.tx.dead_letters.append(DeadLetter(msg.received_at, msg.topic, msg.payload, reason[:MAX_REASON]))
                self.live.counters.dead_letters += 1
                try:
                    await self._commit(rnd)
                except Exception as store_exc:
                    raise StoreUnusableError(f"the store refuses even a dead letter: {store_exc}") from store_exc
        self._after_commit(rnd)

    def _evaluate(self, rnd: Round, *, complete: bool) -> None:
        if self.hook is None:
            return
        try:
            self.hook.on_round(rnd, self.live, self.clock(), complete=complete)
        except Exception:  # alert evaluation must never block ingest: the data goes in anyway
            self.live.counters.hook_errors += 1
            log.exception("alert evaluation failed for this round (ingest goes on)")

    async def _reload(self) -> None:
        """Back to the last commit: live state, sequencers and the hook's memory, from the store."""
        loaded = await self._load()
        self.live.reload(loaded)
        self.applier.reset()
        self._committed = {(row.edge_id, row.epoch): list(row.settled) for row in loaded.epochs}
        if self.hook is not None:
            await self.hook.reload()
        if self.orders is not None:
            await self.orders.reload()

    async def _commit(self, rnd: Round) -> None:
        started = time.monotonic()
        # a cancellation (shutdown) must not abort a commit half way: let it finish or fail whole, and
        # ``settle`` lets the shutdown wait for it before the store closes
        self._committing = asyncio.ensure_future(self.store.commit(rnd.tx))
        await asyncio.shield(self._committing)
        for (edge_id, epoch), row in rnd.tx.epochs.items():
            self._committed[(edge_id, epoch)] = list(row.settled)
        self.live.counters.commit_seconds += time.monotonic() - started

    def _after_commit(self, rnd: Round) -> None:
        """Committed: acknowledge to the broker, ask for replays, tell the listeners. Never raises."""
        counters = self.live.counters
        counters.rounds += 1
        if rnd.oldest_received is not None:
            counters.last_apply_lag = self.clock() - rnd.oldest_received
        link = self.link
        for mid, qos, generation in rnd.acks:
            if generation == link.generation:  # a message id of an earlier connection means nothing now
                link.ack(mid, qos)
        for site, edge_id, req in rnd.replays:
            msg = Replay(edge_id=edge_id, epoch=req.epoch, first=req.first, last=req.last, ts=self.clock())
            topic = topics.gateway_topic(site, edge_id, "cmd/replay")
            link.publish(topic, self._signed(site, edge_id, topic, msg.model_dump_json().encode()))
        self._confirm |= rnd.confirm
        if self.orders is not None:
            self.orders.committed(rnd)
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
            self._log_catchup()

    def _log_catchup(self) -> None:
        now = self.clock()
        for edge_id, gw in self.live.gateways.items():
            seq = self.live.sequencers.get(edge_id)
            line = self._catchup.observe(edge_id, seq.progress().applied if seq is not None else None,
                                         gw.latest_seq, now)
            if line is not None:
                log.info("%s", line)

    def confirm_now(self) -> None:
        link = self.link
        if not link.connected or not self._confirm:
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
