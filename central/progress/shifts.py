"""The shift calendar: which time is planned production time (docs/central.md, "Shift calendar").

Each line has a weekly pattern of shifts (a shift may cross midnight: ``end`` at or before
``start`` means the next day), breaks inside shifts, days off and extra working days (调休: a
weekend date worked like a given weekday), in an IANA timezone. Time outside shifts and breaks
is *unplanned*: never downtime. A shift belongs to the date it starts on, so a day off cancels
the night shift that starts that evening, including its hours after midnight.

Shift times are wall-clock times in the line's timezone (a shift on a DST change day is an hour
longer or shorter, as the workers experience it). Lines without a calendar are planned around
the clock (``AlwaysPlanned``).

Pure: ``planned(start, end)`` is O(d * s) for d days in the window and s shifts per day.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Span = tuple[float, float]  # [start, end) in Unix seconds
DAY = 1440  # minutes
WEEK = 7 * DAY
_MEMO_DAYS = 4096  # a ShiftCalendar remembers the planned pieces of at most this many dates

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$")
_CLOCK_HINT = (
    "a time of day as a quoted 'HH:MM' string, e.g. '08:00' or '17:30' (unquoted, YAML reads 17:30 "
    "as the number 1050)"
)


def _check_clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 24:00)")
    return value


ClockTime = Annotated[str, AfterValidator(_check_clock)]


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_zone)]


class Weekday(enum.StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """0 for Monday ... 6 for Sunday, as ``date.weekday()``."""
        return list(Weekday).index(self)


class BreakConfig(BaseModel):
    """A pause inside a shift (lunch, tea): not planned time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: ClockTime = Field(..., description=_CLOCK_HINT)
    end: ClockTime = Field(..., description=_CLOCK_HINT + ", after start (or past midnight in a night shift)")


class ShiftConfig(BaseModel):
    """A shift worked on the given weekdays; ``end`` at or before ``start`` ends the next day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., min_length=1, description="the shift's name, e.g. day, night, 早班")
    days: list[Weekday] = Field(
        ..., min_length=1, description="weekdays it starts on, e.g. [mon, tue, wed, thu, fri]"
    )
    start: ClockTime = Field(..., description=_CLOCK_HINT)
    end: ClockTime = Field(..., description=_CLOCK_HINT + "; at or before start means the next day")
    breaks: list[BreakConfig] = Field(
        default_factory=list, description="pauses inside the shift, e.g. [{start: '12:00', end: '13:00'}]"
    )

    def span(self) -> tuple[int, int]:
        """Minutes from the start day's midnight: ``(start, end)`` with ``start < end <= start + 1440``."""
        lo, hi = minutes(self.start), minutes(self.end)
        return lo, hi if hi > lo else hi + DAY

    def break_spans(self) -> list[tuple[int, int]]:
        lo, _hi = self.span()
        spans = []
        for brk in self.breaks:
            b_lo, b_hi = minutes(brk.start), minutes(brk.end)
            if b_lo < lo:  # a break after midnight in a night shift
                b_lo, b_hi = b_lo + DAY, b_hi + DAY
            if b_hi <= b_lo:
                b_hi += DAY
            spans.append((b_lo, b_hi))
        return sorted(spans)

    @model_validator(mode="after")
    def _breaks_inside(self) -> ShiftConfig:
        if self.start == "24:00":
            raise ValueError(f"shift {self.name!r} starts at 24:00: start it at '00:00' on the next weekday")
        lo, hi = self.span()
        previous_end = lo
        for b_lo, b_hi in self.break_spans():
            if b_lo < previous_end or b_hi > hi:
                raise ValueError(
                    f"breaks of shift {self.name!r} must lie inside {self.start}-{self.end} and not overlap "
                    "each other"
                )
            previous_end = b_hi
        return self


class ShiftCalendarConfig(BaseModel):
    """A line's working time: weekly shifts, days off, extra working days, in one timezone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = Field(..., description="an IANA timezone name, e.g. Asia/Shanghai")
    shifts: list[ShiftConfig] = Field(..., min_length=1, description="the weekly shifts (at least one)")
    days_off: list[date] = Field(
        default_factory=list, description="dates (YYYY-MM-DD) on which no shift starts, e.g. [2026-10-01]"
    )
    extra_workdays: dict[date, Weekday] = Field(
        default_factory=dict,
        description="dates worked with another weekday's shifts (调休), e.g. {2026-10-10: mon}",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ShiftCalendarConfig:
        both = sorted(set(self.days_off) & set(self.extra_workdays))
        if both:
            raise ValueError(f"{', '.join(map(str, both))} listed both as a day off and as an extra workday")
        occupied: list[tuple[int, int, str]] = []
        for shift in self.shifts:
            lo, hi = shift.span()
            for day in shift.days:
                base = day.number * DAY
                occupied.append((base + lo, base + hi, f"{shift.name} ({day})"))
        occupied.sort()
        # compare each with the next, and the last (which may wrap past Sunday) with the first
        for (a_lo, a_hi, a), (b_lo, _b_hi, b) in zip(occupied, [*occupied[1:], occupied[0]], strict=True):
            if (a, a_lo) == (b, b_lo):
                continue
            b_start = b_lo if b_lo >= a_lo else b_lo + WEEK
            if a_hi > b_start:
                raise ValueError(f"shifts {a} and {b} overlap")
        return self


class Calendar(Protocol):
    """What downtime, reliability and "today" totals need from a calendar."""

    @property
    def tz(self) -> tzinfo:
        """Where its days begin and end."""
        ...

    def planned(self, start: float, end: float) -> list[Span]: ...

    def is_planned(self, ts: float) -> bool: ...

    def production_day(self, ts: float) -> date: ...


class AlwaysPlanned:
    """A line without a shift calendar: every second is planned; days are dates in ``tz``."""

    def __init__(self, tz: tzinfo = UTC) -> None:
        self.tz = tz

    def planned(self, start: float, end: float) -> list[Span]:
        return [(start, end)] if end > start else []

    def is_planned(self, ts: float) -> bool:
        return True

    def production_day(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.tz).date()

    def day_end(self, day: date) -> float | None:
        """The end of ``day`` (the next midnight in ``tz``): a date-only due time (order imports)."""
        nxt = day + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.tz).timestamp()


class ShiftCalendar:
    """A compiled ShiftCalendarConfig answering planned-time questions in Unix seconds."""

    def __init__(self, config: ShiftCalendarConfig) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self._days_off = frozenset(config.days_off)
        # per weekday: (shift span, working pieces) in minutes from that day's midnight
        self._week: list[list[tuple[tuple[int, int], list[tuple[int, int]]]]] = [[] for _ in range(7)]
        for shift in config.shifts:
            lo, hi = shift.span()
            pieces, cursor = [], lo
            for b_lo, b_hi in shift.break_spans():
                if b_lo > cursor:
                    pieces.append((cursor, b_lo))
                cursor = b_hi
            if hi > cursor:
                pieces.append((cursor, hi))
            for day in shift.days:
                self._week[day.number].append(((lo, hi), pieces))
        for day_shifts in self._week:
            day_shifts.sort()
        self._pieces: dict[date, list[Span]] = {}  # memo of ``_pieces_on``

    def _shifts_on(self, day: date) -> list[tuple[tuple[int, int], list[tuple[int, int]]]]:
        if day in self._days_off:
            return []
        weekday = self.config.extra_workdays.get(day)
        return self._week[weekday.number if weekday is not None else day.weekday()]

    def _ts(self, day: date, minute: int) -> float:
        """Wall-clock ``minute`` after ``day``'s midnight in the line's timezone, as Unix time."""
        local = datetime(day.year, day.month, day.day, tzinfo=self.tz) + timedelta(minutes=minute)
        return local.timestamp()

    def _pieces_on(self, day: date) -> list[Span]:
        """The working pieces of the shifts starting on ``day``, in Unix seconds, in ``planned``'s order.

        Memoised (the calendar never changes): the projection asks for the same weeks every few
        seconds, and each piece costs two time-zone conversions. Bounded: cleared when it holds
        ``_MEMO_DAYS`` days (years of dates; a long-running central walks forward day by day).
        """
        found = self._pieces.get(day)
        if found is None:
            if len(self._pieces) >= _MEMO_DAYS:
                self._pieces.clear()
            found = self._pieces[day] = [(self._ts(day, lo), self._ts(day, hi))
                                         for _span, pieces in self._shifts_on(day) for lo, hi in pieces]
        return found

    def _days(self, start: float, end: float) -> list[date]:
        """Start dates of every shift that can overlap ``[start, end]`` (shifts last at most a day)."""
        first = datetime.fromtimestamp(start, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.tz).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def planned(self, start: float, end: float) -> list[Span]:
        """Planned (in-shift, outside breaks) spans inside ``[start, end)``, sorted and merged."""
        if end <= start:
            return []
        spans: list[Span] = []
        for day in self._days(start, end):
            for lo, hi in self._pieces_on(day):
                s, e = max(lo, start), min(hi, end)
                if e > s:
                    spans.append((s, e))
        spans.sort()
        merged: list[Span] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    def is_planned(self, ts: float) -> bool:
        return any(s <= ts < e for s, e in self.planned(ts - 1.0, ts + 1.0))

    def production_day(self, ts: float) -> date:
        """The start date of the shift (breaks included) around ``ts``, else ``ts``'s local date.

        A night shift's parts made after midnight count for the day the shift started.
        """
        for day in self._days(ts, ts):
            for (lo, hi), _pieces in self._shifts_on(day):
                if self._ts(day, lo) <= ts < self._ts(day, hi):
                    return day
        return datetime.fromtimestamp(ts, self.tz).date()

    def day_end(self, day: date) -> float | None:
        """The end of ``day``'s last shift (a night shift ends the next morning); None on a day off or
        a day without shifts. A date-only due time means this (order imports, issue 13)."""
        ends = [self._ts(day, hi) for (_lo, hi), _pieces in self._shifts_on(day)]
        return max(ends) if ends else None
