"""How long to wait before the next InfluxDB write after a failure: the shared backoff, and a server's
Retry-After hint honoured (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable

from plantpulse.backoff import backoff_delay


def retry_delay(
    failures: int, *, initial: float, cap: float, retry_after: float | None = None,
    rnd: Callable[[], float] = random.random,
) -> float:
    """``backoff_delay``, but never shorter than a server's Retry-After hint (still at most ``cap``)."""
    delay = backoff_delay(failures, initial=initial, cap=cap, rnd=rnd)
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, cap)
    return delay


def parse_retry_after(value: object) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is rare for write APIs and ignored)."""
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
