"""``/api/v1/machines``: live status, state timeline and downtime of machines."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from central.api.deps import CentralDep, Window
from central.api.schemas import (
    Counts,
    Downtime,
    FlaggedCountPublic,
    MachineList,
    MachinePublic,
    PartsPublic,
    Problem,
    Timeline,
)
from central.progress.counts import summarize
from central.progress.downtime import downtime
from central.progress.reliability import reliability
from central.progress.stops import explain_idle
from central.progress.timeline import StateInterval, clip
from central.runtime import Central

router = APIRouter(prefix="/api/v1/machines", tags=["machines"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such machine"}}


@router.get("", response_model=MachineList, summary="Live status of every machine")
async def list_machines(central: CentralDep) -> MachineList:
    return MachineList(server_time=central.clock(), machines=central.views.machines())


@router.get("/{machine_id}", response_model=MachinePublic, responses=NOT_FOUND, summary="One machine")
async def get_machine(machine_id: str, central: CentralDep) -> MachinePublic:
    view = central.views.machine(machine_id)
    if view is None:
        raise HTTPException(404, f"no machine '{machine_id}' (GET /api/v1/machines lists them)")
    return view


async def _history(central: Central, machine_id: str, start: float, end: float) -> list[StateInterval]:
    """Stored intervals overlapping the window, plus the current one cut at now."""
    if machine_id not in central.live.statuses:
        raise HTTPException(404, f"no machine '{machine_id}' (GET /api/v1/machines lists them)")
    intervals = await central.store.intervals(machine_id, start, end)
    current = central.live.statuses[machine_id].open_interval()
    now = central.clock()
    if current is not None and current.start < end and now > current.start:
        intervals.append(current.until(now))
    return intervals


@router.get("/{machine_id}/timeline", response_model=Timeline, responses=NOT_FOUND,
            summary="State intervals in a window")
async def timeline(machine_id: str, central: CentralDep, win: Window) -> Timeline:
    start, end = win
    intervals = clip(await _history(central, machine_id, start, end), start, end)
    return Timeline(
        machine_id=machine_id, start=start, end=end, server_time=central.clock(),
        intervals=intervals,
    )


@router.get("/{machine_id}/downtime", response_model=Downtime, responses=NOT_FOUND,
            summary="Time by category, MTBF/MTTR and parts in a window")
async def machine_downtime(machine_id: str, central: CentralDep, win: Window) -> Downtime:
    start, end = win
    info = central.catalog.machine(machine_id)
    margin = info.micro_stop_threshold  # a stop is measured whole, not cut at the window's edge
    intervals = await _history(central, machine_id, start - margin, end + margin)
    report = downtime(
        intervals, start, end, calendar=central.catalog.calendar(machine_id),
        micro_stop_threshold=info.micro_stop_threshold, machine_id=machine_id,
    )
    rel = reliability(report)
    parts = summarize(await central.store.counts(machine_id, start, end), start, end, machine_id=machine_id)
    reasons = await central.store.stop_reasons(machine_id, start, end)
    explained = explain_idle(intervals, reasons, central.catalog.calendar(machine_id).planned(start, end), start, end,
                             micro_stop_threshold=margin)
    return Downtime(
        machine_id=machine_id, start=start, end=end, server_time=central.clock(),
        planned=report.planned, unplanned=report.unplanned, unplanned_running=report.unplanned_running,
        running=report.running, fault={("none" if k is None else str(k)): v for k, v in report.fault.items()},
        setup=report.setup, idle=report.idle, idle_by_reason={c.value: v for c, v in explained.items() if v > 0},
        maintenance=report.maintenance, offline=report.offline,
        no_data=report.no_data, downtime=report.downtime, micro_stops=report.micro_stops,
        micro_stop_time=report.micro_stop_time, failures=report.failures, uncertain=report.uncertain,
        mtbf=rel.mtbf, mttr=rel.mttr, good=parts.good, scrap=parts.scrap,
        parts_by_job=[PartsPublic(job=job, good=p.good, scrap=p.scrap) for job, p in parts.by_job.items()],
        count_resets=parts.resets, count_possibly_lost=parts.possibly_lost, count_rebased=parts.rebased,
    )


@router.get("/{machine_id}/counts", response_model=Counts, responses=NOT_FOUND,
            summary="Good and scrap in a window, per job, with the flagged count events")
async def machine_counts(machine_id: str, central: CentralDep, win: Window) -> Counts:
    start, end = win
    if machine_id not in central.live.statuses:
        raise HTTPException(404, f"no machine '{machine_id}' (GET /api/v1/machines lists them)")
    records = await central.store.counts(machine_id, start, end)
    parts = summarize(records, start, end, machine_id=machine_id)
    flagged = [r for r in records if r.reset or r.possibly_lost or r.rebased or r.implausible or r.job_from]
    return Counts(
        machine_id=machine_id, start=start, end=end, server_time=central.clock(), good=parts.good,
        scrap=parts.scrap, by_job=[PartsPublic(job=job, good=p.good, scrap=p.scrap) for job, p in parts.by_job.items()],
        events=parts.events, resets=parts.resets, possibly_lost=parts.possibly_lost, rebased=parts.rebased,
        implausible=parts.implausible, job_changes=parts.job_changes, clamped=parts.clamped,
        flagged=[FlaggedCountPublic.model_validate(r) for r in flagged[:MAX_FLAGGED]],
    )


MAX_FLAGGED = 1000
