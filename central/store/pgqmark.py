"""The SQL of the order and extras modules, written once with ``?`` placeholders, run on asyncpg.

``central/store/sqlite_orders.py`` and ``sqlite_extras.py`` hold portable SQL (the orders helper
wrote it for both stores) against the small part of aiosqlite's interface they use:
``execute``, ``executemany`` and ``execute_fetchall``. This adapter offers the same three on an
asyncpg connection or pool, numbering the placeholders (``?`` -> ``$1``...), so the PostgreSQL store
reuses those statements instead of keeping a second copy that could drift.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import aiosqlite
import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # an asyncpg connection, taken alone or from the pool: what the PostgreSQL store's queries run on
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1, $2...`` (the statements hold no ``?`` inside literals)."""
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


class QmarkAdapter:
    def __init__(self, target: Conn | asyncpg.Pool) -> None:
        self.target = target

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.target.execute(numbered(sql), *params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.target.executemany(numbered(sql), list(rows))

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        return await self.target.fetch(numbered(sql), *params)


def as_aiosqlite(adapter: QmarkAdapter) -> aiosqlite.Connection:
    """Typed as what the shared modules annotate; only the three methods above are ever called."""
    return cast(aiosqlite.Connection, adapter)
