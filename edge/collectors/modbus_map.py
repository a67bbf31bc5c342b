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
from collections.abc import Sequence
from dataclasses import dataclass

from edge.config import COUNTER_TAGS, TAG_NAMES, ModbusTag, ModbusTags, Table

MAX_BITS_PER_READ = 2000  # the protocol's limit for coils and discrete inputs
Value = int | float | bool

_STRUCT = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
    "int64": "q", "uint64": "Q", "float64": "d",
}


@dataclass(frozen=True)
class TagRead:
    """One tag to decode out of a block: its name and where it starts inside the block."""

    name: str
    tag: ModbusTag
    counter: bool


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
    reads = [
        TagRead(name, tag, name in COUNTER_TAGS)
        for name in TAG_NAMES
        if (tag := getattr(tags, name)) is not None
    ]
    blocks: list[Block] = []
    tables: tuple[Table, ...] = ("holding", "input", "coil", "discrete")
    for table in tables:
        mine = sorted((r for r in reads if r.tag.wire_table == table), key=lambda r: r.tag.wire_address)
        limit = MAX_BITS_PER_READ if table in ("coil", "discrete") else max_block
        current: list[TagRead] = []
        start = end = 0
        for r in mine:
            a, n = r.tag.wire_address, r.tag.registers
            if current and a + n - start <= limit and a - end <= max_gap:
                current.append(r)
                end = max(end, a + n)
                continue
            if current:
                blocks.append(Block(table, start, end - start, tuple(current)))
            current, start, end = [r], a, a + n
        if current:
            blocks.append(Block(table, start, end - start, tuple(current)))
    return blocks


def decode_block(block: Block, data: Sequence[int] | Sequence[bool]) -> dict[str, Value]:
    """Every tag's value out of one block's registers (or bits)."""
    out: dict[str, Value] = {}
    for r in block.tags:
        offset = r.tag.wire_address - block.start
        if block.bits:
            out[r.name] = bool(data[offset])
        else:
            words = [int(w) for w in data[offset : offset + r.tag.registers]]
            out[r.name] = decode_registers(r.tag, words, counter=r.counter)
    return out


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
