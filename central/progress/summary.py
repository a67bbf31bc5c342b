"""The shift summary (每日进度汇总): what a shift achieved, as plain JSON-able data (issue 13).

Built at a shift's end from values central already has: the plan, the order completions of the
shift, the delay findings, downtime reports and OEE per line. The API returns it as JSON and the
notifier formats it for webhooks and chat robots; nothing here does I/O.

* ``completed``: orders whose last operation completed in the shift, with whether that was late;
* ``late``: open orders past their due time at the shift's end, and those completed late;
* ``at_risk``: orders with an at-risk finding, with the cause, operation and machine;
* ``downtime``: the top causes over all machines (fault per code, setup, idle, maintenance,
  offline, micro-stops), seconds and how many machines each touched;
* ``oee``: per line (``oee.combine`` of its machines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from central.progress.delay import OrderFinding, OrderRule
from central.progress.downtime import DowntimeReport
from central.progress.oee import Oee
from central.progress.orders import OrderStatus, Plan


@dataclass(frozen=True, slots=True)
class ShiftWindow:
    name: str
    start: float
    end: float
    line: str | None = None  # None: the whole plant


def downtime_causes(reports: Iterable[DowntimeReport], top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` downtime causes over the reports: seconds and the machines each touched."""
    seconds: dict[str, float] = {}
    machines: dict[str, set[str]] = {}

    def add(cause: str, value: float, machine: str | None) -> None:
        if value <= 0:
            return
        seconds[cause] = seconds.get(cause, 0.0) + value
        machines.setdefault(cause, set()).add(machine or "?")

    for r in reports:
        for code, value in r.fault.items():
            add(f"fault {code}" if code is not None else "fault", value, r.machine_id)
        for cause in ("setup", "idle", "maintenance", "offline"):
            add(cause, getattr(r, cause), r.machine_id)
        add("micro_stops", r.micro_stop_time, r.machine_id)
    ranked = sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"cause": c, "seconds": round(s, 1), "machines": sorted(machines[c])} for c, s in ranked]


def shift_summary(
    shift: ShiftWindow, plan: Plan, *, completed_at: Mapping[str, float], findings: Iterable[OrderFinding],
    downtime: Iterable[DowntimeReport], oee_by_line: Mapping[str, Oee], top: int = 5,
) -> dict[str, Any]:
    """The summary of ``shift`` as a JSON-able dict.

    ``completed_at``: order id -> when its last operation completed (from the ``Completed`` facts);
    ``findings``: the latest ``delay.evaluate`` findings; ``downtime``: one report per machine of
    the shift's scope over the shift; ``oee_by_line``: OEE per line over the shift.
    """
    completed = []
    late = []
    for order_id, at in sorted(completed_at.items(), key=lambda kv: kv[1]):
        order = plan.orders.get(order_id)
        if order is None or not shift.start <= at < shift.end:
            continue
        row = {"order": order_id, "product": order.product, "customer": order.customer, "completed_at": at,
               "due": order.due, "late": at > order.due}
        completed.append(row)
        if at > order.due:
            late.append({**row, "status": "done", "late_by": round(at - order.due, 1)})
    for order in plan.orders.values():
        if order.status is OrderStatus.OPEN and order.due < shift.end:
            late.append({"order": order.id, "product": order.product, "customer": order.customer,
                         "due": order.due, "status": "open", "late_by": round(shift.end - order.due, 1)})
    at_risk = [
        {"order": f.subject, "projected_finish": f.details.get("projected_finish"), "due": f.details.get("due"),
         "cause": f.why.cause.value if f.why else None, "machine": f.why.machine if f.why else None,
         "operation": f.why.operation[1] if f.why and f.why.operation else None}
        for f in findings if f.rule is OrderRule.AT_RISK
    ]
    return {
        "shift": {"name": shift.name, "line": shift.line, "start": shift.start, "end": shift.end},
        "completed": completed,
        "late": late,
        "at_risk": sorted(at_risk, key=lambda r: str(r["order"])),
        "downtime": downtime_causes(downtime, top),
        "oee": {line: o.as_dict() for line, o in sorted(oee_by_line.items())},
    }
