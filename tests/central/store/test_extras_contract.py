"""The store contract for stop reasons and shift summaries (issue 13), on every store implementation."""

from __future__ import annotations

from central.progress.stops import StopCause, StopReasonIn, accept_stop
from central.store.extra_records import ExtraWrites, RepairEta, SummaryRow
from central.store.records import Transaction
from tests.central.store.test_contract import Opener, T, opener  # noqa: F401 - the parametrised fixture


def stop(cid: str, machine: str, start: float, end: float | None) -> Transaction:
    body = StopReasonIn(client_id=cid, operator="op7", machine=machine, reason=StopCause.MATERIAL, start=start,
                        end=end, note="castings")
    return Transaction(extras=ExtraWrites(stops=[accept_stop(None, body, at=start + 1)[0]]))


async def test_stop_reasons_are_kept_once_per_client_id_and_found_by_window(opener: Opener) -> None:  # noqa: F811
    store = await opener()
    await store.commit(stop("a", "m1", T, T + 600))
    await store.commit(stop("b", "m1", T + 1000, None))
    await store.commit(stop("c", "m2", T, T + 50))
    await store.commit(stop("a", "m9", T, T + 5))  # same id again: the first one stays
    again = await opener()
    first = await again.stop_reason("a")
    assert first is not None and first.machine == "m1" and first.end == T + 600 and first.content.note == "castings"
    assert await again.stop_reason("zz") is None
    assert [s.content.client_id for s in await again.stop_reasons("m1", T + 500, T + 2000)] == ["a", "b"]
    assert [s.content.client_id for s in await again.stop_reasons("m1", T + 700, T + 900)] == []
    assert [s.content.client_id for s in await again.stop_reasons(None, T, T + 10)] == ["a", "c"]


async def test_a_shift_summary_is_written_once(opener: Opener) -> None:  # noqa: F811
    store = await opener()
    row = SummaryRow("plant/day/1", None, "day", T, T + 8 * 3600, T + 8 * 3600 + 2, {"completed": [], "n": 1})
    await store.commit(Transaction(extras=ExtraWrites(summaries=[row])))
    await store.commit(Transaction(extras=ExtraWrites(summaries=[SummaryRow(
        "plant/day/1", None, "day", T, T + 1, T, {"n": 2})])))
    later = SummaryRow("a/night/2", "a", "night", T + 9 * 3600, T + 17 * 3600, T + 17 * 3600, {"n": 3})
    await store.commit(Transaction(extras=ExtraWrites(summaries=[later])))
    again = await opener()
    assert await again.shift_summary("plant/day/1") == row
    assert [s.id for s in await again.shift_summaries()] == ["a/night/2", "plant/day/1"]
    assert [s.id for s in await again.shift_summaries(line="a")] == ["a/night/2"]
    assert [s.id for s in await again.shift_summaries(until=T + 10 * 3600)] == ["plant/day/1"]


async def test_repair_etas_are_replaced_per_machine_and_withdrawn(opener: Opener) -> None:  # noqa: F811
    store = await opener()
    await store.commit(Transaction(extras=ExtraWrites(repairs=[RepairEta("m1", T + 600, "maint", T, "spindle"),
                                                               RepairEta("m2", T + 60, "maint", T)])))
    await store.commit(Transaction(extras=ExtraWrites(repairs=[RepairEta("m1", T + 1200, "lee", T + 5)])))
    await store.commit(Transaction(extras=ExtraWrites(repairs=[RepairEta("m2", None, "lee", T + 6)])))
    again = await opener()
    assert await again.repair_etas() == [RepairEta("m1", T + 1200, "lee", T + 5, None)]
