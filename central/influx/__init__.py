"""Time series to InfluxDB (optional): machine states and counts for Grafana (docs/influx.md).

The ingest calls ``InfluxWriter.state()``/``count()`` after each committed batch (best effort,
never blocking); ``central backfill`` rewrites a window from the store with ``backfill()``.
"""

from central.influx.backfill import backfill
from central.influx.config import InfluxConfig
from central.influx.errors import InfluxWriteError
from central.influx.points import (
    COUNT_MEASUREMENT,
    STATE_CODES,
    STATE_MEASUREMENT,
    CountPoint,
    SeriesPoint,
    StatePoint,
)
from central.influx.writer import InfluxWriter, WriterStats

__all__ = [
    "COUNT_MEASUREMENT",
    "STATE_CODES",
    "STATE_MEASUREMENT",
    "CountPoint",
    "InfluxConfig",
    "InfluxWriteError",
    "InfluxWriter",
    "SeriesPoint",
    "StatePoint",
    "WriterStats",
    "backfill",
]
