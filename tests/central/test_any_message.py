"""Central survives any message (issue 10): every field of every message at its boundaries, attacks on a
real gateway's topic while it runs, and a message that makes central itself fail.

The publisher is a hand-made MQTT client on purpose: a real gateway never sends these. What every test
asserts is the same: central stays healthy, each bad message is dead-lettered (once) and acknowledged to
the broker (a restart does not bring it back), and the valid traffic around it is applied exactly.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from plantpulse.protocol.models import Health, Snapshot, Status
from tests.fixtures.line import central_line, plant_yaml
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.probe import publisher, send
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow

NAN, INF = float("nan"), float("inf")
BOUNDARIES: list[object] = [0, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**70, -(2**70), 1e20, NAN, INF, -INF,
                            "x" * 256, "x" * 257, "x" * 100_000, "", None, True, [], {}]




def dumps(message: dict[str, Any]) -> str:
    """JSON as a careless producer writes it: NaN and Infinity as bare tokens (Python's default)."""
    return json.dumps(message, allow_nan=True)


# --------------------------------------------------------------------------- the generated walk
def bases(edge_id: str, epoch: str, now: float) -> dict[str, dict[str, Any]]:
    """One valid message per type with every optional field set, so that the walk reaches every field."""
    dropped = {"epoch": epoch, "first": 900, "last": 905, "count": 6, "start_ts": now, "end_ts": now,
               "reason": "buffer_full"}
    return {
        "state": {"v": 1, "edge_id": edge_id, "epoch": epoch, "sent_at": now, "events": [
            {"kind": "state", "seq": 1, "machine_id": "m1", "ts": now, "state": "fault", "fault_code": 7,
             "job": "J1", "raw": 3, "reason": "r"}]},
        "count": {"v": 1, "edge_id": edge_id, "epoch": epoch, "sent_at": now, "events": [
            {"kind": "count", "seq": 2, "machine_id": "m1", "start": now - 1, "ts": now, "good": 1, "scrap": 0,
             "job": "J1", "job_from": "J0", "reset": False, "possibly_lost": False, "rebased": False,
             "absorbed": [3]}]},
        "status": {"v": 1, "edge_id": edge_id, "online": True, "birth": 5, "ts": now, "version": "0.1",
                   "config_hash": "abc", "machines": ["m1"], "epoch": epoch, "oldest_seq": 1, "latest_seq": 3,
                   "dropped": [dropped]},
        "health": {"v": 1, "edge_id": edge_id, "ts": now, "epoch": epoch, "buffer_events": 1, "buffer_bytes": 10,
                   "oldest_unconfirmed_age": 1.0, "oldest_seq": 1, "latest_seq": 3, "confirmed_seq": 0,
                   "coalesced_total": 0, "dropped_total": 0, "dropped": [dropped],
                   "machines": [{"machine_id": "m1", "reachable": True, "state": "running", "poll_p50_ms": 1.0,
                                 "poll_p99_ms": 2.0, "read_errors": 0, "reads": 1}]},
        "snapshot": {"v": 1, "edge_id": edge_id, "ts": now, "machines": [
            {"machine_id": "m1", "ts": now, "reachable": True, "state": "running", "fault_code": 0, "job": "J",
             "good_raw": 1, "scrap_raw": 0, "power_on": 1}]},
    }


def leaves(value: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths to every number, string and boolean in a message (``v``, ``kind`` and ids included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, (*path, i))
    else:
        yield path


def replaced(message: dict[str, Any], path: tuple[Any, ...], new: object) -> dict[str, Any]:
    out = json.loads(json.dumps(message))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return out


CHANNEL = {"state": "events", "count": "events", "status": "status", "health": "health", "snapshot": "snapshot"}
MODEL: dict[str, type[BaseModel]] = {"status": Status, "health": Health, "snapshot": Snapshot}


def valid(kind: str, message: dict[str, Any]) -> bool:
    """What the protocol accepts (events are read one by one, so an events case is valid if its event is)."""
    from plantpulse.protocol.batch import read_batch

    text = dumps(message)
    try:
        if kind in ("state", "count"):
            return not read_batch(text).refused
        MODEL[kind].model_validate_json(text)
    except ValidationError:
        return False
    return True


def test_every_field_of_every_message_at_its_boundaries(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
) -> None:
    central = central_factory(mosquitto, site="s", ingest={"hold_max_age": 60})
    # two thousand made-up gateways: the tests' superuser stands in for each (the broker's ACL is not
    # what is tested here, central's handling of what gets through is)
    client = publisher(mosquitto, mosquitto.admin_login())
    now = time.time()
    cases: list[tuple[str, str, bool]] = []  # (topic, kind/field/value, expected valid)
    try:
        n = 0
        for kind, base in bases("x", str(uuid.uuid4()), now).items():
            for path in leaves(base):
                for value in BOUNDARIES:
                    n += 1
                    edge_id, epoch = f"fz{n}", str(uuid.UUID(int=n))
                    message = json.loads(json.dumps(bases(edge_id, epoch, now)[kind]))
                    message = replaced(message, path, value)
                    site_topic = f"plantpulse/v1/s/{edge_id}"
                    if kind in ("state", "count"):  # its epoch announced first, as a gateway does
                        send(client, f"{site_topic}/status", dumps(bases(edge_id, epoch, now)["status"]
                                                                   | {"oldest_seq": None, "latest_seq": 0,
                                                                      "dropped": []}))
                    send(client, f"{site_topic}/{CHANNEL[kind]}", dumps(message))
                    shown = repr(value)[:20]
                    cases.append((f"{site_topic}/{CHANNEL[kind]}", f"{kind} {path} = {shown}", valid(kind, message)))
        # two sentinels: the live view shows the first once applied, the second (sent after that) once the
        # round of the first (and of every case before it) is committed
        for sentinel in ("fz-end", "fz-end-committed"):
            send(client, f"plantpulse/v1/s/{sentinel}/status", dumps(bases(sentinel, str(uuid.uuid4()), now)["status"]))
            wait_until(lambda s=sentinel: central.http.get(f"/api/v1/gateways/{s}").status_code == 200, 120,
                       what=f"every case consumed (sentinel {sentinel} applied)")
        assert central.http.get("/healthz").status_code == 200
        letters = all_dead_letters(central)
        by_topic: dict[str, int] = {}
        for d in letters:
            by_topic[d["topic"]] = by_topic.get(d["topic"], 0) + 1
        wrong = [(what, expected, by_topic.get(topic, 0)) for topic, what, expected in cases
                 if (by_topic.get(topic, 0) == 0) != expected]
        assert not wrong, f"{len(wrong)} of {len(cases)} cases not handled as the protocol says: {wrong[:10]}"
        assert len(cases) > 1500 and sum(1 for _, _, ok in cases if not ok) > len(cases) / 3  # it hit the bounds
        # nothing comes back after a restart: every case was acknowledged to the broker
        before = len(letters)
        central.kill9()
        central.start()
        send(client, "plantpulse/v1/s/fz-end2/status", dumps(bases("fz-end2", str(uuid.uuid4()), now)["status"]))
        wait_until(lambda: central.http.get("/api/v1/gateways/fz-end2").status_code == 200, 60,
                   what="central restarted and consuming")
        assert len(all_dead_letters(central)) == before
        assert central.http.get("/healthz").status_code == 200
    finally:
        client.loop_stop()
        client.disconnect()


def all_dead_letters(central: CentralProcess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = central.get("/api/v1/dead-letters", limit=1000, offset=len(out))["dead_letters"]
        out += page
        if len(page) < 1000:
            return out


def test_boundaries_in_the_schema_itself() -> None:
    """The documented bounds (docs/protocol.md), one by one: what passes and what does not."""
    from plantpulse.protocol.models import CountEvent, StateEvent

    def count(**kw: Any) -> dict[str, Any]:
        return {"kind": "count", "seq": 1, "machine_id": "m", "start": 1.0, "ts": 2.0, "good": 0, "scrap": 0} | kw

    ok = [count(seq=2**53), count(good=2**53), count(ts=4_102_444_800.0), count(job="j" * 256)]
    bad = [count(seq=2**53 + 1), count(seq=0), count(good=2**53 + 1), count(good=-1), count(ts=4_102_444_801.0),
           count(ts=math.inf), count(ts=math.nan), count(start=-1.0), count(job="j" * 257),
           count(absorbed=list(range(1, 10_002)))]
    for case in ok:
        CountEvent.model_validate(case)
    for case in bad:
        with pytest.raises(ValidationError):
            CountEvent.model_validate(case)
    state = {"kind": "state", "seq": 1, "machine_id": "m", "ts": 1.0, "state": "fault"}
    StateEvent.model_validate(state | {"fault_code": 2**63 - 1})
    StateEvent.model_validate(state | {"fault_code": -(2**63)})
    # ``raw`` is for diagnosis only (never stored as a number): an integer past 64 bits is kept as a float
    assert isinstance(StateEvent.model_validate(state | {"raw": 2**63}).raw, float)
    for bad_state in ({"fault_code": 2**63}, {"raw": math.nan}, {"reason": "r" * 257}, {"raw": "r" * 257}):
        with pytest.raises(ValidationError):
            StateEvent.model_validate(state | bad_state)


# --------------------------------------------------------------------------- attacks on a running gateway's topic
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_attacks_on_a_real_gateways_topic_leave_central_healthy_and_totals_exact(
    tmp_path: Path, mosquitto: Mosquitto, plant_factory: Callable[[str], SimulatedPlant],
    central_factory: Callable[..., CentralProcess],
) -> None:
    """The issue's reproductions, published on the topic of a gateway that is running and counting."""
    central = central_factory(mosquitto, ingest={"hold_max_age": 3.0},
                              plant={"machines": [{"id": "fake", "ideal_cycle_time": 10.0}]})
    line = central_line(tmp_path, mosquitto, plant_factory(plant_yaml()), central)
    client = publisher(mosquitto, mosquitto.gateway_login("t", "gw1"))  # a buggy (or stolen) gateway
    topic = "plantpulse/v1/t/gw1/events"
    try:
        await line.start()
        await line.produce(10)
        epoch = central.gateway("gw1")["epoch"]
        now = time.time()

        def batch(*events: dict[str, Any], epoch: str = epoch) -> str:
            return dumps({"v": 1, "edge_id": "gw1", "epoch": epoch, "sent_at": now, "events": list(events)})

        def count(seq: int, **kw: Any) -> dict[str, Any]:
            return {"kind": "count", "seq": seq, "machine_id": "fake", "start": now - 1, "ts": now, "good": 0,
                    "scrap": 0} | kw

        top = 2**53
        rss_before = rss_mb(central.process.pid)
        send(client, topic, batch(count(2**63)))  # 1. the seq that hung central: refused, nothing settled
        send(client, topic, batch(count(top)))  # the largest valid seq: one missing range, not a walk
        send(client, topic, batch(count(top - 1, good=2**63)))  # 2. integers past SQLite's range
        send(client, topic, batch({"kind": "state", "seq": top - 2, "machine_id": "fake", "ts": now,
                                   "state": "fault", "fault_code": 2**70}))  # 3. the fault code that stuck
        send(client, topic, batch(count(top - 4, job="j" * 100_000), count(top - 3, ts=1e20)))  # 4. absurd values
        send(client, topic, batch(count(top - 5, good=10**9)))  # implausible: applied and flagged
        for _ in range(20):  # random epochs on the real gateway's topic
            send(client, topic, batch(count(1, good=5), epoch=str(uuid.uuid4())))
        # central answers at once while it works through all that
        for _ in range(20):
            started = time.monotonic()
            assert central.http.get("/healthz").status_code == 200
            assert time.monotonic() - started < 1.0
        await line.produce(20)
        truth = await line.expect_exact_totals()
        assert central.gateway("gw1")["epoch"] == epoch  # never retired by a stray epoch
        letters = wait_until(lambda: (d := all_dead_letters(central)) and len(d) >= 25 and d, 30,
                             what="the refused events and the never-announced epochs dead-lettered")
        reasons = " | ".join(d["reason"] for d in letters)
        assert "less than or equal to 9007199254740992" in reasons
        assert "finite number" in reasons or "less than or equal to 4102444800" in reasons
        assert "at most 256 characters" in reasons
        assert sum("never announced" in d["reason"] for d in letters) == 20
        gaps = central.get("/api/v1/gaps")["gaps"]
        assert {g["reason"] for g in gaps} == {"rejected"}  # no phantom epoch_replaced or unavailable gaps
        assert sorted(g["first"] for g in gaps) == [top - 4, top - 3, top - 2, top - 1]
        fake = central.machine("fake")
        assert fake["good_total"] == 10**9 and fake["state"] != "fault"  # the refused fault never applied
        counts = central.get("/api/v1/machines/fake/counts", start=now - 60, end=time.time() + 60)
        assert counts["implausible"] == 1
        assert rss_mb(central.process.pid) < rss_before + 100  # memory bounded (was 4.8 GB in a minute)
        # a restart brings none of it back and counts nothing twice
        letters_before = len(letters)
        central.kill9()
        central.start()
        line.plant.resume()
        await line.produce(10)
        truth = await line.expect_exact_totals()
        assert len(all_dead_letters(central)) == letters_before
        assert central.machine("fake")["good_total"] == 10**9
        assert central.http.get("/healthz").status_code == 200
        assert truth
    finally:
        client.loop_stop()
        client.disconnect()
        line.edge.stop()
