"""Downtime categories, micro-stops, failures and MTBF/MTTR on hand-computed shift days."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from central.progress.downtime import DowntimeReport, StopKind, downtime, find_stops
from central.progress.reliability import reliability
from central.progress.shifts import AlwaysPlanned, ShiftCalendar, ShiftCalendarConfig
from central.progress.timeline import OpenInterval, StateInterval
from plantpulse.configfile import parse_yaml_model
from plantpulse.protocol.models import MachineState

RUN, IDLE, FAULT, SETUP = MachineState.RUNNING, MachineState.IDLE, MachineState.FAULT, MachineState.SETUP
MAINT, OFF = MachineState.MAINTENANCE, MachineState.OFFLINE
MIN = 60.0
# minute 0 is Monday 2026-03-02 08:00 in Shanghai, the start of the day shift
T8 = datetime(2026, 3, 2, 8, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
CAL = ShiftCalendar(parse_yaml_model(ShiftCalendarConfig, """
timezone: Asia/Shanghai
shifts:
  - {name: day, days: [mon, tue, wed, thu, fri], start: '08:00', end: '17:30',
     breaks: [{start: '12:00', end: '13:00'}]}
"""))  # planned minutes of Monday: [0, 240) and [300, 570)


def t(minute: float) -> float:
    return T8 + minute * MIN


def iv(a: float, b: float, state: MachineState = RUN, code: int | None = None, **kw: object) -> StateInterval:
    return StateInterval("m1", state, t(a), t(b), fault_code=code, **kw)  # type: ignore[arg-type]


def the_day() -> list[StateInterval]:
    """Monday 07:00-18:00, minute by minute (see the comments for what each piece is)."""
    return [
        iv(-60, 10),  # running: 60 min before the shift (overtime), 10 in it
        iv(10, 11, IDLE),  # 60 s idle between running: a micro-stop
        iv(11, 100),
        iv(100, 101, FAULT, 7), iv(101, 101.5, IDLE),  # fault then idle, 90 s together: one micro-stop
        iv(101.5, 130),
        iv(130, 150, FAULT, 7),  # 20 min fault: failure 1
        iv(150, 160, MAINT), iv(160, 170, SETUP),
        iv(170, 200),
        iv(200, 230, FAULT, 9), iv(230, 280, IDLE),  # one long stop; its fault run is failure 2;
        # the idle has 10 planned min, the rest is lunch
        iv(280, 310),  # 20 min running in lunch (unplanned), 10 planned
        iv(310, 320, OFF, uncertain=True),  # PLC unreachable; history uncertain (a data gap)
        iv(320, 321, IDLE),  # 60 s after offline, before running: a micro-stop
        iv(321, 400),
        # [400, 410): no interval (history hole) -> no data
        OpenInterval("m1", RUN, t(410)).until(t(600)),  # still running at 18:00; shift ends 17:30
    ]


def test_the_hand_computed_day() -> None:
    report = downtime(the_day(), t(-60), t(600), calendar=CAL, micro_stop_threshold=120)
    assert report == DowntimeReport(
        machine_id="m1", start=t(-60), end=t(600),
        planned=510 * MIN, unplanned=150 * MIN, unplanned_running=110 * MIN,
        running=406.5 * MIN, fault={7: 20 * MIN, 9: 30 * MIN}, setup=10 * MIN, idle=10 * MIN,
        maintenance=10 * MIN, offline=10 * MIN, no_data=10 * MIN,
        micro_stops=3, micro_stop_time=3.5 * MIN, failures=2, uncertain=10 * MIN,
    )
    assert report.downtime == 90 * MIN and report.fault_time == 50 * MIN


def test_categories_add_up_to_planned_time() -> None:
    for threshold in (0, 30, 120, 600, 10_000):
        r = downtime(the_day(), t(-60), t(600), calendar=CAL, micro_stop_threshold=threshold)
        parts = r.running + r.fault_time + r.setup + r.idle + r.maintenance + r.offline + r.micro_stop_time
        assert parts + r.no_data == pytest.approx(r.planned)
        assert r.planned + r.unplanned == pytest.approx(r.end - r.start)


def test_mtbf_and_mttr_of_the_day() -> None:
    rel = reliability(downtime(the_day(), t(-60), t(600), calendar=CAL, micro_stop_threshold=120))
    assert rel.failures == 2
    assert rel.mtbf == 406.5 * MIN / 2  # 203.25 min of running per failure
    assert rel.mttr == 50 * MIN / 2  # 25 min of fault per failure


def test_no_failure_means_no_mtbf_but_the_running_time_is_kept() -> None:
    rel = reliability(downtime([iv(0, 100), iv(100, 101, IDLE), iv(101, 570)], t(0), t(570), calendar=CAL))
    assert (rel.failures, rel.mtbf, rel.mttr) == (0, None, None)
    assert rel.running == 509 * MIN  # 510 planned minutes (lunch excluded) minus the 1-minute micro-stop


def test_without_micro_stops_short_faults_are_failures() -> None:
    r = downtime(the_day(), t(-60), t(600), calendar=CAL, micro_stop_threshold=0)
    assert r.micro_stops == 0 and r.micro_stop_time == 0
    assert r.failures == 3  # the 60 s fault 7 at minute 100 counts now
    assert r.fault == {7: 21 * MIN, 9: 30 * MIN}
    assert r.idle == 10 * MIN + 2.5 * MIN  # 1 + 0.5 + 1 minutes of short idle back in idle
    assert reliability(r).mttr == 51 * MIN / 3


def test_a_bigger_threshold_turns_longer_stops_into_micro_stops() -> None:
    r = downtime(the_day(), t(-60), t(600), calendar=CAL, micro_stop_threshold=25 * MIN)
    assert r.micro_stops == 4 and r.failures == 1  # the 20 min fault is a micro-stop now
    assert r.fault == {9: 30 * MIN}


def test_a_fault_running_into_maintenance_is_one_failure() -> None:
    ivs = [iv(0, 10), iv(10, 20, FAULT, 1), iv(20, 25, FAULT, 2), iv(25, 40, MAINT), iv(40, 60)]
    stops = find_stops(ivs, 120)
    assert [(s.kind, s.start, s.end) for s in stops] == [(StopKind.FAILURE, t(10), t(25))]
    r = downtime(ivs, t(0), t(60), calendar=CAL)
    assert (r.failures, r.fault, r.maintenance) == (1, {1: 10 * MIN, 2: 5 * MIN}, 15 * MIN)


def test_idle_between_two_faults_makes_two_failures() -> None:
    ivs = [iv(0, 10), iv(10, 20, FAULT, 1), iv(20, 25, IDLE), iv(25, 30, FAULT, 1), iv(30, 60)]
    assert downtime(ivs, t(0), t(60), calendar=CAL).failures == 2


def test_a_hole_ends_a_stop() -> None:
    # 60 s idle, 10 min without data, 60 s idle: two micro-stops, not one 12-minute stop
    ivs = [iv(0, 10), iv(10, 11, IDLE), iv(21, 22, IDLE), iv(22, 30)]
    r = downtime(ivs, t(0), t(30), calendar=CAL)
    assert (r.micro_stops, r.micro_stop_time, r.no_data, r.idle) == (2, 2 * MIN, 10 * MIN, 0)


def test_an_ongoing_short_stop_is_not_yet_a_micro_stop() -> None:
    ivs = [iv(0, 10), OpenInterval("m1", IDLE, t(10)).until(t(11))]
    r = downtime(ivs, t(0), t(11), calendar=CAL)
    assert (r.micro_stops, r.idle) == (0, 1 * MIN)


def test_a_fault_without_code_is_reported_under_none() -> None:
    r = downtime([iv(0, 10), iv(10, 30, FAULT)], t(0), t(30), calendar=CAL)
    assert r.fault == {None: 20 * MIN} and r.failures == 1


def test_empty_stops_are_not_counted() -> None:
    # a clamped event leaves an empty fault interval: no time, no failure, no micro-stop
    ivs = [iv(0, 10), iv(10, 10, FAULT, 3, uncertain=True), iv(10, 20)]
    r = downtime(ivs, t(0), t(20), calendar=CAL)
    assert (r.failures, r.micro_stops, r.fault, r.running) == (0, 0, {}, 20 * MIN)


def test_a_stop_is_counted_in_the_window_of_its_first_planned_instant() -> None:
    # idle from 07:59:30 to 08:00:30: its first planned instant is 08:00:00
    ivs = [iv(-10, -0.5), iv(-0.5, 0.5, IDLE), iv(0.5, 10)]
    before = downtime(ivs, t(-10), t(0), calendar=CAL)
    after = downtime(ivs, t(0), t(10), calendar=CAL)
    assert (before.micro_stops, before.micro_stop_time, before.planned) == (0, 0, 0)
    assert (after.micro_stops, after.micro_stop_time) == (1, 30.0)
    # cut just after 08:00: the count stays with the window holding 08:00, the time is shared
    first = downtime(ivs, t(-10), t(10 / 60), calendar=CAL)
    second = downtime(ivs, t(10 / 60), t(10), calendar=CAL)
    assert (first.micro_stops, first.micro_stop_time) == (1, 10.0)
    assert (second.micro_stops, second.micro_stop_time) == (0, 20.0)


def test_windows_partitioning_the_day_count_everything_exactly_once() -> None:
    whole = downtime(the_day(), t(-60), t(600), calendar=CAL)
    cuts = [-60, 10.5, 100.75, 140, 215, 300, 320.5, 405, 600]
    parts = [downtime(the_day(), t(a), t(b), calendar=CAL) for a, b in itertools.pairwise(cuts)]
    assert sum(p.micro_stops for p in parts) == whole.micro_stops
    assert sum(p.failures for p in parts) == whole.failures
    assert sum(p.micro_stop_time for p in parts) == pytest.approx(whole.micro_stop_time)
    assert sum(p.running for p in parts) == pytest.approx(whole.running)
    assert sum(p.fault_time for p in parts) == pytest.approx(whole.fault_time)
    assert sum(p.no_data for p in parts) == pytest.approx(whole.no_data)


def test_time_outside_shifts_is_never_downtime() -> None:
    # a whole Sunday in fault: nothing planned, so no downtime and no failure
    sunday = t(6 * 24 * 60 - 8 * 60)
    ivs = [StateInterval("m1", FAULT, sunday, sunday + 86400, fault_code=5)]
    r = downtime(ivs, sunday, sunday + 86400, calendar=CAL)
    assert (r.planned, r.unplanned, r.downtime, r.failures) == (0, 86400, 0, 0)


def test_around_the_clock_everything_is_planned() -> None:
    ivs = [iv(0, 60), iv(60, 90, FAULT, 1), iv(90, 120)]
    r = downtime(ivs, t(0), t(120), calendar=AlwaysPlanned())
    assert (r.planned, r.unplanned, r.running, r.fault, r.failures) == (120 * MIN, 0, 90 * MIN, {1: 30 * MIN}, 1)


def test_no_intervals_is_all_no_data() -> None:
    r = downtime([], t(0), t(60), calendar=CAL, machine_id="m9")
    assert (r.machine_id, r.no_data, r.planned) == ("m9", 60 * MIN, 60 * MIN)


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        downtime([], t(10), t(0), calendar=CAL)
    with pytest.raises(ValueError, match="sorted by start"):
        downtime([iv(10, 20), iv(0, 10)], t(0), t(30), calendar=CAL)
