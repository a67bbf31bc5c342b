"""plantpulse.tls: a site CA, the broker's certificate with SANs, client certificates; checked by real handshakes."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from plantpulse.tls import ensure_ca, ensure_server, main, parse_names, provision_tls, san_names


async def _handshake(folder: Path, server_name: str, *, client: str | None = None) -> str:
    """A real TLS server with server.crt on loopback; a client that trusts only ca.crt connects to it."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(folder / "server.crt", folder / "server.key")
    if client is not None:
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.load_verify_locations(folder / "ca.crt")
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        seen.append(dict(x[0] for x in peer["subject"])["commonName"] if peer else "")
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=folder / "ca.crt")
    if client is not None:
        client_ctx.load_cert_chain(folder / "clients" / f"{client}.crt", folder / "clients" / f"{client}.key")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=server_name), 5)
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0] if seen else ""


async def test_server_certificate_answers_for_every_name(tmp_path: Path) -> None:
    issued = provision_tls(tmp_path, parse_names(["mosquitto,localhost", "127.0.0.1 broker.plant.lan"]))
    assert issued == ["server"]
    cert = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    assert san_names(cert) == {"mosquitto", "localhost", "127.0.0.1", "broker.plant.lan"}
    for name in ("mosquitto", "127.0.0.1", "broker.plant.lan"):
        await _handshake(tmp_path, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(tmp_path, "other.plant.lan")
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "server.key").stat().st_mode & 0o777 == 0o600


async def test_client_certificates_are_accepted_by_a_server_that_requires_them(tmp_path: Path) -> None:
    provision_tls(tmp_path, ["localhost"], ["edge-1@demo"])
    assert await _handshake(tmp_path, "localhost", client="edge-1@demo") == "edge-1@demo"


def test_later_runs_keep_everything_and_new_names_keep_the_ca_and_old_names(tmp_path: Path) -> None:
    provision_tls(tmp_path, ["mosquitto"], ["gw@site"])
    files = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert provision_tls(tmp_path, ["mosquitto"], ["gw@site"]) == []
    assert files == {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    assert provision_tls(tmp_path, ["192.168.10.5"]) == ["server"]  # a LAN address added later
    cert = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    assert san_names(cert) == {"mosquitto", "192.168.10.5"}
    assert (tmp_path / "ca.crt").read_bytes() == files["ca.crt"]
    cert.verify_directly_issued_by(ensure_ca(tmp_path).cert)


def test_a_certificate_close_to_expiry_is_issued_again(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    assert ensure_server(tmp_path, ca, ["mosquitto"], days=10)
    assert ensure_server(tmp_path, ca, ["mosquitto"])  # 10 days left < 30: renewed
    assert not ensure_server(tmp_path, ca, ["mosquitto"])


def test_half_a_ca_is_refused(tmp_path: Path) -> None:
    ensure_ca(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(ValueError, match=r"ca\.key"):
        ensure_ca(tmp_path)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="neither"):
        parse_names(["bad_name!"])
    assert parse_names(["a.b, a.b", "", "::1"]) == ["a.b", "::1"]


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--name", "mosquitto", "--client", "edge-1@demo"]) == 0
    assert "issued now: server, client edge-1@demo" in capsys.readouterr().out
    assert main(["--out", str(tmp_path), "--name", "mosquitto"]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert main(["--out", str(tmp_path)]) == 2
    assert "at least one --name" in capsys.readouterr().err
