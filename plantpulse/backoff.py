"""Capped exponential backoff with jitter: one rule for every retry in plantpulse (pure: randomness passed in).

Used for an unreachable PLC (edge collectors), a failing InfluxDB write and a failing webhook.
After ``n`` consecutive failures the wait is in ``[d/2, d]`` with ``d = min(cap, initial x 2^(n-1))``:
doubling keeps a dead peer from costing anything, the cap bounds how late a recovery is noticed,
and the jitter ("equal jitter": half of the delay fixed, so a retry never comes back at once)
keeps many gateways, machines or central instances from retrying in lock step after a shared
outage.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_EXPONENT = 60  # 2**60 x any sensible initial delay is far past any cap; avoids float overflow


def backoff_delay(failures: int, *, initial: float, cap: float, rnd: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1 = the first); 0 for none."""
    if failures < 1:
        return 0.0
    ceiling = min(cap, initial * 2.0 ** min(failures - 1, _MAX_EXPONENT))
    return ceiling / 2 + ceiling / 2 * rnd()


class Backoff:
    """The same rule with the failure count kept: ``next()`` after each failure, ``reset()`` on success."""

    def __init__(self, base: float, cap: float, rng: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap (got base={base}, cap={cap})")
        self.base = base
        self.cap = cap
        self._rng = rng
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt; each call counts one more failed attempt."""
        self.attempts += 1
        return backoff_delay(self.attempts, initial=self.base, cap=self.cap, rnd=self._rng)

    def reset(self) -> None:
        self.attempts = 0
