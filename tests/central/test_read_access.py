"""Read access is one rule for every route, checked from the route table (issue 12): a route added later
cannot forget it. With ``api.open_reads: false`` (the default) every route but the public ones answers
401 without a key and serves a read key; writes need a write key; the stream checks its ``?key=``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, cast

from central.api.app import PUBLIC, create_app
from central.runtime import Central
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.services import CentralProcess

READ, WRITE = "read-key-for-tests", "write-key-for-tests"


def keys() -> list[dict[str, Any]]:
    return [{"name": "reader", "role": "read", "sha256": hashlib.sha256(READ.encode()).hexdigest()},
            {"name": "writer", "role": "write", "sha256": hashlib.sha256(WRITE.encode()).hexdigest()}]


def routes() -> list[tuple[str, str]]:
    """(method, path) of every route the application serves (the table, not a hand-made list)."""
    app = create_app(cast(Central, None))  # the table is static: no running central needed to read it
    flat: list[Any] = []
    for route in app.routes:
        if hasattr(route, "path"):
            flat.append(route)
        else:  # FastAPI >= 0.16x keeps an included router as one entry with its effective routes
            contexts = route.effective_route_contexts  # type: ignore[attr-defined]
            flat.extend(contexts() if callable(contexts) else contexts)
    out = []
    for route in flat:
        for method in sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
            out.append((method, str(route.path)))
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_needs_a_read_key_unless_it_is_public(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto, api={"open_reads": False, "keys": keys()})
    http = central.http
    table = routes()
    assert ("GET", "/api/v1/stream") in table and ("GET", "/metrics") in table
    for method, path in table:
        url = concrete(path)
        if path in PUBLIC:
            assert http.request(method, url).status_code != 401, (method, path)
            continue
        if path == "/api/v1/stream":
            with http.stream("GET", url) as response:
                assert response.status_code == 401
            with http.stream("GET", url, params={"key": "wrong"}) as response:
                assert response.status_code == 401
            with http.stream("GET", url, params={"key": READ}) as response:
                assert response.status_code == 200  # EventSource sends its key this way
            continue
        anonymous = http.request(method, url)
        assert anonymous.status_code == 401, (method, path, anonymous.status_code, anonymous.text)
        assert "key" in anonymous.json()["detail"]
        with_read = http.request(method, url, headers={"Authorization": f"Bearer {READ}"})
        if method == "GET":
            assert with_read.status_code not in (401, 403), (method, path, with_read.text)
        else:
            assert with_read.status_code == 403, (method, path, with_read.status_code)  # writes need write
            with_write = http.request(method, url, headers={"Authorization": f"Bearer {WRITE}"})
            assert with_write.status_code not in (401, 403), (method, path, with_write.text)


def test_open_reads_opens_reads_but_never_writes(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto, api={"open_reads": True, "keys": keys()})
    http = central.http
    for method, path in routes():
        if path == "/api/v1/stream" or path in PUBLIC:
            continue
        response = http.request(method, concrete(path))
        if method == "GET":
            assert response.status_code != 401, (method, path)
        else:
            assert response.status_code == 401, (method, path)
