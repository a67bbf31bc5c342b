"""One simulated machine as a discrete-event process: pure logic, time passed in.

The model knows nothing about Modbus, OPC UA or asyncio. ``advance(now)`` fires every event due
by ``now`` at its *scheduled* time and returns the facts (state changes, parts, power cycles)
that the ground truth records and the PLC endpoints show. Because events fire at scheduled
times and every random draw happens at a fixed point of the sequence, the same seed gives the
same jobs, faults and parts however late the caller's loop wakes up.

Durations from the config are plant seconds and are divided by ``speed``; ``min_state_duration``
is wall-clock and bounds every state from below, so a poller can see every state.
"""

from __future__ import annotations

import math
import random

from simulators.config import JobConfig, MachineConfig
from simulators.facts import (
    Fact,
    MachineValues,
    PartFact,
    PauseFact,
    PowerCycleFact,
    PresetFact,
    RawState,
    StateFact,
)

INF = math.inf


class MachineModel:
    """A machine that runs jobs, makes parts, breaks down and gets set up, on a wall clock."""

    def __init__(
        self, cfg: MachineConfig, *, plant_seed: int, speed: float, min_state: float, now: float
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.speed = speed
        self.min_state = cfg.min_state_duration if cfg.min_state_duration is not None else min_state
        seed = cfg.seed if cfg.seed is not None else f"{plant_seed}:{cfg.id}"
        self._rng = random.Random(seed)
        self.cycle_time = cfg.cycle_time
        self.scrap_rate = cfg.scrap_rate
        self.faults_enabled = cfg.faults is not None
        self._mod = 2**cfg.counter.bits
        self.good_counter = cfg.counter.good_start
        self.scrap_counter = cfg.counter.scrap_start
        self.good_total = 0
        self.scrap_total = 0
        self.power_on_count = 1
        self.job_good = 0
        self.job_scrap = 0
        self._since_pause = 0  # parts since the last unreported pause
        self._off_since: float | None = None
        self.last_cycle_time = 0.0
        self.state = RawState.IDLE
        self.since = now
        self.fault_code = 0
        self.job = 0
        self.job_remaining = 0
        self._job_index = 0
        self._deadline = INF  # end of the current state (INF: until an outside action)
        self._cycle_end = INF
        self._run_start = now  # start of the current running segment, for time-to-failure
        self._ttf = self._draw_ttf()  # plant seconds of running left before the next fault
        self._paused_at: float | None = None
        self._powered = True
        self._facts: list[Fact] = []
        self._pending_ct = 0.0  # actual cycle time of the part in progress, plant seconds
        self._last_fact: tuple[RawState, int, int] | None = None
        if cfg.auto_jobs:
            number, quantity, _setup = self._next_job()
            self._set_job(number, quantity)
            self._enter(RawState.RUNNING, now)
        else:
            self._enter(RawState.IDLE, now)

    # ----------------------------------------------------------------- public API
    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def next_event_at(self) -> float:
        if self._paused_at is not None or not self._powered:
            return INF
        return min(self._deadline, self._cycle_end, self._fault_at())

    def advance(self, now: float) -> list[Fact]:
        """Fire every event scheduled up to ``now``; return the facts in time order."""
        self._catch_up(now)
        return self._take()

    def _catch_up(self, now: float) -> None:
        """Fire what is due before an action acts; its facts stay for the action to return with its own.

        (Taking them here dropped them: a part due when a fault came was on the counter but not in
        the ground truth; found by the chaos run of issue 11.)
        """
        while (t := self.next_event_at) <= now:
            self._fire(t)

    def values(self) -> MachineValues:
        return MachineValues(
            state=self.state,
            fault_code=self.fault_code,
            good_counter=self.good_counter,
            scrap_counter=self.scrap_counter,
            job=self.job,
            power_on_count=self.power_on_count,
            last_cycle_time=self.last_cycle_time,
            good_total=self.good_total,
            scrap_total=self.scrap_total,
            job_good=self.job_good,
            job_scrap=self.job_scrap,
        )

    def pause(self, now: float) -> list[Fact]:
        facts = self.advance(now)
        if self._paused_at is None:
            self._paused_at = now
        return facts

    def resume(self, now: float) -> list[Fact]:
        if self._paused_at is not None:
            shift = max(0.0, now - self._paused_at)
            self._paused_at = None
            self._deadline += shift
            self._cycle_end += shift
            self._run_start += shift
        return self.advance(now)

    def fault(self, now: float, code: int, duration: float | None = None) -> list[Fact]:
        """Break down now with ``code``; stays faulted until ``clear`` or ``duration`` wall seconds."""
        self._catch_up(now)
        self._leave_running(now)
        self._enter(RawState.FAULT, now, _until(now, duration), code)
        return self._take()

    def maintenance(self, now: float, duration: float | None = None) -> list[Fact]:
        self._catch_up(now)
        self._leave_running(now)
        self._enter(RawState.MAINTENANCE, now, _until(now, duration))
        return self._take()

    def setup(self, now: float, duration: float | None = None) -> list[Fact]:
        """A changeover on the current job (e.g. a tool change); ``duration`` in wall seconds."""
        self._catch_up(now)
        self._leave_running(now)
        wall = duration if duration is not None else self.cfg.setup_time / self.speed
        self._enter(RawState.SETUP, now, now + max(wall, self.min_state))
        return self._take()

    def clear(self, now: float) -> list[Fact]:
        """End a fault, maintenance or setup now and go back to work."""
        self._catch_up(now)
        if self.state in (RawState.FAULT, RawState.MAINTENANCE, RawState.SETUP):
            self._back_to_work(now)
        return self._take()

    def start_job(self, now: float, number: int, quantity: int, setup_time: float | None) -> list[Fact]:
        """Switch to another job now, with a changeover (``setup_time`` in plant seconds)."""
        self._catch_up(now)
        self._leave_running(now)
        setup = self.cfg.setup_time if setup_time is None else setup_time
        self._set_job(number, quantity)
        self._start_setup(now, setup)
        return self._take()

    def preset(self, now: float, good: int | None = None, scrap: int | None = None) -> list[Fact]:
        """Set the part counters (an operator's preset, a PLC program writing its counter): no parts made."""
        self._catch_up(now)
        for name, value in (("good", good), ("scrap", scrap)):
            if value is not None and not 0 <= value < self._mod:
                raise ValueError(f"{name} counter of {self.id} is {self.cfg.counter.bits}-bit: {value} does not fit")
        if good is not None:
            self._facts.append(PresetFact(self.id, now, "good", self.good_counter, good))
            self.good_counter = good
        if scrap is not None:
            self._facts.append(PresetFact(self.id, now, "scrap", self.scrap_counter, scrap))
            self.scrap_counter = scrap
        return self._take()

    def power_off(self, now: float) -> list[Fact]:
        """Power goes away: nothing runs until ``power_on``; shown as idle in the ground truth."""
        self._catch_up(now)
        self._leave_running(now)
        self._enter(RawState.IDLE, now)
        self._powered = False
        self._off_since = now
        return self._take()

    def power_on(self, now: float) -> list[Fact]:
        """Power comes back: counters restart at 0, the power-on counter rises, work resumes."""
        self._powered = True
        self.good_counter = 0
        self.scrap_counter = 0
        self.job_good = self.job_scrap = 0
        self.last_cycle_time = 0.0
        self.power_on_count = (self.power_on_count + 1) % 65536
        off = self._off_since if self._off_since is not None else now
        self._off_since = None
        self._facts.append(PowerCycleFact(self.id, now, self.power_on_count, off))
        self._enter(RawState.IDLE, now, now + self.min_state)
        if self.min_state <= 0:
            self._back_to_work(now)
        return self._take()

    def set_params(
        self,
        *,
        cycle_time: float | None = None,
        scrap_rate: float | None = None,
        faults_enabled: bool | None = None,
    ) -> None:
        """Change behaviour from now on (the cycle in progress keeps its end)."""
        if cycle_time is not None:
            self.cycle_time = cycle_time
        if scrap_rate is not None:
            self.scrap_rate = scrap_rate
        if faults_enabled is not None:
            if faults_enabled and self.cfg.faults is None:
                raise ValueError(f"machine {self.id} has no 'faults' section to enable")
            self.faults_enabled = faults_enabled

    # ----------------------------------------------------------------- internals
    def _take(self) -> list[Fact]:
        facts, self._facts = self._facts, []
        return facts

    def _enter(self, state: RawState, now: float, deadline: float = INF, code: int = 0) -> None:
        code = code if state == RawState.FAULT else 0
        self._deadline = deadline
        self._cycle_end = INF
        if state == RawState.RUNNING:
            self._run_start = now
            self._start_cycle(now)
        if (state, code, self.job) == self._last_fact:
            return  # nothing visible changed (e.g. idle after a boot, waiting for a job)
        self.state = state
        self.since = now
        self.fault_code = code
        self._last_fact = (state, code, self.job)
        self._facts.append(StateFact(self.id, now, state, code, self.job))

    def _fault_at(self) -> float:
        if self.state != RawState.RUNNING or not self.faults_enabled or self._ttf == INF:
            return INF
        return max(self._run_start + self._ttf / self.speed, self.since + self.min_state)

    def _leave_running(self, now: float) -> None:
        if self.state == RawState.RUNNING and self._ttf != INF:
            self._ttf = max(0.0, self._ttf - (now - self._run_start) * self.speed)

    def _start_cycle(self, now: float) -> None:
        ct = self.cycle_time * (1 + self.cfg.cycle_jitter * self._rng.random())
        self._cycle_end = now + ct / self.speed
        self._pending_ct = ct

    def _fire(self, t: float) -> None:
        if self.state == RawState.RUNNING:
            fault_at = self._fault_at()
            if fault_at <= min(self._cycle_end, self._deadline):
                self._break_down(t)
            elif self._cycle_end <= self._deadline:
                self._finish_part(t)
            else:  # job done, the running state has lasted its minimum: stop
                self._job_done(t)
        elif self.state == RawState.IDLE:
            if self.job_remaining > 0 or not self.cfg.auto_jobs:
                self._back_to_work(t)
            else:
                number, quantity, setup = self._next_job()
                self._set_job(number, quantity)
                self._start_setup(t, setup)
        else:  # setup, fault or maintenance ended
            self._back_to_work(t)

    def _break_down(self, t: float) -> None:
        faults = self.cfg.faults
        assert faults is not None
        codes = list(faults.codes)
        code = self._rng.choices(codes, weights=[faults.codes[c] for c in codes])[0]
        repair = self._rng.expovariate(1 / faults.mttr)
        self._ttf = self._draw_ttf()
        self._enter(RawState.FAULT, t, t + max(repair / self.speed, self.min_state), code)

    def _finish_part(self, t: float) -> None:
        good = self._rng.random() >= self.scrap_rate
        self.last_cycle_time = self._pending_ct
        if good:
            self.good_total += 1
            self.good_counter = (self.good_counter + 1) % self._mod
            self.job_good = (self.job_good + 1) % self._mod
            self.job_remaining = max(0, self.job_remaining - 1)
        else:
            self.scrap_total += 1
            self.scrap_counter = (self.scrap_counter + 1) % self._mod
            self.job_scrap = (self.job_scrap + 1) % self._mod
        self._facts.append(PartFact(self.id, t, good, self.job, self.last_cycle_time))
        if self.job_remaining > 0:
            self._start_cycle(self._maybe_pause(t))
            return
        self._cycle_end = INF
        if t >= self.since + self.min_state:
            self._job_done(t)
        else:
            self._deadline = self.since + self.min_state

    def _job_done(self, t: float) -> None:
        self._leave_running(t)
        self._back_to_work(t)

    def _back_to_work(self, t: float) -> None:
        if self.job_remaining > 0:
            self._enter(RawState.RUNNING, t)
            return
        if not self.cfg.auto_jobs:
            self._enter(RawState.IDLE, t)
            return
        wait = self.cfg.idle_between_jobs
        wall = (self._rng.expovariate(1 / wait) if wait > 0 else 0.0) / self.speed
        if wall > 0 or self.min_state > 0:
            self._enter(RawState.IDLE, t, t + max(wall, self.min_state))
            return
        number, quantity, setup = self._next_job()
        self._set_job(number, quantity)
        self._start_setup(t, setup)

    def _set_job(self, number: int, quantity: int) -> None:
        """A new job: the per-job counters restart (a PLC resets its job counter for each new job)."""
        self.job_good = self.job_scrap = 0
        self.job, self.job_remaining = number, quantity

    def _maybe_pause(self, t: float) -> float:
        """Where the next cycle starts: now, or after an unreported pause (``pauses`` in the plant file)."""
        pauses = self.cfg.pauses
        if pauses is None:
            return t
        self._since_pause += 1
        if self._since_pause < pauses.every:
            return t
        self._since_pause = 0
        end = t + pauses.duration / self.speed
        self._facts.append(PauseFact(self.id, t, end))
        return end

    def _start_setup(self, t: float, setup_plant_seconds: float) -> None:
        if setup_plant_seconds <= 0:
            self._enter(RawState.RUNNING, t)
            return
        self._enter(RawState.SETUP, t, t + max(setup_plant_seconds / self.speed, self.min_state))

    def _next_job(self) -> tuple[int, int, float]:
        """(job number, good quantity, setup plant seconds) of the next job."""
        if self.cfg.jobs:
            job: JobConfig = self.cfg.jobs[self._job_index % len(self.cfg.jobs)]
            self._job_index += 1
            setup = job.setup_time if job.setup_time is not None else self.cfg.setup_time
            return job.number, job.quantity, setup
        low, high = self.cfg.job_numbers
        number = self._rng.randint(low, high)
        if number == self.job and high > low:
            number = low if number == high else number + 1
        quantity = self._rng.randint(*self.cfg.job_quantity)
        setup = self.cfg.setup_time * (0.75 + 0.5 * self._rng.random())
        return number, quantity, setup

    def _draw_ttf(self) -> float:
        faults = self.cfg.faults
        return self._rng.expovariate(1 / faults.mtbf) if faults is not None else INF


def _until(now: float, duration: float | None) -> float:
    return INF if duration is None else now + duration
