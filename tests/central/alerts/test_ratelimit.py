"""The send window and the priorities of notifications, with hand-computed cases (no I/O, no clock)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from central.alerts.alert import AlertStatus, TransitionKind
from central.alerts.conditions import Rule, Severity, Texts
from central.alerts.notifications import Notification
from central.alerts.ratelimit import SendWindow, priority


def test_a_full_burst_then_nothing_until_the_first_send_leaves_the_window() -> None:
    w = SendWindow(3, window=60)
    assert w.room(0) == 3 and w.free_at(0) == 0
    for at in (0, 1, 2):
        w.record(at)
    assert w.room(2) == 0
    assert w.free_at(2) == 60  # the send at 0 leaves the window at 60
    assert w.room(59.999) == 0
    assert w.room(60) == 1 and w.free_at(60) == 60
    w.record(60)
    assert w.room(60.5) == 0 and w.free_at(60.5) == 61  # then the send at 1 leaves at 61
    assert w.room(62) == 2  # at 62 only the send at 60 is still counted


def test_after_a_quiet_spell_the_whole_limit_is_there_again() -> None:
    w = SendWindow(2, window=10)
    w.record(0)
    w.record(0)
    assert w.room(9) == 0
    assert w.room(10) == 2


def test_never_more_than_the_limit_in_any_window_under_a_storm() -> None:
    """A sender that sends whenever there is room, checked against every window of 60 s: at most 20
    (a token bucket of 20 refilled at 20/min would let ~40 through in the first minute)."""
    w = SendWindow(20)
    rng = random.Random(7)
    now, sent = 0.0, []
    while now < 600:
        while w.room(now):
            w.record(now)
            sent.append(now)
        now = max(w.free_at(now), now + rng.uniform(0, 2))
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= 20
    assert len(sent) == 20 * 10  # and the full limit is used: 20 per minute over 10 minutes


def test_records_beyond_the_room_are_counted_too() -> None:
    w = SendWindow(2, window=10)
    for at in (0, 1, 2):  # a third send recorded anyway (e.g. the limit was lowered by a restart)
        w.record(at)
    assert w.room(5) == 0
    assert w.free_at(5) == 11  # two must leave: the sends at 0 (at 10) and 1 (at 11)
    assert w.room(11) == 1


def test_a_clock_stepping_back_is_taken_as_it_is() -> None:
    w = SendWindow(2, window=10)
    w.record(100)
    w.record(95)
    assert w.room(100) == 0 and w.free_at(100) == 105
    assert w.room(105) == 1


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (-1, 60.0), (5, 0.0)])
def test_nonsense_limits_are_refused(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SendWindow(limit, window=window)


def note(rule: Rule, severity: Severity, kind: TransitionKind = TransitionKind.OPENED) -> Notification:
    return Notification(id="a.0-opened", alert_id="a", kind=kind, at=0.0, rule=rule, subject="m1", severity=severity,
                        status=AlertStatus.OPEN, level=0, message=Texts(zh="x", en="x"), details={}, since=None,
                        opened_at=0.0)


def test_priorities_critical_failures_first_then_by_severity_then_orders_then_summaries() -> None:
    ordered = [
        note(Rule.FAULT, Severity.CRITICAL),
        note(Rule.GATEWAY_OFFLINE, Severity.CRITICAL, TransitionKind.RESOLVED),
        note(Rule.LONG_STOP, Severity.WARNING, TransitionKind.ESCALATED),
        note(Rule.LONG_STOP, Severity.WARNING, TransitionKind.ACKNOWLEDGED),
        note(Rule.DATA_GAP, Severity.INFO),
        note(Rule.CLOCK_SKEW, Severity.INFO, TransitionKind.RESOLVED),
        note(Rule.ORDER_OVERDUE, Severity.CRITICAL),
        note(Rule.ORDER_AT_RISK, Severity.WARNING, TransitionKind.RESOLVED),
        note(Rule.MATERIAL_SHORTAGE, Severity.INFO),
        note(Rule.SHIFT_SUMMARY, Severity.INFO),
    ]
    assert [priority(n) for n in ordered] == [10, 11, 12, 13, 14, 15, 30, 31, 32, 40]


def test_news_and_follow_ups_of_one_alert_keep_their_order() -> None:
    opened = note(Rule.FAULT, Severity.WARNING)
    assert priority(opened) == priority(replace(opened, kind=TransitionKind.ESCALATED, level=1))
    assert priority(opened) < priority(replace(opened, kind=TransitionKind.RESOLVED))
