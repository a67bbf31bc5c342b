"""Site-qualified API paths against a real central process (issue 15): ``/api/v1/sites/{site}/<path>`` is
``/api/v1/<path>`` on the central serving {site}, so a group's proxy can route each plant's prefix to its
central. The same answers (reads, writes, the live stream), the same keys, and 404 for another site."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.services import CentralProcess

READ, WRITE = "read-key-for-tests", "write-key-for-tests"
R, W = {"Authorization": f"Bearer {READ}"}, {"Authorization": f"Bearer {WRITE}"}
SITE = "suzhou-1"


@pytest.fixture
def central(mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]) -> CentralProcess:
    keys = [{"name": "reader", "role": "read", "sha256": hashlib.sha256(READ.encode()).hexdigest()},
            {"name": "writer", "role": "write", "sha256": hashlib.sha256(WRITE.encode()).hexdigest()}]
    return central_factory(mosquitto, site=SITE, api={"open_reads": False, "keys": keys},
                           plant={"machines": [{"id": "cnc-01"}]})


def order(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "product": "shaft", "quantity": 10, "due": time.time() + 86_400,
            "operations": [{"seq": 10, "name": "turn", "machine": "cnc-01", "quantity": 10, "ideal_cycle_time": 30}]}


def answer(response: httpx.Response) -> Any:
    """The answer but its clock (two requests are two instants)."""
    body = response.json()
    body.pop("server_time", None)
    return body


def test_every_route_answers_the_same_site_qualified_and_another_site_is_404(central: CentralProcess) -> None:
    http = central.http
    qualified = f"/api/v1/sites/{SITE}"
    created = http.post(f"{qualified}/orders", json=order("SO-1"), headers=W)  # a write through the prefix
    assert created.status_code == 201, created.text
    for _ in range(3):  # the two answers of one projection (the projector may run between the requests)
        plain, scoped = http.get("/api/v1/orders", headers=R), http.get(f"{qualified}/orders", headers=R)
        assert plain.status_code == scoped.status_code == 200
        if plain.json()["projected_at"] == scoped.json()["projected_at"]:
            break
    assert answer(plain) == answer(scoped) and [o["id"] for o in plain.json()["orders"]] == ["SO-1"]
    assert http.get(f"{qualified}/orders/SO-1", headers=R).json()["id"] == "SO-1"
    # the same keys: the prefix opens nothing
    assert http.get(f"{qualified}/orders").status_code == 401
    assert http.post(f"{qualified}/orders", json=order("SO-2"), headers=R).status_code == 403
    # which site this central serves: /api/v1/site and the public /healthz say it
    assert http.get(f"{qualified}/site", headers=R).json()["site"] == SITE
    assert http.get("/api/v1/site", headers=R).json()["site"] == SITE
    assert http.get("/healthz").json()["site"] == SITE
    # another site's prefix: never this plant's record under that plant's name
    other = http.get("/api/v1/sites/wuxi-1/orders", headers=R)
    assert other.status_code == 404 and other.headers["content-type"] == "application/json"
    assert other.json()["detail"].startswith("this central serves site 'suzhou-1', not 'wuxi-1': ")
    assert http.get("/api/v1/sites/wuxi-1/orders").status_code == 404  # no key needed to learn it is not here
    assert http.get(f"{qualified}/no-such-route", headers=R).status_code == 404
    assert "/api/v1/sites/{site}/" in http.get("/openapi.json").json()["info"]["description"]


def test_the_live_stream_through_the_site_qualified_path(central: CentralProcess) -> None:
    with central.http.stream("GET", f"/api/v1/sites/{SITE}/stream", params={"key": READ}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "event: snapshot"
        snapshot = json.loads(next(lines).split(":", 1)[1])
    assert [m["id"] for m in snapshot["machines"]] == ["cnc-01"]
    with central.http.stream("GET", "/api/v1/sites/wuxi-1/stream", params={"key": READ}) as response:
        assert response.status_code == 404
