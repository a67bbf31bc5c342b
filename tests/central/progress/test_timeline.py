"""The clock-skew rule and state intervals, each case computed by hand (pure: no I/O, no sleep)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from central.progress.clock import Clamp, ClockRule, corrected, to_central
from central.progress.timeline import (
    DataGap,
    OpenInterval,
    StateChange,
    StateInterval,
    advance,
    check_ordered,
    clip,
    insert_late,
    mark_gaps,
    place_state,
)
from plantpulse.protocol.models import DroppedRange, MachineState, StateEvent
from tests.fixtures.ids import EPOCH1

T = 1_800_000_000.0
RUN, IDLE, FAULT, SETUP = MachineState.RUNNING, MachineState.IDLE, MachineState.FAULT, MachineState.SETUP


def ev(t: float, state: MachineState = RUN, **kw: object) -> StateEvent:
    return StateEvent(machine_id="m1", ts=T + t, state=state, **kw)


def ch(t: float, state: MachineState = RUN, **kw: object) -> StateChange:
    return StateChange("m1", T + t, state, **kw)  # type: ignore[arg-type]


def iv(a: float, b: float, state: MachineState = RUN, **kw: object) -> StateInterval:
    return StateInterval("m1", state, T + a, T + b, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- clock rule
def test_skew_within_the_bound_is_not_corrected() -> None:
    assert corrected(T, 1.5) == T
    assert corrected(T, -2.0) == T  # the bound itself is still jitter
    assert corrected(T, None) == T


def test_skew_beyond_the_bound_is_subtracted_either_way() -> None:
    assert corrected(T, 30.0) == T - 30.0  # edge clock 30 s ahead: its times are 30 s late on ours
    assert corrected(T, -7.5) == T + 7.5
    assert corrected(T, 3.0, ClockRule(skew_bound=5.0, future_tolerance=5.0)) == T


def test_event_in_the_future_is_clamped_to_its_receipt() -> None:
    # edge says T+100, central received it at T+10: beyond the 5 s tolerance
    assert to_central(T + 100, received_at=T + 10, skew=None) == (T + 10, Clamp.FUTURE)
    # within the tolerance it stays (clocks a little ahead are normal)
    assert to_central(T + 14, received_at=T + 10, skew=None) == (T + 14, None)
    # the future check comes after skew correction: 60 s ahead, skew +60 measured -> fine
    assert to_central(T + 70, received_at=T + 10, skew=60.0) == (T + 10, None)
    # an old event from a backlog is no problem at all
    assert to_central(T, received_at=T + 3600, skew=None) == (T, None)


def test_rule_rejects_a_tolerance_below_the_bound() -> None:
    with pytest.raises(ValidationError, match="future_tolerance"):
        ClockRule(skew_bound=10.0, future_tolerance=5.0)


def test_place_state_applies_skew_and_keeps_the_event_fields() -> None:
    change = place_state(ev(50, FAULT, fault_code=7, job="J1"), received_at=T + 40, skew=20.0)
    assert change == StateChange("m1", T + 30, FAULT, 7, "J1", None, False, None)


def test_place_state_flags_a_future_clamp() -> None:
    change = place_state(ev(500), received_at=T + 10, skew=1.0)  # skew under the bound: not corrected
    assert (change.at, change.clamp) == (T + 10, Clamp.FUTURE)


# --------------------------------------------------------------------------- advance
def test_each_change_closes_the_open_interval() -> None:
    step = advance(None, ch(0, RUN, job="J1"))
    assert step.closed is None and step.open == OpenInterval("m1", RUN, T, None, "J1")
    step = advance(step.open, ch(90, FAULT, fault_code=12, job="J1"))
    assert step.closed == iv(0, 90, RUN, job="J1")
    step = advance(step.open, ch(150, RUN, job="J2"))
    assert step.closed == iv(90, 150, FAULT, fault_code=12, job="J1")
    assert step.open.start == T + 150 and step.open.job == "J2"


def test_a_repeated_key_keeps_the_interval_open() -> None:
    first = advance(None, ch(0, RUN, job="J1")).open
    step = advance(first, ch(60, RUN, job="J1", reason="ignored"))
    assert step.closed is None and step.open == replace(first, repeats=(T + 60,))  # the repeat's time is kept
    # a fault code change is a new interval even though the state stays fault
    f = advance(None, ch(0, FAULT, fault_code=1)).open
    step = advance(f, ch(30, FAULT, fault_code=2))
    assert step.closed == iv(0, 30, FAULT, fault_code=1)


def test_an_event_older_than_the_open_start_is_clamped_and_uncertain() -> None:
    open_ = OpenInterval("m1", RUN, T + 100)
    step = advance(open_, ch(40, IDLE))  # e.g. the skew correction changed between two events
    assert step.change.at == T + 100 and step.change.clamp is Clamp.BEFORE_OPEN
    assert step.closed == iv(100, 100, RUN, uncertain=True)  # empty, never negative
    assert step.open == OpenInterval("m1", IDLE, T + 100, uncertain=True)
    assert step.closed.duration == 0


def test_a_future_clamped_change_makes_both_intervals_uncertain() -> None:
    open_ = OpenInterval("m1", RUN, T)
    step = advance(open_, place_state(ev(1000, IDLE), received_at=T + 60, skew=None))
    assert step.closed == iv(0, 60, RUN, uncertain=True)
    assert step.open.start == T + 60 and step.open.uncertain


def test_the_first_event_after_a_gap_marks_the_intervals_around_it() -> None:
    open_ = OpenInterval("m1", RUN, T)
    step = advance(open_, ch(60, IDLE, uncertain=True))
    assert step.closed is not None and step.closed.uncertain and step.open.uncertain
    # and an uncertain repeat of the open key marks the open interval
    again = advance(OpenInterval("m1", IDLE, T + 60), ch(70, IDLE, uncertain=True))
    assert again.closed is None and again.open.uncertain


def test_until_cuts_the_open_interval_at_now() -> None:
    open_ = OpenInterval("m1", SETUP, T + 10, job="J3")
    assert open_.until(T + 70) == iv(10, 70, SETUP, job="J3", ongoing=True)
    assert open_.until(T).duration == 0  # "now" before the start (skewed reader) never goes negative


# --------------------------------------------------------------------------- late events
def test_a_late_event_splits_the_interval_that_contains_it() -> None:
    # applied: idle [0, 100), running [100, ...); seq of a fault at 40 arrives after the hold
    stored = iv(0, 100, IDLE)
    open_ = OpenInterval("m1", RUN, T + 100)
    result = insert_late(ch(40, FAULT, fault_code=9), after=stored, open_=open_)
    assert result.remove == stored
    assert result.add == (iv(0, 40, IDLE, uncertain=True), iv(40, 100, FAULT, fault_code=9, uncertain=True))
    assert result.open is open_  # the present is untouched: the machine is running


def test_late_events_are_placed_by_time_in_any_order() -> None:
    # two missing events (fault at 40, setup at 70) inside idle [0, 100), arriving 70 first
    a = insert_late(ch(70, SETUP), after=iv(0, 100, IDLE), open_=None)
    assert a.add == (iv(0, 70, IDLE, uncertain=True), iv(70, 100, SETUP, uncertain=True))
    b = insert_late(ch(40, FAULT), after=a.add[0], open_=None)
    assert b.remove == a.add[0]
    assert b.add == (iv(0, 40, IDLE, uncertain=True), iv(40, 70, FAULT, uncertain=True))


def test_a_late_event_before_all_known_history_fills_up_to_it() -> None:
    result = insert_late(ch(-30, SETUP), after=iv(0, 100, IDLE), open_=None)
    assert result.remove is None and result.add == (iv(-30, 0, SETUP, uncertain=True),)
    # only an open interval known: same, up to its start; the open interval stays as it is
    open_ = OpenInterval("m1", RUN, T)
    result = insert_late(ch(-30, SETUP), after=None, open_=open_)
    assert result.add == (iv(-30, 0, SETUP, uncertain=True),) and result.open is open_


def test_a_late_event_at_an_interval_start_goes_first_and_empty() -> None:
    result = insert_late(ch(0, FAULT), after=iv(0, 100, IDLE), open_=None)
    assert result.add == (iv(0, 0, FAULT, uncertain=True), iv(0, 100, IDLE, uncertain=True))


def test_a_late_event_stamped_inside_the_open_interval_keeps_the_present() -> None:
    open_ = OpenInterval("m1", RUN, T + 100)
    result = insert_late(ch(130, IDLE), after=None, open_=open_)
    assert result.add == (iv(100, 100, IDLE, uncertain=True),)
    assert result.open == OpenInterval("m1", RUN, T + 100, uncertain=True)


def test_a_late_event_with_no_history_opens_an_uncertain_interval() -> None:
    result = insert_late(ch(5, IDLE), after=None, open_=None)
    assert result.add == () and result.open == OpenInterval("m1", IDLE, T + 5, uncertain=True)


# --------------------------------------------------------------------------- gaps and windows
def test_intervals_touching_a_gap_become_uncertain() -> None:
    ivs = [iv(0, 100), iv(100, 200, IDLE), iv(200, 300), iv(300, 400, SETUP)]
    marked = mark_gaps(ivs, [DataGap(T + 150, T + 200)])
    assert [i.uncertain for i in marked] == [False, True, True, False]  # 200 touches [200, 300)
    assert mark_gaps(ivs, [DataGap(T + 450, T + 460)]) == ivs
    assert [i.uncertain for i in mark_gaps(ivs, [DataGap(T + 50, T + 50), DataGap(T + 320, T + 330)])] == [
        True, False, False, True,
    ]


def test_a_dropped_range_becomes_a_skew_corrected_gap() -> None:
    dropped = DroppedRange(epoch=EPOCH1, first=5, last=9, count=5, start_ts=T + 40, end_ts=T + 80)
    assert DataGap.from_dropped(dropped, skew=10.0) == DataGap(T + 30, T + 70)
    assert DataGap.from_dropped(dropped, skew=1.0) == DataGap(T + 40, T + 80)
    one_end = DroppedRange(epoch=EPOCH1, first=5, last=9, count=5, end_ts=T + 80)
    assert DataGap.from_dropped(one_end, skew=None) == DataGap(T + 80, T + 80)
    assert DataGap.from_dropped(DroppedRange(epoch=EPOCH1, first=5, last=9, count=5), skew=None) is None


def test_clip_cuts_intervals_to_a_window() -> None:
    ivs = [iv(0, 100), iv(100, 200, IDLE), iv(200, 200, FAULT), iv(200, 300)]
    assert clip(ivs, T + 50, T + 250) == [iv(50, 100), iv(100, 200, IDLE), iv(200, 200, FAULT), iv(200, 250)]
    assert clip(ivs, T + 400, T + 500) == []


def test_check_ordered_names_the_machine() -> None:
    check_ordered([iv(0, 10), iv(10, 20)])
    with pytest.raises(ValueError, match="m1 overlap"):
        check_ordered([iv(0, 10), iv(5, 20)])
