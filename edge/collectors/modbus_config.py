"""Configuration of a Modbus TCP machine: where its tags are and how their registers decode.

Two notations for addresses are accepted, and the conversion rule is fixed: an integer is the
0-based address as sent on the wire; a string such as ``"40001"`` is the 1-based Modicon notation
whose first digit names the table (4 holding, 3 input, 1 discrete input, 0 coil) and whose rest,
minus one, is the wire address.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from edge.collectors.machine_config import COUNTER_TAGS, JOB_COUNTER_HELP, MachineBase, Strict

Table = Literal["holding", "input", "coil", "discrete"]
ModbusType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"]
TYPE_REGISTERS: dict[str, int] = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4,
}
_MODICON = {"4": "holding", "3": "input", "1": "discrete", "0": "coil"}


class ModbusTag(Strict):
    """One value in a Modbus device: where it is and how its registers decode."""

    address: int | str = Field(
        ...,
        description="0-based wire address (e.g. 0 = the first holding register), or 1-based Modicon notation "
        "as a quoted string: '40001' = holding 0, '30001' = input 0, '10001' = discrete input 0, "
        "'00001' = coil 0 (6 digits also work: '400001')",
    )
    table: Table | None = Field(
        None, description="holding, input, coil or discrete (default: holding, or the table a Modicon address names)"
    )
    type: ModbusType = Field(
        "uint16", description="bool, int16, uint16, int32, uint32, float32, int64, uint64 or float64"
    )
    word_order: Literal["big", "little"] = Field(
        "big", description="32/64-bit values: 'big' = high word first (Modicon, Siemens), 'little' = low word first"
    )
    byte_order: Literal["big", "little"] = Field(
        "big", description="bytes inside each register: 'big' (the Modbus standard) or 'little' (swapped)"
    )
    bit: int | None = Field(None, ge=0, le=15, description="read one bit (0..15) of a 16-bit register as a bool")
    scale: float = Field(1.0, description="decoded = raw x scale + offset (not for counters)")
    offset: float = Field(0.0, description="decoded = raw x scale + offset (not for counters)")
    bits: int | None = Field(
        None, ge=1, le=64, description="counters: width at which the PLC's counter wraps (default: the type's width)"
    )
    _table: Table = PrivateAttr("holding")
    _address: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _resolve_address(self) -> ModbusTag:
        if isinstance(self.address, str):
            table, address = _parse_modicon(self.address)
            if self.table is not None and self.table != table:
                raise ValueError(
                    f"address '{self.address}' is in the {table} table but table says {self.table}; drop one"
                )
        else:
            if not 0 <= self.address <= 65535:
                raise ValueError(f"address {self.address} must be 0..65535 (0-based, as sent on the wire)")
            table, address = self.table or "holding", self.address
        if table in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"{table} addresses hold single bits: use type: bool (not {self.type})")
        if self.type == "bool" and table in ("holding", "input") and self.bit is None:
            raise ValueError("a bool in a register needs bit: 0..15 (which bit of the register)")
        if self.bit is not None and self.type not in ("bool", "int16", "uint16"):
            raise ValueError("bit: reads one bit of a 16-bit register; use type: bool")
        if address + self.registers > 65536:
            raise ValueError(f"{self.type} at address {address} runs past the end of the table (65535)")
        self._table, self._address = table, address
        return self

    @property
    def wire_table(self) -> Table:
        return self._table

    @property
    def wire_address(self) -> int:
        """The 0-based address sent on the wire."""
        return self._address

    @property
    def registers(self) -> int:
        """How many registers (or bits, for coils/discrete inputs) the value occupies."""
        return TYPE_REGISTERS[self.type]

    @property
    def width(self) -> int:
        """Counter width: ``bits`` if set, else the width of the type."""
        return self.bits or (1 if self.type == "bool" else 16 * TYPE_REGISTERS[self.type])

    def describe(self) -> str:
        """The address as an engineer reads it in a PLC manual, e.g. ``holding 2 (40003) uint32``."""
        one_based = {"holding": "4", "input": "3", "discrete": "1", "coil": "0"}[self._table]
        bit = f".{self.bit}" if self.bit is not None else ""
        return f"{self._table} {self._address}{bit} ({one_based}{self._address + 1:04d}) {self.type}"


def _parse_modicon(text: str) -> tuple[Table, int]:
    """'40001' -> ('holding', 0): the first digit names the table, the rest is 1-based."""
    if not re.fullmatch(r"[0134]\d{4,5}", text):
        raise ValueError(
            f"address '{text}' is not Modicon notation: use 5 or 6 digits starting with 4 (holding), "
            "3 (input), 1 (discrete input) or 0 (coil), or write the 0-based wire address as a number"
        )
    number = int(text[1:])
    if number < 1:
        raise ValueError(f"address '{text}': Modicon numbers start at 1 ({text[0]}0001 is address 0)")
    table: Table = _MODICON[text[0]]  # type: ignore[assignment]  # the regex allows only these digits
    return table, number - 1


class ModbusTags(Strict):
    """Where the machine's values are. Only ``state`` and ``good_count`` are required."""

    state: ModbusTag = Field(..., description="the machine state register (mapped by state_map)")
    good_count: ModbusTag = Field(..., description="good part counter (an integer type)")
    scrap_count: ModbusTag | None = Field(None, description="scrap part counter (an integer type)")
    fault_code: ModbusTag | None = Field(None, description="fault / alarm code register (0 = none)")
    job: ModbusTag | None = Field(None, description="job / program number register")
    power_on_count: ModbusTag | None = Field(
        None, description="power-on counter: tells a counter reset after a power cycle from a rollover"
    )
    job_good_count: ModbusTag | None = Field(None, description=JOB_COUNTER_HELP.format(kind="good"))
    job_scrap_count: ModbusTag | None = Field(None, description=JOB_COUNTER_HELP.format(kind="scrap"))

    @model_validator(mode="after")
    def _counters_are_integers(self) -> ModbusTags:
        for name in COUNTER_TAGS:
            tag = getattr(self, name)
            if tag is None:
                continue
            if tag.type in ("bool", "float32", "float64") or tag.bit is not None:
                raise ValueError(f"{name} is a counter: give it an integer type such as uint16 or uint32")
            if tag.scale != 1.0 or tag.offset != 0.0:
                raise ValueError(f"{name} is a counter: scale and offset would falsify the part count")
        return self


class ModbusMachine(MachineBase):
    """A machine read over Modbus TCP (several unit ids may sit behind one host:port)."""

    protocol: Literal["modbus"] = Field(..., description="'modbus' or 'opcua'")
    host: str = Field(..., min_length=1, description="PLC or Modbus gateway address, e.g. 192.168.1.20")
    port: int = Field(502, ge=1, le=65535, description="TCP port, usually 502")
    unit_id: int = Field(1, ge=0, le=255, description="unit (slave) id, 0..255; 1 for most PLCs")
    poll_interval: float = Field(1.0, gt=0, description="seconds between polls, e.g. 1.0")
    timeout: float = Field(1.0, gt=0, description="seconds to wait for an answer before the read fails, e.g. 1.0")
    max_block: int = Field(
        125, ge=1, le=125, description="most registers per read: 125 (the protocol's limit) or less for small devices"
    )
    max_gap: int = Field(
        10, ge=0, le=124,
        description="unused registers one read may span to merge two tags; 0 if the device refuses unmapped addresses",
    )
    tags: ModbusTags = Field(..., description="where state, good_count (and optional tags) are")

    @property
    def connection(self) -> tuple[str, int]:
        return (self.host, self.port)

    def counter_bits(self, name: str) -> int:
        tag = getattr(self.tags, name)
        return 32 if tag is None else int(tag.width)
