"""A reference machine and the runtime's way of driving a tracker, for the counting property test.

``Machine`` is what the PLC does and shows (its ``parts`` are the truth); ``Run`` reads it with a
``MachineTracker`` at the times a scenario says, ticking the tracker when it is due as
edge/pipeline.py does, and keeps every event; ``simulate`` plays a scenario. Model time is whole
milliseconds, so "before" and "after" a read are exact. What the model will not do, because no
reader could tell it from something else (docs/edge.md, "Counting rules"): presets within a
plausible rise or back to a value just read, two presets between two reads, a bad value close to
the true one or repeated, a power cycle no read misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from edge.readings import Reading
from edge.tracker import MachineMemory, MachineTracker, TrackerConfig, TrackerOutput
from plantpulse.protocol.models import CountEvent, MachineState

T0 = 1_000_000.0  # model time is whole milliseconds; the tracker sees T0 + ms / 1000 seconds
MIN_CYCLE = 1.0  # seconds; the model never makes parts faster
FAR = 4096  # presets and bad reads at least this far from the value: beyond any plausible rise here
STATES: dict[int | float | str | bool, MachineState] = {1: MachineState.RUNNING}


@dataclass
class Part:
    t: int  # ms
    good: bool
    job: str


@dataclass
class Machine:
    """What the PLC does and shows; ``parts`` is the truth."""

    bits: int
    good: int
    scrap: int
    t: int = 0  # ms
    cycle: int | None = 1500  # ms per part
    next_part: int = 500  # after the first read (at 0)
    scrap_every: int = 5
    made: int = 0
    powered: bool = True
    cut: bool = False
    power_on: int = 1
    job: str = "J0"
    jobs: int = 0
    job_good: int = 0
    job_scrap: int = 0
    parts: list[Part] = field(default_factory=list)
    presets: list[int] = field(default_factory=list)
    preset_counters: list[str] = field(default_factory=list)  # "good" or "scrap", one per preset
    power_cycles: list[int] = field(default_factory=list)  # when power came back
    recent: list[tuple[int, int]] = field(default_factory=list)  # counters at the last good reads
    job_changes: list[tuple[int, str]] = field(default_factory=list)
    troubles: list[int] = field(default_factory=list)  # bad reads, cut-offs, power losses, gateway crashes
    reads: list[int] = field(default_factory=list)  # good reads
    bad_values: list[int] = field(default_factory=list)

    @property
    def modulus(self) -> int:
        return 1 << self.bits

    def advance(self, dt: int) -> None:
        end = self.t + dt
        while self.powered and self.cycle is not None and self.next_part <= end:
            self.t = max(self.t, self.next_part)
            self.made += 1
            good = self.made % self.scrap_every != 0
            self.parts.append(Part(self.t, good, self.job))
            if good:
                self.good, self.job_good = (self.good + 1) % self.modulus, self.job_good + 1
            else:
                self.scrap, self.job_scrap = (self.scrap + 1) % self.modulus, self.job_scrap + 1
            self.next_part = self.t + self.cycle
        self.t = end
        if self.cycle is None or not self.powered:
            self.next_part = max(self.next_part, self.t)

    def set_cycle(self, cycle: int | None) -> None:
        self.cycle = cycle
        if cycle is not None:  # never at the instant of a read already made, never faster than MIN_CYCLE
            last = self.parts[-1].t if self.parts else -(10**9)
            self.next_part = max(self.t + 1, last + max(cycle, int(MIN_CYCLE * 1000)))

    def reading(self, power_on: bool, per_job: bool, *, glitch: str | None = None, noise: int = 0) -> Reading:
        good, scrap = self.good, self.scrap
        if glitch == "good":
            good = self.bad_value(good, noise)
        elif glitch == "scrap":
            scrap = self.bad_value(scrap, noise)
        return Reading(
            state=1, good=good, scrap=scrap, job=self.job, power_on=self.power_on if power_on else None,
            job_good=self.job_good if per_job else None, job_scrap=self.job_scrap if per_job else None,
        )


    def bad_value(self, value: int, noise: int) -> int:
        """Garbage: at least FAR from the value, from 0 and from earlier garbage (bad reads are independent)."""
        avoid = [value, 0, *self.bad_values]
        for k in range(1, 8):
            candidate = k * self.modulus // 8 + noise
            if all(min((candidate - v) % self.modulus, (v - candidate) % self.modulus) >= FAR for v in avoid):
                self.bad_values.append(candidate)
                return candidate
        return value  # no room left for more garbage: a good read



# --------------------------------------------------------------------------- scenarios
actions = st.one_of(
    st.tuples(st.just("wait"), st.integers(100, 40_000), st.sampled_from([1000, 1300, 2500, None])),
    st.tuples(st.just("read")),
    st.tuples(st.just("read")),
    st.tuples(st.just("glitch"), st.sampled_from(["good", "scrap"]), st.integers(50, 3000), st.integers(0, 4000)),
    st.tuples(st.just("preset"), st.sampled_from(["good", "scrap"]),
              st.sampled_from(["up", "down", "small", "wrap"]), st.integers(0, 30)),
    st.tuples(st.just("power"), st.integers(1000, 60_000)),
    st.tuples(st.just("cut"), st.integers(500, 120_000)),
    st.tuples(st.just("job")),
    st.tuples(st.just("crash"), st.integers(0, 100_000)),
)


@dataclass
class Run:
    """The tracker(s) reading one machine, as the runtime would drive them."""

    cfg: TrackerConfig
    machine: Machine
    power_on: bool
    per_job: bool
    tracker: MachineTracker
    memory: MachineMemory | None = None
    counts: list[CountEvent] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    first_read: int | None = None
    last_read: int | None = None
    pending_since: float | None = None

    def drive_ticks(self, until: float) -> None:
        """Tick at every due time up to ``until``, as edge/pipeline.py does."""
        for _ in range(50):
            due = self.tracker.due_at()
            if due is None or due > until:
                return
            at = max(due, secs(self.machine.t))  # the runtime ticks at the due time, never in the past
            self.take(self.tracker.tick(at, at - T0), at)
        raise AssertionError("ticks do not converge")

    def take(self, out: TrackerOutput, at: float) -> None:
        events, memory = out.events, out.memory
        for e in events:
            self.stamps.append(e.ts)
            if isinstance(e, CountEvent):
                self.counts.append(e)
        if events:
            assert memory is not None
            self.memory = memory
        due = self.tracker.due_at()
        if not self.tracker.pending:
            self.pending_since = None
        elif self.pending_since is None:
            self.pending_since = at
        if self.pending_since is not None and due is not None:
            assert due <= self.pending_since + self.cfg.count_interval + 1e-9, "parts due later than count_interval"

    def read(self, glitch: str | None = None, noise: int = 0) -> None:
        m = self.machine
        now = secs(m.t)
        self.drive_ticks(now)
        if not m.powered or m.cut:
            self.take(self.tracker.on_failure(now, "refused"), now)
            return
        reading = m.reading(self.power_on, self.per_job, glitch=glitch, noise=noise)
        self.take(self.tracker.on_reading(reading, now, now - T0), now)
        if glitch is None:
            self.first_read = m.t if self.first_read is None else self.first_read
            self.last_read = m.t
            m.recent = [*m.recent[-2:], (m.good, m.scrap)]
            m.reads.append(m.t)

    def step(self, action: tuple[object, ...]) -> None:
        m, kind = self.machine, action[0]
        if kind == "wait":
            m.set_cycle(action[2])  # type: ignore[arg-type]
            self.wait(int(action[1]))  # type: ignore[call-overload]
        elif kind == "read":
            self.read()
        elif kind == "glitch" and self.last_read == m.t and not m.cut and m.powered:
            m.troubles.append(m.t)
            self.read(glitch=str(action[1]), noise=int(action[3]))  # type: ignore[call-overload]  # one bad value
            self.wait(int(action[2]))  # type: ignore[call-overload]
            self.read()
        elif kind == "preset":
            self.preset(str(action[1]), str(action[2]), int(action[3]))  # type: ignore[call-overload]
        elif kind == "power":
            m.powered = False
            m.troubles.append(m.t)
            self.wait(int(action[1]) // 2)  # type: ignore[call-overload]
            self.read()  # off the network: this read fails
            self.wait(int(action[1]) // 2)  # type: ignore[call-overload]
            m.powered, m.good, m.scrap, m.job_good, m.job_scrap = True, 0, 0, 0, 0
            m.power_on = (m.power_on + 1) % 65536
            m.power_cycles.append(m.t)
            m.set_cycle(m.cycle)
        elif kind == "cut":
            m.cut = True
            m.troubles.append(m.t)
            self.read()
            self.wait(int(action[1]))  # type: ignore[call-overload]
            self.read()
            m.cut = False
        elif kind == "job":
            self.wait(1)  # after any read of this instant
            m.jobs += 1
            m.job, m.job_good, m.job_scrap = f"J{m.jobs}", 0, 0
            m.job_changes.append((m.t, m.job))
        elif kind == "crash":
            self.drive_ticks(secs(m.t))
            m.troubles.append(m.t)
            self.tracker = MachineTracker(self.cfg, self.memory)  # what the outbox holds, nothing more
            self.pending_since = None
            m.advance(int(action[1]))  # type: ignore[call-overload]

    def wait(self, dt: int) -> None:
        m = self.machine
        self.drive_ticks(secs(m.t + dt))
        m.advance(dt)

    def preset(self, which: str, how: str, k: int) -> None:
        """At most one preset between two good reads: a reader sees only their sum (two that cancel out
        erase the parts between them, unseen by anyone: a stated residual)."""
        m = self.machine
        if m.presets and self.last_read is not None and m.presets[-1] > self.last_read:
            return
        now = m.good if which == "good" else m.scrap
        target = {"up": now + FAR + 100 * k, "down": now - FAR - 100 * k, "small": k,
                  "wrap": m.modulus - 1 - k}[how] % m.modulus
        before = [now] + [values[0 if which == "good" else 1] for values in m.recent]
        if any(min((target - v) % m.modulus, (v - target) % m.modulus) < FAR for v in before):
            # within a plausible rise of the value it is production to anyone, and back to a value
            # just read it is a bad read to anyone (stated residuals)
            return
        self.wait(1)  # after any read of this instant
        if which == "good":
            m.good = target
        else:
            m.scrap = target
        m.presets.append(m.t)
        m.preset_counters.append(which)


def simulate(bits: int, start: int, near_wrap: bool, power_on: bool, per_job: bool, count_interval: float,
             quiet_after: float | None, script: list[tuple[object, ...]]) -> Run:
    """Run the script against a fresh machine and tracker; the run holds what was made and counted."""
    modulus = 1 << bits
    first = (modulus - 8 + start) % modulus if near_wrap else 5000 + start
    machine = Machine(bits, good=first, scrap=(first + 3) % modulus if near_wrap else start)
    cfg = TrackerConfig(machine_id="m", state_map=STATES, min_cycle_time=MIN_CYCLE, good_bits=bits, scrap_bits=bits,
                        count_interval=count_interval, quiet_after=quiet_after)
    run = Run(cfg, machine, power_on, per_job, MachineTracker(cfg))
    run.read()
    for action in script:
        run.step(action)
    machine.cut, machine.powered = False, True
    for _ in range(2):  # the last read may hold a suspect: the next one decides it
        run.wait(1000)
        run.read()
    end = secs(machine.t + 1_000_000)
    run.drive_ticks(end)
    run.take(run.tracker.flush(end), end)
    return run


def secs(ms: int) -> float:
    return T0 + ms / 1000


def ms(t: float) -> int:
    return round((t - T0) * 1000)
