"""Leases in PostgreSQL: taking, renewing, losing, giving up, and the outbox claimed once across senders."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from central.alerts.conditions import Condition, Rule, Severity, Texts
from central.alerts.lifecycle import reconcile
from central.cluster.ownership import Ownership
from central.store.postgres import PostgresStore
from central.store.records import Delivery, GatewayRow, Transaction

T = 1_800_000_000.0


async def owners(pool: asyncpg.Pool) -> dict[str, str | None]:
    return {r[0]: r[1] for r in await pool.fetch("SELECT edge_id, owner FROM gateway_leases")}


async def test_two_workers_share_gateways_and_a_leaving_one_hands_them_over(pg_dsn: str) -> None:
    store = await PostgresStore.open(pg_dsn, "s")
    a = await Ownership.open(pg_dsn, "s", lease_seconds=5, moves=2)
    b = await Ownership.open(pg_dsn, "s", lease_seconds=5, moves=2)
    try:
        for i in range(6):
            await a.seen(f"gw{i}")
        gained = (await a.cycle()).gained  # alone: takes everything
        assert len(gained) == 6 and all(a.owns(e) for e in gained)
        assert (await b.cycle()).gained == set()  # nothing free; b now counts as a worker
        give = (await a.cycle()).give_up  # its share is 3 now: two given up per cycle
        assert len(give) == 2
        await a.give_up(give)
        assert set((await b.cycle()).gained) == set(give)
        await a.leave()
        assert len((await b.cycle()).gained) == 4  # alone again: takes the rest at once
        assert set((await owners(store.pool)).values()) == {b.owner}
    finally:
        for o in (a, b):
            await o.close()
        await store.close()


async def test_a_lease_taken_over_is_lost_and_a_stalled_worker_stops_trusting_its_leases(pg_dsn: str) -> None:
    store = await PostgresStore.open(pg_dsn, "s")
    a = await Ownership.open(pg_dsn, "s", lease_seconds=2, moves=2)
    b = await Ownership.open(pg_dsn, "s", lease_seconds=2, moves=2)
    try:
        await a.seen("gw1")
        await a.cycle()
        token = a.token("gw1")
        assert token is not None
        await store.pool.execute("UPDATE gateway_leases SET expires_at = 0")  # as if a stalled past its lease
        assert "gw1" in (await b.cycle()).gained
        assert b.token("gw1") == token + 1
        assert (await a.cycle()).lost == ["gw1"] and not a.owns("gw1")
        a.valid_until = time.monotonic() - 1  # could not renew in time: applies nothing any more
        assert b.owns("gw1") and not a.owns("gw1")
    finally:
        for o in (a, b):
            await o.close()
        await store.close()


async def test_two_senders_never_claim_the_same_delivery(pg_dsn: str) -> None:
    s1, s2 = await PostgresStore.open(pg_dsn, "s"), await PostgresStore.open(pg_dsn, "s")
    try:
        tx = Transaction()
        for i in range(40):
            cond = Condition(Rule.FAULT, f"m{i}", Severity.CRITICAL, Texts("故障", "fault"), since=T, episode="1")
            result = reconcile([], [cond], T)
            tx.alerts.update({c.alert.id: c.alert for c in result.changes})
            tx.notifications += result.notifications
            tx.deliveries += [Delivery(n.id, "mqtt", "s", next_at=T) for n in result.notifications]
        await s1.commit(tx)
        got = await asyncio.gather(*(s.due_deliveries(T + 1, "mqtt", limit=15) for s in (s1, s2, s1, s2)))
        ids = [d.notification_id for batch in got for d, _ in batch]
        assert len(ids) == len(set(ids)) == 40  # each claimed by exactly one sender
        assert await s2.due_deliveries(T + 2, "mqtt") == []  # claimed: not due again until the claim ends
    finally:
        await s1.close()
        await s2.close()


async def test_a_worker_whose_sessions_are_gone_loses_its_leases_at_once(pg_dsn: str) -> None:
    await (await PostgresStore.open(pg_dsn, "s")).close()  # migrated
    a = await Ownership.open(pg_dsn, "s", lease_seconds=60, moves=2)
    b = await Ownership.open(pg_dsn, "s", lease_seconds=60, moves=2)
    try:
        await a.seen("gw1")
        await a.cycle()
        assert a.owns("gw1")
        await a.pool.close()  # as its process died: no session of a is left
        assert "gw1" in (await b.cycle()).gained  # long before the 60 s lease would have expired
    finally:
        await b.close()


async def test_workers_of_two_sites_in_one_database_share_nothing(pg_dsn: str) -> None:
    """Both plants have a gw1: each site's workers lease their own, count only their own site's workers when
    balancing, and commit their own gw1 under their own lease (no fencing across sites)."""
    s_store = await PostgresStore.open(pg_dsn, "s")
    a = await Ownership.open(pg_dsn, "s", lease_seconds=30, moves=2)
    c = await Ownership.open(pg_dsn, "t", lease_seconds=30, moves=2)
    t_store = await PostgresStore.open(pg_dsn, "t", fence=c)
    try:
        for o in (a, c):
            for i in range(2):
                await o.seen(f"gw{i}")
        assert set((await a.cycle()).gained) == {"gw0", "gw1"}
        assert set((await c.cycle()).gained) == {"gw0", "gw1"}  # its own site's, though a holds s's gw1
        assert (await a.cycle()).give_up == []  # c is no worker of site s: a keeps its share
        rows = await s_store.pool.fetch("SELECT site, edge_id, owner FROM gateway_leases ORDER BY site, edge_id")
        assert [(r[0], r[1], r[2]) for r in rows] == [("s", "gw0", a.owner), ("s", "gw1", a.owner),
                                                      ("t", "gw0", c.owner), ("t", "gw1", c.owner)]
        tx = Transaction()
        tx.gateways["gw1"] = GatewayRow(edge_id="gw1", site="t")
        await t_store.commit(tx)  # fenced by c's lease of t/gw1, not by a's of s/gw1
        assert set((await t_store.load()).gateways) == {"gw1"} and (await s_store.load()).gateways == {}
    finally:
        for o in (a, c):
            await o.close()
        for st in (s_store, t_store):
            await st.close()
