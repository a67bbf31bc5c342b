"""Which shifts ended in a span of time, per line (pure): when a shift summary is due.

Each line with a shift calendar gets a summary at the end of each of its shifts (its shifts
resolved with its days off and extra working days, like ``ShiftCalendar``); when no line has a
calendar, the whole plant gets one per day, at midnight in the plant's time zone. The id of a
window (``<line or plant>/<shift>/<start>``) is stable, so the task can tell from the store
whether it was sent, and a restart never sends one twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from central.progress.machines import MachinesConfig
from central.progress.shifts import ShiftCalendarConfig
from central.progress.summary import ShiftWindow

MAX_LOOKBACK = 7 * 86_400.0  # a central down longer than a week sends the last week's summaries only


@dataclass(frozen=True, slots=True)
class Due:
    id: str
    window: ShiftWindow


def _shifts(cfg: ShiftCalendarConfig, day: date) -> list[tuple[str, float, float]]:
    """(name, start, end) of the shifts starting on ``day`` (wall-clock in the calendar's zone)."""
    if day in cfg.days_off:
        return []
    weekday = cfg.extra_workdays.get(day)
    number = weekday.number if weekday is not None else day.weekday()
    tz = ZoneInfo(cfg.timezone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    out = []
    for shift in cfg.shifts:
        if number not in [d.number for d in shift.days]:
            continue
        lo, hi = shift.span()
        out.append((shift.name, (midnight + timedelta(minutes=lo)).timestamp(),
                    (midnight + timedelta(minutes=hi)).timestamp()))
    return out


def ended(config: MachinesConfig, since: float, now: float) -> list[Due]:
    """Shift windows ending in ``(since, now]`` (at most ``MAX_LOOKBACK`` back), by end time."""
    since = max(since, now - MAX_LOOKBACK)
    if now <= since:
        return []
    out: list[Due] = []
    calendars = [(li.id, li.shifts) for li in config.lines if li.shifts is not None]
    if not calendars:
        tz = ZoneInfo(config.timezone)
        day = datetime.fromtimestamp(since, tz).date()
        last = datetime.fromtimestamp(now, tz).date()
        while day <= last:
            start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
            nxt = day + timedelta(days=1)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
            if since < end <= now:
                out.append(Due(f"plant/day/{int(start)}", ShiftWindow(day.isoformat(), start, end, None)))
            day = nxt
        return out
    for line, cal in calendars:
        tz = ZoneInfo(cal.timezone)
        day = datetime.fromtimestamp(since, tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(now, tz).date()
        while day <= last:
            for name, start, end in _shifts(cal, day):
                if since < end <= now:
                    out.append(Due(f"{line}/{name}/{int(start)}", ShiftWindow(name, start, end, line)))
            day += timedelta(days=1)
    return sorted(out, key=lambda d: (d.window.end, d.id))




def current(config: MachinesConfig, now: float) -> list[ShiftWindow]:
    """The shift windows running at ``now`` (per line with a calendar; else the plant's day)."""
    calendars = [(li.id, li.shifts) for li in config.lines if li.shifts is not None]
    if not calendars:
        tz = ZoneInfo(config.timezone)
        day = datetime.fromtimestamp(now, tz).date()
        nxt = day + timedelta(days=1)
        return [ShiftWindow(day.isoformat(), datetime(day.year, day.month, day.day, tzinfo=tz).timestamp(),
                            datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp(), None)]
    out = []
    for line, cal in calendars:
        tz = ZoneInfo(cal.timezone)
        today = datetime.fromtimestamp(now, tz).date()
        for day in (today - timedelta(days=1), today):
            for name, start, end in _shifts(cal, day):
                if start <= now < end:
                    out.append(ShiftWindow(name, start, end, line))
    return out
