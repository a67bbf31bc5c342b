"""OEE over a window per machine, line, plant and operation: the store's records through the pure formulas.

``central/progress/oee.py`` defines the figures; this module gathers their inputs (issue 13):
the machine's state intervals (a stop is measured whole, so the window is widened by the
micro-stop threshold), its counts with the operation each was attributed to (each part weighed by
its operation's ideal cycle time, else the machine's), the count reports (corrections on
machine-counted operations, the count itself on report-counted ones, which ignore the machine's
counts), and the stop reasons people gave (``stops.explain_idle``: idle split by cause). An
operation's OEE covers the spans its assignment timeline ran it, on each machine, clipped to the
window. Reads only; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from central.progress.assignment import Timeline
from central.progress.counts import CountRecord
from central.progress.downtime import DowntimeReport, downtime
from central.progress.machines import Catalog
from central.progress.oee import Oee, PartsAt, combine, oee, planned_parts
from central.progress.orders import CountSource, OpKey, Plan
from central.progress.reports import Report, ReportKind
from central.progress.status import MachineStatus
from central.progress.stops import StopCause, explain_idle, with_reasons
from central.progress.timeline import StateInterval
from central.store.base import Store


class _Statuses(Protocol):
    @property
    def statuses(self) -> Mapping[str, MachineStatus]: ...


class _Plan(Protocol):
    @property
    def plan(self) -> Plan: ...


class Sources(Protocol):
    """What machine OEE is computed from: central itself, or the store's view of it (``central backfill``)."""

    @property
    def store(self) -> Store: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def live(self) -> _Statuses: ...
    @property
    def orders(self) -> _Plan: ...
    @property
    def clock(self) -> Callable[[], float]: ...


class _Book(_Plan, Protocol):
    @property
    def book(self) -> Mapping[str, Timeline]: ...


class OperationSources(Sources, Protocol):
    """What an operation's OEE also needs: where it ran (the order book's timelines)."""

    @property
    def orders(self) -> _Book: ...


async def history(central: Sources, machine_id: str, start: float, end: float) -> list[StateInterval]:
    """Stored intervals overlapping the window, plus the current one cut at now."""
    intervals = await central.store.intervals(machine_id, start, end)
    status = central.live.statuses.get(machine_id)
    current = status.open_interval() if status is not None else None
    now = central.clock()
    if current is not None and current.start < end and now > current.start:
        intervals.append(current.until(now))
    return intervals


def _report_parts(plan: Plan, reports: Iterable[Report], machine_id: str | None, key: OpKey | None,
                  fallback: float | None) -> list[PartsAt]:
    out = []
    for r in reports:
        c = r.content
        if c.kind is not ReportKind.COUNT or (key is not None and c.key != key):
            continue
        op = plan.operations.get(c.key)
        where = c.machine or (op.machine if op is not None else None)
        if machine_id is not None and where != machine_id:
            continue
        out.append(PartsAt(op.ideal_cycle_time if op is not None else fallback, c.good, c.scrap))
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    report: DowntimeReport
    oee: Oee  # idle split by the stop reasons given
    explained: dict[StopCause, float]  # idle seconds each stop reason explains


async def machine_oee(central: Sources, machine_id: str, start: float, end: float, *,
                      key: OpKey | None = None) -> Oee:
    """OEE of one machine in ``[start, end)``; with ``key``, of that operation's parts only (its span)."""
    return (await machine_figures(central, machine_id, start, end, key=key)).oee


async def machine_figures(central: Sources, machine_id: str, start: float, end: float, *,
                          key: OpKey | None = None) -> Figures:
    """Downtime, OEE and the stop reasons' share of one machine in ``[start, end)`` (``key``: one operation's)."""
    info = central.catalog.machine(machine_id)
    calendar = central.catalog.calendar(machine_id)
    margin = info.micro_stop_threshold
    intervals = await history(central, machine_id, start - margin, end + margin)
    report = downtime(intervals, start, end, calendar=calendar, micro_stop_threshold=margin, machine_id=machine_id)
    plan = central.orders.plan
    weights: dict[int, float | None] = {}
    records: list[CountRecord] = []
    for c in await central.store.attributed_counts(machine_id, start, end):
        if c.record.at >= end or (key is not None and c.op != key):
            continue
        op = plan.operations.get(c.op) if c.op is not None else None
        if op is not None and op.count_source is CountSource.REPORTS:
            continue  # the operator's reports are this operation's count
        weights[id(c.record)] = op.ideal_cycle_time if op is not None else info.ideal_cycle_time
        records.append(c.record)
    planned = calendar.planned(start, end)
    parts = planned_parts(records, planned, lambda rec: weights[id(rec)])
    reports = await central.store.reports_between(start, end, key[0] if key is not None else None)
    parts.extend(_report_parts(plan, reports, machine_id, key, info.ideal_cycle_time))
    reasons = await central.store.stop_reasons(machine_id, start, end)
    explained = explain_idle(intervals, reasons, planned, start, end, micro_stop_threshold=margin)
    return Figures(report, with_reasons(oee(report, parts, subject=machine_id), explained), explained)


def machine_ids(central: Sources) -> list[str]:
    return sorted(set(central.catalog.configured_ids()) | set(central.live.statuses))


async def plant_oee(central: Sources, start: float, end: float, *, machine: str | None = None,
                    line: str | None = None) -> dict[str, object]:
    """Per machine, per line and for the plant (time-weighted sums), filtered by machine or line."""
    ids = [m for m in machine_ids(central) if (machine is None or m == machine)
           and (line is None or central.catalog.machine(m).line == line)]
    per_machine = {m: await machine_oee(central, m, start, end) for m in ids}
    lines: dict[str, list[Oee]] = {}
    for m, result in per_machine.items():
        lines.setdefault(central.catalog.machine(m).line or "-", []).append(result)
    return {
        "start": start, "end": end, "server_time": central.clock(),
        "machines": [r.as_dict() for r in per_machine.values()],
        "lines": {li: combine(rs, subject=li).as_dict() for li, rs in sorted(lines.items())},
        "plant": combine(per_machine.values(), subject="plant").as_dict(),
    }


def spans_of(book: dict[str, Timeline], key: OpKey, start: float, end: float, now: float) -> list[tuple[str, float,
                                                                                                         float]]:
    """(machine, a, b) where the operation ran, clipped to ``[start, end)`` (an open segment runs to now)."""
    out = []
    for machine_id, timeline in book.items():
        for seg in timeline:
            if seg.key != key:
                continue
            a, b = max(seg.start, start), min(seg.end if seg.end is not None else now, end)
            if b > a:
                out.append((machine_id, a, b))
    return sorted(out, key=lambda s: s[1])


async def operation_oee(central: OperationSources, key: OpKey, start: float, end: float) -> tuple[Oee, list[Oee]]:
    """The operation's OEE over the spans it ran (on each machine) inside the window, and each span's."""
    spans = spans_of(dict(central.orders.book), key, start, end, central.clock())
    parts = [await machine_oee(central, m, a, b, key=key) for m, a, b in spans]
    return combine(parts, subject=f"{key[0]}/{key[1]}"), parts
