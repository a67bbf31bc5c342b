"""The in-memory live tail answers exactly what the database would, or says it cannot."""

from __future__ import annotations

from edge.buffer.records import StoredEvent
from edge.buffer.tail import LiveTail


def ev(seq: int) -> StoredEvent:
    return StoredEvent(seq=seq, ts=float(seq), machine_id="m", kind="count", payload=b"{}")


def seqs(events: list[StoredEvent] | None) -> list[int] | None:
    return None if events is None else [e.seq for e in events]


def test_serves_what_it_covers_and_refuses_older_seqs() -> None:
    t = LiveTail(capacity=100, next_seq=11)
    t.extend(map(ev, range(11, 21)))
    assert seqs(t.after(10, 3)) == [11, 12, 13]
    assert seqs(t.after(18, 100)) == [19, 20]
    assert seqs(t.after(20, 5)) == []
    assert t.after(9, 5) is None  # seq 10 might be held: only the database knows
    assert seqs(t.range(12, 14)) == [12, 13, 14]
    assert t.range(10, 14) is None


def test_trimming_to_capacity_moves_what_it_covers() -> None:
    t = LiveTail(capacity=5, next_seq=1)
    for start in range(1, 3000, 10):
        t.extend(map(ev, range(start, start + 10)))
    assert len(t) == 5 and t.covers_from == 2996
    assert seqs(t.after(2995, 10)) == [2996, 2997, 2998, 2999, 3000]
    assert t.after(2994, 10) is None


def test_discarding_confirmed_ranges() -> None:
    t = LiveTail(capacity=100, next_seq=1)
    t.extend(map(ev, range(1, 11)))
    t.discard([(1, 3), (6, 7), (50, 60)])
    assert seqs(t.after(0, 100)) == [4, 5, 8, 9, 10]
    t.discard([(4, 5)])
    assert seqs(t.after(0, 100)) == [8, 9, 10]
    assert t.covers_from == 1  # confirmed events are gone from the database too


def test_reset_forgets_everything() -> None:
    t = LiveTail(capacity=100, next_seq=1)
    t.extend(map(ev, range(1, 11)))
    t.reset(11)
    assert t.after(5, 10) is None
    assert seqs(t.after(10, 10)) == []
