"""The collection runtime: one task per PLC connection, one tracker per machine, events to the sink.

``Collection`` starts a collector per connection (edge/collectors/registry.py) and receives
their readings and failures. For each machine it feeds the pure ``MachineTracker`` and awaits
``sink.emit(events, memory)`` under that machine's lock, so one machine's events reach the sink
in order and never concurrently, while other machines go on. A slow sink slows only the
connection whose machine is emitting: polls of one machine never overlap anyway.

A tick task emits pending counts when a tracker says they are due (``due_at``), so parts go out
at most ``count_interval`` after they were seen whatever the PLC does next: an OPC UA
subscription sends nothing while values stay the same, and a quiet poll emits nothing. It takes
the machine's lock like a reading, so the events and the memory committed with them stay in order.

Trackers start from ``sink.load_memory()``: a restarted gateway continues with the raw counters
it last persisted and counts exactly what the PLC made meanwhile. On cancellation the readers
stop first, then every tracker is flushed, so no counted part waits for the next interval.

An emit that has started is finished even if the task is cancelled meanwhile: the tracker has
already moved past those events, and losing them would lose parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.buffer.errors import OutboxFullError
from edge.collectors.base import Collector, raise_if_cancelled
from edge.collectors.registry import build_collectors
from edge.config import EdgeConfig, ModbusMachine, OpcuaMachine
from edge.readings import Raw, Reading
from edge.sink import EventSink
from edge.tracker import MachineTracker, TrackerOutput
from plantpulse.backoff import Backoff
from plantpulse.protocol.models import MachineHealth, MachineSnapshot, MachineState, StateEvent

log = logging.getLogger(__name__)

LATENCY_WINDOW = 512  # reads the p50/p99 poll latency is taken over
TICK_MAX_SLEEP = 1.0  # the tick task looks at the trackers at least this often (seconds)


class SinkError(RuntimeError):
    """The sink failed to store events: the gateway cannot go on counting without losing them."""


@dataclass
class _Machine:
    cfg: ModbusMachine | OpcuaMachine
    tracker: MachineTracker | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    reads: int = 0
    read_errors: int = 0
    reachable: bool = False
    last: Reading | None = None
    last_ts: float | None = None
    away_since: float | None = None
    unknown_logged: set[Raw] = field(default_factory=set)


class Collection:
    """Reads every configured machine until cancelled; see the module docstring."""

    def __init__(
        self, cfg: EdgeConfig, sink: EventSink, clock: Callable[[], float] = time.time,
        *, stopped_since: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.clock = clock
        self.stopped_since = stopped_since  # when a previous run of this gateway was last alive
        self._machines = {m.id: _Machine(m) for m in cfg.machines}
        self._stats: dict[str, int] = {}
        self._collectors: list[Collector] = []
        self._tick_wake = asyncio.Event()
        self._tick_next = math.inf  # when the tick task wakes next (edge time)
        self.ticked_at = time.monotonic()  # the tick task's last turn: the gateway's watchdog reads it

    # ----------------------------------------------------------------- running
    async def run(self) -> None:
        memory = await self.sink.load_memory()
        for machine_id, m in self._machines.items():
            m.tracker = MachineTracker(self.cfg.tracker_config(m.cfg), memory.get(machine_id))
        await self._mark_unobserved()
        self._collectors = build_collectors(self.cfg)
        try:
            async with asyncio.TaskGroup() as group:
                for collector in self._collectors:
                    group.create_task(self._supervise(collector), name=f"collect {collector.name}")
                group.create_task(self._ticks(), name="count ticks")
        except asyncio.CancelledError:
            await self._flush_all()
            raise
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None  # a SinkError: the only error a supervisor lets through

    async def _mark_unobserved(self) -> None:
        """Nobody watched the machines while the gateway was stopped: say so in their history.

        Without this, a machine's last state before a gateway crash or reboot would stretch over
        the whole outage. Each machine goes offline (reason "gateway stopped") from the moment
        the previous run was last alive; its first read then reports its real state.
        """
        if self.stopped_since is None:
            return
        for m in self._machines.values():
            tracker = m.tracker
            if tracker is None or tracker.state in (None, MachineState.OFFLINE):
                continue
            async with m.lock:
                await self._emit(tracker.mark_offline(self.stopped_since, "gateway stopped"))

    async def _supervise(self, collector: Collector) -> None:
        """Run one collector; a bug in it costs its machines a pause, never the whole gateway."""
        backoff = Backoff(1.0, 60.0)
        while True:
            raise_if_cancelled()
            try:
                await collector.run(self)
            except SinkError:
                raise
            except Exception:
                delay = backoff.next()
                log.exception("collector %s failed; restarting it in %.1f s", collector.name, delay)
            else:
                delay = backoff.next()
                log.error("collector %s stopped on its own; restarting it in %.1f s", collector.name, delay)
            for machine_id in collector.machine_ids:
                await self.lost(machine_id, "collector error")
            await asyncio.sleep(delay)

    async def _ticks(self) -> None:
        """Emit every tracker's pending counts when due (``MachineTracker.due_at``), readings or not."""
        while True:
            self.ticked_at = time.monotonic()
            self._tick_next = math.inf  # while scanning, any reading with pending parts wakes the next round
            self._tick_wake.clear()
            now = self.clock()
            wake = now + TICK_MAX_SLEEP
            for m in self._machines.values():
                due = m.tracker.due_at() if m.tracker is not None else None
                if due is None:
                    continue
                if due > now:
                    wake = min(wake, due)
                    continue
                async with m.lock:
                    assert m.tracker is not None
                    await self._emit(m.tracker.tick(self.clock(), time.monotonic()))
            self._tick_next = wake
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can lose a shutdown's cancellation
                async with asyncio.timeout(max(0.0, wake - self.clock())):
                    await self._tick_wake.wait()

    async def _flush_all(self) -> None:
        now = self.clock()
        for m in self._machines.values():
            if m.tracker is None:
                continue
            async with m.lock:
                await self._emit(m.tracker.flush(now))

    # ----------------------------------------------------------------- Report (called by collectors)
    async def reading(self, machine_id: str, reading: Reading, latency: float | None = None) -> None:
        m = self._machines[machine_id]
        # when the answer came and when it was asked for, taken now: a reading queued behind an emit
        # is looked at later, and stamping it then made the next read's parts look too many for the
        # time between them (taken for a preset and lost; found in full CI runs)
        arrived = time.monotonic()
        sent = arrived - latency if latency is not None and latency >= 0 else arrived
        if m.lock.locked():  # an emit of this machine is under way: queue up behind it
            async with m.lock:
                await self._emit(self._on_reading(m, reading, latency, arrived, sent))
            return
        # The common case, on the hot path of every poll: nothing to wait for. The tracker runs
        # without yielding, and the lock, free, is taken without yielding only if there is
        # something to emit; so a later reading of this machine still emits after this one.
        out = self._on_reading(m, reading, latency, arrived, sent)
        if out.events:
            async with m.lock:
                await self._emit(out)

    def _on_reading(self, m: _Machine, reading: Reading, latency: float | None, arrived: float,
                    sent: float) -> TrackerOutput:
        assert m.tracker is not None
        now = self.clock()
        if m.away_since is not None or m.tracker.state == MachineState.OFFLINE:
            away = f" after {now - m.away_since:.1f} s" if m.away_since is not None else ""
            log.info("machine %s answers again%s", m.cfg.id, away)
            m.away_since = None
        m.reads += 1
        m.reachable = True
        m.last, m.last_ts = reading, now
        if latency is not None:
            m.latencies.append(latency)
        out = m.tracker.on_reading(reading, now, arrived, sent)
        due = m.tracker.due_at()
        if due is not None and due < self._tick_next:
            self._tick_wake.set()  # parts due before the tick task would look again
        if len(m.tracker.unknown_raw_states()) != len(m.unknown_logged):
            self._log_unknown_states(m)
        return out

    async def failure(self, machine_id: str, reason: str, latency: float | None = None) -> None:
        m = self._machines[machine_id]
        async with m.lock:
            assert m.tracker is not None
            m.read_errors += 1
            m.reachable = False
            out = m.tracker.on_failure(self.clock(), reason)
            self._note_offline(m, out, reason)
            await self._emit(out)

    async def lost(self, machine_id: str, reason: str) -> None:
        m = self._machines[machine_id]
        async with m.lock:
            if m.tracker is None:
                return
            m.reachable = False
            out = m.tracker.mark_offline(self.clock(), reason)
            self._note_offline(m, out, reason)
            await self._emit(out)

    def count(self, name: str, n: int = 1) -> None:
        self._stats[name] = self._stats.get(name, 0) + n

    # ----------------------------------------------------------------- views
    def health(self) -> list[MachineHealth]:
        """Per machine: reachable, state, poll latency p50/p99 (ms) over the last reads, counters."""
        out: list[MachineHealth] = []
        for machine_id, m in self._machines.items():
            lat = sorted(m.latencies)
            out.append(
                MachineHealth(
                    machine_id=machine_id,
                    reachable=m.reachable,
                    state=m.tracker.state if m.tracker is not None else None,
                    poll_p50_ms=_percentile(lat, 0.50),
                    poll_p99_ms=_percentile(lat, 0.99),
                    read_errors=m.read_errors,
                    reads=m.reads,
                )
            )
        return out

    def snapshot(self) -> list[MachineSnapshot]:
        """The current raw values of every machine (absolute counters: for checks, never for counting)."""
        now = self.clock()
        out: list[MachineSnapshot] = []
        for machine_id, m in self._machines.items():
            r = m.last
            out.append(
                MachineSnapshot(
                    machine_id=machine_id,
                    ts=m.last_ts if m.last_ts is not None else now,
                    reachable=m.reachable,
                    state=m.tracker.state if m.tracker is not None else None,
                    fault_code=m.tracker.fault_code if m.tracker is not None else None,
                    job=r.job if r else None,
                    good_raw=r.good if r else None,
                    scrap_raw=r.scrap if r else None,
                    power_on=r.power_on if r else None,
                )
            )
        return out

    def stats(self) -> dict[str, int]:
        """Collector statistics: notifications, queue overflows, late polls, subscription mismatches..."""
        return dict(self._stats)

    # ----------------------------------------------------------------- internals
    async def _emit(self, out: TrackerOutput) -> None:
        """Store the events; while the disk is full, retry (this machine waits, nothing is lost).

        The tracker has already moved past these events, so they must be stored, not dropped:
        the machine's polls wait (its PLC keeps counting, and the first read after the wait
        counts what was made meanwhile) and the health says why.
        """
        if not out.events:
            return
        assert out.memory is not None
        backoff = Backoff(1.0, 30.0)
        while True:
            task = asyncio.ensure_future(self.sink.emit(out.events, out.memory))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                await _finish(task)
                raise
            except OutboxFullError as exc:
                self.count("sink_full_waits")
                if not self._stats.get("sink_full_now"):
                    self._stats["sink_full_now"] = 1
                    log.error("the outbox is full and has nothing left to drop (%s): collection waits", exc)  # noqa: TRY400 - an expected condition, no traceback
                await asyncio.sleep(backoff.next())
            except Exception as exc:
                raise SinkError(f"the event sink failed to store events: {exc}") from exc
            else:
                if self._stats.get("sink_full_now"):
                    self._stats["sink_full_now"] = 0
                    log.warning("the outbox takes events again")
                return

    def _note_offline(self, m: _Machine, out: TrackerOutput, reason: str) -> None:
        if any(isinstance(e, StateEvent) and e.state == MachineState.OFFLINE for e in out.events):
            m.away_since = self.clock()
            log.warning(
                "machine %s is unreachable (%s); retrying with backoff up to %.0f s", m.cfg.id, reason,
                m.cfg.retry_max,
            )

    def _log_unknown_states(self, m: _Machine) -> None:
        assert m.tracker is not None
        for raw in m.tracker.unknown_raw_states() - m.unknown_logged:
            m.unknown_logged.add(raw)
            log.warning(
                "machine %s: raw state %r is not in state_map; reported as %s (add it to state_map)",
                m.cfg.id, raw, m.cfg.unknown_state.value,
            )


async def _finish(task: asyncio.Future[None]) -> None:
    """Wait for a started emit even while being cancelled; its events are already out of the tracker."""
    try:
        await task
    except Exception as exc:
        raise SinkError(f"the event sink failed to store events: {exc}") from exc


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile in milliseconds, None without data."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return round(sorted_values[index] * 1000.0, 3)
