"""Central scaled out, end to end: ingest workers and API replicas on one PostgreSQL, real processes.

20 gateways (``bench/_fleet.py``: each a real outbox and the real forwarder) with a backlog and live
traffic; 3 workers, then one killed with SIGKILL mid-stream, a fourth started, one stopped cleanly.
At the end: every machine's parts in the store and in both API replicas equal what the gateways
sent, each gateway's applied ranges are exactly 1..latest (no gap; a seq applied twice would have
added its parts twice), every gateway is owned by exactly one live worker and no worker holds more
than its share plus one. The lease is 4 s here (15 s by default) to keep the test short.

The broker is an open one: the fleet's 20 synthetic gateways log in as nobody (the ACL is tested
with real gateways in tests/test_broker_acl.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.postgres import write_dsn_file
from tests.fixtures.procs import ManagedProcess, python_module
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until

GATEWAYS = 20
LEASE = 4.0

pytestmark = pytest.mark.slow


def read_report(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def stream_snapshot(api: CentralProcess) -> dict[str, Any]:
    """The first event of the live stream (everything, on connect), without its time stamp."""
    with api.http.stream("GET", "/api/v1/stream") as response:
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "snapshot":
                data: dict[str, Any] = json.loads(line.split(":", 1)[1])
                data.pop("server_time", None)
                return data
    raise AssertionError("no snapshot on the stream")


async def leases(dsn: str) -> list[asyncpg.Record]:
    con = await asyncpg.connect(dsn)
    try:
        return await con.fetch("SELECT edge_id, owner, expires_at > extract(epoch from clock_timestamp()) AS live "
                               "FROM gateway_leases ORDER BY edge_id")
    finally:
        await con.close()


async def wait_for(check: Callable[[], Any], timeout: float, what: str) -> None:
    """``check`` is a coroutine function returning truthy when done (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_workers_share_fail_over_and_hand_over_exactly_once(
    broker_factory: Callable[..., Mosquitto], pg_dsn: str, tmp_path: Path,
) -> None:
    broker = broker_factory(anonymous=True)
    dsn_file = write_dsn_file(tmp_path, pg_dsn)
    started: list[CentralProcess] = []

    def central(name: str, command: str) -> CentralProcess:
        proc = CentralProcess(tmp_path / name, broker, command=command,
                              store={"kind": "postgresql", "dsn_file": str(dsn_file)},
                              cluster={"lease_seconds": LEASE, "refresh_interval": 0.2},
                              site="fleet", ingest={"ack_interval": 0.2})
        started.append(proc)
        return proc.start()

    report_path = tmp_path / "fleet.json"
    fleet = ManagedProcess("fleet", python_module(
        "bench._fleet", "--port", str(broker.port), "--dir", str(tmp_path / "fleet"), "--report", str(report_path),
        "--gateways", str(GATEWAYS), "--backlog", "300", "--rate", "200", "--live", "15", "--resend-after", "3"),
        tmp_path / "fleet.log")
    try:
        workers = [central(f"w{i}", "ingest") for i in range(3)]
        api = [central("api0", "api"), central("api1", "api")]
        fleet.start()

        async def all_owned() -> bool:
            rows = await leases(pg_dsn)
            return len(rows) == GATEWAYS and all(r["owner"] and r["live"] for r in rows)

        await wait_for(all_owned, 30, "every gateway owned")
        wait_until(lambda: read_report(report_path).get("seconds", 0) > 3, 20, what="traffic flowing")
        workers[0].kill9()  # mid-stream: its gateways must be taken over and resumed
        workers.append(central("w3", "ingest"))
        workers[1].stop()  # cleanly: its gateways handed over at once
        live_ids = {workers[2].worker, workers[3].worker}

        wait_until(lambda: read_report(report_path).get("confirmed"), 45, what="every event confirmed",
                   interval=0.5)
        report = read_report(report_path)

        async def balanced() -> bool:
            rows = await leases(pg_dsn)
            held = [sum(1 for r in rows if r["owner"] == w and r["live"]) for w in live_ids]
            return all(r["owner"] in live_ids and r["live"] for r in rows) and \
                max(held) <= math.ceil(GATEWAYS / 2) + 1
        await wait_for(balanced, 3 * LEASE, "every gateway owned by exactly one live worker, balanced")

        con = await asyncpg.connect(pg_dsn)
        try:
            for edge_id, gw in report["gateways"].items():
                settled = await con.fetchval("SELECT settled FROM epochs WHERE edge_id = $1 AND epoch = $2",
                                             edge_id, gw["epoch"])
                assert json.loads(settled) == [[1, gw["latest_seq"]]], f"{edge_id}: a gap or a hole"
            stored = {r[0]: r[1] for r in await con.fetch("SELECT machine_id, sum(good) FROM counts GROUP BY 1")}
            totals = {r[0]: json.loads(r[1])["good_total"] for r in await con.fetch(
                "SELECT machine_id, data FROM machine_status")}
        finally:
            await con.close()
        # each count row once per (edge, epoch, seq), and the running totals (a seq applied twice would have
        # added its parts twice there) equal to what the gateways sent
        assert stored == report["good"] == totals

        def replicas_agree() -> bool:
            answers = [a.get("/api/v1/machines")["machines"] for a in api]
            gateways = [a.get("/api/v1/gateways") for a in api]
            for g in gateways:
                g.pop("server_time", None)
            totals = {m["id"]: m["good_total"] for m in answers[0]}
            return answers[0] == answers[1] and gateways[0] == gateways[1] and totals == report["good"]
        wait_until(replicas_agree, 10, what="both API replicas answering what was sent")
        # the live stream's snapshot too: the same from both replicas
        snapshots = [stream_snapshot(a) for a in api]
        assert snapshots[0] == snapshots[1] and {m["id"]: m["good_total"] for m in snapshots[0]["machines"]} \
            == report["good"]
    finally:
        fleet.stop()
        for proc in started:
            proc.stop()
