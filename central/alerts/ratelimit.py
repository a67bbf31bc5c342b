"""How many notifications a receiver may take, and which go first when more are due than that (pure).

Chat robots refuse beyond a rate: WeCom, DingTalk and Feishu group robots take about 20 messages a
minute, and DingTalk then throttles the robot for 10 minutes, so in a storm (many machines failing,
many orders at risk, a shift summary on top) the sender must keep under the limit and choose what
goes out first.

``SendWindow`` keeps the send times of the last window: at most ``limit`` sends in any ``window``
seconds, which is how the robots count. It is deliberately not a token bucket refilled at
``limit``/minute: a bucket of 20 that sat full lets 20 out at once and then one every 3 s, about 40
within one minute, exactly what trips DingTalk's 10-minute throttle. A bucket small enough never to
do so (burst + refill per minute <= limit) wastes most of the limit. The window allows the full
burst after a quiet spell and never more than ``limit`` in any window.

``priority`` orders a receiver's due notifications (lower first): failure alerts by severity (news
before follow-ups of the same severity), then order alerts by severity, then shift summaries;
within a priority the store sends the oldest first. The stores keep it in a column so that
``due_deliveries`` asks for the first few by priority instead of fetching everything.
"""

from __future__ import annotations

import bisect

from central.alerts.alert import TransitionKind
from central.alerts.conditions import ORDER_RULES, Rule, Severity
from central.alerts.notifications import Notification

WINDOW = 60.0
FAILURE, ORDER, SUMMARY = 10, 30, 40  # the bands of ``priority``
LEGACY_PRIORITY = 20  # rows written before priorities were stored: after failure alerts, before order alerts
_FOLLOW_UPS = frozenset({TransitionKind.ACKNOWLEDGED, TransitionKind.RESOLVED})


def priority(n: Notification) -> int:
    """Lower goes first: critical failure alerts 10-11, warnings 12-13, infos 14-15 (news, then
    acknowledged/resolved), order alerts 30-32 by severity, shift summaries 40."""
    if n.rule is Rule.SHIFT_SUMMARY:
        return SUMMARY
    below_critical = Severity.CRITICAL.rank - n.severity.rank
    if n.rule in ORDER_RULES:
        return ORDER + below_critical
    return FAILURE + 2 * below_critical + (1 if n.kind in _FOLLOW_UPS else 0)


class SendWindow:
    """At most ``limit`` sends in any ``window`` seconds; times are passed in (no clock, no I/O).

    A send is recorded with ``record(at)``; ``room(now)`` says how many may go now and ``free_at(now)``
    when the next may. Record a send when it is known to have reached the receiver or failed (after
    the request), not when it started: the receiver counts at its arrival, which is earlier, so the
    next send can never be inside the receiver's window of the first.
    """

    def __init__(self, limit: int, window: float = WINDOW) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if window <= 0:
            raise ValueError(f"window must be positive, not {window}")
        self.limit = limit
        self.window = window
        self._sent: list[float] = []  # send times, oldest first

    def _forget(self, now: float) -> None:
        gone = bisect.bisect_right(self._sent, now - self.window)
        if gone:
            del self._sent[:gone]

    def room(self, now: float) -> int:
        """How many sends may go at ``now``."""
        self._forget(now)
        return max(0, self.limit - len(self._sent))

    def free_at(self, now: float) -> float:
        """When the next send may go: ``now`` if there is room, else when the oldest counted send leaves
        the window."""
        if self.room(now) > 0:
            return now
        return self._sent[len(self._sent) - self.limit] + self.window

    def record(self, at: float) -> None:
        """A send at ``at`` (a clock that stepped back is taken as it is: the window is counted from it)."""
        bisect.insort(self._sent, at)
