"""A notification storm to a chat robot with a rate limit: the sender with a real store (SQLite and PostgreSQL)
and a real HTTP robot, on a clock the test moves (no minute of waiting, no fixed sleeps).

32 notifications of mixed severity and kind go to a DingTalk-style robot limited to 5 a minute: the robot
must never get more than 5 in any 60 s, the critical failure alerts must arrive first (critical ones
committed during the storm jump ahead of the older warnings), then the warnings, infos and order alerts;
what is held back stays pending and goes out as the window frees, each exactly once, also across a restart
of the sender in the middle of the storm (it starts from the sends of the last minute the store kept).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.alerts.alert import AlertStatus, TransitionKind
from central.alerts.conditions import Rule, Severity, Texts
from central.alerts.notifications import Notification
from central.alerts.ratelimit import priority
from central.alerts.sender import Sender
from central.alerts.targets import WebhookTarget
from central.store.base import Store
from central.store.config import StoreConfig
from central.store.open import open_store
from central.store.records import Delivery, Transaction
from plantpulse.mqtt import MqttConfig, MqttLink
from tests.fixtures.postgres import create_database, drop_database, write_dsn_file
from tests.fixtures.procs import free_port
from tests.fixtures.waiting import async_wait_until
from tests.fixtures.webhook import ROBOT_OK, serve

T = 1_800_000_000.0
LIMIT = 5
ID = re.compile(r"n\d+\.0-(?:opened|resolved)")


class Robot:
    """A DingTalk robot stand-in: answers errcode 0 and records (the test clock at arrival, notification id)."""

    def __init__(self, now: list[float]) -> None:
        self.port = free_port()
        self.got: list[tuple[float, str]] = []
        self.now = now
        self.server = serve(self.port, self._post)

    def _post(self, _path: str, body: dict[str, Any]) -> bytes:
        found = ID.search(body["markdown"]["text"])
        self.got.append((self.now[0], found.group(0) if found else "?"))
        return ROBOT_OK

    def ids(self) -> list[str]:
        return [i for _, i in self.got]


@pytest.fixture
def now() -> list[float]:
    return [T]


@pytest.fixture
def robot(now: list[float]) -> Iterator[Robot]:
    r = Robot(now)
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    dsn = await create_database() if request.param == "postgresql" else None
    cfg = (StoreConfig(kind="postgresql", dsn_file=write_dsn_file(tmp_path, dsn)) if dsn is not None
           else StoreConfig(path=tmp_path / "central.sqlite"))
    opened = await open_store(cfg, "s")
    try:
        yield opened
    finally:
        await opened.close()
        if dsn is not None:
            await drop_database(dsn)


def note(i: int, rule: Rule, severity: Severity, at: float) -> Notification:
    return Notification(id=f"n{i}.0-opened", alert_id=f"n{i}", kind=TransitionKind.OPENED, at=at, rule=rule,
                        subject=f"m{i}", severity=severity, status=AlertStatus.OPEN, level=0,
                        message=Texts(f"告警 {i}", f"alert {i}"), details={}, since=at, opened_at=at)


def storm() -> list[Notification]:
    """30 notifications, the critical ones among the newest (so age alone would send them last)."""
    kinds = ([(Rule.ORDER_AT_RISK, Severity.WARNING)] * 6 + [(Rule.DATA_GAP, Severity.INFO)] * 6
             + [(Rule.LONG_STOP, Severity.WARNING)] * 11 + [(Rule.FAULT, Severity.CRITICAL)] * 7)
    return [note(i, rule, severity, T - 600 + 10 * i) for i, (rule, severity) in enumerate(kinds)]


async def commit(store: Store, notes: list[Notification]) -> None:
    await store.commit(Transaction(notifications=notes, deliveries=[Delivery(n.id, "robot", "s1", next_at=n.at)
                                                                    for n in notes]))


async def test_a_storm_to_a_limited_robot_sends_critical_first_and_never_beyond_the_limit(
    store: Store, robot: Robot, now: list[float],
) -> None:
    target = WebhookTarget.model_validate({"name": "robot", "kind": "dingtalk", "lang": "en",
                                           "url": f"http://127.0.0.1:{robot.port}/robot/send?access_token=t",
                                           "max_per_minute": LIMIT})
    notes = storm()
    await commit(store, notes)
    link = MqttLink(MqttConfig(port=1), "never-connected")  # no MQTT rows here: the MQTT worker only idles

    def start() -> tuple[Sender, asyncio.Task[None]]:
        sender = Sender(store, [target], tz=ZoneInfo("Asia/Shanghai"), lang="en", link=link, clock=lambda: now[0])
        return sender, asyncio.create_task(sender.run())

    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    sender, task = start()
    try:
        await async_wait_until(lambda: sender.throttled, 10, what="the first window spent and the rest held")
        assert [t for t, _ in robot.got] == [T] * LIMIT
        assert await store.delivery_counts() == {"sent": LIMIT, "pending": len(notes) - LIMIT}  # held: pending
        # central restarts in the storm: the new sender starts from the minute's sends the store kept
        await stop(task)
        sender, task = start()
        await async_wait_until(lambda: sender.throttled, 10, what="the restarted sender held by the same window")
        assert len(robot.got) == LIMIT
        # two more machines fail during the storm: they go ahead of the older warnings
        late = [note(100, Rule.FAULT, Severity.CRITICAL, T + 30), note(101, Rule.FAULT, Severity.CRITICAL, T + 31)]
        notes += late
        step = 0
        while len(robot.got) < len(notes):
            waits = sender.throttled
            step += 1
            now[0] = T + 20 * step  # a third of a window at a time
            if step == 2:
                await commit(store, late)
            sender.wake()
            await async_wait_until(lambda: sender.throttled > waits or len(robot.got) == len(notes), 10,  # noqa: B023
                                   what=f"the sender held again at step {step}")
        expected = [n.id for n in sorted(notes, key=lambda n: (priority(n), n.at))]
        assert robot.ids() == expected
        assert robot.ids()[:9] == [f"n{i}.0-opened" for i in (23, 24, 25, 26, 27, 28, 29, 100, 101)]
        stamps = [t for t, _ in robot.got]
        assert max(sum(1 for t in stamps if s <= t < s + 60) for s in stamps) == LIMIT
        assert stamps[-1] == T + 60 * (len(notes) // LIMIT)  # 32 at 5 a minute: the last at the 7th window
        # the robot has the last request before the sender has its answer and records it
        async def all_sent() -> bool:
            return await store.delivery_counts() == {"sent": len(notes)}

        await async_wait_until(all_sent, 10, what="every delivery recorded as sent")
        assert sender.failures == 0 and sender.sent == len(notes) - LIMIT  # the restarted sender sent the rest
    finally:
        if not task.done():
            await stop(task)
