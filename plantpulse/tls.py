"""``python -m plantpulse.tls``: the MQTT broker's certificate authority, server and client certificates.

Why a site CA of its own and not a public one: a plant LAN has no public names and often no
internet; a private CA whose certificate each gateway holds (``mqtt.tls.ca_file``) lets a gateway
check that it talks to the plant's broker and not to whatever answers on the broker's address. The
broker's password file and per-gateway ACL (``plantpulse.broker_auth``) stay what decides who may
do what; TLS keeps the passwords and the plant's data off the wire in clear.

The output folder is the state, as with ``broker_auth``: every run keeps what is there and adds
what is missing, so it can run at every start (the compose file's init service does)::

    OUT/ca.crt, OUT/ca.key            the CA (10 years); ca.key never leaves this folder
    OUT/server.crt, OUT/server.key    the broker's certificate, with every --name as a SAN
    OUT/clients/<name>.crt, .key      with --client: a client certificate per name (optional)

The server certificate is issued again (by the same CA, so clients keep trusting it) when a
``--name`` it lacks is asked for, when it expires within 30 days, or when it was not signed by
this CA; otherwise it is kept. Keys are EC P-256, files mode 0600. docs/deployment.md, "TLS".
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825  # what browsers and most TLS stacks accept at most for a leaf certificate
RENEW_BEFORE = datetime.timedelta(days=30)
_DNS = re.compile(r"^(?=.{1,253}$)(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                  r"[A-Za-z0-9])?)*$")
_CLIENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def parse_names(values: Iterable[str]) -> list[str]:
    """Host names and addresses from ``values`` (each may hold several, comma- or space-separated)."""
    names: list[str] = []
    for value in values:
        for name in re.split(r"[,\s]+", value.strip()):
            if not name:
                continue
            if not _is_ip(name) and not _DNS.match(name):
                raise ValueError(f"{name!r} is neither an IP address nor a valid host name")
            if name not in names:
                names.append(name)
    return names


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _san(names: Sequence[str]) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "plantpulse"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically with mode 0600 (a reader never sees half a key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")  # noqa: TRY004 - a bad file, not a bad argument
    return key


def ensure_ca(out: Path, common_name: str = "plantpulse site CA") -> Authority:
    """The CA in ``out`` (ca.crt, ca.key); a new one when there is none."""
    cert_path, key_path = out / "ca.crt", out / "ca.key"
    if cert_path.exists() and key_path.exists():
        return Authority(x509.load_pem_x509_certificate(cert_path.read_bytes()), _load_key(key_path))
    if cert_path.exists() or key_path.exists():
        raise ValueError(f"{out}: one of ca.crt and ca.key is missing; restore it, or delete both for a new CA "
                         "(then every client needs the new ca.crt)")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, _cert_pem(cert))
    return Authority(cert, key)


def _issue(ca: Authority, common_name: str, usage: x509.ObjectIdentifier, names: Sequence[str],
           days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


def san_names(cert: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def _signed_by(cert: x509.Certificate, ca: Authority) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _current(cert_path: Path, key_path: Path, ca: Authority, names: Sequence[str]) -> bool:
    """Is the certificate there, by this CA, for at least ``names``, and valid for 30 more days?"""
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return (_signed_by(cert, ca) and set(names) <= san_names(cert)
            and cert.not_valid_after_utc - RENEW_BEFORE > _now())


def ensure_server(out: Path, ca: Authority, names: Sequence[str], days: int = LEAF_DAYS) -> bool:
    """server.crt/server.key for ``names`` (kept names of a current certificate stay); True when issued."""
    if not names:
        raise ValueError("the server certificate needs at least one --name (host name or IP the clients connect to)")
    cert_path, key_path = out / "server.crt", out / "server.key"
    if _current(cert_path, key_path, ca, names):
        return False
    wanted = list(names)
    if cert_path.exists():  # keep the names clients already use: a new LAN name must not drop an old one
        wanted += sorted(san_names(x509.load_pem_x509_certificate(cert_path.read_bytes())) - set(names))
    cert, key = _issue(ca, names[0], ExtendedKeyUsageOID.SERVER_AUTH, wanted, days)
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, _cert_pem(cert))
    return True


def ensure_client(out: Path, ca: Authority, name: str, days: int = LEAF_DAYS) -> bool:
    """clients/<name>.crt/.key (CN = name, e.g. a gateway's MQTT user); True when issued."""
    if not _CLIENT.match(name):
        raise ValueError(f"client name {name!r}: letters, digits, '_', '.', '@', '-' only")
    cert_path, key_path = out / "clients" / f"{name}.crt", out / "clients" / f"{name}.key"
    if _current(cert_path, key_path, ca, []):
        return False
    cert, key = _issue(ca, name, ExtendedKeyUsageOID.CLIENT_AUTH, [], days)
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, _cert_pem(cert))
    return True


def provision_tls(out: Path, names: Sequence[str], clients: Sequence[str] = (), *,
                  days: int = LEAF_DAYS) -> list[str]:
    """CA, server certificate and client certificates in ``out``; returns what was issued now."""
    out.mkdir(parents=True, exist_ok=True)
    ca = ensure_ca(out)
    issued = ["server"] if ensure_server(out, ca, names, days) else []
    issued += [f"client {c}" for c in clients if ensure_client(out, ca, c, days)]
    return issued


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m plantpulse.tls",
        description="Make (or keep) a site CA, the MQTT broker's server certificate and optional client "
                    "certificates in OUT. Run it again to add names: the CA and valid certificates are kept.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (keep it out of version control)")
    p.add_argument("--name", action="append", default=[], metavar="HOST_OR_IP",
                   help="a host name or IP address clients use to reach the broker (repeat, or comma-separate); "
                        "the first is the certificate's common name. e.g. --name mosquitto --name 192.168.10.5")
    p.add_argument("--client", action="append", default=[], metavar="NAME",
                   help="also issue a client certificate for NAME (repeat), e.g. edge-1@suzhou-1")
    p.add_argument("--days", type=int, default=LEAF_DAYS,
                   help="validity of new leaf certificates in days (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        names = parse_names(args.name)
        issued = provision_tls(args.out, names, args.client, days=args.days)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: CA and server certificate for {', '.join(names)}"
          + (f"; issued now: {', '.join(issued)}" if issued else "; nothing new to issue"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
