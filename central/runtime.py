"""The running central service: store, ingest and the live stream, owned by the API's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from central.alerting import AlertEngine
from central.alerts.alert import Alert
from central.alertview import alert_view
from central.commands import CommandSigner
from central.config import CentralConfig
from central.influx.writer import InfluxWriter
from central.ingest.applier import Round
from central.ingest.service import IngestService
from central.metrics import registry
from central.progress.machines import Catalog
from central.sender import Sender
from central.store.sqlite import SqliteStore
from central.stream import StreamHub
from protocol.models import StateEvent

log = logging.getLogger(__name__)


class Central:
    def __init__(self, cfg: CentralConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.catalog = Catalog(cfg.plant)
        self.started_at = clock()
        self._store: SqliteStore | None = None
        self._ingest: IngestService | None = None
        self.hub = StreamHub(clock=clock, min_interval=cfg.api.stream_min_interval)
        self._tasks: list[asyncio.Task[None]] = []
        self.failed: str | None = None
        self.on_fatal: Callable[[], None] | None = None  # the server sets it: a dead task ends the process
        self.alerts: AlertEngine | None = None
        self.sender: Sender | None = None
        self.influx: InfluxWriter | None = InfluxWriter(cfg.influx, clock=clock) if cfg.influx else None
        keys_dir = cfg.commands.keys_dir
        self.signer: CommandSigner | None = CommandSigner(keys_dir) if keys_dir is not None else None
        self.metrics: CollectorRegistry = registry(self)
        # sha256 hex of each key -> (name, role); keys from env/files are read once, at start
        self.api_keys: dict[str, tuple[str, str]] = {k.digest(): (k.name, k.role) for k in cfg.api.keys}

    @property
    def store(self) -> SqliteStore:
        assert self._store is not None, "central not started"
        return self._store

    @property
    def ingest(self) -> IngestService:
        assert self._ingest is not None, "central not started"
        return self._ingest

    async def start(self) -> None:
        self._store = await SqliteStore.open(self.cfg.store.path)
        ingest = self._ingest = IngestService(
            self.cfg.ingest, self.cfg.mqtt, self._store, self.catalog, rule=self.cfg.clock,
            retention=self.cfg.store.retention(), clock=self.clock, signer=self.signer,
        )
        ingest.listeners.append(self.hub.on_round)
        if self.influx is not None:
            await self.influx.start()
            ingest.listeners.append(self._to_influx)
        alerts = self.alerts = AlertEngine(self.cfg.alerts, self.catalog, self.cfg.notify.webhooks, self._store,
                                           clock=self.clock)
        await alerts.load()
        ingest.before_commit = lambda rnd, complete: alerts.on_round(rnd, ingest.live, self.clock(),
                                                                      complete=complete)
        ingest.listeners.append(self._after_round)
        sender = self.sender = Sender(self._store, self.cfg.notify.webhooks, tz=ZoneInfo(self.cfg.plant.timezone),
                                      lang=self.cfg.notify.lang, link=lambda: ingest.link, clock=self.clock)
        await ingest.start()
        self._tasks = [
            asyncio.create_task(self._guard(sender.run(), "sender"), name="sender"),
            asyncio.create_task(self._guard(ingest.run(), "ingest"), name="ingest"),
            asyncio.create_task(self._guard(ingest.confirm_loop(), "confirm"), name="confirm"),
        ]
        log.info("central started: store %s, broker %s:%s", self.cfg.store.path, self.cfg.mqtt.host, self.cfg.mqtt.port)

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A background task that dies is reported (healthz turns 503) instead of vanishing."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except BaseException:
            log.critical("central's %s task failed: stopping central (a supervisor restarts it from the store)",
                         name, exc_info=True)
            self.failed = name
            if self.on_fatal is not None:
                self.on_fatal()
            raise

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.hub.close()
        if self._ingest is not None:
            self._ingest.confirm_now()
            await self._ingest.stop()
        if self.influx is not None:
            await self.influx.stop()
        if self._store is not None:
            await self._store.close()
        log.info("central stopped")

    def _after_round(self, rnd: Round) -> None:
        """Committed: new notifications may be sent now; alert changes go to the live stream."""
        if rnd.tx.deliveries and self.sender is not None:
            self.sender.wake()
        self.publish_alerts(list(rnd.tx.alerts.values()))

    def publish_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.hub.publish("alert", {"alert": alert_view(alert)})

    def _to_influx(self, rnd: Round) -> None:
        """Copy the round's applied states and counts to InfluxDB (best effort; the store is the record)."""
        writer, live = self.influx, self.ingest.live
        assert writer is not None
        for item in rnd.applied:
            event = item.applied.event
            mid = event.machine_id
            line = self.catalog.machine(mid).line
            gw = live.gateways.get(item.edge_id)
            site = gw.site if gw else None
            if isinstance(event, StateEvent):
                if item.applied.late:
                    continue  # spliced into history: `central backfill` rewrites the window exactly
                writer.state(machine_id=mid, line=line, site=site, ts=item.at, state=event.state.value,
                             fault_code=event.fault_code, job=event.job)
            else:
                writer.count(machine_id=mid, line=line, site=site, start=item.start or item.at, ts=item.at,
                             good=event.good, scrap=event.scrap, job=event.job)
