"""The live-status reducers: state, fault texts, counts today, gateway facts, late events."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from central.progress.clock import Clamp
from central.progress.machines import Catalog, FaultText, MachinesConfig
from central.progress.shifts import ShiftCalendar, ShiftCalendarConfig
from central.progress.status import (
    MachineStatus,
    apply_count,
    apply_late_state,
    apply_state,
    new_status,
    set_gateway_online,
    set_gateway_skew,
)
from central.progress.timeline import StateInterval
from plantpulse.configfile import parse_yaml_model
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent

T = 1_800_000_000.0  # 2027-01-15 08:00 UTC
RUN, IDLE, FAULT, OFF = MachineState.RUNNING, MachineState.IDLE, MachineState.FAULT, MachineState.OFFLINE
FAULTS = {101: FaultText(zh="急停", en="emergency stop")}


def st(t: float, state: MachineState = RUN, **kw: object) -> StateEvent:
    return StateEvent(machine_id="m1", ts=T + t, state=state, **kw)


def cnt(start: float, end: float, good: int, scrap: int = 0, machine: str = "m1") -> CountEvent:
    return CountEvent(machine_id=machine, start=T + start, ts=T + end, good=good, scrap=scrap, job="J1")


def test_state_events_drive_state_since_fault_text_and_history() -> None:
    s = MachineStatus("m1")
    s, closed, _ = apply_state(s, st(0, RUN, job="J1"), T + 1, faults=FAULTS)
    assert (s.state, s.since, s.job, closed) == (RUN, T, "J1", None)
    s, closed, _ = apply_state(s, st(60, FAULT, fault_code=101, job="J1"), T + 61, faults=FAULTS)
    assert closed == StateInterval("m1", RUN, T, T + 60, job="J1")
    assert (s.state, s.since, s.fault_code, s.fault_text) == (FAULT, T + 60, 101, FAULTS[101])
    s, closed, _ = apply_state(s, st(90, FAULT, fault_code=999, job="J1"), T + 91, faults=FAULTS)
    assert (s.fault_code, s.fault_text) == (999, None)  # unknown code: the code without a text
    assert closed == StateInterval("m1", FAULT, T + 60, T + 90, fault_code=101, job="J1")
    s, closed, _ = apply_state(s, st(120, OFF, job="J1", reason="timeout"), T + 121, faults=FAULTS)
    assert (s.state, s.fault_code, s.fault_text, s.reason) == (OFF, None, None, "timeout")
    assert s.last_event_at == T + 121


def test_a_repeated_state_keeps_since() -> None:
    s, _, _ = apply_state(MachineStatus("m1"), st(0, IDLE), T)
    s2, closed, _ = apply_state(s, st(30, IDLE), T + 30)
    assert closed is None and s2.since == T and s2.last_event_at == T + 30


def test_the_gateway_going_offline_changes_neither_state_nor_history() -> None:
    s, _, _ = apply_state(MachineStatus("m1"), st(0, RUN), T)
    s = set_gateway_online(s, True, T)
    off = set_gateway_online(s, False, T + 100)
    assert (off.gateway_online, off.gateway_changed_at) == (False, T + 100)
    assert (off.state, off.since) == (RUN, T)
    assert set_gateway_online(off, False, T + 200) is off  # a repeated Will changes nothing
    # the backlog arrives later and tells what the machine did meanwhile
    back, closed, _ = apply_state(set_gateway_online(off, True, T + 300), st(150, IDLE), T + 301)
    assert closed == StateInterval("m1", RUN, T, T + 150)
    assert (back.state, back.since, back.gateway_online) == (IDLE, T + 150, True)


def test_a_large_skew_corrects_the_following_events() -> None:
    s = set_gateway_skew(MachineStatus("m1"), 40.0)  # edge clock 40 s ahead
    s, _, change = apply_state(s, st(100, RUN), T + 61)
    assert (s.since, change.clamp) == (T + 60, None)
    assert set_gateway_skew(s, 40.0) is s


def test_an_event_older_than_since_is_clamped_and_uncertain() -> None:
    s, _, _ = apply_state(MachineStatus("m1"), st(100, RUN), T + 100)
    s = set_gateway_skew(s, -30.0)  # the edge clock is measured 30 s behind: its times move forward
    s, closed, change = apply_state(s, st(101, IDLE), T + 131.5)
    assert (change.at, change.clamp) == (T + 131, None)
    s = set_gateway_skew(s, 30.0)  # then its clock is stepped ahead: the next event lands before since
    s, closed, change = apply_state(s, st(140, RUN), T + 141)
    assert change.clamp is Clamp.BEFORE_OPEN and change.at == T + 131
    assert closed == StateInterval("m1", IDLE, T + 131, T + 131, uncertain=True)
    assert (s.since, s.uncertain) == (T + 131, True)


def test_a_future_event_is_clamped_to_its_receipt() -> None:
    s, _, change = apply_state(MachineStatus("m1"), st(500, RUN), T + 10)
    assert (s.since, s.uncertain, change.clamp) == (T + 10, True, Clamp.FUTURE)


def test_a_late_event_rewrites_history_not_the_present() -> None:
    s, _, _ = apply_state(MachineStatus("m1"), st(0, IDLE), T)
    s, stored, _ = apply_state(s, st(100, RUN), T + 100)
    assert stored is not None
    late, result = apply_late_state(s, st(40, FAULT, fault_code=101), T + 200, after=stored)
    assert (late.state, late.since) == (RUN, T + 100)
    assert result.add == (
        StateInterval("m1", IDLE, T, T + 40, uncertain=True),
        StateInterval("m1", FAULT, T + 40, T + 100, fault_code=101, uncertain=True),
    )
    # stamped after the open start although older: the present is kept, but uncertain now
    late2, result2 = apply_late_state(s, st(130, IDLE), T + 200, after=None)
    assert (late2.state, late2.since, late2.uncertain) == (RUN, T + 100, True)
    assert result2.add == (StateInterval("m1", IDLE, T + 100, T + 100, uncertain=True),)


def test_a_late_event_for_a_machine_without_state_becomes_its_state() -> None:
    s, result = apply_late_state(MachineStatus("m1"), st(5, IDLE), T + 10, after=None)
    assert (s.state, s.since, s.uncertain, result.add) == (IDLE, T + 5, True, ())


def test_counts_add_up_today_and_in_total() -> None:
    s = MachineStatus("m1")
    s = apply_count(s, cnt(0, 20, 5, 1), T + 21)
    s = apply_count(s, cnt(20, 40, 0, 0), T + 41)  # a flags-only event: no part, no "last part" time
    s = apply_count(s, cnt(40, 60, 3), T + 61)
    assert (s.good_total, s.scrap_total, s.good_today, s.scrap_today) == (8, 1, 8, 1)
    assert s.last_part_at == T + 60 and s.day == date(2027, 1, 15)
    assert s.counts_on(date(2027, 1, 15)) == (8, 1) and s.counts_on(date(2027, 1, 16)) == (0, 0)


def test_a_new_day_starts_today_from_zero_and_a_backlog_only_adds_to_totals() -> None:
    s = apply_count(MachineStatus("m1"), cnt(0, 20, 5), T + 21)
    tomorrow = 24 * 3600
    s = apply_count(s, cnt(tomorrow, tomorrow + 20, 2), T + tomorrow + 21)
    assert (s.day, s.good_today, s.good_total) == (date(2027, 1, 16), 2, 7)
    s = apply_count(s, cnt(30, 40, 4), T + tomorrow + 30)  # yesterday's parts arriving late
    assert (s.day, s.good_today, s.good_total, s.last_part_at) == (date(2027, 1, 16), 2, 11, T + tomorrow + 20)


def test_today_follows_the_production_day_of_a_night_shift() -> None:
    cal = ShiftCalendar(parse_yaml_model(ShiftCalendarConfig, """
timezone: Asia/Shanghai
shifts: [{name: night, days: [mon], start: '22:00', end: '06:00'}]
"""))
    tue_3am = datetime(2026, 3, 3, 3, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    event = CountEvent(machine_id="m1", start=tue_3am - 20, ts=tue_3am, good=4, scrap=0)
    s = apply_count(MachineStatus("m1"), event, tue_3am + 1, day_of=cal.production_day)
    assert s.day == date(2026, 3, 2)  # Monday's shift made them


def test_an_unconfigured_machine_gets_a_flagged_status() -> None:
    catalog = Catalog(MachinesConfig())
    s = new_status(catalog.machine("ghost-7"))
    assert (s.machine_id, s.configured, s.state, s.gateway_online) == ("ghost-7", False, None, None)


def test_an_event_of_another_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="m2 applied to the status of m1"):
        apply_count(MachineStatus("m1"), cnt(0, 1, 1, machine="m2"), T)


def test_apply_counts_equals_applying_each_count() -> None:
    import random

    from central.progress.counts import place_count
    from central.progress.machines import Catalog, MachinesConfig
    from central.progress.status import apply_count, apply_counts, new_status
    from plantpulse.protocol.models import CountEvent

    rng = random.Random(5)
    status = new_status(Catalog(MachinesConfig()).machine("m1"))
    base = 1_795_000_000.0
    events = [
        CountEvent(machine_id="m1", start=base + i * 3000, ts=base + i * 3000 + rng.uniform(0, 20),
                   good=rng.randint(0, 4), scrap=rng.randint(0, 1))
        for i in rng.sample(range(100), 100)  # out of order, across several days
    ]
    one_by_one = status
    for event in events:
        one_by_one = apply_count(one_by_one, event, base + 400_000)
    records = [place_count(e, received_at=base + 400_000, skew=None) for e in events]
    assert apply_counts(status, records, base + 400_000) == one_by_one
