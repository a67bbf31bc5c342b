"""Issue 11, the pure half: each counting defect an independent plant found, as hand-made readings.

Each test is named after what the edge must do; the docstring names the defect (A..G) and the
wrong result the tracker gave before the fix. The same defects against the real simulators and
collectors are in test_counts_truth_modbus.py and test_counts_truth_opcua.py.
"""

from __future__ import annotations

from edge.readings import Reading
from edge.tracker import MachineMemory, MachineTracker
from plantpulse.protocol.models import CountEvent, StateEvent
from tests.edge.test_events import Feed, T, cfg, counts, r


def total(f: Feed) -> tuple[int, int]:
    """Good and scrap counted, after a flush (as at shutdown) so nothing waits for the count interval."""
    f.events += f.tracker.flush(T + 10_000).events
    c = counts(f.events)
    return sum(x.good for x in c), sum(x.scrap for x in c)


# --------------------------------------------------------------------------- A: presets are not resets
def test_a_downward_preset_of_a_good_counter_is_not_a_reset() -> None:
    """A: 65580 -> 65530 on a 32-bit counter was one count of 65,544 parts marked reset."""
    f = Feed(MachineTracker(cfg(good_bits=32)))
    f.read(0, r(65570))
    f.read(10, r(65580))
    f.read(11, r(65530))  # preset down by an operator: implausible as a rollover, held
    f.read(12, r(65531))  # confirmed: one part made since the preset
    f.read(13, r(65532))
    assert total(f)[0] == 10 + 1 + 1
    c = counts(f.events)
    assert not any(x.reset for x in c) and any(x.rebased for x in c)


def test_a_downward_preset_of_a_scrap_counter_just_below_the_16_bit_wrap() -> None:
    """A: a scrap preset 65535 -> 65533 was counted +65,533."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(100, scrap=65535))
    f.read(5, r(102, scrap=65533))
    f.read(6, r(103, scrap=65533))  # the next read confirms the scrap counter's new value
    f.read(20, r(110, scrap=65535))
    assert total(f) == (10, 2)
    assert not any(x.reset for x in counts(f.events))


def test_a_drop_without_a_power_cycle_by_the_power_on_counter_is_a_preset() -> None:
    """A: with a power-on counter that did not move, even a drop to a small value is a preset."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(5000, power_on=3))
    f.read(10, r(2, power_on=3))  # reachable from 0 in 10 s, but the PLC did not restart
    f.read(11, r(3, power_on=3))
    assert total(f)[0] == 1
    assert not any(x.reset for x in counts(f.events)) and any(x.rebased for x in counts(f.events))


def test_a_confirmed_drop_to_a_value_reachable_since_a_power_up_is_still_a_reset() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(5000))
    f.read(20, r(4))  # 4 parts in 20 s since a power-up is possible
    f.read(21, r(5))
    c = counts(f.events)
    assert total(f)[0] == 5 and c[0].reset and c[0].possibly_lost


# --------------------------------------------------------------------------- B: parts after a preset
def test_a_preset_keeps_the_parts_made_between_the_suspect_and_the_confirming_read() -> None:
    """B: re-based at the confirming value, the part made after the preset was lost."""
    f = Feed(MachineTracker(cfg(min_cycle_time=0.6, good_bits=32)))
    f.read(0, r(1000))
    f.read(0.6, r(50_000))  # preset up
    f.read(1.2, r(50_001))  # the next part (a 0.6 s machine) confirms it
    f.read(1.8, r(50_002))
    assert total(f)[0] == 2


def test_a_preset_confirmed_by_the_next_notification_loses_nothing() -> None:
    """B: with a subscription the confirming value is the next part, which was always lost."""
    f = Feed(MachineTracker(cfg(min_cycle_time=5.0)))
    f.read(0, r(40))
    f.read(30, r(41))
    f.read(31, r(1000))  # preset: the only notification until the next part
    f.read(95, r(1001))  # the next part, a minute later
    assert total(f)[0] == 2


def test_a_jump_that_production_explains_by_the_next_read_is_production() -> None:
    """The documented residual: a small upward preset confirmed late cannot be told from production.

    Two OPC UA moments of one batch reach the tracker at the same instant: the second one's
    parts look implausible (no time passed), the next batch shows production went on. All counted.
    The same arithmetic counts an upward preset of fewer parts than the machine could have made
    before the confirming read as production (unflagged); a poll confirms within one interval.
    """
    f = Feed(MachineTracker(cfg(min_cycle_time=0.05)))
    f.read(0, r(1))
    f.read(2.0, r(1, state=3, fault=4242))  # the fault moment of a 2 s batch
    f.read(2.0, r(18))  # the next moment of the same batch: 17 parts "at once"
    f.read(4.0, r(37))
    assert total(f)[0] == 36 and not any(x.rebased for x in counts(f.events))
    g = Feed(MachineTracker(cfg(min_cycle_time=2.0)))
    g.read(0, r(100))
    g.read(10, r(101))
    g.read(11, r(125))  # preset +24: implausible in a second
    g.read(71, r(126))  # a minute later: 25 parts from 101 are plausible too
    assert total(g)[0] == 26


def test_a_bad_read_just_below_the_true_value_is_still_a_glitch() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(100))
    f.read(1, r(95))  # a bad read a little below (a drop: held)
    f.read(30, r(103))
    assert total(f)[0] == 3 and not any(x.rebased or x.reset for x in counts(f.events))


def test_silence_confirms_a_suspect_of_a_subscription_machine() -> None:
    """B: a subscription notifies the preset and then nothing until the next part: silence confirms it."""
    t = MachineTracker(cfg(count_interval=10.0, quiet_after=10.0))
    t.on_reading(r(40), T)
    t.on_reading(r(41), T + 1)
    t.on_reading(r(9000), T + 2)  # preset
    assert t.due_at() == T + 12
    assert t.tick(T + 11).events == []
    out = t.tick(T + 12)
    assert [(e.good, e.rebased) for e in counts(out.events)] == [(0, True)]
    assert out.memory is not None and out.memory.good_raw == 9000
    polled = MachineTracker(cfg(count_interval=10.0))  # polling: only a read confirms
    polled.on_reading(r(40), T)
    polled.on_reading(r(9000), T + 2)
    assert polled.due_at() is None and polled.tick(T + 100).events == []


def test_silence_confirms_nothing_while_the_plc_is_out_of_sight() -> None:
    t = MachineTracker(cfg(count_interval=10.0, quiet_after=10.0, offline_after=1))
    t.on_reading(r(40), T)
    t.on_reading(r(9000), T + 2)
    t.on_failure(T + 3, "session lost")
    assert t.due_at() is None and t.tick(T + 100).events == []


# --------------------------------------------------------------------------- C: time-driven emission
def test_pending_parts_go_out_within_the_count_interval_without_any_reading() -> None:
    """C: the tracker emitted only on a reading; a subscription sends none while nothing changes."""
    t = MachineTracker(cfg(count_interval=10.0))
    t.on_reading(r(10), T)
    first = t.on_reading(r(11), T + 1)  # sent at once (the first parts after a quiet start)
    assert [e.good for e in counts(first.events)] == [1]
    assert t.on_reading(r(13), T + 2).events == []  # pending
    assert t.due_at() == T + 11
    assert t.tick(T + 10.9).events == []
    out = t.tick(T + 11)
    assert out.events == [CountEvent(machine_id="m1", start=T + 1, ts=T + 2, good=2, scrap=0, job="7")]
    assert out.memory is not None and out.memory.good_raw == 13 and out.memory.counted_until == T + 2
    assert t.due_at() is None and t.tick(T + 100).events == []


def test_a_tick_emits_a_rebased_flag_with_no_parts() -> None:
    t = MachineTracker(cfg(count_interval=10.0))
    t.on_reading(r(10), T)
    t.on_reading(r(11), T + 1)
    t.on_reading(r(30_000), T + 2)
    t.on_reading(r(30_000), T + 3)  # confirmed preset, nothing made since: only the flag is pending
    assert [(e.good, e.rebased) for e in counts(t.tick(T + 11).events)] == [(0, True)]


# --------------------------------------------------------------------------- E: power cycles near the wrap
def test_a_drop_after_the_plc_was_unreachable_is_a_reset_not_a_rollover() -> None:
    """E: 65530 -> 3 after failed reads was counted as a rollover (+9)."""
    f = Feed(MachineTracker(cfg(offline_after=2)))
    f.read(0, r(65530))
    f.fail(1)
    f.fail(2)  # offline: a power cycle takes the PLC off the network
    f.read(20, r(3))
    c = counts(f.events)
    assert total(f)[0] == 3 and c[-1].reset and c[-1].possibly_lost


def test_a_drop_without_a_failed_read_is_still_a_rollover_when_plausible() -> None:
    """The documented residual: a power cycle no read missed, near the wrap, counts as a rollover."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(65530))
    f.read(20, r(3))
    assert total(f)[0] == 9 and not any(x.reset for x in counts(f.events))


def test_the_power_on_counter_decides_a_drop_after_an_outage() -> None:
    f = Feed(MachineTracker(cfg(offline_after=1)))
    f.read(0, r(65530, power_on=4))
    f.fail(1)
    f.read(20, r(3, power_on=4))  # unreachable, but the PLC did not restart: a rollover
    assert total(f)[0] == 9 and not any(x.reset or x.possibly_lost for x in counts(f.events))


def test_a_drop_after_the_gateway_was_stopped_is_a_reset() -> None:
    """E: a restarted gateway did not watch the PLC: the window is unobserved too."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(65533))
    f.read(1, r(65534))
    assert f.memory is not None
    g = Feed(MachineTracker(cfg(), f.memory))
    g.read(60, r(4))
    c = counts(g.events)
    assert sum(x.good for x in c) == 4 and c[0].reset


def test_low_counters_after_an_outage_are_counted_and_marked_possibly_lost() -> None:
    """A power cycle may hide in the outage (all counters low), although the counter rose: flagged."""
    f = Feed(MachineTracker(cfg(offline_after=1)))
    f.read(0, r(5, scrap=0))
    f.fail(1)
    f.read(30, r(12, scrap=0))  # 7 more, or a restart and 12 made since: unknowable without power_on
    c = counts(f.events)
    assert total(f) == (7, 0) and c[-1].possibly_lost and not c[-1].reset


def test_one_high_counter_rules_out_a_power_cycle() -> None:
    f = Feed(MachineTracker(cfg(offline_after=1)))
    f.read(0, r(5000, scrap=0))
    f.fail(1)
    f.read(30, r(5010, scrap=0))  # the good counter did not restart: neither did the scrap counter
    assert total(f) == (10, 0) and not any(x.possibly_lost for x in counts(f.events))


# --------------------------------------------------------------------------- F: jobs
def test_parts_made_after_a_job_change_while_the_gateway_was_down_are_not_booked_to_the_old_job() -> None:
    """F: the first read after a restart showed job B; its parts were booked to job A."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(5000, job="A"))
    f.read(1, r(5001, job="A"))
    assert f.memory is not None
    g = Feed(MachineTracker(cfg(), f.memory))
    events = g.read(100, r(5040, job="B"))
    (span,) = counts(events)
    assert (span.good, span.job, span.job_from) == (39, "B", "A")
    assert isinstance(events[-1], StateEvent) and events[-1].job == "B"


def test_a_per_job_counter_splits_the_parts_of_a_job_change_exactly() -> None:
    """F: with a counter the PLC resets at each job change, no part spans the change."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, Reading(state=1, good=500, scrap=20, job="A", job_good=30, job_scrap=2))
    events = f.read(30, Reading(state=1, good=510, scrap=21, job="B", job_good=4, job_scrap=1))
    c = counts(events)
    assert [(x.job, x.job_from, x.good, x.scrap) for x in c] == [("A", None, 6, 0), ("B", None, 4, 1)]


def test_a_per_job_counter_that_disagrees_falls_back_to_spanning() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, Reading(state=1, good=500, job="A", job_good=30))
    events = f.read(30, Reading(state=1, good=503, job="B", job_good=7))  # 7 > 3: not a per-job counter
    assert [(x.job, x.job_from, x.good) for x in counts(events)] == [("B", "A", 3)]


def test_a_part_read_together_with_a_job_change_is_not_booked_to_the_old_job() -> None:
    """F: a part read in the same poll as a job change went to the old job."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(100, job="A"))
    events = f.read(1, r(101, job="B"))
    assert [(x.job, x.job_from, x.good) for x in counts(events)] == [("B", "A", 1)]


def test_a_job_change_while_a_suspect_is_held_marks_what_the_suspect_resolves() -> None:
    f = Feed(MachineTracker(cfg()))
    f.read(0, r(100, job="A"))
    f.read(10, r(40_000, job="B"))  # a glitch read together with the job change
    assert f.memory is not None and f.memory.job_from == "A"
    f.read(20, r(110, job="B"))  # it was a glitch: 10 parts, of A or B
    c = counts(f.events)
    assert [(x.job, x.job_from, x.good) for x in c] == [("B", "A", 10)]


def test_memory_keeps_the_spanning_job_across_a_restart() -> None:
    mem = MachineMemory(machine_id="m1", state=None, job="B", good_raw=100, scrap_raw=0, counted_until=T,
                        last_ts=T, job_from="A")
    g = Feed(MachineTracker(cfg(), mem))
    g.read(10, r(105, job="B"))
    assert [(x.job, x.job_from, x.good) for x in counts(g.events)] == [("B", "A", 5)]


# --------------------------------------------------------------------------- G: unreachable, then power-cycled
def test_parts_lost_to_a_power_cycle_while_unreachable_are_flagged() -> None:
    """G: unknowable without retentive counters; the count says so."""
    f = Feed(MachineTracker(cfg(offline_after=1)))
    f.read(0, r(300, power_on=1))
    f.fail(5)  # unreachable: the machine made parts nobody read, then lost power
    f.read(60, r(4, power_on=2))
    c = counts(f.events)
    assert total(f)[0] == 4 and c[-1].reset and c[-1].possibly_lost


def test_parts_lost_to_a_power_cycle_across_a_job_change_are_flagged_naming_both_jobs() -> None:
    """F + G (the chaos run): the PLC lost power while unreachable, and the job changed meanwhile.
    The per-job counter splits what the PLC still shows exactly (all of the new job), but the lost
    parts were made before the power loss, under the old job or the new one: the loss was flagged on
    the new job alone, and the old job's missing parts were explained by nothing."""
    f = Feed(MachineTracker(cfg(offline_after=1)))
    f.read(0, Reading(state=1, good=300, job="A", job_good=12, power_on=1))
    f.fail(5)
    events = f.read(60, Reading(state=1, good=4, job="B", job_good=4, power_on=2))
    c = counts(events)
    assert [(x.job, x.job_from, x.good, x.possibly_lost) for x in c] == [("B", "A", 0, True), ("B", None, 4, False)]
    assert total(f)[0] == 4


def test_after_an_unobserved_window_only_the_new_jobs_parts_are_certain() -> None:
    """F (the chaos run): a job came and went while the gateway was down; the per-job counter says what
    the job shown now made, but the rest may be the old job's or the one in between: it spans the change
    instead of being booked to the old job."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, Reading(state=1, good=500, job="A", job_good=30))
    f.read(1, Reading(state=1, good=501, job="A", job_good=31))
    assert f.memory is not None
    g = Feed(MachineTracker(cfg(), f.memory))  # restarted: what happened meanwhile was not watched
    events = g.read(100, Reading(state=1, good=540, job="C", job_good=9))
    assert [(x.job, x.job_from, x.good) for x in counts(events)] == [("C", "A", 30), ("C", None, 9)]


def test_a_per_job_counter_not_yet_reset_at_a_job_change_says_nothing_about_the_new_job() -> None:
    """F (the chaos run): an OPC UA server wrote the new job number before resetting the per-job scrap
    counter; the reading that saw the job change still showed the old job's count, and the old job's
    scrap part was booked to the new job. A per-job value that continues the old one may not be reset."""
    f = Feed(MachineTracker(cfg()))
    f.read(0, Reading(state=1, good=500, scrap=20, job="3172", job_good=12, job_scrap=0))
    f.read(0.5, Reading(state=1, good=501, scrap=20, job="3172", job_good=13, job_scrap=0))  # counts go out
    f.read(1, Reading(state=1, good=501, scrap=21, job="3172", job_good=13, job_scrap=1))  # pending
    stale = f.read(1.5, Reading(state=2, good=501, scrap=21, job="3920", job_good=0, job_scrap=1))
    assert [(x.job, x.job_from, x.good, x.scrap) for x in counts(stale)] == [("3172", None, 0, 1)]  # seen before
    # the scrap part and the job change in one reading, the per-job counter still the old job's (0 + 1)
    g = Feed(MachineTracker(cfg()))
    g.read(0, Reading(state=1, good=500, scrap=20, job="3172", job_good=12, job_scrap=0))
    merged = g.read(1.5, Reading(state=2, good=500, scrap=21, job="3920", job_good=0, job_scrap=1))
    assert [(x.job, x.job_from, x.good, x.scrap) for x in counts(merged)] == [("3920", "3172", 0, 1)]
    # a per-job counter that was reset says so: the new job's parts are its own
    h = Feed(MachineTracker(cfg()))
    h.read(0, Reading(state=1, good=500, scrap=20, job="A", job_good=12, job_scrap=3))
    split = h.read(5, Reading(state=1, good=503, scrap=20, job="B", job_good=2, job_scrap=0))
    assert [(x.job, x.job_from, x.good) for x in counts(split)] == [("A", None, 1), ("B", None, 2)]


def test_a_preset_after_a_known_power_cycle_is_not_counted_as_parts() -> None:
    """The chaos run: the PLC was power-cycled (power-on counter +1) and its counters preset to 4214 and
    477 before the first read after it; counting the restarted counters from 0 made 4,691 parts."""
    f = Feed(MachineTracker(cfg(offline_after=1)))
    f.read(0, r(300, scrap=20, power_on=12))
    f.fail(5)
    events = f.read(10, r(4214, scrap=477, power_on=13))
    c = counts(events)
    assert [(x.good, x.scrap, x.reset, x.possibly_lost, x.rebased) for x in c] == [(0, 0, True, True, True)]
    f.read(12, r(4215, scrap=477, power_on=13))
    assert total(f) == (1, 0)


def test_a_late_answer_does_not_make_the_next_reads_parts_look_impossible() -> None:
    """Found in full CI runs: a read answered (or looked at) 0.5 s late, then the next read at once,
    made six real parts look impossible in no time: taken for a preset, re-based, lost. The PLC's value
    is from after the read was asked for, so the time that can have passed runs from the request."""
    from edge.counters import Context, Counter, Flags

    c = Counter(bits=16, min_cycle_time=0.05)
    flags = Flags()
    ctx = Context(power=None)
    c.observe(100, 0.0, 0.0, ctx, flags)
    # asked at 0.1, the answer (value 102) arrived 0.5 s late; asked again at once, 6 parts later
    assert c.observe(102, 0.6, 0.6, ctx, flags, sent=0.1) == 2
    assert c.observe(108, 0.62, 0.62, ctx, flags, sent=0.61) == 6
    assert c.suspect is None and not flags.rebased and c.pending == 8
    # without the request time the same reads were judged impossible (the old behaviour)
    old = Counter(bits=16, min_cycle_time=0.05)
    old_flags = Flags()
    old.observe(100, 0.0, 0.0, ctx, old_flags)
    old.observe(102, 0.6, 0.6, ctx, old_flags)
    assert old.observe(108, 0.62, 0.62, ctx, old_flags) == 0 and old.suspect == 108
