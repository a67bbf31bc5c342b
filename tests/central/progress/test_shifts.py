"""The shift calendar with hand-computed weeks: breaks, a night shift, a day off, 调休, DST."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from central.progress.shifts import AlwaysPlanned, ShiftCalendar, ShiftCalendarConfig
from plantpulse.configfile import ConfigError, parse_yaml_model

H = 3600.0
MON = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # Monday 2026-03-02 00:00 +08:00
TUE, WED, THU, FRI, SAT, SUN = (MON + d * 24 * H for d in range(1, 7))

LINE_A = """
timezone: Asia/Shanghai
shifts:
  - name: day
    days: [mon, tue, wed, thu, fri]
    start: '08:00'
    end: '17:30'
    breaks:
      - {start: '12:00', end: '13:00'}
  - name: night
    days: [mon, tue, wed, thu]
    start: '22:00'
    end: '06:00'
    breaks:
      - {start: '02:00', end: '02:30'}
days_off: [2026-03-04]          # Wednesday: no day shift, no night shift starting that evening
extra_workdays: {2026-03-07: mon}  # Saturday worked like a Monday (调休)
"""


@pytest.fixture
def cal() -> ShiftCalendar:
    return ShiftCalendar(parse_yaml_model(ShiftCalendarConfig, LINE_A))


def hours(spans: list[tuple[float, float]]) -> float:
    return sum(e - s for s, e in spans) / H


def test_a_monday_has_two_day_pieces_and_the_evening_of_a_night_shift(cal: ShiftCalendar) -> None:
    assert cal.planned(MON, TUE) == [
        (MON + 8 * H, MON + 12 * H),
        (MON + 13 * H, MON + 17.5 * H),
        (MON + 22 * H, TUE),  # the night shift runs on past midnight: cut by the window
    ]


def test_the_night_shift_crosses_midnight_and_keeps_its_break(cal: ShiftCalendar) -> None:
    assert cal.planned(TUE, TUE + 7 * H) == [(TUE, TUE + 2 * H), (TUE + 2.5 * H, TUE + 6 * H)]
    assert hours(cal.planned(MON + 20 * H, TUE + 7 * H)) == 7.5


def test_a_day_off_cancels_its_shifts_but_not_the_previous_night(cal: ShiftCalendar) -> None:
    # Tuesday's night shift ends Wednesday 06:00; Wednesday itself and its night are off
    assert cal.planned(WED, THU) == [(WED, WED + 2 * H), (WED + 2.5 * H, WED + 6 * H)]
    assert not cal.is_planned(WED + 10 * H)
    assert not cal.is_planned(WED + 23 * H)


def test_the_whole_week_adds_up(cal: ShiftCalendar) -> None:
    # day shifts 8.5 h on Mon, Tue, Thu, Fri and Saturday (as Monday): 42.5 h
    # night shifts 7.5 h starting Mon, Tue, Thu and Saturday: 30 h
    assert hours(cal.planned(MON, SUN + 24 * H)) == 72.5
    assert hours(cal.planned(SUN, SUN + 24 * H)) == 5.5  # Saturday's night shift, after midnight


def test_is_planned_at_the_edges_of_shifts_and_breaks(cal: ShiftCalendar) -> None:
    assert cal.is_planned(MON + 8 * H)  # start included
    assert cal.is_planned(MON + 12 * H - 1)
    assert not cal.is_planned(MON + 12 * H)  # break
    assert cal.is_planned(MON + 13 * H)
    assert not cal.is_planned(MON + 17.5 * H)  # end excluded
    assert not cal.is_planned(SUN + 12 * H)


def test_production_day_is_the_shift_start_date(cal: ShiftCalendar) -> None:
    assert cal.production_day(TUE + 3 * H) == date(2026, 3, 2)  # Monday's night shift
    assert cal.production_day(TUE + 2.2 * H) == date(2026, 3, 2)  # in its break: still that shift
    assert cal.production_day(TUE + 7 * H) == date(2026, 3, 3)  # between shifts: the local date
    assert cal.production_day(SUN + 5 * H) == date(2026, 3, 7)  # the extra Saturday's night


def test_empty_and_reversed_windows_have_no_planned_time(cal: ShiftCalendar) -> None:
    assert cal.planned(MON + 9 * H, MON + 9 * H) == []
    assert cal.planned(TUE, MON) == []


def test_shift_length_follows_the_wall_clock_over_dst() -> None:
    cal = ShiftCalendar(parse_yaml_model(ShiftCalendarConfig, """
timezone: Europe/Berlin
shifts: [{name: night, days: [sat], start: '22:00', end: '06:00'}]
"""))
    spring = datetime(2026, 3, 28, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()  # clocks go forward at 02:00
    autumn = datetime(2026, 10, 24, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()  # and back at 03:00
    assert hours(cal.planned(spring, spring + 48 * H)) == 7
    assert hours(cal.planned(autumn, autumn + 48 * H)) == 9


def test_a_shift_ending_at_24_00_ends_at_midnight() -> None:
    cal = ShiftCalendar(parse_yaml_model(ShiftCalendarConfig, """
timezone: Asia/Shanghai
shifts: [{name: late, days: [mon], start: '16:00', end: '24:00'}]
"""))
    assert cal.planned(MON, TUE + 24 * H) == [(MON + 16 * H, TUE)]


def test_always_planned_covers_everything() -> None:
    always = AlwaysPlanned(ZoneInfo("Asia/Shanghai"))
    assert always.planned(MON, TUE) == [(MON, TUE)]
    assert always.is_planned(MON + 3 * H)
    assert always.production_day(MON + 1) == date(2026, 3, 2)  # in Shanghai; UTC would say March 1st


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("timezone: Asia/Shangai\nshifts: [{name: d, days: [mon], start: '08:00', end: '17:00'}]",
         "unknown timezone 'Asia/Shangai'"),
        ("timezone: UTC\nshifts: [{name: d, days: [mon], start: '08:00', end: 17:30}]",
         "quoted 'HH:MM'"),
        ("timezone: UTC\nshifts: [{name: d, days: [mon], start: '8:75', end: '17:00'}]",
         "not a time of day"),
        ("timezone: UTC\nshifts: [{name: d, days: [mun], start: '08:00', end: '17:00'}]",
         "shifts[0].days[0]"),
        ("timezone: UTC\nshifts: [{name: d, days: [mon], start: '08:00', end: '12:00',"
         " breaks: [{start: '11:30', end: '12:30'}]}]", "must lie inside 08:00-12:00"),
        ("timezone: UTC\nshifts:\n - {name: day, days: [mon], start: '08:00', end: '17:30'}\n"
         " - {name: late, days: [mon], start: '17:00', end: '23:00'}", "day (mon) and late (mon) overlap"),
        ("timezone: UTC\nshifts:\n - {name: night, days: [sun], start: '22:00', end: '06:00'}\n"
         " - {name: early, days: [mon], start: '05:00', end: '13:00'}", "overlap"),
        ("timezone: UTC\nshifts: [{name: d, days: [mon], start: '08:00', end: '17:00'}]\n"
         "days_off: [2026-03-07]\nextra_workdays: {2026-03-07: mon}", "both as a day off and as an extra"),
        ("timezone: UTC\nshifts: [{name: d, days: [mon], start: '24:00', end: '06:00'}]", "starts at 24:00"),
        ("timezone: UTC\nshifts: []", "shifts"),
    ],
)
def test_calendar_errors_say_what_to_fix(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml_model(ShiftCalendarConfig, yaml_text)
    assert expected in str(err.value)


def test_night_shift_sunday_into_monday_next_to_a_monday_shift_is_fine() -> None:
    cfg = parse_yaml_model(ShiftCalendarConfig, """
timezone: UTC
shifts:
  - {name: night, days: [sun], start: '22:00', end: '06:00'}
  - {name: early, days: [mon], start: '06:00', end: '14:00'}
""")
    assert len(cfg.shifts) == 2
