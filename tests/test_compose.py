"""docker-compose.yml is checked by inspection here (no Docker engine runs on these machines)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from simulators.config import load_plant
from tests.fixtures.procs import REPO


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_services_refer_to_files_and_modules_that_exist() -> None:
    services = compose()["services"]
    assert {"mosquitto", "simulators"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"compose mounts a missing file: {source}"
        command = service.get("command")
        if command and command[:2] == ["python", "-m"]:
            assert (REPO / command[2] / "__main__.py").exists(), f"no module {command[2]}"
        if service.get("build") == ".":
            assert (REPO / "Dockerfile").exists()


def test_simulator_service_runs_the_demo_plant_on_the_published_ports() -> None:
    service = compose()["services"]["simulators"]
    command = service["command"]
    plant_path = command[command.index("--plant") + 1]
    assert plant_path.startswith("/app/")
    plant = load_plant(REPO / plant_path.removeprefix("/app/"))
    published: set[int] = set()
    for mapping in service["ports"]:
        host_part = str(mapping).split(":")[0]
        lo, _, hi = host_part.partition("-")
        published.update(range(int(lo), int(hi or lo) + 1))
    assert plant.control_port in published
    assert {m.port for m in plant.machines} <= published


def test_broker_config_sets_queue_limits_and_persistence() -> None:
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    assert re.search(r"^persistence true$", conf, re.M)
    assert re.search(r"^max_queued_messages \d+$", conf, re.M)
    assert re.search(r"^set_tcp_nodelay true$", conf, re.M)


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("plantpulse", "protocol", "simulators", "edge", "central"):
        assert f"COPY {package} ./{package}" in dockerfile
