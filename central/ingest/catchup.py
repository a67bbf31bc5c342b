"""Progress of a gateway's backlog while central catches up (issue 14: long work shows progress).

After a broker or central outage a gateway may hold hours of events; central applies them as fast
as it can, and whoever watches the log wants to know how far it got and how long it will take, not
only "it's busy". The gateway announces its latest seq in its health and births; central knows the
applied prefix of the current epoch. A gateway more than ``threshold`` events behind is catching up:
one line when that starts, one every ``every`` seconds with the rate and the time left, one when it is
caught up. Pure: the caller passes the numbers and the time, and logs what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Episode:
    started: float
    applied_at_start: int
    reported: float
    applied: int
    rate_at: float
    rate_applied: int


@dataclass
class CatchUpLog:
    threshold: int = 1000  # events behind before a backlog is worth a line
    every: float = 10.0  # seconds between progress lines
    _episodes: dict[str, _Episode] = field(default_factory=dict)

    def observe(self, edge_id: str, applied: int | None, latest: int | None, now: float) -> str | None:
        """The gateway's applied prefix and announced latest seq now; returns a line to log, or None."""
        if applied is None or latest is None:
            return None
        behind = max(0, latest - applied)
        ep = self._episodes.get(edge_id)
        if ep is None:
            if behind <= self.threshold:
                return None
            self._episodes[edge_id] = _Episode(now, applied, now, applied, now, applied)
            return f"gateway {edge_id} catching up: {behind:,} events behind (applied {applied:,} of {latest:,})"
        if behind == 0:
            del self._episodes[edge_id]
            took = max(now - ep.started, 1e-9)
            done = applied - ep.applied_at_start
            return f"gateway {edge_id} caught up: {done:,} events in {took:.0f} s ({done / took:,.0f} events/s)"
        ep.applied = applied
        if now - ep.reported < self.every:
            return None
        span = now - ep.rate_at
        rate = (applied - ep.rate_applied) / span if span > 0 else 0.0
        ep.reported = ep.rate_at = now
        ep.rate_applied = applied
        left = f"about {behind / rate:,.0f} s left" if rate > 0 else "no progress in the last interval"
        return (f"gateway {edge_id} catching up: {behind:,} events behind (applied {applied:,} of {latest:,}), "
                f"{rate:,.0f} events/s, {left}")

    def forget(self, edge_id: str) -> None:
        """A gateway gone (or handed to another worker): no line about it any more."""
        self._episodes.pop(edge_id, None)
