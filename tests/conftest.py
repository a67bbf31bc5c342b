"""Fixtures with real parts: private mosquitto brokers and simulated plants, always stopped."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import BrokerOptions, Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.postgres import pg_dsn  # noqa: F401 - a fixture, used by name


@pytest.fixture(autouse=True, scope="module")
def _leaks_fail_their_own_module() -> Iterator[None]:
    """Collect garbage after each test file, so that an unclosed socket or file (a ResourceWarning,
    an error here) fails the file that leaked it instead of whichever test the collector happens to
    run in later, on another file, at random."""
    yield
    gc.collect()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers with options (see BrokerOptions); each is stopped at the end of the test."""
    brokers: list[Mosquitto] = []

    def make(**options: object) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{len(brokers)}", BrokerOptions(**options))  # type: ignore[arg-type]
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(broker_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A private broker without persistence on a free loopback port, secured like the shipped one:
    passwords and the per-gateway ACL (tests/fixtures/mosquitto.py)."""
    return broker_factory()


@pytest.fixture
def plant_factory(tmp_path: Path) -> Iterator[Callable[[str], SimulatedPlant]]:
    """Start a simulated plant from a YAML string; stopped at the end even when the test fails."""
    plants: list[SimulatedPlant] = []

    def make(plant_yaml: str) -> SimulatedPlant:
        plant = SimulatedPlant(tmp_path / f"plant{len(plants)}", plant_yaml)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()
