"""The gateway never stores what central would refuse (issue 10): PLC values outside the wire's bounds are
made to fit, and flagged, before the events are built (edge/wirefit.py)."""

from __future__ import annotations

from edge.readings import Reading
from edge.tracker import MachineTracker, TrackerConfig
from edge.wirefit import fit_int64, fit_reading
from plantpulse.protocol.models import INT64_MAX, CountEvent, EventBatch, MachineState, StateEvent

T = 1_800_000_000.0


def tracker() -> MachineTracker:
    return MachineTracker(TrackerConfig("m1", {1: MachineState.RUNNING, 3: MachineState.FAULT}, min_cycle_time=0.1,
                                        count_interval=1.0))


def test_values_past_the_bounds_are_fitted_and_flagged() -> None:
    reading, cut = fit_reading(Reading(state=3, fault_code=2**64 - 1, job="J" * 1000))
    assert cut and reading.job == "J" * 256 and reading.fault_code == -1
    assert fit_int64(2**63) == -(2**63) and fit_int64(INT64_MAX) == INT64_MAX
    plain = Reading(state=1, good=5, job="J1")
    assert fit_reading(plain) == (plain, False) and fit_reading(plain)[0] is plain
    assert fit_reading(Reading(state=2**70))[0].state == float(2**70)


def test_a_tracker_fed_a_long_job_and_a_64_bit_fault_emits_valid_events() -> None:
    t = tracker()
    t.on_reading(Reading(state=1, good=0, job="A"), T)
    out = t.on_reading(Reading(state=3, fault_code=2**63 + 5, good=2, job="B" * 500), T + 1)
    out.events += t.on_failure(T + 2, "e").events + t.on_failure(T + 3, "e").events
    out.events += t.on_failure(T + 4, "x" * 10_000).events  # the third failure: offline, with its reason
    states = [e for e in out.events if isinstance(e, StateEvent)]
    assert states[0].truncated and states[0].job == "B" * 256 and states[0].fault_code == 2**63 + 5 - 2**64
    assert any(isinstance(e, CountEvent) for e in out.events)
    assert states[-1].state is MachineState.OFFLINE and states[-1].reason == "x" * 256
    # every event passes the wire models again, as central reads them
    for seq, event in enumerate(out.events, 1):
        EventBatch.model_validate_json(EventBatch(edge_id="g", epoch="00000000-0000-4000-8000-000000000001",
                                                  sent_at=T, events=[event.model_copy(update={"seq": seq})])
                                       .model_dump_json())
