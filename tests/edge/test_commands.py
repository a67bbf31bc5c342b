"""Which commands a gateway acts on (edge/commands.py), and the ``commands:`` section of its file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.commands import CommandGate
from edge.config import parse_edge_config
from plantpulse.configfile import ConfigError
from plantpulse.protocol.models import Ack, Replay, SeqRange
from plantpulse.protocol.signing import sign
from tests.fixtures.ids import EPOCH1

SECRET = b"s" * 40
ACK_TOPIC = "plantpulse/v1/s1/gw1/cmd/ack"
REPLAY_TOPIC = "plantpulse/v1/s1/gw1/cmd/replay"
NOW = 1_800_000_000.0


def ack_body(edge_id: str = "gw1", ts: float = NOW) -> bytes:
    return Ack(edge_id=edge_id, epoch=EPOCH1, ts=ts, applied=[SeqRange(first=1, last=5)]).model_dump_json().encode()


def gate(secret: bytes | None = SECRET, max_age: float | None = None) -> CommandGate:
    return CommandGate("s1", "gw1", secret=secret, max_age=max_age, clock=lambda: NOW)


def test_with_a_secret_only_commands_signed_with_it_pass() -> None:
    g = gate()
    assert isinstance(g.parse(ACK_TOPIC, sign(SECRET, ACK_TOPIC, ack_body())), Ack)
    replay = Replay(edge_id="gw1", epoch=EPOCH1, first=1, last=2, ts=NOW).model_dump_json().encode()
    assert isinstance(g.parse(REPLAY_TOPIC, sign(SECRET, REPLAY_TOPIC, replay)), Replay)
    assert g.parse(ACK_TOPIC, ack_body()) is None  # unsigned
    assert g.parse(ACK_TOPIC, sign(b"x" * 40, ACK_TOPIC, ack_body())) is None  # another secret
    assert g.parse(ACK_TOPIC, sign(SECRET, REPLAY_TOPIC, ack_body())) is None  # signed for another topic
    assert g.parse(ACK_TOPIC, sign(SECRET, ACK_TOPIC, ack_body("gw2"))) is None  # signed, but not for us
    assert g.parse(ACK_TOPIC, sign(SECRET, ACK_TOPIC, b'{"v":1}')) is None  # signed, but not a command
    assert g.refused == {"invalid": 2, "unsigned": 1, "bad_signature": 2, "too_old": 0}


def test_without_a_secret_a_signature_is_cut_off_and_ignored() -> None:
    g = gate(secret=None)
    assert isinstance(g.parse(ACK_TOPIC, ack_body()), Ack)
    assert isinstance(g.parse(ACK_TOPIC, sign(b"any central key at all, 32+ chars", ACK_TOPIC, ack_body())), Ack)
    assert not g.signed and sum(g.refused.values()) == 0


def test_max_age_refuses_old_commands() -> None:
    g = gate(max_age=600)
    assert g.parse(ACK_TOPIC, sign(SECRET, ACK_TOPIC, ack_body(ts=NOW - 599))) is not None
    assert g.parse(ACK_TOPIC, sign(SECRET, ACK_TOPIC, ack_body(ts=NOW - 601))) is None
    assert g.refused["too_old"] == 1


def test_refusals_are_logged_at_most_once_a_minute_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    g = gate()
    with caplog.at_level(logging.WARNING, logger="edge.commands"):
        for _ in range(500):
            g.parse(ACK_TOPIC, ack_body())
            g.parse(ACK_TOPIC, b"\x00garbage")
    assert g.refused["unsigned"] == 1000  # garbage has no signature either
    assert len(caplog.records) == 1 and "unsigned" in caplog.records[0].getMessage()


BASE = "edge_id: gw1\nsite: s1\nmachines:\n  - {id: m1, protocol: modbus, host: plc, min_cycle_time: 1, " \
       "state_map: {0: idle}, tags: {state: {address: 0}, good_count: {address: 1}}}\n"


def test_config_section_resolves_and_checks_the_secret_file(tmp_path: Path) -> None:
    (tmp_path / "command.key").write_text("a" * 64 + "\n")
    cfg = parse_edge_config(BASE + "commands: {secret_file: command.key, max_age: 3600}\n", base_dir=tmp_path)
    assert cfg.commands.secret_file == tmp_path / "command.key" and cfg.commands.max_age == 3600
    assert parse_edge_config(BASE).commands.secret_file is None
    (tmp_path / "short.key").write_text("letmein\n")
    for text, expect in (
        ("commands: {secret_file: short.key}\n", "commands.secret_file: the secret in .* 7 characters, at least 32"),
        ("commands: {secret_file: missing.key}\n", "commands.secret_file: cannot read"),
        ("commands: {secret: x}\n", r"commands.secret \(line 5\) is not a known setting \(did you mean 'secret_file'"),
        ("commands: {max_age: 0}\n", "commands.max_age .* greater than 0"),
    ):
        with pytest.raises(ConfigError, match=expect):
            parse_edge_config(BASE + text, source="edge.yaml", base_dir=tmp_path)
