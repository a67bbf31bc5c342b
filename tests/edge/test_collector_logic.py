"""The collectors' pure parts: Modbus block planning and decoding, OPC UA moments, backoff."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest

from edge.collectors.base import reading_from_values
from edge.collectors.modbus_map import compile_decoder, decode_block, decode_registers, plan_blocks
from edge.collectors.opcua_values import Bad, Change, ChangeSplitter, Moment, Resync, split_node_id
from edge.config import ModbusTag, ModbusTags
from edge.readings import Reading
from plantpulse.backoff import Backoff


def tag(**kw: object) -> ModbusTag:
    return ModbusTag.model_validate(kw)


def tags(**kw: dict[str, object]) -> ModbusTags:
    return ModbusTags.model_validate(kw)


# ------------------------------------------------------------------ Modbus block planning
def test_tags_merge_into_the_fewest_blocks_within_gap_and_size() -> None:
    t = tags(
        state={"address": 0}, fault_code={"address": 1}, good_count={"address": 2, "type": "uint32"},
        scrap_count={"address": 20, "type": "uint32"}, job={"address": 3, "table": "input"},
        power_on_count={"address": 7},
    )
    blocks = plan_blocks(t, max_block=125, max_gap=10)
    assert [(b.table, b.start, b.count) for b in blocks] == [("holding", 0, 8), ("holding", 20, 2), ("input", 3, 1)]
    assert [r.name for r in blocks[0].tags] == ["state", "fault_code", "good_count", "power_on_count"]
    # a larger gap bridges registers 8..19; a per-machine cap splits again
    assert [(b.start, b.count) for b in plan_blocks(t, 125, 12) if b.table == "holding"] == [(0, 22)]
    assert [(b.start, b.count) for b in plan_blocks(t, 4, 12) if b.table == "holding"] == [(0, 4), (7, 1), (20, 2)]
    assert [(b.start, b.count) for b in plan_blocks(t, 125, 0) if b.table == "holding"] == [(0, 4), (7, 1), (20, 2)]


def test_bits_merge_separately_and_decode_as_bools() -> None:
    t = tags(state={"address": "10002", "type": "bool"}, good_count={"address": 0},
             fault_code={"address": 3, "table": "discrete", "type": "bool"})
    blocks = plan_blocks(t, 125, 10)
    assert [(b.table, b.start, b.count) for b in blocks] == [("holding", 0, 1), ("discrete", 1, 3)]
    assert decode_block(blocks[1], [True, False, True]) == {"state": True, "fault_code": True}


# ------------------------------------------------------------------ Modbus decoding
def words(fmt: str, value: float) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


@pytest.mark.parametrize(
    ("kind", "fmt", "value"),
    [("int16", "h", -2), ("uint16", "H", 65535), ("int32", "i", -70000), ("uint32", "I", 4_000_000_000),
     ("float32", "f", 12.5), ("int64", "q", -(2**40)), ("uint64", "Q", 2**63 + 5), ("float64", "d", -1.25)],
)
def test_every_type_in_every_word_and_byte_order(kind: str, fmt: str, value: float) -> None:
    regs = words(fmt, value)
    assert decode_registers(tag(address=0, type=kind), regs) == value
    assert compile_decoder(tag(address=0, type=kind))(regs) == value  # the fast paths agree
    assert compile_decoder(tag(address=0, type=kind, word_order="little"))(regs[::-1]) == value
    assert decode_registers(tag(address=0, type=kind, word_order="little"), regs[::-1]) == value
    swapped = [((w & 0xFF) << 8) | (w >> 8) for w in regs]
    assert decode_registers(tag(address=0, type=kind, byte_order="little"), swapped) == value


def test_scale_offset_bits_and_counters() -> None:
    assert decode_registers(tag(address=0, type="int16", scale=0.1, offset=-5), [250]) == pytest.approx(20.0)
    assert decode_registers(tag(address=0, type="bool", bit=3), [0b1000]) is True
    assert decode_registers(tag(address=0, type="uint16", bit=0), [0b1000]) is False
    # a signed counter that wrapped to negative keeps counting up modulo its width
    assert decode_registers(tag(address=0, type="int16"), [0x8000], counter=True) == 32768
    assert decode_registers(tag(address=0, type="uint32", bits=20), [0x0010, 0x0003], counter=True) == 3
    assert compile_decoder(tag(address=0, type="uint32", bits=20), counter=True)([0x0010, 0x0003]) == 3
    assert compile_decoder(tag(address=0, type="uint16"), counter=True)([65535]) == 65535
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_registers(tag(address=0, type="uint32"), [1])


def test_reading_from_values_normalises_types() -> None:
    assert reading_from_values({"state": 1, "fault_code": 0, "good_count": 5, "job": 1605.0}) == Reading(
        state=1, fault_code=0, good=5, job="1605"
    )
    assert reading_from_values({"state": True, "job": "A-17"}) == Reading(state=True, job="A-17")


# ------------------------------------------------------------------ OPC UA moments
def ch(tag_: str, value: object, *, machine: str = "m", good: bool = True, ts: datetime | None = None) -> Change:
    return Change(machine, tag_, value, good, "" if good else "BadNoCommunication", ts)  # type: ignore[arg-type]


def splitter() -> ChangeSplitter:
    s = ChangeSplitter({"m": ["state", "fault_code", "good_count"], "n": ["state", "good_count"]})
    s.set_all("m", {"state": 1, "fault_code": 0, "good_count": 10})
    s.set_all("n", {"state": 1, "good_count": 0})
    return s


def test_a_short_fault_in_one_batch_stays_two_moments_without_timestamps() -> None:
    # the server groups a batch by item: both State values first, then both FaultCode values
    out = splitter().feed([ch("state", 3), ch("state", 1), ch("fault_code", 777), ch("fault_code", 0),
                           ch("good_count", 11)])
    assert out == [
        Moment("m", Reading(state=3, fault_code=777, good=11)),
        Moment("m", Reading(state=1, fault_code=0, good=11)),
    ]


def test_timestamps_order_changes_across_items_and_machines() -> None:
    t0 = datetime(2026, 11, 25, tzinfo=UTC)
    at = [t0 + timedelta(milliseconds=i) for i in range(5)]
    out = splitter().feed([
        ch("good_count", 12, ts=at[3]), ch("good_count", 11, ts=at[0]),
        ch("state", 3, ts=at[1]), ch("state", 2, machine="n", ts=at[2]), ch("fault_code", 9, ts=at[1]),
    ])
    # a moment runs until a variable changes again: good 11, state 3 and fault 9 belong together
    assert out == [
        Moment("m", Reading(state=3, fault_code=9, good=11)),
        Moment("m", Reading(state=3, fault_code=9, good=12)),
        Moment("n", Reading(state=2, good=0)),
    ]


def test_bad_status_sets_a_machine_aside_until_a_full_read() -> None:
    s = splitter()
    assert s.feed([ch("good_count", 11), ch("state", None, good=False), ch("state", 1, machine="n")]) == [
        Moment("m", Reading(state=1, fault_code=0, good=11)),
        Bad("m", "state: BadNoCommunication"),
        Moment("n", Reading(state=1, good=0)),
    ]
    assert s.is_bad("m")
    assert s.feed([ch("good_count", None, good=False)]) == []  # already aside: said once
    assert s.feed([ch("state", 2), ch("good_count", 15)]) == [Resync("m")]  # other values may be stale
    assert s.feed([ch("good_count", 16)]) == []  # no readings until the re-read
    assert s.set_all("m", {"state": 2, "fault_code": 0, "good_count": 16}) == Reading(state=2, fault_code=0, good=16)
    assert not s.is_bad("m") and s.seen("m", "good_count") == 4
    assert s.feed([ch("good_count", 17)]) == [Moment("m", Reading(state=2, fault_code=0, good=17))]


def test_counter_only_moments_are_coalesced_per_machine() -> None:
    s = ChangeSplitter({"m": ["state", "good_count"], "n": ["state", "good_count"]}, coalesce=1.0)
    s.set_all("m", {"state": 1, "good_count": 0})
    s.set_all("n", {"state": 1, "good_count": 0})
    assert s.feed([ch("good_count", 1)], now=10.0) == [Moment("m", Reading(state=1, good=1))]  # the first at once
    assert s.feed([ch("good_count", 2), ch("good_count", 1, machine="n")], now=10.3) == [
        Moment("n", Reading(state=1, good=1))
    ]
    assert s.feed([ch("good_count", 3)], now=10.6) == []  # held: counters are absolute, 3 replaces 2
    assert s.holding() and s.due(10.9) == []
    assert s.due(11.0) == [Moment("m", Reading(state=1, good=3))]
    assert not s.holding()
    s.feed([ch("good_count", 4)], now=11.2)
    # a state change goes through at once with the counters seen before it; the part after it waits
    assert s.feed([ch("state", 3), ch("good_count", 5)], now=11.4) == [Moment("m", Reading(state=3, good=4))]
    s.feed([ch("good_count", 6)], now=11.5)
    assert s.flush_all(11.6) == [Moment("m", Reading(state=3, good=6))]


def test_node_ids_resolve_their_namespace() -> None:
    assert split_node_id("s=A.State", "urn:x") == ("urn:x", "s=A.State")
    assert split_node_id("nsu=urn:y;i=5", "urn:x") == ("urn:y", "i=5")
    assert split_node_id("ns=3;s=B", None) == (3, "s=B")
    with pytest.raises(ValueError, match="no namespace"):
        split_node_id("s=B", None)


# ------------------------------------------------------------------ backoff
def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    low = Backoff(0.5, 4.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    high = Backoff(0.5, 4.0, rng=lambda: 0.999999)
    assert [round(high.next(), 3) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    high.reset()
    assert round(high.next(), 3) == 0.5
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(2.0, 1.0)


def test_a_re_read_that_still_finds_a_bad_value_waits_for_the_next_good_value_to_re_read_again() -> None:
    """A server shows a device back one variable at a time (issue 11, chaos run): the re-read the first
    good value triggers may still see a Bad one; the next good value must ask again."""
    s = splitter()
    s.feed([ch("state", None, good=False)])
    assert s.feed([ch("state", 1)]) == [Resync("m")]
    s.set_bad("m", "fault_code: BadNoCommunication")  # what the collector does when the re-read fails
    assert s.is_bad("m")
    assert s.feed([ch("fault_code", 0), ch("good_count", 12)]) == [Resync("m")]
    assert s.set_all("m", {"state": 1, "fault_code": 0, "good_count": 12}) == Reading(state=1, fault_code=0, good=12)
    assert s.feed([ch("good_count", 13)]) == [Moment("m", Reading(state=1, fault_code=0, good=13))]
