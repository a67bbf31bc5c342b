"""The audit trail, unassigned counts and their reassignment, and maintenance's repair ETAs (issue 13).

``GET /api/v1/audit``: who (the API key's name; for scans, the operator via the key) changed what
and when, newest first. ``/api/v1/counts/unassigned``: counts a machine made while no operation ran
(kept, never dropped); ``POST /api/v1/counts/reassign`` gives such a span of a machine to an
operation (write key, audited). ``/api/v1/machines/{id}/repair-eta``: when maintenance expects the
machine back; the projection uses it instead of the MTTR until the machine runs again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from central.api.deps import CentralDep, Window, Writer, _instant
from central.api.routes.orders import _key
from central.progress.orders import ORDER_ID, ConflictError, Instant, NotFoundError, OrderError
from plantpulse.protocol.models import ID_PATTERN

router = APIRouter(prefix="/api/v1", tags=["audit"])


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except (OrderError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/audit", summary="The audit trail: who changed which order, what, and when (newest first)")
async def audit_trail(
    central: CentralDep,
    order_id: Annotated[str | None, Query(description="one order's", pattern=ORDER_ID)] = None,
    since: Annotated[str | None, Query(description="Unix seconds or ISO 8601 with offset")] = None,
    until: Annotated[str | None, Query(description="Unix seconds or ISO 8601 with offset")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    rows = await central.store.audit_trail(order_id=order_id, since=_instant(since, "since"),
                                           until=_instant(until, "until"), limit=limit, offset=offset)
    return {"server_time": central.clock(), "audit": [
        {"at": a.at, "by": a.by, "action": a.action, "order_id": a.order_id, "seq": a.seq, "before": dict(a.before),
         "after": dict(a.after)} for a in rows]}


@router.get("/counts/unassigned", summary="Counts made while no operation ran (kept; reassignable)")
async def unassigned(
    central: CentralDep, win: Window,
    machine: Annotated[str | None, Query(description="one machine's", pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    start, end = win
    rows = await central.store.unassigned_counts(machine, start, end, limit)
    totals: dict[str, dict[str, int]] = {}
    for c in rows:
        t = totals.setdefault(c.record.machine_id, {"good": 0, "scrap": 0, "events": 0})
        t["good"] += c.record.good
        t["scrap"] += c.record.scrap
        t["events"] += 1
    return {"start": start, "end": end, "server_time": central.clock(), "machines": totals,
            "counts": [{"machine_id": c.record.machine_id, "at": c.record.at, "good": c.record.good,
                        "scrap": c.record.scrap, "job": c.record.job} for c in rows]}


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, json_schema_extra={"examples": [
        {"machine": "cnc-01", "start": "2026-12-03T08:00:00+08:00", "end": "2026-12-03T09:30:00+08:00",
         "order_id": "SO-1001", "seq": 10}]})

    machine: str = Field(..., pattern=ID_PATTERN)
    start: Instant = Field(..., description="Unix seconds or ISO 8601 with offset")
    end: Instant = Field(..., description="Unix seconds or ISO 8601 with offset")
    order_id: str = Field(..., pattern=ORDER_ID)
    seq: int = Field(..., ge=1, le=1_000_000)


@router.post("/counts/reassign", summary="Give a machine's unassigned counts in a span to an operation (audited)")
async def reassign_counts(body: ReassignIn, central: CentralDep, who: Writer) -> dict[str, Any]:
    key = _key(body.order_id, body.seq)
    with _errors():
        moved = await central.floor.reassign(body.machine, key, body.start, body.end, by=who)
    return {"machine": body.machine, "order_id": key[0], "seq": key[1], "count_events": moved,
            "operation_good": central.orders.parts(key).good, "operation_scrap": central.orders.parts(key).scrap}


class RepairEtaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, json_schema_extra={"examples": [
        {"until": "2026-12-03T15:30:00+08:00", "note": "spindle bearing, part arrives 14:00"}]})

    until: Instant = Field(..., description="when the machine is expected to run again")
    note: str | None = Field(None, max_length=500)


def _machine(central: Any, machine_id: str) -> None:
    if machine_id not in central.live.statuses and machine_id not in central.catalog.configured_ids():
        raise HTTPException(404, f"no machine '{machine_id}' (GET /api/v1/machines lists them)")


@router.get("/machines/{machine_id}/repair-eta", summary="The repair ETA maintenance entered (null: none)")
async def get_repair_eta(machine_id: str, central: CentralDep) -> dict[str, Any]:
    _machine(central, machine_id)
    eta = central.projector.repair_eta.get(machine_id)
    return {"machine": machine_id, "until": eta.until if eta is not None else None}


@router.put("/machines/{machine_id}/repair-eta", summary="Maintenance: when the machine will run again")
async def put_repair_eta(machine_id: str, body: RepairEtaIn, central: CentralDep, who: Writer) -> dict[str, Any]:
    _machine(central, machine_id)
    if body.until <= central.clock():
        raise HTTPException(400, "the repair ETA is in the past: give when the machine will run again")
    eta = await central.floor.repair_eta(machine_id, body.until, by=who, note=body.note,
                                         etas=central.projector.repair_eta)
    return {"machine": machine_id, "until": eta.until, "by": eta.by, "at": eta.at, "note": eta.note}


@router.delete("/machines/{machine_id}/repair-eta", summary="Withdraw the repair ETA (back to the MTTR)")
async def delete_repair_eta(machine_id: str, central: CentralDep, who: Writer) -> dict[str, Any]:
    _machine(central, machine_id)
    await central.floor.repair_eta(machine_id, None, by=who, note=None, etas=central.projector.repair_eta)
    return {"machine": machine_id, "until": None}
