"""What the end-to-end benchmarks share: the machine they ran on, processes that are always stopped,
deadline waits, percentiles, peak memory and Prometheus scrapes.

The processes themselves (a private mosquitto, the simulated plant, ``python -m edge run`` and
``python -m central run``) are the test suite's fixtures in ``tests/fixtures/``: a benchmark
starts exactly what the tests start. ``Stack`` stops every one of them by its own pid when the
benchmark ends, also when it fails.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from tests.fixtures.procs import free_port
from tests.fixtures.services import STATE_MAP

T = TypeVar("T")


def machine() -> str:
    """``2 CPUs (AMD EPYC ...), Python 3.11.7, SQLite 3.40.1, load average 0.6``: what every table starts with.

    The load average tells how busy the shared machine was (other engineers' test runs).
    """
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
            f" load average {load:.2f} at start")


class Stoppable(Protocol):
    def stop(self) -> object: ...


S = TypeVar("S", bound=Stoppable)


class Stack(contextlib.ExitStack):
    """An ``ExitStack`` that stops what it is given in reverse order, each by its own pid."""

    def started(self, thing: S) -> S:
        self.callback(thing.stop)
        return thing


class FatalError(RuntimeError):
    """Raised by a ``wait_for`` probe when waiting longer cannot help (a process died)."""


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so that a killed benchmark still stops what it started."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def wait_for(probe: Callable[[], T], timeout: float, *, what: str, interval: float = 0.02) -> T:
    """Call ``probe`` until it returns something truthy; ``TimeoutError`` naming ``what`` after ``timeout``.

    Exceptions from the probe count as "not yet" (a server still starting), and the last one is
    shown on timeout; ``FatalError`` ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except FatalError:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s (last: {last!r})")
        time.sleep(interval)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (p in 0..100): a value that was really measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory (VmHWM) of a process, default this one, in MB; NaN if it is gone."""
    path = Path(f"/proc/{pid or 'self'}/status")
    try:
        for line in path.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return math.nan


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url: str, timeout: float = 5.0) -> dict[str, float]:
    """A Prometheus text page as ``{name: value}`` (labels dropped: the benchmarks read one series each)."""
    out: dict[str, float] = {}
    for line in httpx.get(url, timeout=timeout).text.splitlines():
        if match := _SAMPLE.match(line):
            out[match.group(1)] = float(match.group(3))
    return out


def row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One table line: the first cell left-aligned, the others right-aligned."""
    first, *rest = cells
    return f"{first:<{widths[0]}}" + "".join(f" {c:>{w}}" for c, w in zip(rest, widths[1:], strict=True))


def unreachable_machine() -> dict[str, Any]:
    """An ``edge run`` config entry for a Modbus machine on a closed port.

    ``python -m edge run`` needs at least one machine; when a benchmark feeds the gateway's
    outbox itself, this one only adds an offline state event and a reconnect attempt now and then.
    """
    return {"id": "probe", "protocol": "modbus", "host": "127.0.0.1", "port": free_port(), "unit_id": 1,
            "poll_interval": 5.0, "timeout": 0.5, "min_cycle_time": 1.0, "state_map": STATE_MAP,
            "tags": {"state": {"address": 0}, "good_count": {"address": 2}}}
