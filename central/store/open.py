"""Open the store the configuration names: SQLite (the embedded default) or PostgreSQL (scaled out)."""

from __future__ import annotations

from central.store.base import Store
from central.store.config import StoreConfig
from central.store.postgres import Fence, PostgresStore
from central.store.sqlite import SqliteStore


async def open_store(cfg: StoreConfig, site: str, *, fence: Fence | None = None) -> Store:
    """Open (and migrate) the configured store for ``site`` (central's ``site``: it reads and writes only that
    site's rows); raises ``StoreError`` saying what to do when it cannot.

    ``fence``: an ingest worker's leases, checked by every commit (PostgreSQL only)."""
    if cfg.kind == "postgresql":
        return await PostgresStore.open(cfg.dsn(), site, pool_size=cfg.pool_size, fence=fence)
    return await SqliteStore.open(cfg.path, site)
