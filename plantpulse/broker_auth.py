"""``python -m plantpulse.broker_auth``: passwords, the per-gateway ACL and command keys for mosquitto.

Why a generator and not mosquitto's ``pattern ... %u``: a gateway may write only
``plantpulse/v1/<its site>/<its edge_id>/...``, and ``%u`` must be a whole topic level, so one
user name cannot fill both the site and the edge id levels. Explicit ``user``/``topic`` lines
per gateway say exactly what each one may do, work the same in every mosquitto version, and
translate one to one to other brokers' ACLs. Gateways log in as ``<edge_id>@<site>`` (``@`` is
not allowed in ids, so two sites can reuse an edge id), central as ``central``.

The output folder is the state: every run keeps the secrets already there, adds what is missing
(random 32-byte secrets) and writes the broker's files again from all gateways it holds, so it
can run at every start (compose, ``make demo``) and once per site::

    OUT/mosquitto/passwd                      the broker's password file (PBKDF2-SHA512, mosquitto's $7$)
    OUT/mosquitto/acl                         the broker's ACL
    OUT/central/mqtt.pw                       central's MQTT password  (mqtt.password_file)
    OUT/central/command-keys/<site>/<edge_id>.key   with --sign: central's signing keys (commands.keys_dir)
    OUT/edge/<site>/<edge_id>/mqtt.pw          a gateway's MQTT password (mqtt.password_file)
    OUT/edge/<site>/<edge_id>/command.key      with --sign: the same key for the gateway (commands.secret_file)

A password is "given" by writing it into its ``mqtt.pw`` before the run. docs/protocol.md
("Broker security") describes the scheme.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from plantpulse.protocol.models import ID_PATTERN

CENTRAL_USER = "central"
GATEWAY_CHANNELS = ("events", "status", "health", "snapshot")
_ID = re.compile(ID_PATTERN)
_PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default; the passwords are random, so cost adds nothing


def gateway_user(site: str, edge_id: str) -> str:
    """The MQTT user name of a gateway: ``<edge_id>@<site>``."""
    return f"{edge_id}@{site}"


def central_acl(user: str = CENTRAL_USER) -> str:
    return (
        f"# central: reads every gateway, sends commands, owns the reserved _central topics\n"
        f"user {user}\n"
        "topic read plantpulse/v1/#\n"
        "topic write plantpulse/v1/+/+/cmd/#\n"
        "topic write plantpulse/v1/+/_central/#\n"
    )


def gateway_acl(site: str, edge_id: str) -> str:
    base = f"plantpulse/v1/{site}/{edge_id}"
    lines = [f"# gateway {edge_id} of site {site}", f"user {gateway_user(site, edge_id)}"]
    lines += [f"topic write {base}/{channel}" for channel in GATEWAY_CHANNELS]
    lines.append(f"topic read {base}/cmd/#")
    return "\n".join(lines) + "\n"


def acl_text(gateways: Iterable[tuple[str, str]]) -> str:
    """The whole ACL: central, then one block per (site, edge_id); nobody else may do anything."""
    blocks = ["# plantpulse broker ACL, written by python -m plantpulse.broker_auth (docs/protocol.md).\n"
              "# Users not listed here may connect (with a password) but neither read nor write.\n",
              central_acl()]
    blocks += [gateway_acl(site, edge_id) for site, edge_id in sorted(set(gateways))]
    return "\n".join(blocks)


def password_hash(password: str, salt: bytes | None = None) -> str:
    """mosquitto's ``$7$`` format: PBKDF2-HMAC-SHA512, ``$7$<iterations>$<b64 salt>$<b64 hash>``."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_file_text(users: dict[str, str]) -> str:
    """A mosquitto password file for ``users`` (name -> clear password)."""
    for name in users:
        if not name or ":" in name or any(c.isspace() for c in name):
            raise ValueError(f"user name {name!r} cannot go into a mosquitto password file")
    return "".join(f"{name}:{password_hash(pw)}\n" for name, pw in sorted(users.items()))


def ensure_secret(path: Path, nbytes: int = 32) -> str:
    """The secret in ``path``; a new random one (hex) written with mode 0600 when there is none."""
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise ValueError(f"{path} is empty: delete it to get a new random secret, or write one into it")
        return value
    value = secrets.token_hex(nbytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def write_file(path: Path, text: str, mode: int) -> None:
    """Write atomically (the broker may reload at any moment) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


def known_gateways(out: Path) -> list[tuple[str, str]]:
    """Every (site, edge_id) that has a password in ``out``."""
    found = []
    for pw in sorted((out / "edge").glob("*/*/mqtt.pw")):
        site, edge_id = pw.parent.parent.name, pw.parent.name
        if _ID.match(site) and _ID.match(edge_id):
            found.append((site, edge_id))
    return found


def provision(out: Path, site: str | None = None, edge_ids: Sequence[str] = (), *, sign: bool = False,
              broker_owner: tuple[int, int] | None = None) -> list[tuple[str, str]]:
    """Add ``edge_ids`` of ``site`` to ``out`` and write the broker's files; returns every gateway.

    ``broker_owner`` (uid, gid): owner of the broker's two files, for a broker that drops root
    privileges before reading them (the eclipse-mosquitto image runs as uid 1883).
    """
    checks = ([("site", site)] if edge_ids else []) + [("edge id", e) for e in edge_ids]
    for what, value in checks:
        if value is None or not _ID.match(value):
            raise ValueError(f"{what} {value!r} is not valid: letters, digits, '_', '.', '-', starting with a "
                             "letter or digit, at most 64 characters")
    users = {CENTRAL_USER: ensure_secret(out / "central" / "mqtt.pw")}
    for edge_id in edge_ids:
        assert site is not None
        folder = out / "edge" / site / edge_id
        ensure_secret(folder / "mqtt.pw")
        if sign:
            key = ensure_secret(folder / "command.key")
            central_key = out / "central" / "command-keys" / site / f"{edge_id}.key"
            if central_key.exists() and central_key.read_text(encoding="utf-8").strip() != key:
                raise ValueError(f"{central_key} and {folder / 'command.key'} differ: delete the wrong one")
            write_file(central_key, key + "\n", 0o600)
    gateways = known_gateways(out)
    for gw_site, edge_id in gateways:
        users[gateway_user(gw_site, edge_id)] = ensure_secret(out / "edge" / gw_site / edge_id / "mqtt.pw")
    broker = out / "mosquitto"
    mode = 0o600 if broker_owner is None else 0o640
    write_file(broker / "passwd", password_file_text(users), mode)
    write_file(broker / "acl", acl_text(gateways), mode)
    if broker_owner is not None:
        for path in (broker, broker / "passwd", broker / "acl"):
            os.chown(path, *broker_owner)
    return gateways


def _owner(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--broker-owner {text!r}: expected UID or UID:GID, e.g. 1883:1883") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m plantpulse.broker_auth",
        description="Write mosquitto's password file and per-gateway ACL, and each service's MQTT password "
                    "(and command keys with --sign) into OUT. Keeps secrets already there; run it again per site.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (keep it out of version control)")
    p.add_argument("--site", help="site id of the gateways named here")
    p.add_argument("edge_ids", nargs="*", help="edge ids of the gateways of --site")
    p.add_argument("--sign", action="store_true", help="also write a command signing key per gateway")
    p.add_argument("--broker-owner", type=_owner, help="UID[:GID] to own the broker's files (docker: 1883)")
    args = p.parse_args(argv)
    if args.edge_ids and not args.site:
        p.error("edge ids need --site")
    try:
        gateways = provision(args.out, args.site, args.edge_ids, sign=args.sign, broker_owner=args.broker_owner)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: broker files for central and {len(gateways)} gateway(s): "
          + ", ".join(gateway_user(s, e) for s, e in gateways))
    return 0


if __name__ == "__main__":
    sys.exit(main())
