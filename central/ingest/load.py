"""How busy ingest is: the share of time spent in rounds, over about the last couple of seconds.

Background work (the projector's passes over thousands of operations) runs in the same process and,
on a small machine, takes CPU and the GIL from ingest. It should hold back exactly when ingest runs
flat out (a backlog drains after an outage) and not otherwise: the queue being empty after a round
says little (a two-second round takes everything that arrived during it), the share of wall time
spent in rounds says it directly. Pure: the caller measures and passes the seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RoundLoad:
    window: float = 2.0  # seconds over which the share is averaged (exponentially)
    threshold: float = 0.7  # a share above this is "flat out"
    share: float = 0.0

    def add(self, busy: float, idle: float) -> None:
        """One wait for messages (``idle`` seconds) and the round that followed (``busy`` seconds)."""
        span = busy + idle
        if span <= 0:
            return
        weight = min(1.0, span / self.window)  # a long span says more than a short one
        self.share += weight * (busy / span - self.share)

    @property
    def flat_out(self) -> bool:
        return self.share > self.threshold
