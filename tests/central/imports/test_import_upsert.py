"""Upsert of imported orders by id: create, update queued operations, refuse what started, all or nothing."""

from __future__ import annotations

import pytest

from central.imports.rows import ImportedOrder, ImportRejectedError
from central.imports.upsert import Outcome, plan_import
from central.progress.changes import set_status
from central.progress.orders import OpStatus, OrderStatus, Plan
from tests.central.progress.orderkit import order_in

DUE = 1_796_371_200.0


def imported(*orders: object) -> list[ImportedOrder]:
    out = []
    row = 2
    for o in orders:
        assert hasattr(o, "operations")
        ops = {op.seq: row + i for i, op in enumerate(o.operations)}
        out.append(ImportedOrder(o, row, ops))  # type: ignore[arg-type]
        row += len(ops)
    return out


A = order_in("A", DUE, {"machine": "m1", "cycle": 10}, {"machine": "m2", "cycle": 20})
B = order_in("B", DUE, {"machine": "m1", "cycle": 5})


def test_new_orders_are_created_with_an_import_audit_and_a_reimport_is_unchanged() -> None:
    first = plan_import(Plan(), imported(A, B), by="planner", now=100.0)
    assert first.counts() == {"created": 2, "updated": 0, "unchanged": 0}
    assert first.plan.dispatch["m1"] == (("A", 10), ("B", 10))
    assert [(a.action, a.order_id, a.by, a.after["created"]) for a in first.audits] == [
        ("import", "A", "planner", True), ("import", "B", "planner", True)]
    again = plan_import(first.plan, imported(A, B), by="planner", now=200.0)
    assert again.counts()["unchanged"] == 2 and again.audits == () and again.plan == first.plan


def test_an_update_changes_the_header_and_queued_operations_in_place() -> None:
    plan = plan_import(Plan(), imported(A, B), by="p", now=1.0).plan
    changed = order_in("A", DUE + 3600, {"machine": "m3", "cycle": 10}, {"machine": "m2", "cycle": 25},
                       {"machine": "m2", "cycle": 7}, priority=3)
    result = plan_import(plan, imported(changed), by="p", now=2.0)
    (res,) = result.results
    assert res.outcome is Outcome.UPDATED
    assert res.changes == ("due", "priority", "operation 10: machine", "operation 20: ideal_cycle_time",
                           "operation 30 added")
    new = result.plan
    assert new.dispatch["m1"] == (("B", 10),) and new.dispatch["m3"] == (("A", 10),)
    assert new.dispatch["m2"] == (("A", 20), ("A", 30)) and new.orders["A"].seqs == (10, 20, 30)
    assert new.operations[("A", 20)].ideal_cycle_time == 25.0
    (audit,) = result.audits
    assert audit.before["due"] == DUE and audit.after["due"] == DUE + 3600
    assert audit.before["operation 10"] == {"machine": "m1"} and audit.after["operation 10"] == {"machine": "m3"}


def test_a_queued_operation_missing_from_the_file_is_cancelled() -> None:
    plan = plan_import(Plan(), imported(A), by="p", now=1.0).plan
    shorter = order_in("A", DUE, {"machine": "m1", "cycle": 10})
    result = plan_import(plan, imported(shorter), by="p", now=2.0)
    assert result.plan.operations[("A", 20)].status is OpStatus.CANCELLED
    assert result.plan.dispatch["m2"] == ()
    assert result.results[0].changes == ("operation 20 removed",)


def test_what_started_cannot_change_and_nothing_is_applied() -> None:
    plan = plan_import(Plan(), imported(A, B), by="p", now=1.0).plan
    plan = set_status(plan, ("A", 10), OpStatus.RUNNING)
    moved = order_in("A", DUE, {"machine": "m9", "cycle": 12}, {"machine": "m2", "cycle": 20})
    new_b = order_in("C", DUE, {"machine": "m1", "cycle": 5})
    with pytest.raises(ImportRejectedError) as caught:
        plan_import(plan, imported(new_b, moved), by="p", now=2.0)
    (err,) = caught.value.errors
    assert (err.row, err.column) == (3, "machine") and "running" in err.message
    # a running operation may get a new cycle time and quantity
    faster = order_in("A", DUE, {"machine": "m1", "cycle": 12}, {"machine": "m2", "cycle": 20})
    assert plan_import(plan, imported(faster), by="p", now=2.0).plan.operations[("A", 10)].ideal_cycle_time == 12
    dropped = order_in("A", DUE, {"seq": 20, "machine": "m2", "cycle": 20})
    with pytest.raises(ImportRejectedError, match="keep it in the file"):
        plan_import(plan, imported(dropped), by="p", now=2.0)


def test_a_finished_order_must_come_back_unchanged() -> None:
    plan = plan_import(Plan(), imported(B), by="p", now=1.0).plan
    plan = set_status(plan, ("B", 10), OpStatus.DONE)
    assert plan.orders["B"].status is OrderStatus.DONE
    assert plan_import(plan, imported(B), by="p", now=2.0).results[0].outcome is Outcome.UNCHANGED
    later = order_in("B", DUE + 60, {"machine": "m1", "cycle": 5})
    with pytest.raises(ImportRejectedError, match="use a new order id"):
        plan_import(plan, imported(later), by="p", now=2.0)


def test_a_file_without_an_optional_column_keeps_that_field() -> None:
    full = order_in("A", DUE, {"machine": "m1", "cycle": 10, "job": "7", "setup_time": 60.0}, customer="ACME")
    plan = plan_import(Plan(), imported(full), by="p", now=1.0).plan
    short = order_in("A", DUE, {"machine": "m1", "cycle": 10})
    items = [ImportedOrder(short, 2, {10: 2}, frozenset({"order", "product", "quantity", "due", "seq", "operation",
                                                         "machine", "cycle_time"}))]
    assert plan_import(plan, items, by="p", now=2.0).results[0].outcome is Outcome.UNCHANGED
    with_job = [ImportedOrder(short, 2, {10: 2}, items[0].columns | {"job"})]
    assert plan_import(plan, with_job, by="p", now=2.0).results[0].changes == ("operation 10: job",)
