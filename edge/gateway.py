"""``edge run``: collection and store-and-forward in one process a systemd unit can supervise.

One task group owns every background task (collection, forwarding, commands, health,
snapshots); a failing task ends the gateway with its traceback instead of dying silently.
SIGTERM/SIGINT stop it in order: collection first (each tracker flushes its counted parts into
the outbox), then the forwarder publishes what the outbox holds (bounded), then an offline
status replaces the retained birth and the MQTT connection closes cleanly (no Will).

Under systemd (``Type=notify``, docs/deployment.md) the gateway says READY=1 once its tasks run,
feeds ``WatchdogSec=`` from the alive loop only while collection and forwarding turn
(edge/liveness.py), and says STOPPING=1 when it begins to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from edge.buffer.outbox import Outbox
from edge.commands import CommandGate
from edge.config import EdgeConfig
from edge.forwarder import Forwarder
from edge.liveness import STALL_AFTER, Beats, stalls
from edge.metrics import MetricsServer
from edge.pipeline import Collection
from plantpulse import __version__
from plantpulse.mqtt import MqttLink
from plantpulse.protocol import topics
from plantpulse.protocol.models import Health, Snapshot, Status
from plantpulse.protocol.signing import read_secret
from plantpulse.sdnotify import Notifier

log = logging.getLogger(__name__)

_SHUTDOWN_DRAIN = 5.0  # seconds to publish what is committed before exiting


class BirthCounter:
    """The number of MQTT connections ever made by this gateway, kept in a file across restarts.

    A connection's Last Will carries the counter of that connection; a consumer ignores a Will
    older than the latest birth it has seen, so a stale Will never marks a reconnected gateway
    offline. The counter never falls below the wall clock in milliseconds: a replaced disk (a
    new, empty file) must not start it again at 1, or every later birth would look stale.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        try:
            self.value = int(path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            self.value = 0

    def next(self) -> int:
        self.value = max(self.value + 1, int(self.clock() * 1000))
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            fh.write(str(self.value))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        return self.value


class AliveMark:
    """When this gateway last ran, in a file rewritten every second (no fsync: a second's error is fine).

    At start the previous run's mark tells from when the machines went unobserved.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.previous: float | None = float(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            self.previous = None

    def touch(self, now: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(now))
        tmp.replace(self.path)


class Gateway:
    def __init__(self, cfg: EdgeConfig, *, config_hash: str, clock: Callable[[], float] = time.time,
                 notifier: Notifier | None = None, stall_after: float = STALL_AFTER) -> None:
        """``notifier``: the service manager to tell about readiness and liveness (default: from the
        environment, i.e. systemd's ``NOTIFY_SOCKET``; nothing is sent without one). ``stall_after``:
        seconds a loop may stand still before the watchdog is no longer fed."""
        self.cfg = cfg
        self.notifier = Notifier() if notifier is None else notifier
        self.stall_after = stall_after
        self._stalled: list[str] = []
        self.config_hash = config_hash
        self.clock = clock
        assert cfg.data_dir is not None, "load_edge_config fills data_dir in"
        self.data_dir = cfg.data_dir
        self.birth = BirthCounter(self.data_dir / "birth", clock)
        secret_file = cfg.commands.secret_file
        self.commands = CommandGate(
            cfg.site, cfg.edge_id, clock=clock, max_age=cfg.commands.max_age,
            secret=read_secret(secret_file, "commands.secret_file") if secret_file is not None else None,
        )
        self._outbox: Outbox | None = None
        self._link: MqttLink | None = None
        self._forwarder: Forwarder | None = None
        self._collection: Collection | None = None

    def topic(self, channel: topics.GatewayChannel | topics.CommandChannel) -> str:
        return topics.gateway_topic(self.cfg.site, self.cfg.edge_id, channel)

    # ----------------------------------------------------------------- messages
    def _status(self, online: bool) -> bytes:
        assert self._outbox is not None
        stats = self._outbox.stats()
        status = Status(
            edge_id=self.cfg.edge_id, online=online, birth=self.birth.value, ts=self.clock(),
            version=__version__, config_hash=self.config_hash,
            machines=[m.id for m in self.cfg.machines], epoch=self._outbox.epoch,
            oldest_seq=stats.oldest_seq, latest_seq=stats.latest_seq, dropped=stats.dropped,
        )
        return status.model_dump_json(exclude_none=True).encode()

    def _will(self) -> tuple[str, bytes]:
        """Called before every connection attempt (paho's thread): a new birth number per connection."""
        self.birth.next()
        will = Status(edge_id=self.cfg.edge_id, online=False, birth=self.birth.value, ts=self.clock())
        return self.topic("status"), will.model_dump_json(exclude_none=True).encode()

    async def _on_connected(self) -> None:
        assert self._link is not None and self._forwarder is not None
        await self._link.publish(self.topic("status"), self._status(online=True), retain=True)
        self._forwarder.kick()

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        assert self._forwarder is not None
        cmd = self.commands.parse(topic, payload)  # None: refused, counted and logged there
        if cmd is not None:
            self._forwarder.command(cmd)

    @property
    def broker_connected(self) -> bool:
        return self._link is not None and self._link.connected

    def health(self) -> Health:
        assert self._outbox is not None and self._collection is not None
        stats = self._outbox.stats()
        now = self.clock()
        return Health(
            edge_id=self.cfg.edge_id, ts=now, epoch=self._outbox.epoch,
            buffer_events=stats.events, buffer_bytes=stats.bytes,
            oldest_unconfirmed_age=(now - stats.oldest_ts) if stats.oldest_ts is not None else None,
            oldest_seq=stats.oldest_seq, latest_seq=stats.latest_seq, confirmed_seq=stats.confirmed_seq,
            coalesced_total=stats.coalesced_total, dropped_total=stats.dropped_total, dropped=stats.dropped,
            machines=self._collection.health(),
        )

    async def _health_loop(self) -> None:
        assert self._link is not None and self._collection is not None
        while True:
            await asyncio.sleep(self.cfg.health.interval)
            if self._link.connected:
                self._link.publish(self.topic("health"), self.health().model_dump_json(exclude_none=True).encode())

    async def _snapshot_loop(self) -> None:
        assert self._link is not None and self._collection is not None
        while True:
            await asyncio.sleep(self.cfg.health.snapshot_interval)
            if self._link.connected:
                snap = Snapshot(edge_id=self.cfg.edge_id, ts=self.clock(), machines=self._collection.snapshot())
                self._link.publish(self.topic("snapshot"), snap.model_dump_json(exclude_none=True).encode(), qos=0)

    async def _alive_loop(self, alive: AliveMark) -> None:
        interval = min(1.0, self.notifier.watchdog_interval() or 1.0)
        self.notifier.ready(f"collecting {len(self.cfg.machines)} machines")
        while True:
            await asyncio.to_thread(alive.touch, self.clock())  # a small write, off the event loop
            self._feed_watchdog()
            await asyncio.sleep(interval)

    def stalls(self) -> list[str]:
        """Why the gateway is stuck now (empty when collection and forwarding turn: edge/liveness.py)."""
        assert self._collection is not None and self._forwarder is not None and self._link is not None
        beats = Beats(self._collection.ticked_at, self._forwarder.looped_at, self._link.connected)
        return stalls(time.monotonic(), beats, self.stall_after)

    def _feed_watchdog(self) -> None:
        """WATCHDOG=1 while healthy; a stall is logged once when it starts and once when it ends."""
        reasons = self.stalls()
        if reasons and not self._stalled:
            log.error("edge %s is stuck (%s): the watchdog is no longer fed, systemd will restart it",
                      self.cfg.edge_id, "; ".join(reasons))
        elif self._stalled and not reasons:
            log.warning("edge %s turns again: feeding the watchdog", self.cfg.edge_id)
        self._stalled = reasons
        if not reasons:
            self.notifier.watchdog()

    # ----------------------------------------------------------------- run
    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order (see the module docstring)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        outbox = self._outbox = await Outbox.open(
            self.data_dir / "outbox.sqlite",
            max_events=self.cfg.buffer.max_events, max_bytes=self.cfg.buffer.max_bytes, clock=self.clock,
        )
        link = self._link = MqttLink(
            self.cfg.mqtt, f"plantpulse-edge-{self.cfg.site}-{self.cfg.edge_id}",
            subscriptions=[(self.topic("cmd/ack"), 1), (self.topic("cmd/replay"), 1)],
        )
        link.will = self._will
        link.on_connected = self._on_connected
        link.on_message = self._on_message
        forwarder = self._forwarder = Forwarder(
            self.cfg.forward, outbox, link, edge_id=self.cfg.edge_id, events_topic=self.topic("events"),
            clock=self.clock,
        )
        link.on_disconnected = forwarder.kick
        alive = AliveMark(self.data_dir / "alive")
        collection = self._collection = Collection(self.cfg, outbox, clock=self.clock, stopped_since=alive.previous)
        metrics = MetricsServer(self) if self.cfg.health.metrics_port is not None else None
        log.info("edge %s/%s starting: epoch %s, %d machines, outbox %s, %s commands", self.cfg.site,
                 self.cfg.edge_id, outbox.epoch, len(self.cfg.machines), self.data_dir / "outbox.sqlite",
                 "signed" if self.commands.signed else "unsigned")
        link.start()
        if metrics is not None:
            metrics.start(self.cfg.health.metrics_host, self.cfg.health.metrics_port or 0)
        try:
            async with asyncio.TaskGroup() as tg:
                collecting = tg.create_task(collection.run(), name="collection")
                sending = [
                    tg.create_task(forwarder.run(), name="forwarder"),
                    tg.create_task(forwarder.run_commands(), name="commands"),
                    tg.create_task(self._health_loop(), name="health"),
                    tg.create_task(self._snapshot_loop(), name="snapshot"),
                    tg.create_task(self._alive_loop(alive), name="alive"),
                ]
                stopping = tg.create_task(stop.wait(), name="stop")
                await asyncio.wait([collecting, stopping, *sending], return_when=asyncio.FIRST_COMPLETED)
                self.notifier.stopping()
                log.info("edge %s stopping: flushing counted parts", self.cfg.edge_id)
                collecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collecting
                if not await forwarder.drain(_SHUTDOWN_DRAIN):
                    log.info("edge %s: %d events stay in the outbox for the next start", self.cfg.edge_id,
                             outbox.stats().latest_seq - forwarder.sent_upto)
                for task in sending:
                    task.cancel()
                stopping.cancel()
        finally:
            alive.touch(self.clock())
            await self._say_offline()
            await link.stop()
            if metrics is not None:
                metrics.stop()
            await outbox.close()
        log.info("edge %s stopped", self.cfg.edge_id)

    async def _say_offline(self) -> None:
        """Replace the retained birth with an offline status (a clean disconnect sends no Will)."""
        assert self._link is not None
        if not self._link.connected:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._link.publish(self.topic("status"), self._status(online=False), retain=True), 2.0
            )
