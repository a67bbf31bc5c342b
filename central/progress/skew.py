"""A gateway's clock offset from its health messages, the way NTP does it: the least-delayed samples win.

Each health message gives a sample ``ts - received_at`` = skew - delay, and the delay (network,
scheduling, and any time the message waited in the broker) is never negative: every sample is a
lower bound of the skew, and the best estimate is the *largest* recent sample. Taking a median, as
before, let messages that waited in the broker drag the estimate down: after central was away for a
while, its queue of health messages faked a skew of about -10 s and moved the outage's events by as
much (issue 11, defect D).

Messages that waited are also left out altogether. A message is judged when the gateway's next one
arrives: if the two arrived closer together on central's clock than they were sent on the gateway's (by
more than ``tolerance``, or half their spacing if less), the first one waited for the second (a backlog
is delivered in a burst) and its sample is dropped. Live samples enter a window of the last ``window``,
whose maximum is the estimate. Until a first sample is judged (a new gateway, or one whose estimate was
never judged before a central restart) there is no estimate: a lone sample may have waited, and standing
in for the skew it once moved a backlog's events by the time they waited (a fault 8 s old placed as new,
found in a loaded test run); edge times are then used as they are (and clamped if in the future).

Residual: the estimate trails a backward step of the gateway's clock by ``window`` health intervals
(the older, larger samples must leave the window), and follows a forward step after two intervals.
Pure; O(window) per sample.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class SkewEstimator:
    window: int = 5
    tolerance: float = 1.0  # seconds of jitter allowed in the arrival spacing of two live messages
    estimate: float | None = None  # the current estimate (restored from the store at start)
    _accepted: deque[float] = field(default_factory=deque)
    _pending: tuple[float, float] | None = None  # (edge ts, received_at) of the last, not yet judged

    def sample(self, ts: float, received_at: float) -> float | None:
        """A health message (its edge time, central's receipt time); returns the estimate now (None: none yet)."""
        if self._pending is not None:
            previous_ts, previous_at = self._pending
            edge_gap, central_gap = ts - previous_ts, received_at - previous_at
            jitter = min(self.tolerance, edge_gap / 2)  # never as much as the spacing itself
            if edge_gap > 0 and central_gap >= edge_gap - jitter:  # the previous one did not wait
                self._accepted.append(previous_ts - previous_at)
                while len(self._accepted) > self.window:
                    self._accepted.popleft()
                self.estimate = max(self._accepted)
        self._pending = (ts, received_at)
        return self.estimate
