"""Capped exponential backoff with jitter for retrying an unreachable PLC (pure: randomness passed in).

After ``n`` failed attempts the wait is ``min(cap, base * 2**n)`` scaled by a random factor in
[0.5, 1): doubling keeps a dead PLC from costing a busy line anything, the cap bounds how late
a recovered PLC is noticed, and the jitter keeps many gateways (or many machines behind one
gateway) from retrying in lock step after a shared network outage.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, base: float, cap: float, rng: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap (got base={base}, cap={cap})")
        self.base = base
        self.cap = cap
        self._rng = rng
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt; each call counts one more failed attempt."""
        delay = min(self.cap, self.base * (1 << min(self.attempts, 32)))
        self.attempts += 1
        return delay * (0.5 + 0.5 * self._rng())

    def reset(self) -> None:
        self.attempts = 0
