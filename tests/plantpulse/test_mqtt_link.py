"""MqttLink against a real mosquitto: PUBACK futures, ACL refusals, reconnects with a fresh Will."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from plantpulse.mqtt import MqttConfig, MqttLink, PublishRefusedError, TlsConfig
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.tls import make_tls
from tests.fixtures.waiting import async_wait_until


async def test_publish_resolves_on_puback_and_messages_arrive(mosquitto: Mosquitto) -> None:
    # MqttLink is a generic client: tested on arbitrary topics, as the tests' superuser
    cfg = MqttConfig.model_validate(mosquitto.mqtt(mosquitto.admin_login()))
    got: list[tuple[str, bytes]] = []
    sub = MqttLink(cfg, "sub", subscriptions=[("t/#", 1)])
    sub.on_message = lambda topic, payload, mid, qos: got.append((topic, payload))
    sub.start()
    pub = MqttLink(cfg, "pub")
    pub.start()
    try:
        await sub.wait_connected()
        await pub.wait_connected()
        await async_wait_until(lambda: sub.connected, 5)
        futures = [pub.publish("t/x", str(i).encode()) for i in range(200)]
        for fut in futures:
            await fut
        await async_wait_until(lambda: len(got) == 200, 10, what="200 messages")
        assert [int(p) for _, p in got] == list(range(200))
    finally:
        await pub.stop()
        await sub.stop()


def test_a_missing_password_source_is_named() -> None:
    cfg = MqttConfig(username="gw1", password_env="PP_TEST_PW_UNSET")
    with pytest.raises(ValueError, match="PP_TEST_PW_UNSET"):
        cfg.password()


async def test_acl_refusal_raises(broker_factory: Callable[..., Mosquitto], monkeypatch: pytest.MonkeyPatch) -> None:
    broker = broker_factory(users={"gw1": "pw"}, acl="user gw1\ntopic write plantpulse/v1/s/gw1/#\n")
    monkeypatch.setenv("PP_TEST_PW", "pw")
    link = MqttLink(MqttConfig(host=broker.host, port=broker.port, username="gw1", password_env="PP_TEST_PW"),
                    "gw1")
    link.start()
    try:
        await link.wait_connected()
        await link.publish("plantpulse/v1/s/gw1/events", b"ok")
        with pytest.raises(PublishRefusedError, match="Not authorized"):
            await link.publish("plantpulse/v1/s/gw2/events", b"spoof")
    finally:
        await link.stop()


async def test_reconnect_registers_a_new_will_each_time(mosquitto: Mosquitto) -> None:
    cfg = MqttConfig.model_validate(mosquitto.mqtt(mosquitto.admin_login(), reconnect_max=1))
    wills: list[int] = []

    def will() -> tuple[str, bytes]:
        wills.append(len(wills) + 1)
        return "w/status", str(wills[-1]).encode()

    link = MqttLink(cfg, "w")
    link.will = will
    link.start()
    try:
        await link.wait_connected()
        assert link.generation == 1 and wills == [1]
        mosquitto.restart()
        await async_wait_until(lambda: link.generation == 2 and link.connected, 15, what="reconnected")
        assert wills == [1, 2]
    finally:
        await link.stop()


async def _tries(cfg: MqttConfig, broker: Mosquitto, refusal: str, attempts: int = 2) -> MqttLink:
    """Run a link that cannot connect until the broker logged ``attempts`` refusals of it; stopped after."""
    link = MqttLink(cfg, "tls-mistake")
    before = broker.log_path.read_text().count(refusal)
    link.start()
    try:
        await async_wait_until(lambda: broker.log_path.read_text().count(refusal) >= before + attempts, 15,
                               what=f"{attempts} refused attempts")
        await async_wait_until(lambda: link.last_error is not None, 5, what="the link's error")
    finally:
        await link.stop()
    return link


# paho 2.2 leaves the socket of a failed TLS handshake to the garbage collector (ResourceWarning per retry)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_tls_mistake_is_said_once_not_kept_silent(
    broker_factory: Callable[..., Mosquitto], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """paho keeps a failed TLS handshake to itself; the link says where to look, once per episode."""
    broker = broker_factory(tls=True)
    assert broker.tls is not None and broker.tls_port is not None
    login = broker.gateway_login("s1", "gw")
    base = MqttConfig(host="127.0.0.1", port=broker.tls_port, username=login.username,
                      password_file=login.password_file, reconnect_max=1)
    stranger = base.model_copy(update={"tls": TlsConfig(ca_file=make_tls(tmp_path / "other").ca_cert)})
    for cfg, refusal, hint in ((stranger, "unknown ca", "not signed by mqtt.tls.ca_file"),
                               (base, "wrong version number", "a TLS port needs mqtt.tls")):
        caplog.clear()
        link = await _tries(cfg, broker, refusal)
        warned = [r.getMessage() for r in caplog.records if r.name == "plantpulse.mqtt"]
        assert len(warned) == 1 and hint in warned[0], warned
        assert link.last_error is not None and hint in link.last_error and not link.connected
    good = MqttLink(base.model_copy(update={"tls": TlsConfig(ca_file=broker.tls.ca_cert)}), "good")
    good.start()
    try:
        await asyncio.wait_for(good.wait_connected(), 10)
    finally:
        await good.stop()


async def test_refused_publishes_nobody_awaits_are_logged_once_per_topic(
    broker_factory: Callable[..., Mosquitto], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A gateway whose user does not match its ids publishes and forgets: one clear line, not one per message."""
    broker = broker_factory(users={"gw1": "pw"}, acl="user gw1\ntopic write plantpulse/v1/s/gw1/#\n")
    monkeypatch.setenv("PP_TEST_PW", "pw")
    link = MqttLink(MqttConfig(host=broker.host, port=broker.port, username="gw1", password_env="PP_TEST_PW"),
                    "gw1")
    link.start()
    try:
        await link.wait_connected()
        futures = [link.publish("plantpulse/v1/s/gw2/events", b"x") for _ in range(5)]
        await asyncio.wait(futures)
        del futures
        gc.collect()  # what would log "Future exception was never retrieved" does so when collected
        await link.publish("plantpulse/v1/s/gw1/events", b"ok")
    finally:
        await link.stop()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1, lines
    assert "refused a publish to plantpulse/v1/s/gw2/events" in lines[0] and "may user gw1 write there" in lines[0]
