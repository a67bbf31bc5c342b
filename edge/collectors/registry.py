"""Which collector reads which protocol, and how machines are grouped into connections.

Like Telegraf's input registry: a protocol name maps to the class that reads it, imported
only when a configuration uses it (asyncua takes a while to import; a Modbus-only gateway
never pays for it). Machines whose ``connection`` key is equal share one collector: several
Modbus unit ids behind one host:port, or several machines on one OPC UA server session.
"""

from __future__ import annotations

import importlib
from typing import Any

from edge.collectors.base import Collector
from edge.config import EdgeConfig, ModbusMachine, OpcuaMachine

COLLECTORS: dict[str, str] = {
    "modbus": "edge.collectors.modbus:ModbusCollector",
    "opcua": "edge.collectors.opcua:OpcuaCollector",
}


def collector_class(protocol: str) -> Any:
    try:
        module_name, class_name = COLLECTORS[protocol].split(":")
    except KeyError:
        raise ValueError(f"no collector for protocol {protocol!r}; known: {', '.join(COLLECTORS)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def build_collectors(cfg: EdgeConfig) -> list[Collector]:
    """One collector per connection, in the order the machines appear in the file."""
    groups: dict[tuple[object, ...], list[ModbusMachine | OpcuaMachine]] = {}
    for machine in cfg.machines:
        groups.setdefault((machine.protocol, machine.connection), []).append(machine)
    collectors: list[Collector] = []
    for (protocol, _key), machines in groups.items():
        collectors.append(collector_class(str(protocol))(machines))
    return collectors
