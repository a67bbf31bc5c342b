"""The asynchronous InfluxDB writer: best effort, never in the ingest's way (docs/influx.md).

Central's store is the record; InfluxDB holds a copy for Grafana. So the ingest hands every
applied state change and count to ``state()``/``count()``, which only append to a bounded buffer
(no I/O, no await, no exception) and return. One background task sends batches with
influxdb-client's synchronous write API in a worker thread (the event loop never waits on the
network), keeps the points while InfluxDB is down or refuses the token, retries with capped
exponential backoff and jitter, and counts every point it has to drop. Each kind of outage is
logged once when it starts and once when it ends, never once per retry.

Call ``state()``/``count()`` from the event loop's thread (the ingest's); ``stats()`` at any time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient as _LibClient
from influxdb_client.client.write_api import SYNCHRONOUS

from central.influx.buffer import PointBuffer
from central.influx.config import InfluxConfig
from central.influx.errors import FailureKind, InfluxWriteError, WriteFailure, classify
from central.influx.points import PRECISION, CountPoint, SeriesPoint, StatePoint, line_protocol
from central.influx.retry import retry_delay

log = logging.getLogger("central.influx")

# influxdb-client annotates only part of its API (its token is typed str though None is accepted,
# close() is untyped): the client is used through this one Any-typed name.
InfluxDBClient: Any = _LibClient


@dataclass(frozen=True)
class WriterStats:
    """What the writer did so far (for /metrics and /healthz)."""

    written: int  # points InfluxDB accepted
    queued: int  # points waiting (or being written) now
    dropped: int  # points given up: buffer full (oldest first), rejected by the server, left at stop
    rejected: int  # of those dropped, refused by the server as invalid (400/413/422)
    failures: int  # failed write requests (each retry counts)
    last_error: str | None
    last_success_at: float | None  # clock() of the last accepted write
    unauthorized: bool  # the server currently refuses the token (401/403)


class InfluxWriter:
    """Batches points to one InfluxDB bucket from a bounded retry buffer (see the module docstring)."""

    def __init__(
        self, cfg: InfluxConfig, *, clock: Callable[[], float] = time.time,
        rnd: Callable[[], float] = random.random,
    ) -> None:
        self._cfg = cfg
        self._clock = clock
        self._rnd = rnd
        self._buffer: PointBuffer[SeriesPoint] = PointBuffer(cfg.retry_buffer)
        self._wake = asyncio.Event()  # a full batch is waiting
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._token: str | None = None
        self._token_loaded = False
        self._client_lock = threading.Lock()
        self._client: Any = None
        self._write_api: Any = None
        self._written = 0
        self._failures = 0
        self._rejected = 0
        self._late = 0  # points handed in after stop()
        self._last_error: str | None = None
        self._last_success_at: float | None = None
        self._episode: FailureKind | None = None  # the outage in progress, logged once
        self._episode_failures = 0
        self._overflowing = False

    @property
    def config(self) -> InfluxConfig:
        return self._cfg

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Check the token setting (ConfigError if missing) and start the background flusher."""
        if self._task is not None or self._stopped:
            raise RuntimeError("InfluxWriter.start(): already started or stopped (make a new writer)")
        self._load_token()
        self._task = asyncio.create_task(self._run(), name="influx-writer")
        self._task.add_done_callback(_log_crash)

    async def stop(self, *, grace: float | None = None) -> None:
        """Flush what InfluxDB takes within ``grace`` seconds (default: the config's request timeout),
        count whatever is left as dropped, and close the client. Never raises for InfluxDB's sake."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_requested.set()
        self._wake.set()
        budget = self._cfg.timeout if grace is None else grace
        task = self._task
        try:
            async with asyncio.timeout(budget):
                if task is not None:
                    await asyncio.wait({task})
                while self._buffer.waiting and (task is not None or self._token_loaded):
                    failure = await self._flush_batch()
                    if failure is not None and failure.kind is not FailureKind.REJECTED:
                        break
        except TimeoutError:
            log.warning("InfluxDB writer: stop took longer than %.1f s; giving up on the rest", budget)
        finally:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})
            left = self._buffer.discard_all()
            if left:
                log.warning(
                    "InfluxDB writer stopped with %d points not written (counted as dropped); "
                    "`central backfill` can rewrite them from the store", left,
                )
            self._close_client()

    # ------------------------------------------------------------------ enqueue (ingest side)
    def state(
        self, *, machine_id: str, line: str | None, site: str | None, ts: float, state: str,
        fault_code: int | None, job: str | None,
    ) -> None:
        """Queue a state point; returns at once and never raises for InfluxDB's sake."""
        self.add(StatePoint(machine_id, line, site, ts, state, fault_code, job))

    def count(
        self, *, machine_id: str, line: str | None, site: str | None, start: float, ts: float,
        good: int, scrap: int, job: str | None,
    ) -> None:
        """Queue a count point; returns at once and never raises for InfluxDB's sake."""
        self.add(CountPoint(machine_id, line, site, start, ts, good, scrap, job))

    def add(self, record: SeriesPoint) -> None:
        """Queue a point; returns at once and never raises for InfluxDB's sake."""
        if self._stopped:
            self._late += 1
            return
        if self._buffer.add(record) and not self._overflowing:
            self._overflowing = True
            log.warning(
                "InfluxDB retry buffer full (%d points): dropping the oldest points until writes succeed "
                "(last error: %s)", self._buffer.capacity, self._last_error,
            )
        if self._buffer.waiting >= self._cfg.batch_size:
            self._wake.set()

    def stats(self) -> WriterStats:
        return WriterStats(
            written=self._written,
            queued=len(self._buffer),
            dropped=self._buffer.dropped + self._late,
            rejected=self._rejected,
            failures=self._failures,
            last_error=self._last_error,
            last_success_at=self._last_success_at,
            unauthorized=self._episode is FailureKind.UNAUTHORIZED,
        )

    # ------------------------------------------------------------------ direct writes (backfill)
    async def write_now(self, records: Sequence[SeriesPoint], *, attempts: int = 5) -> None:
        """Write ``records`` at once, outside the retry buffer, retrying up to ``attempts`` times.

        For the backfill, whose caller wants to know: raises InfluxWriteError when the server rejects
        the batch or every attempt fails (ConfigError when the token setting cannot be read).
        """
        self._load_token()
        for attempt in range(1, max(1, attempts) + 1):
            try:
                await asyncio.to_thread(self._write_blocking, records)
            except Exception as exc:  # any client failure: classified, counted, re-raised below
                failure = classify(exc)
                self._note_failure(failure, len(records))
                if failure.kind is FailureKind.REJECTED or attempt >= attempts:
                    raise InfluxWriteError(
                        f"InfluxDB at {self._cfg.url} did not take {len(records)} points after "
                        f"{attempt} attempt(s): {failure.text}", written=0,
                    ) from exc
                await asyncio.sleep(self._delay(attempt, failure))
            else:
                self._note_success(len(records))
                return

    # ------------------------------------------------------------------ background flusher
    async def _run(self) -> None:
        failures = 0
        while not self._stop_requested.is_set():
            if failures == 0 and self._buffer.waiting < self._cfg.batch_size:
                await _wait(self._wake, self._cfg.flush_interval)
                self._wake.clear()
                if self._stop_requested.is_set():
                    return
            if not self._buffer.waiting:
                continue
            failure = await self._flush_batch()
            if failure is None or failure.kind is FailureKind.REJECTED:
                failures = 0
                continue
            failures += 1
            await _wait(self._stop_requested, self._delay(failures, failure))

    async def _flush_batch(self) -> WriteFailure | None:
        """Write the oldest batch; on failure put it back (or drop it when rejected). None = written."""
        batch = self._buffer.take(self._cfg.batch_size)
        try:
            await asyncio.to_thread(self._write_blocking, batch)
        except asyncio.CancelledError:
            self._buffer.give_back()
            raise
        except Exception as exc:  # noqa: BLE001 - best effort: whatever the client raises is counted and retried
            failure = classify(exc)
            self._note_failure(failure, len(batch))
            if failure.kind is FailureKind.REJECTED:
                self._rejected += self._buffer.reject()
            else:
                self._buffer.give_back()
            return failure
        self._buffer.done()
        self._note_success(len(batch))
        return None

    def _delay(self, failures: int, failure: WriteFailure) -> float:
        return retry_delay(
            failures, initial=self._cfg.retry_initial_delay, cap=self._cfg.retry_max_delay,
            retry_after=failure.retry_after, rnd=self._rnd,
        )

    # ------------------------------------------------------------------ bookkeeping and logs
    def _note_failure(self, failure: WriteFailure, points: int) -> None:
        self._failures += 1
        self._last_error = failure.text
        if failure.kind is FailureKind.REJECTED:
            log.error("InfluxDB rejected %d points as invalid (%s): dropped and counted", points, failure.text)
            return
        self._episode_failures += 1
        if self._episode is failure.kind:
            return
        self._episode = failure.kind
        if failure.kind is FailureKind.UNAUTHORIZED:
            source = (f"environment variable {self._cfg.token_env}" if self._cfg.token_env
                      else f"file {self._cfg.token_file}" if self._cfg.token_file else "no token configured")
            log.error(
                "InfluxDB at %s refuses the token (%s): check influx.token_env/token_file (now: %s) and that "
                "the token may write to bucket %r of org %r; points are kept and retried",
                self._cfg.url, failure.text, source, self._cfg.bucket, self._cfg.org,
            )
        else:
            log.warning(
                "InfluxDB at %s cannot take writes (%s); keeping up to %d points and retrying",
                self._cfg.url, failure.text, self._cfg.retry_buffer,
            )

    def _note_success(self, points: int) -> None:
        self._written += points
        self._last_success_at = self._clock()
        if self._episode is not None:
            log.info(
                "InfluxDB at %s takes writes again after %d failed attempts (%d points waiting, %d dropped so far)",
                self._cfg.url, self._episode_failures, len(self._buffer), self._buffer.dropped,
            )
            self._episode = None
            self._episode_failures = 0
        self._overflowing = False

    # ------------------------------------------------------------------ client (worker threads)
    def _load_token(self) -> None:
        if not self._token_loaded:
            self._token = self._cfg.token()
            self._token_loaded = True

    def _write_blocking(self, records: Sequence[SeriesPoint]) -> None:
        lines = line_protocol(records)
        with self._client_lock:
            if self._write_api is None:
                self._client = InfluxDBClient(
                    url=self._cfg.url, token=self._token, org=self._cfg.org, timeout=round(self._cfg.timeout * 1000)
                )
                self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
            api = self._write_api
        api.write(bucket=self._cfg.bucket, org=self._cfg.org, record=lines, write_precision=PRECISION)

    def _close_client(self) -> None:
        with self._client_lock:
            client, self._client, self._write_api = self._client, None, None
        if client is not None:
            client.close()


def _log_crash(task: asyncio.Task[None]) -> None:
    """A bug in the flusher must be visible at once, not only when central stops."""
    if not task.cancelled() and task.exception() is not None:
        log.error("InfluxDB writer task failed; no more points are written until restart",
                  exc_info=task.exception())


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` pass, whichever comes first."""
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
