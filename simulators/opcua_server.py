"""A simulated OPC UA PLC: one real asyncua server per port, one object per machine.

Node ids are stable strings in the namespace ``urn:plantpulse:simulator`` (``ns`` is looked up
by URI, never hard-coded): the machine object is ``s=<machine id>`` and its variables are
``s=<machine id>.State``, ``.GoodCount``, ``.ScrapCount``, ``.FaultCode``, ``.JobNumber``,
``.CycleTime``, ``.PowerOnCount`` and the per-job counters ``.JobGoodCount``, ``.JobScrapCount``.
The server certificate is created once in the state folder and reused, so a restarted server is
the same server to a client that trusts it.

Failure modes: ``refuse`` stops the server (connections drop, connecting is refused);
``hang`` stops it and listens on the port with a socket that accepts and never answers. When
several machines share a server, only the one machine fails: its variables turn to the status
``BadNoCommunication``, as a real OPC UA gateway shows a dead device behind it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

from asyncua import ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.config import MachineConfig, OpcuaEndpointConfig
from simulators.facts import MachineValues

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:plantpulse:simulator"
_VARIABLES = ("State", "FaultCode", "GoodCount", "ScrapCount", "JobNumber", "CycleTime", "PowerOnCount",
              "JobGoodCount", "JobScrapCount")
FailMode = Literal["refuse", "hang"]

_BAD_NO_COMMUNICATION = ua.StatusCode(ua.UInt32(ua.status_codes.StatusCodes.BadNoCommunication))
_POLICIES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}


@dataclass
class _Machine:
    cfg: MachineConfig
    nodes: dict[str, ua.NodeId]
    mode: FailMode | None = None
    last: MachineValues | None = None
    shown: dict[str, Any] | None = None


class _Users(UserManager):
    """asyncua user manager: the configured username/password pairs, anonymous if allowed."""

    def __init__(self, cfg: OpcuaEndpointConfig) -> None:
        self._cfg = cfg

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self._cfg.allow_anonymous else None
        for user in self._cfg.users:
            if user.username == username and user.password == password:
                return User(role=UserRole.User, name=username)
        return None


class OpcuaEndpoint:
    """An OPC UA server on a port, serving one or more machines; survives refuse/hang/restart."""

    protocol = "opcua"

    def __init__(self, host: str, port: int, pki_dir: Path, security: OpcuaEndpointConfig | None) -> None:
        self.host = host
        self.port = port
        self._pki = pki_dir
        self._security = security or OpcuaEndpointConfig()
        self._machines: dict[str, _Machine] = {}
        self._server: Server | None = None
        self._running = False
        self._blackhole: asyncio.Server | None = None
        self._hung: set[asyncio.StreamWriter] = set()
        self._lock = asyncio.Lock()  # start/stop/restart
        self._writing = asyncio.Lock()  # value updates

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/plantpulse/"

    def url(self, machine_id: str) -> str:
        return self.endpoint

    @property
    def shared(self) -> bool:
        return len(self._machines) > 1

    def add_machine(self, cfg: MachineConfig) -> None:
        self._machines[cfg.id] = _Machine(cfg, {})

    async def start(self) -> None:
        async with self._lock:
            await self._start()

    async def _start(self) -> None:
        if self._running:
            return
        await self._close_blackhole()
        if self._server is None:
            self._server = await self._build()
        # asyncua's clock task checks this flag and never clears it: a restarted server would
        # otherwise stop updating ServerStatus.CurrentTime, which clients watch.
        self._server.iserver._time_task_stop = False
        try:
            await self._server.start()
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port} (port already in use?)") from exc
        self._running = True
        for machine in self._machines.values():
            machine.shown = None
            if machine.mode is not None:  # a dead device behind the gateway stays dead when the gateway restarts
                await self._set_status(machine, _BAD_NO_COMMUNICATION)
            elif machine.last is not None:
                await self._write(machine, machine.last)

    async def _build(self) -> Server:
        """The server object, built once: node ids and certificate stay the same across restarts."""
        server = Server(user_manager=_Users(self._security))
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"plantpulse simulated PLC :{self.port}")
        app_uri = f"urn:plantpulse:simulator:{self.port}"
        await server.set_application_uri(app_uri)
        server.set_security_policy([_POLICIES[p] for p in self._security.security])
        tokens: list[type] = [ua.AnonymousIdentityToken] if self._security.allow_anonymous else []
        if self._security.users:
            tokens.append(ua.UserNameIdentityToken)
        server.set_identity_tokens(tokens)
        if any(p != "None" for p in self._security.security):
            key, cert = await self._certificate(app_uri)
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
        idx = await server.register_namespace(NAMESPACE_URI)
        for machine in self._machines.values():
            machine.nodes = await _add_machine(server, idx, machine.cfg)
        return server

    async def _certificate(self, app_uri: str) -> tuple[Path, Path]:
        self._pki.mkdir(parents=True, exist_ok=True)
        key = self._pki / f"opcua-{self.port}-key.pem"
        cert = self._pki / f"opcua-{self.port}-cert.der"
        await setup_self_signed_certificate(
            key,
            cert,
            app_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            {"countryName": "CN", "organizationName": "plantpulse", "commonName": f"simulator {self.port}"},
        )
        return key, cert

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()
            await self._close_blackhole()

    async def _stop(self) -> None:
        if self._running and self._server is not None:
            self._running = False
            await self._server.stop()

    async def update(self, machine_id: str, values: MachineValues) -> None:
        machine = self._machines[machine_id]
        machine.last = values
        async with self._writing:  # the plant loop and a control action may update at once
            if self._running and machine.mode is None and machine.last is not None:
                await self._write(machine, machine.last)  # the latest values, even if overtaken

    async def _write(self, machine: _Machine, values: MachineValues) -> None:
        assert self._server is not None
        shown = {
            "State": int(values.state),
            "FaultCode": values.fault_code,
            "GoodCount": values.good_counter,
            "ScrapCount": values.scrap_counter,
            "JobNumber": values.job,
            "CycleTime": values.last_cycle_time,
            "PowerOnCount": values.power_on_count,
            "JobGoodCount": values.job_good,
            "JobScrapCount": values.job_scrap,
        }
        before = machine.shown or {}
        now = ua.DateTime.now(UTC)  # one source timestamp per update: clients can order changes
        for name, value in shown.items():
            if before.get(name) != value:
                variant = ua.Variant(value, _variant_type(machine.cfg, name))
                await self._server.write_attribute_value(
                    machine.nodes[name], ua.DataValue(variant, SourceTimestamp=now, ServerTimestamp=now)
                )
        machine.shown = shown

    async def _set_status(self, machine: _Machine, status: ua.StatusCode) -> None:
        assert self._server is not None
        for _name, node in machine.nodes.items():
            await self._server.write_attribute_value(node, ua.DataValue(StatusCode=status))
        machine.shown = None

    async def set_unreachable(self, machine_id: str, mode: FailMode) -> None:
        async with self._lock:
            machine = self._machines[machine_id]
            if self.shared:
                machine.mode = mode
                if self._running:
                    await self._set_status(machine, _BAD_NO_COMMUNICATION)
                return
            await self._stop()
            if mode == "hang":
                await self._open_blackhole()
            machine.mode = mode

    async def set_reachable(self, machine_id: str) -> None:
        async with self._lock:
            machine = self._machines[machine_id]
            machine.mode = None
            if not self._running:
                await self._start()
            elif machine.last is not None:
                await self._write(machine, machine.last)

    async def restart(self, down_seconds: float) -> None:
        """The server process restarts: sessions and subscriptions are gone, node ids stay."""
        async with self._lock:
            if not self._running:  # refusing or hanging (its one machine unreachable): it stays so
                await asyncio.sleep(down_seconds)
                return
            await self._stop()
            await asyncio.sleep(down_seconds)
            await self._start()

    def status(self, machine_id: str) -> str:
        machine = self._machines[machine_id]
        if machine.mode is not None:
            return machine.mode
        return "reachable" if self._running else "refuse"

    async def _open_blackhole(self) -> None:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._hung.add(writer)
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                self._hung.discard(writer)
                writer.close()

        self._blackhole = await asyncio.start_server(swallow, self.host, self.port, reuse_address=True)

    async def _close_blackhole(self) -> None:
        blackhole, self._blackhole = self._blackhole, None
        if blackhole is None:
            return
        blackhole.close()
        for writer in list(self._hung):
            writer.close()
        await blackhole.wait_closed()


async def _add_machine(server: Server, idx: int, cfg: MachineConfig) -> dict[str, ua.NodeId]:
    obj = await server.nodes.objects.add_object(ua.NodeId.from_string(f"ns={idx};s={cfg.id}"), cfg.id)
    nodes: dict[str, ua.NodeId] = {}
    for name in _VARIABLES:
        vtype = _variant_type(cfg, name)
        initial: float = 0.0 if vtype == ua.VariantType.Double else 0
        var = await obj.add_variable(
            ua.NodeId.from_string(f"ns={idx};s={cfg.id}.{name}"), name, ua.Variant(initial, vtype)
        )
        nodes[name] = var.nodeid
    return nodes


def _variant_type(cfg: MachineConfig, name: str) -> ua.VariantType:
    if name in ("GoodCount", "ScrapCount"):
        return ua.VariantType.UInt16 if cfg.counter.bits == 16 else ua.VariantType.UInt32
    if name == "CycleTime":
        return ua.VariantType.Double
    if name in ("State", "FaultCode"):
        return ua.VariantType.UInt16
    return ua.VariantType.UInt32
