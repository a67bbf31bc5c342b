"""The time-series schema (docs/influx.md): records from central become InfluxDB points. Pure.

Two measurements with one point per applied event, and one per machine and closed hour:

* ``machine_state`` at the edge time of a state change: fields ``state`` (the name),
  ``state_code`` (a fixed number per state) and ``fault_code`` (0 = none).
* ``machine_count`` at the edge time that ends a count interval: fields ``good``, ``scrap``,
  ``interval_s`` and ``rate_per_hour`` (parts of both kinds per hour over the interval).
* ``machine_oee`` at the start of a closed window (an hour): ``availability``, ``performance``,
  ``quality`` and ``oee`` (ratios, left out when unknown) and the seconds and parts they come from
  (``planned_s``, ``run_s``, ``net_run_s``, ``fully_productive_s``, ``good``, ``scrap``), so a dashboard
  can add windows up time-weighted (OEE of a day = sum of fully productive / sum of planned).
  The figures are ``central.progress.oee``'s, the same as ``GET /api/v1/oee`` answers.

Tags: ``machine`` always, ``site``, ``line`` and ``job`` when known (``job`` not on OEE points, which
cover every job of the window); ``period`` on OEE points (``1h``).

Why numeric twins of strings: Grafana's state timeline and any aggregation need numbers, and
VictoriaMetrics (a common InfluxDB stand-in) stores string fields as 0. Why millisecond
precision: edge times are float seconds; milliseconds are exact enough for a PLC poll and
``round(ts * 1000)`` always gives the same integer for the same float, so a backfill from the
store lands on exactly the timestamp the live write used. InfluxDB keeps one point per
measurement, tag set and timestamp, so writing the same record twice overwrites, never adds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from influxdb_client.client.write.point import Point as _LibPoint
from influxdb_client.domain.write_precision import WritePrecision

from central.progress.oee import Oee
from plantpulse.protocol.models import MachineState

# influxdb-client annotates only part of its API (mypy strict calls Point's methods untyped):
# the library's Point is used through this one Any-typed name.
Point: Any = _LibPoint

STATE_MEASUREMENT = "machine_state"
COUNT_MEASUREMENT = "machine_count"
OEE_MEASUREMENT = "machine_oee"
OEE_PERIOD = 3600.0  # seconds: OEE is written per closed hour
OEE_PERIOD_TAG = "1h"
OEE_RATIOS = ("availability", "performance", "quality", "oee")
PRECISION = WritePrecision.MS

STATE_CODES: Mapping[str, int] = MappingProxyType({
    MachineState.OFFLINE.value: 0,
    MachineState.RUNNING.value: 1,
    MachineState.IDLE.value: 2,
    MachineState.SETUP.value: 3,
    MachineState.FAULT.value: 4,
    MachineState.MAINTENANCE.value: 5,
})
UNKNOWN_STATE_CODE = -1  # a state name this version does not know: still written, never dropped
NO_FAULT_CODE = 0  # written when the event has no fault code, so a rewrite replaces an older code


@dataclass(frozen=True, slots=True)
class StatePoint:
    """A machine's state at edge time ``ts`` (seconds since the epoch)."""

    machine_id: str
    line: str | None
    site: str | None
    ts: float
    state: str
    fault_code: int | None
    job: str | None


@dataclass(frozen=True, slots=True)
class CountPoint:
    """Parts made between edge times ``start`` and ``ts`` (seconds since the epoch)."""

    machine_id: str
    line: str | None
    site: str | None
    start: float
    ts: float
    good: int
    scrap: int
    job: str | None


@dataclass(frozen=True, slots=True)
class OeePoint:
    """One machine's OEE over ``[ts, end)`` (seconds since the epoch): ``central.progress.oee.Oee``'s figures."""

    machine_id: str
    line: str | None
    site: str | None
    ts: float  # the window's start: the point's timestamp
    end: float
    planned: float
    run_time: float
    net_run_time: float
    fully_productive: float
    good: int
    scrap: int
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None

    @classmethod
    def of(cls, figures: Oee, machine_id: str, line: str | None, site: str | None) -> OeePoint:
        """The point of one machine's figures (``central.orders.oee_window.machine_figures(...).oee``)."""
        return cls(machine_id, line, site, figures.start, figures.end, figures.planned, figures.run_time,
                   figures.ideal_time, figures.fully_productive, figures.good, figures.scrap,
                   figures.availability, figures.performance, figures.quality, figures.oee)


SeriesPoint = StatePoint | CountPoint | OeePoint


def to_ms(ts: float) -> int:
    """Edge seconds as the integer milliseconds written to InfluxDB (deterministic for a given float)."""
    return round(ts * 1000)


def state_code(state: str) -> int:
    """The number that stands for ``state`` in ``state_code`` (-1 for a name this version does not know)."""
    return STATE_CODES.get(state, UNKNOWN_STATE_CODE)


def _tagged(point: Any, machine_id: str, site: str | None, line: str | None, job: str | None) -> Any:
    # An empty tag value is invalid line protocol: leave the tag out instead.
    point.tag("machine", machine_id)
    for key, value in (("site", site), ("line", line), ("job", job)):
        if value:
            point.tag(key, value)
    return point


def state_point(record: StatePoint) -> Any:
    """The ``machine_state`` point of ``record`` (an influxdb_client Point)."""
    point = _tagged(Point(STATE_MEASUREMENT), record.machine_id, record.site, record.line, record.job)
    point.field("state", record.state)
    point.field("state_code", state_code(record.state))
    point.field("fault_code", NO_FAULT_CODE if record.fault_code is None else int(record.fault_code))
    return point.time(to_ms(record.ts), PRECISION)


def count_point(record: CountPoint) -> Any:
    """The ``machine_count`` point of ``record`` (an influxdb_client Point)."""
    point = _tagged(Point(COUNT_MEASUREMENT), record.machine_id, record.site, record.line, record.job)
    interval = record.ts - record.start
    point.field("good", int(record.good))
    point.field("scrap", int(record.scrap))
    point.field("interval_s", float(interval))
    if interval > 0:  # a zero-length interval (parts seen on the first read) has no rate
        point.field("rate_per_hour", (record.good + record.scrap) * 3600.0 / interval)
    return point.time(to_ms(record.ts), PRECISION)


def oee_point(record: OeePoint) -> Any:
    """The ``machine_oee`` point of ``record``: every field but an unknown ratio (None) is always written,
    so rewriting a window replaces each value."""
    point = _tagged(Point(OEE_MEASUREMENT), record.machine_id, record.site, record.line, None)
    point.tag("period", OEE_PERIOD_TAG)
    for name in OEE_RATIOS:
        value = getattr(record, name)
        if value is not None:
            point.field(name, float(value))
    point.field("planned_s", float(record.planned))
    point.field("run_s", float(record.run_time))
    point.field("net_run_s", float(record.net_run_time))
    point.field("fully_productive_s", float(record.fully_productive))
    point.field("good", int(record.good))
    point.field("scrap", int(record.scrap))
    return point.time(to_ms(record.ts), PRECISION)


def to_point(record: SeriesPoint) -> Any:
    if isinstance(record, StatePoint):
        return state_point(record)
    if isinstance(record, CountPoint):
        return count_point(record)
    return oee_point(record)


def line_protocol(records: Iterable[SeriesPoint]) -> list[str]:
    """The InfluxDB line protocol of ``records``, one line each, in order (the write body)."""
    return [str(to_point(record).to_line_protocol()) for record in records]
