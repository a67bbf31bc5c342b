"""deploy/scaled/docker-compose.scaled.yml (central scaled out, docs/scaling.md) checked by inspection, as
tests/test_compose.py checks the base file: the init service makes PostgreSQL's password and central's
connection string, the workers' and API replicas' commands parse, and their configuration validates and
names that connection string."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from central.config import CentralConfig, load_central_config
from plantpulse.configfile import parse_yaml_model
from tests.fixtures.compose import Compose
from tests.fixtures.procs import REPO

SCALED = "deploy/scaled/docker-compose.scaled.yml"


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    c = Compose(tmp_path_factory.mktemp("scaled"), overrides=(SCALED,))
    c.run_init()
    return c


def test_the_scaled_services_run_real_commands_on_a_shared_postgresql(compose: Compose) -> None:
    for name, role in (("central-ingest", "ingest"), ("central-api", "api")):
        service = compose.services[name]
        assert service["profiles"] == ["scaled"] and service["image"] == "plantpulse:local"
        command = service["command"]
        assert command[:4] == ["python", "-m", "central", role]
        importlib.import_module("central.cli")._parser().parse_args(command[3:])
        cfg = load_central_config(compose.host_config(name, compose.command_arg(name, "--config")))
        assert cfg.store.kind == "postgresql" and cfg.cluster.lease_seconds == 15
        password = compose.host_path("postgres", "/run/secrets/plantpulse/password").read_text().strip()
        assert cfg.store.dsn() == f"postgresql://plantpulse:{password}@postgres:5432/plantpulse"
    pg = compose.services["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/plantpulse/password"


def test_the_base_compose_file_makes_no_postgresql_secret(tmp_path: Path) -> None:
    c = Compose(tmp_path)
    c.run_init()
    assert not (c.generated / "postgres").exists() and not (c.generated / "central/postgres.dsn").exists()


def test_the_configuration_in_docs_scaling_validates() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", (REPO / "docs/scaling.md").read_text(), re.S)
    cfg = parse_yaml_model(CentralConfig, block, source="scaling.md")
    assert cfg.store.kind == "postgresql" and cfg.cluster.lease_seconds == 15
    for command in re.findall(r"python -m central (\w+) --config central.yaml", (REPO / "docs/scaling.md").read_text()):
        importlib.import_module("central.cli")._parser().parse_args([command, "--config", "central.yaml"])
