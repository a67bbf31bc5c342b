"""Rewrite a window of time series from central's store (the record) into InfluxDB.

Used by ``central backfill`` after an InfluxDB outage longer than the retry buffer, a wiped bucket,
or a schema change. The records go straight to InfluxDB batch by batch (not through the live
writer's bounded buffer, which would drop a week of history), each batch awaited and retried a
few times; the first batch that cannot be written stops the backfill with InfluxWriteError
saying how far it got, so the command can be run again.

Idempotent: a record always becomes the same point (measurement, tag set, millisecond timestamp,
see ``points``), and InfluxDB keeps one point per measurement, tag set and timestamp, replacing
the fields of an earlier write. Running a backfill twice, or over a window the live writer already
wrote, changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

from central.influx.errors import InfluxWriteError
from central.influx.points import CountPoint, OeePoint, SeriesPoint, StatePoint
from central.influx.writer import InfluxWriter

R = TypeVar("R", bound=SeriesPoint)


async def backfill(
    writer: InfluxWriter,
    states: Iterable[StatePoint] | AsyncIterable[StatePoint],
    counts: Iterable[CountPoint] | AsyncIterable[CountPoint],
    oee: Iterable[OeePoint] | AsyncIterable[OeePoint] = (),
    *,
    attempts: int = 5,
) -> int:
    """Write every state, then every count, then every OEE record; returns the number of points written.

    The iterables may be plain or async (e.g. rows streamed from the store), and are consumed
    one batch (``batch_size`` of the writer's config) at a time, so a long window never sits in
    memory. The writer need not be started; ``await writer.stop()`` afterwards closes its client.
    """
    size = writer.config.batch_size
    written = 0
    sources: tuple[Iterable[SeriesPoint] | AsyncIterable[SeriesPoint], ...] = (states, counts, oee)
    for source in sources:
        batch: list[SeriesPoint] = []
        async for record in _aiter(source):
            batch.append(record)
            if len(batch) >= size:
                written += await _write(writer, batch, attempts, written)
                batch = []
        if batch:
            written += await _write(writer, batch, attempts, written)
    return written


async def _write(writer: InfluxWriter, batch: list[SeriesPoint], attempts: int, written: int) -> int:
    try:
        await writer.write_now(batch, attempts=attempts)
    except InfluxWriteError as exc:
        first = min(record.ts for record in batch)
        raise InfluxWriteError(
            f"backfill stopped after {written} points, at a batch from edge time {first:.3f}: {exc}",
            written=written,
        ) from exc
    return len(batch)


async def _aiter(source: Iterable[R] | AsyncIterable[R]) -> AsyncIterator[R]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item
