"""The shift summary at a shift's end: built, kept and sent once to a real webhook receiver, never twice after a
restart (central in-process on a clock the test moves; a real broker, store and HTTP receiver)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import generate_latest

from central.config import CentralConfig
from central.progress.orders import WorkOrderIn
from central.runtime import Central
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.procs import free_port
from tests.fixtures.waiting import async_wait_until
from tests.fixtures.webhook import ROBOT_OK, serve

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 3, 8, tzinfo=SH).timestamp()
END = datetime(2026, 12, 3, 17, tzinfo=SH).timestamp()


class Robot:
    """A chat-robot stand-in (WeCom's format): records each message's markdown."""

    def summaries(self) -> list[tuple[str, str]]:
        return [(p, t) for p, t in self.received if "summary" in t.lower()]

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, str]] = []
        self.server = serve(self.port, self._post)

    def _post(self, path: str, body: dict[str, Any]) -> bytes:
        self.received.append((path, json.dumps(body, ensure_ascii=False)
                              if "markdown" not in body else body["markdown"]["content"]))
        return ROBOT_OK


@pytest.fixture
def robot() -> Iterator[Robot]:
    r = Robot()
    yield r
    r.server.shutdown()
    r.server.server_close()


def config(broker: Mosquitto, tmp_path: Path, robot: Robot) -> CentralConfig:
    return CentralConfig.model_validate({
        "site": "t", "mqtt": broker.mqtt(broker.central_login(), keepalive=5, reconnect_max=1),
        "store": {"path": str(tmp_path / "central.sqlite")},
        "notify": {"lang": "en", "summary_check": 0.1, "webhooks": [
            {"name": "line-chat", "kind": "wecom", "lang": "en", "url": f"http://127.0.0.1:{robot.port}/send",
             "min_severity": "critical"},
            {"name": "quiet", "kind": "generic", "url": f"http://127.0.0.1:{robot.port}/x", "shift_summaries": False}]},
        "plant": {"timezone": "Asia/Shanghai",
                  "lines": [{"id": "a", "shifts": {"timezone": "Asia/Shanghai", "shifts": [
                      {"name": "day", "days": ["thu"], "start": "08:00", "end": "17:00"}]}}],
                  "machines": [{"id": "cnc-01", "line": "a"}]},
    })


async def test_a_summary_at_the_shift_end_is_sent_once_even_across_a_restart(
    mosquitto: Mosquitto, tmp_path: Path, robot: Robot,
) -> None:
    now = [END - 600]
    cfg = config(mosquitto, tmp_path, robot)
    async with Central.running(cfg, clock=lambda: now[0]) as central:
        late = WorkOrderIn.model_validate({"id": "SO-7", "product": "flange", "quantity": 5, "due": START + 3600,
                                           "operations": [{"seq": 10, "name": "turn", "machine": "cnc-01",
                                                           "quantity": 5, "ideal_cycle_time": 60}]})
        await central.orders.create(late, by="planning")
        now[0] = END + 5
        await async_wait_until(lambda: robot.summaries() or central.failed, 30, what="the summary reached the robot")
        assert central.failed is None, central.failure
        ((path, text),) = robot.summaries()
        assert path == "/send"  # the generic receiver opted out of summaries (it still gets the overdue alert)
        assert "Shift summary" in text and "a · day" in text and "Late orders: 1" in text and "SO-7" in text
        assert "summary:a/day/" in text  # the notification id: a resend would be recognisable
        rows = await central.store.shift_summaries()
        assert [r.id for r in rows] == [f"a/day/{int(START)}"] and rows[0].data["late"][0]["order"] == "SO-7"
        assert central.summaries.sent == 1
        metrics = generate_latest(central.metrics).decode()  # the sender's counters (nothing was held back here)
        assert "plantpulse_central_notification_throttled_waits_total 0.0" in metrics
        assert "plantpulse_central_notification_failures_total 0.0" in metrics
        assert f"plantpulse_central_notifications_sent_total {float(central.sender.sent)}" in metrics
    async with Central.running(cfg, clock=lambda: now[0]) as again:
        await async_wait_until(lambda: again.ingest.connected, 10)
        now[0] = END + 120
        await again.summaries.step()
        assert again.summaries.sent == 0 and len(robot.summaries()) == 1  # kept: never built or sent twice
