"""``/api/v1/gaps`` and ``/api/v1/dead-letters``: what central could not apply, never hidden."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from central.api.deps import CentralDep
from central.api.schemas import DeadLetterList, DeadLetterPublic, GapList, GapPublic

router = APIRouter(prefix="/api/v1", tags=["records"])

Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page, newest first")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]


@router.get("/gaps", response_model=GapList, summary="Data gaps: seq ranges that will never arrive")
async def gaps(central: CentralDep, edge_id: str | None = None, limit: Limit = 100, offset: Offset = 0) -> GapList:
    rows = await central.store.gaps(edge_id, limit, offset)
    return GapList(gaps=[
        GapPublic(id=r.id, edge_id=r.gap.edge_id, epoch=r.gap.epoch, first=r.gap.first, last=r.gap.last,
                  reason=r.gap.reason, count=r.gap.count, start_ts=r.gap.start_ts, end_ts=r.gap.end_ts,
                  recorded_at=r.recorded_at)
        for r in rows
    ])


@router.get("/dead-letters", response_model=DeadLetterList, summary="Messages that could not be used, and why")
async def dead_letters(central: CentralDep, limit: Limit = 100, offset: Offset = 0) -> DeadLetterList:
    rows = await central.store.dead_letters(limit, offset)
    return DeadLetterList(dead_letters=[
        DeadLetterPublic(id=r.id, received_at=r.received_at, topic=r.topic, reason=r.reason,
                         payload=r.payload[:4096].decode("utf-8", "replace"), payload_bytes=len(r.payload))
        for r in rows
    ])
