"""The private mosquitto fixture does what the delivery tests rely on (real broker, real paho)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from tests.fixtures.mosquitto import Mosquitto, login_accepted
from tests.fixtures.probe import Probe, probe
from tests.fixtures.waiting import wait_until


def test_restart_keeps_port_and_persistence_keeps_queued_messages(broker_factory: Callable[..., Mosquitto]) -> None:
    broker = broker_factory(persistence=True, max_queued_messages=50)
    admin = broker.admin_login()  # arbitrary test topics: only the tests' superuser may use them
    with probe(broker, "sub", clean=False, login=admin) as sub:
        sub.client.subscribe("t/#", qos=1)
        wait_until(lambda: sub.client.is_connected(), 5)
    with probe(broker, "pub", login=admin) as pub:
        for i in range(80):
            pub.client.publish("t/x", str(i), qos=1).wait_for_publish(5)
    port = broker.port
    broker.restart()
    assert broker.port == port
    with probe(broker, "sub", clean=False, login=admin) as sub:
        wait_until(lambda: len(sub.received) >= 50, 10, what="queued messages after restart")
        # max_queued_messages bounds what the broker keeps for an offline client: the rest is gone
        assert [int(p) for _, p in sub.received] == list(range(50))


def test_without_persistence_a_restart_loses_queued_messages(mosquitto: Mosquitto) -> None:
    admin = mosquitto.admin_login()
    with probe(mosquitto, "sub", clean=False, login=admin) as sub:
        sub.client.subscribe("t/#", qos=1)
    with probe(mosquitto, "pub", login=admin) as pub:
        pub.client.publish("t/x", b"lost", qos=1).wait_for_publish(5)
    mosquitto.restart()
    with probe(mosquitto, "sub", clean=False, login=admin) as sub:
        sub.client.subscribe("t/#", qos=1)
        with probe(mosquitto, "pub", login=admin) as pub:
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
    client = Probe("tls", login=broker.admin_login())
    client.client.tls_set(ca_certs=str(broker.tls.ca_cert), certfile=str(broker.tls.client_cert),
                          keyfile=str(broker.tls.client_key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect(broker, port=broker.tls_port)
    try:
        assert client.connack[0] == 0
    finally:
        client.close()


def test_default_broker_is_secured_and_adds_gateway_logins_while_running(mosquitto: Mosquitto) -> None:
    assert not login_accepted(mosquitto.host, mosquitto.port, None)  # anonymous: CONNACK 135
    assert login_accepted(mosquitto.host, mosquitto.port, mosquitto.central_login())
    login = mosquitto.gateway_login("s1", "gw9")  # the running broker reloads its files
    assert login is not None and login.username == "gw9@s1"
    assert login_accepted(mosquitto.host, mosquitto.port, login)
    assert mosquitto.gateway_login("s1", "gw9") == login
    mosquitto.restart()  # the files stay
    assert login_accepted(mosquitto.host, mosquitto.port, login)


def test_anonymous_broker_is_an_explicit_opt_in(broker_factory: Callable[..., Mosquitto]) -> None:
    broker = broker_factory(anonymous=True)
    assert login_accepted(broker.host, broker.port, None)
    assert broker.gateway_login("s1", "gw1") is None and broker.central_login() is None
