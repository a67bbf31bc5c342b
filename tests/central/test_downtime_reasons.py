"""``GET /machines/{id}/downtime`` splits idle by the stop reasons operators gave (issue 13: reasons feed downtime
by cause): central in process with a real store and broker, the route through the ASGI app."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from central.api.app import create_app
from central.config import CentralConfig
from central.progress.stops import StopReasonIn
from central.progress.timeline import StateInterval
from central.runtime import Central
from central.store.records import Transaction
from plantpulse.protocol.models import MachineState
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import async_wait_until


async def test_idle_time_is_split_by_the_reasons_given(mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = CentralConfig.model_validate({
        "site": "t", "mqtt": mosquitto.mqtt(mosquitto.central_login(), keepalive=5, reconnect_max=1),
        "store": {"path": str(tmp_path / "central.sqlite")}, "notify": {"shift_summaries": False},
        "api": {"open_reads": True}, "plant": {"micro_stop_threshold": 60, "machines": [{"id": "m1"}]},
    })
    t = time.time() - 7200
    async with Central.running(cfg) as central:
        await async_wait_until(lambda: central.ingest.connected, 10)
        await central.store.commit(Transaction(intervals=[
            StateInterval("m1", MachineState.IDLE, t, t + 1800),  # 30 min idle: 20 waiting for material, 10 unsaid
            StateInterval("m1", MachineState.RUNNING, t + 1800, t + 3600),
            StateInterval("m1", MachineState.IDLE, t + 3600, t + 3630),  # a micro-stop: a speed loss, no reason
            StateInterval("m1", MachineState.RUNNING, t + 3630, t + 5400),
        ]))
        await central.floor.stop(StopReasonIn(client_id="r-1", operator="W-7", machine="m1", reason="material",
                                              start=t + 600, end=None))
        await central.floor.stop(StopReasonIn(client_id="r-2", operator="W-7", machine="m1", reason="tooling",
                                              start=t + 3600, end=t + 3630))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(central)),
                                     base_url="http://central") as http:
            report = (await http.get("/api/v1/machines/m1/downtime", params={"start": t, "end": t + 5400})).json()
    assert report["idle"] == 1800 and report["micro_stop_time"] == 30
    assert report["idle_by_reason"] == {"material": 1200}  # until the machine ran again; the micro-stop: none
