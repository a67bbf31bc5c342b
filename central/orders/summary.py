"""What a projection pass hands on about each order: its summary (lists, stream, machine tiles), and the
stream's form of it. Apart from the projector so that the pages' and the stream's code read it without
the pass's machinery."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from central.progress.delay import OrderFinding


@dataclass(frozen=True, slots=True)
class Summary:
    """One order as the lists, the stream and the machine tiles show it."""

    order_id: str
    status: str
    percent: float
    finished: int
    eta: float | None
    at_risk: bool
    overdue: bool
    finding: OrderFinding | None = None

    def same(self, other: Summary | None) -> bool:
        """What a list row shows is unchanged (percent to 0.1, finish to the minute, risk and its cause)."""
        return other is not None and self._shown() == other._shown()

    def _shown(self) -> tuple[object, ...]:
        why = self.finding.why if self.finding is not None else None
        return (self.status, round(self.percent, 1), self.finished, _minute(self.eta), self.at_risk, self.overdue,
                why.cause if why else None, why.machine if why else None)


def _minute(t: float | None) -> float | None:
    return None if t is None else round(t / 60.0)


def finite(t: float | None) -> float | None:
    return None if t is None or math.isinf(t) else t


def order_event(s: Summary) -> dict[str, Any]:
    """An order's change on the stream (``event: order``): enough for a list row; GET /orders/{id} has the rest."""
    why = s.finding.why if s.finding is not None else None
    return {"id": s.order_id, "status": s.status, "percent": round(s.percent, 1), "finished": s.finished,
            "projected_finish": s.eta, "at_risk": s.at_risk, "overdue": s.overdue,
            "cause": why.cause.value if why else None, "machine": why.machine if why else None}
