"""``make demo`` writes secure configs by default and open ones only when asked, and the real demo (every
process, on free ports: the fixed ones may be held by someone's running demo) plans work orders and
runs the simulated operator, so the pages show orders moving from machine counts."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import time
from pathlib import Path

import httpx
import pytest
import yaml

from central.config import load_central_config
from edge.config import load_edge_config
from plantpulse import demo, demo_config, demo_plan, demo_planner
from simulators.config import load_plant
from tests.fixtures.mosquitto import Login, login_accepted, mosquitto_binary
from tests.fixtures.procs import ManagedProcess, free_port, port_open, python_module
from tests.fixtures.waiting import wait_until


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(demo, "VAR", tmp_path / "demo")
    return tmp_path / "demo"


def test_demo_is_secure_by_default(var: Path) -> None:
    files = demo_config.write_configs(var)
    conf = files["mosquitto"].read_text()
    assert "allow_anonymous false" in conf and "password_file" in conf and "acl_file" in conf
    edge = load_edge_config(files["edge-modbus"])  # every secret file it names exists and is usable
    assert edge.mqtt.username == "edge-modbus@demo" and edge.mqtt.password()
    assert edge.commands.secret_file is not None
    central = load_central_config(files["central"])
    assert central.mqtt.username == "central" and central.mqtt.password()
    assert central.commands.keys_dir is not None and (central.commands.keys_dir / "demo/edge-opcua.key").exists()

    port = free_port()
    conf_path = var / "test-mosquitto.conf"
    conf_path.write_text(conf.replace(f"listener {demo.BROKER_PORT} ", f"listener {port} "))
    broker = ManagedProcess("demo-mosquitto", [mosquitto_binary(), "-c", str(conf_path)], var / "broker.log")
    broker.start()
    try:
        wait_until(lambda: port_open(port) or not broker.running(), 10, what="the demo's broker listening")
        assert not login_accepted("127.0.0.1", port, None)
        assert edge.mqtt.username is not None and edge.mqtt.password_file is not None
        login = Login(edge.mqtt.username, edge.mqtt.password() or "", edge.mqtt.password_file)
        assert login_accepted("127.0.0.1", port, login)
    finally:
        broker.stop()


def test_open_demo_is_an_explicit_choice(var: Path) -> None:
    files = demo_config.write_configs(var, open_mode=True)
    assert "allow_anonymous true" in files["mosquitto"].read_text()
    assert load_edge_config(files["edge-opcua"]).commands.secret_file is None
    assert load_central_config(files["central"]).commands.keys_dir is None
    assert not (var / "auth").exists()


def test_demo_reads_need_a_key_and_the_page_url_carries_the_read_key(var: Path, tmp_path: Path) -> None:
    """The demo's central as generated, on a free port: nothing without a key, everything with ?key=<read key>,
    and only the write key may write."""
    files = demo_config.write_configs(var)
    cfg = yaml.safe_load(files["central"].read_text())
    assert cfg["api"]["open_reads"] is False and cfg["api"]["host"] == "127.0.0.1"
    cfg["api"]["port"] = 0
    cfg["mqtt"] = {"host": "127.0.0.1", "port": free_port()}  # no broker needed to read
    config = tmp_path / "central.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    ready = tmp_path / "ready.json"
    central = ManagedProcess("demo-central", python_module("central", "run", "--config", str(config), "--ready-file",
                                                           str(ready)), tmp_path / "central.log",
                             env={"PLANTPULSE_DEMO_KEY": "write-key-123", "PLANTPULSE_DEMO_READ_KEY": "read-key-456",
                                  "PLANTPULSE_DEMO_REPORT_KEY": "report-key-789"})
    central.start()
    try:
        wait_until(lambda: ready.exists() or not central.running(), 30, what="central ready")
        url = json.loads(ready.read_text())["url"]
        lines = demo.banner(url, write_key="write-key-123", read_key="read-key-456", open_mode=False,
                            lan_url="http://192.168.1.23:8080")
        page = next(line.split()[-1] for line in lines if "live status page" in line)
        assert page == f"{url}/?key=read-key-456"
        assert any("http://192.168.1.23:8080/?key=read-key-456" in line for line in lines)
        assert any(line.endswith("write-key-123") and "write key" in line for line in lines)
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/").status_code == 200  # the page itself; it reads with the key in its URL
            assert http.get("/api/v1/machines").status_code == 401
            assert http.get("/api/v1/machines", params={"key": "read-key-456"}).status_code == 200
            assert http.get("/api/v1/machines", params={"key": "write-key-123"}).status_code == 200
            reader = {"Authorization": "Bearer read-key-456"}
            assert http.post("/api/v1/alerts/none/ack", json={"by": "x"}, headers=reader).status_code == 403
        released = asyncio.run(_plan_and_top_up(url, var / "demo.log"))
        assert f"released {released}" in (var / "demo.log").read_text()
    finally:
        central.stop()


async def _plan_and_top_up(url: str, log_path: Path) -> str:
    """The demo's planner: the seeded plan is accepted with the write key; when an order leaves the open ones
    (cancelled here), the next order is released so that OPEN_TARGET stay open."""
    write = {"Authorization": "Bearer write-key-123"}
    with log_path.open("w", encoding="utf-8") as log:
        runner = demo.Demo(log)
        ids = await demo_planner.seed_orders(runner.say, url, "write-key-123", time.time())
        assert ids == [demo_plan.order_id(n) for n in range(1, demo_plan.SEED_ORDERS + 1)]
        task = asyncio.create_task(demo_planner.planner(runner.say, url, "write-key-123", len(ids) + 1,
                                                        interval=0.2))
        try:
            async with httpx.AsyncClient(base_url=url, headers=write, timeout=10) as api:
                cancelled = await api.post(f"/api/v1/orders/{ids[0]}/cancel", json={"reason": "customer"})
                assert cancelled.status_code == 200, cancelled.text
                released = demo_plan.order_id(len(ids) + 1)
                deadline = time.monotonic() + 30
                while (await api.get(f"/api/v1/orders/{released}")).status_code != 200:
                    assert not task.done() and time.monotonic() < deadline, "the planner released nothing"
                    await asyncio.sleep(0.1)
                listed = (await api.get("/api/v1/orders", params={"status": "open"})).json()["orders"]
                assert len(listed) == demo_plan.OPEN_TARGET
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return released


def test_lan_demo_listens_on_every_interface_and_finds_its_address(var: Path) -> None:
    files = demo_config.write_configs(var, lan=True)
    assert load_central_config(files["central"]).api.host == "0.0.0.0"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            routed = True
        except OSError:
            routed = False
    if not routed:  # a machine without a default route: the error says what to do
        with pytest.raises(demo.DemoError, match="--lan ADDRESS"):
            demo.lan_address()
        return
    address = demo.lan_address()
    assert ipaddress.ip_address(address) and not address.startswith("127.")


def test_the_demo_plan_fits_the_demo_plant(var: Path) -> None:
    """Every operation runs on a machine the operator drives (auto_jobs: false in the plant the demo writes;
    the shipped plant file keeps picking its own jobs; compose waits with --manual-jobs instead), with
    a job number the PLC's 16-bit register takes, never the same job twice in a row on one machine, and the
    ideal cycle time central knows for that machine."""
    plant = load_plant(demo_config.write_configs(var)["plant"])
    waiting = {m.id for m in plant.machines if not m.auto_jobs}
    assert waiting == demo_plan.OPERATED
    assert all(m.auto_jobs for m in load_plant(demo.PLANT).machines)
    central = yaml.safe_load((demo.REPO / "examples/demo-central.yaml").read_text())
    ideal = {m["id"]: m["ideal_cycle_time"] for m in central["plant"]["machines"]}
    orders = demo_plan.seed(1_796_000_000.0) + [demo_plan.order(n, 1_796_000_000.0) for n in range(7, 40)]
    last: dict[str, str] = {}
    for body in orders:
        assert 2 <= len(body["operations"]) <= 4 and body["due"] > 1_796_000_000
        for op in body["operations"]:
            assert op["machine"] in waiting and 0 <= int(op["job"]) <= 65535
            assert op["ideal_cycle_time"] == ideal[op["machine"]]
            assert last.get(op["machine"]) != op["job"]
            last[op["machine"]] = op["job"]
    assert len({b["id"] for b in orders}) == len(orders)
    first: dict[str, float] = {}
    for b in demo_plan.seed(0.0):
        for op in b["operations"]:
            first.setdefault(op["machine"], op["setup_time"])
    assert set(first) == waiting and set(first.values()) == {0.0}  # each has work, set up for its first


def test_a_restarted_planner_posts_only_the_missing_seed_orders_and_numbers_on() -> None:
    """docker compose keeps central's store: the planner resumes instead of posting an order twice."""
    assert demo_plan.resume([]) == (list(range(1, demo_plan.SEED_ORDERS + 1)), demo_plan.SEED_ORDERS + 1)
    some = [demo_plan.order_id(n) for n in (1, 2, 9)] + ["SO-1000", "PO-7", "SO-12x", "rush-1"]
    assert demo_plan.resume(some) == ([3, 4, 5, 6], 10)
    assert [demo_plan.order_number(o) for o in some] == [1, 2, 9, None, None, None, None]


@pytest.mark.slow
async def test_the_demo_plans_orders_and_the_operator_moves_them(var: Path) -> None:
    """The real demo (mosquitto, simulators, two gateways, central, the operator) on free ports: the plan is
    in central, an operation progresses from its machine's counts (no report is made), the operator
    loads jobs, every page answers, and Ctrl-C (``stop``) ends every process. Nothing is reported from the
    floor here, so the operation's good parts are its machine's counts."""
    stop = asyncio.Event()
    task = asyncio.create_task(demo.run(stop, free_ports=demo.Ports.free(free_port)))
    try:
        ready = var / "demo.json"
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
            assert time.monotonic() < deadline, "the demo did not start in 120 s"
            await asyncio.sleep(0.2)
        info = json.loads(ready.read_text())
        assert ready.stat().st_mode & 0o077 == 0  # the keys are the owner's only
        read = {"Authorization": f"Bearer {info['read_key']}"}
        async with httpx.AsyncClient(base_url=info["url"], headers=read, timeout=10) as api:
            listed = (await api.get("/api/v1/orders", params={"status": "all"})).json()["orders"]
            seeded = [demo_plan.order_id(n) for n in range(1, demo_plan.SEED_ORDERS + 1)]
            assert {o["id"] for o in listed} >= set(seeded)

            async def progressed() -> dict[str, object] | None:
                for order_id in seeded:
                    body = (await api.get(f"/api/v1/orders/{order_id}")).json()
                    for op in body["operations"]:
                        if op["good"] > 0:
                            return dict(op, order_id=order_id)
                return None

            deadline = time.monotonic() + 90
            while (op := await progressed()) is None:
                assert not task.done(), "the demo stopped"
                assert time.monotonic() < deadline, "no operation progressed from its machine's counts in 90 s"
                await asyncio.sleep(0.5)
            assert op["status"] in ("running", "done")
            log = (var / "demo.log").read_text()
            assert "[operator]" in log and "-> job 2" in log  # the operator process loads the plan's jobs
            for page, address in info["pages"].items():
                answer = await api.get(address.removeprefix(info["url"]), headers={})
                assert answer.status_code == 200, (page, answer.status_code)
            scanner = {"Authorization": f"Bearer {info['report_key']}"}
            assert (await api.get("/api/v1/orders", headers=scanner)).status_code == 200
    finally:
        stop.set()
        code = await asyncio.wait_for(task, 60)
    assert code == 0
