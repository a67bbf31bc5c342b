"""Work orders: bounded API input, dispatch lists and the planners' changes with their audit records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from central.progress.changes import (
    cancel_order,
    change_order,
    create_order,
    move_operation,
    set_shortage,
    set_status,
)
from central.progress.orders import (
    ConflictError,
    NotFoundError,
    OpStatus,
    OrderChangeIn,
    OrderError,
    OrderStatus,
    Shortage,
    ShortageIn,
    WorkOrderIn,
)
from tests.central.progress.orderkit import order_in, plan_of

DUE = datetime(2026, 12, 4, 16, tzinfo=timezone(timedelta(hours=8))).timestamp()


def test_the_planners_first_call_is_accepted() -> None:
    """The example of issue 13, as JSON would send it."""
    body = {"id": "SO-1001", "product": "bracket", "customer": "ACME", "quantity": 120,
            "due": "2026-12-04T16:00:00+08:00", "operations": [
                {"seq": 10, "name": "turn", "machine": "cnc-01", "quantity": 120, "ideal_cycle_time": 45,
                 "setup_time": 900, "job": "1001"},
                {"seq": 20, "name": "mill", "machine": "mill-01", "quantity": 120, "ideal_cycle_time": 120}]}
    order = WorkOrderIn.model_validate(body)
    assert order.due == DUE
    plan = create_order(plan_of(), order, by="planner", now=1.0).plan
    assert plan.dispatch == {"cnc-01": (("SO-1001", 10),), "mill-01": (("SO-1001", 20),)}
    assert plan.orders["SO-1001"].seqs == (10, 20)
    assert plan.predecessor(("SO-1001", 20)) == plan.operations[("SO-1001", 10)]


@pytest.mark.parametrize(("change", "field"), [
    ({"quantity": 0}, "quantity"),
    ({"quantity": 10**9}, "quantity"),
    ({"due": "2026-12-04T16:00:00"}, "due"),  # no offset and no plant time zone given
    ({"due": float("nan")}, "due"),
    ({"due": 1e12}, "due"),
    ({"id": "bad id with spaces"}, "id"),
    ({"operations": []}, "operations"),
    ({"operations": [{"seq": 10, "name": "x", "quantity": 1, "ideal_cycle_time": 0, "machine": "m1"}]},
     "ideal_cycle_time"),
    ({"operations": [{"seq": 10, "name": "x", "quantity": 1, "ideal_cycle_time": 5}]}, "machine or work_centre"),
    ({"operations": [{"seq": 10, "name": "x", "quantity": 1, "ideal_cycle_time": 5, "machine": "m1"},
                     {"seq": 10, "name": "y", "quantity": 1, "ideal_cycle_time": 5, "machine": "m2"}]}, "unique"),
])
def test_bad_input_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    body = {"id": "SO-1", "product": "p", "quantity": 1, "due": DUE,
            "operations": [{"seq": 10, "name": "x", "quantity": 1, "ideal_cycle_time": 5, "machine": "m1"}], **change}
    with pytest.raises(ValidationError) as caught:
        WorkOrderIn.model_validate(body)
    assert field in str(caught.value)


def test_a_time_without_offset_is_plant_time_when_the_import_says_so() -> None:
    body = {"id": "SO-1", "product": "p", "quantity": 1, "due": "2026-12-04T16:00:00",
            "operations": [{"seq": 10, "name": "x", "quantity": 1, "ideal_cycle_time": 5, "machine": "m1"}]}
    order = WorkOrderIn.model_validate(body, context={"timezone": timezone(timedelta(hours=8))})
    assert order.due == DUE
    utc = WorkOrderIn.model_validate(body, context={"timezone": UTC})
    assert utc.due - order.due == 8 * 3600


def test_rush_order_goes_just_after_what_runs_and_is_audited() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10}),
                   order_in("B", DUE, {"machine": "m1", "cycle": 10}))
    plan = set_status(plan, ("A", 10), OpStatus.RUNNING)
    change = create_order(plan, order_in("R", DUE, {"machine": "m1", "cycle": 10}), by="boss", now=5.0, rush=True)
    assert change.plan.dispatch["m1"] == (("A", 10), ("R", 10), ("B", 10))
    assert change.plan.orders["R"].rush
    audit = change.audit
    assert (audit.by, audit.action, audit.at, audit.order_id) == ("boss", "insert_rush", 5.0, "R")
    at_end = create_order(plan, order_in("Z", DUE, {"machine": "m1", "cycle": 10}), by="boss", now=5.0,
                          positions={"m1": 0})
    assert at_end.plan.dispatch["m1"][0] == ("Z", 10)
    with pytest.raises(ConflictError):
        create_order(plan, order_in("A", DUE, {"machine": "m1", "cycle": 10}), by="boss", now=5.0)
    with pytest.raises(OrderError, match="position"):
        create_order(plan, order_in("Y", DUE, {"machine": "m1", "cycle": 10}), by="boss", now=5.0, positions={"m1": 9})


def test_quantity_change_scales_open_operations_rounding_up() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10}, {"machine": "m2", "cycle": 10, "quantity": 5},
                            quantity=10))
    plan = set_status(plan, ("A", 10), OpStatus.DONE)
    change = change_order(plan, "A", by="p", now=9.0, quantity=15, due=DUE + 60)
    ops = change.plan.operations
    assert ops[("A", 10)].quantity == 10  # done: keeps its quantity
    assert ops[("A", 20)].quantity == 8  # ceil(5 * 15 / 10)
    assert change.audit.before == {"quantity": 10, "due": DUE}
    assert change.audit.after == {"quantity": 15, "due": DUE + 60}
    with pytest.raises(OrderError, match="quantity"):
        change_order(plan, "A", by="p", now=9.0, quantity=0)
    with pytest.raises(NotFoundError):
        change_order(plan, "nope", by="p", now=9.0, priority=1)
    with pytest.raises(OrderError, match="who"):
        change_order(plan, "A", by="  ", now=9.0, priority=1)


def test_move_and_cancel() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10}, {"machine": "m2", "cycle": 10}),
                   order_in("B", DUE, {"machine": "m1", "cycle": 10}))
    moved = move_operation(plan, ("A", 10), by="p", now=1.0, machine="m3")
    assert moved.plan.dispatch["m1"] == (("B", 10),) and moved.plan.dispatch["m3"] == (("A", 10),)
    assert moved.audit.before == {"queue": "m1", "position": 0}
    to_centre = move_operation(plan, ("B", 10), by="p", now=1.0, work_centre="milling", position=0)
    assert to_centre.plan.dispatch["wc:milling"] == (("B", 10),)
    reordered = move_operation(plan, ("B", 10), by="p", now=1.0, position=0)
    assert reordered.plan.dispatch["m1"] == (("B", 10), ("A", 10))
    running = set_status(plan, ("A", 10), OpStatus.RUNNING)
    with pytest.raises(ConflictError, match="running"):
        move_operation(running, ("A", 10), by="p", now=1.0, machine="m3")
    cancelled = cancel_order(running, "A", by="p", now=2.0, reason="customer")
    assert cancelled.plan.orders["A"].status is OrderStatus.CANCELLED
    assert cancelled.plan.dispatch["m1"] == (("B", 10),) and cancelled.plan.dispatch["m2"] == ()
    assert cancelled.audit.after == {"status": "cancelled", "reason": "customer"}
    with pytest.raises(ConflictError):
        cancel_order(cancelled.plan, "A", by="p", now=3.0)


def test_shortage_and_order_completion() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10}, {"machine": "m2", "cycle": 10}))
    short = set_shortage(plan, ("A", 20), Shortage(DUE - 3600, "bar stock"), by="store", now=1.0)
    assert short.plan.operations[("A", 20)].shortage == Shortage(DUE - 3600, "bar stock")
    assert short.audit.after == {"short": True, "expected": DUE - 3600, "note": "bar stock"}
    plan = set_status(set_status(short.plan, ("A", 10), OpStatus.DONE), ("A", 20), OpStatus.DONE)
    assert plan.orders["A"].status is OrderStatus.DONE
    assert plan.dispatch == {"m1": (), "m2": ()}


def test_change_and_material_bodies_are_bounded() -> None:
    change = OrderChangeIn.model_validate({"due": "2026-12-04T16:00:00+08:00", "priority": 5})
    assert (change.due, change.priority, change.quantity) == (DUE, 5, None)
    with pytest.raises(ValidationError, match="priority"):
        OrderChangeIn.model_validate({"priority": 5000})
    with pytest.raises(ValidationError, match="extra"):
        OrderChangeIn.model_validate({"status": "done"})
    short = ShortageIn.model_validate({"short": True, "expected": DUE, "note": "castings"})
    assert short.shortage() == Shortage(DUE, "castings")
    assert ShortageIn.model_validate({"short": False}).shortage() is None
