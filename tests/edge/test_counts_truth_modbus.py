"""Issue 11 against real simulated Modbus PLCs and the real collector: counts equal what the machines made.

Each test reproduces one defect an independent plant found (A, B, E, F, G; C is an OPC UA defect,
see test_counts_truth_opcua.py) with the simulator's control API, and compares what the gateway
counted with the ground truth: per machine, per job, with the flags the edge must set where a PLC
cannot say more. Counter presets and power cycles are made while the plant is paused where the
test needs the loss to be exactly known; where a loss is unavoidable (parts made while a PLC was
unreachable and then lost power), the truth says exactly which parts, and the test expects that.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.collection import STATES, Gateway, in_state
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.sinks import JsonlSink
from tests.fixtures.waiting import async_wait_until

PLANT = """
name: counts-modbus
seed: 31
speed: 10
min_state_duration: 0.3
control_port: 0
machines:
  - id: pre32
    protocol: modbus
    cycle_time: 6
    cycle_jitter: 0
    scrap_rate: 0.1
    job_quantity: [100000, 100000]
    counter: {bits: 32, good_start: 60000}
  - id: pre16
    protocol: modbus
    cycle_time: 6
    cycle_jitter: 0
    scrap_rate: 0.3
    job_quantity: [100000, 100000]
    counter: {bits: 16, good_start: 100, scrap_start: 60000}
  - id: jobs
    protocol: modbus
    cycle_time: 6
    cycle_jitter: 0
    scrap_rate: 0.2
    auto_jobs: false
    counter: {bits: 16, good_start: 5000}
  - id: lost
    protocol: modbus
    cycle_time: 3
    cycle_jitter: 0
    scrap_rate: 0
    job_quantity: [100000, 100000]
    counter: {bits: 16, good_start: 1000}
"""
CYCLE = 0.6  # wall seconds per part (cycle_time 6 at speed 10)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedPlant]:
    p = SimulatedPlant(Path(tmp_path_factory.mktemp("counts-modbus")), PLANT).start()
    yield p
    p.stop()


def machine_yaml(plant: SimulatedPlant, mid: str, *, as_id: str | None = None, poll: float = 0.1,
                 power_on: bool = True, per_job: bool = False) -> str:
    """The gateway's view of a machine; ``min_cycle_time`` a little under its real cycle, as configured in a plant.

    (A looser one lets a small preset pass for production: a residual docs/edge.md states.)
    """
    ep = plant.endpoint(mid)
    min_cycle = 0.25 if mid == "lost" else 0.5
    kind = "uint32" if mid == "pre32" else "uint16"
    return f"""
  - id: {as_id or mid}
    protocol: modbus
    host: 127.0.0.1
    port: {ep["port"]}
    unit_id: {ep["unit_id"]}
    poll_interval: {poll}
    timeout: 0.3
    offline_after: 2
    retry_max: 0.5
    min_cycle_time: {min_cycle}
    state_map: {STATES}
    tags:
      state: {{address: 0}}
      fault_code: {{address: 1}}
      good_count: {{address: 2, type: {kind}}}
      scrap_count: {{address: 4, type: {kind}}}
      job: {{address: 6}}
""" + ("      power_on_count: {address: 7}\n" if power_on else "") + (
        "      job_good_count: {address: 10}\n      job_scrap_count: {address: 11}\n" if per_job else "")


def raw_is(gw: Gateway, mid: str, good: int | None = None, scrap: int | None = None) -> bool:
    s = gw.snapshot(mid)
    return (good is None or s.good_raw == good) and (scrap is None or s.scrap_raw == scrap)


@pytest.mark.slow
async def test_downward_presets_are_presets_not_power_cycle_resets(plant: SimulatedPlant) -> None:
    """A: good 65580 -> 65530 (32-bit) was counted +65,544 as a reset; scrap 65535 -> 65533 (16-bit) +65,533."""
    since = plant.pause()
    gw = Gateway(machine_yaml(plant, "pre32") + machine_yaml(plant, "pre16")).start()
    try:
        for mid in ("pre32", "pre16"):
            await gw.wait_read(mid, plant)
        plant.act("pre32", "counter", {"good": 65580})
        plant.act("pre16", "counter", {"scrap": 65535})
        await async_wait_until(lambda: all(any(e.rebased for e in gw.count_events(m)) for m in ("pre32", "pre16")),
                               10, what="the gateway accepted the first presets (the values presets start from)")
        plant.act("pre32", "counter", {"good": 65530})
        plant.act("pre16", "counter", {"scrap": 65533})
        await async_wait_until(lambda: raw_is(gw, "pre32", good=65530) and raw_is(gw, "pre16", scrap=65533), 10,
                               what="the gateway read the presets down")
        plant.resume()
        await async_wait_until(lambda: gw.counts("pre32")[0] >= 5 and sum(gw.counts("pre16")) >= 5, 30,
                               what="parts counted after the presets")
        until = plant.pause()
        for mid in ("pre32", "pre16"):
            await gw.settle(plant, mid)
    finally:
        await gw.stop()
        plant.resume()
    for mid in ("pre32", "pre16"):
        events = gw.count_events(mid)
        assert gw.counts(mid) == gw.expected(plant, mid, since, until), mid
        assert any(e.rebased for e in events) and not any(e.reset or e.possibly_lost for e in events), mid
    assert len(plant.truth("pre32", since)["presets"]) == 2


@pytest.mark.slow
async def test_a_preset_on_a_machine_faster_than_the_poll_keeps_the_parts_after_it(plant: SimulatedPlant) -> None:
    """B: polled every second, a 0.6 s machine makes a part before the read that confirms a preset;
    re-based at the confirming value, that part was lost."""
    mid = "pre32"
    since = plant.pause()
    gw = Gateway(machine_yaml(plant, mid, poll=1.0)).start()
    try:
        await gw.wait_read(mid, plant)
        target = plant.machine(mid)["good_counter"] + 50_000
        plant.act(mid, "counter", {"good": target})
        await async_wait_until(lambda: raw_is(gw, mid, good=target), 5, interval=0.01, what="the preset read")
        plant.resume()  # the next read is about a second later: a part (0.6 s) is made before it
        await async_wait_until(lambda: gw.counts(mid)[0] >= 3, 20, what="parts after the preset")
        until = plant.pause()
        await gw.settle(plant, mid)
    finally:
        await gw.stop()
        plant.resume()
    assert gw.counts(mid) == gw.expected(plant, mid, since, until)
    assert any(e.rebased for e in gw.count_events(mid))


@pytest.mark.slow
async def test_a_power_cycle_while_unreachable_loses_only_what_was_made_before_the_power_loss(
    plant: SimulatedPlant,
) -> None:
    """G (and E): the PLC is cut off, keeps making parts, loses power, makes parts again, comes back.

    What it made between the cut and the power loss is gone from its counters: the count misses
    exactly those parts and says so (reset, possibly_lost), with and without a power-on counter.
    """
    mid = "lost"
    since = plant.pause()
    with_power = Gateway(machine_yaml(plant, mid)).start()
    without = Gateway(machine_yaml(plant, mid, as_id="lost-np", power_on=False)).start()
    try:
        await with_power.wait_read(mid, plant)
        await without.wait_read("lost-np", plant, plant_id=mid)
        plant.act(mid, "unreachable", {"mode": "refuse"})
        for gw, gid in ((with_power, mid), (without, "lost-np")):
            await async_wait_until(lambda gw=gw, gid=gid: not gw.health(gid).reachable, 10, what="cut off")
        cut = plant.resume()
        await async_wait_until(lambda: len(plant.truth(mid, cut)["parts"]) >= 4, 20, what="parts while unreachable")
        plant.act(mid, "power-cycle", {"off_seconds": 0.5})
        await async_wait_until(lambda: plant.machine(mid)["powered"] and plant.machine(mid)["good_counter"] >= 3, 20,
                               what="parts after the power-up, still unreachable")
        plant.act(mid, "reachable")
        for gw, gid in ((with_power, mid), (without, "lost-np")):
            await async_wait_until(in_state(gw, gid, None), 15, what=f"{gid} back")
        until = plant.pause()
        await with_power.settle(plant, mid)
        await without.settle(plant, "lost-np", plant_id=mid)
    finally:
        await with_power.stop()
        await without.stop()
        plant.resume()
    truth = plant.truth(mid, since)
    (cycle,) = truth["power_cycles"]
    lost = sum(1 for p in truth["parts"] if cut <= p["ts"] <= cycle["off_ts"])  # scrap_rate 0: all good
    assert lost >= 4
    for gw, gid in ((with_power, mid), (without, "lost-np")):
        good, scrap = gw.expected(plant, gid, since, until, plant_id=mid)
        assert gw.counts(gid) == (good - lost, scrap), gid
        assert any(e.reset and e.possibly_lost for e in gw.count_events(gid)), gid


@pytest.mark.slow
async def test_parts_around_job_changes_are_never_booked_to_the_wrong_job(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    """F: a job changed while no gateway was connected, and a job changed while running (parts of both
    jobs in the read that sees the change). With a per-job counter every part is booked to its job;
    without one, the parts of those reads go out marked ``job_from``; never to the wrong job."""
    mid = "jobs"
    plant.act(mid, "job", {"number": 11, "quantity": 10_000, "setup_time": 0})
    configs = {"plain": machine_yaml(plant, mid, poll=1.0), "per_job": machine_yaml(plant, mid, poll=1.0, per_job=True)}
    sinks = {name: JsonlSink(tmp_path / f"{name}.jsonl") for name in configs}
    since = plant.pause()
    gws = {name: Gateway(configs[name], sinks[name]).start() for name in configs}
    try:
        for gw in gws.values():
            await gw.wait_read(mid, plant)
        plant.resume()
        await async_wait_until(lambda: all(gw.counts(mid)[0] >= 3 for gw in gws.values()), 20, what="job 11 counted")
        for gw in gws.values():
            await gw.stop()
        plant.act(mid, "job", {"number": 12, "quantity": 10_000, "setup_time": 0})  # no gateway is connected
        await async_wait_until(lambda: plant.machine(mid)["job_good"] >= 3, 20, what="parts of job 12")
        gws = {name: Gateway(configs[name], sinks[name]).start() for name in configs}  # restarted from memory
        for gw in gws.values():
            await async_wait_until(lambda gw=gw: gw.health(mid).reads > 0, 20, what="first read after the restart")
        await async_wait_until(lambda: plant.machine(mid)["job_good"] >= 5, 20, what="more parts of job 12")
        plant.act(mid, "job", {"number": 13, "quantity": 10_000, "setup_time": 0})  # while polled every second
        await async_wait_until(lambda: plant.machine(mid)["job_good"] >= 3, 20, what="parts of job 13")
        until = plant.pause()
        for gw in gws.values():
            await gw.settle(plant, mid)
    finally:
        for gw in gws.values():
            await gw.stop()
        plant.resume()
    truth = {job: (n["good"], n["scrap"]) for job, n in plant.truth(mid, since)["by_job"].items()}
    parts = [p for p in plant.truth(mid, since)["parts"] if p["ts"] <= until]
    made = {job: (sum(p["good"] for p in parts if str(p["job"]) == job),
                  sum(not p["good"] for p in parts if str(p["job"]) == job)) for job in truth}
    assert set(made) == {"11", "12", "13"}
    booked = {name: by_job([e for e in sinks[name].events() if e.kind == "count"]) for name in sinks}
    assert booked["per_job"] == (made, {})  # exact: every part to its own job
    plain, spanning = booked["plain"]
    assert set(spanning) <= {("12", "11"), ("13", "12")} and spanning  # around the two changes, said so
    for job, (good, scrap) in plain.items():
        assert good <= made[job][0] and scrap <= made[job][1], f"job {job}: booked {plain[job]}, made {made[job]}"
    assert add(*plain.values(), *spanning.values()) == add(*made.values())


def by_job(events: list[object]) -> tuple[dict[str, tuple[int, int]], dict[tuple[str, str], tuple[int, int]]]:
    """Counts booked to one job, and counts spanning a change (job, job_from)."""
    booked: dict[str, tuple[int, int]] = {}
    spanning: dict[tuple[str, str], tuple[int, int]] = {}
    for e in events:
        job, job_from, good, scrap = (getattr(e, name) for name in ("job", "job_from", "good", "scrap"))
        if job_from is None:
            booked[job] = add(booked.get(job, (0, 0)), (good, scrap))
        else:
            spanning[(job, job_from)] = add(spanning.get((job, job_from), (0, 0)), (good, scrap))
    return {j: n for j, n in booked.items() if n != (0, 0)}, spanning


def add(*pairs: tuple[int, int]) -> tuple[int, int]:
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
