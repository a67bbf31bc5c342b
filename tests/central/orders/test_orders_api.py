"""The orders API against a real central in process (real broker, real SQLite store, the real projector).

The planner's first call from the issue must just work; every bad request answers a clear 4xx;
changes are audited with the key's name, re-projected at once, on the live stream, and raise and
resolve delay alerts through the alert outbox.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.api.app import create_app
from central.config import CentralConfig
from central.runtime import Central
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import async_wait_until

READ, WRITE = "orders-read-key", "orders-write-key"
ISSUE_EXAMPLE: dict[str, Any] = {
    "id": "SO-1001", "product": "bracket", "customer": "ACME", "quantity": 120, "due": "2026-12-04T16:00:00+08:00",
    "operations": [{"seq": 10, "name": "turn", "machine": "cnc-01", "quantity": 120, "ideal_cycle_time": 45,
                    "setup_time": 900, "job": "1001"},
                   {"seq": 20, "name": "mill", "machine": "mill-01", "quantity": 120, "ideal_cycle_time": 120}]}
W = {"Authorization": f"Bearer {WRITE}"}
R = {"Authorization": f"Bearer {READ}"}


def config(broker: Mosquitto, tmp_path: Path) -> CentralConfig:
    return CentralConfig.model_validate({
        "site": "t", "mqtt": broker.mqtt(broker.central_login(), keepalive=5, reconnect_max=1),
        "store": {"path": str(tmp_path / "central.sqlite")},
        "api": {"keys": [
            {"name": "planner-anna", "role": "write", "sha256": hashlib.sha256(WRITE.encode()).hexdigest()},
            {"name": "board", "role": "read", "sha256": hashlib.sha256(READ.encode()).hexdigest()}]},
        "orders": {"projection_interval": 0.2, "confirm": 0, "margin": 60, "hysteresis": 60, "uncertainty": 0},
        "plant": {"machines": [{"id": "cnc-01", "work_centre": "turning"}, {"id": "cnc-02", "work_centre": "turning"},
                               {"id": "mill-01"}]},
    })


@pytest.fixture
async def api(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[tuple[Central, httpx.AsyncClient]]:
    async with Central.running(config(mosquitto, tmp_path)) as central:
        transport = httpx.ASGITransport(app=create_app(central))
        async with httpx.AsyncClient(transport=transport, base_url="http://central") as client:
            yield central, client


def order(order_id: str, due: float, *, parts: int = 10, machine: str = "cnc-01", **extra: Any) -> dict[str, Any]:
    return {"id": order_id, "product": "shaft", "quantity": parts, "due": due, **extra,
            "operations": [{"seq": 10, "name": "turn", "machine": machine, "quantity": parts,
                            "ideal_cycle_time": 30, "job": f"J-{order_id}"}]}


async def test_the_planners_first_call_just_works(api: tuple[Central, httpx.AsyncClient]) -> None:
    central, http = api
    created = await http.post("/api/v1/orders", json=ISSUE_EXAMPLE, headers=W)
    assert created.status_code == 201, created.text
    body = (await http.get("/api/v1/orders/SO-1001", headers=R)).json()
    assert (body["status"], body["percent"], body["quantity"]) == ("open", 0.0, 120)
    assert body["projected_finish"] is not None and "at_risk" in body and "why" in body
    turn, mill = body["operations"]
    assert (turn["seq"], turn["machine"], turn["good"], turn["status"], turn["projected_start"] is not None) == (
        10, "cnc-01", 0, "planned", True)
    # turn: 900 s setup + 120 x 45 s; mill after it: 120 x 120 s (no shift calendar: around the clock)
    assert mill["projected_finish"] - turn["projected_start"] == pytest.approx(900 + 120 * 45 + 120 * 120, abs=2)
    assert body["projected_finish"] == mill["projected_finish"]
    listed = (await http.get("/api/v1/orders", headers=R)).json()
    assert [o["id"] for o in listed["orders"]] == ["SO-1001"] and listed["orders"][0]["operations"] is None
    dispatch = (await http.get("/api/v1/machines/cnc-01/dispatch", headers=R)).json()
    assert [(e["order_id"], e["seq"]) for e in dispatch["operations"]] == [("SO-1001", 10)]
    (trail,) = await central.store.audit_trail(order_id="SO-1001")
    assert (trail.action, trail.by) == ("create", "planner-anna")


async def test_bad_requests_get_clear_4xx(api: tuple[Central, httpx.AsyncClient]) -> None:
    _, http = api
    due = time.time() + 86_400
    assert (await http.post("/api/v1/orders", json=order("A-1", due))).status_code == 401
    assert (await http.post("/api/v1/orders", json=order("A-1", due), headers=R)).status_code == 403
    no_zone = await http.post("/api/v1/orders", json={**order("A-1", due), "due": "2026-12-04T16:00:00"}, headers=W)
    assert no_zone.status_code == 422 and "due" in no_zone.json()["detail"]
    both = order("A-1", due)
    both["operations"][0]["work_centre"] = "turning"
    assert "exactly one" in (await http.post("/api/v1/orders", json=both, headers=W)).json()["detail"]
    assert (await http.post("/api/v1/orders", json=order("A-1", due), headers=W)).status_code == 201
    again = await http.post("/api/v1/orders", json=order("A-1", due), headers=W)
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    assert (await http.get("/api/v1/orders/NOPE", headers=R)).status_code == 404
    assert (await http.patch("/api/v1/orders/NOPE", json={"quantity": 3}, headers=W)).status_code == 404
    assert (await http.patch("/api/v1/orders/A-1", json={"quantity": 0}, headers=W)).status_code == 422
    bad_pos = {**order("A-2", due), "insert": {"positions": {"mill-01": 0}}}
    assert (await http.post("/api/v1/orders", json=bad_pos, headers=W)).status_code == 400
    assert (await http.post("/api/v1/orders/A-1/operations/99/start", headers=W)).status_code == 404
    assert (await http.post("/api/v1/orders/A-1/operations/10/pause", headers=W)).status_code == 409
    start_elsewhere = await http.post("/api/v1/orders/A-1/operations/10/start", json={"machine": "mill-01"}, headers=W)
    assert start_elsewhere.status_code == 400 and "move it" in start_elsewhere.json()["detail"]
    assert (await http.get("/api/v1/orders", params={"due_from": "soon"}, headers=R)).status_code == 400
    assert (await http.get("/api/v1/schedule", params={"start": 10, "end": 5}, headers=R)).status_code == 400
    assert (await http.get("/api/v1/machines/ghost/dispatch", headers=R)).status_code == 404
    unassigned = (await http.get("/api/v1/machines/cnc-01/unassigned", headers=R)).json()
    assert (unassigned["good"], unassigned["events"]) == (0, [])
    assert (await http.post("/api/v1/orders/A-1/cancel", headers=W)).json()["status"] == "cancelled"
    assert (await http.post("/api/v1/orders/A-1/cancel", headers=W)).status_code == 409


async def test_rush_insert_moves_ahead_and_makes_an_order_late_then_cancel_resolves(
    api: tuple[Central, httpx.AsyncClient],
) -> None:
    central, http = api
    now = time.time()
    # 10 parts x 30 s = 300 s of work, due in 900 s: on time; the rush order ahead needs 3000 s
    assert (await http.post("/api/v1/orders", json=order("SO-1", now + 900), headers=W)).status_code == 201
    assert (await http.get("/api/v1/orders/SO-1", headers=R)).json()["at_risk"] is False
    client = central.hub.connect()
    rush = order("RUSH-1", now + 86_400, parts=100, insert={"positions": {"cnc-01": 0}})
    assert (await http.post("/api/v1/orders", json=rush, headers=W)).status_code == 201
    dispatch = (await http.get("/api/v1/machines/cnc-01/dispatch", headers=R)).json()
    assert [e["order_id"] for e in dispatch["operations"]] == ["RUSH-1", "SO-1"]
    late = (await http.get("/api/v1/orders/SO-1", headers=R)).json()
    assert late["at_risk"] is True and late["why"]["cause"] == "rush_order_ahead"
    assert late["why"]["rush_order"] == "RUSH-1" and late["why"]["machine"] == "cnc-01"
    risky = (await http.get("/api/v1/orders", params={"at_risk": "true"}, headers=R)).json()["orders"]
    assert [o["id"] for o in risky] == ["SO-1"]
    (alert,) = await central.store.alerts(rule="order_at_risk", status="open")
    assert alert.subject == "SO-1" and alert.details["cause"] == "rush_order_ahead"
    assert alert.details["machine"] == "cnc-01" and alert.details["operation"] == 10
    events = await client.next()
    assert any(name == "order" and data["order"]["id"] == "SO-1" for name, data in events)
    # the rush order is cancelled: SO-1 is back on time and its alert resolves by itself
    assert (await http.post("/api/v1/orders/RUSH-1/cancel", json={"reason": "test"}, headers=W)).status_code == 200
    assert (await http.get("/api/v1/orders/SO-1", headers=R)).json()["at_risk"] is False
    assert await central.store.alerts(rule="order_at_risk", status="open") == []
    central.hub.disconnect(client)


async def test_operations_start_pause_finish_move_and_material(api: tuple[Central, httpx.AsyncClient]) -> None:
    central, http = api
    due = time.time() + 86_400
    for oid in ("SO-1", "SO-2"):
        assert (await http.post("/api/v1/orders", json=order(oid, due), headers=W)).status_code == 201
    started = await http.post("/api/v1/orders/SO-1/operations/10/start", headers=W)
    assert started.json() == {"order_id": "SO-1", "seq": 10, "status": "running", "machine": "cnc-01"}
    await async_wait_until(lambda: central.views.machine("cnc-01").operation is not None, 5,  # type: ignore[union-attr]
                           what="the machine view shows its operation")
    tile = (await http.get("/api/v1/machines/cnc-01", headers=R)).json()["operation"]
    assert (tile["order_id"], tile["seq"], tile["percent"], tile["at_risk"]) == ("SO-1", 10, 0.0, False)
    assert tile["eta"] is not None
    paused = await http.post("/api/v1/orders/SO-1/operations/10/pause", headers=W)
    assert paused.json()["status"] == "paused"
    moved = await http.post("/api/v1/orders/SO-2/operations/10/move", json={"machine": "cnc-02"}, headers=W)
    assert moved.json()["machine"] == "cnc-02"
    assert [e["order_id"] for e in (await http.get("/api/v1/machines/cnc-02/dispatch", headers=R)).json()[
        "operations"]] == ["SO-2"]
    short = {"short": True, "expected": time.time() + 7200, "note": "castings"}
    assert (await http.post("/api/v1/orders/SO-2/operations/10/material", json=short, headers=W)).status_code == 200
    op = (await http.get("/api/v1/orders/SO-2", headers=R)).json()["operations"][0]
    assert op["shortage"]["note"] == "castings" and op["bound_by"] == "material"
    assert op["projected_start"] >= short["expected"] - 1
    finished = await http.post("/api/v1/orders/SO-1/operations/10/finish", headers=W)
    assert finished.json()["status"] == "done"
    assert (await http.get("/api/v1/orders/SO-1", headers=R)).json()["status"] == "done"
    patched = await http.patch("/api/v1/orders/SO-2", json={"quantity": 20, "priority": 3}, headers=W)
    assert patched.json()["operations"][0]["quantity"] == 20 and patched.json()["priority"] == 3
    gantt = (await http.get("/api/v1/schedule", headers=R)).json()
    rows = {r["machine_id"]: r["blocks"] for r in gantt["rows"]}
    assert [b["order_id"] for b in rows["cnc-02"] if b["kind"] == "operation"] == ["SO-2"]
    assert [d["order_id"] for d in gantt["due"]] == ["SO-2"]
    actions = [a.action for a in reversed(await central.store.audit_trail())]
    assert actions == ["create", "create", "start", "pause", "move", "material", "finish", "change"]


async def test_orders_late_for_one_cause_share_one_notification_and_overdue_is_critical(
    api: tuple[Central, httpx.AsyncClient],
) -> None:
    central, http = api
    now = time.time()
    for oid, due in (("SO-1", now + 900), ("SO-2", now + 1200)):
        assert (await http.post("/api/v1/orders", json=order(oid, due), headers=W)).status_code == 201
    rush = order("RUSH-1", now + 86_400, parts=200, insert={"positions": {"cnc-01": 0}})
    assert (await http.post("/api/v1/orders", json=rush, headers=W)).status_code == 201
    risky = await central.store.alerts(rule="order_at_risk", status="open")
    assert sorted(a.subject for a in risky) == ["SO-1", "SO-2"]
    sent = [n for _, n in await central.store.due_deliveries(time.time() + 1, "mqtt") if n.rule.value ==
            "order_at_risk"]
    assert len(sent) == 1 and sent[0].details["grouped"] == 2 and sent[0].details["orders"] == "SO-1, SO-2"
    assert "SO-1, SO-2" in sent[0].message.en and sent[0].details["cause"] == "rush_order_ahead"
    # an order already past its due time: overdue, critical, with its cause
    late = await http.post("/api/v1/orders", json=order("OLD-1", now - 60, machine="mill-01"), headers=W)
    assert late.status_code == 201 and late.json()["overdue"] is True
    (overdue,) = await central.store.alerts(rule="order_overdue", status="open")
    assert overdue.subject == "OLD-1" and overdue.severity.value == "critical"


async def test_odd_requests_never_give_a_500(api: tuple[Central, httpx.AsyncClient]) -> None:
    _, http = api
    due = time.time() + 86_400
    assert (await http.post("/api/v1/orders", json=order("ODD-1", due), headers=W)).status_code == 201
    big = 2**70
    odd: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/orders", {**order("ODD-2", due), "insert": {"positions": {"cnc-01": big}}}),
        ("POST", "/api/v1/orders", {**order("ODD-3", due), "insert": {"positions": {"cnc-01": 99}}}),
        ("POST", "/api/v1/orders", {**order("ODD-4", due), "quantity": big}),
        ("POST", "/api/v1/orders", {**order("ODD-5", due), "due": 1e300}),
        ("POST", "/api/v1/orders", {**order("ODD-6", due), "due": "yesterday"}),
        ("POST", "/api/v1/orders", {**order("ODD 7", due)}),
        ("POST", "/api/v1/orders", {**order("ODD-8", due), "operations": []}),
        ("POST", "/api/v1/orders", [1, 2]),
        ("POST", "/api/v1/orders", "not json"),
        ("PATCH", "/api/v1/orders/ODD-1", {"due": -5}),
        ("PATCH", "/api/v1/orders/ODD-1", {"unknown": 1}),
        ("POST", f"/api/v1/orders/ODD-1/operations/{big}/start", None),
        ("POST", "/api/v1/orders/ODD-1/operations/-1/finish", None),
        ("POST", "/api/v1/orders/ODD-1/operations/10/move", {"machine": "cnc-02", "work_centre": "turning"}),
        ("POST", "/api/v1/orders/ODD-1/operations/10/move", {"position": 50}),
        ("POST", "/api/v1/orders/ODD-1/operations/10/move", {"machine": "../etc"}),
        ("POST", "/api/v1/orders/ODD-1/operations/10/material", {"short": True, "expected": 1e300}),
        ("POST", "/api/v1/orders/ODD-1/operations/10/start", {"machine": "cnc-02"}),
        ("POST", "/api/v1/orders/%2e%2e/cancel", None),
        ("GET", "/api/v1/orders?limit=0", None),
        ("GET", "/api/v1/schedule?start=0&end=1e12", None),
        ("GET", "/api/v1/machines/cnc-01/unassigned?start=abc", None),
    ]
    assert (await http.get("/api/v1/orders?due_from=1e300", headers=R)).json()["orders"] == []
    for method, url, body in odd:
        kwargs: dict[str, Any] = {"headers": W}
        if isinstance(body, str):
            kwargs["content"] = body
        elif body is not None:
            kwargs["json"] = body
        response = await http.request(method, url, **kwargs)
        assert 400 <= response.status_code < 500, (method, url, body, response.status_code, response.text)
        assert response.json()["detail"], (method, url)


async def test_while_a_backlog_is_applied_order_alerts_are_history_until_live_facts_confirm_them(
    api: tuple[Central, httpx.AsyncClient],
) -> None:
    central, http = api
    central.alerts.track.historic["cnc-01"] = True  # a gateway's backlog is being applied
    late = await http.post("/api/v1/orders", json=order("OLD-2", time.time() - 60), headers=W)
    assert late.status_code == 201 and late.json()["overdue"] is True
    (alert,) = await central.store.alerts(rule="order_overdue")
    assert alert.historic is True
    assert not [n for _, n in await central.store.due_deliveries(time.time() + 1, "mqtt") if n.subject == "OLD-2"]
    central.alerts.track.historic["cnc-01"] = False  # caught up: what still stands pages now
    await central.projector.settled()
    sent = [n for _, n in await central.store.due_deliveries(time.time() + 1, "mqtt") if n.subject == "OLD-2"]
    assert [n.kind.value for n in sent] == ["confirmed"]
