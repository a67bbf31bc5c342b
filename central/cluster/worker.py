"""An ingest worker: the ingest service applied only to the gateways this worker holds the lease of.

What changes against one process (``central/ingest/service.py``):

- Subscriptions: every gateway's ``status`` (births and Wills: how new gateways become known), and
  the four channels of each owned gateway only. Messages of a gateway not owned are acknowledged
  and dropped: the gateway keeps them in its outbox until its owner confirms them.
- Ownership changes are applied between rounds, never inside one. Giving a gateway up: its queued
  messages are dropped, its confirmations sent, its topics unsubscribed, then its lease freed.
  Taking one: the live state is reloaded from the store (the previous owner's last commit), its
  topics subscribed (the retained birth arrives again), and the gateway asked at once to replay
  everything after the store's applied ranges up to the latest seq it announced.
- A commit refused by the fence (``FencedError``: the lease was taken over while this worker was
  stalled) applies nothing; the worker forgets that gateway and applies the rest of the round.
- The live state and the alerts are scoped to the owned gateways; the MQTT session is short
  (``cluster.session_expiry``): a dead worker's queue is not kept for days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg

from central.cluster.config import ClusterConfig
from central.cluster.ownership import Changes, Ownership
from central.ingest.applier import Round
from central.ingest.messages import Incoming
from central.ingest.service import IngestService
from central.store.base import FencedError, Loaded
from central.store.postgres import PEOPLE_CHANNEL
from plantpulse.protocol import topics
from plantpulse.protocol.models import MAX_REPLAY, Replay

log = logging.getLogger(__name__)


class WorkerIngest(IngestService):
    def __init__(self, *args: object, ownership: Ownership, cluster: ClusterConfig, dsn: str,
                 refresh: Callable[[], Awaitable[None]], **kwargs: object) -> None:
        """Arguments of ``IngestService``, plus this worker's leases, the cluster settings, the store's
        connection string (to listen on) and ``refresh``: re-read what people changed elsewhere."""
        self.ownership = ownership
        self.cluster = cluster
        self.dsn = dsn
        self.refresh = refresh
        self._people = False  # an alert or order changed in another process: refresh between rounds
        self._pending = Changes()
        self._announced: set[str] = set()  # gateways heard of, to register as leases
        self._registered: set[str] = set()
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.purges = False  # the leading API replica applies retention, once for every worker

    def owns(self, edge_id: str) -> bool:
        return self.ownership.owns(edge_id)

    # ----------------------------------------------------------------- MQTT
    def _subscriptions(self) -> list[str]:
        return [f"{topics.ROOT}/{self.site}/+/status"]

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        parsed = topics.parse(topic)
        if parsed is not None and not self.owns(parsed.edge_id):
            if parsed.channel == "status" and parsed.site == self.site and parsed.edge_id not in self._registered:
                self._announced.add(parsed.edge_id)
            self.link.ack(mid, qos)  # not ours: its owner gets it (or asks the gateway for it)
            return
        super()._on_message(topic, payload, mid, qos)

    # ----------------------------------------------------------------- leases
    async def lease_loop(self) -> None:
        """Every cycle: register announced gateways, renew, take and give up (applied between rounds)."""
        while True:
            try:
                for edge_id in sorted(self._announced):
                    await self.ownership.seen(edge_id)
                    self._registered.add(edge_id)
                self._announced -= self._registered
                changes = await self.ownership.cycle()
            except Exception:  # the database may come back: try again next cycle
                log.warning("lease cycle failed (leases stop being trusted at their expiry)", exc_info=True)
            else:
                p = self._pending
                p.gained.update(changes.gained)
                p.lost += changes.lost
                p.give_up += [e for e in changes.give_up if e not in p.give_up]
                self.ownership.giving_up |= set(changes.give_up)
            await asyncio.sleep(self.cluster.cycle_seconds())

    def _people_changed(self, _con: object, _pid: int, _channel: str, site: object) -> None:
        if site == self.site:  # another site's central may share the database
            self._people = True

    async def people_loop(self) -> None:
        """Listen for commits made by people (through an API replica) and the leader: flag a refresh."""
        while True:
            try:
                con = await asyncpg.connect(self.dsn)
                try:
                    await con.add_listener(PEOPLE_CHANNEL, self._people_changed)
                    self._people = True  # whatever happened while not listening
                    while not con.is_closed():
                        await asyncio.sleep(self.cluster.cycle_seconds())
                        await con.fetchval("SELECT 1")
                finally:
                    with contextlib.suppress(Exception):
                        await con.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listening for people's changes failed (%s): listening again", exc)
                await asyncio.sleep(self.cluster.cycle_seconds())

    async def _between_rounds(self) -> None:
        if self._people:
            self._people = False
            await self.refresh()
        changes, self._pending = self._pending, Changes()
        if not changes:
            return
        gone = sorted(set(changes.lost) | set(changes.give_up))
        if gone:
            self._drop(gone)
            self.confirm_now()
            if changes.give_up:
                await self.ownership.give_up(changes.give_up)
            log.info("gave up %d gateways (%s), lost %d", len(changes.give_up), ", ".join(changes.give_up),
                     len(changes.lost))
        await self._reload()
        for edge_id in sorted(changes.gained):
            if self.owns(edge_id):
                self.link.subscribe([topics.gateway_topic(self.site, edge_id, ch) for ch in topics.GATEWAY_CHANNELS])
                self._ask_replay(edge_id)
        if changes.gained:
            log.info("took %d gateways (%s)", len(changes.gained), ", ".join(sorted(changes.gained)))

    def _drop(self, edges: list[str]) -> None:
        """Forget gateways: unsubscribe, acknowledge and drop their queued messages."""
        gone = set(edges)
        for edge_id in edges:
            self.link.unsubscribe([topics.gateway_topic(self.site, edge_id, ch) for ch in topics.GATEWAY_CHANNELS])
        kept: list[Incoming] = []
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            parsed = topics.parse(msg.topic)
            if parsed is not None and parsed.edge_id in gone:
                self.link.ack(msg.mid, msg.qos)
            else:
                kept.append(msg)
        for msg in kept:
            self._queue.put_nowait(msg)

    def _ask_replay(self, edge_id: str) -> None:
        """Taken over: confirm what the store holds and ask for everything after it, at once."""
        gw = self.live.gateways.get(edge_id)
        seq = self.live.sequencers.get(edge_id)
        if gw is None or seq is None or seq.current is None:
            return  # never applied anything: the gateway's birth (retained) starts it
        settled = seq.epochs[seq.current].settled
        applied = max((b for _, b in settled), default=0)
        self._confirm.add((edge_id, seq.current))
        if gw.latest_seq is not None and gw.latest_seq > applied:
            last = min(gw.latest_seq, applied + MAX_REPLAY)  # the rest is asked for as it comes
            msg = Replay(edge_id=edge_id, epoch=seq.current, first=applied + 1, last=last, ts=self.clock())
            topic = topics.gateway_topic(self.site, edge_id, "cmd/replay")
            self.link.publish(topic, self._signed(self.site, edge_id, topic, msg.model_dump_json().encode()))
            self.live.counters.replays_asked += 1

    async def _load(self) -> Loaded:
        loaded = await self.store.load()
        return replace(loaded, epochs=[r for r in loaded.epochs if self.owns(r.edge_id)],
                       gateways={e: g for e, g in loaded.gateways.items() if self.owns(e)})

    def _new_round(self) -> Round:
        """A round fenced by the tokens held as it begins: a lease lost and taken again (a new token) while
        the round ran makes it fail, as it was computed on what the store held before the other owner's commits."""
        rnd = Round()
        rnd.tx.tokens = dict(self.ownership.tokens)
        return rnd

    async def _fenced(self, exc: FencedError, batch: list[Incoming]) -> None:
        log.warning("%s: applying the rest of the round without them", exc)
        for edge_id in exc.edge_ids:
            self.ownership.tokens.pop(edge_id, None)
        self._drop(exc.edge_ids)
        await self._reload()
        keep: list[Incoming] = []
        for msg in batch:
            parsed = topics.parse(msg.topic)
            if parsed is not None and not self.owns(parsed.edge_id):
                self.link.ack(msg.mid, msg.qos)
            else:
                keep.append(msg)
        if keep:
            await self._round(keep, False)

    async def leave(self) -> None:
        """A clean stop: commit nothing more, confirm, hand every lease back, unsubscribe."""
        self.confirm_now()
        with contextlib.suppress(Exception):
            await self.ownership.leave()

