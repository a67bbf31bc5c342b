"""``make demo`` writes secure configs by default and open ones only when asked (no processes here:
the demo's fixed ports may be in use by someone's running demo; its broker config is started on a
free port instead)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.config import load_central_config
from edge.config import load_edge_config
from plantpulse import demo
from tests.fixtures.mosquitto import Login, login_accepted, mosquitto_binary
from tests.fixtures.procs import ManagedProcess, free_port, port_open
from tests.fixtures.waiting import wait_until


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(demo, "VAR", tmp_path / "demo")
    return tmp_path / "demo"


def test_demo_is_secure_by_default(var: Path) -> None:
    files = demo._write_configs()
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
    files = demo._write_configs(open_mode=True)
    assert "allow_anonymous true" in files["mosquitto"].read_text()
    assert load_edge_config(files["edge-opcua"]).commands.secret_file is None
    assert load_central_config(files["central"]).commands.keys_dir is None
    assert not (var / "auth").exists()
