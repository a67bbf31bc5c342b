"""Issue 11 against real simulated OPC UA servers and the real collector (subscriptions).

A subscription only says something when a value changes, which is what made defects B and C
OPC UA defects: the read that confirms a preset is the next part, and the last parts before a
pause had nobody to carry them out. E (a power cycle near the counter's wrap) is here too: a
power cycle kills the session, so the first values after it follow an unobserved window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.collection import STATES, Gateway, in_state
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.waiting import async_wait_until

PLANT = """
name: counts-opcua
seed: 47
speed: 10
min_state_duration: 0.3
control_port: 0
machines:
  - id: burst
    protocol: opcua
    cycle_time: 3
    cycle_jitter: 0
    scrap_rate: 0.2
    job_quantity: [100000, 100000]
    pauses: {every: 12, duration: 200}
    counter: {bits: 32}
  - id: slow
    protocol: opcua
    cycle_time: 8
    cycle_jitter: 0
    scrap_rate: 0
    job_quantity: [100000, 100000]
    counter: {bits: 32, good_start: 40}
  - id: uawrap
    protocol: opcua
    cycle_time: 4
    cycle_jitter: 0
    scrap_rate: 0
    auto_jobs: false
    counter: {bits: 16, good_start: 65530}
"""
NS = "urn:plantpulse:simulator"
COUNT_INTERVAL = 1.0  # the Gateway fixture's
COALESCE = 1.0  # edge/collectors/opcua_config.py COUNTS_ONLY_EVERY


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedPlant]:
    p = SimulatedPlant(Path(tmp_path_factory.mktemp("counts-opcua")), PLANT).start()
    yield p
    p.stop()


def opcua_yaml(plant: SimulatedPlant, mid: str, *, as_id: str | None = None, power_on: bool = True,
               min_cycle: float = 0.2) -> str:
    bits = 16 if mid == "uawrap" else 32
    return f"""
  - id: {as_id or mid}
    protocol: opcua
    endpoint: {plant.endpoint(mid)["endpoint"]}
    namespace_uri: {NS}
    publishing_interval: 0.1
    sampling_interval: 0.05
    keepalive_interval: 0.5
    timeout: 1.0
    retry_max: 0.5
    min_cycle_time: {min_cycle}
    state_map: {STATES}
    tags:
      state: s={mid}.State
      fault_code: s={mid}.FaultCode
      good_count: {{node: s={mid}.GoodCount, bits: {bits}}}
      scrap_count: {{node: s={mid}.ScrapCount, bits: {bits}}}
      job: s={mid}.JobNumber
""" + (f"      power_on_count: s={mid}.PowerOnCount\n" if power_on else "")


@pytest.mark.slow
async def test_parts_before_a_pause_are_reported_within_the_count_interval(plant: SimulatedPlant) -> None:
    """C: a subscription delivers nothing while nothing changes: the last parts before a pause waited
    for the next part (in the field: 2-30 parts still owed 90 s after production stopped).

    The count interval is longer than the collector's coalescing (as in the field, 20 s against 1 s),
    so parts reach the tracker before they are due: only time can carry them out.
    """
    mid = "burst"
    interval = 4.0
    since = plant.pause()
    gw = Gateway(opcua_yaml(plant, mid), count_interval=interval).start()
    try:
        await gw.wait_read(mid, plant)
        plant.resume()
        await async_wait_until(lambda: plant.truth(mid, since)["pauses"], 20, what="the machine pauses")
        pause = plant.truth(mid, since)["pauses"][0]
        made = sum(1 for p in plant.truth(mid, since)["parts"] if p["ts"] <= pause["ts"])
        bound = COALESCE + interval + 0.1 + 1.0  # coalescing, count interval, publishing, scheduling slack
        assert time.time() < pause["end"] - bound, "the pause is long enough for the check"
        counted_at = await async_wait_until(
            lambda: time.time() if sum(gw.counts(mid)) == made + sum(gw.lag[mid]) else None,
            max(0.1, pause["ts"] + bound - time.time()), interval=0.02, what="every part before the pause counted",
        )
    finally:
        await gw.stop()
    delay = counted_at - pause["ts"]
    print(f"last parts before a pause counted {delay:.2f} s after it began (bound {bound:.1f} s)")
    assert delay <= bound


@pytest.mark.slow
async def test_a_preset_confirmed_by_the_next_notification_loses_no_part(plant: SimulatedPlant) -> None:
    """B: the value confirming a preset arrives with the next part; re-based there, that part was lost."""
    mid = "slow"
    since = plant.pause()
    gw = Gateway(opcua_yaml(plant, mid, min_cycle=0.5)).start()
    try:
        await gw.wait_read(mid, plant)
        await gw.settle(plant, mid)
        target = plant.machine(mid)["good_counter"] + 100_000
        plant.act(mid, "counter", {"good": target})
        await async_wait_until(lambda: gw.snapshot(mid).good_raw == target, 10, what="the preset notified")
        plant.resume()
        await async_wait_until(lambda: plant.machine(mid)["good_counter"] >= target + 3, 20, what="parts after it")
        until = plant.pause()
        await gw.settle(plant, mid)
        await async_wait_until(lambda: gw.counts(mid) == gw.expected(plant, mid, since, until),
                               COUNT_INTERVAL + COALESCE + 2, what="the parts after the preset counted")
    finally:
        await gw.stop()
        plant.resume()
    assert any(e.rebased for e in gw.count_events(mid))


@pytest.mark.slow
async def test_a_power_cycle_near_the_wrap_is_a_reset_not_a_rollover(plant: SimulatedPlant) -> None:
    """E: a 16-bit counter at 65530 power-cycled to 0 was counted as a rollover (+6 parts never made)."""
    mid = "uawrap"  # parked at 65530, waiting for a job
    since = plant.pause()
    with_power = Gateway(opcua_yaml(plant, mid)).start()
    without = Gateway(opcua_yaml(plant, mid, as_id="uawrap-np", power_on=False)).start()
    gateways = ((with_power, mid), (without, "uawrap-np"))
    try:
        await with_power.wait_read(mid, plant)
        await without.wait_read("uawrap-np", plant, plant_id=mid)
        assert with_power.snapshot(mid).good_raw == 65530
        plant.act(mid, "power-cycle", {"off_seconds": 1.0})
        for gw, gid in gateways:
            back = in_state(gw, gid, None)
            await async_wait_until(lambda gw=gw, gid=gid, back=back: back() and gw.snapshot(gid).good_raw == 0, 20,
                                   what=f"{gid} back after the power cycle")
        plant.resume()
        plant.act(mid, "job", {"number": 7, "quantity": 1000, "setup_time": 0})
        await async_wait_until(lambda: plant.machine(mid)["good_counter"] >= 3, 20, what="parts after the power-up")
        until = plant.pause()
        for gw, gid in gateways:
            await gw.settle(plant, gid, plant_id=mid)
        for gw, gid in gateways:
            await async_wait_until(lambda gw=gw, gid=gid: gw.counts(gid) == gw.expected(plant, gid, since, until, mid),
                                   COUNT_INTERVAL + COALESCE + 2, what=f"{gid} counted the parts after the power-up")
    finally:
        for gw, _gid in gateways:
            await gw.stop()
        plant.resume()
    for gw, gid in gateways:
        assert any(e.reset for e in gw.count_events(gid)), gid
