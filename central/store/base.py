"""The store interface the ingest and the API use, so a PostgreSQL store can follow SQLite's.

``commit`` writes one ingest round atomically; everything else reads. See central/store/sqlite.py
for the reference implementation and docs/central.md ("Storage").
"""

from __future__ import annotations

from typing import Protocol

from central.progress.counts import CountRecord
from central.progress.timeline import StateInterval
from central.store.records import DeadLetter, GapRow, Transaction
from central.store.sqlite import Loaded, Retention


class Store(Protocol):
    async def commit(self, tx: Transaction) -> None: ...

    async def load(self) -> Loaded: ...

    async def purge(self, now: float, retention: Retention) -> dict[str, int]: ...

    async def intervals(self, machine_id: str, start: float, end: float) -> list[StateInterval]: ...

    async def intervals_from(self, machine_id: str, at: float, limit: int = 4) -> list[StateInterval]: ...

    async def counts(self, machine_id: str | None, start: float, end: float) -> list[CountRecord]: ...

    async def gaps(self, edge_id: str | None = None, limit: int = 100, offset: int = 0) -> list[GapRow]: ...

    async def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]: ...

    async def close(self) -> None: ...
