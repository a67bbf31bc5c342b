"""MqttLink against a real mosquitto: PUBACK futures, ACL refusals, reconnects with a fresh Will."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from plantpulse.mqtt import MqttConfig, MqttLink, PublishRefusedError
from tests.fixtures.mosquitto import Mosquitto
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
