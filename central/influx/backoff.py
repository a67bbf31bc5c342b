"""How long to wait before the next write after a failure: capped exponential backoff with jitter.

Pure (the random source is passed in). The jitter spreads retries of several central instances
(or of the live writer and a backfill) so a recovering InfluxDB is not hit by all of them at once;
"equal jitter" keeps half of the delay fixed so a retry never comes back immediately.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_EXPONENT = 60  # 2**60 x any sensible initial delay is far past any cap; avoids float overflow


def backoff_delay(
    failures: int, *, initial: float, cap: float, rnd: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1 = the first): in [d/2, d],
    where d = min(cap, initial x 2^(failures-1))."""
    if failures < 1:
        return 0.0
    ceiling = min(cap, initial * 2.0 ** min(failures - 1, _MAX_EXPONENT))
    return ceiling / 2 + ceiling / 2 * rnd()


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
