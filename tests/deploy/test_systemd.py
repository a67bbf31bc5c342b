"""The systemd units: notify-type services that systemd watches, each as its own user with its state in
a StateDirectory, starting a real entry point with arguments its parser accepts; the example configs they
name validate with the project's loaders against secrets made by plantpulse.secrets; systemd-analyze
finds nothing to say about them."""

from __future__ import annotations

import configparser
import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from central.config import load_central_config
from edge.config import load_edge_config
from plantpulse.secrets import generate
from tests.fixtures.procs import REPO

UNITS = REPO / "deploy/systemd"
SECRETS = "/etc/plantpulse/secrets"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive in systemd
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize(("name", "module"), [("plantpulse-edge.service", "edge"),
                                              ("plantpulse-central.service", "central")])
def test_units_are_watched_notify_services_of_their_own_user(name: str, module: str) -> None:
    service = unit(name)["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "on-failure" and int(service["WatchdogSec"]) >= 10
    assert service["User"] == f"plantpulse-{module}" and service["Group"] == service["User"]
    assert service["StateDirectory"] == f"plantpulse-{module}"
    assert "AF_UNIX" in service["RestrictAddressFamilies"]  # sd_notify's socket
    argv = shlex.split(service["ExecStart"])
    assert argv[:3] == ["/opt/plantpulse/venv/bin/python", "-m", module]
    importlib.import_module(f"{module}.cli")._parser().parse_args(argv[3:])
    assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_example_configs_validate_and_keep_their_state_in_the_state_directory(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    generate(secrets, "suzhou-1", ["line-a"], tls_names=["broker.plant.lan"])

    def installed(example: str) -> Path:
        text = (UNITS / example).read_text().replace(SECRETS, str(secrets))
        path = tmp_path / example
        path.write_text(text)
        return path

    edge = load_edge_config(installed("edge.example.yaml"))
    assert edge.mqtt.password() and edge.mqtt.tls is not None and edge.mqtt.tls.ca_file.exists()
    assert edge.mqtt.username == f"{edge.edge_id}@{edge.site}"
    assert str(edge.data_dir) == "/var/lib/" + unit("plantpulse-edge.service")["Service"]["StateDirectory"]
    central = load_central_config(installed("central.example.yaml"))
    assert central.site == edge.site  # one central serves its gateways' site
    assert central.mqtt.password() and all(k.digest() for k in central.api.keys)
    state = "/var/lib/" + unit("plantpulse-central.service")["Service"]["StateDirectory"]
    assert str(central.store.path.parent) == state
    execs = {name: shlex.split(unit(name)["Service"]["ExecStart"]) for name in
             ("plantpulse-edge.service", "plantpulse-central.service")}
    assert execs["plantpulse-edge.service"][-1] == "/etc/plantpulse/edge.yaml"
    assert execs["plantpulse-central.service"][-1] == "/etc/plantpulse/central.yaml"
    assert yaml.safe_load((UNITS / "edge.example.yaml").read_text())["machines"]


def test_the_backup_unit_runs_central_backup_as_central_into_its_state_directory() -> None:
    service = unit("plantpulse-central-backup.service")["Service"]
    assert service["Type"] == "oneshot" and service["User"] == "plantpulse-central"
    argv = shlex.split(service["ExecStart"])
    assert argv[2:4] == ["central", "backup"]
    args = importlib.import_module("central.cli")._parser().parse_args(argv[3:])
    assert str(args.to) == "/var/lib/" + service["StateDirectory"]
    assert str(args.to) in service["ExecStartPost"]
    assert unit("plantpulse-central-backup.timer")["Timer"]["OnCalendar"]


@pytest.mark.parametrize("names", [["plantpulse-edge.service"], ["plantpulse-central.service"],
                                   ["plantpulse-central-backup.service", "plantpulse-central-backup.timer"]])
def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path, names: list[str]) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    copies = []
    for name in names:
        # the program exists where the test runs (systemd checks ExecStart's executable)
        text = (UNITS / name).read_text().replace("/opt/plantpulse/venv/bin/python", sys.executable)
        copies.append(tmp_path / name)
        copies[-1].write_text(text)
    done = subprocess.run([tool, "verify", *map(str, copies)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
