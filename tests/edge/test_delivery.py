"""Store and forward end to end: a real gateway, real mosquitto, the reference consumer, ground truth.

Every test breaks something for real (broker stopped or restarted without persistence, the
gateway killed with SIGKILL) and then requires the consumer's totals to equal what the
simulated plant really made, each seq applied once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantpulse.consumer import ReferenceConsumer
from plantpulse.mqtt import MqttConfig
from tests.fixtures.line import Line, edge_machines, plant_yaml
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.services import EdgeProcess
from tests.fixtures.waiting import async_wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
async def consumers() -> AsyncIterator[list[ReferenceConsumer]]:
    started: list[ReferenceConsumer] = []
    yield started
    for consumer in started:
        await consumer.stop()


async def make_line(tmp_path: Path, broker: Mosquitto, plant: SimulatedPlant, consumers: list[ReferenceConsumer],
                    **edge_settings: Any) -> Line:
    # the reference consumer plays central's part: it logs in as central
    consumer = ReferenceConsumer(
        MqttConfig.model_validate(broker.mqtt(broker.central_login(), keepalive=5, reconnect_max=1)),
        hold_max_age=3.0, replay_retry=1.0,
    )
    await consumer.start()
    consumers.append(consumer)
    settings: dict[str, Any] = {"count_interval": 0.5, "forward": {"resend_after": 3.0}}
    settings.update(edge_settings)
    edge = EdgeProcess(tmp_path / "edge", broker, edge_id="gw1", site="t", machines=edge_machines(plant), **settings)
    return Line(plant, edge, consumer)



async def test_broker_stopped_30_s_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer],
) -> None:
    line = await make_line(tmp_path, mosquitto, plant_factory(plant_yaml()), consumers)
    try:
        await line.start()
        await line.produce(20)
        mosquitto.stop()
        outage_started = time.monotonic()
        made_before = sum(sum(line.truth(m)) for m in line.machines)
        # the outage itself is the scenario: 30 s of production with no broker
        await async_wait_until(lambda: time.monotonic() - outage_started >= 30, 40, interval=0.5)
        assert sum(sum(line.truth(m)) for m in line.machines) > made_before + 100
        mosquitto.start()
        await line.expect_exact_totals()
        epoch = line.epochs()[0]
        seqs = line.check_seqs(epoch)
        assert len(seqs) > 50 and line.consumer.gaps == []
    finally:
        line.edge.stop()


async def test_broker_restart_without_persistence_while_the_consumer_is_away(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer],
) -> None:
    line = await make_line(tmp_path, mosquitto, plant_factory(plant_yaml()), consumers)
    try:
        await line.start()
        await line.produce(10)
        await line.consumer.stop()  # away: the broker queues for its persistent session...
        await line.produce(40)
        mosquitto.restart()  # ...and loses that queue (no persistence)
        await line.consumer.start()
        await line.expect_exact_totals()
        line.check_seqs(line.epochs()[0])
        assert line.consumer.gaps == []
    finally:
        line.edge.stop()


async def test_gateway_killed_mid_production_restarts_exactly(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer],
) -> None:
    line = await make_line(tmp_path, mosquitto, plant_factory(plant_yaml()), consumers)
    try:
        await line.start()
        kills: list[float] = []

        def stops_seen() -> int:
            return min(sum(s.reason == "gateway stopped" for s in line.consumer.states(m)) for m in line.machines)

        for n in range(1, 4):
            await line.produce(15)
            line.edge.kill9()  # no flush, no goodbye: like a power loss
            kills.append(time.time())
            await line.produce(10)
            line.edge.start()
            # the restarted gateway is up and said so before the next kill (on a loaded machine its
            # start can take longer than 15 parts: a kill before it ran would merge two outages)
            await async_wait_until(lambda n=n: stops_seen() >= n, 30, what=f"restart {n} reported")  # type: ignore[misc]
        await line.expect_exact_totals()
        # nobody watched the machines while the gateway was down: their history says so
        for m in line.machines:
            stopped = [s for s in line.consumer.states(m) if s.reason == "gateway stopped"]
            assert len(stopped) == 3, [(s.state, s.reason) for s in line.consumer.states(m)]
            for s, killed in zip(stopped, kills, strict=True):
                assert s.state == "offline" and killed - 2.5 <= s.ts <= killed
        epochs = line.epochs()
        assert len(epochs) == 1, "a restart must keep the epoch (the outbox survived)"
        seqs = line.check_seqs(epochs[0])  # no gap, no seq reused
        assert line.consumer.gaps == []
        assert len(seqs) > 30
    finally:
        line.edge.stop()


OPEN_ACL = "user consumer\ntopic readwrite plantpulse/#\n\nuser gw1\ntopic readwrite plantpulse/#\n"
NO_EVENTS_ACL = (
    "user consumer\ntopic readwrite plantpulse/#\n\nuser gw1\n"
    "topic write plantpulse/v1/t/gw1/status\ntopic write plantpulse/v1/t/gw1/health\n"
    "topic write plantpulse/v1/t/gw1/snapshot\ntopic read plantpulse/v1/t/gw1/cmd/#\n"
)


async def test_outbox_deleted_starts_a_new_epoch(
    tmp_path: Path, broker_factory: Callable[..., Mosquitto], plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = broker_factory(users={"gw1": "pw-gw1", "consumer": "pw-consumer"}, acl=OPEN_ACL)
    (tmp_path / "gw1.pw").write_text("pw-gw1\n")
    monkeypatch.setenv("PP_CONSUMER_PW", "pw-consumer")
    consumer = ReferenceConsumer(
        MqttConfig(host=broker.host, port=broker.port, username="consumer", password_env="PP_CONSUMER_PW",
                   keepalive=5, reconnect_max=1),
        hold_max_age=3.0, replay_retry=1.0,
    )
    await consumer.start()
    consumers.append(consumer)
    plant = plant_factory(plant_yaml())
    edge = EdgeProcess(
        tmp_path / "edge", broker, edge_id="gw1", site="t", machines=edge_machines(plant), count_interval=0.5,
        mqtt={"username": "gw1", "password_file": str(tmp_path / "gw1.pw")},
    )
    line = Line(plant, edge, consumer)
    try:
        await line.start()
        await line.produce(20)
        old_epoch = line.epochs()[0]
        # the broker refuses the gateway's events (an ACL change) while its health still announces
        # the seqs: the consumer knows of events it will never get
        broker.set_acl(NO_EVENTS_ACL)
        applied_before = len(consumer.applied("gw1", old_epoch))
        await async_wait_until(lambda: (_latest(line) or 0) > applied_before + 5, 30,
                               what="health announcing seqs the consumer does not have")
        # then the gateway's disk is replaced: the outbox (and its epoch) is gone
        edge.kill9()
        for f in edge.data_dir.glob("outbox.sqlite*"):
            f.unlink()
        broker.set_acl(OPEN_ACL)
        edge.start()
        await async_wait_until(lambda: len(line.epochs()) == 2, 30, what="the new epoch's events")
        new_epoch = next(e for e in line.epochs() if e != old_epoch)
        await line.produce(10)
        await async_wait_until(lambda: any(g.epoch == old_epoch for g in consumer.gaps), 30,
                               what="the old epoch's remainder recorded as a gap")
        gaps = [g for g in consumer.gaps if g.epoch == old_epoch]
        assert all(g.reason == "epoch_replaced" for g in gaps)
        assert gaps[0].first == applied_before + 1 or gaps[0].first > applied_before
        # the new epoch starts at seq 1 and nothing of it is discarded as a duplicate
        new_seqs = consumer.applied("gw1", new_epoch)
        assert min(new_seqs) == 1
        assert sorted(new_seqs) == list(range(1, len(new_seqs) + 1))
    finally:
        edge.stop()


def _latest(line: Line) -> int | None:
    view = line.consumer.gateways.get(line.edge.edge_id)
    return view.health.latest_seq if view is not None and view.health is not None else None


async def test_buffer_too_small_coalesces_then_drops_and_reports(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer],
) -> None:
    line = await make_line(tmp_path, mosquitto, plant_factory(plant_yaml(speed=60)), consumers,
                           buffer={"max_events": 100, "max_bytes": 1_000_000})
    try:
        await line.start()
        await line.produce(10)
        mosquitto.stop()
        await line.produce(900)  # far more events than 100 while nothing can be sent
        mosquitto.start()
        line.plant.pause()
        await async_wait_until(lambda: any(g.reason == "buffer_full" for g in line.consumer.gaps), 30,
                               what="the dropped ranges recorded as data gaps")
        view = line.consumer.gateways["gw1"]

        def drained() -> bool:
            h = view.health
            return h is not None and h.buffer_events == 0 and h.confirmed_seq == h.latest_seq

        await async_wait_until(drained, 60, what="every event confirmed, past the gaps")
        health = view.health
        assert health is not None
        assert health.coalesced_total > 0 and health.dropped_total > 0
        assert health.dropped == []  # the consumer settled every dropped range
        dropped = sum(g.count or 0 for g in line.consumer.gaps if g.reason == "buffer_full")
        assert dropped == health.dropped_total
        assert line.edge.process.running(), "the gateway keeps running"
        for m in line.machines:
            got, truth = line.consumer.totals(m, "gw1"), line.truth(m)
            assert 0 < got[0] <= truth[0] and got[1] <= truth[1]  # dropped events take parts with them
    finally:
        line.edge.stop()


async def test_tls_with_password_and_a_stale_will(
    tmp_path: Path, broker_factory: Callable[..., Mosquitto], plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = broker_factory(tls=True, users={"gw1": "pw-gw1", "consumer": "pw-consumer"})
    assert broker.tls is not None and broker.tls_port is not None
    tls = {"ca_file": str(broker.tls.ca_cert), "cert_file": str(broker.tls.client_cert),
           "key_file": str(broker.tls.client_key)}
    (tmp_path / "gw1.pw").write_text("pw-gw1\n")
    monkeypatch.setenv("PP_CONSUMER_PW", "pw-consumer")
    consumer = ReferenceConsumer(
        MqttConfig.model_validate({"host": "localhost", "port": broker.tls_port, "username": "consumer",
                                   "password_env": "PP_CONSUMER_PW", "tls": tls, "keepalive": 5, "reconnect_max": 1}),
        hold_max_age=3.0, replay_retry=1.0,
    )
    await consumer.start()
    consumers.append(consumer)
    plant = plant_factory(plant_yaml())
    edge = EdgeProcess(
        tmp_path / "edge", broker, edge_id="gw1", site="t", machines=edge_machines(plant), count_interval=0.5,
        mqtt={"host": "localhost", "port": broker.tls_port, "username": "gw1",
              "password_file": str(tmp_path / "gw1.pw"), "tls": tls},
    )
    line = Line(plant, edge, consumer)
    try:
        await line.start()
        await line.produce(20)
        view = consumer.gateways["gw1"]
        assert view.online and view.birth >= 1
        # a real Last Will: the gateway dies without a goodbye
        edge.kill9()
        await async_wait_until(lambda: not view.online, 30, what="the Last Will")
        will = view.status
        assert will is not None and not will.online
        edge.start()
        await async_wait_until(lambda: view.online and view.birth > will.birth, 30, what="the new birth")
        # the old Will arrives again, late (a retransmission, a bridged broker...): it is stale
        stale = tmp_path / "will.json"
        stale.write_text(will.model_dump_json())
        edge_probe = ReferenceConsumer(
            MqttConfig.model_validate({"host": "localhost", "port": broker.tls_port, "username": "gw1",
                                       "password_file": str(tmp_path / "gw1.pw"), "tls": tls}),
            client_id="stale-will-replayer",
        )
        await edge_probe.start()
        consumers.append(edge_probe)
        assert edge_probe._link is not None
        await edge_probe._link.publish("plantpulse/v1/t/gw1/status", will.model_dump_json().encode(), retain=False)
        await async_wait_until(lambda: edge_probe.gateways.get("gw1") is not None, 10)
        await line.produce(10)
        assert view.online, "a stale Will marked the reconnected gateway offline"
        await line.expect_exact_totals()
    finally:
        edge.stop()


async def test_sigterm_flushes_counted_parts_and_metrics_are_served(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    consumers: list[ReferenceConsumer],
) -> None:
    metrics_port = free_port()
    # parts are reported at most every 60 s: at the stop they are still only counted in memory
    line = await make_line(tmp_path, mosquitto, plant_factory(plant_yaml(faults=False)), consumers,
                           count_interval=60.0, health={"interval": 1.0, "metrics_port": metrics_port})
    try:
        await line.start()
        await line.produce(30)
        text = await async_wait_until(lambda: _get(f"http://127.0.0.1:{metrics_port}/metrics"), 10,
                                      what="/metrics served")
        for name in ("plantpulse_edge_buffer_events", "plantpulse_edge_confirmed_seq",
                     "plantpulse_edge_poll_latency_p99_ms", 'plantpulse_edge_machine_reachable{edge_id="gw1"',
                     "plantpulse_edge_dropped_events_total", "plantpulse_edge_clock_seconds",
                     'plantpulse_edge_broker_connected{edge_id="gw1"} 1.0'):
            assert name in text, name
        line.plant.pause()
        truth = {m: line.truth(m) for m in line.machines}
        # the gateway has read the paused plant (its final counters) before it is stopped
        reads_at_pause = _reads(_get(f"http://127.0.0.1:{metrics_port}/metrics") or "")
        await async_wait_until(
            lambda: all(n >= reads_at_pause[m] + 2
                        for m, n in _reads(_get(f"http://127.0.0.1:{metrics_port}/metrics") or "").items()),
            10, what="two more reads of every paused machine",
        )
        assert line.edge.stop() == 0  # SIGTERM: flush, publish, say offline, exit 0
        await async_wait_until(
            lambda: all(line.consumer.totals(m, "gw1") == truth[m] for m in line.machines), 15,
            what="the flushed counts at the consumer",
        )
        view = line.consumer.gateways["gw1"]
        assert view.online is False and view.status is not None  # an offline status, not a Will
    finally:
        line.edge.stop()


def _get(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def _reads(metrics: str) -> dict[str, float]:
    """machine id -> reads so far, from the gateway's /metrics."""
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("plantpulse_edge_reads_total{"):
            machine = line.split('machine_id="', 1)[1].split('"', 1)[0]
            out[machine] = float(line.rsplit(" ", 1)[1])
    return out
