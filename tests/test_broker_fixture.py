"""The private mosquitto fixture does what the delivery tests rely on (real broker, real paho)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import wait_until


class Probe:
    """A paho client that records what it receives and how connects and publishes ended."""

    def __init__(self, client_id: str, *, clean: bool = True, v5: bool = False) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else clean,
        )
        self.v5 = v5
        self.clean = clean
        self.received: list[tuple[str, bytes]] = []
        self.connack: list[Any] = []
        self.pubacks: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.append(rc)
        self.client.on_message = self._message
        self.client.on_publish = self._published

    def _message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received.append((msg.topic, msg.payload))

    def _published(self, c: Any, u: Any, mid: int, rc: ReasonCode, props: Properties) -> None:
        self.pubacks[mid] = rc

    def connect(self, broker: Mosquitto, port: int | None = None) -> None:
        props = None
        if self.v5:
            props = Properties(mqtt.PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self.clean else 3600
        self.client.connect(broker.host, port or broker.port, keepalive=5,
                            clean_start=self.clean if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                            properties=props)
        self.client.loop_start()
        wait_until(lambda: self.connack, 5, what="CONNACK")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def probe(broker: Mosquitto, client_id: str, **kw: Any) -> Iterator[Probe]:
    p = Probe(client_id, **kw)
    p.connect(broker)
    try:
        yield p
    finally:
        p.close()


def test_restart_keeps_port_and_persistence_keeps_queued_messages(broker_factory: Callable[..., Mosquitto]) -> None:
    broker = broker_factory(persistence=True, max_queued_messages=50)
    with probe(broker, "sub", clean=False) as sub:
        sub.client.subscribe("t/#", qos=1)
        wait_until(lambda: sub.client.is_connected(), 5)
    with probe(broker, "pub") as pub:
        for i in range(80):
            pub.client.publish("t/x", str(i), qos=1).wait_for_publish(5)
    port = broker.port
    broker.restart()
    assert broker.port == port
    with probe(broker, "sub", clean=False) as sub:
        wait_until(lambda: len(sub.received) >= 50, 10, what="queued messages after restart")
        # max_queued_messages bounds what the broker keeps for an offline client: the rest is gone
        assert [int(p) for _, p in sub.received] == list(range(50))


def test_without_persistence_a_restart_loses_queued_messages(mosquitto: Mosquitto) -> None:
    with probe(mosquitto, "sub", clean=False) as sub:
        sub.client.subscribe("t/#", qos=1)
    with probe(mosquitto, "pub") as pub:
        pub.client.publish("t/x", b"lost", qos=1).wait_for_publish(5)
    mosquitto.restart()
    with probe(mosquitto, "sub", clean=False) as sub:
        sub.client.subscribe("t/#", qos=1)
        with probe(mosquitto, "pub") as pub:
            pub.client.publish("t/x", b"new", qos=1).wait_for_publish(5)
        wait_until(lambda: sub.received, 5)
        assert sub.received == [("t/x", b"new")]


def test_password_and_acl(broker_factory: Callable[..., Mosquitto]) -> None:
    broker = broker_factory(
        users={"gw1": "pw1", "central": "pwc"},
        acl="user central\ntopic read plantpulse/v1/#\n\npattern write plantpulse/v1/site/%u/#\n",
    )
    bad = Probe("intruder", v5=True)
    bad.client.username_pw_set("gw1", "wrong")
    bad.connect(broker)
    assert bad.connack[0] == 135  # not authorized
    bad.close()

    central = Probe("central", v5=True)
    central.client.username_pw_set("central", "pwc")
    central.connect(broker)
    central.client.subscribe("plantpulse/v1/#", qos=1)
    gw = Probe("gw1", v5=True)
    gw.client.username_pw_set("gw1", "pw1")
    gw.connect(broker)
    try:
        own = gw.client.publish("plantpulse/v1/site/gw1/events", b"ok", qos=1)
        other = gw.client.publish("plantpulse/v1/site/gw2/events", b"spoof", qos=1)
        own.wait_for_publish(5)
        other.wait_for_publish(5)
        wait_until(lambda: own.mid in gw.pubacks and other.mid in gw.pubacks, 5)
        assert gw.pubacks[other.mid] == 0x87  # MQTT v5 PUBACK: not authorized
        wait_until(lambda: central.received, 5)
        assert central.received == [("plantpulse/v1/site/gw1/events", b"ok")]
    finally:
        gw.close()
        central.close()


def test_tls_listener_with_test_ca(broker_factory: Callable[..., Mosquitto]) -> None:
    broker = broker_factory(tls=True)
    assert broker.tls is not None and broker.tls_port is not None
    client = Probe("tls")
    client.client.tls_set(ca_certs=str(broker.tls.ca_cert), certfile=str(broker.tls.client_cert),
                          keyfile=str(broker.tls.client_key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect(broker, port=broker.tls_port)
    try:
        assert client.connack[0] == 0
    finally:
        client.close()
