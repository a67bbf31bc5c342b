"""The counter tracker against a reference model of a machine (hypothesis): counted == made, or flagged.

A ``Machine`` makes parts (never faster than the tracker's ``min_cycle_time``), and a scenario does
to it what plants do: presets, bad reads, rollovers, power cycles (always off the network for at
least one read, as a real PLC is while it boots), unreachable spells, job changes, gateway crashes.
The tracker reads it at random times, with ticks driven as the runtime drives them.

Every count event covers ``(start, ts]``; events of one read share that window, and a window that
overlaps another (a counter value held for a decision while other counts went out) is merged with
it. The parts the model made there are compared with what was counted (docs/edge.md, "Residual
errors"):

* a window without ``reset``/``possibly_lost``/``rebased``: exactly what was made, each part under
  its job; with ``job_from`` the total is exact and booked parts never exceed what their job made
  (with a per-job counter and several job changes in one window, the jobs in between are booked to
  the one before: stated residual);
* flagged windows in a row (anomalies in adjacent reads can move a part across their boundary):
  never more than was made, and a loss is flagged as one (``possibly_lost`` or ``rebased``); a
  lone preset loses exactly the parts between the reads around it; a preset taken for a reset
  adds at most what the machine could make from 0 in the window; a preset and a power cycle
  together cannot be untangled (a preset after a power-up counts as parts; a preset hides that all
  counters restarted): then only the flag is owed.

Every part made between the first and the last read lies in exactly one window: nothing is lost
outside a flagged window. Pending parts are never due later than
``count_interval`` after they were seen, and event times never go back.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge.events import MachineMemory, MachineTracker, Reading, TrackerConfig, TrackerOutput
from protocol.models import CountEvent, MachineState

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
        """Tick at every due time up to ``until``, as edge/collection.py does."""
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


# each defect's shape, always tried (random scripts rarely hit, e.g., a preset down and two reads after it)
ISSUE_11: dict[str, dict[str, object]] = {
    "A": dict(script=[("wait", 3000, 1000), ("preset", "good", "down", 0), ("read",), ("wait", 1000, 1000),
                      ("read",)]),
    "B": dict(script=[("wait", 3000, 1000), ("read",), ("preset", "good", "up", 3), ("wait", 600, 1000), ("read",),
                      ("wait", 1100, 1000), ("read",)]),
    "C": dict(count_interval=20.0, script=[("wait", 5000, 1000), ("read",), ("wait", 2000, 1000), ("read",),
                                           ("wait", 90_000, None), ("read",)]),
    "E": dict(near_wrap=True, script=[("read",), ("power", 5000), ("wait", 2000, 1000), ("read",)]),
    "F": dict(script=[("wait", 3000, 1000), ("read",), ("job",), ("wait", 3000, 1000), ("crash", 5000), ("job",),
                      ("wait", 2000, 1000), ("read",)]),
    "G": dict(script=[("read",), ("cut", 20_000), ("power", 3000), ("wait", 3000, 1000), ("read",)]),
}


def scenario(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(bits=16, start=0, near_wrap=False, power_on=False, per_job=False,
                                   count_interval=0.0, quiet_after=None)
    return {**base, **kw}


def examples(test: Callable[..., None]) -> Callable[..., None]:
    for kw in ISSUE_11.values():
        test = example(**scenario(**kw))(test)
        test = example(**scenario(**{**kw, "power_on": True, "per_job": True, "bits": 32}))(test)
    return test


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@examples
@given(
    bits=st.sampled_from([16, 32]),
    start=st.integers(0, 40),
    near_wrap=st.booleans(),
    power_on=st.booleans(),
    per_job=st.booleans(),
    count_interval=st.sampled_from([0.0, 5.0, 20.0]),
    quiet_after=st.sampled_from([None, 10.0]),
    script=st.lists(actions, min_size=1, max_size=40),
)
def test_counted_equals_made_or_the_window_is_flagged(
    bits: int, start: int, near_wrap: bool, power_on: bool, per_job: bool, count_interval: float,
    quiet_after: float | None, script: list[tuple[object, ...]],
) -> None:
    check(simulate(bits, start, near_wrap, power_on, per_job, count_interval, quiet_after, script))


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


def check(run: Run) -> None:
    m = run.machine
    assert run.stamps == sorted(run.stamps), "an event stamped earlier than the one before"
    windows: dict[tuple[int, int], list[CountEvent]] = {}
    for e in sorted(run.counts, key=lambda e: (e.start, e.ts)):
        start, end = ms(e.start), ms(e.ts)
        last = max(windows, default=None)
        if last is not None and start < last[1] and end > last[0]:  # overlaps: one window
            merged = windows.pop(last)
            start, end = min(start, last[0]), max(end, last[1])
            windows[(start, end)] = [*merged, e]
        else:
            windows.setdefault((start, end), []).append(e)
    spans = sorted(windows)
    for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
        assert s2 >= e1, "count windows overlap"
    assert run.first_read is not None and run.last_read is not None
    for p in m.parts:
        if run.first_read < p.t <= run.last_read:
            inside = [w for w in spans if w[0] < p.t <= w[1]]
            assert len(inside) == 1, f"part at {p.t} in {len(inside)} count windows: lost outside any flag"
    episode: list[tuple[int, int]] = []  # adjacent flagged windows: anomalies in adjacent reads
    for span in spans:
        if flagged(windows[span]):
            episode.append(span)
            continue
        if episode:
            check_episode(run, episode, windows)
            episode = []
        check_exact(run, span[0], span[1], windows[span])
    if episode:
        check_episode(run, episode, windows)


def flagged(events: list[CountEvent]) -> bool:
    return any(e.reset or e.possibly_lost or e.rebased for e in events)


def check_episode(run: Run, spans: list[tuple[int, int]], windows: dict[tuple[int, int], list[CountEvent]]) -> None:
    """Flagged windows in a row: never more than was made, unless a preset and a power cycle mix.

    A lone preset loses exactly the parts between the reads around it; a preset taken for a reset
    (no power cycle) adds at most what the machine could make from 0 in the episode.
    """
    m = run.machine
    start, end = spans[0][0], spans[-1][1]
    events = [e for span in spans for e in windows[span]]
    presets = [t for t in m.presets if start < t <= end]
    power = any(start < t <= end for t in m.power_cycles)
    troubles = any(start < t <= end for t in m.troubles)
    reset = any(e.reset for e in events)
    if presets and power:
        # a preset and a power cycle together cannot be untangled (a preset after a power-up counts as
        # parts; a preset hides that all counters restarted): only the flag is owed, and it is there
        return
    slack = (end - start) // int(MIN_CYCLE * 1000) + 1 if presets and reset else 0
    for good in (True, False):
        counted = sum(e.good if good else e.scrap for e in events)
        made = [p for p in m.parts if start < p.t <= end and p.good == good]
        what = f"flagged ({start}, {end}] ms {'good' if good else 'scrap'}: counted {counted}, made {len(made)}"
        assert counted <= len(made) + slack, what
        if counted < len(made):
            assert any(e.possibly_lost or e.rebased for e in events), f"{what}: a loss not flagged as one"
        if len(presets) == 1 and not (troubles or reset or power):
            which = m.preset_counters[m.presets.index(presets[0])]
            before = max(t for t in m.reads if t < presets[0])
            after = min(t for t in m.reads if t >= presets[0])  # a read in the same ms comes after it
            lost = sum(1 for p in made if before < p.t <= after) if which == ("good" if good else "scrap") else 0
            assert counted == len(made) - lost, f"{what}: a preset loses only the {lost} parts around it"


def check_exact(run: Run, start: int, end: int, events: list[CountEvent]) -> None:
    """An unflagged window: exactly what was made, each part under its job (or said to span a change)."""
    m = run.machine
    made = [p for p in m.parts if start < p.t <= end]
    for good in (True, False):
        counted = sum(e.good if good else e.scrap for e in events)
        total = sum(1 for p in made if p.good == good)
        what = f"window ({start}, {end}] ms {'good' if good else 'scrap'}: counted {counted}, made {total}"
        assert counted == total, what
        booked: dict[str, int] = {}
        for e in events:
            if e.job_from is None:
                booked[e.job or ""] = booked.get(e.job or "", 0) + (e.good if good else e.scrap)
        of_job: dict[str, int] = {}
        for p in made:
            if p.good == good:
                of_job[p.job] = of_job.get(p.job, 0) + 1
        booked = {job: n for job, n in booked.items() if n}
        if any(e.job_from is not None for e in events):
            for job, n in booked.items():
                assert n <= of_job.get(job, 0), f"{what}: {n} booked to {job}, made {of_job}"
            continue
        if booked == of_job:
            continue
        # a per-job counter split the window: the last job exactly, the job before it the rest (the
        # jobs in between, when several changes fell between two reads: stated residual)
        first_job, last_job = job_at(m, start), job_at(m, end)
        assert run.per_job and set(booked) <= {first_job, last_job}, f"{what}: booked {booked}, made {of_job}"
        assert booked.get(last_job, 0) == of_job.get(last_job, 0), f"{what}: booked {booked}, made {of_job}"


def job_at(m: Machine, t: int) -> str:
    job = "J0"
    for at, name in m.job_changes:
        if at <= t:
            job = name
    return job
