"""The shop floor's and planners' API against a real central process (issue 13): import, scan to report,
stop reasons, OEE, audit trail, reassignment, repair ETAs, and what a report key may and may not do."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.procs import REPO
from tests.fixtures.services import CentralProcess

WRITE, REPORT, READ = "write-key-for-tests", "report-key-for-tests", "read-key-for-tests"
PLANT = {
    "timezone": "Asia/Shanghai",
    "lines": [{"id": "a", "shifts": {"timezone": "Asia/Shanghai", "shifts": [
        {"name": "day", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"}]}}],
    "machines": [{"id": "cnc-01", "line": "a", "ideal_cycle_time": 40}, {"id": "mill-01", "line": "a"},
                 {"id": "press-01"}, {"id": "weld-01", "work_centre": "welding"}, {"id": "asm-01",
                                                                                   "work_centre": "assembly"}],
}


def keys() -> list[dict[str, Any]]:
    return [{"name": name, "role": role, "sha256": hashlib.sha256(key.encode()).hexdigest()}
            for name, role, key in (("planning", "write", WRITE), ("scanner", "report", REPORT),
                                    ("board", "read", READ))]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def central(mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]) -> CentralProcess:
    return central_factory(mosquitto, read_key=READ, api={"open_reads": False, "keys": keys()}, plant=PLANT)


def post(http: httpx.Client, path: str, key: str, **kw: Any) -> httpx.Response:
    return http.post(path, headers={**auth(key), **kw.pop("headers", {})}, **kw)


def report(order: str, seq: int, kind: str = "count", cid: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"client_id": cid or str(uuid.uuid4()), "operator": "W-0231", "order_id": order, "seq": seq,
            "kind": kind, **kw}


CSV = (REPO / "examples" / "orders-import.csv").read_bytes()


def test_import_dry_run_then_upsert_with_row_errors_and_xlsx(central: CentralProcess) -> None:
    http = central.http
    dry = post(http, "/api/v1/orders/import?dry_run=true", WRITE, content=CSV, headers={"content-type": "text/csv"})
    assert dry.status_code == 200, dry.text
    assert dry.json()["counts"] == {"created": 2, "updated": 0, "unchanged": 0} and dry.json()["dry_run"]
    assert central.get("/api/v1/orders")["orders"] == []  # a dry run changes nothing
    done = post(http, "/api/v1/orders/import", WRITE, content=CSV, headers={"content-type": "text/csv"})
    assert done.json()["counts"]["created"] == 2
    order = central.get("/api/v1/orders/SO-1002")
    assert [op["seq"] for op in order["operations"]] == [10, 20, 30]
    again = post(http, "/api/v1/orders/import", WRITE, files={"file": ("plan.csv", CSV, "text/csv")})
    assert again.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 2}
    # an XLSX upload that changes a due time and has one bad row: nothing imported, the row named
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["order", "product", "quantity", "due", "seq", "operation", "machine", "cycle_time"])
    ws.append(["SO-1001", "bracket", 120, "2026-12-04 18:00", 10, "turn", "cnc-01", 45])
    ws.append(["SO-1001", "bracket", 120, None, 20, "mill", "mill-01", "fast"])
    out = io.BytesIO()
    book.save(out)
    bad = post(http, "/api/v1/orders/import", WRITE, files={"file": ("plan.xlsx", out.getvalue())})
    assert bad.status_code == 422
    assert [(e["row"], e["column"]) for e in bad.json()["errors"]] == [(3, "cycle_time")]
    ws["H3"] = 120
    out = io.BytesIO()
    book.save(out)
    good = post(http, "/api/v1/orders/import", WRITE, files={"file": ("plan.xlsx", out.getvalue())})
    assert good.status_code == 200, good.text
    assert good.json()["orders"][0]["changes"] == ["due"]
    audit = central.get("/api/v1/audit", order_id="SO-1001")["audit"]
    assert [(a["action"], a["by"]) for a in audit] == [("import", "planning"), ("import", "planning")]
    assert post(http, "/api/v1/orders/import", WRITE, content=b"\x00\x01garbage").status_code in (400, 422)
    assert post(http, "/api/v1/orders/import", REPORT, content=CSV).status_code == 403
    assert post(http, "/api/v1/orders/import", READ, content=CSV).status_code == 403


def test_scan_to_report_counts_once_refuses_reuse_and_a_report_key_may_only_report(central: CentralProcess) -> None:
    http = central.http
    assert post(http, "/api/v1/orders/import", WRITE, content=CSV).status_code == 200
    # a report key may report and read, and do nothing else
    assert http.get("/api/v1/orders/SO-1001", headers=auth(REPORT)).status_code == 200
    body = {"id": "X-1", "product": "p", "quantity": 1, "due": 1796371200, "operations": [
        {"seq": 10, "name": "t", "machine": "cnc-01", "quantity": 1, "ideal_cycle_time": 1}]}
    refused = post(http, "/api/v1/orders", REPORT, json=body)
    assert refused.status_code == 403 and "report" in refused.json()["detail"]
    assert post(http, "/api/v1/orders/SO-1001/cancel", REPORT).status_code == 403
    assert post(http, "/api/v1/reports", READ, json=report("SO-1001", 10, good=1)).status_code == 403
    # start by scan, a correction, its duplicate, and a reuse of its id
    start = post(http, "/api/v1/reports", REPORT, json=report("SO-1001", 10, "start"))
    assert start.status_code == 201, start.text
    assert central.get("/api/v1/orders/SO-1001")["operations"][0]["status"] == "running"
    scan = report("SO-1001", 10, good=5, scrap=1)
    first = post(http, "/api/v1/reports", REPORT, json=scan)
    assert first.status_code == 201 and first.json()["correction"] is True
    twice = post(http, "/api/v1/reports", REPORT, json=scan)
    assert twice.status_code == 200 and twice.json()["duplicate"] is True
    assert post(http, "/api/v1/reports", REPORT, json={**scan, "good": 6}).status_code == 409
    op = central.get("/api/v1/orders/SO-1001")["operations"][0]
    assert (op["good"], op["scrap"]) == (5, 1)  # counted once
    # an operation counted by reports completes at its quantity; a closed one cannot start
    for seq in (10, 20):
        post(http, f"/api/v1/orders/SO-1002/operations/{seq}/finish", WRITE)
    assert post(http, "/api/v1/reports", REPORT, json=report("SO-1002", 30, "start", machine="asm-01")).is_success
    assert post(http, "/api/v1/reports", REPORT, json=report("SO-1002", 30, good=60)).status_code == 201
    assert central.get("/api/v1/orders/SO-1002")["operations"][2]["status"] == "done"
    closed = post(http, "/api/v1/reports", REPORT, json=report("SO-1002", 30, "start", machine="asm-01"))
    assert closed.status_code == 409
    assert post(http, "/api/v1/reports", REPORT, json=report("SO-9", 10, good=1)).status_code == 404
    assert post(http, "/api/v1/reports", REPORT, json=report("SO-1001", 10, good=0)).status_code == 422
    audit = central.get("/api/v1/audit", order_id="SO-1001")["audit"]
    assert audit[0]["action"] == "start" and audit[0]["by"] == "W-0231 via scanner"
    listed = central.get("/api/v1/reports", operator="W-0231", order_id="SO-1001")["reports"]
    assert [(r["kind"], r["good"]) for r in listed] == [("start", 0), ("count", 5)]


def test_stop_reasons_oee_repair_eta_and_reassignment(central: CentralProcess) -> None:
    http = central.http
    stop = {"client_id": "s-1", "operator": "W-7", "machine": "mill-01", "reason": "material", "note": "castings"}
    assert post(http, "/api/v1/stops", REPORT, json=stop).status_code == 201
    assert post(http, "/api/v1/stops", REPORT, json=stop).json()["duplicate"] is True
    assert post(http, "/api/v1/stops", REPORT, json={**stop, "reason": "tooling"}).status_code == 409
    assert post(http, "/api/v1/stops", REPORT, json={**stop, "client_id": "s-2", "reason": "other",
                                                      "note": None}).status_code == 422
    assert [s["reason"] for s in central.get("/api/v1/stops", machine="mill-01")["stops"]] == ["material"]
    oee = central.get("/api/v1/oee", line="a")
    assert [m["subject"] for m in oee["machines"]] == ["cnc-01", "mill-01"] and "a" in oee["lines"]
    assert http.get("/api/v1/oee", params={"machine": "nope"}, headers=auth(READ)).status_code == 404
    assert http.get("/api/v1/oee", params={"start": "yesterday"}, headers=auth(READ)).status_code == 400
    # repair ETAs: in the future only, withdrawn on request
    now = central.get("/api/v1/machines")["server_time"]
    put = http.put("/api/v1/machines/cnc-01/repair-eta", json={"until": now + 3600}, headers=auth(WRITE))
    assert put.status_code == 200 and put.json()["by"] == "planning"
    assert central.get("/api/v1/machines/cnc-01/repair-eta")["until"] == now + 3600
    assert http.put("/api/v1/machines/cnc-01/repair-eta", json={"until": now - 60},
                    headers=auth(WRITE)).status_code == 400
    assert http.put("/api/v1/machines/cnc-01/repair-eta", json={"until": now + 60},
                    headers=auth(REPORT)).status_code == 403
    assert http.delete("/api/v1/machines/cnc-01/repair-eta", headers=auth(WRITE)).json()["until"] is None
    # reassignment: only spans no operation ran in; audited
    assert post(http, "/api/v1/orders/import", WRITE, content=CSV).status_code == 200
    body = {"machine": "cnc-01", "start": now - 7200, "end": now - 3600, "order_id": "SO-1001", "seq": 10}
    moved = post(http, "/api/v1/counts/reassign", WRITE, json=body)
    assert moved.status_code == 200 and moved.json()["count_events"] == 0
    assert post(http, "/api/v1/counts/reassign", WRITE, json=body).status_code == 409  # it ran then now
    assert post(http, "/api/v1/counts/reassign", WRITE, json={**body, "seq": 99}).status_code == 404
    assert central.get("/api/v1/audit", order_id="SO-1001")["audit"][0]["action"] == "reassign"
    span = central.get("/api/v1/orders/SO-1001/operations/10/oee", start=now - 7200, end=now)
    assert span["oee"]["planned"] >= 0 and len(span["spans"]) == 1
    assert central.get("/api/v1/counts/unassigned")["counts"] == []
    assert central.get("/api/v1/shift-summaries")["summaries"] == []


def test_the_import_command_line_prints_row_errors_and_imports(central: CentralProcess, tmp_path: Path) -> None:
    bad = tmp_path / "plan.csv"
    bad.write_text(CSV.decode().replace("2026-12-04 16:00", "tomorrow"))
    env = {**os.environ, "PLANTPULSE_KEY": WRITE}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central", "import-orders", *args, "--url", central.url],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    refused = run(str(bad))
    assert refused.returncode == 1 and "row 2, due: 'tomorrow' is not a time" in refused.stderr
    checked = run(str(REPO / "examples" / "orders-import.csv"), "--dry-run")
    assert checked.returncode == 0 and "would import: 2 created" in checked.stdout
    assert central.get("/api/v1/orders")["orders"] == []
    done = run(str(REPO / "examples" / "orders-import.csv"))
    assert done.returncode == 0 and "imported: 2 created" in done.stdout and "SO-1001: created" in done.stdout
    assert len(central.get("/api/v1/orders")["orders"]) == 2
