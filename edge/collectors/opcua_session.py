"""Opening and closing one OPC UA session for a collector (asyncua), and reading values through it.

Every connect starts from a fresh ``asyncua.Client``: security is set up again (``set_security``
already talks to the server, so it belongs inside the retry loop), the password is read again
(it may have been rotated), and namespace URIs are resolved to indexes again (a restarted
server may number them differently). Reusing a client after a server restart is the classic
way OPC UA gateways end up stuck on ``BadSessionIdInvalid`` until someone restarts them.

The client's own watchdog probes the server every ``keepalive_interval`` (asyncua's
``watchdog_intervall``); with ``auto_reconnect`` off it reports a dead session through
``connection_lost_callback``, and the collector reconnects itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.ua.attribute_ids import AttributeIds
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.collectors.base import Value
from edge.collectors.machine_config import COUNTER_TAGS, TAG_NAMES
from edge.collectors.opcua_config import OpcuaMachine
from edge.collectors.opcua_values import split_node_id

# StatusCode info bits: InfoType "DataValue" (0x400) with the Overflow bit (0x80) set means the
# server's queue for that item overflowed and the oldest value was dropped.
OVERFLOW_BITS = 0x480


class SessionLostError(Exception):
    """The session (or its subscription) is gone; the collector reconnects."""


class NamespaceMissingError(Exception):
    """A configured namespace URI is not on the server."""


@dataclass(frozen=True)
class Item:
    """One monitored or polled value: which machine and tag, and its node on this connection."""

    machine_id: str
    tag: str
    node: ua.NodeId
    configured: str
    bits: int | None  # counters: the width at which the PLC's counter wraps


def new_client(cfg: OpcuaMachine) -> Client:
    client = Client(cfg.endpoint, timeout=cfg.timeout, watchdog_intervall=cfg.keepalive_interval)
    client.application_uri = cfg.application_uri
    # The server forgets an abandoned session after this; ours are re-created on every connect.
    client.session_timeout = int(max(30.0, 10 * cfg.keepalive_interval) * 1000)
    return client


async def connect(client: Client, cfg: OpcuaMachine) -> None:
    """Security, login and session; raises on any failure (the caller retries with backoff)."""
    if cfg.security != "None":
        assert cfg.certificate is not None and cfg.private_key is not None
        await ensure_certificate(cfg)
        policy = getattr(security_policies, f"SecurityPolicy{cfg.policy}")
        await client.set_security(
            policy,
            certificate=str(cfg.certificate),
            private_key=str(cfg.private_key),
            server_certificate=str(cfg.server_certificate) if cfg.server_certificate else None,
            mode=getattr(ua.MessageSecurityMode, cfg.security),
        )
    if cfg.username:
        client.set_user(cfg.username)
        client.set_password(cfg.password() or "")
    await client.connect()


async def ensure_certificate(cfg: OpcuaMachine) -> None:
    """Create a self-signed client certificate for ``application_uri`` if there is none (or it expired).

    Several sessions (or gateways) may share one key pair: an exclusive lock on a file beside the
    key makes sure only one of them writes it, so nobody loads a key with another's certificate.
    """
    assert cfg.certificate is not None and cfg.private_key is not None
    cfg.certificate.parent.mkdir(parents=True, exist_ok=True)
    cfg.private_key.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.private_key.with_name(cfg.private_key.name + ".lock"), "w") as lock:  # noqa: ASYNC230 - tiny
        await asyncio.to_thread(fcntl.flock, lock.fileno(), fcntl.LOCK_EX)
        await setup_self_signed_certificate(
            cfg.private_key,
            cfg.certificate,
            cfg.application_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"organizationName": "plantpulse", "commonName": f"plantpulse edge {cfg.application_uri}"},
        )


async def close(client: Client, wait: float, *, lost: bool) -> None:
    """Close politely when the server still listens (at most ``wait`` s), at once when it is gone; never raises.

    The socket is closed here whatever state asyncua is left in: its ``disconnect_socket`` does
    nothing while a cancelled close is "disconnecting", or after a connect cancelled between the
    TCP connect and its return, and each such reconnect leaked a socket (found as ResourceWarnings
    in the tests; a gateway reconnecting for weeks would run out of file descriptors).
    """
    protocol = getattr(client.uaclient, "protocol", None)  # the socket of this session, if one was opened
    with contextlib.suppress(Exception):
        async with asyncio.timeout(wait):
            if lost:
                await client.close_session()  # stops asyncua's background tasks; the request itself fails
            else:
                await client.disconnect()
    with contextlib.suppress(Exception):
        client.disconnect_socket()
    transport = getattr(protocol, "transport", None) or getattr(getattr(client.uaclient, "protocol", None),
                                                                "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()


async def resolve(client: Client, machines: Sequence[OpcuaMachine]) -> list[Item]:
    """Every configured tag as a node id of this session (namespace URIs looked up now)."""
    namespaces: list[str] = list(await client.get_namespace_array())
    items: list[Item] = []
    for m in machines:
        for name in TAG_NAMES:
            tag = getattr(m.tags, name)
            if tag is None:
                continue
            ns, rest = split_node_id(tag.node, m.namespace_uri)
            if isinstance(ns, str):
                if ns not in namespaces:
                    raise NamespaceMissingError(
                        f"namespace {ns} (machine {m.id}) is not on the server; it has: {', '.join(namespaces)}"
                    )
                ns = namespaces.index(ns)
            bits = m.counter_bits(name) if name in COUNTER_TAGS else None
            items.append(Item(m.id, name, ua.NodeId.from_string(f"ns={ns};{rest}"), tag.node, bits))
    return items


async def read(client: Client, items: Sequence[Item]) -> list[ua.DataValue]:
    """One Read request for all the items (a server answers a status per item)."""
    result: list[ua.DataValue] = await client.uaclient.read_attributes(
        [item.node for item in items], AttributeIds.Value
    )
    return result


def decode(item: Item, dv: ua.DataValue) -> tuple[Value | None, str | None]:
    """(value, None) for a usable value, (None, reason) for a Bad status."""
    status = dv.StatusCode
    if status is not None and status.is_bad():
        return None, f"{item.tag} ({item.configured}): {status.name}"
    value = dv.Value.Value if dv.Value is not None else None
    if value is None:
        return None, f"{item.tag} ({item.configured}): no value"
    if item.bits is not None and isinstance(value, int | float) and not isinstance(value, bool):
        value = int(value) % (1 << item.bits)
    if not isinstance(value, int | float | str | bool):
        value = str(value)
    return value, None


def overflowed(dv: ua.DataValue) -> bool:
    return dv.StatusCode is not None and (dv.StatusCode.value & OVERFLOW_BITS) == OVERFLOW_BITS
