"""Open the store the configuration names (SQLite today; PostgreSQL joins here)."""

from __future__ import annotations

from central.store.base import Store
from central.store.config import StoreConfig
from central.store.sqlite import SqliteStore


async def open_store(cfg: StoreConfig) -> Store:
    """Open (and migrate) the configured store; raises ``StoreError`` saying what to do when it cannot."""
    return await SqliteStore.open(cfg.path)
