"""Where the tracker's events go: the ``EventSink`` interface and two simple sinks.

A sink receives a machine's events together with the ``MachineMemory`` to persist with them,
and must store both in one step: the outbox (edge/buffer) writes them in one SQLite
transaction, so a restarted gateway continues from exactly what was sent. ``load_memory``
gives the memories back at start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter

from edge.events import Event, MachineMemory
from protocol.models import Event as WireEvent

_EVENT = TypeAdapter(WireEvent)


class EventSink(Protocol):
    async def load_memory(self) -> dict[str, MachineMemory]:
        """Every machine's memory as last persisted (empty for a new gateway)."""
        ...

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        """Store one machine's new events and its memory atomically; return when durable."""
        ...


class MemorySink:
    """Keeps everything in lists: for tests of collection alone."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.memory: dict[str, MachineMemory] = {}

    async def load_memory(self) -> dict[str, MachineMemory]:
        return dict(self.memory)

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        self.events.extend(events)
        self.memory[memory.machine_id] = memory


class JsonlSink:
    """Appends one JSON line per emit (events + memory): survives a restart, for tests and debugging.

    Not crash-safe against a torn last line beyond skipping it; the outbox is the real store.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load_memory(self) -> dict[str, MachineMemory]:
        memory: dict[str, MachineMemory] = {}
        for _events, mem in self.read():
            memory[mem.machine_id] = mem
        return memory

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        line = json.dumps(
            {"events": [e.model_dump(mode="json") for e in events], "memory": memory.model_dump(mode="json")}
        )
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def read(self) -> list[tuple[list[Event], MachineMemory]]:
        out: list[tuple[list[Event], MachineMemory]] = []
        if not self.path.exists():
            return out
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            events = [_EVENT.validate_python(e) for e in data["events"]]
            out.append((events, MachineMemory.model_validate(data["memory"])))
        return out

    def events(self) -> list[Event]:
        return [e for events, _ in self.read() for e in events]
