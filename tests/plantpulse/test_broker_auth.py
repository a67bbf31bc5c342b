"""The broker credentials generator: files, idempotence, signing keys, mosquitto's hash format.

That real mosquitto accepts what it writes, and enforces every ACL rule, is tested with a running
broker in tests/test_broker_acl.py (the default test broker is built from this generator).
"""

from __future__ import annotations

import base64
import hashlib
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from plantpulse.broker_auth import acl_text, gateway_user, main, password_hash, provision
from tests.fixtures.procs import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_permissions(tmp_path: Path) -> None:
    out = tmp_path / "auth"
    assert provision(out, "s1", ["gw1", "gw2"], sign=True) == [("s1", "gw1"), ("s1", "gw2")]
    for rel in ("mosquitto/passwd", "mosquitto/acl", "central/mqtt.pw", "edge/s1/gw1/mqtt.pw",
                "edge/s1/gw1/command.key", "central/command-keys/s1/gw1.key", "edge/s1/gw2/command.key"):
        assert (out / rel).exists(), rel
        assert mode(out / rel) == 0o600, rel
    secret = (out / "edge/s1/gw1/command.key").read_text()
    assert len(secret.strip()) == 64 and (out / "central/command-keys/s1/gw1.key").read_text() == secret
    assert (out / "edge/s1/gw2/command.key").read_text() != secret  # one secret per gateway
    users = [line.split(":", 1)[0] for line in (out / "mosquitto/passwd").read_text().splitlines()]
    assert users == ["central", "gw1@s1", "gw2@s1"]


def test_runs_again_keep_secrets_and_add_sites(tmp_path: Path) -> None:
    out = tmp_path / "auth"
    provision(out, "s1", ["gw1"])
    first = (out / "edge/s1/gw1/mqtt.pw").read_text()
    central = (out / "central/mqtt.pw").read_text()
    (out / "edge/s2/gw1").mkdir(parents=True)
    (out / "edge/s2/gw1/mqtt.pw").write_text("a given password\n")  # given, not random
    provision(out, "s2", ["gw1", "gw3"])
    assert (out / "edge/s1/gw1/mqtt.pw").read_text() == first
    assert (out / "central/mqtt.pw").read_text() == central
    acl = (out / "mosquitto/acl").read_text()
    assert "user gw1@s1\n" in acl and "user gw1@s2\n" in acl and "user gw3@s2\n" in acl  # same id, two sites
    line = next(x for x in (out / "mosquitto/passwd").read_text().splitlines() if x.startswith("gw1@s2:"))
    _, _, iterations, salt, digest = line.split(":", 1)[1].split("$")
    expect = hashlib.pbkdf2_hmac("sha512", b"a given password", base64.b64decode(salt), int(iterations))
    assert base64.b64decode(digest) == expect


def test_acl_lines_of_a_gateway() -> None:
    text = acl_text([("s1", "gw1")])
    block = text[text.index("user gw1@s1"):].splitlines()[:6]
    assert block == [
        "user gw1@s1",
        "topic write plantpulse/v1/s1/gw1/events",
        "topic write plantpulse/v1/s1/gw1/status",
        "topic write plantpulse/v1/s1/gw1/health",
        "topic write plantpulse/v1/s1/gw1/snapshot",
        "topic read plantpulse/v1/s1/gw1/cmd/#",
    ]
    assert "pattern" not in text  # explicit lines only (docs/protocol.md says why)
    assert gateway_user("s1", "gw1") == "gw1@s1"


def test_password_hash_is_mosquittos_format() -> None:
    salt = base64.b64decode("IPuxON3oDjV8mJRy")  # from a file mosquitto_passwd 2.0.11 wrote for "pw"
    assert password_hash("pw", salt) == (
        "$7$101$IPuxON3oDjV8mJRy$TnUZ6YfpEWnJlI2LBec+hz0W92P0Nvmd5feiVGudFk7EoV8+zlb1TeokyPCwaitdZmpIrGqPwu4o"
        "DSwZfucIBg=="
    )


def test_bad_ids_and_mismatched_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="edge id '_central' is not valid"):
        provision(tmp_path / "a", "s1", ["_central"])
    with pytest.raises(ValueError, match="site 'a/b' is not valid"):
        provision(tmp_path / "a", "a/b", ["gw1"])
    out = tmp_path / "b"
    provision(out, "s1", ["gw1"], sign=True)
    (out / "central/command-keys/s1/gw1.key").write_text("f" * 64 + "\n")
    with pytest.raises(ValueError, match="differ: delete the wrong one"):
        provision(out, "s1", ["gw1"], sign=True)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "o"), "--site", "s1", "gw1"]) == 0
    assert "gw1@s1" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "o"), "--site", "s1", "bad id"]) == 2
    assert "edge id 'bad id' is not valid" in capsys.readouterr().err
    done = subprocess.run([sys.executable, "-m", "plantpulse.broker_auth", "--help"], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert "--sign" in done.stdout
