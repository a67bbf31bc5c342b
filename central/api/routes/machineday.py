"""``GET /api/v1/machines/{id}/day``: everything the machine page shows for today, in one answer.

Today's state timeline, the planned spans (so the page can shade shift breaks), downtime by cause
as a Pareto with fault texts (central/progress/machineday.py), MTBF/MTTR, parts and OEE with its
three factors (``central/orders/oee_window.machine_figures``, the same figures as ``GET /api/v1/oee``:
parts weighed by their operation's ideal cycle time, idle split by the stop reasons operators gave).
One request instead of four keeps the page's figures consistent with each other (same ``now``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from central.api.deps import CentralDep
from central.api.schemas import FaultTextPublic, Problem
from central.orders.oee_window import history, machine_figures
from central.progress.counts import summarize
from central.progress.machineday import causes, day_window
from central.progress.reliability import reliability
from central.progress.timeline import StateInterval, clip

router = APIRouter(prefix="/api/v1/machines", tags=["machines"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such machine"}}


class CausePublic(BaseModel):
    category: str = Field(..., description="fault, setup, idle, maintenance, offline, micro_stop, reason")
    reason: str | None = Field(None, description="the stop reason operators gave (category reason), e.g. material")
    code: int | None = Field(None, description="the fault code (faults only)")
    text: FaultTextPublic | None = Field(None, description="the fault code's text from the fault dictionary")
    seconds: float
    stops: int
    share: float
    cumulative: float


class ReliabilityPublic(BaseModel):
    failures: int
    running: float
    repair: float
    mtbf: float | None = Field(None, description="seconds; None without a failure")
    mttr: float | None = Field(None, description="seconds; None without a failure")


class MachineDay(BaseModel):
    """A machine's production day so far (docs/pages.md, "Machine")."""

    machine_id: str
    name: str
    day: str = Field(..., description="the production day, YYYY-MM-DD")
    start: float = Field(..., description="the day's midnight in the line's timezone (Unix seconds)")
    end: float = Field(..., description="the next midnight")
    server_time: float
    timezone: str = Field(..., description="the line's timezone, in which the day's hours are shown")
    intervals: list[StateInterval]
    planned: list[list[float]] = Field(..., description="planned spans [start, end] of the day (shifts minus breaks)")
    causes: list[CausePublic] = Field(..., description="downtime by cause, largest first (a Pareto)")
    downtime: float
    planned_time: float = Field(..., description="planned seconds so far today")
    no_data: float = Field(..., description="planned seconds so far today with no state known (not a cause)")
    reliability: ReliabilityPublic
    good: int
    scrap: int
    oee: dict[str, Any] = Field(..., description="availability, performance, quality, oee and the loss cascade")


@router.get("/{machine_id}/day", response_model=MachineDay, responses=NOT_FOUND,
            summary="Today for the machine page: timeline, Pareto of downtime causes, OEE, MTBF/MTTR")
async def machine_day(machine_id: str, central: CentralDep) -> MachineDay:
    if machine_id not in central.live.statuses:
        raise HTTPException(404, f"no machine '{machine_id}' (GET /api/v1/machines lists them)")
    now = central.clock()
    info = central.catalog.machine(machine_id)
    calendar = central.catalog.calendar(machine_id)
    win = day_window(calendar, now)
    start, end = win.start, max(now, win.start + 1e-3)
    margin = info.micro_stop_threshold
    figures = await machine_figures(central, machine_id, start, end)
    report = figures.report
    intervals = await history(central, machine_id, start - margin, end + margin)
    parts = summarize(await central.store.counts(machine_id, start, end), start, end, machine_id=machine_id)
    rel = reliability(report)
    explained = {cause.value: seconds for cause, seconds in figures.explained.items()}
    return MachineDay(
        machine_id=machine_id, name=info.name, day=win.day.isoformat(), start=win.start, end=win.end,
        server_time=now, timezone=str(calendar.tz), intervals=clip(intervals, start, end),
        planned=[[s, e] for s, e in calendar.planned(win.start, win.end)],
        causes=[
            CausePublic(category=c.category, code=c.code, reason=c.reason, seconds=round(c.seconds, 1), stops=c.stops,
                        share=round(c.share, 4), cumulative=round(c.cumulative, 4),
                        text=(FaultTextPublic(**t.model_dump()) if (t := info.fault_text(c.code)) else None))
            for c in causes(report, intervals, micro_stop_threshold=margin, explained=explained)
        ],
        downtime=report.downtime, planned_time=report.planned, no_data=report.no_data,
        reliability=ReliabilityPublic(failures=rel.failures, running=rel.running, repair=rel.repair, mtbf=rel.mtbf,
                                      mttr=rel.mttr),
        good=parts.good, scrap=parts.scrap, oee=figures.oee.as_dict(),
    )
