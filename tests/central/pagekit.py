"""Helpers for the page tests (tests/central/test_page.py): a real headless Chromium, and a
hand-made gateway that publishes exactly the states a test needs (gateway offline, a machine
that never reported, a state that began minutes ago) without waiting for a plant to do them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from plantpulse.protocol.models import CountEvent, Event, EventBatch, MachineState, StateEvent, Status
from plantpulse.protocol.topics import GatewayChannel, gateway_topic
from tests.fixtures.ids import EPOCH1
from tests.fixtures.mosquitto import Mosquitto

CHROMIUM = Path("/usr/bin/chromium")
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
WRITE_KEY = "floor-write-key"
READ_KEY = "board-read-key"
FAULTS = {321: {"zh": "液压压力低", "en": "hydraulic pressure low"}}


def api_keys() -> list[dict[str, str]]:
    """The central ``api.keys`` entries for WRITE_KEY and READ_KEY (stored hashed, as in production)."""
    return [
        {"name": "floor-tablet", "role": "write", "sha256": hashlib.sha256(WRITE_KEY.encode()).hexdigest()},
        {"name": "hall-board", "role": "read", "sha256": hashlib.sha256(READ_KEY.encode()).hexdigest()},
    ]


@contextmanager
def chromium(args: list[str] | None = None) -> Iterator[Browser]:
    """The system's Chromium under Playwright (never a downloaded browser: no `playwright install`)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install it with `apt-get install chromium` "
                           "(scripts/setup.sh test does it when run as root)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args or [])
        try:
            yield browser
        finally:
            browser.close()


class HandGateway:
    """A gateway played by hand over MQTT: births, Wills and events with consecutive seqs."""

    def __init__(self, broker: Mosquitto, edge_id: str = "gw1", site: str = "t") -> None:
        """``site``: the default is the test central's (tests/fixtures/services.py), which serves one site."""
        self.edge_id, self.site, self.epoch, self.birth, self.seq = edge_id, site, EPOCH1, 1, 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hand-{edge_id}")
        login = broker.gateway_login(site, edge_id)  # it logs in as the gateway it plays
        if login is not None:
            login.apply(self.client)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _send(self, channel: GatewayChannel, payload: str) -> None:
        self.client.publish(gateway_topic(self.site, self.edge_id, channel), payload, qos=1).wait_for_publish(5)

    def online(self, machines: list[str]) -> None:
        status = Status(edge_id=self.edge_id, online=True, birth=self.birth, ts=time.time(), epoch=self.epoch,
                        machines=machines)
        self._send("status", status.model_dump_json())

    def offline(self) -> None:
        """The Will of the current connection: the gateway went away."""
        self._send("status", Status(edge_id=self.edge_id, online=False, birth=self.birth, ts=time.time())
                   .model_dump_json())

    def _events(self, *events: Event) -> None:
        batch = EventBatch(edge_id=self.edge_id, epoch=self.epoch, sent_at=time.time(), events=list(events))
        self._send("events", batch.model_dump_json())

    def state(self, machine_id: str, state: str, *, ago: float = 0.0, **fields: Any) -> None:
        self.seq += 1
        self._events(StateEvent(seq=self.seq, machine_id=machine_id, ts=time.time() - ago,
                                state=MachineState(state), **fields))

    def count(self, machine_id: str, good: int, scrap: int = 0, job: str | None = None) -> None:
        self.seq += 1
        now = time.time()
        self._events(CountEvent(seq=self.seq, machine_id=machine_id, start=now - 1, ts=now, good=good, scrap=scrap,
                                job=job))


def noon_zone(now: float | None = None) -> str:
    """An IANA zone in which it is now about noon: "today" then holds hours before and after now,
    whatever the hour the test runs at (a day page tested at 00:10 UTC would otherwise be empty)."""
    hour = time.gmtime(time.time() if now is None else now).tm_hour
    offset = (12 - hour + 12) % 24 - 12  # -12..11 hours east of UTC
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-8 is UTC+8


def open_page(context: BrowserContext, origin: str) -> tuple[Page, list[str]]:
    """A page that records what must never happen: a script error, a request to another origin (a CDN)."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("request", lambda r: None if r.url.startswith(origin) else problems.append(f"outside request: {r.url}"))
    return page, problems


def shoot(page: Page, folder: Path, name: str, *, doc: bool = False) -> Path:
    """A PNG of the page in the test's folder; with ``PLANTPULSE_DOC_IMAGES=1`` also ``docs/img/<name>``
    (how the docs' pictures are made again: docs/pages.md, "Screenshots")."""
    path = folder / name
    page.screenshot(path=path)
    if doc and os.environ.get("PLANTPULSE_DOC_IMAGES") == "1":
        page.screenshot(path=DOC_IMAGES / name)
    return path


def qr_video(text: str, path: Path, *, width: int = 320, height: int = 240, frames: int = 3) -> Path:
    """A Y4M video of a QR code holding ``text``: Chromium plays it as its camera
    (``--use-file-for-fake-video-capture``), so the scan page's camera path runs for real."""
    import segno  # the same generator central uses for the job cards

    matrix = [list(row) for row in segno.make(text, error="m").matrix]
    n = len(matrix) + 8  # with a quiet zone of 4 modules
    scale = min(width, height) // n
    y = bytearray(b"\xff" * (width * height))
    x0, y0 = (width - n * scale) // 2 + 4 * scale, (height - n * scale) // 2 + 4 * scale
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                for dy in range(scale):
                    start = (y0 + r * scale + dy) * width + x0 + c * scale
                    y[start:start + scale] = b"\x00" * scale
    chroma = b"\x80" * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + bytes(y) + chroma + chroma)
    return path
