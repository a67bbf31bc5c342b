"""A simulated Modbus TCP PLC: one real pymodbus server per port, one unit id per machine.

All use of pymodbus' server API (``SimDevice``, which pymodbus calls experimental) stays in
this module, so a pymodbus upgrade touches one file.

Failure modes, as real PLCs fail:

- ``refuse``: the server closes its listener and every connection; connecting is refused.
  When several machines share the port (several unit ids behind one gateway), only the one
  machine fails: its unit answers exception 0x0B "gateway target device failed to respond",
  which is what a Modbus gateway answers for a dead device behind it.
- ``hang``: connections are accepted and requests for the machine's unit are never answered
  (a busy or wedged PLC); other unit ids on the same port still answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.config import CounterConfig
from simulators.facts import MachineValues
from simulators.registers import DISCRETE_COUNT, REGISTER_COUNT, encode_discrete, encode_registers

log = logging.getLogger(__name__)

FailMode = Literal["refuse", "hang"]

# pymodbus function codes used to write the simulated memory
_FC_DISCRETE, _FC_HOLDING, _FC_INPUT = 2, 3, 4
_SPARE_REGISTERS = 6  # registers after the map that read as 0, so block reads with a small gap work


@dataclass
class _Unit:
    unit_id: int
    counter: CounterConfig
    mode: FailMode | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    last: MachineValues | None = None

    def __post_init__(self) -> None:
        self.released.set()


class ModbusEndpoint:
    """A TCP port with one or more simulated units; survives refuse/hang/restart cycles."""

    protocol = "modbus"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._units: dict[str, _Unit] = {}
        self._server: ModbusTcpServer | None = None
        self._lock = asyncio.Lock()  # start/stop/restart
        self._writing = asyncio.Lock()  # register updates

    def add_machine(self, machine_id: str, unit_id: int, counter: CounterConfig) -> None:
        self._units[machine_id] = _Unit(unit_id, counter)

    @property
    def shared(self) -> bool:
        return len(self._units) > 1

    @property
    def listening(self) -> bool:
        return self._server is not None

    def url(self, machine_id: str) -> str:
        return f"modbus-tcp://{self.host}:{self.port}?unit={self._units[machine_id].unit_id}"

    async def start(self) -> None:
        async with self._lock:
            await self._start()

    async def _start(self) -> None:
        if self._server is not None:
            return
        devices = [self._device(machine_id, unit) for machine_id, unit in self._units.items()]
        server = ModbusTcpServer(devices, address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port} (port already in use?)") from exc
        self._server = server
        for unit in self._units.values():
            if unit.last is not None:
                await self._write(unit, unit.last)

    def _device(self, machine_id: str, unit: _Unit) -> SimDevice:
        async def action(
            _fc: int, _start: int, _address: int, _count: int, _regs: list[int], values: object
        ) -> ExcCodes | None:
            if values is not None:
                return None  # the simulation's own register writes always go through
            if unit.mode == "hang":
                await unit.released.wait()
                return ExcCodes.GATEWAY_NO_RESPONSE  # a late answer to a request the master gave up on
            if unit.mode == "refuse":
                return ExcCodes.GATEWAY_NO_RESPONSE
            return None

        registers = REGISTER_COUNT + _SPARE_REGISTERS
        return SimDevice(
            id=unit.unit_id,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],  # coils (unused, read as 0)
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],  # discrete inputs
                [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],  # holding
                [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],  # input
            ),
            action=action,
        )

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        for unit in self._units.values():
            unit.released.set()
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    async def update(self, machine_id: str, values: MachineValues) -> None:
        unit = self._units[machine_id]
        unit.last = values
        async with self._writing:  # the plant loop and a control action may update at once
            if self._server is not None and unit.last is not None:
                await self._write(unit, unit.last)  # the latest values, even if this call was overtaken

    async def _write(self, unit: _Unit, values: MachineValues) -> None:
        assert self._server is not None
        regs = encode_registers(values, unit.counter)
        # Each call is one step of the event loop, so a master never reads half an update.
        await self._server.async_setValues(unit.unit_id, _FC_HOLDING, 0, regs)
        await self._server.async_setValues(unit.unit_id, _FC_INPUT, 0, regs)
        bits = encode_discrete(values) + [False] * (16 - DISCRETE_COUNT)
        await self._server.async_setValues(unit.unit_id, _FC_DISCRETE, 0, bits)

    async def set_unreachable(self, machine_id: str, mode: FailMode) -> None:
        async with self._lock:
            unit = self._units[machine_id]
            if mode == "refuse" and not self.shared:
                unit.mode = None
                await self._stop()
                return
            if mode == "hang":
                unit.released.clear()
            unit.mode = mode

    async def set_reachable(self, machine_id: str) -> None:
        async with self._lock:
            unit = self._units[machine_id]
            unit.mode = None
            unit.released.set()
            await self._start()

    async def restart(self, down_seconds: float) -> None:
        """The PLC's communication module restarts: every connection drops, the port is closed a while."""
        async with self._lock:
            was_up = self._server is not None  # a PLC that refuses connections stays so through a restart
            await self._stop()
            await asyncio.sleep(down_seconds)
            if was_up:
                await self._start()
            for unit in self._units.values():
                if unit.mode == "hang":  # stopping released the hung requests; new ones hang again
                    unit.released.clear()

    def status(self, machine_id: str) -> str:
        unit = self._units[machine_id]
        if unit.mode is not None:
            return unit.mode
        return "reachable" if self._server is not None else "refuse"
