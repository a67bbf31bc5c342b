"""``python -m plantpulse.secrets``: every secret of a site, generated once into one folder, kept afterwards.

The compose file runs it as a one-shot before anything else (docs/deployment.md); a systemd
install runs it once by hand. Why one generator: each service reads only its own folder, so the
folder layout *is* the wiring, and a secret that is missing is made at first start instead of
being copied from a README into a shell history. Every run keeps what is there and adds what is
missing (so later starts change nothing), then writes the derived files again (the broker's
password file and ACL, the copies of the CA certificate)::

    OUT/mosquitto/passwd, acl                 plantpulse.broker_auth: passwords and the per-gateway ACL
    OUT/mosquitto/tls/ca.crt, server.crt, server.key   with --tls-name: the broker's TLS listener
    OUT/tls/ca.crt, ca.key, server.*          plantpulse.tls: the site CA (ca.key stays here, root only)
    OUT/central/mqtt.pw                       central's MQTT password
    OUT/central/command-keys/<site>/<edge>.key  central's command signing keys
    OUT/central/ca.crt                        the CA, to check the broker (mqtt.tls.ca_file)
    OUT/central/influx.token                  the InfluxDB token (influx.token_file)
    OUT/central/api/write.key, read.key       API keys (api.keys[].key_file)
    OUT/edge/<site>/<edge>/mqtt.pw, command.key, ca.crt    one folder per gateway
    OUT/influxdb/admin.pw, token              InfluxDB's first-start setup (DOCKER_INFLUXDB_INIT_*_FILE)
    OUT/grafana/admin.pw, influx.token        Grafana's admin password and its data source's token
    OUT/postgres/password, OUT/central/postgres.dsn   with --postgres HOST: central scaled out (docs/scaling.md)
    OUT/central/api/demo-planner.key, demo-operator.key   with --demo-keys: the compose demo profile's API keys
    OUT/demo-planner/api.key, OUT/demo-operator/api.key   ... and each demo service's copy of its own key

Secrets are 32 random bytes (hex), files 0600, folders 0700. ``--owner ROLE=UID[:GID]`` hands a
role's folder to the user its container runs as (mosquitto 1883, plantpulse 10001, influxdb
1000, grafana 472 in the shipped compose file), so no service can read another's secrets. The
InfluxDB token is InfluxDB's first (operator) token: see docs/deployment.md for narrower tokens.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plantpulse.broker_auth import ensure_secret, provision, write_file
from plantpulse.tls import parse_names, provision_tls

ROLES = ("mosquitto", "central", "edge", "influxdb", "grafana", "postgres", "demo-planner", "demo-operator")
# with --demo-keys: the compose demo profile's services, their key's name in central's config and its role there
DEMO_KEYS = {"demo-planner": "write", "demo-operator": "read"}


@dataclass
class Report:
    """What a run found and made (names only, never a secret's value)."""

    gateways: list[tuple[str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} if out.exists() else set()


def _copy(source: Path, target: Path) -> None:
    """Copy a certificate or key (mode 0600), atomically, only when it differs."""
    data = source.read_bytes()
    if target.exists() and target.read_bytes() == data:
        return
    write_file(target, data.decode(), 0o600)


def generate(out: Path, site: str | None = None, edge_ids: Sequence[str] = (), *,
             tls_names: Sequence[str] = (), clients: bool = False, postgres: str | None = None,
             demo_keys: bool = False) -> Report:
    """Make whatever is missing in ``out`` and write the derived files; see the module docstring."""
    report = Report()
    before = _files(out)
    report.gateways = provision(out, site, edge_ids, sign=True)
    token = ensure_secret(out / "influxdb/token")
    ensure_secret(out / "influxdb/admin.pw")
    ensure_secret(out / "grafana/admin.pw")
    for copy in ("central/influx.token", "grafana/influx.token"):
        if not (out / copy).exists() or (out / copy).read_text(encoding="utf-8").strip() != token:
            write_file(out / copy, token + "\n", 0o600)
    ensure_secret(out / "central/api/write.key")
    ensure_secret(out / "central/api/read.key")
    if demo_keys:  # the demo profile's planner (posts orders) and simulated operator (reads dispatch lists)
        for name in DEMO_KEYS:
            key = ensure_secret(out / f"central/api/{name}.key")
            if not (out / name / "api.key").exists() or (out / name / "api.key").read_text().strip() != key:
                write_file(out / name / "api.key", key + "\n", 0o600)
    if postgres:  # the store of workers and API replicas: its password, and central's connection string
        password = ensure_secret(out / "postgres/password")
        dsn = f"postgresql://plantpulse:{password}@{postgres}:5432/plantpulse\n"
        if not (out / "central/postgres.dsn").exists() or (out / "central/postgres.dsn").read_text() != dsn:
            write_file(out / "central/postgres.dsn", dsn, 0o600)
    if tls_names:
        client_names = [f"{e}@{s}" for s, e in report.gateways] if clients else []
        report.issued = provision_tls(out / "tls", tls_names, client_names)
        tls = out / "tls"
        for name in ("ca.crt", "server.crt", "server.key"):
            _copy(tls / name, out / "mosquitto" / "tls" / name)
        _copy(tls / "ca.crt", out / "central" / "ca.crt")
        for gw_site, edge_id in report.gateways:
            folder = out / "edge" / gw_site / edge_id
            _copy(tls / "ca.crt", folder / "ca.crt")
            if clients:
                for ext in ("crt", "key"):
                    _copy(tls / "clients" / f"{edge_id}@{gw_site}.{ext}", folder / f"client.{ext}")
    _tighten(out)
    report.created = sorted(_files(out) - before)
    return report


def _tighten(out: Path) -> None:
    """Folders 0700 and files 0600 everywhere under ``out`` (a copied tree may have come looser)."""
    for root, dirs, files in os.walk(out):
        os.chmod(root, 0o700)
        for name in files:
            os.chmod(Path(root) / name, 0o600)
        for name in dirs:
            os.chmod(Path(root) / name, 0o700)


def hand_over(out: Path, owners: dict[str, tuple[int, int]]) -> None:
    """Give each role's folder (recursively) to its user; everything else stays with the caller."""
    for role, (uid, gid) in owners.items():
        folder = out / role
        if not folder.exists():
            continue
        os.chown(folder, uid, gid)
        for root, dirs, files in os.walk(folder):
            for name in (*dirs, *files):
                os.chown(Path(root) / name, uid, gid)


def _owner(text: str) -> tuple[str, tuple[int, int]]:
    role, _, ids = text.partition("=")
    uid, _, gid = ids.partition(":")
    if role not in ROLES:
        raise argparse.ArgumentTypeError(f"--owner {text!r}: the role is one of {', '.join(ROLES)}")
    try:
        return role, (int(uid), int(gid or uid))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--owner {text!r}: expected ROLE=UID[:GID], e.g. mosquitto=1883:1883") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m plantpulse.secrets",
        description="Generate every secret of a site into OUT (MQTT passwords and ACL, command keys, the broker's "
                    "TLS certificates, InfluxDB and Grafana credentials, API keys). Keeps what is there.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (keep it out of version control)")
    p.add_argument("--site", help="site id of the gateways named here")
    p.add_argument("edge_ids", nargs="*", help="edge ids of the gateways of --site")
    p.add_argument("--tls-name", action="append", default=[], metavar="HOST_OR_IP",
                   help="a name or address clients use to reach the broker (repeat or comma-separate; empty values "
                        "are ignored); without any, no TLS files are made")
    p.add_argument("--client-certs", action="store_true", help="also issue a TLS client certificate per gateway")
    p.add_argument("--postgres", metavar="HOST", help="also a PostgreSQL password and central's store.dsn_file "
                   "for a server at HOST (central scaled out, docs/scaling.md)")
    p.add_argument("--demo-keys", action="store_true", help="also API keys for the demo profile's planner "
                   f"and simulated operator ({', '.join(f'{k}: {r}' for k, r in DEMO_KEYS.items())})")
    p.add_argument("--owner", action="append", type=_owner, default=[], metavar="ROLE=UID[:GID]",
                   help=f"hand a role's folder to a user; roles: {', '.join(ROLES)}")
    args = p.parse_args(argv)
    if args.edge_ids and not args.site:
        p.error("edge ids need --site")
    owners = dict(args.owner)
    try:
        report = generate(args.out, args.site, args.edge_ids, tls_names=parse_names(args.tls_name),
                          clients=args.client_certs, postgres=args.postgres,
                          demo_keys=args.demo_keys)
        hand_over(args.out, owners)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gateways = ", ".join(f"{e}@{s}" for s, e in report.gateways) or "none"
    print(f"{args.out}: secrets for central and gateways {gateways}; "
          + (f"new: {', '.join(report.created)}" if report.created else "all kept")
          + (f"; TLS issued: {', '.join(report.issued)}" if report.issued else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
