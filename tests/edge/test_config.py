"""The gateway configuration: every example loads, and each broken file gets one clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.collectors.registry import build_collectors
from edge.config import ModbusMachine, OpcuaMachine, load_edge_config, parse_edge_config
from plantpulse.configfile import ConfigError
from plantpulse.protocol.models import MachineState
from tests.fixtures.procs import REPO

MODBUS = """\
edge_id: e1
site: s1
machines:
  - id: m1
    protocol: modbus
    host: 10.0.0.5
    min_cycle_time: 2
    state_map: {0: idle, 1: running, "3": fault}
    tags:
      state: {address: 0}
      good_count: {address: "40003", type: uint32, word_order: little}
"""


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_edge_config(text, source="edge.yaml")
    return str(info.value)


def machine(extra: str, protocol: str = "modbus") -> str:
    head = "edge_id: e1\nsite: s1\nmachines:\n  - id: m1\n    min_cycle_time: 1\n    state_map: {0: idle}\n"
    if protocol == "modbus":
        return head + "    protocol: modbus\n    host: plc\n" + extra
    return head + "    protocol: opcua\n    endpoint: opc.tcp://plc:4840\n" + extra


EDGE_EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.yaml") if "\nedge_id:" in "\n" + p.read_text())


@pytest.mark.parametrize("path", EDGE_EXAMPLES, ids=lambda p: p.name)
def test_every_edge_example_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTPULSE_S7_PASSWORD", "from-the-environment")
    cfg = load_edge_config(path)
    assert cfg.machines
    for m in cfg.machines:
        if isinstance(m, OpcuaMachine) and m.certificate is not None:
            assert m.certificate.is_absolute() and m.certificate.parent.parent == path.parent  # relative to the file


def test_defaults_and_address_notations() -> None:
    cfg = parse_edge_config(MODBUS)
    m = cfg.machines[0]
    assert isinstance(m, ModbusMachine)
    assert (cfg.count_interval, m.port, m.unit_id, m.poll_interval, m.offline_after) == (20.0, 502, 1, 1.0, 3)
    assert (m.tags.good_count.wire_table, m.tags.good_count.wire_address) == ("holding", 2)  # "40003"
    assert m.tags.good_count.describe() == "holding 2 (40003) uint32"
    assert m.state_map == {0: MachineState.IDLE, 1: MachineState.RUNNING, 3: MachineState.FAULT}
    tracker = cfg.tracker_config(m)
    assert (tracker.good_bits, tracker.count_interval, tracker.min_cycle_time) == (32, 20.0, 2.0)
    for text, table, address in (("30001", "input", 0), ("10005", "discrete", 4), ("00001", "coil", 0),
                                 ("465536", "holding", 65535)):
        kind = ", type: bool" if table in ("coil", "discrete") else ""
        cfg = parse_edge_config(machine(f"    tags:\n      state: {{address: '{text}'{kind}}}\n"
                                        "      good_count: {address: 9}\n"))
        m = cfg.machines[0]
        assert isinstance(m, ModbusMachine)
        tag = m.tags.state
        assert (tag.wire_table, tag.wire_address) == (table, address)


def test_each_modbus_problem_names_field_line_and_fix() -> None:
    msg = problems(machine(
        "    pol_interval: 1\n"
        "    max_block: 200\n"
        "    tags:\n"
        "      state: {address: '50001'}\n"
        "      good_count: {address: 70000}\n"
    ))
    assert msg.startswith("edge.yaml: 4 problems")
    assert "machines[0].pol_interval (line 9) is not a known setting (did you mean 'poll_interval'?)" in msg
    assert "machines[0].max_block (line 10) has the bad value 200: Input should be less than or equal to 125" in msg
    assert "expected: most registers per read: 125 (the protocol's limit) or less for small devices" in msg
    assert "machines[0].tags.state (line 12) is not valid: address '50001' is not Modicon notation" in msg
    assert "address 70000 must be 0..65535 (0-based, as sent on the wire)" in msg

    assert "give it an integer type such as uint16" in problems(machine(
        "    tags:\n      state: {address: 0}\n      good_count: {address: 2, type: float32}\n"))
    assert "scale and offset would falsify the part count" in problems(machine(
        "    tags:\n      state: {address: 0}\n      good_count: {address: 2, scale: 0.1}\n"))
    assert "coil addresses hold single bits: use type: bool" in problems(machine(
        "    tags:\n      state: {address: 0, table: coil}\n      good_count: {address: 2}\n"))
    assert "address '40001' is in the holding table but table says input" in problems(machine(
        "    tags:\n      state: {address: '40001', table: input}\n      good_count: {address: 2}\n"))
    assert "machines[0].tags.good_count (line 9) is required but missing" in problems(machine(
        "    tags:\n      state: {address: 0}\n"))


def test_state_map_and_machine_list_problems() -> None:
    bad_state = machine("    tags: {state: {address: 0}, good_count: {address: 2}}\n").replace(
        "{0: idle}", "{0: idle, 1: offline, 2: runing}")
    msg = problems(bad_state)
    assert "machines[0].state_map[2] (line 6) has the bad value 'runing': Input should be 'running', 'idle'" in msg
    assert "maps to offline, which only means 'no communication'" in problems(
        machine("    tags: {state: {address: 0}, good_count: {address: 2}}\n").replace("{0: idle}", "{1: offline}"))
    two = MODBUS + MODBUS.split("machines:\n")[1]
    assert "machine id 'm1' appears twice" in problems(two)
    assert ("machines[0] (line 4) is not valid: Input tag 'profinet' found using 'protocol' does not match any of "
            "the expected tags: 'modbus', 'opcua'") in problems(MODBUS.replace("modbus", "profinet"))
    assert "edge_id (line 1) has the bad value 'bad id!'" in problems(MODBUS.replace("e1", "'bad id!'"))


def test_opcua_problems_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tags = "    tags: {state: s=M.State, good_count: s=M.Good}\n"
    assert "has no namespace: set namespace_uri: or write nsu=URI;s=M.State" in problems(machine(tags, "opcua"))
    assert "not an OPC UA node id" in problems(machine("    namespace_uri: urn:x\n    tags: {state: 'M.State', "
                                                       "good_count: s=M.Good}\n", "opcua"))
    secure = "    namespace_uri: urn:x\n    security: SignAndEncrypt\n" + tags
    assert "security SignAndEncrypt needs certificate: and private_key:" in problems(machine(secure, "opcua"))
    inline = "    namespace_uri: urn:x\n    username: op\n    password: secret\n" + tags
    msg = problems(machine(inline, "opcua"))
    assert "machines[0].password (line 11) is not a known setting (did you mean 'password_env'?)" in msg
    no_secret = "    namespace_uri: urn:x\n    username: op\n" + tags
    assert "passwords never go into the configuration file" in problems(machine(no_secret, "opcua"))

    with_env = machine("    namespace_uri: urn:x\n    username: op\n    password_env: PP_TEST_PW\n" + tags, "opcua")
    monkeypatch.delenv("PP_TEST_PW", raising=False)
    with pytest.raises(ConfigError, match="environment variable PP_TEST_PW \\(password_env\\) is not set"):
        parse_edge_config(with_env)
    monkeypatch.setenv("PP_TEST_PW", "s3cret")
    m = parse_edge_config(with_env).machines[0]
    assert isinstance(m, OpcuaMachine) and m.password() == "s3cret"

    (tmp_path / "pw.txt").write_text("from-file\n")
    with_file = machine("    namespace_uri: urn:x\n    username: op\n    password_file: pw.txt\n" + tags, "opcua")
    m = parse_edge_config(with_file, base_dir=tmp_path).machines[0]
    assert isinstance(m, OpcuaMachine) and m.password() == "from-file"
    with pytest.raises(ConfigError, match="cannot read the password from"):
        parse_edge_config(with_file, base_dir=tmp_path / "elsewhere")


def test_cli_prints_config_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MODBUS.replace("min_cycle_time: 2", "min_cycle_time: -2"))
    for argv in (["check", "--config", str(bad)], ["check", "--config", str(tmp_path / "missing.yaml")]):
        result = subprocess.run(
            [sys.executable, "-m", "edge", *argv], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr
    assert "machines[0].min_cycle_time (line 7) has the bad value -2" in subprocess.run(
        [sys.executable, "-m", "edge", "check", "--config", str(bad)], capture_output=True, text=True, cwd=REPO,
        timeout=60,
    ).stderr


def test_collectors_are_built_for_any_valid_timing() -> None:
    """A slow poll with a short retry cap, or a tiny cap, is valid and must not break the retry backoff."""
    tags = "    tags: {state: {address: 0}, good_count: {address: 2}}\n"
    text = (machine("    poll_interval: 60\n    retry_max: 5\n" + tags)
            .replace("machines:\n", "machines:\n  - {id: ua, protocol: opcua, endpoint: 'opc.tcp://plc:4840', "
                     "retry_max: 0.1, min_cycle_time: 1, state_map: {0: idle}, "
                     "tags: {state: 'nsu=urn:x;s=S', good_count: 'nsu=urn:x;s=G'}}\n"))
    collectors = build_collectors(parse_edge_config(text))
    assert sorted(c.name for c in collectors) == ["modbus plc:502", "opcua opc.tcp://plc:4840"]
