"""The live stream behind ``GET /api/v1/stream``: changes pushed to every connected client.

Each client gets the full current state when it connects, then the machines and gateways that
changed. During a catch-up (a gateway's week of backlog arriving) a machine changes thousands
of times a second: a client gets at most one update per machine per ``min_interval``, always
with the latest state, so a slow page never falls behind and never shows a stale value.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from central.alerts.alert import Alert
from central.ingest.applier import Round


class Renderer(Protocol):
    """How machines, gateways and alerts look on the stream: the API's own views (central/api/views.py)."""

    def machine_json(self, machine_id: str) -> dict[str, Any] | None: ...

    def gateway_json(self, edge_id: str) -> dict[str, Any] | None: ...

    def alert_json(self, alert: Alert) -> dict[str, Any]: ...

    def everything(self) -> dict[str, Any]: ...


class StreamClient:
    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub
        self.machines: set[str] = set()
        self.gateways: set[str] = set()
        self.extra: list[tuple[str, dict[str, Any]]] = []
        self.sent_at: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.closed = False

    async def next(self) -> list[tuple[str, dict[str, Any]]]:
        """Wait for changes; return (event name, data) pairs, each machine at most once per interval."""
        hub = self.hub
        while True:
            if self.closed:
                return [("bye", {"server_time": hub.clock()})]
            now = time.monotonic()
            due = [m for m in self.machines if now - self.sent_at.get(m, -1e9) >= hub.min_interval]
            out: list[tuple[str, dict[str, Any]]] = list(self.extra)
            self.extra.clear()
            for mid in due:
                self.machines.discard(mid)
                self.sent_at[mid] = now
                data = hub.renderer.machine_json(mid)
                if data is not None:
                    out.append(("machine", {"server_time": hub.clock(), "machine": data}))
            for gid in list(self.gateways):
                self.gateways.discard(gid)
                data = hub.renderer.gateway_json(gid)
                if data is not None:
                    out.append(("gateway", {"server_time": hub.clock(), "gateway": data}))
            if out:
                return out
            self.wake.clear()
            if self.machines:  # changes wait for their interval to pass
                earliest = min(self.sent_at.get(m, -1e9) for m in self.machines) + hub.min_interval
                timeout: float | None = max(0.01, earliest - now)
            else:
                timeout = None
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can lose a cancellation (3.11)
                async with asyncio.timeout(timeout):
                    await self.wake.wait()


class StreamHub:
    def __init__(self, renderer: Renderer, *, clock: Callable[[], float], min_interval: float) -> None:
        self.renderer = renderer
        self.clock = clock
        self.min_interval = min_interval
        self.clients: set[StreamClient] = set()

    def connect(self) -> StreamClient:
        client = StreamClient(self)
        self.clients.add(client)
        return client

    def disconnect(self, client: StreamClient) -> None:
        self.clients.discard(client)

    def snapshot(self) -> dict[str, Any]:
        return {"server_time": self.clock(), **self.renderer.everything()}

    def on_round(self, rnd: Round) -> None:
        """A committed round: its machines, gateways, gaps and alert changes go to every client."""
        self.publish_alerts(list(rnd.tx.alerts.values()))
        if not (rnd.machines or rnd.gateways or rnd.gaps):
            return
        gaps = [
            {"edge_id": g.edge_id, "epoch": g.epoch, "first": g.first, "last": g.last, "reason": g.reason}
            for g in rnd.gaps
        ]
        for client in self.clients:
            client.machines |= rnd.machines
            client.gateways |= rnd.gateways
            if gaps:
                client.extra.append(("gap", {"server_time": self.clock(), "gaps": gaps}))
            client.wake.set()

    def machines_changed(self, machines: set[str]) -> None:
        """Machines whose view changed outside a round (the operation they run progressed): sent like a round's."""
        if not machines:
            return
        for client in self.clients:
            client.machines |= machines
            client.wake.set()

    def publish_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.publish("alert", {"alert": self.renderer.alert_json(alert)})

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send a change that is not a machine or gateway (alerts, work orders) to every client."""
        for client in self.clients:
            client.extra.append((event, {"server_time": self.clock(), **data}))
            client.wake.set()

    def close(self) -> None:
        for client in self.clients:
            client.closed = True
            client.wake.set()
