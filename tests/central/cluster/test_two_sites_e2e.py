"""Two plants, one broker, one PostgreSQL, the same ids: real processes, nothing merges (issue 15).

Two fleets of synthetic gateways (``bench/_fleet.py``: real outboxes and the real forwarder), of sites
``plant-a`` and ``plant-b``, both named ``gw000..gw002`` with machines ``gw000-m0``..., with different backlogs;
one ``python -m central run`` per site on one PostgreSQL database and one broker. At the end each site's
rows hold exactly what its own fleet sent (per machine, and each gateway's applied ranges 1..latest), each
central answers its own site's totals, its site-qualified path answers the same and another site's is a 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.central.cluster.test_scaled_e2e import read_report
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.postgres import write_dsn_file
from tests.fixtures.procs import ManagedProcess, python_module
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow
SITES = {"plant-a": 120, "plant-b": 210}  # site -> backlog per gateway: different totals under the same ids


async def test_two_sites_with_the_same_ids_in_one_database_and_broker_never_merge(
    broker_factory: Callable[..., Mosquitto], pg_dsn: str, tmp_path: Path,
) -> None:
    broker = broker_factory(anonymous=True)
    dsn_file = write_dsn_file(tmp_path, pg_dsn)
    centrals: dict[str, CentralProcess] = {}
    fleets: dict[str, ManagedProcess] = {}
    reports = {site: tmp_path / f"{site}.json" for site in SITES}
    try:
        for site, backlog in SITES.items():
            centrals[site] = CentralProcess(tmp_path / site, broker, site=site, ingest={"ack_interval": 0.2},
                                            store={"kind": "postgresql", "dsn_file": str(dsn_file)}).start()
            fleet = fleets[site] = ManagedProcess(f"fleet-{site}", python_module(
                "bench._fleet", "--port", str(broker.port), "--dir", str(tmp_path / f"fleet-{site}"), "--site", site,
                "--report", str(reports[site]), "--gateways", "3", "--backlog", str(backlog), "--rate", "30",
                "--live", "2", "--resend-after", "2"), tmp_path / f"fleet-{site}.log")
            fleet.start()
        for site in SITES:
            wait_until(lambda s=site: read_report(reports[s]).get("confirmed"), 45,  # type: ignore[misc]
                       what=f"every event of {site} confirmed", interval=0.3)
        sent = {site: read_report(reports[site]) for site in SITES}
        assert sent["plant-a"]["good"] != sent["plant-b"]["good"] and set(sent["plant-a"]["good"]) == set(
            sent["plant-b"]["good"])  # the same machine ids, other totals

        con = await asyncpg.connect(pg_dsn)
        try:
            for site, report in sent.items():
                stored = {r[0]: r[1] for r in await con.fetch(
                    "SELECT machine_id, sum(good) FROM counts WHERE site = $1 GROUP BY 1", site)}
                assert stored == report["good"], site
                for edge_id, gw in report["gateways"].items():
                    settled = await con.fetchval("SELECT settled FROM epochs WHERE site = $1 AND edge_id = $2 "
                                                 "AND epoch = $3", site, edge_id, gw["epoch"])
                    assert json.loads(settled) == [[1, gw["latest_seq"]]], f"{site}/{edge_id}: a gap or a hole"
        finally:
            await con.close()

        def answers(site: str, path: str) -> dict[str, Any]:
            got: dict[str, Any] = centrals[site].get(path)
            return got

        for site, report in sent.items():
            def totals(s: str = site, p: str = "/api/v1/machines") -> dict[str, int]:
                return {m["id"]: m["good_total"] for m in answers(s, p)["machines"]}
            wait_until(lambda t=totals, r=report: t() == r["good"], 10,  # type: ignore[misc]
                       what=f"{site}'s central answering its own totals")
            assert totals(site, f"/api/v1/sites/{site}/machines") == report["good"]
            other = next(s for s in SITES if s != site)
            response = centrals[site].http.get(f"/api/v1/sites/{other}/machines")
            assert response.status_code == 404 and site in response.json()["detail"]
    finally:
        for fleet in fleets.values():
            fleet.stop()
        for central in centrals.values():
            central.stop()
