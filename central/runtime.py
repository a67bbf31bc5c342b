"""Central's parts, wired once, in their constructors: the composition root of the service.

``Central.running(cfg)`` opens the store, builds every part with what it needs, starts the
background tasks (ingest rounds, confirmations, notification sender) and stops them in order on
exit. The HTTP server only serves it: the CLI runs the two side by side, and ends the server when
a background task fails (``wait_failed``).

The path of a fault: the ingest applies the event (central/ingest), the alert engine evaluates the
round before its commit and writes the alert and its notification rows into the same transaction
(central/alerts/engine.py), the sender delivers the rows (central/alerts/sender.py); the stream hub
and the InfluxDB feed are told after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from central.alerts.engine import AlertEngine
from central.alerts.sender import Sender
from central.api.hub import StreamHub
from central.api.views import LiveViews
from central.cluster.follower import Follower
from central.cluster.leader import Leader
from central.cluster.ownership import Ownership
from central.cluster.worker import WorkerIngest
from central.config import CentralConfig
from central.influx.feed import InfluxFeed
from central.influx.oee_feed import OeeFeed
from central.influx.writer import InfluxWriter
from central.ingest.applier import Round
from central.ingest.commands import CommandSigner
from central.ingest.live import LiveState
from central.ingest.service import IngestService, Listener
from central.metrics import registry
from central.orders.answers import OrderAnswers
from central.orders.attribution import Attribution
from central.orders.book import OrderBook
from central.orders.projector import Projector
from central.orders.reporting import FloorWrites
from central.orders.summary import Summary, order_event
from central.progress.machines import Catalog
from central.store.base import Store, StoreError, StoreUnusableError
from central.store.open import open_store
from central.store.postgres import PostgresStore
from central.store.records import Transaction
from central.summaries.task import SummaryTask
from plantpulse.tasks import cancel_all

log = logging.getLogger(__name__)

STORE_FAILURE_GRACE = 5.0  # seconds central keeps answering /healthz (503, with the reason) before it ends
# run: everything in one process; ingest: a worker owning some gateways; api: the API following the store
Role = Literal["run", "ingest", "api"]


class Central:
    def __init__(self, cfg: CentralConfig, store: Store, *, clock: Callable[[], float] = time.time,
                 role: Role = "run", ownership: Ownership | None = None) -> None:
        """Build every part (inside the event loop: the MQTT link binds to it). ``running`` is the usual entry.

        ``role`` ingest needs this worker's ``ownership`` (its leases); api and ingest need PostgreSQL."""
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.role = role
        self.started_at = clock()
        self.catalog = Catalog(cfg.plant)
        # sha256 hex of each key -> (name, role); keys from env/files are read once, at start
        self.api_keys: dict[str, tuple[str, str]] = {k.digest(): (k.name, k.role) for k in cfg.api.keys}
        self.live = LiveState(cfg.ingest, self.catalog, list_configured=role != "ingest")
        self.ownership = ownership
        owns = ownership.owns if ownership is not None else None
        self.alerts = AlertEngine(
            cfg.alerts, self.catalog, cfg.notify.webhooks, store, clock=clock,
            scope=(lambda a: _alert_in_scope(a.rule.subject_kind.value, a.subject, self.live, owns))
            if owns is not None else None,
            machine_scope=(lambda m: owns(self.live.machine_gateway.get(m, ""))) if owns is not None else None,
        )
        # work orders (issue 13): the book, the attribution of counts inside rounds, the projector beside them
        self.orders = OrderBook(store, self.catalog, clock=clock, auto_next=cfg.orders.auto_next)
        self.projector = Projector(self.orders, self.live, self.catalog, cfg.orders, self.alerts, store, clock=clock,
                                   publish=self._publish_orders, busy=lambda: self.ingest.saturated)
        self.floor = FloorWrites(self.orders)  # reports, stop reasons, imports, reassignment, repair ETAs
        self.order_answers = OrderAnswers(self.orders, self.projector)
        self.views = LiveViews(self.live, self.catalog, operation=self.projector.operation_view)
        self.hub = StreamHub(self.views, clock=clock, min_interval=cfg.api.stream_min_interval)
        self.influx = (InfluxFeed(InfluxWriter(cfg.influx, clock=clock), self.catalog, self.live)
                       if cfg.influx is not None and role != "api" else None)
        # each machine's OEE per closed hour, for Grafana (the same figures as /api/v1/oee); one process only
        self.oee_feed = (OeeFeed(self, self.influx.writer, self.influx.site)
                         if self.influx is not None and self.influx.writer.config.oee and role == "run" else None)
        listeners: list[Listener] = [self.hub.on_round, self.projector.on_round]
        if self.influx is not None:
            listeners.append(self.influx.on_round)
        listeners.append(self._wake_sender)
        keys_dir = cfg.commands.keys_dir
        signer = CommandSigner(keys_dir) if keys_dir is not None else None
        self.ingest: IngestService
        if ownership is not None:
            self.ingest = WorkerIngest(
                cfg.ingest.model_copy(update={"client_id": f"{cfg.ingest.client_id}-{ownership.owner}"}),
                cfg.mqtt.model_copy(update={"session_expiry": cfg.cluster.session_expiry}), store, self.live,
                site=cfg.site, rule=cfg.clock, retention=cfg.store.retention(), clock=clock, hook=self.alerts,
                listeners=listeners, signer=signer, orders=Attribution(self.orders), ownership=ownership,
                cluster=cfg.cluster, dsn=cfg.store.dsn(), refresh=self._refresh_people,
            )
        else:
            self.ingest = IngestService(
                cfg.ingest, cfg.mqtt, store, self.live, site=cfg.site, rule=cfg.clock, retention=cfg.store.retention(),
                clock=clock, hook=self.alerts, listeners=listeners, signer=signer, orders=Attribution(self.orders),
            )
        self.follower = (Follower(store, self.live, self.hub, interval=cfg.cluster.refresh_interval, clock=clock,
                                  reload_alerts=self.alerts.refresh, reload_orders=self.orders.load)
                         if role == "api" and isinstance(store, PostgresStore) else None)
        self.sender = Sender(store, cfg.notify.webhooks, tz=ZoneInfo(cfg.plant.timezone), lang=cfg.notify.lang,
                             link=self.ingest.link, clock=clock)
        self.summaries = SummaryTask(self, interval=cfg.notify.summary_check)
        self.metrics: CollectorRegistry = registry(self.ingest, self.sender)
        self.failed: str | None = None  # the background task that failed
        self.failure: str | None = None  # why, said on /healthz
        self._failed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, cfg: CentralConfig, *, clock: Callable[[], float] = time.time,
                      role: Role = "run") -> AsyncIterator[Central]:
        """Open the store (and a worker's leases), start everything, and stop it all in order on exit."""
        if role != "run" and cfg.store.kind != "postgresql":
            raise StoreError(f"python -m central {role} runs beside other central processes and needs a shared "
                             "store: set store.kind: postgresql (docs/scaling.md), or use python -m central run")
        ownership = (await Ownership.open(cfg.store.dsn(), cfg.site, lease_seconds=cfg.cluster.lease_seconds,
                                          moves=cfg.cluster.moves_per_cycle) if role == "ingest" else None)
        try:
            store = await open_store(cfg.store, cfg.site, fence=ownership)
            try:
                central = cls(cfg, store, clock=clock, role=role, ownership=ownership)
                await central._start()
                try:
                    yield central
                finally:
                    await central._stop()
            finally:
                await store.close()
        finally:
            if ownership is not None:
                await ownership.close()

    @property
    def broker_connected(self) -> bool:
        """An API replica has no broker link of its own: it is healthy while it follows the store."""
        return True if self.role == "api" else self.ingest.connected

    async def wait_failed(self) -> None:
        """Returns when a background task failed (``failed``/``failure`` say which and why)."""
        await self._failed.wait()

    # ----------------------------------------------------------------- lifecycle
    async def _start(self) -> None:
        await self.orders.load()
        if self.follower is not None:  # an API replica: no ingest, no sender; the store tells what changed
            self.live.restore(await self.store.load())
            await self.alerts.load()
            await self.projector.load()
            await self.summaries.load()
            leader = Leader(self.cfg.store.dsn(), self.cfg.site, self._leader_tasks)
            self._tasks = [asyncio.create_task(self._guard(self.follower.run(), "follower"), name="follower"),
                           asyncio.create_task(self._guard(leader.run(), "leader"), name="leader")]
            log.info("central API replica started: following the PostgreSQL store")
            return
        await self.alerts.load()
        if self.role == "run":
            await self.projector.load()
            await self.summaries.load()
        if self.influx is not None:
            await self.influx.writer.start()
        await self.ingest.start()
        self._tasks = [
            asyncio.create_task(self._guard(self.sender.run(), "sender"), name="sender"),
            asyncio.create_task(self._guard(self.ingest.run(), "ingest"), name="ingest"),
            asyncio.create_task(self._guard(self.ingest.confirm_loop(), "confirm"), name="confirm"),
        ]
        if self.oee_feed is not None:
            self._tasks.append(asyncio.create_task(self._guard(self.oee_feed.run(), "oee-influx"), name="oee-influx"))
        if self.role == "run":  # scaled out, these span every gateway: one API replica leads them
            self._tasks += [asyncio.create_task(self._guard(c, "projector"), name="projector")
                            for c in self._leader_tasks()]
        if isinstance(self.ingest, WorkerIngest):
            self._tasks += [asyncio.create_task(self._guard(self.ingest.lease_loop(), "leases"), name="leases"),
                            asyncio.create_task(self._guard(self.ingest.people_loop(), "people"), name="people")]
        where = self.cfg.store.path if self.cfg.store.kind == "sqlite" else "postgresql"
        log.info("central started: store %s, broker %s:%s", where, self.cfg.mqtt.host, self.cfg.mqtt.port)

    async def _refresh_people(self) -> None:
        """A worker, between rounds: alerts and orders as people (or the leader) left them in the store."""
        await self.alerts.refresh()
        await self.orders.load()

    def _leader_tasks(self) -> list[Coroutine[Any, Any, None]]:
        """What spans every gateway: the projection of orders and the shift summaries (and, scaled out,
        retention, which one process runs in ``run``'s ingest loop)."""
        return [self.projector.run(), *([self.summaries.run()] if self.cfg.notify.shift_summaries else []),
                *([self._purge_loop()] if self.role == "api" else [])]

    async def _purge_loop(self) -> None:
        """Retention, hourly, for the whole store (the leading API replica, once for every worker)."""
        while True:
            await asyncio.sleep(3600.0)
            deleted = await self.store.purge(self.clock(), self.cfg.store.retention())
            if any(deleted.values()):
                log.info("retention: deleted %s", deleted)

    async def _stop(self) -> None:
        await cancel_all(self._tasks)
        self.hub.close()
        if self.follower is not None:
            return
        await self.ingest.settle()
        self.ingest.confirm_now()
        if isinstance(self.ingest, WorkerIngest):
            await self.ingest.leave()  # hand the leases back: the others take the gateways at once
        await self.ingest.stop()
        if self.influx is not None:
            await self.influx.writer.stop()
        log.info("central stopped")

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A background task that dies is reported (healthz turns 503) instead of vanishing.

        A store that became unusable is said as such, and central stays up ``STORE_FAILURE_GRACE``
        seconds answering 503 on /healthz (with the reason) before it ends, so that a monitor sees
        why; ingest has stopped at once, so nothing more is acknowledged.
        """
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except StoreUnusableError as exc:
            log.critical("central's store is unusable: %s. Ingest stopped (nothing more is acknowledged); "
                         "central ends in %g s", exc, STORE_FAILURE_GRACE)
            self.failed, self.failure = name, f"store unusable: {exc}"
            await asyncio.sleep(STORE_FAILURE_GRACE)
            self._failed.set()
            raise
        except BaseException as exc:
            log.critical("central's %s task failed: stopping central (a supervisor restarts it from the store)",
                         name, exc_info=True)
            self.failed, self.failure = name, f"{type(exc).__name__}: {exc}"[:500]
            self._failed.set()
            raise

    def _wake_sender(self, rnd: Round) -> None:
        """Committed: new notifications may be sent now."""
        if rnd.tx.deliveries:
            self.sender.wake()

    def _publish_orders(self, changed: list[Summary], machines: set[str], tx: Transaction) -> None:
        """A projection pass ended: changed orders, machine tiles and order alerts to the stream; wake the sender."""
        for summary in changed:
            self.hub.publish("order", {"order": order_event(summary)})
        self.hub.machines_changed(machines)
        self.hub.publish_alerts(list(tx.alerts.values()))
        if tx.deliveries:
            self.sender.wake()

def _alert_in_scope(kind: str, subject: str, live: LiveState, owns: Callable[[str], bool]) -> bool:
    """Is an alert this worker's? Its gateway's, or its machine's gateway's (a gap id starts with the gateway)."""
    if kind == "machine":
        return owns(live.machine_gateway.get(subject, ""))
    return owns(subject.split(":", 1)[0])
