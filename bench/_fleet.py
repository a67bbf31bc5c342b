"""A fleet of synthetic gateways in one process, each with a real outbox and the real forwarder.

``python -m bench._fleet --port P --dir D --gateways 20 ...`` runs, per gateway, the edge's own
``Outbox`` (SQLite, durable), ``Forwarder`` (window, resend after silence, replays on request) and
MQTT link, with a retained birth and a Will as the real gateway sends them, and a health message
every ``--health`` seconds. Each gateway first stores a backlog (``--backlog`` events, sent as soon
as it connects), then emits ``--rate`` events per second (whole fleet) for ``--live`` seconds.

The report (``--report``, JSON, rewritten every half second) says what was sent, for checking
central against: per machine the good parts emitted, per gateway its epoch, latest and confirmed
seq; ``done`` once every event was emitted, ``confirmed`` once every gateway had all confirmed.
Used by the scaled e2e test (tests/central/cluster) and ``python -m bench cluster``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.buffer import Outbox
from edge.config import ForwardConfig
from edge.forwarder import Forwarder
from edge.tracker import MachineMemory
from plantpulse.mqtt import MqttConfig, MqttLink
from plantpulse.protocol import topics
from plantpulse.protocol.models import Ack, CountEvent, Health, Replay, Status

SITE = "fleet"


@dataclass
class Gw:
    edge_id: str
    machines: list[str]
    outbox: Outbox
    site: str = SITE
    link: MqttLink | None = None
    forwarder: Forwarder | None = None
    birth: int = 0
    good: dict[str, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def topic(self, channel: topics.GatewayChannel | topics.CommandChannel) -> str:
        return topics.gateway_topic(self.site, self.edge_id, channel)

    def status(self, online: bool) -> bytes:
        stats = self.outbox.stats()
        msg = Status(edge_id=self.edge_id, online=online, birth=self.birth, ts=time.time(), version="fleet",
                     config_hash="fleet", machines=self.machines, epoch=self.outbox.epoch,
                     oldest_seq=stats.oldest_seq, latest_seq=stats.latest_seq) if online else Status(
            edge_id=self.edge_id, online=False, birth=self.birth, ts=time.time())
        return msg.model_dump_json(exclude_none=True).encode()

    def health(self) -> bytes:
        stats = self.outbox.stats()
        return Health(edge_id=self.edge_id, ts=time.time(), epoch=self.outbox.epoch, buffer_events=stats.events,
                      buffer_bytes=stats.bytes, oldest_seq=stats.oldest_seq, latest_seq=stats.latest_seq,
                      confirmed_seq=stats.confirmed_seq).model_dump_json(exclude_none=True).encode()

    async def emit(self, k: int, n: int = 1) -> None:
        """Events ``k .. k+n-1`` of this gateway (machines take turns), one durable emit per machine."""
        now = time.time()
        per: dict[str, list[CountEvent]] = {}
        for i in range(k, k + n):
            mid = self.machines[i % len(self.machines)]
            per.setdefault(mid, []).append(
                CountEvent(machine_id=mid, start=now - 1, ts=now, good=1 + i % 3, scrap=0, job="J1"))
        for mid, events in per.items():
            await self.outbox.emit(events, MachineMemory(machine_id=mid, last_ts=now))
            self.good[mid] = self.good.get(mid, 0) + sum(e.good for e in events)


async def connect(gw: Gw, port: int, fwd_cfg: ForwardConfig, health_every: float) -> None:
    def will() -> tuple[str, bytes]:
        gw.birth += 1
        return gw.topic("status"), gw.status(False)

    async def connected() -> None:
        assert gw.link is not None
        await gw.link.publish(gw.topic("status"), gw.status(True), retain=True)

    link = MqttLink(MqttConfig(host="127.0.0.1", port=port, keepalive=5, reconnect_max=1),
                    f"fleet-{gw.site}-{gw.edge_id}",
                    clean_start=True, subscriptions=[(gw.topic("cmd/ack"), 1), (gw.topic("cmd/replay"), 1)],
                    on_connected=connected, will=will)
    fwd = Forwarder(fwd_cfg, gw.outbox, link, edge_id=gw.edge_id, events_topic=gw.topic("events"))

    def on_message(topic: str, payload: bytes, mid: int, qos: int) -> None:
        cmd = Ack if topic.endswith("/cmd/ack") else Replay
        with contextlib.suppress(ValueError):
            fwd.command(cmd.model_validate_json(payload))

    async def health() -> None:
        while True:
            await asyncio.sleep(health_every)
            if link.connected:
                link.publish(gw.topic("health"), gw.health(), qos=0)

    link.on_message = on_message
    link.on_disconnected = fwd.kick
    gw.link, gw.forwarder = link, fwd
    link.start()
    gw.tasks = [asyncio.create_task(fwd.run()), asyncio.create_task(fwd.run_commands()),
                asyncio.create_task(health())]


def report(gws: list[Gw], path: Path, *, done: bool, started: float, confirmed_at: list[float]) -> dict[str, object]:
    """Write what was sent; ``confirmed_at`` keeps the seconds (since connecting) everything was first confirmed."""
    stats = {g.edge_id: g.outbox.stats() for g in gws}
    confirmed = done and all(s.confirmed_seq >= s.latest_seq for s in stats.values())
    if confirmed and not confirmed_at:
        confirmed_at.append(time.monotonic() - started)
    data: dict[str, object] = {
        "done": done, "confirmed": confirmed, "seconds": time.monotonic() - started,
        "confirmed_at": confirmed_at[0] if confirmed_at else None,
        "good": {m: n for g in gws for m, n in g.good.items()},
        "gateways": {e: {"epoch": gws[i].outbox.epoch, "latest_seq": s.latest_seq, "confirmed_seq": s.confirmed_seq}
                     for i, (e, s) in enumerate(stats.items())},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return data


async def run(args: argparse.Namespace) -> None:
    args.dir.mkdir(parents=True, exist_ok=True)
    gws = [Gw(f"gw{i:03d}", [f"gw{i:03d}-m{j}" for j in range(args.machines)],
              await Outbox.open(args.dir / f"gw{i:03d}.sqlite", max_events=10**7, max_bytes=10**10), args.site)
           for i in range(args.gateways)]
    # the backlog: stored before the gateways ever connect
    await asyncio.gather(*(gw.emit(0, args.backlog) for gw in gws if args.backlog))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fwd_cfg = ForwardConfig(resend_after=args.resend_after, window=args.window)
    started = time.monotonic()
    for gw in gws:
        await connect(gw, args.port, fwd_cfg, args.health)

    async def live() -> None:
        k = args.backlog
        interval = len(gws) / args.rate
        deadline = time.monotonic() + args.live
        next_at = time.monotonic()
        while time.monotonic() < deadline and not stop.is_set():
            await asyncio.gather(*(gw.emit(k) for gw in gws))
            k += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    emitting = asyncio.create_task(live())
    confirmed_at: list[float] = []
    while not stop.is_set():
        report(gws, args.report, done=emitting.done(), started=started, confirmed_at=confirmed_at)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    emitting.cancel()
    for gw in gws:
        for task in gw.tasks:
            task.cancel()
        if gw.link is not None:
            await gw.link.stop()
        await gw.outbox.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._fleet", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)
    p.add_argument("--gateways", type=int, default=20)
    p.add_argument("--site", default=SITE, help="the gateways' site (two fleets of two sites may reuse ids)")
    p.add_argument("--machines", type=int, default=2, help="machines per gateway")
    p.add_argument("--backlog", type=int, default=200, help="events per gateway stored before connecting")
    p.add_argument("--rate", type=float, default=100.0, help="live events per second, whole fleet")
    p.add_argument("--live", type=float, default=10.0, help="seconds of live traffic")
    p.add_argument("--window", type=int, default=20_000, help="the forwarder's window of unconfirmed events")
    p.add_argument("--health", type=float, default=2.0, help="seconds between health messages")
    p.add_argument("--resend-after", type=float, default=5.0, help="the forwarder's resend after silence")
    asyncio.run(run(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
