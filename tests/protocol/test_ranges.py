"""RangeSet: the applied-ranges bookkeeping both ends of the wire rely on."""

from __future__ import annotations

import itertools
import random

from plantpulse.protocol.ranges import RangeSet


def test_add_merges_overlapping_and_adjacent() -> None:
    rs = RangeSet()
    rs.add(5, 7)
    rs.add(1, 2)
    rs.add(3)  # adjacent to both sides? 3 touches 2 -> merges with 1..2, and 4 is missing
    assert rs.ranges() == [(1, 3), (5, 7)]
    rs.add(4)
    assert rs.ranges() == [(1, 7)]
    rs.add(10, 12)
    rs.add(8, 20)
    assert rs.ranges() == [(1, 20)]
    assert rs.count() == 20


def test_contains_missing_and_contiguous() -> None:
    rs = RangeSet([(1, 5), (8, 9), (15, 15)])
    assert 5 in rs and 6 not in rs and 15 in rs and 0 not in rs
    assert rs.missing(1, 20) == [(6, 7), (10, 14), (16, 20)]
    assert rs.missing(2, 4) == []
    assert rs.missing(0, 1) == [(0, 0)]
    assert rs.contiguous_from(1) == 5
    assert rs.contiguous_from(6) == 5
    assert rs.contiguous_from(8) == 9


def test_remove_splits() -> None:
    rs = RangeSet([(1, 10)])
    rs.remove(4, 6)
    assert rs.ranges() == [(1, 3), (7, 10)]
    rs.remove(1, 3)
    assert rs.ranges() == [(7, 10)]
    assert rs.intersection(8, 20) == [(8, 10)]


def test_matches_a_plain_set_under_random_operations() -> None:
    rng = random.Random(7)
    rs, plain = RangeSet(), set[int]()
    for _ in range(2000):
        lo = rng.randint(0, 300)
        hi = lo + rng.randint(0, 10)
        if rng.random() < 0.7:
            rs.add(lo, hi)
            plain.update(range(lo, hi + 1))
        else:
            rs.remove(lo, hi)
            plain.difference_update(range(lo, hi + 1))
        assert rs.count() == len(plain)
    assert {n for a, b in rs for n in range(a, b + 1)} == plain
    ranges = rs.ranges()
    assert all(b1 + 1 < a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))
