"""docker-compose.yml's demo profile (``docker compose --profile demo up``) checked as tests/test_compose.py checks
the base file: the simulated plant, the demo planner and the simulated operator run real entry points whose
own parsers accept their arguments, reach central and the simulators by the names and ports those listen on,
and hold keys that central's shipped config accepts with the role each needs. Then the planner runs for real,
as the container would (its command, its generated key file), against a real central with the shipped
config's plant, keys and order settings: it posts the demo plan, and a restart posts nothing twice; then the
simulators and the operator run with their containers' arguments and the operator loads the plan's jobs."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from central.config import CentralConfig, load_central_config
from plantpulse import demo_plan, demo_planner
from plantpulse.secrets import DEMO_KEYS
from simulators import operator
from simulators.cli import _parser as simulators_parser
from simulators.config import load_plant, with_manual_jobs
from tests.fixtures.compose import Compose
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.procs import REPO, ManagedProcess, python_module
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until

PLANNER, OPERATOR = "demo-planner", "demo-operator"


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    c = Compose(tmp_path_factory.mktemp("compose-demo"))
    c.run_init()
    return c


@pytest.fixture(scope="module")
def central_cfg(compose: Compose) -> CentralConfig:
    return load_central_config(compose.host_config("central", compose.command_arg("central", "--config")))


def _machines(text: str) -> set[str]:
    return {m for m in text.split(",") if m}


def test_the_demo_profile_runs_the_plant_the_planner_and_the_operator(compose: Compose) -> None:
    demo = {name for name, s in compose.services.items() if "demo" in s.get("profiles", [])}
    assert demo == {"simulators", PLANNER, OPERATOR}
    for name in (PLANNER, OPERATOR):
        service = compose.services[name]
        assert service["build"] == "." and service["image"] == "plantpulse:local"
        assert service["depends_on"]["secrets"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["central"]["condition"] in ("service_started", "service_healthy")
        assert service["restart"] == "unless-stopped"
    assert compose.services[OPERATOR]["depends_on"]["simulators"]["condition"] in ("service_started",
                                                                                   "service_healthy")
    planner = compose.services[PLANNER]["command"]
    assert planner[:3] == ["python", "-m", "plantpulse.demo_planner"]
    demo_planner._parser().parse_args(planner[3:])  # exits (fails the test) on a wrong argument
    assert 'if __name__ == "__main__":' in (REPO / "plantpulse/demo_planner.py").read_text()
    op = compose.services[OPERATOR]["command"]
    assert op[:4] == ["python", "-m", "simulators", "operator"]  # simulators/__main__.py hands "operator" on
    operator._parser().parse_args(op[4:])
    assert '["operator"]' in (REPO / "simulators/__main__.py").read_text()


def test_each_demo_service_holds_its_own_key_that_central_accepts_with_its_role(
    compose: Compose, central_cfg: CentralConfig,
) -> None:
    keys = {k.name: k for k in central_cfg.api.keys}
    digests = [k.digest() for k in central_cfg.api.keys]
    assert len(set(digests)) == len(digests)  # no two clients share a key
    for name, role in DEMO_KEYS.items():
        assert (name, role) in ((PLANNER, "write"), (OPERATOR, "read"))  # the least each needs
        service = compose.services[name]
        assert [s for s, _ in compose.mounts(name)] == [f"./var/secrets/{name}"]  # its own folder only
        held = compose.host_path(name, compose.command_arg(name, "--key-file")).read_text().splitlines()[0]
        assert keys[name].role == role
        assert hashlib.sha256(held.encode()).hexdigest() == keys[name].digest(), name
        assert "environment" not in service or not any("KEY" in k for k in service["environment"])
    assert "--demo-keys" in compose.services["secrets"]["command"]
    owners = [a for a in compose.services["secrets"]["command"] if "=" in a]
    assert {f"{PLANNER}=10001:10001", f"{OPERATOR}=10001:10001"} <= set(owners)  # the image's plantpulse user


def test_the_demo_services_reach_central_and_the_simulators_where_they_listen(
    compose: Compose, central_cfg: CentralConfig,
) -> None:
    for name in (PLANNER, OPERATOR):
        url = urlsplit(compose.command_arg(name, "--central"))
        assert (url.scheme, url.hostname, url.port) == ("http", "central", central_cfg.api.port), name
    assert central_cfg.api.host == "0.0.0.0"
    sim = simulators_parser().parse_args(compose.services["simulators"]["command"][3:])
    plant = load_plant(compose.host_path("simulators", str(sim.plant)))
    control = urlsplit(compose.command_arg(OPERATOR, "--control"))
    assert (control.hostname, control.port) == ("simulators", plant.control_port)
    assert sim.host == "0.0.0.0" and sim.control_port is None  # the plant file's port, on every interface


def test_the_machines_of_the_plan_wait_for_the_operator_and_central_knows_them(
    compose: Compose, central_cfg: CentralConfig,
) -> None:
    sim = simulators_parser().parse_args(compose.services["simulators"]["command"][3:])
    manual = _machines(sim.manual_jobs)
    assert manual == demo_plan.OPERATED == _machines(compose.command_arg(OPERATOR, "--machines"))
    plant = with_manual_jobs(load_plant(compose.host_path("simulators", str(sim.plant))), manual)
    assert {m.id for m in plant.machines if not m.auto_jobs} == manual
    assert {m.id for m in plant.machines} == {m.id for m in central_cfg.plant.machines}
    # the order settings the demo's plan is made for (make demo's central config)
    demo_central = yaml.safe_load((REPO / "examples/demo-central.yaml").read_text())
    shipped = central_cfg.orders.model_dump()
    assert {k: shipped[k] for k in demo_central["orders"]} == demo_central["orders"]


def test_the_demo_services_health_checks_read_what_they_write(compose: Compose) -> None:
    for name in (PLANNER, OPERATOR):
        env = compose.services[name]["environment"]
        assert env["PLANTPULSE_HEALTH"] == "file:" + compose.command_arg(name, "--alive-file"), name
        assert compose.command_arg(name, "--alive-file").startswith("/var/lib/plantpulse/")  # the image's, writable
        interval = float(compose.command_arg(name, "--interval")) if "--interval" in compose.services[name][
            "command"] else (demo_planner.PLANNER_INTERVAL if name == PLANNER else 0.5)
        assert float(env["PLANTPULSE_HEALTH_MAX_AGE"]) >= 3 * interval, name
    sim = compose.services["simulators"]
    plant_port = load_plant(compose.host_path("simulators", compose.command_arg("simulators", "--plant"))).control_port
    assert sim["environment"]["PLANTPULSE_HEALTH"] == f"http://127.0.0.1:{plant_port}/api/machines"


def test_the_scaled_form_makes_the_demo_keys_the_one_process_central_names(tmp_path: Path) -> None:
    """deploy/scaled replaces the secrets command; the `central` service it keeps must still find its keys."""
    scaled = Compose(tmp_path, overrides=("deploy/scaled/docker-compose.scaled.yml",))
    scaled.run_init()
    cfg = load_central_config(scaled.host_config("central", scaled.command_arg("central", "--config")))
    assert {k.name for k in cfg.api.keys} >= set(DEMO_KEYS) and all(k.digest() for k in cfg.api.keys)
    for name in DEMO_KEYS:
        assert scaled.host_path(name, scaled.command_arg(name, "--key-file")).is_file()


def test_an_unknown_manual_machine_is_a_clear_error() -> None:
    done = subprocess.run(python_module("simulators", "--plant", "simulators/plants/demo.yaml", "--manual-jobs",
                                        "cnc-01,lathe-9"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--manual-jobs: no machine lathe-9 in plant 'demo'" in done.stderr


def _central(compose: Compose, central_cfg: CentralConfig, folder: Path, broker: Mosquitto) -> CentralProcess:
    """A real central with the shipped config's keys (the generated files), plant and order settings."""
    shipped = yaml.safe_load(compose.host_config("central", compose.command_arg("central", "--config")).read_text())
    return CentralProcess(folder, broker, site=shipped["site"],
                          api={"port": 0, "open_reads": False, "keys": shipped["api"]["keys"]},
                          plant=shipped["plant"], orders=shipped["orders"]).start()


def test_the_demo_services_run_natively_planner_then_operator(
    compose: Compose, central_cfg: CentralConfig, mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    central = _central(compose, central_cfg, tmp_path / "central", mosquitto)
    try:
        argv = list(compose.services[PLANNER]["command"][3:])  # the container's arguments, host paths and URL
        for flag, value in {"--central": central.url, "--interval": "0.2", "--alive-file": str(tmp_path / "alive"),
                            "--key-file": str(compose.host_path(PLANNER, compose.command_arg(PLANNER, "--key-file")))
                            }.items():
            if flag in argv:
                argv[argv.index(flag) + 1] = value
            else:
                argv += [flag, value]
        planner = ManagedProcess("planner", python_module("plantpulse.demo_planner", *argv), tmp_path / "log")
        reader = compose.host_path(OPERATOR, compose.command_arg(OPERATOR, "--key-file")).read_text().strip()
        read = {"Authorization": f"Bearer {reader}"}

        def orders() -> list[str]:
            body = httpx.get(f"{central.url}/api/v1/orders", params={"status": "all"}, headers=read, timeout=10)
            return [o["id"] for o in body.raise_for_status().json()["orders"]]

        seeded = {demo_plan.order_id(n) for n in range(1, demo_plan.SEED_ORDERS + 1)}
        planner.start()
        wait_until(lambda: set(orders()) >= seeded and (tmp_path / "alive").exists(), 30, what="the demo plan posted")
        assert planner.stop() == 0  # docker stop: SIGTERM, a clean exit
        before = orders()
        planner.start()  # docker compose restarts it; central kept its store
        wait_until(lambda: "has the demo plan already" in planner.tail(), 30, what="the planner resuming")
        assert "refused" not in planner.tail() and planner.running()
        assert sorted(orders()) == sorted(before)  # nothing posted twice (fewer than 6 open: none finished)
        audit = httpx.get(f"{central.url}/api/v1/audit", params={"order_id": "SO-1001"}, headers=read, timeout=10)
        assert {a["by"] for a in audit.raise_for_status().json()["audit"]} == {PLANNER}  # the key's name
        # the operator's key reads the dispatch lists but cannot plan
        dispatch = httpx.get(f"{central.url}/api/v1/machines/cnc-01/dispatch", headers=read, timeout=10)
        assert dispatch.status_code == 200 and dispatch.json()["operations"]
        denied = httpx.post(f"{central.url}/api/v1/orders", json=demo_plan.order(99, 0.0), headers=read, timeout=10)
        assert denied.status_code == 403
        _operator_loads_the_plan(compose, central.url, tmp_path)
        planner.stop()
    finally:
        central.stop()


def _with(command: list[str], **values: str) -> list[str]:
    """``command`` with the value after each ``--flag`` replaced (``flag_name`` for ``--flag-name``)."""
    out = list(command)
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    return out


def _operator_loads_the_plan(compose: Compose, central_url: str, tmp_path: Path) -> None:
    """The simulators and the operator with the containers' arguments (free ports, host paths; the demo plant's
    Modbus machines only, the OPC UA servers are slow to start): the waiting machines idle with no job until
    the operator, with its key file, loads a job of the plan that central has."""
    plant = yaml.safe_load((REPO / "simulators/plants/demo.yaml").read_text())
    plant["machines"] = [dict(m, port=0) for m in plant["machines"] if m["protocol"] == "modbus"]
    plant["control_port"] = 0
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(plant))
    here = {m["id"] for m in plant["machines"]}
    manual = _machines(compose.command_arg("simulators", "--manual-jobs")) & here
    sim_argv = _with(compose.services["simulators"]["command"][3:], plant=str(tmp_path / "plant.yaml"),
                     host="127.0.0.1", state_dir=str(tmp_path / "sim"), manual_jobs=",".join(sorted(manual)),
                     control_port="0", ready_file=str(tmp_path / "sim.json"))
    sim = ManagedProcess("simulators", python_module("simulators", *sim_argv), tmp_path / "sim.log")
    op: ManagedProcess | None = None
    try:
        sim.start()
        wait_until(lambda: (tmp_path / "sim.json").exists() or not sim.running(), 60, what="the simulators ready")
        control = json.loads((tmp_path / "sim.json").read_text())["control_url"]

        def machines() -> dict[str, dict[str, Any]]:
            return {m["id"]: m for m in httpx.get(f"{control}/api/machines", timeout=10).json()["machines"]}

        before = machines()
        assert all(before[m]["job"] == 0 and before[m]["job_remaining"] == 0 for m in manual), before
        assert before["weld-02"]["job"] != 0  # not operated: picks its own jobs
        op_argv = _with(compose.services[OPERATOR]["command"][4:], central=central_url, control=control,
                        alive_file=str(tmp_path / "op-alive"), interval="0.2",
                        key_file=str(compose.host_path(OPERATOR, compose.command_arg(OPERATOR, "--key-file"))))
        op = ManagedProcess("operator", python_module("simulators", "operator", *op_argv), tmp_path / "op.log",
                            env={"PLANTPULSE_KEY": ""})  # the key comes from the file
        op.start()
        jobs = {int(o["job"]) for body in demo_plan.seed(0.0) for o in body["operations"]}
        alive = tmp_path / "op-alive"
        wait_until(lambda: (any(m["job"] in jobs for m in machines().values()) and alive.exists())
                   or not op.running(), 30, what="the operator loading a job of the plan")
        assert op.running(), op.tail()
        assert " -> job 2" in op.log_text()
    finally:
        if op is not None:
            assert op.stop() == 0
        sim.stop()
