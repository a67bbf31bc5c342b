"""The ``Collector`` interface: what every protocol module offers, and how it reports back.

A collector owns one connection (a Modbus host:port with one or more unit ids, or one OPC UA
session with one or more machines) and runs as one task: it connects, reads or subscribes,
reconnects after failures, and tells the runtime (edge/pipeline.py) what it saw through a
``Report``. It never touches trackers or sinks itself, so the counting rules stay in one pure
place and a new protocol is one module plus one line in the registry.

Errors a collector expects (timeouts, refused connections, Bad status codes, Modbus exception
responses) are reported as failed reads, never raised; anything it raises is a bug, and the
runtime logs it, marks its machines offline and restarts it after a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edge.readings import Reading

Value = int | float | bool | str


class Report(Protocol):
    """How a collector hands its observations to the runtime (awaited: the runtime may be slow)."""

    async def reading(self, machine_id: str, reading: Reading, latency: float | None = None) -> None:
        """A successful read of the machine's tags; ``latency`` is the request's round trip in seconds."""
        ...

    async def failure(self, machine_id: str, reason: str, latency: float | None = None) -> None:
        """A failed read (timeout, refused, exception response, Bad status): offline after a few."""
        ...

    async def lost(self, machine_id: str, reason: str) -> None:
        """Communication is certainly gone (an OPC UA session died): offline at once."""
        ...

    def count(self, name: str, n: int = 1) -> None:
        """Add to a collection statistic (notifications, overflows, late polls...)."""
        ...


@dataclass(frozen=True)
class CheckRow:
    """One line of ``edge check``: a tag read once, or why it could not be read."""

    machine_id: str
    tag: str
    address: str
    raw: str = ""
    decoded: str = ""
    latency_ms: float | None = None
    error: str | None = None


class Collector(Protocol):
    name: str  # e.g. "modbus 192.168.1.20:502", used in logs and task names
    machine_ids: tuple[str, ...]

    async def run(self, report: Report) -> None:
        """Collect until cancelled; close the connection on the way out."""
        ...

    async def check(self) -> list[CheckRow]:
        """Connect, read every tag of every machine once, close: one row per tag."""
        ...


def reading_from_values(values: Mapping[str, Value | None]) -> Reading:
    """A tracker ``Reading`` from decoded tag values keyed by tag name (missing tags are None)."""
    return Reading(**{READING_FIELD[tag]: CONVERT[tag](value) for tag, value in values.items() if tag in CONVERT})


def _int(value: Value | None) -> int | None:
    return None if value is None else int(value)


def _job(value: Value | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _same(value: Value | None) -> Value | None:
    return value


# tag name -> the Reading field it fills, and how its decoded value is normalised for the tracker
READING_FIELD = {"state": "state", "fault_code": "fault_code", "good_count": "good", "scrap_count": "scrap",
                 "job": "job", "power_on_count": "power_on", "job_good_count": "job_good",
                 "job_scrap_count": "job_scrap"}
CONVERT: dict[str, Callable[[Value | None], Any]] = {
    "state": _same, "fault_code": _int, "good_count": _int, "scrap_count": _int, "job": _job, "power_on_count": _int,
    "job_good_count": _int, "job_scrap_count": _int,
}


def raise_if_cancelled() -> None:
    """Honour a cancellation that a library swallowed.

    Python 3.11's ``asyncio.wait_for`` (used inside pymodbus and asyncua) returns the result
    instead of raising ``CancelledError`` when the awaited answer arrives in the same loop
    iteration as the cancellation. A loop that then simply goes on would never stop, and the
    gateway's shutdown would hang; so every collector loop calls this once per round.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
