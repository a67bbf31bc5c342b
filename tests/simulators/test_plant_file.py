"""Bad plant files and busy ports give one clear message naming the field and the fix, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from plantpulse.configfile import ConfigError
from simulators.config import parse_plant
from tests.fixtures.procs import REPO


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_plant(text, source="plant.yaml")
    return str(info.value)


def test_each_problem_names_field_line_value_and_expectation() -> None:
    msg = problems(
        "name: bad\n"
        "machines:\n"
        "  - id: cnc-01\n"
        "    protocol: modbus\n"
        "    cycle_time: -3\n"
        "    cycle_jiter: 0.1\n"
        "  - id: cnc-02\n"
        "    protocol: profinet\n"
        "    cycle_time: 10\n"
        "    counter: {bits: 24}\n"
    )
    assert msg.startswith("plant.yaml: 4 problems")
    assert "machines[0].cycle_time (line 5) has the bad value -3: Input should be greater than 0" in msg
    assert "expected: ideal cycle time per part, plant seconds" in msg
    assert "machines[0].cycle_jiter (line 6) is not a known setting (did you mean 'cycle_jitter'?)" in msg
    assert "machines[1].protocol (line 8) has the bad value 'profinet'" in msg
    assert "machines[1].counter.bits (line 10) has the bad value 24: Input should be 16 or 32" in msg


def test_missing_and_cross_field_problems() -> None:
    assert "machines[0].cycle_time (line 2) is required but missing" in problems(
        "machines:\n  - id: a\n    protocol: modbus\n"
    )
    assert "machine id 'a' appears twice" in problems(
        "machines:\n"
        "  - {id: a, protocol: modbus, cycle_time: 1}\n"
        "  - {id: a, protocol: modbus, cycle_time: 1}\n"
    )
    assert "good_start must fit in 16 bits" in problems(
        "machines:\n  - {id: a, protocol: modbus, cycle_time: 1, counter: {bits: 16, good_start: 70000}}\n"
    )
    assert "need different unit_id values" in problems(
        "machines:\n"
        "  - {id: a, protocol: modbus, cycle_time: 1, port: 15999}\n"
        "  - {id: b, protocol: modbus, cycle_time: 1, port: 15999}\n"
    )
    assert "  - machines (line 1) is required but missing" in problems("name: x\n")


def test_yaml_syntax_error_names_the_line() -> None:
    msg = problems("machines:\n  - id: a\n   protocol: modbus\n")
    assert "not valid YAML (line 3" in msg and "indentation" in msg


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulators", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_cli_reports_bad_file_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "plant.yaml"
    bad.write_text("machines:\n  - {id: a, protocol: modbus, cycle_time: 0}\n")
    result = run_cli("--plant", str(bad), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "machines[0].cycle_time (line 2) has the bad value 0" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("--plant", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "file not found" in missing.stderr


def test_cli_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        plant = tmp_path / "plant.yaml"
        plant.write_text(
            f"control_port: 0\nmachines:\n  - {{id: a, protocol: modbus, cycle_time: 1, port: {port}}}\n"
        )
        result = run_cli("--plant", str(plant), "--state-dir", str(tmp_path / "s"))
        assert result.returncode == 2
        assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
        assert "Traceback" not in result.stderr
        plant.write_text(f"control_port: {port}\nmachines:\n  - {{id: a, protocol: modbus, cycle_time: 1}}\n")
        result = run_cli("--plant", str(plant), "--state-dir", str(tmp_path / "s"))
        assert result.returncode == 2 and f"control API: cannot listen on 127.0.0.1:{port}" in result.stderr
