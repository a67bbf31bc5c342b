"""The balancing rule, run for every worker in turn until nothing moves (pure: no database)."""

from __future__ import annotations

from dataclasses import replace

from central.cluster.balance import Lease, plan, share

NOW = 1000.0


def settle(leases: dict[str, Lease], workers: list[str], moves: int = 2) -> int:
    """Run cycles (each worker once per cycle) until nothing changes; returns the cycles it took."""
    for cycle in range(1, 100):
        changed = False
        for me in workers:
            p = plan(me, list(leases.values()), len(workers), NOW, moves=moves)
            for edge in p.give_up:
                leases[edge] = replace(leases[edge], owner=None)
                changed = True
            for edge in p.take:
                le = leases[edge]
                leases[edge] = replace(le, owner=me, token=le.token + 1, expires_at=NOW + 15)
                changed = True
        if not changed:
            return cycle
    raise AssertionError("never settled")


def holdings(leases: dict[str, Lease], workers: list[str]) -> list[int]:
    return [sum(1 for le in leases.values() if le.owner == w and le.held(NOW)) for w in workers]


def gateways(n: int) -> dict[str, Lease]:
    return {f"gw{i:02d}": Lease(f"gw{i:02d}", None, 0, 0.0) for i in range(n)}


def test_new_gateways_are_shared_out_and_every_one_owned_once() -> None:
    leases = gateways(20)
    workers = ["a", "b", "c"]
    settle(leases, workers)
    held = holdings(leases, workers)
    assert sum(held) == 20 and max(held) <= share(20, 3)


def test_a_join_and_a_leave_keep_everyone_within_share_plus_one() -> None:
    leases = gateways(20)
    settle(leases, ["a"])
    assert holdings(leases, ["a"]) == [20]
    cycles = settle(leases, ["a", "b", "c", "d"])  # three join: a gives up two per cycle
    held = holdings(leases, ["a", "b", "c", "d"])
    assert sum(held) == 20 and max(held) <= share(20, 4) + 1 and cycles > 2
    # d is killed: its leases expire, the others take them at once (no rate limit on free leases)
    leases = {e: (replace(le, expires_at=NOW - 1) if le.owner == "d" else le) for e, le in leases.items()}
    assert settle(leases, ["a", "b", "c"]) <= 2
    held = holdings(leases, ["a", "b", "c"])
    assert sum(held) == 20 and max(held) <= share(20, 3) + 1


def test_a_worker_gives_up_only_what_is_beyond_its_share_a_few_at_a_time() -> None:
    leases = {e: replace(le, owner="a", expires_at=NOW + 5) for e, le in gateways(10).items()}
    p = plan("a", list(leases.values()), 2, NOW, moves=2)
    assert len(p.give_up) == 2 and p.take == [] and p.share == 5
    assert plan("b", list(leases.values()), 2, NOW, moves=2).take == []  # nothing free yet
