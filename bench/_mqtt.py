"""Small threaded paho clients for the benchmarks: persistent sessions, bulk publishing, timed drains.

Deliberately raw (no plantpulse code between the benchmark and paho): these are the baselines
the project's own MQTT paths are compared with, and the tools that load a broker for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantpulse.protocol import topics


class Client:
    """A threaded paho MQTT v5 client; ``clean_start=False`` resumes its persistent session.

    Received messages go to ``on_message(topic, payload)``, called in paho's network thread.
    """

    def __init__(self, port: int, client_id: str, *, clean_start: bool) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.port, self.client_id, self.clean_start = port, client_id, clean_start
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.on_message: Callable[[str, bytes], None] | None = None
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, msg: self.on_message and self.on_message(msg.topic, bytes(msg.payload))

    def start(self) -> Client:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
        props.SessionExpiryInterval = 24 * 3600
        self.client.connect("127.0.0.1", self.port, clean_start=self.clean_start, properties=props)
        self.client.loop_start()
        if not self.connected.wait(30):
            raise RuntimeError(f"{self.client_id!r} could not connect to the broker on port {self.port}")
        return self

    def subscribe(self, filters: list[str]) -> None:
        self.subscribed.clear()
        self.client.subscribe([(f, 1) for f in filters])
        if not self.subscribed.wait(30):
            raise RuntimeError(f"no SUBACK for {filters}")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def register_session(port: int, client_id: str, filters: list[str] | None = None) -> None:
    """Create a persistent session subscribed like central (or to ``filters``), then leave: messages queue for it."""
    client = Client(port, client_id, clean_start=True).start()
    client.subscribe(filters or topics.subscriptions("+"))
    client.stop()


WINDOW = 20_000
"""QoS 1 messages handed to paho but not yet acknowledged, at most: paho numbers them with 16-bit
packet ids and hangs beyond 65,535 outstanding (../shared/environment.md)."""


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish every message with QoS 1 (at most ``WINDOW`` unacknowledged); return once all are acknowledged."""
    acked = 0
    done = threading.Event()
    window = threading.BoundedSemaphore(WINDOW)

    def on_publish(*args: Any) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == len(messages):
            done.set()

    client = Client(port, f"bench-publisher-{time.monotonic_ns()}", clean_start=True)
    client.client.on_publish = on_publish
    client.start()
    try:
        for topic, payload in messages:
            if not window.acquire(timeout=60):
                raise RuntimeError(f"the broker stopped acknowledging publishes ({acked} of {len(messages)})")
            client.client.publish(topic, payload, qos=1)
        if not done.wait(600):
            raise RuntimeError(f"the broker acknowledged {acked} of {len(messages)} publishes")
    finally:
        client.stop()


def raw_drain(port: int, client_id: str, expected: int) -> float:
    """Seconds from ``connect`` until ``expected`` queued event messages arrived (no parsing)."""
    got = 0
    done = threading.Event()

    def on_message(topic: str, payload: bytes) -> None:
        nonlocal got
        if topic.endswith("/events"):
            got += 1
            if got == expected:
                done.set()

    client = Client(port, client_id, clean_start=False)
    client.on_message = on_message
    started = time.perf_counter()
    client.start()
    try:
        if not done.wait(600):
            raise RuntimeError(f"the raw subscriber got {got} of {expected} messages")
        return time.perf_counter() - started
    finally:
        client.stop()
