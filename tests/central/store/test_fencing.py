"""Exactly-once across processes: a commit is fenced by the gateway's lease, checked under its row lock.

Two stores (two workers) commit the same gateway's seqs at the same time while the lease changes
hands under them; a raw message row (not deduplicated by any key) per commit shows every commit
that went through: never two for one seq, and only ever the holder's.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from central.progress.counts import CountRecord
from central.progress.status import MachineStatus
from central.store.base import FencedError
from central.store.postgres import PostgresStore
from central.store.records import CountRow, EpochRow, GatewayRow, RawMessage, Transaction
from tests.fixtures.ids import EPOCH1

T = 1_800_000_000.0


class Leases:
    """The tokens a worker took its leases with (the ownership module's role in production)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.tokens: dict[str, int] = {}

    def token(self, edge_id: str) -> int | None:
        return self.tokens.get(edge_id)


def a_round(seq: int, who: str) -> Transaction:
    tx = Transaction()
    tx.messages.append(RawMessage(T + seq, "plantpulse/v1/s/gw1/events", "gw1", who.encode()))
    tx.counts.append(CountRow("gw1", EPOCH1, seq, CountRecord("m1", T, T + seq, 1, 0, "J1")))
    tx.statuses["m1"] = MachineStatus("m1", good_total=seq)
    tx.epochs[("gw1", EPOCH1)] = EpochRow("gw1", EPOCH1, [(1, seq)], True)
    tx.gateways["gw1"] = GatewayRow(edge_id="gw1", site="s")
    return tx


async def test_a_worker_without_the_lease_commits_nothing(pg_dsn: str) -> None:
    a, b = Leases("a"), Leases("b")
    sa, sb = await PostgresStore.open(pg_dsn, "s", fence=a), await PostgresStore.open(pg_dsn, "s", fence=b)
    try:
        await sa.pool.execute("INSERT INTO gateway_leases VALUES ('s', 'gw1', 'a', 1, $1)", T)
        a.tokens["gw1"] = 1
        await sa.commit(a_round(1, "a"))
        with pytest.raises(FencedError, match="gw1"):
            await sb.commit(a_round(1, "b"))
        # b takes the gateway over (token 2): a's next commit is refused, b's goes through
        await sa.pool.execute("UPDATE gateway_leases SET owner = 'b', token = 2")
        b.tokens["gw1"] = 2
        with pytest.raises(FencedError):
            await sa.commit(a_round(2, "a"))
        await sb.commit(a_round(2, "b"))
        # a stale token of the same owner (a worker that lost and retook it) is refused too
        b.tokens["gw1"] = 1
        with pytest.raises(FencedError):
            await sb.commit(a_round(3, "b"))
        rows = await sa.pool.fetch("SELECT payload FROM messages ORDER BY id")
        assert [bytes(r[0]) for r in rows] == [b"a", b"b"]
        assert [r.good for r in await sa.counts("m1", 0, T + 10)] == [1, 1]
    finally:
        await sa.close()
        await sb.close()


async def test_two_concurrent_committers_never_both_commit_a_seq(pg_dsn: str) -> None:
    a, b = Leases("a"), Leases("b")
    sa = await PostgresStore.open(pg_dsn, "s", fence=a, pool_size=2)
    sb = await PostgresStore.open(pg_dsn, "s", fence=b, pool_size=2)
    rng = random.Random(15)
    committed: dict[str, list[int]] = {"a": [], "b": []}
    try:
        await sa.pool.execute("INSERT INTO gateway_leases VALUES ('s', 'gw1', 'a', 1, $1)", T)
        a.tokens["gw1"] = 1

        async def hand_over(token: int) -> None:
            """The other worker takes the lease (in its own transaction, under the row lock)."""
            owner = rng.choice("ab")
            await sa.pool.execute("UPDATE gateway_leases SET owner = $1, token = $2", owner, token)
            (a if owner == "a" else b).tokens["gw1"] = token

        async def commit(store: PostgresStore, who: str, seq: int) -> None:
            # as central/cluster does: a round reads what the store applied (a worker that took a gateway
            # over reloads it) and commits under the token it held when it began (Transaction.tokens); a
            # hand-over after that read fences the commit. Without the pinned token, the old holder's commit
            # of a seq just before the hand-over and the new holder's just after were both let through (the
            # test failed so once in a loaded run: its model read the token at commit time)
            leases = a if who == "a" else b
            token = leases.token("gw1")
            if await store.pool.fetchval("SELECT count(*) FROM messages WHERE received_at = $1", T + seq):
                return
            tx = a_round(seq, who)
            tx.tokens = {"gw1": token} if token is not None else {}
            try:
                await store.commit(tx)
                committed[who].append(seq)
            except FencedError:
                pass

        for seq in range(1, 121):
            await asyncio.gather(commit(sa, "a", seq), commit(sb, "b", seq),
                                 *([hand_over(seq + 1)] if seq % 3 == 0 else []))
        rows = await sa.pool.fetch("SELECT received_at - $1 AS seq, count(*) FROM messages GROUP BY 1", T)
        assert all(r["count"] == 1 for r in rows), "a seq was committed twice"
        assert not set(committed["a"]) & set(committed["b"])
        assert len(rows) == len(committed["a"]) + len(committed["b"]) >= 60
        assert committed["a"] and committed["b"]  # both held the lease at some time
    finally:
        await sa.close()
        await sb.close()


async def test_a_persons_commit_is_announced_to_the_workers_and_a_round_is_not(pg_dsn: str) -> None:
    from central.alerts.conditions import Condition, Rule, Severity, Texts
    from central.alerts.lifecycle import reconcile
    from central.store.postgres import PEOPLE_CHANNEL, ROUND_CHANNEL

    store = await PostgresStore.open(pg_dsn, "s")
    heard: list[str] = []
    con = await asyncpg.connect(pg_dsn)
    try:
        for channel in (PEOPLE_CHANNEL, ROUND_CHANNEL):
            await con.add_listener(channel, lambda _c, _p, ch, _x: heard.append(ch))
        await store.commit(a_round(1, "a"))  # a gateway's round: the API replicas, not the workers
        result = reconcile([], [Condition(Rule.FAULT, "m1", Severity.CRITICAL, Texts("故障", "fault"), since=T,
                                          episode="1")], T)
        await store.commit(Transaction(alerts={c.alert.id: c.alert for c in result.changes}))  # as a person's
        for _ in range(50):
            if len(heard) >= 3:
                break
            await asyncio.sleep(0.05)
        assert heard == [ROUND_CHANNEL, ROUND_CHANNEL, PEOPLE_CHANNEL]
    finally:
        await con.close()
        await store.close()
