"""Deliver the notification outbox: MQTT under ``_central/alerts`` and the configured webhooks.

Rows are written by the alert engine in the transaction of the alert change; this task sends
what is due, marks it sent, or schedules a retry with capped exponential backoff and jitter. It
runs beside ingest and never blocks it: each receiver has its own worker, so a dead or hanging
webhook only delays its own rows. Every request
carries the notification's stable id, so a receiver recognises the one resend that can happen
when central dies between sending and marking a row sent.

A webhook with ``max_per_minute`` (the chat robots: 20) gets at most that many requests in any 60 s
(``central/alerts/ratelimit.py``): its worker asks the store for only as many due rows as it may send,
most urgent first, and the rest stay pending as they were (no attempt counted) until the window has
room again. Every request counts, refused or not: the robot counted it. MQTT has no limit: the broker
is ours, it takes thousands a second, and holding alerts back there would only delay the systems that
read them. A restarted sender starts its window from the last minute's sends the store kept (a crash
loop in a storm must not give the robot a fresh minute each time); with several ingest workers each
counts only its own sends (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import tzinfo

import httpx

from central.alerts.conditions import Lang
from central.alerts.engine import MQTT_TARGET
from central.alerts.notifications import Notification
from central.alerts.notify_format import View, mqtt_message
from central.alerts.ratelimit import SendWindow
from central.alerts.targets import WebhookTarget, build_request
from central.store.base import Store
from central.store.records import Delivery
from plantpulse.backoff import backoff_delay
from plantpulse.mqtt import MqttLink

log = logging.getLogger(__name__)

_BASE_DELAY = 2.0
_MAX_DELAY = 600.0
_GIVE_UP_AFTER = 7 * 86_400.0  # a row still failing a week after its notification is marked failed
_IDLE_POLL = 5.0
_BATCH = 50


class Sender:
    def __init__(
        self, store: Store, webhooks: list[WebhookTarget], *, tz: tzinfo, lang: Lang,
        link: MqttLink, clock: Callable[[], float] = time.time, timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.targets = {t.name: t for t in webhooks}
        self.tz = tz
        self.lang = lang
        self.link = link
        self.clock = clock
        self.timeout = timeout
        self.sent = 0
        self.failures = 0
        self.throttled = 0  # waits for a receiver's send window while its notifications were due
        self._windows = {t.name: SendWindow(t.max_per_minute) for t in webhooks if t.max_per_minute is not None}
        self._holding: set[str] = set()  # receivers whose limit holds due rows back now
        self._wakes = {name: asyncio.Event() for name in [MQTT_TARGET, *self.targets]}
        self._failing: set[str] = set()

    def wake(self) -> None:
        """New rows were committed: every receiver's worker looks now."""
        for event in self._wakes.values():
            event.set()

    async def run(self) -> None:
        """One worker per receiver: a dead or hanging webhook delays its own rows, nobody else's."""
        async with httpx.AsyncClient(timeout=self.timeout) as http, asyncio.TaskGroup() as group:
            for name in self._wakes:
                group.create_task(self._worker(http, name), name=f"notify {name}")

    async def _worker(self, http: httpx.AsyncClient, target: str) -> None:
        wake = self._wakes[target]
        window = self._windows.get(target)
        if window is not None:  # a restart (a crash loop in a storm) must not give the robot a fresh minute
            for at in await self.store.sent_since(target, self.clock() - window.window):
                window.record(at)
        while True:
            wake.clear()  # before looking: a commit from here on wakes the wait below
            now = self.clock()
            room = _BATCH if window is None else min(_BATCH, window.room(now))
            if room and (due := await self.store.due_deliveries(now, target, limit=room)):
                done = []
                for d, n in due:  # in order, one at a time
                    done.append(await self._send(http, d, n))
                    if window is not None:
                        window.record(self.clock())  # after the request: the robot counted it on arrival
                await self.store.update_deliveries(done)
                continue
            nxt = await self.store.next_delivery_at(target)
            wait = _IDLE_POLL if nxt is None else min(_IDLE_POLL, max(0.05, nxt - now))
            if window is not None:
                wait = self._held(target, window, nxt, now, wait)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that coincides with
            # the wake-up (a shutdown just after a commit that woke the sender), and central never stops
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()

    def _held(self, target: str, window: SendWindow, nxt: float | None, now: float, wait: float) -> float:
        """How long to wait when the window is full and rows are due (until it has room; a commit's wake-up
        only looks again), counted; the log says so once per spell."""
        held = window.room(now) == 0 and nxt is not None and nxt <= now
        if not held:
            if target in self._holding:
                self._holding.discard(target)
                log.info("notifications to %s are within its limit again", target)
            return wait
        self.throttled += 1
        if target not in self._holding:
            self._holding.add(target)
            log.warning("notifications to %s held back: %d sent in the last %g s, its max_per_minute; the most "
                        "urgent go first as the window frees", target, window.limit, window.window)
        return min(_IDLE_POLL, max(0.05, window.free_at(now) - now))

    async def _send(self, http: httpx.AsyncClient, d: Delivery, n: Notification) -> Delivery:
        now = self.clock()
        try:
            if d.target == MQTT_TARGET:
                await self._mqtt(d, n)
            else:
                target = self.targets.get(d.target)
                if target is None:
                    return replace(d, status="failed", last_error="webhook no longer configured")
                await self._webhook(http, target, d, n, now)
        except Exception as exc:  # noqa: BLE001 - any failure of one delivery is retried, never raised
            self.failures += 1
            attempts = d.attempts + 1
            if d.target not in self._failing:
                self._failing.add(d.target)
                log.warning("notification to %s failed (retrying with backoff): %s", d.target, exc)
            delay = backoff_delay(attempts, initial=_BASE_DELAY, cap=_MAX_DELAY)
            status = "failed" if now - n.at > _GIVE_UP_AFTER else "pending"
            return replace(d, status=status, attempts=attempts, next_at=now + delay, last_error=str(exc)[:500])
        if d.target in self._failing:
            self._failing.discard(d.target)
            log.info("notifications to %s are delivered again", d.target)
        self.sent += 1  # sent_at: when it was accepted (a restarted sender's window starts from it)
        return replace(d, status="sent", attempts=d.attempts + 1, sent_at=self.clock(), last_error=None)

    async def _mqtt(self, d: Delivery, n: Notification) -> None:
        link = self.link
        if not link.connected:
            raise ConnectionError("not connected to the MQTT broker")
        topic, payload = mqtt_message(n, d.site or "unknown", View(self.lang, self.tz))
        async with asyncio.timeout(self.timeout):  # not wait_for: it can lose a shutdown's cancellation (3.11)
            await link.publish(topic, payload, qos=1)

    async def _webhook(
        self, http: httpx.AsyncClient, target: WebhookTarget, d: Delivery, n: Notification, now: float
    ) -> None:
        req = build_request(target, n, now=now, tz=self.tz, site=d.site)
        response = await http.request(req.method, req.url, content=req.body, headers=dict(req.headers))
        if response.status_code >= 300:
            raise RuntimeError(f"{target.redacted_url()} answered HTTP {response.status_code}")
        # the chat robots answer 200 with an error code in the body
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            return
        if isinstance(body, dict):
            code = body.get("errcode", body.get("code", body.get("StatusCode", 0)))
            if code not in (0, None):
                raise RuntimeError(f"{target.redacted_url()} refused it: {str(body)[:200]}")
