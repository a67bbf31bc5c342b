"""The simulated PLC's Modbus register map (pure encoding, no I/O).

Addresses are 0-based, as sent on the wire. The same map is served as holding registers
(function 3) and input registers (function 4); discrete inputs carry one bit per state.
docs/simulators.md documents it for PLC-side readers.
"""

from __future__ import annotations

import struct

from simulators.config import CounterConfig
from simulators.facts import MachineValues, RawState

REG_STATE = 0
REG_FAULT_CODE = 1
REG_GOOD_COUNT = 2  # 2 registers; a 16-bit counter uses only register 2 (register 3 stays 0)
REG_SCRAP_COUNT = 4  # likewise
REG_JOB = 6
REG_POWER_ON_COUNT = 7
REG_CYCLE_TIME = 8  # float32, 2 registers, high word first
REG_JOB_GOOD = 10  # uint16: good parts of the current job (0 at each job change and power-up)
REG_JOB_SCRAP = 11  # uint16: scrap parts of the current job
REGISTER_COUNT = 12

# discrete inputs: one bit per state, so a bit-only master can follow the machine too
DI_RUNNING, DI_FAULT, DI_SETUP, DI_MAINTENANCE, DI_IDLE = range(5)
DISCRETE_COUNT = 5
_DI_OF_STATE = {
    RawState.RUNNING: DI_RUNNING,
    RawState.FAULT: DI_FAULT,
    RawState.SETUP: DI_SETUP,
    RawState.MAINTENANCE: DI_MAINTENANCE,
    RawState.IDLE: DI_IDLE,
}


def counter_words(value: int, counter: CounterConfig) -> list[int]:
    """Two registers holding a counter of the configured width and word order."""
    if counter.bits == 16:
        return [value & 0xFFFF, 0]
    high, low = (value >> 16) & 0xFFFF, value & 0xFFFF
    return [high, low] if counter.word_order == "big" else [low, high]


def float32_words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def encode_registers(values: MachineValues, counter: CounterConfig) -> list[int]:
    """Registers 0..REGISTER_COUNT-1 for one machine, in address order."""
    regs = [0] * REGISTER_COUNT
    regs[REG_STATE] = int(values.state)
    regs[REG_FAULT_CODE] = values.fault_code & 0xFFFF
    regs[REG_GOOD_COUNT : REG_GOOD_COUNT + 2] = counter_words(values.good_counter, counter)
    regs[REG_SCRAP_COUNT : REG_SCRAP_COUNT + 2] = counter_words(values.scrap_counter, counter)
    regs[REG_JOB] = values.job & 0xFFFF
    regs[REG_POWER_ON_COUNT] = values.power_on_count & 0xFFFF
    regs[REG_CYCLE_TIME : REG_CYCLE_TIME + 2] = float32_words(values.last_cycle_time)
    regs[REG_JOB_GOOD] = values.job_good & 0xFFFF
    regs[REG_JOB_SCRAP] = values.job_scrap & 0xFFFF
    return regs


def encode_discrete(values: MachineValues) -> list[bool]:
    bits = [False] * DISCRETE_COUNT
    bits[_DI_OF_STATE[values.state]] = True
    return bits
