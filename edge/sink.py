"""Where the tracker's events go: the ``EventSink`` interface (the outbox implements it).

A sink receives a machine's events together with the ``MachineMemory`` to persist with them,
and must store both in one step: the outbox (edge/buffer) writes them in one SQLite
transaction, so a restarted gateway continues from exactly what was sent. ``load_memory``
gives the memories back at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from edge.tracker import MachineMemory
from plantpulse.protocol.models import Event


class EventSink(Protocol):
    async def load_memory(self) -> dict[str, MachineMemory]:
        """Every machine's memory as last persisted (empty for a new gateway)."""
        ...

    async def emit(self, events: Sequence[Event], memory: MachineMemory) -> None:
        """Store one machine's new events and its memory atomically; return when durable."""
        ...
