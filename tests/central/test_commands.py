"""Central signs commands with the gateway's key file (central/ingest/commands.py) and the ``commands:``
section of its configuration names the folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from central.config import load_central_config
from central.ingest.commands import CommandSigner
from plantpulse.broker_auth import provision
from plantpulse.configfile import ConfigError
from plantpulse.protocol.signing import SignatureError, split, verify

TOPIC = "plantpulse/v1/s1/gw1/cmd/ack"
BODY = b'{"v":1,"edge_id":"gw1","epoch":"e1","applied":[{"first":1,"last":2}],"ts":1.0}'


def test_signs_with_the_key_the_generator_gave_the_gateway(tmp_path: Path) -> None:
    provision(tmp_path, "s1", ["gw1"], sign=True)
    signer = CommandSigner(tmp_path / "central/command-keys")
    signed = signer.sign("s1", "gw1", TOPIC, BODY)
    edge_key = (tmp_path / "edge/s1/gw1/command.key").read_text().strip().encode()
    assert verify(edge_key, TOPIC, signed) == BODY
    assert (signer.signed, signer.unsigned) == (1, 0)


def test_a_gateway_without_a_usable_key_gets_unsigned_commands_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    signer = CommandSigner(tmp_path)
    with caplog.at_level(logging.WARNING, logger="central.ingest.commands"):
        for _ in range(3):
            assert signer.sign("s1", "gw1", TOPIC, BODY) == BODY
        (tmp_path / "s1").mkdir()
        (tmp_path / "s1/gw1.key").write_text("short\n")
        assert split(signer.sign("s1", "gw1", TOPIC, BODY))[1] is None
        assert signer.sign("..", "gw1", TOPIC, BODY) == BODY  # never a path outside the folder
    assert signer.unsigned == 5 and signer.signed == 0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "go unsigned" in messages[0] and "5 characters" in messages[1]


def test_a_replaced_key_is_used_without_a_restart(tmp_path: Path) -> None:
    (tmp_path / "s1").mkdir()
    key = tmp_path / "s1/gw1.key"
    key.write_text("a" * 64 + "\n")
    signer = CommandSigner(tmp_path)
    first = signer.sign("s1", "gw1", TOPIC, BODY)
    verify(b"a" * 64, TOPIC, first)
    key.write_text("b" * 64 + "\n")
    os.utime(key, ns=(1, 1))  # a different modification time whatever the file system's resolution
    second = signer.sign("s1", "gw1", TOPIC, BODY)
    verify(b"b" * 64, TOPIC, second)
    with pytest.raises(SignatureError):
        verify(b"a" * 64, TOPIC, second)


def test_keys_dir_is_relative_to_the_file_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    conf = tmp_path / "central.yaml"
    conf.write_text("site: s1\ncommands: {keys_dir: keys}\n")
    assert load_central_config(conf).commands.keys_dir == tmp_path / "keys"
    conf.write_text("site: s1\ncommands: {keys_dir: nowhere}\n")
    with pytest.raises(ConfigError, match=r"commands.keys_dir: .*nowhere is not a folder .*broker_auth --sign"):
        load_central_config(conf)
    conf.write_text("site: s1\ncommands: {key_dir: keys}\n")
    with pytest.raises(ConfigError, match=r"commands.key_dir .* not a known setting \(did you mean 'keys_dir'"):
        load_central_config(conf)
