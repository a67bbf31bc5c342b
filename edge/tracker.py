"""From raw PLC readings to canonical events: pure logic, time passed in (docs/edge.md, "Counting rules").

A ``MachineTracker`` per machine turns each successful read (or failed read) into zero or more
events: a ``state`` event whenever the canonical state, the fault code or the job changes, and
``count`` events carrying part deltas, at most one per ``count_interval`` and always just
before a state change, so the event rate stays bounded however fast the machine runs.

The counter rules (rollover, reset, glitch, preset) live in ``edge/counters.py``; this module
adds what needs the whole machine:

* **Context**: a read's power-on counter says whether the PLC restarted; failed reads, an
  offline spell or a restart of the gateway since the last good read make the window
  *unobserved*, where a power cycle may hide.
* **Jobs**: parts seen before a job change belong to the old job. Parts of the read that sees the
  change may belong to either: with a per-job counter (``job_good``/``job_scrap``, reset by the PLC
  at each job change) they are split exactly; without one they go out in a count event marked
  ``job_from`` (the job before the change; ``job`` is the job after), never silently booked.
* **Time**: ``tick`` (called by the runtime when ``due_at`` says so) emits pending parts at most
  ``count_interval`` after they were seen, even when no reading follows: an OPC UA subscription
  sends nothing while values do not change. For such a machine (``quiet_after``), silence is
  information: a suspect value nothing has replaced for that long (longer than any change takes
  to arrive) was real, as a poll showing the same value again would prove.

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

from edge.counters import Context, Counter, Flags
from edge.jobs import continues_old, split_job_change
from edge.readings import Raw, Reading
from edge.wirefit import fit_reading, fit_text
from plantpulse.protocol.models import CountEvent, Event, MachineState, StateEvent


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
    # a live subscription: no reading for this many seconds means "unchanged", so a tick confirms a
    # suspect value (None: polled, only a read confirms)
    quiet_after: float | None = None


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
    job_from: str | None = None  # parts still to count may belong to this job, before a job change


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
        self._good = Counter(cfg.good_bits, cfg.min_cycle_time, mem.good_raw, since)
        self._scrap = Counter(cfg.scrap_bits, cfg.min_cycle_time, mem.scrap_raw, since)
        self._flags = Flags()
        self._job_from = mem.job_from  # pending parts may partly belong to this earlier job
        self._clock = mem.last_ts
        self._count_start = mem.counted_until  # start of the interval the pending parts belong to
        # while a counter value is held for a decision, where its undecided span began: counts sent
        # meanwhile (the other counter, a state change) do not move the next interval's start past it
        self._held_start: float | None = None
        self._last_read_ts = mem.counted_until
        self._last_count_emit = -math.inf  # when (edge time) counts were last emitted
        self._failures = 0
        # a restarted gateway did not watch the PLC meanwhile: the first read ends an unobserved window
        self._unobserved = mem.good_raw is not None or mem.scrap_raw is not None
        self._unknown_raw: set[Raw] = set()
        self._truncated = False  # the current reading's job or raw text was cut to the wire's 256 characters
        self._last_reading: Reading | None = None

    # ----------------------------------------------------------------- inputs
    def on_reading(self, reading: Reading, now: float, mono: float | None = None,
                   sent: float | None = None) -> TrackerOutput:
        """``now``: wall-clock time (stamps events); ``mono``: a monotonic clock for elapsed times, when
        the answer came; ``sent``: on the same clock, when the read was asked for (default ``mono``).

        Plausibility needs the time that really passed between two reads: a wall clock stepped by
        NTP (or an RTC reset at boot) would make parts look impossible or a glitch plausible.
        """
        now = self._tick(now)
        self._failures = 0
        if (
            (reading is self._last_reading or reading == self._last_reading)
            and self.state is not MachineState.OFFLINE and not self._unobserved and not self._has_pending()
            and self._good.suspect is None and self._scrap.suspect is None
        ):
            # Nothing changed since the last read (most polls): nothing to count or tell. The
            # quiet interval moves on; the counters' plausibility window keeps counting from
            # their last change, which only ever allows what that longer time allows.
            self._last_read_ts = self._count_start = now
            return TrackerOutput()
        previous = self._last_reading
        self._last_reading = reading
        reading, self._truncated = fit_reading(reading)  # within the wire's bounds, or flagged
        out = TrackerOutput()
        old_job = self.job
        job_changed = self.state is not None and reading.job != old_job
        if job_changed:  # what earlier reads saw was made under the old job: out with it first
            self._emit_count(out, self._last_read_ts if self._last_read_ts is not None else now, now)
        ctx = self._context(reading, now, mono)
        if reading.good is not None:
            self._good.observe(reading.good, now, mono, ctx, self._flags, sent)
        if reading.scrap is not None:
            self._scrap.observe(reading.scrap, now, mono, ctx, self._flags, sent)
        if reading.power_on is not None:
            self.power_on = reading.power_on
        watched = not self._unobserved
        self._unobserved = False
        self._last_read_ts = now
        if self._count_start is None:
            self._count_start = now
        self._note_held()
        if job_changed:
            self._book_job_change(out, reading, old_job, now, watched, previous)

        state = self._canonical(reading.state)
        fault = reading.fault_code if state == MachineState.FAULT else None
        changed = (state, fault, reading.job) != (self.state, self.fault_code, self.job)
        if changed:
            self._emit_count(out, now, now)
            self.state, self.fault_code, self.job = state, fault, reading.job
            out.events.append(
                StateEvent(
                    machine_id=self.cfg.machine_id, ts=now, state=state, fault_code=fault, job=reading.job,
                    raw=reading.state, truncated=self._truncated,
                )
            )
        elif self._has_pending() and now - self._last_count_emit >= self.cfg.count_interval:
            self._emit_count(out, now, now)
        elif not self._has_pending() and self._good.suspect is None and self._scrap.suspect is None:
            self._count_start = now  # nothing made since the last read: the next parts start here
        return self._finish(out, now)

    def on_failure(self, now: float, reason: str) -> TrackerOutput:
        """A failed read (timeout, refused, exception, Bad status): offline after ``offline_after``."""
        self._failures += 1
        self._unobserved = True
        if self._failures >= self.cfg.offline_after:
            return self.mark_offline(now, reason)
        return TrackerOutput()

    def mark_offline(self, now: float, reason: str) -> TrackerOutput:
        """Communication is lost now (e.g. an OPC UA session died): emit ``offline`` once."""
        self._unobserved = True
        if self.state == MachineState.OFFLINE:
            return TrackerOutput()
        now = self._tick(now)
        out = TrackerOutput()
        self._emit_count(out, self._last_read_ts if self._last_read_ts is not None else now, now)
        self.state, self.fault_code = MachineState.OFFLINE, None
        out.events.append(
            StateEvent(machine_id=self.cfg.machine_id, ts=now, state=MachineState.OFFLINE, job=self.job,
                       reason=fit_text(reason)[0])
        )
        return self._finish(out, now)

    def due_at(self) -> float | None:
        """When (edge time) ``tick`` has something to do; None when nothing waits."""
        due = self._last_count_emit + self.cfg.count_interval if self._has_pending() else None
        confirm = self._confirm_at()
        if confirm is not None:
            due = confirm if due is None else min(due, confirm)
        return due

    def tick(self, now: float, mono: float | None = None) -> TrackerOutput:
        """Time passes without a reading: emit pending parts once ``count_interval`` has passed.

        A subscription delivers nothing while the PLC's values stay the same, and a poll that
        finds nothing new does not emit; without this, the last parts before a pause would wait
        for the next change, however long. The event is stamped with the read that saw the parts.
        """
        confirm = self._confirm_at()
        if confirm is not None and now >= confirm:
            # a live subscription has not replaced the suspect value: it was real
            self._good.confirm(self._flags)
            self._scrap.confirm(self._flags)
            self._note_held()
        due = self._last_count_emit + self.cfg.count_interval if self._has_pending() else None
        if due is None or now < due:
            return TrackerOutput()
        now = self._tick(now)
        out = TrackerOutput()
        self._emit_count(out, self._last_read_ts if self._last_read_ts is not None else now, now)
        return self._finish(out, now)

    def _confirm_at(self) -> float | None:
        """When silence confirms a suspect value (``quiet_after`` machines that are in sight)."""
        if self.cfg.quiet_after is None or self._unobserved or self.state is MachineState.OFFLINE:
            return None
        held = [c.suspect_ts for c in (self._good, self._scrap) if c.suspect is not None]
        return min(held) + self.cfg.quiet_after if held else None

    def flush(self, now: float) -> TrackerOutput:
        """Emit the parts counted so far (at shutdown, so nothing waits for the next interval)."""
        now = self._tick(now)
        out = TrackerOutput()
        self._emit_count(out, self._last_read_ts if self._last_read_ts is not None else now, now)
        return self._finish(out, now)

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def pending(self) -> bool:
        """Parts (or a flag) counted but not yet emitted."""
        return self._has_pending()

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

    def _power_cycled(self, reading: Reading) -> bool | None:
        """True: the PLC restarted since the last read; False: it did not; None: unknown.

        One to three power-ons since the last read is a power cycle; any other change is a bad
        read of that register, which says nothing (not a reason to count the whole counter again).
        """
        if reading.power_on is None or self.power_on is None:
            return None
        diff = (reading.power_on - self.power_on) % POWER_ON_MODULUS
        if diff == 0:
            return False
        return True if diff <= MAX_POWER_CYCLES else None

    def _context(self, reading: Reading, now: float, mono: float | None) -> Context:
        """Did the PLC restart since the last read: yes, no, or maybe (out of sight, counters low)?"""
        power = self._power_cycled(reading)
        if power is not None or not self._unobserved:
            return Context(power=power)
        shown = [(c, raw) for c, raw in ((self._good, reading.good), (self._scrap, reading.scrap)) if raw is not None]
        maybe = bool(shown) and all(c.could_restart(raw, now, mono) for c, raw in shown)
        return Context(power=None, maybe_power_cycle=maybe)

    def _book_job_change(self, out: TrackerOutput, reading: Reading, old_job: str | None, now: float,
                         watched: bool, previous: Reading | None) -> None:
        """The parts of the read that saw the job change, split or said to span it (edge/jobs.py)."""
        before = previous or Reading(state=None)
        per_job = (continues_old(reading.job_good, before.job_good, reading.good, before.good, self.cfg.good_bits),
                   continues_old(reading.job_scrap, before.job_scrap, reading.scrap, before.scrap,
                                 self.cfg.scrap_bits))
        split = split_job_change((self._good.pending, self._scrap.pending), per_job,
                                 exact=self._job_from is None, watched=watched)
        flags = self._flags
        self._flags = Flags()
        first = next((p for p in (split.old, split.span, split.new) if any(p)), split.old)
        if flags.possibly_lost:
            # parts may be missing: made before a power loss in the window, under the old job or (the
            # job may have changed first) the new one: the flag goes out naming both, with the parts
            # of either, even when there are none (issue 11 F and G, found by the chaos run)
            first = split.span
        start = self._count_start if self._count_start is not None else now
        span_from = self._job_from if self._job_from is not None else old_job  # the earliest job they may be of
        emitted = len(out.events)
        for parts, job, job_from in ((split.old, old_job, None), (split.span, reading.job, span_from),
                                     (split.new, reading.job, None)):
            mine = flags if parts is first else Flags()
            if any(parts) or mine.any():
                self._append_count(out, start, now, parts[0], parts[1], job, job_from, mine)
        self._good.pending = self._scrap.pending = 0
        # a value still held as suspect may yet add parts from before the change
        self._job_from = span_from if self._good.suspect is not None or self._scrap.suspect is not None else None
        self._count_start = self._next_start(now)
        if len(out.events) > emitted:
            self._last_count_emit = now

    def _has_pending(self) -> bool:
        return self._good.pending > 0 or self._scrap.pending > 0 or self._flags.any()

    def _emit_count(self, out: TrackerOutput, ts: float, now: float) -> None:
        """Emit the pending parts as one count event stamped ``ts`` (the read that saw them)."""
        if not self._has_pending():
            return
        start = self._count_start if self._count_start is not None else ts
        job_from = self._job_from if self._job_from != self.job else None
        self._append_count(out, start, ts, self._good.pending, self._scrap.pending, self.job, job_from, self._flags)
        self._good.pending = self._scrap.pending = 0
        self._flags = Flags()
        self._job_from = None
        self._count_start = self._next_start(ts)
        self._last_count_emit = now

    def _note_held(self) -> None:
        if not self._holding():
            self._held_start = None
        elif self._held_start is None:
            self._held_start = self._count_start

    def _holding(self) -> bool:
        return self._good.suspect is not None or self._scrap.suspect is not None

    def _next_start(self, ts: float) -> float:
        """Where the next count interval starts: here, or where a held value's undecided span began.

        The parts a held value resolves into were made since then; an interval starting later would
        claim they were made later (the two intervals overlap instead: each says truly when).
        """
        return self._held_start if self._holding() and self._held_start is not None else ts

    def _append_count(
        self, out: TrackerOutput, start: float, ts: float, good: int, scrap: int, job: str | None,
        job_from: str | None, flags: Flags,
    ) -> None:
        out.events.append(
            CountEvent(
                machine_id=self.cfg.machine_id, start=min(start, ts), ts=ts, good=good, scrap=scrap, job=job,
                job_from=job_from, reset=flags.reset, possibly_lost=flags.possibly_lost, rebased=flags.rebased,
                truncated=self._truncated,
            )
        )

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
            good_raw=self._good.base(),
            scrap_raw=self._scrap.base(),
            power_on=self.power_on,
            counted_until=self._count_start if pending or self._holding() else self._last_read_ts,
            last_ts=self._clock if now is None else max(self._clock, now),
            job_from=self._job_from,
        )


POWER_ON_MODULUS = 1 << 16
MAX_POWER_CYCLES = 3  # power-ons between two reads that still count as power cycles
