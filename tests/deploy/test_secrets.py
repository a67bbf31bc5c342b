"""plantpulse.secrets: every secret of a site made once, kept afterwards, each role's folder its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plantpulse.secrets import generate, main


def _contents(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_first_run_makes_everything_and_later_runs_keep_it(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    report = generate(out, "demo", ["edge-1"], tls_names=["mosquitto", "localhost"])
    files = _contents(out)
    for rel in ("mosquitto/passwd", "mosquitto/acl", "mosquitto/tls/server.key", "mosquitto/tls/ca.crt",
                "central/mqtt.pw", "central/ca.crt", "central/influx.token", "central/api/write.key",
                "central/api/read.key", "central/command-keys/demo/edge-1.key",
                "edge/demo/edge-1/mqtt.pw", "edge/demo/edge-1/command.key", "edge/demo/edge-1/ca.crt",
                "influxdb/admin.pw", "influxdb/token", "grafana/admin.pw", "grafana/influx.token", "tls/ca.key"):
        assert rel in files, rel
        assert (out / rel).stat().st_mode & 0o777 == 0o600, rel
    assert set(report.created) == set(files)
    assert files["central/influx.token"] == files["grafana/influx.token"] == files["influxdb/token"]
    assert files["central/ca.crt"] == files["edge/demo/edge-1/ca.crt"] == files["tls/ca.crt"]
    assert files["central/command-keys/demo/edge-1.key"] == files["edge/demo/edge-1/command.key"]
    assert files["central/api/write.key"] != files["central/api/read.key"]
    assert "tls/ca.key" not in {f.removeprefix("tls/") for f in files if not f.startswith("tls/")}
    assert all((Path(root)).stat().st_mode & 0o777 == 0o700 for root, _, _ in os.walk(out))

    again = generate(out, "demo", ["edge-1"], tls_names=["mosquitto", "localhost"])
    assert again.created == [] and again.issued == []
    rehashed = _contents(out)  # the password file is hashed again with new salts: the same passwords
    assert rehashed.pop("mosquitto/passwd") != files.pop("mosquitto/passwd")
    assert rehashed == files


def test_a_new_gateway_adds_its_folder_and_keeps_every_other_secret(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    generate(out, "demo", ["edge-1"], tls_names=["mosquitto"])
    before = _contents(out)
    report = generate(out, "demo", ["edge-2"], tls_names=["mosquitto"])
    after = _contents(out)
    assert {k for k in report.created} == {"central/command-keys/demo/edge-2.key", "edge/demo/edge-2/mqtt.pw",
                                          "edge/demo/edge-2/command.key", "edge/demo/edge-2/ca.crt"}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"mosquitto/passwd", "mosquitto/acl"}  # the broker's files list both gateways now
    assert "user edge-2@demo" in after["mosquitto/acl"].decode()


def test_without_tls_names_no_certificates_are_made(tmp_path: Path) -> None:
    generate(tmp_path, "demo", ["edge-1"])
    assert not (tmp_path / "tls").exists() and not (tmp_path / "central/ca.crt").exists()


def test_client_certificates_go_to_each_gateway(tmp_path: Path) -> None:
    generate(tmp_path, "demo", ["edge-1"], tls_names=["mosquitto"], clients=True)
    assert (tmp_path / "edge/demo/edge-1/client.crt").exists() and (tmp_path / "edge/demo/edge-1/client.key").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may hand files to another user")
def test_owners_get_their_role_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--site", "demo", "edge-1", "--tls-name", "mosquitto",
                 "--owner", "mosquitto=1883:1883", "--owner", "central=10001", "--owner", "grafana=472:0"]) == 0
    assert "new:" in capsys.readouterr().out
    for path, uid, gid in ((tmp_path / "mosquitto/tls/server.key", 1883, 1883), (tmp_path / "mosquitto", 1883, 1883),
                           (tmp_path / "central/api/read.key", 10001, 10001), (tmp_path / "grafana", 472, 0),
                           (tmp_path / "tls/ca.key", 0, 0), (tmp_path / "influxdb/token", 0, 0)):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (uid, gid), path


def test_command_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--owner", "nobody=1"])
    assert "role is one of" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--site", "demo", "bad id"]) == 2


def test_demo_keys_only_when_asked_each_demo_service_a_copy_of_its_own(tmp_path: Path) -> None:
    generate(tmp_path / "plain", "demo", ["edge-1"])
    assert not list((tmp_path / "plain").glob("demo-*")) and not list((tmp_path / "plain").rglob("demo-*.key"))
    out = tmp_path / "demo"
    report = generate(out, "demo", ["edge-1"], demo_keys=True)
    files = _contents(out)
    assert files["central/api/demo-planner.key"] == files["demo-planner/api.key"]
    assert files["central/api/demo-operator.key"] == files["demo-operator/api.key"]
    keys = [files[f"central/api/{k}.key"] for k in ("write", "read", "demo-planner", "demo-operator")]
    assert len(set(keys)) == 4 and "demo-planner/api.key" in report.created
    assert generate(out, "demo", ["edge-1"], demo_keys=True).created == []
    assert _contents(out)["demo-planner/api.key"] == files["demo-planner/api.key"]  # kept
