"""The machine model alone: pure logic with time passed in, no servers, no sleeping."""

from __future__ import annotations

import itertools
import math

import pytest

from simulators.config import MachineConfig, parse_plant
from simulators.facts import PartFact, PauseFact, PowerCycleFact, PresetFact, RawState, StateFact
from simulators.model import MachineModel

T0 = 1_800_000_000.0


def machine(**overrides: object) -> MachineConfig:
    base: dict[str, object] = {
        "id": "m1", "protocol": "modbus", "cycle_time": 10.0, "cycle_jitter": 0.0, "scrap_rate": 0.0,
        "setup_time": 60.0, "idle_between_jobs": 30.0, "job_quantity": [5, 5],
    }
    base.update(overrides)
    return MachineConfig.model_validate(base)


def run(model: MachineModel, until: float, step: float = 0.37) -> list[object]:
    """Advance in uneven steps, as a real loop would wake up late."""
    facts: list[object] = []
    t = T0
    while t < until:
        t = min(until, t + step)
        facts.extend(model.advance(t))
    return facts


def test_same_seed_same_plant() -> None:
    cfg = machine(
        cycle_jitter=0.3, scrap_rate=0.1, job_quantity=[3, 9], faults={"mtbf": 200, "mttr": 40, "codes": {7: 1, 9: 2}}
    )
    a = MachineModel(cfg, plant_seed=42, speed=10, min_state=0.2, now=T0)
    b = MachineModel(cfg, plant_seed=42, speed=10, min_state=0.2, now=T0)
    fa = [a.advance(T0)] + [a.advance(T0 + i * 0.5) for i in range(1, 400)]
    fb = [b.advance(T0), b.advance(T0 + 200)]  # one big step instead of many small ones
    flat_a = [f for batch in fa for f in batch]
    flat_b = [f for batch in fb for f in batch]
    assert flat_a == flat_b
    kinds = {type(f).__name__ for f in flat_a}
    assert kinds == {"StateFact", "PartFact"}
    states = {f.state for f in flat_a if isinstance(f, StateFact)}
    assert states == {RawState.RUNNING, RawState.IDLE, RawState.SETUP, RawState.FAULT}
    other = MachineModel(cfg, plant_seed=43, speed=10, min_state=0.2, now=T0)
    assert [f for batch in [other.advance(T0 + 200)] for f in batch] != flat_b


def test_parts_at_the_configured_rate() -> None:
    model = MachineModel(machine(job_quantity=[1000, 1000]), plant_seed=1, speed=5, min_state=0.0, now=T0)
    facts = model.advance(T0 + 100)  # 500 plant seconds at 10 s per part
    parts = [f for f in facts if isinstance(f, PartFact)]
    assert len(parts) == 50
    assert parts[0].ts == pytest.approx(T0 + 2.0)
    assert all(p.cycle_time == 10.0 for p in parts)
    assert model.values().good_counter == 50


def test_jitter_only_slows_down() -> None:
    model = MachineModel(
        machine(job_quantity=[1000, 1000], cycle_jitter=0.2), plant_seed=1, speed=1, min_state=0.0, now=T0
    )
    parts = [f for f in model.advance(T0 + 10_000) if isinstance(f, PartFact)]
    assert all(10.0 <= p.cycle_time < 12.0 for p in parts)
    assert 800 < len(parts) < 1000


def test_job_cycle_runs_setup_idle_and_changes_job() -> None:
    model = MachineModel(machine(), plant_seed=3, speed=1, min_state=0.0, now=T0)
    facts = model.advance(T0 + 500)
    states = [(f.state, f.job) for f in facts if isinstance(f, StateFact)]
    assert states[0][0] == RawState.RUNNING
    assert states[1][0] == RawState.IDLE
    assert states[2][0] == RawState.SETUP
    assert states[2][1] != states[0][1]  # the job number changes when the changeover starts
    first_job_parts = [f for f in facts if isinstance(f, PartFact) and f.job == states[0][1]]
    assert len(first_job_parts) == 5


def test_scrap_makes_extra_cycles() -> None:
    model = MachineModel(machine(scrap_rate=0.5, job_quantity=[20, 20]), plant_seed=5, speed=1, min_state=0, now=T0)
    facts = model.advance(T0 + 1000)
    first_job = [f for f in facts if isinstance(f, PartFact)][:30]
    good = sum(1 for f in first_job if f.good)
    assert good >= 10
    values = model.values()
    assert values.good_total + values.scrap_total == len([f for f in facts if isinstance(f, PartFact)])


def test_counter_rolls_over_at_its_width() -> None:
    cfg = machine(job_quantity=[100, 100], counter={"bits": 16, "good_start": 65533})
    model = MachineModel(cfg, plant_seed=1, speed=1, min_state=0.0, now=T0)
    model.advance(T0 + 55)  # 5 parts
    assert model.values().good_counter == 2  # 65533 + 5 = 65538 = 2 (mod 65536)
    assert model.values().good_total == 5


def test_32_bit_counter_does_not_roll_at_16_bits() -> None:
    cfg = machine(job_quantity=[100, 100], counter={"bits": 32, "good_start": 65533})
    model = MachineModel(cfg, plant_seed=1, speed=1, min_state=0.0, now=T0)
    model.advance(T0 + 55)
    assert model.values().good_counter == 65538


def test_faults_happen_and_clear_on_their_own() -> None:
    cfg = machine(job_quantity=[10_000, 10_000], faults={"mtbf": 100, "mttr": 20, "codes": {42: 1}})
    model = MachineModel(cfg, plant_seed=9, speed=1, min_state=0.0, now=T0)
    facts = model.advance(T0 + 2000)
    seq = [f for f in facts if isinstance(f, StateFact)]
    faults = [f for f in seq if f.state == RawState.FAULT]
    assert 8 < len(faults) < 40
    assert all(f.fault_code == 42 for f in faults)
    for fault, after in itertools.pairwise(seq):
        if fault.state == RawState.FAULT:
            assert after.state == RawState.RUNNING and after.fault_code == 0
    # no part is finished while faulted
    for f in facts:
        if isinstance(f, PartFact):
            assert not any(a.ts < f.ts < b.ts for a, b in itertools.pairwise(seq) if a.state == RawState.FAULT)


def test_min_state_duration_bounds_every_state() -> None:
    cfg = machine(cycle_time=1, setup_time=1, idle_between_jobs=1, job_quantity=[1, 2],
                  faults={"mtbf": 5, "mttr": 1, "codes": {1: 1}})
    model = MachineModel(cfg, plant_seed=2, speed=100, min_state=0.5, now=T0)
    facts = run(model, T0 + 60, step=0.05)
    seq = [f for f in facts if isinstance(f, StateFact)]
    assert len(seq) > 20
    durations = [b.ts - a.ts for a, b in itertools.pairwise(seq)]
    assert min(durations) >= 0.5 - 1e-9


def test_manual_fault_until_clear() -> None:
    model = MachineModel(machine(job_quantity=[100, 100]), plant_seed=1, speed=1, min_state=0.0, now=T0)
    model.advance(T0 + 25)
    facts = model.fault(T0 + 25, 300)
    assert facts == [StateFact("m1", T0 + 25, RawState.FAULT, 300, model.job)]
    assert model.next_event_at == math.inf
    assert model.advance(T0 + 10_000) == []
    cleared = model.clear(T0 + 10_000)
    assert cleared[0].state == RawState.RUNNING  # type: ignore[union-attr]
    # the cycle interrupted by the fault starts again
    parts = [f for f in model.advance(T0 + 10_010) if isinstance(f, PartFact)]
    assert parts[0].ts == pytest.approx(T0 + 10_010)


def test_power_cycle_resets_counters_and_counts_power_ons() -> None:
    cfg = machine(job_quantity=[100, 100], counter={"bits": 32, "good_start": 5000})
    model = MachineModel(cfg, plant_seed=1, speed=1, min_state=0.0, now=T0)
    model.advance(T0 + 35)
    assert model.values().good_counter == 5003
    model.power_off(T0 + 35)
    assert model.advance(T0 + 100) == []  # nothing happens without power
    facts = model.power_on(T0 + 100)
    assert any(isinstance(f, PowerCycleFact) and f.power_on_count == 2 for f in facts)
    v = model.values()
    assert (v.good_counter, v.scrap_counter, v.power_on_count, v.good_total) == (0, 0, 2, 3)
    model.advance(T0 + 120)
    assert model.values().good_counter == 2
    assert model.state == RawState.RUNNING


def test_pause_freezes_and_resume_continues_the_same_sequence() -> None:
    cfg = machine(cycle_jitter=0.2, scrap_rate=0.2, job_quantity=[3, 8],
                  faults={"mtbf": 100, "mttr": 20, "codes": {1: 1, 2: 1}})
    plain = MachineModel(cfg, plant_seed=4, speed=1, min_state=0.0, now=T0)
    paused = MachineModel(cfg, plant_seed=4, speed=1, min_state=0.0, now=T0)
    plain_facts = plain.advance(T0 + 1000)
    first = paused.pause(T0 + 300)
    assert paused.advance(T0 + 5000) == []
    rest = paused.resume(T0 + 5000) + paused.advance(T0 + 5700)
    shifted = [f for f in rest]
    assert [(type(f), getattr(f, "good", None), getattr(f, "state", None)) for f in first + shifted] == [
        (type(f), getattr(f, "good", None), getattr(f, "state", None)) for f in plain_facts
    ]


def test_auto_jobs_off_waits_for_an_outside_job() -> None:
    model = MachineModel(machine(auto_jobs=False), plant_seed=1, speed=1, min_state=0.0, now=T0)
    assert model.advance(T0 + 1000) == [StateFact("m1", T0, RawState.IDLE, 0, 0)]
    facts = model.start_job(T0 + 1000, number=77, quantity=2, setup_time=20)
    assert facts == [StateFact("m1", T0 + 1000, RawState.SETUP, 0, 77)]
    facts = model.advance(T0 + 1100)
    assert [f.state for f in facts if isinstance(f, StateFact)] == [RawState.RUNNING, RawState.IDLE]
    assert sum(1 for f in facts if isinstance(f, PartFact)) == 2
    assert model.next_event_at == math.inf  # waits for the next job from outside


def test_a_preset_sets_the_counters_and_makes_no_parts() -> None:
    cfg = machine(job_quantity=[100, 100], counter={"bits": 16, "good_start": 65000})
    model = MachineModel(cfg, plant_seed=1, speed=1, min_state=0.0, now=T0)
    model.advance(T0 + 25)
    before = model.values()
    assert before.good_counter == 65002
    facts = model.preset(T0 + 25, good=65533, scrap=65535)
    assert facts == [PresetFact("m1", T0 + 25, "good", 65002, 65533), PresetFact("m1", T0 + 25, "scrap", 0, 65535)]
    v = model.values()
    assert (v.good_counter, v.scrap_counter, v.good_total) == (65533, 65535, before.good_total)
    model.advance(T0 + 55)
    assert model.values().good_counter == (65533 + 3) % 65536  # counts on from the preset, wrapping
    with pytest.raises(ValueError, match="16-bit"):
        model.preset(T0 + 60, good=65536)


def test_per_job_counters_restart_at_each_job_change_and_power_up() -> None:
    cfg = machine(scrap_rate=0.3, job_quantity=[4, 4], setup_time=10, idle_between_jobs=0, counter={"bits": 32})
    model = MachineModel(cfg, plant_seed=3, speed=1, min_state=0.0, now=T0)
    made: dict[int, list[int]] = {}
    for t in range(1, 400):
        for f in model.advance(T0 + t):
            if isinstance(f, PartFact):
                made.setdefault(f.job, [0, 0])[0 if f.good else 1] += 1
        v = model.values()
        assert [v.job_good, v.job_scrap] == made.get(v.job, [0, 0])  # what this job made so far
    assert len(made) > 3
    model.start_job(T0 + 400, number=5, quantity=9, setup_time=0)
    assert (model.values().job, model.values().job_good, model.values().job_scrap) == (5, 0, 0)
    model.advance(T0 + 450)
    assert model.values().job_good + model.values().job_scrap > 0
    model.power_off(T0 + 450)
    model.power_on(T0 + 451)
    assert (model.values().job_good, model.values().job_scrap) == (0, 0)


def test_unreported_pauses_stop_parts_and_keep_the_state() -> None:
    cfg = machine(job_quantity=[100, 100], pauses={"every": 3, "duration": 100})
    model = MachineModel(cfg, plant_seed=1, speed=1, min_state=0.0, now=T0)
    facts = model.advance(T0 + 200)
    parts = [f.ts for f in facts if isinstance(f, PartFact)]
    assert parts[:5] == pytest.approx([T0 + 10, T0 + 20, T0 + 30, T0 + 140, T0 + 150])  # 3 parts, 100 s pause
    assert next(f for f in facts if isinstance(f, PauseFact)) == PauseFact("m1", T0 + 30, T0 + 130)
    assert {f.state for f in facts if isinstance(f, StateFact)} == {RawState.RUNNING}  # the PLC shows no pause


def test_demo_plant_file_is_valid() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "simulators/plants/demo.yaml").read_text()
    plant = parse_plant(text)
    assert len(plant.machines) >= 8
    assert {m.protocol for m in plant.machines} == {"modbus", "opcua"}
    assert any(m.counter.bits == 16 and m.counter.good_start > 65000 for m in plant.machines)


@pytest.mark.parametrize("action", ["fault", "maintenance", "setup", "clear", "job", "preset", "power_off"])
def test_a_part_due_when_a_control_action_comes_is_in_the_facts(action: str) -> None:
    """Found by the chaos run of issue 11: an action's own catch-up fired the part that was due (the
    counter rose) but dropped its fact, so the ground truth missed a part the PLC showed."""
    model = MachineModel(machine(job_quantity=[100, 100]), plant_seed=1, speed=1, min_state=0.0, now=T0)
    assert not any(isinstance(f, PartFact) for f in model.advance(T0 + 5))  # mid-cycle; the part is due at T0 + 10
    now = T0 + 10.5  # the action comes before the loop wakes for the part
    calls = {
        "fault": lambda: model.fault(now, 7), "maintenance": lambda: model.maintenance(now),
        "setup": lambda: model.setup(now), "clear": lambda: model.clear(now),
        "job": lambda: model.start_job(now, 42, 5, 0), "preset": lambda: model.preset(now, good=500),
        "power_off": lambda: model.power_off(now),
    }
    facts = calls[action]()
    parts = [f for f in facts if isinstance(f, PartFact)]
    assert [p.ts for p in parts] == [T0 + 10] and model.good_total == 1
