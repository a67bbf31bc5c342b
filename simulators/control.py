"""The simulator's HTTP control API: look at the plant, break it, and read the ground truth.

Documented in docs/simulators.md. Every action is recorded in the ground truth, so a test can
inject a fault here and later compare what plantpulse derived with what really happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.plant import Plant, UnknownMachineError


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultBody(_Body):
    code: int = Field(..., ge=1, le=65535, description="fault code shown by the PLC")
    duration: float | None = Field(None, gt=0, description="wall seconds; omit to stay faulted until /clear")


class DurationBody(_Body):
    duration: float | None = Field(None, gt=0, description="wall seconds; omit for the default")


class UnreachableBody(_Body):
    mode: Literal["refuse", "hang"] = Field(
        "refuse", description="refuse: connections refused; hang: accepted but never answered"
    )


class RestartBody(_Body):
    down_seconds: float = Field(1.0, ge=0, le=300, description="how long the endpoint stays down")


class PowerCycleBody(_Body):
    off_seconds: float = Field(0.0, ge=0, le=300, description="how long the PLC stays off (unreachable)")


class JobBody(_Body):
    number: int = Field(..., ge=0, le=65535, description="job/program number")
    quantity: int = Field(..., ge=1, description="good parts to make")
    setup_time: float | None = Field(None, ge=0, description="changeover, plant seconds (default: the machine's)")


class CounterBody(_Body):
    good: int | None = Field(None, ge=0, description="new good counter value (within the counter's width)")
    scrap: int | None = Field(None, ge=0, description="new scrap counter value (within the counter's width)")

    @model_validator(mode="after")
    def _one(self) -> CounterBody:
        if self.good is None and self.scrap is None:
            raise ValueError("give good, scrap or both")
        return self


class MachinePatch(_Body):
    cycle_time: float | None = Field(None, gt=0, description="ideal cycle time, plant seconds")
    scrap_rate: float | None = Field(None, ge=0, le=1)
    faults_enabled: bool | None = None


def create_app(plant: Plant) -> FastAPI:
    app = FastAPI(
        title="plantpulse simulators",
        description="Control API of a simulated plant (docs/simulators.md).",
        version="1",
    )

    async def act(machine_id: str, action: Callable[[], Awaitable[None]]) -> dict[str, Any]:
        try:
            await action()
            return plant.describe(machine_id)
        except UnknownMachineError:
            raise HTTPException(404, f"no machine '{machine_id}' in this plant") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.get("/api/machines")
    async def machines() -> dict[str, Any]:
        return {
            "plant": plant.cfg.name,
            "speed": plant.cfg.speed,
            "paused": plant.paused,
            "server_time": plant.clock(),
            "machines": [plant.describe(mid) for mid in plant.models],
        }

    @app.get("/api/machines/{machine_id}")
    async def machine(machine_id: str) -> dict[str, Any]:
        async def noop() -> None:
            plant.model(machine_id)

        return await act(machine_id, noop)

    @app.post("/api/machines/{machine_id}/fault")
    async def fault(machine_id: str, body: FaultBody) -> dict[str, Any]:
        return await act(machine_id, lambda: plant.fault(machine_id, body.code, body.duration))

    @app.post("/api/machines/{machine_id}/clear")
    async def clear(machine_id: str) -> dict[str, Any]:
        return await act(machine_id, lambda: plant.clear(machine_id))

    @app.post("/api/machines/{machine_id}/setup")
    async def setup(machine_id: str, body: DurationBody | None = None) -> dict[str, Any]:
        duration = body.duration if body else None
        return await act(machine_id, lambda: plant.setup(machine_id, duration))

    @app.post("/api/machines/{machine_id}/maintenance")
    async def maintenance(machine_id: str, body: DurationBody | None = None) -> dict[str, Any]:
        duration = body.duration if body else None
        return await act(machine_id, lambda: plant.maintenance(machine_id, duration))

    @app.post("/api/machines/{machine_id}/power-cycle")
    async def power_cycle(machine_id: str, body: PowerCycleBody | None = None) -> dict[str, Any]:
        off = body.off_seconds if body else 0.0
        return await act(machine_id, lambda: plant.power_cycle(machine_id, off))

    @app.post("/api/machines/{machine_id}/unreachable")
    async def unreachable(machine_id: str, body: UnreachableBody | None = None) -> dict[str, Any]:
        mode = body.mode if body else "refuse"
        return await act(machine_id, lambda: plant.set_unreachable(machine_id, mode))

    @app.post("/api/machines/{machine_id}/reachable")
    async def reachable(machine_id: str) -> dict[str, Any]:
        return await act(machine_id, lambda: plant.set_reachable(machine_id))

    @app.post("/api/machines/{machine_id}/restart")
    async def restart(machine_id: str, body: RestartBody | None = None) -> dict[str, Any]:
        down = body.down_seconds if body else 1.0
        return await act(machine_id, lambda: plant.restart(machine_id, down))

    @app.post("/api/machines/{machine_id}/job")
    async def job(machine_id: str, body: JobBody) -> dict[str, Any]:
        return await act(
            machine_id, lambda: plant.start_job(machine_id, body.number, body.quantity, body.setup_time)
        )

    @app.post("/api/machines/{machine_id}/counter")
    async def counter(machine_id: str, body: CounterBody) -> dict[str, Any]:
        return await act(machine_id, lambda: plant.preset(machine_id, body.good, body.scrap))

    @app.patch("/api/machines/{machine_id}")
    async def patch(machine_id: str, body: MachinePatch) -> dict[str, Any]:
        async def change() -> None:
            plant.patch(machine_id, **body.model_dump(exclude_none=True))

        return await act(machine_id, change)

    @app.post("/api/pause")
    async def pause() -> dict[str, Any]:
        return {"paused": True, "server_time": await plant.pause()}

    @app.post("/api/resume")
    async def resume() -> dict[str, Any]:
        # the very instant production continued: a part can end a few ms after it, before this
        # answer is sent, and must count as made after the resume
        return {"paused": False, "server_time": await plant.resume()}

    @app.get("/api/truth")
    async def truth(since: float | None = None, until: float | None = None) -> dict[str, Any]:
        return {
            "server_time": plant.clock(),
            "paused": plant.paused,
            "machines": {mid: plant.truth.machine(mid, since, until) for mid in plant.models},
        }

    @app.get("/api/truth/{machine_id}")
    async def truth_one(machine_id: str, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        if machine_id not in plant.models:
            raise HTTPException(404, f"no machine '{machine_id}' in this plant")
        return {"server_time": plant.clock(), **plant.truth.machine(machine_id, since, until)}

    return app
