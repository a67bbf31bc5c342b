"""``/healthz``: liveness for a supervisor or a load balancer (no plant data, no key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from central.api.deps import CentralDep

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness: 200 when ingest runs and the broker is connected")
async def healthz(central: CentralDep) -> JSONResponse:
    ok = central.failed is None and central.broker_connected
    body = {
        "status": "ok" if ok else "degraded",
        "site": central.cfg.site,  # which plant's central answered (behind a group's proxy)
        "broker_connected": central.broker_connected,
        "failed_task": central.failed,
        "failure": central.failure,
        "server_time": central.clock(),
        "uptime": central.clock() - central.started_at,
    }
    return JSONResponse(body, status_code=200 if ok else 503)
