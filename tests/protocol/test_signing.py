"""Signed commands: the worked example of docs/protocol.md, and what a verifier refuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from plantpulse.protocol.models import Ack, Replay, SeqRange
from plantpulse.protocol.signing import SignatureError, read_secret, sign, signature, split, verify
from tests.fixtures.ids import EPOCH1
from tests.fixtures.procs import REPO

# the worked example, exactly as docs/protocol.md prints it
SECRET = b"6f1c2a9e0b7d4c3a8e5f1029384756afbe0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e"
TOPIC = "plantpulse/v1/suzhou-1/line-a-modbus/cmd/ack"
BODY = (b'{"v":1,"edge_id":"line-a-modbus","epoch":"3f0c9f0a-8f5e-4a57-b3c5-0c1f2e9b7d11",'
        b'"applied":[{"first":1,"last":41},{"first":45,"last":57}],"ts":1795000131.0}')
SIG = "c77e06d714937cb2717802916889b90d5a573fd60c856d7115a307c988c1d94d"


def test_the_worked_example() -> None:
    ack = Ack(edge_id="line-a-modbus", epoch="3f0c9f0a-8f5e-4a57-b3c5-0c1f2e9b7d11",
              applied=[SeqRange(first=1, last=41), SeqRange(first=45, last=57)], ts=1795000131.0)
    assert ack.model_dump_json().encode() == BODY  # what central signs is what it would send
    assert signature(SECRET, TOPIC, BODY) == SIG
    signed = sign(SECRET, TOPIC, BODY)
    assert signed == BODY[:-1] + f',"sig":"{SIG}"}}'.encode()
    assert json.loads(signed)["sig"] == SIG  # still one valid JSON object
    assert verify(SECRET, TOPIC, signed) == BODY
    assert Ack.model_validate_json(verify(SECRET, TOPIC, signed)) == ack


def test_the_worked_example_in_the_docs_is_this_one() -> None:
    doc = (REPO / "docs/protocol.md").read_text()
    for text in (SECRET.decode(), TOPIC, BODY.decode(), SIG):
        assert text in doc, text


def test_openssl_agrees() -> None:
    """A third party with nothing but openssl gets the same signature."""
    out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", SECRET.decode()],
                         input=TOPIC.encode() + b"\n" + BODY, capture_output=True, check=True).stdout
    assert out.decode().strip().endswith(SIG)


def test_unsigned_wrong_secret_other_topic_or_changed_bytes_are_refused() -> None:
    signed = sign(SECRET, TOPIC, BODY)
    with pytest.raises(SignatureError) as unsigned:
        verify(SECRET, TOPIC, BODY)
    assert unsigned.value.reason == "unsigned"
    cases = {
        "another secret": (b"x" * 64, TOPIC, signed),
        "another gateway's topic": (SECRET, TOPIC.replace("line-a-modbus", "line-b-modbus"), signed),
        "the replay channel": (SECRET, TOPIC.replace("cmd/ack", "cmd/replay"), signed),
        "a widened range": (SECRET, TOPIC, signed.replace(b'"last":57', b'"last":99')),
        "an uppercase signature": (SECRET, TOPIC, signed.replace(SIG.encode(), SIG.upper().encode())),
    }
    for what, (secret, topic, payload) in cases.items():
        with pytest.raises(SignatureError) as err:
            verify(secret, topic, payload)
        # an uppercase hex tail is not the signature form at all: it counts as unsigned
        assert err.value.reason in ("bad_signature", "unsigned"), what


def test_split_takes_only_a_trailing_sig_member() -> None:
    assert split(BODY) == (BODY, None)
    inner = b'{"note":",\\"sig\\":\\"' + b"0" * 64 + b'\\"}","v":1}'
    assert split(inner) == (inner, None)  # inside a string, not the last member
    signed = sign(SECRET, TOPIC, BODY)
    assert split(signed) == (BODY, SIG)
    assert split(signed + b" ") == (signed + b" ", None)  # the tail is exact: no trailing bytes


def test_sign_refuses_what_it_cannot_sign() -> None:
    for bad in (b"{}", b"[1]", b'{"a":1} ', b""):
        with pytest.raises(ValueError):
            sign(SECRET, TOPIC, bad)
    with pytest.raises(ValueError, match="already signed"):
        sign(SECRET, TOPIC, sign(SECRET, TOPIC, BODY))


def test_a_signed_replay_round_trips() -> None:
    replay = Replay(edge_id="gw1", epoch=EPOCH1, first=42, last=44, ts=1795000132.5)
    topic = "plantpulse/v1/s1/gw1/cmd/replay"
    signed = sign(SECRET, topic, replay.model_dump_json().encode())
    assert Replay.model_validate_json(verify(SECRET, topic, signed)) == replay


def test_read_secret_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    good = tmp_path / "good.key"
    good.write_text(SECRET.decode() + "\n")
    assert read_secret(good, "commands.secret_file") == SECRET
    short = tmp_path / "short.key"
    short.write_text("letmein\n")
    with pytest.raises(ValueError, match=r"commands.secret_file: .* 7 characters.*plantpulse.broker_auth"):
        read_secret(short, "commands.secret_file")
    with pytest.raises(ValueError, match=r"commands.secret_file: cannot read"):
        read_secret(tmp_path / "missing.key", "commands.secret_file")
