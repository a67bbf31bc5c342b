"""Scan to report (idempotent by client id, corrections on machine-counted operations) and progress/ETA."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from central.progress.assignment import Tally
from central.progress.changes import set_status
from central.progress.downtime import DowntimeReport
from central.progress.orders import ConflictError, NotFoundError, OpStatus
from central.progress.progress import (
    Rate,
    availability,
    effective_quantities,
    measured_cycle_time,
    order_progress,
    rate,
)
from central.progress.reports import (
    Outcome,
    ReportConflictError,
    ReportIn,
    accept,
    by_operator,
    combined,
    tallies,
)
from tests.central.progress.orderkit import H, order_in, plan_of

DUE = 1_000_000.0


def report(client_id: str, **kw: object) -> ReportIn:
    return ReportIn.model_validate({"client_id": client_id, "operator": "op-7", "order_id": "A", "seq": 10,
                                    "good": 5, **kw})


def test_a_double_scan_counts_once_and_a_reused_id_is_a_conflict() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10, "count_source": "reports"}))
    first = accept({}, report("u-1"), plan, at=100.0)
    assert first.outcome is Outcome.NEW and not first.report.correction
    again = accept(first.reports, report("u-1"), plan, at=105.0)  # a retried request
    assert again.outcome is Outcome.DUPLICATE and again.reports is first.reports and again.report.at == 100.0
    with pytest.raises(ReportConflictError, match="u-1"):
        accept(first.reports, report("u-1", good=6), plan, at=106.0)
    second = accept(first.reports, report("u-2", good=3, scrap=1), plan, at=110.0)
    assert tallies(second.reports.values())[("A", 10)] == Tally(8, 1, 2)
    pay = by_operator(second.reports.values(), 0.0, 200.0)
    assert (pay["op-7"].good, pay["op-7"].scrap, pay["op-7"].reports) == (8, 1, 2)
    with pytest.raises(NotFoundError):
        accept({}, report("u-3", seq=99), plan, at=1.0)
    done = set_status(plan, ("A", 10), OpStatus.DONE)
    with pytest.raises(ConflictError):
        accept({}, report("u-4", kind="start", good=0), done, at=1.0)


def test_a_report_on_a_machine_counted_operation_is_a_signed_correction() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10}),
                   order_in("B", DUE, {"machine": "m2", "cycle": 10, "count_source": "reports"}))
    fix = accept({}, report("c-1", good=-2, scrap=2), plan, at=1.0)
    assert fix.report.correction
    machine = {("A", 10): Tally(50, 1, 5), ("B", 10): Tally(9, 0, 1)}  # B's machine counts are ignored
    scans = accept(fix.reports, report("c-2", order_id="B", good=7), plan, at=2.0).reports
    both = combined(machine, tallies(scans.values()), plan)
    assert (both[("A", 10)].good, both[("A", 10)].scrap) == (48, 3)  # corrected, never counted twice
    assert (both[("B", 10)].good, both[("B", 10)].scrap) == (7, 0)


@pytest.mark.parametrize("body", [
    {"kind": "start", "good": 3},  # a start carries no parts
    {"good": 0},  # a count of nothing
    {"good": 10**7},
    {"client_id": ""},
    {"operator": ""},
])
def test_bad_reports_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        report(body.pop("client_id", "x-1"), **body)  # type: ignore[arg-type]


def test_rate_multiplies_cycle_time_and_divides_by_availability_and_yield() -> None:
    """45 s ideal, 80% availability, 90% yield: 45 / (0.8 x 0.9) = 62.5 s per good part, 57.6 an hour."""
    r = rate(45.0, Tally(90, 10), machine_availability=0.8)
    assert r.seconds_per_good == pytest.approx(62.5)
    assert r.per_hour == pytest.approx(57.6)
    assert r.running_seconds_per_good == pytest.approx(50.0)
    assert measured_cycle_time(500.0, 10) == 50.0 and measured_cycle_time(500.0, 2) is None
    day = DowntimeReport("m1", 0, 8 * H, planned=8 * H, running=5 * H, micro_stop_time=0.5 * H, no_data=0.5 * H)
    assert availability(day) == pytest.approx(5.5 / 7.5)  # micro-stops are speed, not availability
    assert availability(DowntimeReport("m1", 0, 60, planned=60, running=0)) == 1.0  # too little evidence
    assert availability(DowntimeReport("m1", 0, 8 * H, planned=8 * H, running=0)) == 0.05  # the floor


def test_progress_and_eta_hand_computed() -> None:
    """Turn 120 at 45 s (done 30, 5 scrap), then mill 120 at 120 s with a 900 s setup.

    turn: 90 to go at 45 / (0.75 x 30/35) = 70 s -> 6300 s; mill (not started): 900 + 120 x 120 / 0.75 = 20100 s.
    Order percent by work: 30 x 45 / (120 x 45 + 120 x 120) = 1350 / 19800 = 6.82%.
    """
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 45}, {"machine": "m2", "cycle": 120,
                                                                        "setup_time": 900}, quantity=120))
    plan = set_status(plan, ("A", 10), OpStatus.RUNNING)
    counts = {("A", 10): Tally(30, 5)}
    rates = {("A", 10): rate(45.0, counts[("A", 10)], machine_availability=0.75),
             ("A", 20): Rate(120.0, 0.75)}
    progress = order_progress(plan, "A", counts, rates, 1000.0)
    turn, mill = progress.operations
    assert (turn.good, turn.scrap, turn.remaining, turn.percent) == (30, 5, 90, 25.0)
    assert turn.remaining_time == pytest.approx(6300.0) and turn.eta == pytest.approx(7300.0)
    assert mill.remaining_time == pytest.approx(20100.0) and mill.eta == pytest.approx(27400.0)
    assert progress.percent == pytest.approx(100 * 1350 / 19800)
    assert progress.eta == pytest.approx(27400.0) and progress.finished == 0
    projected = order_progress(plan, "A", counts, rates, 1000.0, finishes={("A", 10): 9000.0, ("A", 20): 50_000.0})
    assert projected.eta == 50_000.0


def test_a_later_operation_is_capped_by_its_predecessor_finished_short() -> None:
    plan = plan_of(order_in("A", DUE, {"machine": "m1", "cycle": 10}, {"machine": "m2", "cycle": 10},
                            {"machine": "m3", "cycle": 10}, quantity=100))
    counts = {("A", 10): Tally(92, 8)}
    assert effective_quantities(plan, plan.orders["A"], counts) == {("A", 10): 100, ("A", 20): 100, ("A", 30): 100}
    plan = set_status(plan, ("A", 10), OpStatus.DONE)  # finished short: 92 good
    assert effective_quantities(plan, plan.orders["A"], counts) == {("A", 10): 100, ("A", 20): 92, ("A", 30): 92}
    progress = order_progress(plan, "A", counts, {}, 0.0)
    assert progress.operations[1].remaining == 92 and progress.operations[0].remaining == 0
