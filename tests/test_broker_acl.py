"""Every rule of the shipped ACL (plantpulse.broker_auth, docs/protocol.md "Broker security"), judged
by what arrives: CONNACK and MQTT v5 PUBACK reason codes, and what reaches a subscriber. A granted
SUBACK proves nothing, so every "cannot read" has a positive control that does receive.

The broker is the default test broker: exactly the generator's files, plus a test-only superuser
that no test here uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.mosquitto import Login, Mosquitto, login_accepted
from tests.fixtures.probe import NOT_AUTHORIZED, Probe
from tests.fixtures.waiting import wait_until

ROOT = "plantpulse/v1"
CHANNELS = ("events", "status", "health", "snapshot")


@pytest.fixture
def clients(mosquitto: Mosquitto) -> Iterator[dict[str, Probe]]:
    """central, a second central connection (its own topics), gw1 and gw2 of s1, and gw1 of s2."""
    logins: dict[str, Login | None] = {
        "central": mosquitto.central_login(), "central-2": mosquitto.central_login(),
        "gw1": mosquitto.gateway_login("s1", "gw1"), "gw2": mosquitto.gateway_login("s1", "gw2"),
        "gw1-s2": mosquitto.gateway_login("s2", "gw1"),
    }
    probes: dict[str, Probe] = {}
    try:
        for name, login in logins.items():
            assert login is not None
            p = Probe(f"acl-{name}", v5=True, login=login)
            p.connect(mosquitto)
            assert p.accepted, (name, p.connack)
            probes[name] = p
        probes["central"].subscribe(f"{ROOT}/#")
        yield probes
    finally:
        for p in probes.values():
            p.close()


def arrived(p: Probe, topic: str, payload: bytes) -> bool:
    with p.lock:
        return (topic, payload) in p.received


def test_anonymous_and_wrong_passwords_are_refused(mosquitto: Mosquitto) -> None:
    for login in (None, Login("gw1@s1", "wrong", mosquitto.folder / "none"), Login("central", "", mosquitto.folder)):
        p = Probe("intruder", v5=True, login=login)
        p.connect(mosquitto)
        try:
            assert p.connack[0] == NOT_AUTHORIZED  # CONNACK 135
        finally:
            p.close()
    assert not login_accepted(mosquitto.host, mosquitto.port, None)


def test_a_gateway_writes_only_its_own_four_channels(clients: dict[str, Probe]) -> None:
    gw1, central = clients["gw1"], clients["central"]
    for channel in CHANNELS:
        topic = f"{ROOT}/s1/gw1/{channel}"
        assert gw1.publish(topic, b"own") in (0, 0x10)
        wait_until(lambda t=topic: arrived(central, t, b"own"), 5, what=f"{topic} at central")  # type: ignore[misc]
    forbidden = [
        f"{ROOT}/s1/gw2/events",  # another gateway of its site
        f"{ROOT}/s2/gw1/events",  # its own edge id at another site
        f"{ROOT}/s1/gw1/cmd/ack",  # a command, even to itself: only central sends commands
        f"{ROOT}/s1/gw2/cmd/ack",
        f"{ROOT}/s1/_central/alerts/x",  # central's reserved name
        f"{ROOT}/s1/gw1/events/extra",  # below its channels
        f"{ROOT}/s1/gw1/other",
        "elsewhere/x",
    ]
    for topic in forbidden:
        assert gw1.publish(topic, b"spoof") == NOT_AUTHORIZED, topic
    marker = f"{ROOT}/s1/gw1/health"
    assert gw1.publish(marker, b"after") in (0, 0x10)  # in order: everything before it has been routed
    wait_until(lambda: arrived(central, marker, b"after"), 5)
    assert all(payload != b"spoof" for _, payload in central.received)


def test_a_gateway_reads_only_its_own_commands(clients: dict[str, Probe]) -> None:
    gw1, gw2, gw1_s2, central = clients["gw1"], clients["gw2"], clients["gw1-s2"], clients["central"]
    for p in (gw1, gw2, gw1_s2):
        p.subscribe(f"{ROOT}/#")  # asks for everything: the broker delivers only what the ACL allows
    assert central.publish(f"{ROOT}/s1/gw2/cmd/ack", b"for gw2") in (0, 0x10)
    assert central.publish(f"{ROOT}/s2/gw1/cmd/replay", b"for gw1 at s2") in (0, 0x10)
    assert central.publish(f"{ROOT}/s1/gw1/cmd/ack", b"for gw1") in (0, 0x10)
    wait_until(lambda: arrived(gw2, f"{ROOT}/s1/gw2/cmd/ack", b"for gw2"), 5, what="gw2's own command")
    wait_until(lambda: arrived(gw1_s2, f"{ROOT}/s2/gw1/cmd/replay", b"for gw1 at s2"), 5)
    wait_until(lambda: arrived(gw1, f"{ROOT}/s1/gw1/cmd/ack", b"for gw1"), 5, what="gw1's own command")
    # published before gw1's own command and delivered in order: had they been allowed, they were here
    assert gw1.received == [(f"{ROOT}/s1/gw1/cmd/ack", b"for gw1")]
    assert gw2.publish(f"{ROOT}/s1/gw2/events", b"gw2 data") in (0, 0x10)  # a gateway never reads others' data
    wait_until(lambda: arrived(central, f"{ROOT}/s1/gw2/events", b"gw2 data"), 5)
    assert central.publish(f"{ROOT}/s1/gw1/cmd/ack", b"marker") in (0, 0x10)
    wait_until(lambda: arrived(gw1, f"{ROOT}/s1/gw1/cmd/ack", b"marker"), 5)
    assert [t for t, _ in gw1.received] == [f"{ROOT}/s1/gw1/cmd/ack"] * 2
    assert [t for t, _ in gw1_s2.received] == [f"{ROOT}/s2/gw1/cmd/replay"]


def test_central_reads_everything_sends_commands_and_owns_central_topics(clients: dict[str, Probe]) -> None:
    central, other = clients["central"], clients["central-2"]
    other.subscribe(f"{ROOT}/+/_central/#")
    for topic in (f"{ROOT}/s1/gw1/cmd/ack", f"{ROOT}/s1/gw1/cmd/replay", f"{ROOT}/s2/gw9/cmd/ack"):
        assert central.publish(topic, b"cmd") in (0, 0x10), topic
    alert = f"{ROOT}/s1/_central/alerts/fault/m1"
    assert central.publish(alert, b"alert") in (0, 0x10)
    wait_until(lambda: arrived(other, alert, b"alert"), 5, what="central's own topic read back")
    for topic in (f"{ROOT}/s1/gw1/events", f"{ROOT}/s1/gw1/status", "elsewhere/x", f"{ROOT}/s1/gw1/x"):
        assert central.publish(topic, b"as a gateway") == NOT_AUTHORIZED, topic  # central never speaks for one
