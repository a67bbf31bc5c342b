"""Scan to report and stop reasons: ``/api/v1/reports``, ``/api/v1/stops`` (issue 13; docs/api.md).

The writes need a ``report`` key (a scanner, a phone at the machine) or a write key; a report key
can do nothing else. Both are idempotent by the client's id: the same id and content answers the
first record again (200, ``duplicate: true``), the same id with other content 409. The key's name
and the operator's id are in the audit trail of what a report starts, pauses or finishes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from central.api.deps import CentralDep, Reporter, Window
from central.api.schemas import Problem
from central.progress.orders import ConflictError, NotFoundError, OrderError
from central.progress.reports import Outcome, Report, ReportConflictError, ReportIn
from central.progress.stops import StopConflictError, StopReason, StopReasonIn

router = APIRouter(prefix="/api/v1", tags=["shop floor"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "not valid for this operation (the message says why)"},
    404: {"model": Problem, "description": "no such order or operation"},
    409: {"model": Problem, "description": "the id was used for another report, or the operation is closed"},
}
REPORT_EXAMPLES: list[Any] = [
    {"client_id": "7f9c2a4e-1b1d-4c55-9a61-2f0a8e1c9b10", "operator": "W-0231", "order_id": "SO-1001", "seq": 20,
     "kind": "count", "good": 12, "scrap": 1},
    {"client_id": "0b5e7d1c-3f52-4a0e-8d4f-65e3b7a9c2d4", "operator": "W-0231", "order_id": "SO-1001", "seq": 20,
     "kind": "count", "good": -2, "scrap": 2, "note": "found at inspection"},
    {"client_id": "d2c4b6a8-9e1f-4c3b-a5d7-e8f9a0b1c2d3", "operator": "W-0231", "order_id": "SO-1001", "seq": 20,
     "kind": "start"},
]


class ReportBody(ReportIn):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              json_schema_extra={"examples": REPORT_EXAMPLES})


class StopBody(StopReasonIn):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, json_schema_extra={"examples": [
        {"client_id": "c1b1e0d2-5a4f-4b3c-9d8e-7f6a5b4c3d2e", "operator": "W-0231", "machine": "mill-01",
         "reason": "material", "note": "castings late"}]})


class ReportPublic(BaseModel):
    client_id: str
    operator: str
    order_id: str
    seq: int
    kind: str
    good: int
    scrap: int
    machine: str | None
    note: str | None
    at: float = Field(..., description="when central received it")
    correction: bool = Field(..., description="on a machine-counted operation: a signed correction, not a count")
    duplicate: bool = Field(False, description="the same report was received before: counted once")


class ReportList(BaseModel):
    reports: list[ReportPublic]


class StopPublic(BaseModel):
    client_id: str
    operator: str
    machine: str
    reason: str
    start: float
    end: float | None = Field(..., description="null: until the machine runs again")
    note: str | None
    at: float
    duplicate: bool = False


class StopList(BaseModel):
    stops: list[StopPublic]


def _report(r: Report, duplicate: bool = False) -> ReportPublic:
    c = r.content
    return ReportPublic(client_id=c.client_id, operator=c.operator, order_id=c.order_id, seq=c.seq,
                        kind=c.kind.value, good=c.good, scrap=c.scrap, machine=c.machine, note=c.note, at=r.at,
                        correction=r.correction, duplicate=duplicate)


def _stop(s: StopReason, duplicate: bool = False) -> StopPublic:
    c = s.content
    return StopPublic(client_id=c.client_id, operator=c.operator, machine=c.machine, reason=c.reason.value,
                      start=s.start, end=s.end, note=c.note, at=s.at, duplicate=duplicate)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (ReportConflictError, StopConflictError, ConflictError) as exc:
        raise HTTPException(409, str(exc)) from None
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except OrderError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post("/reports", status_code=201, response_model=ReportPublic, responses={
    200: {"model": ReportPublic, "description": "a duplicate (same id, same content): counted once"}, **ERRORS},
    summary="Report from the shop floor (scan to report): good/scrap, start, pause, finish")
async def post_report(body: ReportBody, central: CentralDep, who: Reporter) -> Any:
    with _errors():
        result = await central.floor.report(ReportIn.model_validate(body.model_dump()), key_name=who)
    public = _report(result.report, result.outcome is Outcome.DUPLICATE)
    if result.outcome is Outcome.DUPLICATE:
        return JSONResponse(public.model_dump(), status_code=200)
    return public


@router.get("/reports", response_model=ReportList, summary="Reports received in a window (piece-rate pay, audits)")
async def list_reports(
    central: CentralDep, win: Window,
    order_id: Annotated[str | None, Query(description="only this order's")] = None,
    operator: Annotated[str | None, Query(description="only this operator's")] = None,
) -> ReportList:
    start, end = win
    rows = await central.store.reports_between(start, end, order_id)
    return ReportList(reports=[_report(r) for r in rows if operator is None or r.content.operator == operator])


@router.post("/stops", status_code=201, response_model=StopPublic, responses={
    200: {"model": StopPublic, "description": "a duplicate (same id, same content)"},
    409: {"model": Problem, "description": "the id was used for another stop reason"}},
    summary="Why a machine stands (waiting for material, no operator, quality hold ...)")
async def post_stop(body: StopBody, central: CentralDep, who: Reporter) -> Any:
    with _errors():
        reason, new = await central.floor.stop(StopReasonIn.model_validate(body.model_dump()))
    if not new:
        return JSONResponse(_stop(reason, True).model_dump(), status_code=200)
    return _stop(reason)


@router.get("/stops", response_model=StopList, summary="Stop reasons given, in a window")
async def list_stops(
    central: CentralDep, win: Window, machine: Annotated[str | None, Query(description="one machine's")] = None,
) -> StopList:
    start, end = win
    return StopList(stops=[_stop(s) for s in await central.store.stop_reasons(machine, start, end)])
