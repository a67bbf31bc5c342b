"""A running simulated plant: machine models, their PLC endpoints, the ground truth, one loop.

The loop sleeps until the next scheduled event of any machine (or until a control action wakes
it), advances every model to now, records the facts and pushes the new values to the
endpoints. Control actions (fault, power cycle, unreachable...) go through the same object so
that every change is recorded in the ground truth.

Reachability has two causes that must not undo each other: a test making the PLC unreachable
(``unreachable``, held until ``reachable``) and a power cycle (the PLC is off). A PLC powered on
while held unreachable stays unreachable; one made reachable while off answers at power-on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from simulators.config import MachineConfig, PlantConfig
from simulators.facts import Fact
from simulators.modbus_server import ModbusEndpoint
from simulators.model import MachineModel
from simulators.opcua_server import OpcuaEndpoint
from simulators.truth import TruthRecorder

log = logging.getLogger(__name__)

Endpoint = ModbusEndpoint | OpcuaEndpoint
FailMode = Literal["refuse", "hang"]
_MAX_SLEEP = 0.5  # wake up at least this often, so a clock jump never stalls the plant for long


class UnknownMachineError(KeyError):
    """No machine with that id in the plant."""


def free_ports(host: str, n: int) -> list[int]:
    """``n`` distinct ports the OS considers free right now (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"port {port} on {host} is already in use ({exc.strerror}): stop the program using it "
                "or change 'port' in the plant file"
            ) from None


class Plant:
    """Owns the models, endpoints and truth of one plant; all methods run on one event loop."""

    def __init__(self, cfg: PlantConfig, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.state_dir = state_dir
        self.clock = clock
        self.truth = TruthRecorder(state_dir / "truth.sqlite")
        self.models: dict[str, MachineModel] = {}
        self.endpoints: dict[str, Endpoint] = {}  # machine id -> its endpoint
        self._servers: list[Endpoint] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._power_tasks: set[asyncio.Task[None]] = set()
        self._held: dict[str, FailMode] = {}  # machines a control action made unreachable
        self._off: set[str] = set()  # machines without power

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start every endpoint, then the machines: production starts when the PLCs are up."""
        self._build_endpoints()
        for server in self._servers:
            _check_port_free(self.cfg.host, server.port)
        started: list[Endpoint] = []
        try:
            for server in self._servers:
                await server.start()
                started.append(server)
        except BaseException:
            for server in started:
                await server.stop()
            raise
        now = self.clock()
        for mcfg in self.cfg.machines:
            self.models[mcfg.id] = MachineModel(
                mcfg, plant_seed=self.cfg.seed, speed=self.cfg.speed,
                min_state=self.cfg.min_state_duration, now=now,
            )
        # each model's opening state is a fact too: it starts the first truth interval
        self.truth.record([fact for model in self.models.values() for fact in model.advance(now)])
        self.truth.flush()
        await self._publish(self.models)
        self._task = asyncio.create_task(self._run(), name="plant-loop")

    def _build_endpoints(self) -> None:
        by_port: dict[tuple[str, int], list[MachineConfig]] = {}
        spare = iter(free_ports(self.cfg.host, sum(1 for m in self.cfg.machines if m.port == 0)))
        for mcfg in self.cfg.machines:
            port = mcfg.port or next(spare)
            by_port.setdefault((mcfg.protocol, port), []).append(mcfg)
        for (protocol, port), machines in by_port.items():
            server: Endpoint
            if protocol == "modbus":
                server = ModbusEndpoint(self.cfg.host, port)
                for mcfg in machines:
                    server.add_machine(mcfg.id, mcfg.unit_id, mcfg.counter)
            else:
                server = OpcuaEndpoint(self.cfg.host, port, self.state_dir / "pki", machines[0].opcua)
                for mcfg in machines:
                    server.add_machine(mcfg)
            self._servers.append(server)
            for mcfg in machines:
                self.endpoints[mcfg.id] = server

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._power_tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.stop()
        self.truth.close()

    async def _run(self) -> None:
        while True:
            now = self.clock()
            changed: dict[str, MachineModel] = {}
            facts: list[Fact] = []
            for mid, model in self.models.items():
                new = model.advance(now)
                if new:
                    facts.extend(new)
                    changed[mid] = model
            if facts:
                self.truth.record(facts)
                self.truth.flush()
                await self._publish(changed)
            nxt = min((m.next_event_at for m in self.models.values()), default=math.inf)
            delay = min(max(0.0, nxt - self.clock()), _MAX_SLEEP)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _publish(self, models: dict[str, MachineModel]) -> None:
        for mid, model in models.items():
            await self.endpoints[mid].update(mid, model.values())

    async def _apply(self, machine_id: str, facts: list[Fact]) -> None:
        self.truth.record(facts)
        self.truth.flush()
        await self._publish({machine_id: self.models[machine_id]})
        self._wake.set()

    def model(self, machine_id: str) -> MachineModel:
        try:
            return self.models[machine_id]
        except KeyError:
            raise UnknownMachineError(machine_id) from None

    # ----------------------------------------------------------------- control actions
    async def fault(self, machine_id: str, code: int, duration: float | None) -> None:
        await self._apply(machine_id, self.model(machine_id).fault(self.clock(), code, duration))

    async def clear(self, machine_id: str) -> None:
        await self._apply(machine_id, self.model(machine_id).clear(self.clock()))

    async def setup(self, machine_id: str, duration: float | None) -> None:
        await self._apply(machine_id, self.model(machine_id).setup(self.clock(), duration))

    async def maintenance(self, machine_id: str, duration: float | None) -> None:
        await self._apply(machine_id, self.model(machine_id).maintenance(self.clock(), duration))

    async def start_job(self, machine_id: str, number: int, quantity: int, setup_time: float | None) -> None:
        model = self.model(machine_id)
        await self._apply(machine_id, model.start_job(self.clock(), number, quantity, setup_time))

    async def preset(self, machine_id: str, good: int | None, scrap: int | None) -> None:
        """Set the counters, as an operator's preset or a PLC program does: recorded as a preset, not parts."""
        await self._apply(machine_id, self.model(machine_id).preset(self.clock(), good, scrap))

    async def power_cycle(self, machine_id: str, off_seconds: float) -> None:
        """Power off (endpoint refuses) for ``off_seconds``, then on with counters at 0.

        A machine held unreachable stays so after the power-up, until ``reachable``.
        """
        model = self.model(machine_id)
        endpoint = self.endpoints[machine_id]
        if machine_id in self._off:
            raise ValueError(f"machine {machine_id} is already powered off")
        await self._apply(machine_id, model.power_off(self.clock()))
        if off_seconds <= 0:
            await self._apply(machine_id, model.power_on(self.clock()))
            return
        self._off.add(machine_id)
        if machine_id not in self._held:
            await endpoint.set_unreachable(machine_id, "refuse")
            self._comm(machine_id, "off")

        async def back_on() -> None:
            await asyncio.sleep(off_seconds)
            self._off.discard(machine_id)
            await self._apply(machine_id, model.power_on(self.clock()))
            if machine_id not in self._held:
                await endpoint.set_reachable(machine_id)
                self._comm(machine_id, "reachable")

        task = asyncio.create_task(back_on(), name=f"power-on-{machine_id}")
        self._power_tasks.add(task)
        task.add_done_callback(self._power_done)

    def _power_done(self, task: asyncio.Task[None]) -> None:
        self._power_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("power-on of a machine failed", exc_info=task.exception())

    async def set_unreachable(self, machine_id: str, mode: FailMode) -> None:
        self.model(machine_id)
        self._held[machine_id] = mode
        await self.endpoints[machine_id].set_unreachable(machine_id, mode)
        self._comm(machine_id, mode)

    async def set_reachable(self, machine_id: str) -> None:
        """Communication back; a PLC still without power answers once it is on again."""
        self.model(machine_id)
        self._held.pop(machine_id, None)
        if machine_id in self._off:
            if self.endpoints[machine_id].status(machine_id) == "hang":
                await self.endpoints[machine_id].set_unreachable(machine_id, "refuse")  # off: nothing answers
            return
        await self.endpoints[machine_id].set_reachable(machine_id)
        self._comm(machine_id, "reachable")

    async def restart(self, machine_id: str, down_seconds: float) -> None:
        self.model(machine_id)
        endpoint = self.endpoints[machine_id]
        for mid in self.endpoints:
            if self.endpoints[mid] is endpoint:
                self._comm(mid, "restart")
        await endpoint.restart(down_seconds)

    def _comm(self, machine_id: str, status: str) -> None:
        self.truth.comm(machine_id, self.clock(), status)
        self.truth.flush()

    def patch(self, machine_id: str, **changes: Any) -> None:
        self.model(machine_id).set_params(**changes)
        self._wake.set()

    async def pause(self) -> float:
        """Freeze production; returns the instant it froze (the ground truth's boundary)."""
        now = self.clock()
        for mid, model in self.models.items():
            facts = model.pause(now)
            if facts:
                await self._apply(mid, facts)
        self._paused = True
        return now

    async def resume(self) -> float:
        """Continue production; returns the instant it continued: parts after it have ts >= it."""
        now = self.clock()
        for mid, model in self.models.items():
            await self._apply(mid, model.resume(now))
        self._paused = False
        return now

    @property
    def paused(self) -> bool:
        return self._paused

    # ----------------------------------------------------------------- views
    def describe(self, machine_id: str) -> dict[str, Any]:
        model = self.model(machine_id)
        cfg = model.cfg
        endpoint = self.endpoints[machine_id]
        values = model.values()
        return {
            "id": machine_id,
            "name": cfg.name,
            "protocol": cfg.protocol,
            "host": self.cfg.host,
            "port": endpoint.port,
            "unit_id": cfg.unit_id if cfg.protocol == "modbus" else None,
            "endpoint": endpoint.url(machine_id),
            "reachability": endpoint.status(machine_id),
            "state": values.state.name.lower(),
            "state_since": model.since,
            "fault_code": values.fault_code,
            "job": values.job,
            "job_remaining": model.job_remaining,
            "good_counter": values.good_counter,
            "scrap_counter": values.scrap_counter,
            "good_total": values.good_total,
            "scrap_total": values.scrap_total,
            "power_on_count": values.power_on_count,
            "job_good": values.job_good,
            "job_scrap": values.job_scrap,
            "powered": machine_id not in self._off,
            "last_cycle_time": values.last_cycle_time,
            "cycle_time": model.cycle_time,
            "scrap_rate": model.scrap_rate,
            "faults_enabled": model.faults_enabled,
            "counter_bits": cfg.counter.bits,
            "counter_word_order": cfg.counter.word_order,
            "paused": model.paused,
        }
