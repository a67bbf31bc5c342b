"""``python -m edge check`` against the demo plant, and against a PLC that is not there.

The demo plant (simulators/plants/demo.yaml) listens on fixed ports that a running ``make demo``
may hold, so the test runs it with every port replaced by a free one and rewrites the example
configurations the same way; everything else is the demo as shipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import REPO, free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatedPlant, dict[str, str]]]:
    text = (REPO / "simulators" / "plants" / "demo.yaml").read_text()
    ports = {p: str(free_port()) for p in set(re.findall(r"\bport: (\d+)", text))}
    text = re.sub(r"\bport: (\d+)", lambda m: f"port: {ports[m.group(1)]}", text)
    text = re.sub(r"control_port: \d+", "control_port: 0", text)
    plant = SimulatedPlant(Path(tmp_path_factory.mktemp("demo")), text).start()
    yield plant, ports
    plant.stop()


def edge_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "check", "--config", str(config)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )


@pytest.mark.parametrize("example", ["demo-modbus", "demo-opcua"])
def test_edge_check_prints_the_demo_plant(
    demo: tuple[SimulatedPlant, dict[str, str]], example: str, tmp_path: Path
) -> None:
    plant, ports = demo
    text = (REPO / "examples" / f"{example}.yaml").read_text()
    config = tmp_path / f"{example}.yaml"
    config.write_text(re.sub(r"\b(1\d{4})\b", lambda m: ports.get(m.group(1), m.group(1)), text))
    result = edge_check(config)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["machine", "tag", "address", "raw", "decoded", "latency", "/", "error"]
    machines = {m["id"]: m for m in plant.machines().values() if m["protocol"] == example.split("-")[1]}
    tags = ("state", "fault_code", "good_count", "scrap_count", "job", "power_on_count")
    for machine_id in machines:
        rows = {line.split()[1]: line for line in lines if line.startswith(machine_id + " ")}
        assert set(rows) == set(tags), machine_id
        assert re.search(r"\d+ -> (running|idle|setup|fault|maintenance)\s+[\d.]+ ms$", rows["state"])
        assert re.search(r"\s\d+\s+[\d.]+ ms$", rows["job"])  # decoded job number, then the latency
    assert lines[-1] == f"{len(machines)} machines, {6 * len(machines)} tags, all read"
    assert "ERROR" not in result.stdout


def test_edge_check_names_what_failed(tmp_path: Path) -> None:
    config = tmp_path / "gone.yaml"
    config.write_text(
        "edge_id: e1\nsite: s1\nmachines:\n"
        f"  - {{id: gone, protocol: modbus, host: 127.0.0.1, port: {free_port()}, timeout: 0.5, min_cycle_time: 1,\n"
        "     state_map: {0: idle}, tags: {state: {address: 0}, good_count: {address: 2}}}\n"
        f"  - {{id: gone-ua, protocol: opcua, endpoint: 'opc.tcp://127.0.0.1:{free_port()}', timeout: 0.5,\n"
        "     min_cycle_time: 1, state_map: {0: idle}, tags: {state: 'nsu=urn:x;s=S', good_count: 'nsu=urn:x;s=G'}}\n"
    )
    result = edge_check(config)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert re.search(r"gone +state +unit 1 holding 0 \(40001\) uint16 .*ERROR: cannot connect to 127", result.stdout)
    assert re.search(r"gone-ua +\* +opc.tcp://.*ERROR: cannot connect", result.stdout)
    assert result.stdout.rstrip().endswith("2 machines, 3 tags, 3 failed")
