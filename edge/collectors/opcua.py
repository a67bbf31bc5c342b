"""OPC UA collector (asyncua): subscriptions by default, polling as a fallback, reconnect forever.

One collector per session: machines on the same server with the same settings share it (a
gateway such as Kepware serving many machines). A session's life:

1. connect (security, login), resolve namespace URIs, read every tag once: the reading a
   restarted PLC or gateway counts from;
2. subscription mode: one subscription, each tag a monitored item; state and fault code with
   a queue of ``queue_size`` so a fault shorter than the publishing interval still arrives
   (values the server had to drop are counted as ``queue_overflows``); every
   ``counter_check_interval`` a plain read of the counters checks that the subscription has
   not silently lost a change. Polling mode: one read of every tag per ``poll_interval``;
3. the session is watched: asyncua's watchdog probes the server every ``keepalive_interval``,
   and a subscription that sends no publish response (not even a keep-alive) for three
   keep-alive intervals counts as dead;
4. when the session dies, its machines go ``offline`` at once, the client is dropped, and a
   new one connects with capped exponential backoff and jitter, re-creating the subscription.

Readings are whole machines: notifications are grouped into moments by ``ChangeSplitter``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine, Sequence
from typing import Any, NoReturn

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from edge.collectors import opcua_session as s
from edge.collectors.base import CheckRow, Report, raise_if_cancelled
from edge.collectors.machine_config import COUNTER_TAGS, TAG_NAMES
from edge.collectors.opcua_config import COUNTS_ONLY_EVERY, OpcuaMachine
from edge.collectors.opcua_values import Bad, Change, ChangeSplitter, Moment, Outcome, Resync
from plantpulse.backoff import Backoff

log = logging.getLogger(__name__)
_QUEUE_BATCHES = 1000  # publish responses waiting for the consumer; beyond that: count, then re-read all
_PLAIN = {int, float, str, bool}  # values used as they come; anything else goes through opcua_session.decode


class OpcuaCollector:
    """Reads the machines of one OPC UA session (see the module docstring)."""

    def __init__(self, machines: Sequence[OpcuaMachine]) -> None:
        self.cfg = machines[0]  # connection settings are equal for all machines of a collector
        self.machines = list(machines)
        self.name = f"opcua {self.cfg.endpoint}"
        self.machine_ids = tuple(m.id for m in machines)
        names = {m.id: [n for n in TAG_NAMES if getattr(m.tags, n) is not None] for m in machines}
        self.splitter = ChangeSplitter(names, coalesce=COUNTS_ONLY_EVERY)
        self._up = False

    # ----------------------------------------------------------------- the reconnect loop
    async def run(self, report: Report) -> None:
        cap = max(m.retry_max for m in self.machines)
        backoff = Backoff(min(0.5, cap), cap)
        attempts = 0
        while True:
            raise_if_cancelled()
            self._up = False
            reason = "session ended"
            try:
                await self._session(report)
            except (s.SessionLostError, s.NamespaceMissingError, OSError, TimeoutError, UaError) as exc:
                reason = _why(exc)
            if self._up:
                attempts = 0
                backoff.reset()
                for machine_id in self.machine_ids:
                    await report.lost(machine_id, reason)
            else:
                attempts += 1
                for machine_id in self.machine_ids:
                    await report.failure(machine_id, reason)
            offline = self._up or attempts >= min(m.offline_after for m in self.machines)
            await asyncio.sleep(backoff.next() if offline else min(1.0, self.cfg.keepalive_interval))

    async def _session(self, report: Report) -> None:
        cfg = self.cfg
        client = s.new_client(cfg)
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def on_lost(exc: Exception) -> None:
            if not lost.done():
                lost.set_result(f"session lost: {_why(exc)}")

        client.connection_lost_callback = on_lost
        connected = False
        try:
            async with asyncio.timeout(2 * cfg.timeout):
                await s.connect(client, cfg)
                connected = True
                items = await s.resolve(client, self.machines)
            await self.read_all(client, items, report)
            self._up = True
            log.debug("%s: session up, %d items", self.name, len(items))
            if cfg.mode == "polling":
                await _race(self._watch_lost(lost), self._poll(client, items, report))
            else:
                session = _Subscription(self, client, items, report)
                await session.start()  # may fail: the watcher is only made once there is something to race
                await _race(self._watch_lost(lost), session.consume(), session.check_counters(), session.watchdog())
        finally:
            await s.close(client, cfg.timeout, lost=lost.done() or not connected)

    async def _watch_lost(self, lost: asyncio.Future[str]) -> NoReturn:
        raise s.SessionLostError(await lost)

    async def read_all(
        self, client: Client, items: Sequence[s.Item], report: Report, only: str | None = None
    ) -> None:
        """Read every tag (of one machine, or all) and report each machine's reading or failure."""
        mine = [i for i in items if only is None or i.machine_id == only]
        started = time.monotonic()
        async with asyncio.timeout(self.cfg.timeout):
            dvs = await s.read(client, mine)
        latency = time.monotonic() - started
        values: dict[str, dict[str, Any]] = {}
        problems: dict[str, str] = {}
        for item, dv in zip(mine, dvs, strict=True):
            value, problem = s.decode(item, dv)
            if problem is not None:
                problems.setdefault(item.machine_id, problem)
            values.setdefault(item.machine_id, {})[item.tag] = value
        for machine_id, machine_values in values.items():
            if machine_id in problems:
                self.splitter.set_bad(machine_id, problems[machine_id])  # a later good value re-reads it
                await report.failure(machine_id, problems[machine_id], latency)
            else:
                await report.reading(machine_id, self.splitter.set_all(machine_id, machine_values), latency)

    async def _poll(self, client: Client, items: Sequence[s.Item], report: Report) -> None:
        interval = self.cfg.poll_interval
        due = time.monotonic()
        while True:
            due = max(due + interval, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
            raise_if_cancelled()
            try:
                await self.read_all(client, items, report)
                report.count("polls")
            except (TimeoutError, UaStatusCodeError) as exc:
                for machine_id in self.machine_ids:
                    await report.failure(machine_id, f"read failed: {_why(exc)}")

    # ----------------------------------------------------------------- edge check
    async def check(self) -> list[CheckRow]:
        client = s.new_client(self.cfg)
        try:
            async with asyncio.timeout(2 * self.cfg.timeout):
                await s.connect(client, self.cfg)
        except Exception as exc:  # noqa: BLE001 - edge check shows any failure as a row, never a traceback
            await s.close(client, self.cfg.timeout, lost=True)
            return [CheckRow(m.id, "*", self.cfg.endpoint, error=f"cannot connect: {_why(exc)}") for m in self.machines]
        try:
            try:
                items = await s.resolve(client, self.machines)
                started = time.monotonic()
                dvs = await s.read(client, items)
            except Exception as exc:  # noqa: BLE001 - as above
                return [CheckRow(m.id, "*", self.cfg.endpoint, error=_why(exc)) for m in self.machines]
            latency = (time.monotonic() - started) * 1000.0
            return [_check_row(self._machine(i.machine_id), i, dv, latency) for i, dv in zip(items, dvs, strict=True)]
        finally:
            await s.close(client, self.cfg.timeout, lost=False)

    def _machine(self, machine_id: str) -> OpcuaMachine:
        return next(m for m in self.machines if m.id == machine_id)


class _Subscription:
    """One session's subscription: notifications in, whole readings out, checked and watched."""

    def __init__(self, owner: OpcuaCollector, client: Client, items: Sequence[s.Item], report: Report) -> None:
        self.owner, self.client, self.items, self.report = owner, client, list(items), report
        self.cfg = owner.cfg
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue(_QUEUE_BATCHES)
        self.last_publish = time.monotonic()
        self.behind = False
        self.lock = asyncio.Lock()  # notifications and counter checks feed the tracker one at a time
        self.warned: set[str] = set()

    async def start(self) -> None:
        cfg = self.cfg
        keepalive = max(1, math.ceil(cfg.keepalive_interval / cfg.publishing_interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=cfg.publishing_interval * 1000.0,
            RequestedLifetimeCount=keepalive * 10,
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await self.client.uaclient.create_subscription(params, self._on_publish)
        requests = []
        for handle, item in enumerate(self.items):
            queue = cfg.queue_size if item.tag in ("state", "fault_code") else 1
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=item.node, AttributeId=AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=ua.MonitoringParameters(
                        ClientHandle=handle, SamplingInterval=cfg.sampling_interval * 1000.0,
                        QueueSize=queue, DiscardOldest=True,
                    ),
                )
            )
        created = await self.client.uaclient.create_monitored_items(
            ua.CreateMonitoredItemsParameters(
                SubscriptionId=result.SubscriptionId, ItemsToCreate=requests,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
            )
        )
        for item, res in zip(self.items, created, strict=True):
            if not res.StatusCode.is_good():
                await self.report.failure(item.machine_id, f"cannot monitor {item.tag} ({item.configured}): "
                                                           f"{res.StatusCode.name}")

    def _on_publish(self, result: ua.PublishResult) -> None:
        """asyncua's publish loop calls this for every response, keep-alives included: never block."""
        self.last_publish = time.monotonic()
        data = result.NotificationMessage.NotificationData
        if not data:
            return
        try:
            self.queue.put_nowait(list(data))
        except asyncio.QueueFull:
            self.behind = True
            self.report.count("client_queue_overflows")

    async def consume(self) -> None:
        splitter = self.owner.splitter
        try:
            while True:
                raise_if_cancelled()
                try:
                    async with asyncio.timeout(splitter.coalesce if splitter.holding() else None):
                        batches = [await self.queue.get()]
                except TimeoutError:
                    batches = []
                while not self.queue.empty():
                    batches.append(self.queue.get_nowait())
                changes = self._changes(batches)
                async with self.lock:
                    now = time.monotonic()
                    await self._apply(splitter.feed(changes, now) + splitter.due(now))
                    if self.behind:  # batches were dropped: read everything again instead of guessing
                        self.behind = False
                        await self.owner.read_all(self.client, self.items, self.report)
        finally:
            async with self.lock:  # what was seen before the end is still counted now
                await self._apply(splitter.flush_all(time.monotonic()))

    def _changes(self, batches: list[list[Any]]) -> list[Change]:
        changes: list[Change] = []
        for data in batches:
            for notif in data:
                if isinstance(notif, ua.StatusChangeNotification):
                    raise s.SessionLostError(f"subscription status {notif.Status.name}")
                if not isinstance(notif, ua.DataChangeNotification):
                    continue
                for mi in notif.MonitoredItems:
                    item = self.items[mi.ClientHandle]
                    dv = mi.Value
                    ts = dv.SourceTimestamp or dv.ServerTimestamp
                    status = dv.StatusCode
                    v = dv.Value.Value if dv.Value is not None else None
                    good = status is None or status.value == 0
                    if good and type(v) in _PLAIN and (item.bits is None or isinstance(v, int)):  # the common case
                        value = v if item.bits is None else v % (1 << item.bits)
                        changes.append(Change(item.machine_id, item.tag, value, True, "", ts))
                        continue
                    if s.overflowed(dv):
                        self.report.count("queue_overflows")
                    value, problem = s.decode(item, dv)
                    changes.append(Change(item.machine_id, item.tag, value, problem is None, problem or "", ts))
        self.report.count("notifications", len(changes))
        return changes

    async def _apply(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Moment):
                await self.report.reading(outcome.machine_id, outcome.reading)
            elif isinstance(outcome, Bad):
                await self.report.lost(outcome.machine_id, outcome.reason)
            elif isinstance(outcome, Resync):
                await self.owner.read_all(self.client, self.items, self.report, only=outcome.machine_id)

    async def check_counters(self) -> None:
        """Read the counters now and then; a value the subscription never delivered is a lost change."""
        splitter = self.owner.splitter
        counters = [i for i in self.items if i.tag in COUNTER_TAGS]
        settle = 2 * self.cfg.publishing_interval + self.cfg.sampling_interval + 0.1
        while True:
            raise_if_cancelled()
            await asyncio.sleep(self.cfg.counter_check_interval)
            seen = {(i.machine_id, i.tag): splitter.seen(i.machine_id, i.tag) for i in counters}
            dvs = await s.read(self.client, counters)
            await asyncio.sleep(settle)  # let notifications sampled before the read arrive
            async with self.lock:
                fixed: dict[str, dict[str, Any]] = {}
                for item, dv in zip(counters, dvs, strict=True):
                    value, problem = s.decode(item, dv)
                    mid = item.machine_id
                    if problem is not None or splitter.is_bad(mid) or value == splitter.value(mid, item.tag):
                        continue
                    if splitter.seen(mid, item.tag) == seen[(mid, item.tag)]:
                        fixed.setdefault(mid, {})[item.tag] = value
                for mid, values in fixed.items():
                    self.report.count("subscription_mismatches")
                    if mid not in self.warned:
                        self.warned.add(mid)
                        log.warning("machine %s: the subscription missed a counter change (%s); counted from a read",
                                    mid, ", ".join(values))
                    await self.report.reading(mid, splitter.set_all(mid, values))

    async def watchdog(self) -> NoReturn:
        # the server answers at least every keep-alive count x publishing interval, never more often
        # than the publishing interval: three of the longer one without any answer is a dead subscription
        limit = 3 * max(self.cfg.keepalive_interval, self.cfg.publishing_interval)
        while True:
            await asyncio.sleep(self.cfg.keepalive_interval)
            silent = time.monotonic() - self.last_publish
            if silent > limit:
                raise s.SessionLostError(f"no publish response for {silent:.1f} s")


async def _race(*coros: Coroutine[Any, Any, Any]) -> None:
    """Run the coroutines until the first one ends; cancel the others; re-raise its error."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = set(tasks)
        while pending:  # cancel again what swallowed a cancel (see raise_if_cancelled)
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=1.0)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: only the first one's error matters
    for task in done:
        task.result()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, UaStatusCodeError):
        return type(exc).__name__
    text = str(exc) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _check_row(m: OpcuaMachine, item: s.Item, dv: ua.DataValue, latency_ms: float) -> CheckRow:
    address = item.node.to_string()  # as resolved on this connection: ns=<index>;...
    value, problem = s.decode(item, dv)
    if problem is not None:
        return CheckRow(m.id, item.tag, address, error=problem)
    vtype = dv.Value.VariantType.name if dv.Value is not None else "?"
    raw = f"{dv.Value.Value!r} ({vtype})" if dv.Value is not None else ""
    decoded = str(value)
    if item.tag == "state" and value is not None:
        state = m.state_map.get(value) if not isinstance(value, float) else m.state_map.get(int(value))
        decoded = f"{value} -> {state.value if state else f'? (not in state_map: {m.unknown_state.value})'}"
    elif item.bits is not None and vtype in ("UInt16", "Int16") and item.bits != 16:
        decoded += f"  (a 16-bit counter: set bits: 16 so its rollover is counted, now {item.bits})"
    return CheckRow(m.id, item.tag, address, raw=raw, decoded=decoded, latency_ms=latency_ms)
