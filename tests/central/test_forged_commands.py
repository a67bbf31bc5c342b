"""Commands cannot be forged: the attack that lost parts, replayed against real processes.

The finding: on a broker without an ACL, a ``cmd/ack`` forged while central was down made the real
gateway delete events central never applied; once the broker also lost what it had queued for
central, those parts were gone (13 and 27 parts in the attacker test). Here the same attack runs
with the broker restarted without persistence after it, so the gateway's outbox is the only copy
left: central's totals equal the plant's ground truth only if the gateway deleted nothing.

* With the shipped ACL the broker refuses the forgeries (CONNACK 135, MQTT v5 PUBACK 0x87).
* On a broker the attacker may write to (no ACL), a gateway with a command secret ignores unsigned
  and wrongly signed acks (counted in its /metrics), and central's signed acks work end to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from plantpulse.broker_auth import provision
from plantpulse.protocol.models import Ack, SeqRange
from plantpulse.protocol.signing import sign
from tests.fixtures.line import Line, edge_machines, plant_yaml
from tests.fixtures.mosquitto import Login, Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.probe import NOT_AUTHORIZED, Probe
from tests.fixtures.procs import free_port
from tests.fixtures.services import CentralProcess, CentralReader, EdgeProcess
from tests.fixtures.waiting import async_wait_until

pytestmark = pytest.mark.slow

ACK_TOPIC = "plantpulse/v1/t/gw1/cmd/ack"


def edge_metrics(port: int) -> dict[str, float]:
    """The gateway's /metrics as {name{labels}: value}."""
    out: dict[str, float] = {}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def forged_ack(epoch: str) -> bytes:
    """Everything of the epoch 'applied': what made the gateway delete events nobody had."""
    return Ack(edge_id="gw1", epoch=epoch, applied=[SeqRange(first=1, last=10_000_000)],
               ts=time.time()).model_dump_json().encode()


def make_line(tmp_path: Path, broker: Mosquitto, plant: SimulatedPlant, central: CentralProcess,
              metrics_port: int, **edge_settings: object) -> Line:
    edge = EdgeProcess(tmp_path / "edge", broker, edge_id="gw1", site="t", machines=edge_machines(plant),
                       count_interval=0.5, forward={"resend_after": 3.0},
                       health={"interval": 1.0, "metrics_port": metrics_port}, **edge_settings)
    return Line(plant, edge, CentralReader(central))



def attacker(broker: Mosquitto, name: str, login: Login | None) -> Probe:
    p = Probe(f"attacker-{name}", v5=True, login=login)
    p.connect(broker)
    return p


async def test_the_shipped_acl_refuses_a_forged_ack_and_the_gateway_deletes_nothing(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto)
    port = free_port()
    line = make_line(tmp_path, mosquitto, plant_factory(plant_yaml()), central, port)
    try:
        await line.start()
        await line.produce(15)
        epoch = central.gateway("gw1")["epoch"]
        central.stop()
        await line.produce(25)  # published by the gateway, queued by the broker, applied by nobody
        m = edge_metrics(port)
        assert m['plantpulse_edge_confirmed_seq{edge_id="gw1"}'] < m['plantpulse_edge_latest_seq{edge_id="gw1"}']

        anonymous = attacker(mosquitto, "anonymous", None)
        assert anonymous.connack[0] == NOT_AUTHORIZED  # CONNACK 135: not even connected
        anonymous.close()
        # stolen credentials of other gateways, of another site, and of gw1 itself: none may send commands
        for site, edge_id in (("t", "gw2"), ("other", "gw1"), ("t", "gw1")):
            forger = attacker(mosquitto, f"{edge_id}-{site}", mosquitto.gateway_login(site, edge_id))
            try:
                assert forger.accepted
                assert forger.publish(ACK_TOPIC, forged_ack(epoch)) == NOT_AUTHORIZED
            finally:
                forger.close()

        await line.produce(10)
        mosquitto.restart()  # no persistence: the gateway's outbox is now the only copy of those events
        central.start()
        await line.expect_exact_totals()
        refused = edge_metrics(port)
        assert all(v == 0 for k, v in refused.items() if k.startswith("plantpulse_edge_commands_refused_total"))
        assert central.get("/api/v1/gaps")["gaps"] == []
    finally:
        line.edge.stop()


async def test_signed_commands_on_a_broker_anyone_may_write_to(
    tmp_path: Path, broker_factory: Callable[..., Mosquitto], plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    # anonymous on purpose: the broker a plant does not control, where the attacker may write anything
    broker = broker_factory(anonymous=True)
    keys = tmp_path / "keys"
    provision(keys, "t", ["gw1"], sign=True)
    central = central_factory(broker, commands={"keys_dir": str(keys / "central/command-keys")})
    port = free_port()
    line = make_line(tmp_path, broker, plant_factory(plant_yaml()), central, port,
                     commands={"secret_file": str(keys / "edge/t/gw1/command.key")})
    try:
        await line.start()
        await line.produce(15)
        epoch = central.gateway("gw1")["epoch"]
        central.stop()
        await line.produce(25)

        forger = attacker(broker, "open", None)
        try:
            assert forger.accepted
            forged = forged_ack(epoch)
            assert forger.publish(ACK_TOPIC, forged) in (0, 0x10)  # the broker lets it through...
            guess = sign(b"a guess, long enough to be a key!!", ACK_TOPIC, forged)
            assert forger.publish(ACK_TOPIC, guess) in (0, 0x10)
            # ...and a genuine signature for another gateway's topic is worth nothing here either
            other_key = (keys / "edge/t/gw1/command.key").read_text().strip().encode()
            assert forger.publish(ACK_TOPIC, sign(other_key, ACK_TOPIC.replace("gw1", "gw2"), forged)) in (0, 0x10)
        finally:
            forger.close()
        refused = 'plantpulse_edge_commands_refused_total{edge_id="gw1",reason="%s"}'
        m = await async_wait_until(
            lambda: (x := edge_metrics(port))[refused % "unsigned"] >= 1 and x[refused % "bad_signature"] >= 2 and x,
            15, what="the forged acks refused and counted by the gateway",
        )
        assert m['plantpulse_edge_confirmed_seq{edge_id="gw1"}'] < m['plantpulse_edge_latest_seq{edge_id="gw1"}']
        assert m['plantpulse_edge_buffer_events{edge_id="gw1"}'] > 0

        await line.produce(10)
        broker.restart()  # the gateway's outbox is the only copy left
        central.start()
        await line.expect_exact_totals()
        # central's signed acks are accepted: the gateway's outbox drains
        await async_wait_until(
            lambda: (x := edge_metrics(port))['plantpulse_edge_confirmed_seq{edge_id="gw1"}']
            == x['plantpulse_edge_latest_seq{edge_id="gw1"}'], 30, what="every event confirmed by signed acks",
        )
        central_metrics = central.http.get("/metrics").text
        assert "plantpulse_central_commands_unsigned_total 0.0" in central_metrics
        signed = next(x for x in central_metrics.splitlines()
                      if x.startswith("plantpulse_central_commands_signed_total"))
        assert float(signed.split()[-1]) > 0
        log = line.edge.process.log_text()
        assert "signed commands" in log and log.count("ignoring a command") <= 2  # rate-limited: once per reason
    finally:
        line.edge.stop()
