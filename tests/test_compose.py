"""docker-compose.yml checked by inspection (no Docker engine runs on these machines): every mounted file
exists or is made by the init service (run here for real), every command is a real entry point whose
arguments its own parser accepts and whose config file the project's own loader validates, and the
services agree on host names, ports, TLS and credentials. The broker's config runs under a real
mosquitto in tests/deploy/test_compose_broker.py; the Grafana files are checked in tests/deploy/test_grafana.py.
"""

from __future__ import annotations

import importlib
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509

from central.config import CentralConfig, load_central_config
from edge.config import EdgeConfig, ModbusMachine, load_edge_config
from plantpulse.broker_auth import CENTRAL_USER, gateway_user
from plantpulse.tls import san_names
from simulators.config import load_plant
from tests.fixtures.compose import SECRETS, Compose
from tests.fixtures.procs import REPO

PYTHON_SERVICES = ("secrets", "central", "edge", "simulators")


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    """The compose file with its init service run once for real (LAN names given, as a site would)."""
    c = Compose(tmp_path_factory.mktemp("compose"), env={"PLANTPULSE_TLS_NAMES": "broker.plant.lan,192.168.10.5"})
    c.run_init()
    return c


@pytest.fixture(scope="module")
def central_cfg(compose: Compose) -> CentralConfig:
    return load_central_config(compose.host_config("central", compose.command_arg("central", "--config")))


@pytest.fixture(scope="module")
def edge_cfg(compose: Compose) -> EdgeConfig:
    return load_edge_config(compose.host_config("edge", compose.command_arg("edge", "--config")))


def broker_settings() -> dict[str, str]:
    """deploy/mosquitto/mosquitto.conf as setting -> value (the first of a repeated setting)."""
    settings: dict[str, str] = {}
    for line in (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.strip().partition(" ")
            settings.setdefault(key, value.strip())
    return settings


def _ports(service: dict[str, Any]) -> set[int]:
    published: set[int] = set()
    for mapping in service.get("ports", []):
        host_part = str(mapping).split(":")[-2]
        lo, _, hi = host_part.partition("-")
        published.update(range(int(lo), int(hi or lo) + 1))
    return published


def test_every_mounted_file_exists_or_is_generated_by_the_init_service(compose: Compose) -> None:
    assert "var/" in (REPO / ".gitignore").read_text().split()  # generated secrets never reach the repository
    for name, service in compose.services.items():
        for source, target in compose.mounts(name):
            if source.startswith(SECRETS):
                host = compose.host_path(name, target)
                assert host.is_dir() and any(host.iterdir()), f"{name}: the init service does not make {source}"
            elif source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts a missing file: {source}"
            else:
                assert source in compose.data["volumes"], f"{name}: volume {source} is not declared"
        if name != "secrets" and any(s.startswith(SECRETS) for s, _ in compose.mounts(name)):
            assert service["depends_on"]["secrets"]["condition"] == "service_completed_successfully", name


def test_every_command_is_a_real_entry_point_with_arguments_its_parser_accepts(compose: Compose) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    for name in PYTHON_SERVICES:
        service = compose.services[name]
        assert service["build"] == "." and service["image"] == "plantpulse:local"
        command = service["command"]
        assert command[:2] == ["python", "-m"], name
        importlib.import_module(command[2])
        if command[2] == "plantpulse.secrets":
            continue  # run for real by the compose fixture
        cli = importlib.import_module(f"{command[2]}.cli")
        assert (REPO / command[2] / "__main__.py").exists()
        assert f'= "{command[2]}.cli:main"' in pyproject, f"{command[2]} has no console script"
        cli._parser().parse_args(command[3:])  # exits (fails the test) on an unknown or missing argument


def test_the_secrets_service_makes_what_every_service_reads_and_keeps_it(compose: Compose) -> None:
    before = {p: p.read_bytes() for p in compose.generated.rglob("*") if p.is_file()}
    again = compose.run_init()
    assert "all kept" in again.stdout
    after = {p: p.read_bytes() for p in compose.generated.rglob("*") if p.is_file()}
    assert set(after) == set(before)
    assert {p for p in after if after[p] != before[p]} == {compose.generated / "mosquitto/passwd"}  # new salts


def test_central_config_validates_and_every_secret_it_names_is_there(central_cfg: CentralConfig) -> None:
    assert central_cfg.mqtt.password()
    assert {k.name: k.role for k in central_cfg.api.keys} == {
        "operator": "write", "board": "read", "demo-planner": "write", "demo-operator": "read"}
    assert all(len(k.digest()) == 64 for k in central_cfg.api.keys)
    assert central_cfg.influx is not None and central_cfg.influx.token()
    assert central_cfg.api.open_reads is False


def test_edge_config_validates_and_reads_the_simulated_plant(compose: Compose, edge_cfg: EdgeConfig) -> None:
    assert edge_cfg.mqtt.password()
    simulators = compose.services["simulators"]
    plant = load_plant(compose.host_path("simulators", compose.command_arg("simulators", "--plant")))
    assert {m.id for m in edge_cfg.machines} == {m.id for m in plant.machines}
    published = _ports(simulators)
    for m in edge_cfg.machines:
        if isinstance(m, ModbusMachine):
            address, port = m.host, m.port
        else:
            url = urlsplit(m.endpoint)
            address, port = url.hostname, url.port
        assert address == "simulators", m.id  # the compose service's name
        assert port == next(p.port for p in plant.machines if p.id == m.id) and port in published, m.id
    assert simulators["profiles"] == ["demo"] and plant.control_port in published


def test_both_services_reach_the_broker_over_tls_as_users_of_the_acl(
    compose: Compose, central_cfg: CentralConfig, edge_cfg: EdgeConfig,
) -> None:
    conf = broker_settings()
    listen_port = int(conf["listener"].split()[0])
    assert conf["allow_anonymous"] == "false" and {"cafile", "certfile", "keyfile"} <= set(conf)
    assert listen_port in _ports(compose.services["mosquitto"])
    server_cert = x509.load_pem_x509_certificate(compose.host_path("mosquitto", conf["certfile"]).read_bytes())
    assert {"mosquitto", "broker.plant.lan", "192.168.10.5"} <= san_names(server_cert)  # PLANTPULSE_TLS_NAMES
    for cfg in (central_cfg.mqtt, edge_cfg.mqtt):
        assert cfg.host == "mosquitto" and cfg.port == listen_port and cfg.tls is not None
        assert cfg.tls.ca_file.read_bytes() == compose.host_path("mosquitto", conf["cafile"]).read_bytes()
    assert central_cfg.mqtt.username == CENTRAL_USER
    site, edge_ids = compose.command_arg("secrets", "--site"), compose.services["secrets"]["command"]
    assert edge_cfg.site == site == central_cfg.site and edge_cfg.edge_id in edge_ids
    assert edge_cfg.mqtt.username == gateway_user(edge_cfg.site, edge_cfg.edge_id)
    acl = compose.host_path("mosquitto", conf["acl_file"]).read_text()
    assert f"user {edge_cfg.mqtt.username}\n" in acl and f"user {CENTRAL_USER}\n" in acl
    # signed commands: the gateway's key is the one central signs its commands with
    assert central_cfg.commands.keys_dir is not None and edge_cfg.commands.secret_file is not None
    central_key = central_cfg.commands.keys_dir / edge_cfg.site / f"{edge_cfg.edge_id}.key"
    assert central_key.read_text() == edge_cfg.commands.secret_file.read_text()


def test_central_writes_where_influxdb_is_set_up_and_grafana_reads(
    compose: Compose, central_cfg: CentralConfig,
) -> None:
    influx = central_cfg.influx
    assert influx is not None
    env = compose.services["influxdb"]["environment"]
    assert influx.url == "http://influxdb:8086"  # the service name, InfluxDB's default port
    assert (influx.org, influx.bucket) == (env["DOCKER_INFLUXDB_INIT_ORG"], env["DOCKER_INFLUXDB_INIT_BUCKET"])
    assert influx.token_file is not None
    setup_token = compose.host_path("influxdb", env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"]).read_text()
    assert influx.token_file.read_text() == setup_token
    assert compose.host_path("influxdb", env["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"]).read_text().strip()
    provisioning = compose.host_path("grafana", "/etc/grafana/provisioning/datasources/influxdb.yaml")
    source = yaml.safe_load(provisioning.read_text())["datasources"][0]
    assert source["url"] == influx.url and source["jsonData"]["version"] == "Flux"
    assert (source["jsonData"]["organization"], source["jsonData"]["defaultBucket"]) == (influx.org, influx.bucket)
    token_path = re.fullmatch(r"\$__file\{(.+)\}", source["secureJsonData"]["token"])
    assert token_path is not None
    assert compose.host_path("grafana", token_path[1]).read_text() == setup_token
    grafana = compose.services["grafana"]["environment"]
    assert compose.host_path("grafana", grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"]).read_text().strip()
    assert compose.host_path("grafana", grafana["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).is_file()


def test_api_port_and_health_checks_agree(compose: Compose, central_cfg: CentralConfig, edge_cfg: EdgeConfig) -> None:
    central = compose.services["central"]
    assert central_cfg.api.host == "0.0.0.0" and central_cfg.api.port in _ports(central)
    assert central["environment"]["PLANTPULSE_HEALTH"] == f"http://127.0.0.1:{central_cfg.api.port}/healthz"
    edge = compose.services["edge"]["environment"]
    assert edge_cfg.data_dir is not None
    alive = compose.host_path("edge", edge["PLANTPULSE_HEALTH"].removeprefix("file:"))
    assert alive == edge_cfg.data_dir / "alive"  # the file the gateway's alive loop rewrites every second
    assert float(edge["PLANTPULSE_HEALTH_MAX_AGE"]) >= 10
    # central's store and the gateway's outbox live in named volumes, never in the image
    assert str(central_cfg.store.path).startswith(str(compose.volumes))
    assert str(edge_cfg.data_dir).startswith(str(compose.volumes))


def test_dockerfile_is_small_non_root_and_checks_health() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("plantpulse", "simulators", "edge", "central"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert dockerfile.count("FROM python:3.11-slim") == 2  # the build stage's tools stay behind
    assert "--no-cache-dir" in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^HEALTHCHECK .*\n?.*CMD \["python", "-m", "plantpulse.healthcheck"\]', dockerfile, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {"var", ".git", ".venv"} <= set(ignored)  # generated secrets never go into an image
