"""Small builders for the order tests: a plan from compact operation rows."""

from __future__ import annotations

from typing import Any

from central.progress.changes import create_order
from central.progress.orders import Plan, WorkOrderIn

H = 3600.0


def order_in(order_id: str, due: float, *ops: dict[str, Any], quantity: int = 10, **kw: Any) -> WorkOrderIn:
    """``ops``: dicts with at least machine (or work_centre), cycle; seq defaults to 10, 20, ..."""
    rows = []
    for i, op in enumerate(ops):
        row = {"seq": (i + 1) * 10, "name": f"op{(i + 1) * 10}", "quantity": quantity, **op}
        row["ideal_cycle_time"] = row.pop("cycle")
        rows.append(row)
    return WorkOrderIn.model_validate({"id": order_id, "product": "part", "quantity": quantity, "due": due,
                                       "operations": rows, **kw})


def plan_of(*orders: WorkOrderIn, now: float = 0.0) -> Plan:
    plan = Plan()
    for o in orders:
        plan = create_order(plan, o, by="planner", now=now).plan
    return plan
