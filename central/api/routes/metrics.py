"""``/metrics``: Prometheus text (a read key, like the API: Prometheus sends it as a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from central.api.deps import CentralDep

router = APIRouter(tags=["system"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(central: CentralDep) -> Response:
    return Response(generate_latest(central.metrics), media_type=CONTENT_TYPE_LATEST)
