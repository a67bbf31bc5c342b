"""docker-compose.yml is checked by inspection here (no Docker engine runs on these machines), and
the shipped broker config is run by a real mosquitto with the files the compose's auth service writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from simulators.config import load_plant
from tests.fixtures.mosquitto import Login, login_accepted, mosquitto_binary
from tests.fixtures.probe import NOT_AUTHORIZED, Probe
from tests.fixtures.procs import REPO, ManagedProcess, free_port, port_open
from tests.fixtures.waiting import wait_until

GENERATED = "./var/"  # secrets are generated at first start into var/ (git-ignored), never in the repo


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_services_refer_to_files_and_modules_that_exist() -> None:
    services = compose()["services"]
    assert {"mosquitto", "simulators"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(GENERATED):  # checked by running the auth service's command, below
                assert "var/" in (REPO / ".gitignore").read_text().split()
            elif source.startswith("./"):
                assert (REPO / source).exists(), f"compose mounts a missing file: {source}"
        command = service.get("command")
        if command and command[:2] == ["python", "-m"]:
            module = REPO / command[2].replace(".", "/")
            assert (module / "__main__.py").exists() or module.with_suffix(".py").exists(), f"no module {command[2]}"
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
    for package in ("plantpulse", "simulators", "edge", "central"):
        assert f"COPY {package} ./{package}" in dockerfile


def _auth_command(out: Path) -> list[str]:
    """The broker-auth service's command, writing into ``out`` (its /out volume)."""
    service = compose()["services"]["broker-auth"]
    assert "./var/broker:/out" in service["volumes"]
    command = [str(out) if arg == "/out" else arg for arg in service["command"]]
    if os.geteuid() != 0 and "--broker-owner" in command:  # only root may hand files to another user
        i = command.index("--broker-owner")
        del command[i : i + 2]
    assert command[:2] == ["python", "-m"]
    return [sys.executable, *command[1:]]


def _host_path(container_path: str, volumes: list[str], generated: Path) -> Path:
    """Where a file the broker reads comes from, with ./var/broker standing for ``generated``."""
    for volume in volumes:
        source, target = volume.split(":")[:2]
        if container_path.startswith(target.rstrip("/") + "/") and source.startswith("./"):
            rel = container_path[len(target.rstrip("/")) + 1 :]
            if source.startswith("./var/broker"):
                return generated / source.removeprefix("./var/broker").lstrip("/") / rel
            return REPO / source / rel
    raise AssertionError(f"{container_path} is not in any volume the broker mounts")


def test_broker_config_mounts_a_password_file_and_an_acl_that_exist(tmp_path: Path) -> None:
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    settings = dict(line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#"))
    assert settings["allow_anonymous"] == "false"
    service = compose()["services"]["mosquitto"]
    assert service["depends_on"]["broker-auth"]["condition"] == "service_completed_successfully"
    generated = tmp_path / "broker"
    subprocess.run(_auth_command(generated), check=True, capture_output=True, cwd=REPO)
    for key in ("password_file", "acl_file"):
        host = _host_path(settings[key], service["volumes"], generated)
        assert host.is_file() and host.stat().st_size > 0, f"{key} {settings[key]} -> {host}"
    assert (generated / "central/mqtt.pw").exists() and (generated / "edge/demo/edge-modbus/command.key").exists()


def test_the_shipped_broker_config_refuses_anonymous_and_enforces_the_acl(tmp_path: Path) -> None:
    """deploy/mosquitto/mosquitto.conf as shipped, only paths and the port moved to this test."""
    generated = tmp_path / "broker"
    subprocess.run(_auth_command(generated), check=True, capture_output=True, cwd=REPO)
    port = free_port()
    volumes = compose()["services"]["mosquitto"]["volumes"]
    lines = ["user root"]
    for line in (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in ("password_file", "acl_file"):
            line = f"{key} {_host_path(value, volumes, generated)}"
        elif key == "persistence_location":
            line = f"{key} {tmp_path}/"
        elif key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "log_dest":
            line = f"log_dest file {tmp_path / 'mosquitto.log'}"
        lines.append(line)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = ManagedProcess("shipped-mosquitto", [mosquitto_binary(), "-c", str(conf)], tmp_path / "out.log")
    proc.start()
    try:
        wait_until(lambda: port_open(port) or not proc.running(), 10, what="the shipped broker listening")
        assert proc.running(), (tmp_path / "mosquitto.log").read_text()
        assert not login_accepted("127.0.0.1", port, None)
        pw = generated / "edge/demo/edge-modbus/mqtt.pw"
        gateway = Probe("edge-modbus", v5=True, login=Login("edge-modbus@demo", pw.read_text().strip(), pw))
        gateway.connect_to("127.0.0.1", port)
        try:
            assert gateway.accepted
            assert gateway.publish("plantpulse/v1/demo/edge-modbus/events", b"{}") in (0, 0x10)
            assert gateway.publish("plantpulse/v1/demo/edge-opcua/events", b"{}") == NOT_AUTHORIZED
            assert gateway.publish("plantpulse/v1/demo/edge-modbus/cmd/ack", b"{}") == NOT_AUTHORIZED
        finally:
            gateway.close()
    finally:
        proc.stop()
