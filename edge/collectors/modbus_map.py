"""A Modbus machine's tags as block reads, and the decoding of what comes back (pure, no I/O).

Reading every tag with its own request costs one round trip each; Telegraf's modbus input
merges them, and so do we: the tags of one table are sorted by address and merged into the
fewest contiguous reads, where a read may span at most ``max_block`` registers (125 is the
protocol's limit for registers; small devices take less) and may bridge at most ``max_gap``
unused registers between two tags (a device that answers "illegal data address" for unmapped
registers needs ``max_gap: 0``). Coils and discrete inputs are merged the same way, up to 2000
bits per read.

Counters are decoded as unsigned integers modulo their configured width, so a signed 16-bit
counter that wraps from 32767 to -32768 keeps counting up for the tracker.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edge.collectors.base import CONVERT, READING_FIELD
from edge.collectors.machine_config import COUNTER_TAGS, TAG_NAMES
from edge.collectors.modbus_config import ModbusTag, ModbusTags, Table

MAX_BITS_PER_READ = 2000  # the protocol's limit for coils and discrete inputs
Value = int | float | bool

_STRUCT = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
    "int64": "q", "uint64": "Q", "float64": "d",
}


@dataclass(frozen=True)
class TagRead:
    """One tag to decode out of a block: where it starts inside the block, and its decoder."""

    name: str
    tag: ModbusTag
    counter: bool
    offset: int
    registers: int
    decode: Callable[[Sequence[int]], Value]
    field: str  # the Reading field it fills
    convert: Callable[[Value | None], Any]  # decoded value -> what the tracker takes


@dataclass(frozen=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``."""

    table: Table
    start: int
    count: int
    tags: tuple[TagRead, ...]

    @property
    def bits(self) -> bool:
        return self.table in ("coil", "discrete")

    def describe(self) -> str:
        return f"{self.table} {self.start}..{self.start + self.count - 1}"


def plan_blocks(tags: ModbusTags, max_block: int, max_gap: int) -> list[Block]:
    """The fewest reads covering every configured tag, in table then address order."""
    wanted = [(name, tag) for name in TAG_NAMES if (tag := getattr(tags, name)) is not None]
    blocks: list[Block] = []
    tables: tuple[Table, ...] = ("holding", "input", "coil", "discrete")
    for table in tables:
        mine = sorted(((n, t) for n, t in wanted if t.wire_table == table), key=lambda nt: nt[1].wire_address)
        limit = MAX_BITS_PER_READ if table in ("coil", "discrete") else max_block
        current: list[tuple[str, ModbusTag]] = []
        start = end = 0
        for name, tag in mine:
            a, n = tag.wire_address, tag.registers
            if current and a + n - start <= limit and a - end <= max_gap:
                current.append((name, tag))
                end = max(end, a + n)
                continue
            if current:
                blocks.append(_block(table, start, end, current))
            current, start, end = [(name, tag)], a, a + n
        if current:
            blocks.append(_block(table, start, end, current))
    return blocks


def _block(table: Table, start: int, end: int, tags: list[tuple[str, ModbusTag]]) -> Block:
    reads = tuple(
        TagRead(name, tag, name in COUNTER_TAGS, tag.wire_address - start, tag.registers,
                compile_decoder(tag, counter=name in COUNTER_TAGS), READING_FIELD[name], _converter(name, tag))
        for name, tag in tags
    )
    return Block(table, start, end - start, reads)


def _converter(name: str, tag: ModbusTag) -> Callable[[Value | None], Any]:
    """CONVERT[name], or nothing to do when the decoder already gives what the tracker takes."""
    integer = tag.type not in ("bool", "float32", "float64") and tag.bit is None and tag.scale == 1.0
    if name != "job" and (name == "state" or integer) and tag.offset == 0.0:
        return _as_is
    return CONVERT[name]


def _as_is(value: Value | None) -> Value | None:
    return value


def reading_fields(block: Block, data: Sequence[int] | Sequence[bool], into: dict[str, Any]) -> None:
    """Decode a block straight into ``Reading`` fields (the poll's hot path: no intermediate dict)."""
    if block.bits:
        for r in block.tags:
            into[r.field] = r.convert(bool(data[r.offset]))
    else:
        for r in block.tags:
            value = r.decode(data[r.offset : r.offset + r.registers])
            into[r.field] = value if r.convert is _as_is else r.convert(value)


def decode_block(block: Block, data: Sequence[int] | Sequence[bool]) -> dict[str, Value]:
    """Every tag's value out of one block's registers (or bits)."""
    if block.bits:
        return {r.name: bool(data[r.offset]) for r in block.tags}
    return {r.name: r.decode(data[r.offset : r.offset + r.registers]) for r in block.tags}


def compile_decoder(tag: ModbusTag, *, counter: bool = False) -> Callable[[Sequence[int]], Value]:
    """A function from the tag's registers to its value, decided once: polls run it many times.

    The common plain cases (16 and 32-bit unsigned, no byte swap, no bit, no scale) are a
    shift or two; everything else goes through ``decode_registers``.
    """
    plain = tag.byte_order == "big" and tag.bit is None and tag.scale == 1.0 and tag.offset == 0.0
    mask = (1 << tag.width) - 1 if counter else None
    if plain and tag.type == "uint16" and (mask is None or mask >= 0xFFFF):
        return lambda w: int(w[0])
    if plain and tag.type == "uint32" and (mask is None or mask >= 0xFFFFFFFF):
        if tag.word_order == "big":
            return lambda w: (int(w[0]) << 16) | int(w[1])
        return lambda w: (int(w[1]) << 16) | int(w[0])
    return lambda w: decode_registers(tag, [int(x) for x in w], counter=counter)


def decode_registers(tag: ModbusTag, words: Sequence[int], *, counter: bool = False) -> Value:
    """One value from its registers: byte order, word order, type, then bit or scale/offset."""
    if len(words) != tag.registers:
        raise ValueError(f"{tag.type} needs {tag.registers} registers, got {len(words)}")
    if tag.byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if tag.word_order == "little":
        words = list(reversed(words))
    if tag.bit is not None:
        return bool((words[0] >> tag.bit) & 1)
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    value: int | float = struct.unpack(">" + _STRUCT[tag.type], raw)[0]
    if counter:
        return int(value) % (1 << tag.width)
    if tag.scale != 1.0 or tag.offset != 0.0:
        scaled = value * tag.scale + tag.offset
        return int(scaled) if isinstance(value, int) and float(scaled).is_integer() else scaled
    return value
