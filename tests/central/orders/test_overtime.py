"""Overtime from ``orders.overtime`` extends a line's shift calendar for the projection only (issue 13)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from central.alerts.config import AlertsConfig
from central.alerts.engine import AlertEngine
from central.ingest.config import IngestConfig
from central.ingest.live import LiveState
from central.orders.book import OrderBook
from central.orders.config import OrdersConfig
from central.orders.projector import Projector
from central.progress.machines import Catalog, MachinesConfig
from central.store.sqlite import SqliteStore

SAT_8 = datetime(2026, 3, 7, 8, tzinfo=UTC).timestamp()  # a Saturday: no shift on the line's calendar


async def test_overtime_adds_planned_time_to_the_line_it_names(tmp_path: Path) -> None:
    catalog = Catalog(MachinesConfig.model_validate({
        "lines": [{"id": "line-a", "shifts": {"timezone": "UTC", "shifts": [
            {"name": "day", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "16:00"}]}}],
        "machines": [{"id": "cnc-01", "line": "line-a"}, {"id": "cnc-02", "line": "line-a"}, {"id": "saw-01"}]}))
    cfg = OrdersConfig.model_validate({"overtime": [
        {"lines": ["line-a"], "start": "2026-03-07T08:00:00Z", "end": "2026-03-07T12:00:00Z"}]})
    store = await SqliteStore.open(tmp_path / "c.sqlite", "s")
    try:
        book = OrderBook(store, catalog, clock=time.time)
        projector = Projector(book, LiveState(IngestConfig(), catalog), catalog, cfg,
                              AlertEngine(AlertsConfig(), catalog, [], store, clock=time.time), store,
                              clock=time.time)
        assert catalog.calendar("cnc-01").planned(SAT_8, SAT_8 + 86_400) == []
        assert projector.calendar("cnc-01").planned(SAT_8, SAT_8 + 86_400) == [(SAT_8, SAT_8 + 4 * 3600)]
        assert projector.calendar("cnc-01") is projector.calendar("cnc-02")  # one per line: compiled once
        assert projector.calendar("saw-01") is catalog.calendar("saw-01")
    finally:
        await store.close()


def test_overtime_entries_are_checked() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        OrdersConfig.model_validate({"overtime": [{"lines": ["a"], "start": 100, "end": 50}]})
    with pytest.raises(ValueError, match="name the lines or machines"):
        OrdersConfig.model_validate({"overtime": [{"start": 100, "end": 500}]})
