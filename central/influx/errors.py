"""Errors of the InfluxDB writer, and how a failed write is classified.

Exception tree (only the backfill raises; the live writer never raises into the ingest)::

    InfluxWriteError          a backfill batch could not be written (after its retries)

Every client or network failure is translated here into a ``WriteFailure``: what kind it is
(decides retry or drop), a one-line description for logs and stats, and the server's
Retry-After hint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from influxdb_client.client.exceptions import InfluxDBError

from central.influx.retry import parse_retry_after


class InfluxWriteError(Exception):
    """A backfill could not write a batch; ``written`` points were written before it."""

    def __init__(self, message: str, *, written: int) -> None:
        super().__init__(message)
        self.written = written


class FailureKind(enum.Enum):
    UNAUTHORIZED = "unauthorized"  # 401/403: wrong or expired token, or no write permission; retried
    REJECTED = "rejected"  # 400/413/422: the server will never take this batch; dropped and counted
    UNAVAILABLE = "unavailable"  # refused, timeout, 404, 429, 5xx...: retried with backoff


@dataclass(frozen=True)
class WriteFailure:
    kind: FailureKind
    text: str
    retry_after: float | None = None


_REJECTED_STATUSES = frozenset({400, 413, 422})


def classify(exc: BaseException) -> WriteFailure:
    """Translate whatever the client raised into a WriteFailure."""
    if isinstance(exc, InfluxDBError):
        status = getattr(exc, "status", None)
        if status is None and exc.response is not None:
            status = getattr(exc.response, "status", None)
        message = str(getattr(exc, "message", "") or "").strip().replace("\n", " ")[:200]
        retry_after = parse_retry_after(getattr(exc, "retry_after", None))
        if status in (401, 403):
            return WriteFailure(FailureKind.UNAUTHORIZED, f"HTTP {status}: {message or 'unauthorized'}", retry_after)
        if status in _REJECTED_STATUSES:
            return WriteFailure(FailureKind.REJECTED, f"HTTP {status}: {message}", retry_after)
        if status == 404:
            return WriteFailure(
                FailureKind.UNAVAILABLE,
                f"HTTP 404: {message} (is the bucket/org right, and does the server speak /api/v2/write?)",
                retry_after,
            )
        return WriteFailure(FailureKind.UNAVAILABLE, f"HTTP {status}: {message}", retry_after)
    # refused, reset, timed out (urllib3 or OS errors), or anything else the client raised
    return WriteFailure(FailureKind.UNAVAILABLE, f"{type(exc).__name__}: {exc}"[:300])
