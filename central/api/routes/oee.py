"""``/api/v1/oee``: OEE over a window per machine, line and plant, and per operation (issue 13; docs/progress.md).

Figures are ratios (null when unknown: no planned time, or parts without an ideal cycle time) and
the loss cascade in seconds; the availability losses are split by category, idle further by the
stop reasons people gave (material, no_operator, ...). Window: ``start``/``end`` (default: the
last 24 h; an operation: the time it ran).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from central.api.deps import CentralDep, _instant
from central.api.routes.orders import _key
from central.orders.oee_window import operation_oee, plant_oee

router = APIRouter(prefix="/api/v1", tags=["oee"])
MAX_WINDOW = 400 * 86_400.0


def _window(start: str | None, end: str | None, now: float, default_start: float | None = None) -> tuple[float, float]:
    hi = _instant(end, "end")
    hi = now if hi is None else hi
    lo = _instant(start, "start")
    lo = (default_start if default_start is not None else hi - 86_400.0) if lo is None else lo
    if hi <= lo:
        raise HTTPException(400, f"the window is empty: end ({hi}) must be after start ({lo})")
    if hi - lo > MAX_WINDOW:
        raise HTTPException(400, f"the window is {hi - lo:.0f} s long; at most {MAX_WINDOW:.0f} s (400 days)")
    return lo, hi


Start = Annotated[str | None, Query(description="Unix seconds or ISO 8601 with offset; default: end - 24 h")]
End = Annotated[str | None, Query(description="Unix seconds or ISO 8601 with offset; default: now")]


@router.get("/oee", summary="OEE per machine, per line and for the plant over a window, with the loss cascade")
async def get_oee(
    central: CentralDep, start: Start = None, end: End = None,
    machine: Annotated[str | None, Query(description="only this machine")] = None,
    line: Annotated[str | None, Query(description="only this line's machines")] = None,
) -> dict[str, Any]:
    lo, hi = _window(start, end, central.clock())
    if machine is not None and machine not in central.live.statuses and machine not in central.catalog.configured_ids():
        raise HTTPException(404, f"no machine '{machine}' (GET /api/v1/machines lists them)")
    return await plant_oee(central, lo, hi, machine=machine, line=line)


@router.get("/orders/{order_id}/operations/{seq}/oee",
            summary="OEE of one operation over the time it ran (on each machine), within an optional window")
async def get_operation_oee(order_id: str, seq: int, central: CentralDep, start: Start = None,
                            end: End = None) -> dict[str, Any]:
    key = _key(order_id, seq)
    if key not in central.orders.plan.operations:
        raise HTTPException(404, f"no operation {seq} in order {order_id!r}")
    order = central.orders.plan.orders[order_id]
    lo, hi = _window(start, end, central.clock(), default_start=order.created_at or None)
    total, spans = await operation_oee(central, key, lo, hi)
    return {"order_id": order_id, "seq": seq, "start": lo, "end": hi, "server_time": central.clock(),
            "oee": total.as_dict(), "spans": [s.as_dict() for s in spans]}
