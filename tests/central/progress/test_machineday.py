"""The machine page's day window and its Pareto of downtime causes, on a hand-computed shift day."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from central.progress.downtime import downtime
from central.progress.machineday import causes, day_window
from central.progress.shifts import AlwaysPlanned
from central.progress.timeline import StateInterval
from plantpulse.protocol.models import MachineState
from tests.central.progress.test_downtime import CAL, T8, iv, t

RUN, IDLE, FAULT, SETUP = MachineState.RUNNING, MachineState.IDLE, MachineState.FAULT, MachineState.SETUP
SH = ZoneInfo("Asia/Shanghai")


def test_the_day_is_midnight_to_midnight_of_the_production_day() -> None:
    win = day_window(CAL, t(60))
    assert win.day.isoformat() == "2026-03-02"
    assert win.start == datetime(2026, 3, 2, tzinfo=SH).timestamp()
    assert win.end == win.start + 86_400
    always = day_window(AlwaysPlanned(SH), datetime(2026, 3, 2, 23, 59, tzinfo=SH).timestamp())
    assert always.day.isoformat() == "2026-03-02"


def test_causes_are_sorted_with_shares_stops_and_fault_codes_apart() -> None:
    intervals: list[StateInterval] = [
        iv(0, 10), iv(10, 40, FAULT, 7),  # 30 min fault 7
        iv(40, 60), iv(60, 80, SETUP),  # 20 min setup
        iv(80, 90), iv(90, 100, FAULT, 7), iv(100, 105, FAULT, 9),  # 10 min fault 7 then 5 min fault 9
        iv(105, 110), iv(110, 111, IDLE),  # a 1-minute idle: a micro-stop
        iv(111, 120),
    ]
    report = downtime(intervals, t(0), t(120), calendar=CAL, micro_stop_threshold=120)
    found = causes(report, intervals, micro_stop_threshold=120)
    assert [(c.category, c.code, c.seconds / 60, c.stops) for c in found] == [
        ("fault", 7, 40, 2), ("setup", None, 20, 1), ("fault", 9, 5, 1), ("micro_stop", None, 1, 1)]
    assert [round(c.share, 4) for c in found] == [round(x / 66, 4) for x in (40, 20, 5, 1)]
    assert found[-1].cumulative == pytest.approx(1.0)
    assert [round(c.cumulative, 4) for c in found][:2] == [round(40 / 66, 4), round(60 / 66, 4)]


def test_no_downtime_no_causes_and_no_data_is_not_a_cause() -> None:
    report = downtime([iv(30, 60)], T8, t(120), calendar=CAL)
    assert report.no_data > 0
    assert causes(report, [iv(30, 60)], micro_stop_threshold=120) == []


def test_stop_reasons_take_their_idle_time_out_of_idle() -> None:
    intervals = [iv(0, 10), iv(10, 40, IDLE), iv(40, 60)]
    report = downtime(intervals, t(0), t(60), calendar=CAL)
    found = causes(report, intervals, micro_stop_threshold=120, explained={"material": 20 * 60.0})
    assert [(c.category, c.reason, c.seconds / 60) for c in found] == [("reason", "material", 20), ("idle", None, 10)]
    over = causes(report, intervals, micro_stop_threshold=120, explained={"material": 99 * 60.0})
    assert [(c.category, c.reason, c.seconds / 60) for c in over] == [("reason", "material", 30)]
