"""The demo's setting up (``python -m plantpulse.demo``): its ports, and its processes' config files.

``plantpulse.demo`` orchestrates the processes; what they are configured with is decided here,
apart from running them: the fixed ports of the README's URLs or free ones (``--free-ports``), this
machine's LAN address (``--lan``), the mosquitto binary, and the config files generated from
``simulators/plants/demo.yaml`` and ``examples/demo-*.yaml`` into the demo's directory, with the
broker's passwords, ACL and command keys unless the demo runs open (docs/protocol.md,
"Broker security").
"""

from __future__ import annotations

import getpass
import re
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plantpulse import demo_plan
from plantpulse.broker_auth import CENTRAL_USER, gateway_user, provision

REPO = Path(__file__).resolve().parents[1]
BROKER_PORT = 18830  # a private broker: the machine's own mosquitto on 1883 stays untouched
API_PORT = 8080
CONTROL_PORT = 8081
PLANT = REPO / "simulators/plants/demo.yaml"


@dataclass(frozen=True)
class Ports:
    """The demo's TCP ports: fixed ones by default (the URLs in the README), free ones with --free-ports."""

    broker: int = BROKER_PORT
    api: int = API_PORT
    control: int = CONTROL_PORT
    plcs: Mapping[int, int] = field(default_factory=dict)  # the plant file's PLC port -> the one used

    @classmethod
    def free(cls, pick: Callable[[], int] | None = None) -> Ports:
        """Ports free now; ``pick`` chooses each one (tests hand out ports that no other test is given)."""
        pick = pick or _free_port
        plcs = {int(p): pick() for p in sorted(set(re.findall(r"\bport: (\d+)", PLANT.read_text())))}
        return cls(pick(), pick(), pick(), plcs)

    def plc(self, port: int) -> int:
        return self.plcs.get(port, port)


class DemoError(Exception):
    """The demo cannot start; the message says what to do."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def lan_address() -> str:
    """This machine's address on its LAN: the source address of its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect only chooses the route
            address: str = sock.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127.") or address == "0.0.0.0":  # noqa: S104 - compared, not bound
        raise DemoError("this machine has no LAN address (no default route): give one with --lan ADDRESS")
    return address


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise DemoError("mosquitto is not installed: run `make demo` (it installs it) or `sudo apt-get install mosquitto`")


def write_configs(var: Path, open_mode: bool = False, *, lan: bool = False,
                  ports: Ports | None = None) -> dict[str, Path]:
    """The demo's config files in ``var`` (var/demo), generated from the examples with the private broker.

    Unless ``open_mode``: passwords, the per-gateway ACL and command keys in ``var/auth``, and
    every service configured to use its own (docs/protocol.md, "Broker security"). With ``lan``,
    central's page and API listen on every interface (reads and writes still need their keys).
    ``ports``: other ports than the fixed ones. The plant file goes to ``var`` as well, with
    ``auto_jobs: false`` on the machines the simulated operator drives (``demo_plan.OPERATED``).
    """
    ports = ports or Ports()
    files: dict[str, Path] = {}
    auth = var / "auth"
    edges: dict[str, dict[str, Any]] = {
        proto: yaml.safe_load((REPO / f"examples/demo-{proto}.yaml").read_text()) for proto in ("modbus", "opcua")
    }
    if not open_mode:
        for site in sorted({cfg["site"] for cfg in edges.values()}):
            provision(auth, site, [cfg["edge_id"] for cfg in edges.values() if cfg["site"] == site], sign=True)
    (var / "mosquitto").mkdir(parents=True, exist_ok=True)
    conf = var / "mosquitto.conf"
    access = ["allow_anonymous true"] if open_mode else [
        "allow_anonymous false", f"password_file {auth / 'mosquitto/passwd'}", f"acl_file {auth / 'mosquitto/acl'}"]
    conf.write_text(
        "\n".join([
            f"listener {ports.broker} 127.0.0.1", *access, "persistence true",
            # started as root, mosquitto would switch to its own user and could not read var/demo
            f"user {getpass.getuser()}",
            f"persistence_location {var / 'mosquitto'}/", "max_queued_messages 100000", "set_tcp_nodelay true",
            "log_type error", "log_type warning", "log_type notice", "log_dest stderr",
        ]) + "\n"
    )
    files["mosquitto"] = conf
    # the demo plant as shipped, except that the machines of the demo's plan wait for the simulated operator
    # to load each job (docker compose's demo profile does the same with the simulators' --manual-jobs)
    plant = yaml.safe_load(PLANT.read_text())
    plant["control_port"] = ports.control
    for machine in plant["machines"]:
        machine["port"] = ports.plc(int(machine["port"]))
        if machine["id"] in demo_plan.OPERATED:
            machine["auto_jobs"] = False
    files["plant"] = var / "plant.yaml"
    files["plant"].write_text(yaml.safe_dump(plant, sort_keys=False, allow_unicode=True))
    for proto, cfg in edges.items():
        cfg["mqtt"] = {"host": "127.0.0.1", "port": ports.broker}
        for machine in cfg["machines"]:
            if "port" in machine:
                machine["port"] = ports.plc(int(machine["port"]))
            if "endpoint" in machine:
                machine["endpoint"] = re.sub(r":(\d+)/", lambda m: f":{ports.plc(int(m.group(1)))}/",
                                             machine["endpoint"], count=1)
        if not open_mode:
            own = auth / "edge" / cfg["site"] / cfg["edge_id"]
            cfg["mqtt"].update(username=gateway_user(cfg["site"], cfg["edge_id"]),
                               password_file=str(own / "mqtt.pw"))
            cfg["commands"] = {"secret_file": str(own / "command.key")}
        cfg["data_dir"] = str(var / f"edge-{proto}")
        path = var / f"edge-{proto}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
        files[f"edge-{proto}"] = path
    central: dict[str, Any] = yaml.safe_load((REPO / "examples/demo-central.yaml").read_text())
    if {cfg["site"] for cfg in edges.values()} != {central["site"]}:  # one central serves one site
        raise DemoError(f"examples/demo-central.yaml: site {central['site']!r} is not the demo gateways' site")
    central["mqtt"] = {"host": "127.0.0.1", "port": ports.broker}
    if not open_mode:
        central["mqtt"].update(username=CENTRAL_USER, password_file=str(auth / "central/mqtt.pw"))
        central["commands"] = {"keys_dir": str(auth / "central/command-keys")}
    central["store"] = {"path": str(var / "central.sqlite")}
    central["api"]["port"] = ports.api
    if lan:
        central["api"]["host"] = "0.0.0.0"  # noqa: S104 - asked for: a phone on the LAN opens the page
    path = var / "central.yaml"
    path.write_text(yaml.safe_dump(central, sort_keys=False, allow_unicode=True))
    files["central"] = path
    return files
