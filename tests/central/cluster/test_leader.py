"""One leader per site among the API replicas sharing a database (the projection and shift summaries of
each plant run once, and one plant's leader never silences another's)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from central.cluster.leader import Leader
from tests.fixtures.waiting import async_wait_until


async def test_each_site_has_one_leader_and_a_dead_leaders_site_gets_another(pg_dsn: str) -> None:
    ran: list[str] = []

    def tasks_of(name: str) -> Any:
        def tasks() -> list[Coroutine[Any, Any, None]]:
            async def work() -> None:
                ran.append(name)
                await asyncio.Event().wait()
            return [work()]
        return tasks

    leaders = {name: Leader(pg_dsn, site, tasks_of(name)) for name, site in
               (("s-1", "suzhou-1"), ("s-2", "suzhou-1"), ("n-1", "ningbo-2"))}
    running = {name: asyncio.create_task(lead.run()) for name, lead in leaders.items()}
    try:
        await async_wait_until(lambda: len(ran) == 2, 10, what="a leader for each site")
        assert sorted(ran) in (["n-1", "s-1"], ["n-1", "s-2"])  # one of suzhou-1's replicas, and ningbo-2's
        first = next(n for n in ran if n.startswith("s-"))
        running.pop(first).cancel()  # the suzhou-1 leader's process ends: its connection (and lock) with it
        await async_wait_until(lambda: len(ran) == 3, 15, what="the other suzhou-1 replica taking over")
        assert {n for n in ran if n.startswith("s-")} == {"s-1", "s-2"} and ran.count("n-1") == 1
    finally:
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
