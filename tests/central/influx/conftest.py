"""Fixtures of the InfluxDB writer tests: a real VictoriaMetrics and a scripted InfluxDB-like HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.central.influx.fake_influx import FakeInflux
from tests.fixtures.victoria import VictoriaMetrics


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private VictoriaMetrics on a free loopback port (deduplicating like InfluxDB), stopped at the end."""
    vm = VictoriaMetrics(tmp_path / "victoria")
    try:
        yield vm.start()
    finally:
        vm.stop()


@pytest.fixture
def fake_influx() -> Iterator[FakeInflux]:
    """An HTTP server answering /api/v2/write with scripted statuses; stopped at the end."""
    server = FakeInflux()
    try:
        yield server.start()
    finally:
        server.stop()
