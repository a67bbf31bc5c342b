"""From raw PLC readings to canonical events: pure logic, time passed in (docs/edge.md, "Counting").

A ``MachineTracker`` per machine turns each successful read (or failed read) into zero or more
events: a ``state`` event whenever the canonical state, the fault code or the job changes, and
``count`` events carrying part deltas, at most one per ``count_interval`` and always just
before a state change, so the event rate stays bounded however fast the machine runs.

The counting rules (each one tested with hand-made sequences):

* A counter that rises by a plausible amount is counted. Plausible means at most
  ``elapsed / min_cycle_time + 1`` parts since the previous read.
* A counter that drops is a **rollover** when the wrapped delta ``2**bits - last + raw`` is
  plausible; otherwise it is a **reset** (counters restart at 0 after a power cycle) and ``raw``
  is counted from 0. When the PLC has a power-on counter and it rose by one to three since the
  last read, it is a reset at once, whatever the counter shows now (a machine can make more
  parts after a power-up than before it); any other change of the power-on counter is taken
  for a bad read of it. Without that certainty a reset is confirmed by the next read (a single odd value is
  a glitch, which real PLCs and gateways produce), then counted from 0 and marked
  ``reset``; it is also marked ``possibly_lost`` unless the previous read was less than one
  ``min_cycle_time`` before, because parts made between that read and the power loss were
  never seen.
* A counter that rises implausibly is held as suspect: if the next read continues from the old
  value it was a glitch (ignored); otherwise the counter was preset and is re-based there
  (``rebased``, the jump is not counted).
* While a PLC is unreachable nothing is counted; the first read after it comes back counts
  what was made meanwhile, with the whole outage as the plausibility window.

Times come from the caller and are made monotonic per machine (an NTP step backwards must
not produce negative intervals): an event is never stamped earlier than the previous one.
Elapsed times for plausibility come from a monotonic clock the caller passes as well, so a
clock step changes no count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from protocol.models import CountEvent, MachineState, StateEvent

Raw = int | float | str | bool
Event = StateEvent | CountEvent


@dataclass(frozen=True)
class Reading:
    """One successful read of a machine's tags, decoded but not yet interpreted."""

    state: Raw | None
    fault_code: int | None = None
    good: int | None = None
    scrap: int | None = None
    job: str | None = None
    power_on: int | None = None


@dataclass(frozen=True)
class TrackerConfig:
    machine_id: str
    state_map: Mapping[Raw, MachineState]
    min_cycle_time: float
    unknown_state: MachineState = MachineState.IDLE
    good_bits: int = 32
    scrap_bits: int = 32
    count_interval: float = 20.0
    offline_after: int = 3


class MachineMemory(BaseModel):
    """What a tracker needs to continue exactly after a restart; persisted with every event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    machine_id: str
    state: MachineState | None = None
    fault_code: int | None = None
    job: str | None = None
    good_raw: int | None = None
    scrap_raw: int | None = None
    power_on: int | None = None
    counted_until: float | None = None  # edge time of the read the raw counters were taken at
    last_ts: float = 0.0  # latest time stamped on an event: the clock never goes below it


@dataclass
class _Counter:
    """One part counter: last raw value, what was counted since the last event, a suspect value."""

    bits: int
    last: int | None = None
    last_ts: float = -math.inf  # when ``last`` was read (-inf: before a restart, unknown)
    last_mono: float | None = None  # the same on the monotonic clock (None: since a restart)
    pending: int = 0
    suspect: int | None = None
    suspect_ts: float = 0.0
    suspect_mono: float | None = None

    @property
    def modulus(self) -> int:
        return 1 << self.bits


@dataclass
class _Flags:
    reset: bool = False
    possibly_lost: bool = False
    rebased: bool = False

    def any(self) -> bool:
        return self.reset or self.possibly_lost or self.rebased


@dataclass
class TrackerOutput:
    events: list[Event] = field(default_factory=list)
    memory: MachineMemory | None = None  # the state to persist with the events (None: no events)


class MachineTracker:
    """Turns one machine's readings into canonical events; one instance per machine."""

    def __init__(self, cfg: TrackerConfig, memory: MachineMemory | None = None) -> None:
        self.cfg = cfg
        mem = memory or MachineMemory(machine_id=cfg.machine_id)
        self.state: MachineState | None = mem.state
        self.fault_code = mem.fault_code
        self.job = mem.job
        self.power_on = mem.power_on
        since = mem.counted_until if mem.counted_until is not None else -math.inf
        self._good = _Counter(cfg.good_bits, mem.good_raw, since)
        self._scrap = _Counter(cfg.scrap_bits, mem.scrap_raw, since)
        self._flags = _Flags()
        self._clock = mem.last_ts
        self._count_start = mem.counted_until  # start of the interval the pending parts belong to
        self._last_read_ts = mem.counted_until
        self._last_count_emit = -math.inf
        self._failures = 0
        self._unknown_raw: set[Raw] = set()
        self._last_reading: Reading | None = None

    # ----------------------------------------------------------------- inputs
    def on_reading(self, reading: Reading, now: float, mono: float | None = None) -> TrackerOutput:
        """``now``: wall-clock time (stamps events); ``mono``: a monotonic clock for elapsed times.

        Plausibility needs the time that really passed between two reads: a wall clock stepped by
        NTP (or an RTC reset at boot) would make parts look impossible or a glitch plausible.
        """
        now = self._tick(now)
        self._failures = 0
        if (
            (reading is self._last_reading or reading == self._last_reading)
            and self.state is not MachineState.OFFLINE and not self._has_pending()
            and self._good.suspect is None and self._scrap.suspect is None
        ):
            # Nothing changed since the last read (most polls): nothing to count or tell. The
            # quiet interval moves on; the counters' plausibility window keeps counting from
            # their last change, which only ever allows what that longer time allows.
            self._last_read_ts = self._count_start = now
            return TrackerOutput()
        self._last_reading = reading
        out = TrackerOutput()
        power_cycled = False
        if reading.power_on is not None and self.power_on is not None:
            # one to three power-ons since the last read; any other change is a bad read of that
            # register, not a reason to count the whole counter again
            power_cycled = 1 <= (reading.power_on - self.power_on) % POWER_ON_MODULUS <= MAX_POWER_CYCLES
        if reading.good is not None:
            self._count(self._good, reading.good, now, mono, power_cycled)
        if reading.scrap is not None:
            self._count(self._scrap, reading.scrap, now, mono, power_cycled)
        if reading.power_on is not None:
            self.power_on = reading.power_on
        self._last_read_ts = now
        if self._count_start is None:
            self._count_start = now

        state = self._canonical(reading.state)
        fault = reading.fault_code if state == MachineState.FAULT else None
        changed = (state, fault, reading.job) != (self.state, self.fault_code, self.job)
        if changed:
            self._emit_count(out, now)
            self.state, self.fault_code, self.job = state, fault, reading.job
            out.events.append(
                StateEvent(
                    machine_id=self.cfg.machine_id, ts=now, state=state, fault_code=fault, job=reading.job,
                    raw=reading.state,
                )
            )
        elif self._has_pending() and now - self._last_count_emit >= self.cfg.count_interval:
            self._emit_count(out, now)
        elif not self._has_pending() and self._good.suspect is None and self._scrap.suspect is None:
            self._count_start = now  # nothing made since the last read: the next parts start here
        return self._finish(out, now)

    def on_failure(self, now: float, reason: str) -> TrackerOutput:
        """A failed read (timeout, refused, exception, Bad status): offline after ``offline_after``."""
        self._failures += 1
        if self._failures >= self.cfg.offline_after:
            return self.mark_offline(now, reason)
        return TrackerOutput()

    def mark_offline(self, now: float, reason: str) -> TrackerOutput:
        """Communication is lost now (e.g. an OPC UA session died): emit ``offline`` once."""
        if self.state == MachineState.OFFLINE:
            return TrackerOutput()
        now = self._tick(now)
        out = TrackerOutput()
        self._emit_count(out, self._last_read_ts if self._last_read_ts is not None else now)
        self.state, self.fault_code = MachineState.OFFLINE, None
        out.events.append(
            StateEvent(machine_id=self.cfg.machine_id, ts=now, state=MachineState.OFFLINE, job=self.job, reason=reason)
        )
        return self._finish(out, now)

    def flush(self, now: float) -> TrackerOutput:
        """Emit the parts counted so far (at shutdown, so nothing waits for the next interval)."""
        now = self._tick(now)
        out = TrackerOutput()
        self._emit_count(out, self._last_read_ts if self._last_read_ts is not None else now)
        return self._finish(out, now)

    @property
    def failures(self) -> int:
        return self._failures

    def unknown_raw_states(self) -> set[Raw]:
        """Raw state values that the state map does not know (the caller logs each once)."""
        return self._unknown_raw

    # ----------------------------------------------------------------- internals
    def _tick(self, now: float) -> float:
        self._clock = max(self._clock, now)
        return self._clock

    def _canonical(self, raw: Raw | None) -> MachineState:
        if raw is None:
            return self.cfg.unknown_state
        state = self.cfg.state_map.get(raw)
        if state is None and isinstance(raw, float) and raw.is_integer():
            state = self.cfg.state_map.get(int(raw))
        if state is None:
            self._unknown_raw.add(raw)
            return self.cfg.unknown_state
        return state

    def _plausible(self, delta: int, elapsed: float) -> bool:
        if math.isinf(elapsed):
            return True
        return delta <= math.floor(elapsed / self.cfg.min_cycle_time) + 1

    def _count(self, c: _Counter, raw: int, now: float, mono: float | None, power_cycled: bool) -> None:
        elapsed = _elapsed(now, mono, c.last_ts, c.last_mono)  # since the last value we accepted
        if c.last is None:  # first read ever: the counter's history before us is not ours to count
            c.last, c.last_ts, c.last_mono = raw, now, mono
            return
        if c.suspect is not None:
            self._resolve_suspect(c, raw, elapsed, now, mono)
            return
        if power_cycled:  # the PLC restarted its counters: count from 0, whatever the value now
            self._reset(c, raw, elapsed)
            c.last_ts, c.last_mono = now, mono
            return
        delta = raw - c.last if raw >= c.last else c.modulus - c.last + raw  # rise, or rollover
        if self._plausible(delta, elapsed):
            c.pending += delta
            c.last, c.last_ts, c.last_mono = raw, now, mono
        else:
            c.suspect, c.suspect_ts, c.suspect_mono = raw, now, mono

    def _resolve_suspect(self, c: _Counter, raw: int, elapsed: float, now: float, mono: float | None) -> None:
        """The read after a suspect value decides: glitch, reset, or a preset counter."""
        assert c.suspect is not None and c.last is not None
        suspect, since_suspect = c.suspect, _elapsed(now, mono, c.suspect_ts, c.suspect_mono)
        c.suspect = None
        if raw >= c.last and self._plausible(raw - c.last, elapsed):
            c.pending += raw - c.last  # the suspect was a glitch: continue from the old value
        elif suspect < c.last and raw >= suspect and self._plausible(raw - suspect, since_suspect):
            # dropped and kept counting from there: a reset confirmed by two reads
            self._reset(c, suspect, elapsed - since_suspect)
            c.pending += raw - suspect
        else:
            self._flags.rebased = True  # a preset, or a counter we cannot follow: start again here
        c.last, c.last_ts, c.last_mono = raw, now, mono

    def _reset(self, c: _Counter, raw: int, elapsed_before: float) -> None:
        """Counters restarted at 0 and now show ``raw``: count it."""
        c.pending += raw
        c.last = raw
        self._flags.reset = True
        if not (elapsed_before < self.cfg.min_cycle_time):
            self._flags.possibly_lost = True

    def _has_pending(self) -> bool:
        return self._good.pending > 0 or self._scrap.pending > 0 or self._flags.any()

    def _emit_count(self, out: TrackerOutput, ts: float) -> None:
        if not self._has_pending():
            return
        start = self._count_start if self._count_start is not None else ts
        out.events.append(
            CountEvent(
                machine_id=self.cfg.machine_id, start=min(start, ts), ts=ts,
                good=self._good.pending, scrap=self._scrap.pending, job=self.job,
                reset=self._flags.reset, possibly_lost=self._flags.possibly_lost, rebased=self._flags.rebased,
            )
        )
        self._good.pending = self._scrap.pending = 0
        self._flags = _Flags()
        self._count_start = ts
        self._last_count_emit = ts

    def _finish(self, out: TrackerOutput, now: float) -> TrackerOutput:
        if out.events:
            out.memory = self.memory(now)
        return out

    def memory(self, now: float | None = None) -> MachineMemory:
        """What to persist with the events just emitted.

        The raw counters are stored minus what is still pending, so that a restarted tracker
        counts the pending parts again from the PLC instead of losing them.
        """
        pending = self._has_pending()
        return MachineMemory(
            machine_id=self.cfg.machine_id,
            state=self.state,
            fault_code=self.fault_code,
            job=self.job,
            good_raw=_base(self._good),
            scrap_raw=_base(self._scrap),
            power_on=self.power_on,
            counted_until=self._count_start if pending else self._last_read_ts,
            last_ts=self._clock if now is None else max(self._clock, now),
        )


def _base(c: _Counter) -> int | None:
    return None if c.last is None else (c.last - c.pending) % c.modulus


POWER_ON_MODULUS = 1 << 16
MAX_POWER_CYCLES = 3  # power-ons between two reads that still count as power cycles


def _elapsed(now: float, mono: float | None, last_ts: float, last_mono: float | None) -> float:
    """Seconds between two reads: monotonic when both have it, else wall clock (after a restart).

    A wall-clock difference that is not positive (the clock stepped back across the restart)
    says nothing: infinite, i.e. any delta is plausible for that one read.
    """
    if mono is not None and last_mono is not None:
        return mono - last_mono
    wall = now - last_ts
    return wall if wall > 0 else math.inf
