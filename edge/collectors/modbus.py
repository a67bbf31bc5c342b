"""Modbus TCP collector (pymodbus): one connection per host:port, its unit ids polled in turn.

Like Home Assistant's modbus hub, one task owns the connection and sends one request at a time,
so polls of a machine never overlap and several unit ids behind one serial-to-TCP gateway share
the connection without interleaving. Each unit has its own timeout, failure count and backoff:
a dead unit costs the others at most its timeout per retry, and once offline it is retried
with capped exponential backoff instead of every poll. Machines on other connections run in
other tasks and are never delayed.

A Modbus exception response (e.g. 0x02 illegal data address, 0x0B gateway target failed to
respond) is a failed read, never a value of 0. A poll is all the machine's blocks
(modbus_map.py); the reading is reported only when every block answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from edge.collectors.base import CheckRow, Report, raise_if_cancelled
from edge.collectors.modbus_config import ModbusMachine
from edge.collectors.modbus_map import Block, Value, decode_block, plan_blocks, reading_fields
from edge.readings import Reading
from plantpulse.backoff import Backoff

log = logging.getLogger(__name__)

_EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
    5: "acknowledge", 6: "device busy", 10: "gateway path unavailable", 11: "gateway target failed to respond",
}


class ReadFailedError(Exception):
    """One block read failed; the message says why in the PLC engineer's words."""


@dataclass
class _Unit:
    cfg: ModbusMachine
    blocks: list[Block]
    backoff: Backoff
    next_due: float = 0.0
    failures: int = 0
    last_data: list[Sequence[int] | Sequence[bool]] | None = None  # the raw blocks of the last reading
    last_reading: Reading | None = None


@dataclass
class _Link:
    """The shared TCP connection; ``failed_in_row`` counts failed requests across its units."""

    client: AsyncModbusTcpClient
    failed_in_row: int = 0
    units: int = 1


class ModbusCollector:
    """Polls the machines behind one host:port (see the module docstring)."""

    def __init__(self, machines: Sequence[ModbusMachine]) -> None:
        self.host, self.port = machines[0].host, machines[0].port
        self.name = f"modbus {self.host}:{self.port}"
        self.machine_ids = tuple(m.id for m in machines)
        self._units = [
            _Unit(m, plan_blocks(m.tags, m.max_block, m.max_gap),
                  Backoff(min(m.poll_interval, m.retry_max), m.retry_max))
            for m in machines
        ]

    def _client(self) -> _Link:
        # pymodbus retries and reconnects on its own by default; we want one attempt per poll and
        # our own per-unit backoff, so both are off. The timeout is set per request (_read_block).
        timeout = self._units[0].cfg.timeout
        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=timeout, retries=0, reconnect_delay=0)
        return _Link(client, units=len(self._units))

    async def run(self, report: Report) -> None:
        link = self._client()
        start = time.monotonic()
        for i, unit in enumerate(self._units):  # spread the units over the first interval
            unit.next_due = start + i * unit.cfg.poll_interval / len(self._units)
        try:
            while True:
                unit = min(self._units, key=lambda u: u.next_due)
                delay = unit.next_due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._poll(link, unit, report)
                raise_if_cancelled()
        finally:
            link.client.close()

    async def _poll(self, link: _Link, unit: _Unit, report: Report) -> None:
        cfg = unit.cfg
        started = time.monotonic()
        if started - unit.next_due > cfg.poll_interval and unit.failures == 0:
            report.count("late_polls")
        try:
            reading = await self._read_unit(link, unit)
        except ReadFailedError as exc:
            ended = time.monotonic()
            unit.failures += 1
            await report.failure(cfg.id, str(exc), ended - started)
            if unit.failures >= cfg.offline_after:
                unit.next_due = time.monotonic() + unit.backoff.next()
            else:
                unit.next_due = max(unit.next_due + cfg.poll_interval, ended)
            return
        ended = time.monotonic()
        if unit.failures:
            unit.failures = 0
            unit.backoff.reset()
        report.count("polls")
        unit.next_due = max(unit.next_due + cfg.poll_interval, ended)
        await report.reading(cfg.id, reading, ended - started)

    async def _read_unit(self, link: _Link, unit: _Unit) -> Reading:
        data = [await self._read_block(link, unit.cfg, block) for block in unit.blocks]
        if data == unit.last_data and unit.last_reading is not None:
            return unit.last_reading  # most polls: the same registers, the same reading, nothing to decode
        fields: dict[str, Any] = {}
        for block, values in zip(unit.blocks, data, strict=True):
            reading_fields(block, values, fields)
        unit.last_data, unit.last_reading = data, Reading(**fields)
        return unit.last_reading

    async def _read_block(self, link: _Link, cfg: ModbusMachine, block: Block) -> Sequence[int] | Sequence[bool]:
        client = link.client
        # pymodbus bounds connecting and every answer by comm_params.timeout_connect: set it to this
        # unit's timeout rather than wrapping each request in asyncio.timeout (polls are the hot path).
        client.comm_params.timeout_connect = cfg.timeout
        try:
            if not client.connected and not await client.connect():
                raise ReadFailedError(f"cannot connect to {self.host}:{self.port} (refused or unreachable)")
            response = await _request(client, block, cfg.unit_id)
        except ModbusIOException as exc:  # no answer in time (or a garbled one): the link may still be fine
            link.failed_in_row += 1
            if link.units == 1 or link.failed_in_row >= 2:
                client.close()  # a half-open or wedged connection: start a fresh one next time
            why = f"no answer within {cfg.timeout:g} s" if "No response" in str(exc) else _short(exc)
            raise ReadFailedError(f"{why} reading {block.describe()}") from None
        except (ModbusException, OSError, TimeoutError) as exc:
            link.failed_in_row += 1
            client.close()
            raise ReadFailedError(f"connection to {self.host}:{self.port} failed: {_short(exc)}") from None
        if isinstance(response, ExceptionResponse) or response.isError():
            link.failed_in_row = 0  # the connection works; the device refused this read
            code = getattr(response, "exception_code", 0)
            hint = " (check the address, or set max_gap: 0 if the block spans unmapped registers)" if code == 2 else ""
            raise ReadFailedError(
                f"exception {code:#04x} {_EXCEPTIONS.get(code, 'unknown')} reading {block.describe()}{hint}"
            )
        link.failed_in_row = 0
        data = response.bits if block.bits else response.registers
        if len(data) < block.count:
            raise ReadFailedError(f"short answer: {len(data)} of {block.count} values for {block.describe()}")
        return data

    async def check(self) -> list[CheckRow]:
        """Read every tag of every unit once: the rows of ``edge check``."""
        link = self._client()
        rows: list[CheckRow] = []
        try:
            for unit in self._units:
                rows.extend(await self._check_unit(link, unit))
        finally:
            link.client.close()
        return rows

    async def _check_unit(self, link: _Link, unit: _Unit) -> list[CheckRow]:
        rows: list[CheckRow] = []
        for block in unit.blocks:
            started = time.monotonic()
            try:
                data = await self._read_block(link, unit.cfg, block)
            except ReadFailedError as exc:
                rows.extend(
                    CheckRow(unit.cfg.id, r.name, f"unit {unit.cfg.unit_id} {r.tag.describe()}", error=str(exc))
                    for r in block.tags
                )
                continue
            latency = (time.monotonic() - started) * 1000.0
            decoded = decode_block(block, data)
            for r in block.tags:
                raw = data[r.offset] if block.bits else data[r.offset : r.offset + r.registers]
                rows.append(
                    CheckRow(
                        unit.cfg.id, r.name, f"unit {unit.cfg.unit_id} {r.tag.describe()}",
                        raw=_raw_text(raw), decoded=_decoded_text(r.name, decoded[r.name], unit.cfg),
                        latency_ms=latency,
                    )
                )
        return rows


def _request(client: AsyncModbusTcpClient, block: Block, unit_id: int) -> Awaitable[ModbusPDU]:
    """The read of ``block`` (not awaited here: one coroutine frame less per request on the hot path)."""
    read = {
        "holding": client.read_holding_registers, "input": client.read_input_registers,
        "coil": client.read_coils, "discrete": client.read_discrete_inputs,
    }[block.table]
    return read(block.start, count=block.count, device_id=unit_id)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 120 else text[:117] + "..."


def _raw_text(raw: object) -> str:
    if isinstance(raw, list):
        return " ".join(f"{int(w):#06x}" for w in raw)
    return str(raw)


def _decoded_text(name: str, value: Value, cfg: ModbusMachine) -> str:
    if name == "state":
        state = cfg.state_map.get(value) if not isinstance(value, float) else cfg.state_map.get(int(value))
        return f"{value} -> {state.value if state else f'? (not in state_map: {cfg.unknown_state.value})'}"
    return str(value)
