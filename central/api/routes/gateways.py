"""``/api/v1/gateways``: every gateway's online flag, sequence numbers, buffer and clock skew."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from central.api.deps import CentralDep
from central.api.schemas import GatewayList, GatewayPublic, Problem

router = APIRouter(prefix="/api/v1/gateways", tags=["gateways"])


@router.get("", response_model=GatewayList, summary="Every gateway")
async def list_gateways(central: CentralDep) -> GatewayList:
    return GatewayList(server_time=central.clock(), gateways=central.views.gateways())


@router.get("/{edge_id}", response_model=GatewayPublic, responses={404: {"model": Problem}}, summary="One gateway")
async def get_gateway(edge_id: str, central: CentralDep) -> GatewayPublic:
    view = central.views.gateway(edge_id)
    if view is None:
        raise HTTPException(404, f"no gateway '{edge_id}' (GET /api/v1/gateways lists them)")
    return view
