"""An ``open_outbox`` factory: real SQLite files under tmp_path, always closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edge.buffer import Outbox

OpenOutbox = Callable[..., Awaitable[Outbox]]


@pytest.fixture
async def open_outbox(tmp_path: Path) -> AsyncIterator[OpenOutbox]:
    opened: list[Outbox] = []

    async def make(path: Path | None = None, **options: Any) -> Outbox:
        outbox = await Outbox.open(path or tmp_path / "outbox.db", **options)
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        await outbox.close()
