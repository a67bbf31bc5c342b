"""Fixtures for central's tests: a central process on a private broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.services import CentralProcess


@pytest.fixture
def central_factory(tmp_path: Path) -> Iterator[Callable[..., CentralProcess]]:
    started: list[CentralProcess] = []

    def make(broker: Mosquitto, **settings: Any) -> CentralProcess:
        central = CentralProcess(tmp_path / f"central{len(started)}", broker, **settings)
        started.append(central)
        return central.start()

    yield make
    for central in started:
        central.stop()
