"""Stopping a group of background tasks: cancel every one first, then wait for each.

Cancelling all before waiting lets them wind down together (one slow to stop does not delay the
others' cancellation); what a task raises while it stops is not the stopper's concern: it was being
stopped anyway, and a supervisor reports tasks that failed while running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
