"""Bad input never stops central: malformed or spoofed messages are dead-lettered and counted,
and the API answers 4xx with a reason, never 500.

The publisher here is a hand-made MQTT client on purpose: a real gateway never sends these.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from plantpulse.protocol.models import CountEvent, EventBatch, MachineState, StateEvent, Status
from tests.fixtures.ids import EPOCH1
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.probe import publisher, send
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until


def test_malformed_and_spoofed_messages_are_dead_lettered(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]
) -> None:
    central = central_factory(mosquitto, site="s1")
    # what the broker lets through: a buggy gw1, a buggy gw2 claiming to be gw1, and (only the
    # tests' superuser may write there) a message under the reserved name _central
    client = publisher(mosquitto, mosquitto.gateway_login("s1", "gw1"))
    gw2 = publisher(mosquitto, mosquitto.gateway_login("s1", "gw2"))
    admin = publisher(mosquitto, mosquitto.admin_login())
    try:
        now = time.time()
        birth = Status(edge_id="gw1", online=True, birth=1, ts=now, epoch=EPOCH1, machines=["m1"])
        good = EventBatch(edge_id="gw1", epoch=EPOCH1, sent_at=now, events=[
            StateEvent(seq=1, machine_id="m1", ts=now, state=MachineState.RUNNING),
            CountEvent(seq=2, machine_id="m1", start=now, ts=now, good=3, scrap=0),
        ])
        negative = EventBatch(edge_id="gw1", epoch=EPOCH1, sent_at=now, events=[
            CountEvent(seq=3, machine_id="m1", start=now, ts=now, good=3, scrap=0),
        ])
        send(client, "plantpulse/v1/s1/gw1/status", birth.model_dump_json())
        send(client, "plantpulse/v1/s1/gw1/events", b"\x00\xffnot json")
        send(client, "plantpulse/v1/s1/gw1/events", '{"v": 1, "edge_id": "gw1"}')
        send(client, "plantpulse/v1/s1/gw1/events", negative.model_dump_json().replace('"good":3', '"good":-3'))
        send(client, "plantpulse/v1/s1/gw1/status", '{"v": 2, "edge_id": "gw1", "online": true}')
        send(gw2, "plantpulse/v1/s1/gw2/events", good.model_dump_json())  # gw2 speaking for gw1
        send(admin, "plantpulse/v1/s1/_central/events", good.model_dump_json())  # the reserved name
        send(client, "plantpulse/v1/s1/gw1/events", good.model_dump_json())  # ingest goes on
        wait_until(lambda: central.machine("m1")["good_total"] == 3, 10, what="the valid batch applied")
        letters = wait_until(lambda: (d := central.get("/api/v1/dead-letters")["dead_letters"]) and len(d) >= 6 and d,
                             10, what="six dead letters")
        reasons = [d["reason"] for d in letters]
        assert len(letters) == 6
        assert any("Invalid JSON" in r for r in reasons)
        assert any("events: Field required" in r or "Field required" in r for r in reasons)
        assert any("greater than or equal to 0" in r for r in reasons)
        assert any("does not match the topic's 'gw2'" in r for r in reasons)
        assert any("not a plantpulse v1 gateway topic" in r for r in reasons)
        assert any(d["payload"].startswith('{"v": 2') for d in letters)
        metrics = central.http.get("/metrics").text
        assert "plantpulse_central_dead_letters_total 6.0" in metrics
        # the spoofed batch changed nothing: there is no gateway gw2
        assert central.http.get("/api/v1/gateways/gw2").status_code == 404
    finally:
        for c in (client, gw2, admin):
            c.loop_stop()
            c.disconnect()


def test_api_answers_4xx_with_a_reason(mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]) -> None:
    central = central_factory(mosquitto, site="s1", plant={"machines": [{"id": "m1"}]})
    http = central.http
    cases = {
        "/api/v1/machines/nope": (404, "no machine 'nope'"),
        "/api/v1/machines/nope/timeline": (404, "no machine"),
        "/api/v1/gateways/nope": (404, "no gateway"),
        "/api/v1/machines/m1/timeline?start=yesterday": (400, "not a time"),
        "/api/v1/machines/m1/timeline?start=2026-11-25T08:00:00": (400, "no time zone"),
        "/api/v1/machines/m1/downtime?start=200&end=100": (400, "window is empty"),
        "/api/v1/machines/m1/downtime?start=0&end=1e12": (400, "at most"),
        "/api/v1/gaps?limit=0": (422, "limit"),
        "/api/v1/dead-letters?offset=-1": (422, "offset"),
    }
    for path, (status, text) in cases.items():
        response = http.get(path)
        assert response.status_code == status, (path, response.status_code, response.text)
        assert text in response.json()["detail"], (path, response.text)
    ok = http.get("/api/v1/machines/m1/downtime?start=2026-11-25T08:00:00%2B08:00&end=2026-11-25T20:00:00%2B08:00")
    assert ok.status_code == 200 and ok.json()["planned"] == 12 * 3600


def test_stale_will_does_not_mark_a_reconnected_gateway_offline(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]
) -> None:
    central = central_factory(mosquitto, site="s1")
    client = publisher(mosquitto, mosquitto.gateway_login("s1", "gw1"))
    try:
        now = time.time()
        birth2 = Status(edge_id="gw1", online=True, birth=2, ts=now, epoch=EPOCH1, machines=["m1"])
        will1 = Status(edge_id="gw1", online=False, birth=1, ts=now)
        send(client, "plantpulse/v1/s1/gw1/status", birth2.model_dump_json())
        send(client, "plantpulse/v1/s1/gw1/status", will1.model_dump_json())  # the old connection's Will, late
        wait_until(lambda: "plantpulse_central_stale_wills_total 1.0" in central.http.get("/metrics").text, 10)
        assert central.gateway("gw1")["online"] is True
        will2 = Status(edge_id="gw1", online=False, birth=2, ts=now)
        send(client, "plantpulse/v1/s1/gw1/status", will2.model_dump_json())
        wait_until(lambda: central.gateway("gw1")["online"] is False, 10, what="the current Will applied")
    finally:
        client.loop_stop()
        client.disconnect()
