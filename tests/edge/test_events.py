"""The tracker's counting and state rules with hand-made readings (pure: no PLC, no sleep)."""

from __future__ import annotations

import pytest

from edge.readings import Reading
from edge.tracker import MachineMemory, MachineTracker, TrackerConfig
from plantpulse.protocol.models import CountEvent, MachineState, StateEvent

STATES = {0: MachineState.IDLE, 1: MachineState.RUNNING, 2: MachineState.SETUP, 3: MachineState.FAULT,
          4: MachineState.MAINTENANCE}
T = 1_800_000_000.0


def cfg(**kw: object) -> TrackerConfig:
    base: dict[str, object] = {"machine_id": "m1", "state_map": STATES, "min_cycle_time": 1.0,
                               "good_bits": 16, "scrap_bits": 16, "count_interval": 10.0}
    base.update(kw)
    return TrackerConfig(**base)  # type: ignore[arg-type]


def r(good: int, *, state: int = 1, scrap: int = 0, job: str | None = "7", fault: int | None = None,
      power_on: int | None = None) -> Reading:
    return Reading(state=state, fault_code=fault, good=good, scrap=scrap, job=job, power_on=power_on)


def counts(events: list[object]) -> list[CountEvent]:
    return [e for e in events if isinstance(e, CountEvent)]


class Feed:
    """Feeds readings at given times and collects every event and the latest memory."""

    def __init__(self, tracker: MachineTracker) -> None:
        self.tracker = tracker
        self.events: list[object] = []
        self.memory: MachineMemory | None = None

    def read(self, t: float, reading: Reading) -> list[object]:
        out = self.tracker.on_reading(reading, T + t)
        self.events += out.events
        if out.memory is not None:
            self.memory = out.memory
        return list(out.events)

    def fail(self, t: float, reason: str = "timeout") -> list[object]:
        out = self.tracker.on_failure(T + t, reason)
        self.events += out.events
        if out.memory is not None:
            self.memory = out.memory
        return list(out.events)

    def good(self) -> int:
        return sum(c.good for c in counts(self.events))


def test_first_read_emits_state_and_counts_nothing_before_it() -> None:
    f = Feed(MachineTracker(cfg()))
    events = f.read(0, r(500))
    assert events == [StateEvent(machine_id="m1", ts=T, state=MachineState.RUNNING, job="7", raw=1)]
    assert f.memory is not None and f.memory.good_raw == 500 and f.memory.counted_until == T


def test_counts_are_batched_per_interval_and_flushed_before_a_state_change() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(0))
    f.read(1, r(0))
    assert f.read(2, r(1)) == [CountEvent(machine_id="m1", start=T + 1, ts=T + 2, good=1, scrap=0, job="7")]
    assert f.read(3, r(2)) == []  # within the count interval: held
    assert f.read(6, r(5, scrap=1)) == []
    events = f.read(7, r(6, scrap=1, state=3, fault=42))
    assert events == [
        CountEvent(machine_id="m1", start=T + 2, ts=T + 7, good=5, scrap=1, job="7"),
        StateEvent(machine_id="m1", ts=T + 7, state=MachineState.FAULT, fault_code=42, job="7", raw=3),
    ]
    assert f.read(20, r(6, scrap=1, state=1)) == [
        StateEvent(machine_id="m1", ts=T + 20, state=MachineState.RUNNING, job="7", raw=1)
    ]
    assert f.good() == 6


def test_job_change_is_a_state_event_and_parts_before_it_keep_the_old_job() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(10, job="A"))
    f.read(1, r(11, job="A"))  # sent at once (the first parts after a quiet start)
    f.read(2, r(12, job="A"))  # pending: certainly job A's
    events = f.read(30, r(15, job="B"))  # 3 parts made around the change: A's or B's, nobody knows
    assert [type(e).__name__ for e in events] == ["CountEvent", "CountEvent", "StateEvent"]
    before, around = counts(events)
    assert (before.job, before.job_from, before.good, before.start, before.ts) == ("A", None, 1, T + 1, T + 2)
    assert (around.job, around.job_from, around.good, around.start, around.ts) == ("B", "A", 3, T + 2, T + 30)
    assert isinstance(events[2], StateEvent) and events[2].job == "B"


def test_16_bit_rollover_is_counted() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(65530))
    f.read(20, r(3))  # 65530 -> 3 in 20 s: +9 is plausible (at most 21 parts)
    assert f.good() == 9
    assert not counts(f.events)[0].reset


def test_32_bit_counter_respects_its_width() -> None:
    f = Feed(MachineTracker(cfg(good_bits=32)))
    f.read(0, r(4294967290))
    f.read(20, r(5))
    assert f.good() == 11


def test_power_on_counter_makes_a_drop_a_reset_at_once() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(65530, power_on=4))
    f.read(20, r(3, power_on=5))  # the same drop as a rollover, but the power-on counter moved
    c = counts(f.events)
    assert [(x.good, x.reset, x.possibly_lost) for x in c] == [(3, True, True)]


def test_reset_without_power_on_counter_needs_a_second_read() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(5000))
    assert f.read(20, r(2)) == []  # a wrapped delta of 62538 parts in 20 s is impossible: suspect
    f.read(40, r(6))  # ...and it kept counting from there: confirmed reset
    c = counts(f.events)
    assert sum(x.good for x in c) == 6
    assert c[0].reset and c[0].possibly_lost


def test_a_single_glitch_read_is_ignored() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(5000))
    f.read(20, r(0))  # one bad read of 0
    f.read(40, r(5030))  # back on the old sequence
    assert f.good() == 30
    assert not any(c.reset or c.rebased for c in counts(f.events))
    f.read(60, r(40000))  # an implausible jump up, once
    f.read(80, r(5050))
    assert f.good() == 50


def test_a_preset_counter_is_rebased_not_counted() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(100))
    f.read(10, r(105))
    f.read(20, r(30000))  # the operator preset the counter
    f.read(40, r(30010))
    c = counts(f.events)
    assert sum(x.good for x in c) == 15  # the preset is not counted; what follows is, from the preset value
    f.read(60, r(30020))
    assert f.good() == 25
    assert any(x.rebased for x in counts(f.events))


def test_ambiguous_drop_is_a_rollover_when_plausible() -> None:
    # 65530 -> 3 after 20 s: a rollover (+9) or a reset (+3)? Without a power-on counter the
    # documented rule picks the rollover because it is plausible.
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(65530))
    f.read(20, r(3))
    f.read(40, r(10))
    assert f.good() == 16
    assert not any(c.reset for c in counts(f.events))


def test_a_reset_is_always_possibly_lost() -> None:
    # Power cycled within one minimum cycle of the last read: a part in progress may still have
    # ended between that read and the power loss, so the reset is never vouched for.
    f = Feed(MachineTracker(cfg(min_cycle_time=5.0)))
    f.read(0, r(100, power_on=1))
    f.read(1, r(0, power_on=2))
    f.read(30, r(2, power_on=2))
    c = counts(f.events)
    assert sum(x.good for x in c) == 2 and c[0].reset and c[0].possibly_lost


def test_offline_after_n_failures_then_back_with_parts_made_meanwhile() -> None:
    f = Feed(MachineTracker(cfg(offline_after=3)))
    f.read(0, r(10))
    f.read(1, r(11))  # the first part after a quiet start is sent at once
    f.read(1.5, r(12))  # this one waits for the count interval
    assert f.fail(2) == [] and f.fail(3) == []
    events = f.fail(4, "connection refused")
    assert [type(e).__name__ for e in events] == ["CountEvent", "StateEvent"]
    assert counts(events)[0].ts == T + 1.5  # parts seen at the last good read
    offline = events[-1]
    assert isinstance(offline, StateEvent) and offline.state == MachineState.OFFLINE
    assert offline.reason == "connection refused" and offline.ts == T + 4
    assert f.fail(5) == []  # offline once, not on every failed read
    events = f.read(300, r(200))  # 188 parts in 298.5 s: plausible over the outage
    assert counts(events)[0].good == 188
    assert isinstance(events[-1], StateEvent) and events[-1].state == MachineState.RUNNING
    assert f.good() == 190


def test_clock_never_goes_back_per_machine() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(100, r(0, state=1))
    events = f.read(50, r(0, state=0))  # NTP stepped the clock back 50 s
    assert isinstance(events[0], StateEvent) and events[0].ts == T + 100
    events = f.read(60, r(1, state=1))
    assert all(e.ts >= T + 100 for e in events)  # type: ignore[attr-defined]


def test_restart_from_memory_continues_exactly() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(100))
    f.read(5, r(103))  # counted: the first parts after a quiet start are sent at once
    f.read(6, r(104))  # pending, not yet sent
    assert f.memory is not None
    # the gateway dies here; a new tracker starts from what was persisted with the last event
    g = Feed(MachineTracker(cfg(), f.memory))
    assert g.read(30, r(110)) == [
        CountEvent(machine_id="m1", start=T + 5, ts=T + 30, good=7, scrap=0, job="7")
    ]
    assert f.good() + g.good() == 10  # 100 -> 110: nothing lost, nothing twice


def test_unknown_raw_state_maps_to_the_configured_default() -> None:
    t = MachineTracker(cfg(unknown_state=MachineState.IDLE))
    out = t.on_reading(Reading(state=99, good=0), T)
    assert isinstance(out.events[0], StateEvent) and out.events[0].state == MachineState.IDLE
    assert t.unknown_raw_states() == {99}
    t2 = MachineTracker(cfg(state_map={True: MachineState.RUNNING, False: MachineState.IDLE}))
    assert t2.on_reading(Reading(state=True), T).events[0].state == MachineState.RUNNING  # type: ignore[union-attr]


@pytest.mark.parametrize("bits", [16, 32])
def test_long_random_sequence_matches_the_true_count(bits: int) -> None:
    import random

    rng = random.Random(bits)
    modulus = 1 << bits
    f = Feed(MachineTracker(cfg(good_bits=bits, min_cycle_time=0.5)))
    true_total, raw, t = 0, modulus - 40, 0.0
    f.read(t, r(raw))
    for _ in range(3000):
        dt = rng.uniform(0.1, 3.0)
        t += dt
        made = rng.randint(0, int(dt / 0.5))  # never faster than the minimum cycle time
        true_total += made
        raw = (raw + made) % modulus
        f.read(t, r(raw))
    f.events += f.tracker.flush(T + t + 1).events
    assert f.good() == true_total


def test_a_power_cycle_counts_from_zero_even_when_the_counter_is_above_its_last_value() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(5, power_on=7))
    f.read(60, r(12, power_on=8))  # powered off and on, then made 12 parts (more than the 5 before)
    c = counts(f.events)
    assert [(x.good, x.reset) for x in c] == [(12, True)]


def test_a_bad_read_of_the_power_on_counter_is_not_a_reset() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(500, power_on=7))
    f.read(10, r(505, power_on=0))  # the power-on register read as 0 once
    f.read(20, r(510, power_on=7))
    assert f.good() == 10
    assert not any(c.reset for c in counts(f.events))


def test_a_wall_clock_step_does_not_change_what_is_counted() -> None:
    t = MachineTracker(cfg(min_cycle_time=1.0, count_interval=0.0))
    events = t.on_reading(r(100), T, mono=1000.0).events
    # NTP steps the wall clock back an hour while 30 s really pass and 30 parts are made
    events += t.on_reading(r(130), T - 3600, mono=1030.0).events
    # ...and forward a day: a glitch to an absurd value is still refused
    events += t.on_reading(r(40_000), T + 86_400, mono=1031.0).events
    events += t.on_reading(r(131), T + 86_401, mono=1032.0).events
    assert sum(c.good for c in counts(events)) == 31
    assert not any(c.rebased for c in counts(events))
