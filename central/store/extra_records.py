"""What the order layer's extras write (issue 13): stop reasons people give, shift summaries sent, repair ETAs.

Rides in a ``Transaction`` (``tx.extras``) like ``OrderWrites``: a stop reason is one atomic
commit; a shift summary is written in the same transaction as its notifications, so that a
restart finds it sent (its id is the shift's, see ``central/reports/summaries.py``) and never
sends it twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from central.progress.stops import StopReason, StopReasonIn


@dataclass(frozen=True, slots=True)
class SummaryRow:
    id: str  # "<line or plant>/<shift name>/<start>": one per shift and scope
    line: str | None
    shift: str
    start: float
    end: float
    at: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RepairEta:
    """Maintenance's estimate of when ``machine_id`` runs again (``until`` None: withdrawn)."""

    machine_id: str
    until: float | None
    by: str
    at: float
    note: str | None = None


@dataclass(slots=True)
class ExtraWrites:
    stops: list[StopReason] = field(default_factory=list)
    summaries: list[SummaryRow] = field(default_factory=list)
    repairs: list[RepairEta] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.stops or self.summaries or self.repairs)


def stop_row(s: StopReason) -> tuple[object, ...]:
    return (s.content.client_id, s.machine, s.start, s.end, s.cause.value, s.content.operator, s.at,
            s.content.model_dump_json())


def stop_from_row(data: str, start: float, end: float | None, at: float) -> StopReason:
    return StopReason(StopReasonIn.model_validate_json(data), float(start), None if end is None else float(end),
                      float(at))


def summary_row(s: SummaryRow) -> tuple[object, ...]:
    return (s.id, s.line, s.shift, s.start, s.end, s.at, json.dumps(s.data, ensure_ascii=False, default=str))


def summary_from_row(row: Any) -> SummaryRow:
    sid, line, shift, start, end, at, data = row
    return SummaryRow(sid, line, shift, float(start), float(end), float(at), json.loads(data))
