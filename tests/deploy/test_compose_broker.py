"""The shipped broker config (deploy/mosquitto/mosquitto.conf), TLS listener included, run by a real mosquitto
with the files the compose file's init service generates; central's and the gateway's shipped configs
connect to it with the project's own MQTT client, and the ACL holds over TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.config import load_central_config
from edge.config import load_edge_config
from plantpulse.mqtt import MqttConfig, MqttLink
from tests.fixtures.compose import Compose
from tests.fixtures.mosquitto import Login, mosquitto_binary
from tests.fixtures.probe import NOT_AUTHORIZED, Probe
from tests.fixtures.procs import ManagedProcess, free_port, port_open
from tests.fixtures.waiting import wait_until


class Broker:
    def __init__(self, compose: Compose, folder: Path) -> None:
        self.compose = compose
        self.port = free_port()
        lines = ["user root"]  # as root mosquitto would switch users; the files belong to uid 1883 here
        for line in (Path(__file__).resolve().parents[2] / "deploy/mosquitto/mosquitto.conf").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key in ("password_file", "acl_file", "cafile", "certfile", "keyfile"):
                line = f"{key} {compose.host_path('mosquitto', value)}"
            elif key == "persistence_location":
                line = f"{key} {folder}/"
            elif key == "listener":
                assert value.split()[0] == "8883"
                line = f"listener {self.port} 127.0.0.1"
            elif key == "log_dest":
                line = f"log_dest file {folder / 'mosquitto.log'}"
            lines.append(line)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = folder / "mosquitto.log"
        self.process = ManagedProcess("shipped-mosquitto", [mosquitto_binary(), "-c", str(self.conf)], folder / "out")

    def start(self) -> None:
        self.process.start()
        wait_until(lambda: port_open(self.port) or not self.process.running(), 10, what="the shipped broker listening")
        assert self.process.running(), self.log.read_text() if self.log.exists() else "no log"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    compose = Compose(tmp_path)
    compose.run_init()
    b = Broker(compose, tmp_path)
    b.start()
    yield b
    b.process.stop()


def _over_tls(mqtt: MqttConfig, port: int, host: str = "localhost") -> MqttConfig:
    """A shipped client config pointed at the test's listener: same TLS, user and password file."""
    return mqtt.model_copy(update={"host": host, "port": port, "reconnect_max": 1})


async def _connects(mqtt: MqttConfig) -> bool:
    link = MqttLink(mqtt, f"compose-test-{uuid.uuid4().hex[:8]}", clean_start=True)
    link.start()
    try:
        await asyncio.wait_for(link.wait_connected(), 10)
        return link.connected
    finally:
        await link.stop()


async def test_shipped_central_and_gateway_configs_log_in_over_tls(broker: Broker) -> None:
    compose = broker.compose
    central = load_central_config(compose.host_config("central", compose.command_arg("central", "--config")))
    edge = load_edge_config(compose.host_config("edge", compose.command_arg("edge", "--config")))
    for mqtt in (central.mqtt, edge.mqtt):
        assert await _connects(_over_tls(mqtt, broker.port))
        assert await _connects(_over_tls(mqtt, broker.port, host="127.0.0.1"))  # an IP in the certificate too


def _client(ca: Path | None, login: Login | None) -> tuple[paho.Client, list[Any]]:
    result: list[Any] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"tls-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    if login is not None:
        login.apply(client)
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    return client, result


def test_the_acl_holds_over_tls_and_nothing_gets_in_without_it(broker: Broker) -> None:
    compose = broker.compose
    edge = load_edge_config(compose.host_config("edge", compose.command_arg("edge", "--config")))
    assert edge.mqtt.tls is not None and edge.mqtt.username is not None and edge.mqtt.password_file is not None
    ca = edge.mqtt.tls.ca_file
    login = Login(edge.mqtt.username, edge.mqtt.password() or "", edge.mqtt.password_file)
    gateway = Probe("edge-1-probe", v5=True, login=login)
    gateway.client.tls_set(ca_certs=str(ca))
    gateway.connect_to("localhost", broker.port)
    try:
        assert gateway.accepted
        assert gateway.publish("plantpulse/v1/demo/edge-1/events", b"{}") in (0, 0x10)
        assert gateway.publish("plantpulse/v1/demo/edge-2/events", b"{}") == NOT_AUTHORIZED
        assert gateway.publish("plantpulse/v1/demo/edge-1/cmd/ack", b"{}") == NOT_AUTHORIZED
    finally:
        gateway.close()

    anonymous, result = _client(ca, None)  # over TLS, but without a password
    anonymous.connect("localhost", broker.port, keepalive=5)
    anonymous.loop_start()
    try:
        wait_until(lambda: result, 5, what="the CONNACK")
        assert result[0].is_failure  # 135 Not authorized
    finally:
        anonymous.disconnect()
        anonymous.loop_stop()

    # the system's CAs do not know the site CA: a client that does not hold ca.crt cannot be fooled
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw, pytest.raises(
            ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")

    # no TLS at all: an MQTT CONNECT in clear gets no CONNACK, the listener speaks only TLS
    connect = bytes([0x10, 0x10, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x04]) + b"test"
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        raw.sendall(connect)
        try:
            answer = raw.recv(4)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20")  # 0x20 would be a CONNACK
