"""Scan to report in the order book (in process, real store and broker): a double scan sent twice at once is
counted once, a reused id with other content is refused, and a count report survives a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from central.config import CentralConfig
from central.progress.orders import WorkOrderIn
from central.progress.reports import Outcome, ReportConflictError, ReportIn, ReportKind
from central.runtime import Central
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import async_wait_until


def config(broker: Mosquitto, tmp_path: Path) -> CentralConfig:
    return CentralConfig.model_validate({
        "site": "t", "mqtt": broker.mqtt(broker.central_login(), keepalive=5, reconnect_max=1),
        "store": {"path": str(tmp_path / "central.sqlite")}, "notify": {"shift_summaries": False},
    })


ORDER = WorkOrderIn.model_validate({"id": "SO-1", "product": "p", "quantity": 10, "due": 1_900_000_000, "operations": [
    {"seq": 10, "name": "hand check", "machine": "bench-01", "quantity": 10, "ideal_cycle_time": 30,
     "count_source": "reports"}]})


async def test_a_double_scan_sent_twice_at_once_counts_once_and_survives_a_restart(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    scan = ReportIn(client_id="c-1", operator="W-1", order_id="SO-1", seq=10, good=4, scrap=1)
    async with Central.running(config(mosquitto, tmp_path)) as central:
        await async_wait_until(lambda: central.ingest.connected, 10)
        await central.orders.create(ORDER, by="planning")
        first, second = await asyncio.gather(central.floor.report(scan, key_name="scanner"),
                                             central.floor.report(scan, key_name="scanner"))
        assert sorted([first.outcome, second.outcome]) == [Outcome.DUPLICATE, Outcome.NEW]
        parts = central.orders.parts(("SO-1", 10))
        assert (parts.good, parts.scrap) == (4, 1)
        with pytest.raises(ReportConflictError):
            await central.floor.report(scan.model_copy(update={"good": 5}), key_name="scanner")
    async with Central.running(config(mosquitto, tmp_path)) as again:
        await async_wait_until(lambda: again.ingest.connected, 10)
        assert (await again.floor.report(scan, key_name="scanner")).outcome is Outcome.DUPLICATE
        parts = again.orders.parts(("SO-1", 10))
        assert (parts.good, parts.scrap) == (4, 1)
        done = ReportIn(client_id="c-2", operator="W-1", order_id="SO-1", seq=10, good=6)
        assert (await again.floor.report(done, key_name="scanner")).outcome is Outcome.NEW
        assert again.orders.plan.operations[("SO-1", 10)].status.value == "done"  # counted by reports: complete


async def test_a_start_scan_sent_twice_at_once_starts_once_with_its_report_in_the_same_commit(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    """The action and its report are one commit: the stored audit row and report come and go together
    (a crash between two commits kept the start and lost the report, so the retried scan started again)."""
    start = ReportIn(client_id="s-1", operator="W-1", order_id="SO-1", seq=10, kind=ReportKind.START)
    async with Central.running(config(mosquitto, tmp_path)) as central:
        await async_wait_until(lambda: central.ingest.connected, 10)
        await central.orders.create(ORDER, by="planning")
        first, second = await asyncio.gather(central.floor.report(start, key_name="scanner"),
                                             central.floor.report(start, key_name="scanner"))
        assert sorted([first.outcome, second.outcome]) == [Outcome.DUPLICATE, Outcome.NEW]
        assert central.orders.plan.operations[("SO-1", 10)].status.value == "running"
    async with Central.running(config(mosquitto, tmp_path)) as again:
        await async_wait_until(lambda: again.ingest.connected, 10)
        audit = [a for a in await again.store.audit_trail(order_id="SO-1") if a.action == "start"]
        assert len(audit) == 1 and audit[0].by == "W-1 via scanner"
        assert list(again.orders.reports) == ["s-1"]
        assert (await again.floor.report(start, key_name="scanner")).outcome is Outcome.DUPLICATE
