"""OEE and its loss cascade on the hand-computed day of docs/central.md, and the shift summary."""

from __future__ import annotations

import json

import pytest

from central.progress.changes import set_status
from central.progress.counts import CountRecord
from central.progress.delay import DelayConfig, RiskState, evaluate
from central.progress.downtime import DowntimeReport, downtime
from central.progress.oee import PartsAt, combine, oee, planned_parts
from central.progress.orders import OpStatus
from central.progress.projection import project
from central.progress.summary import ShiftWindow, downtime_causes, shift_summary
from tests.central.progress.orderkit import H, order_in, plan_of
from tests.central.progress.test_downtime import CAL, t, the_day

MIN = 60.0


def test_oee_of_the_hand_computed_day() -> None:
    """docs/central.md's Monday: 510 planned min, running 406.5, micro-stops 3.5, fault 50, setup, idle,
    maintenance, offline and no data 10 each. 380 good + 10 scrap at an ideal 60 s:

    run time 410 min; A = 410/510 = 0.8039, P = 390/410 = 0.9512, Q = 380/390 = 0.9744,
    OEE = 380/510 = 0.7451. Cascade: 510 - 100 = 410 - 20 = 390 - 10 = 380 min.
    """
    report = downtime(the_day(), t(-60), t(600), calendar=CAL)
    result = oee(report, [PartsAt(60.0, 380, 10)])
    assert result.planned == 510 * MIN
    assert result.availability_loss == pytest.approx(100 * MIN)
    assert result.run_time == pytest.approx(410 * MIN)
    assert result.performance_loss == pytest.approx(20 * MIN)  # 3.5 min of micro-stops + 16.5 of slow cycles
    assert result.quality_loss == pytest.approx(10 * MIN)
    assert result.fully_productive == pytest.approx(380 * MIN)
    assert result.availability == pytest.approx(410 / 510)
    assert result.performance == pytest.approx(390 / 410)
    assert result.quality == pytest.approx(380 / 390)
    assert result.oee == pytest.approx(380 / 510)
    assert result.losses == pytest.approx({"fault": 50 * MIN, "setup": 10 * MIN, "idle": 10 * MIN,
                                           "maintenance": 10 * MIN, "offline": 10 * MIN, "no_data": 10 * MIN})
    unknown = oee(report, [PartsAt(60.0, 380, 10), PartsAt(None, 5, 0)])
    assert unknown.performance is None and unknown.oee is None and unknown.quality == pytest.approx(385 / 395)
    json.dumps(result.as_dict())


def test_line_oee_is_time_weighted_and_only_planned_parts_count() -> None:
    a = oee(DowntimeReport("m1", 0, 8 * H, planned=8 * H, running=8 * H), [PartsAt(60.0, 480, 0)])  # OEE 1.0
    b = oee(DowntimeReport("m2", 0, 8 * H, planned=8 * H, running=4 * H, idle=4 * H), [PartsAt(60.0, 120, 0)])
    line = combine([a, b], subject="line-a")
    assert line.oee == pytest.approx((480 + 120) / (960))  # 600 ideal minutes in 16 planned hours
    assert line.availability == pytest.approx(12 / 16)
    records = [CountRecord("m1", 0, 100, 3, 0), CountRecord("m1", 0, 500, 4, 1), CountRecord("m1", 0, 900, 2, 0)]
    parts = planned_parts(records, [(0.0, 200.0), (800.0, 1000.0)], lambda rec: 30.0)
    assert [(p.good, p.scrap) for p in parts] == [(3, 0), (2, 0)]  # the one at 500 is overtime


def test_shift_summary_is_plain_json() -> None:
    plan = plan_of(order_in("A", 5 * H, {"machine": "m1", "cycle": 60}),
                   order_in("B", 1.5 * H, {"machine": "m1", "cycle": 360}),
                   order_in("C", 1 * H, {"machine": "m2", "cycle": 60}))
    plan = set_status(plan, ("A", 10), OpStatus.DONE)
    findings = evaluate(plan, project(plan, {}, 0.0), {"B": RiskState(-600.0)}, 0.0, config=DelayConfig()).findings
    reports = [DowntimeReport("m1", 0, 8 * H, planned=8 * H, running=6 * H, fault={7: 1.5 * H}, setup=0.5 * H),
               DowntimeReport("m2", 0, 8 * H, planned=8 * H, running=7 * H, fault={7: 0.5 * H}, idle=0.5 * H)]
    summary = shift_summary(
        ShiftWindow("day", 0.0, 8 * H), plan, completed_at={"A": 4 * H}, findings=findings, downtime=reports,
        oee_by_line={"line-a": combine([oee(r, [PartsAt(60.0, 300, 3)]) for r in reports], subject="line-a")},
    )
    assert summary["completed"] == [{"order": "A", "product": "part", "customer": None, "completed_at": 4 * H,
                                     "due": 5 * H, "late": False}]
    assert [row["order"] for row in summary["late"]] == ["B", "C"]
    assert [row["order"] for row in summary["at_risk"]] == ["B"]
    assert summary["downtime"][0] == {"cause": "fault 7", "seconds": 2 * H, "machines": ["m1", "m2"]}
    assert summary["oee"]["line-a"]["good"] == 600
    assert json.loads(json.dumps(summary)) == summary
    assert downtime_causes([], 3) == []
