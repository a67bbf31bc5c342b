"""``/api/v1/shift-summaries``: the summaries sent at each shift's end, and the current shift's so far (issue 13)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from central.api.deps import CentralDep, _instant
from central.progress.summary import ShiftWindow
from central.summaries.task import build
from central.summaries.windows import current

router = APIRouter(prefix="/api/v1", tags=["shift summaries"])


@router.get("/shift-summaries", summary="Shift summaries sent (orders completed, late, at risk, downtime, OEE)")
async def list_summaries(
    central: CentralDep,
    line: Annotated[str | None, Query(description="one line's")] = None,
    since: Annotated[str | None, Query(description="shifts ending at or after: Unix seconds or ISO 8601")] = None,
    until: Annotated[str | None, Query(description="shifts ending before: Unix seconds or ISO 8601")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    rows = await central.store.shift_summaries(line=line, since=_instant(since, "since"),
                                               until=_instant(until, "until"), limit=limit)
    return {"server_time": central.clock(),
            "summaries": [{"id": r.id, "sent_at": r.at, **r.data} for r in rows]}


@router.get("/shift-summaries/current", summary="The summary of the shift running now (so far), per line")
async def current_summary(
    central: CentralDep, line: Annotated[str | None, Query(description="one line's (default: every line)")] = None,
) -> dict[str, Any]:
    now = central.clock()
    windows: list[ShiftWindow] = current(central.cfg.plant, now)
    if line is not None:
        windows = [w for w in windows if w.line == line]
        if not windows:
            raise HTTPException(404, f"line {line!r} has no shift running now (or no such line)")
    return {"server_time": now, "summaries": [await build(central, w) for w in windows]}
