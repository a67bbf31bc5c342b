"""``make demo`` (``python -m plantpulse.demo``): the whole path on one machine.

It only orchestrates: a private mosquitto, the demo plant (simulators), one edge gateway per
protocol and central each run as their own process with their own config file (generated into
``var/demo/`` from ``simulators/plants/demo.yaml`` and ``examples/demo-*.yaml`` by
``plantpulse.demo_config``, with the ports it picks). Every line they
print goes to the terminal and to ``var/demo/demo.log`` with a prefix per process. Ctrl-C stops
every process it started, in reverse order, and waits for each.

Secure by default, as a plant should run it: the broker refuses anonymous clients and applies the
per-gateway ACL, each process logs in with its own password, and central signs its commands, all
generated at start by ``plantpulse.broker_auth`` into ``var/demo/auth`` (git-ignored). Central's
reads need a key as well (``api.open_reads: false``): the demo prints the page's URL with a fresh
read key (``/?key=...``) beside the write key. ``--open`` is the explicit choice of an anonymous
broker and unsigned commands.

``--lan`` makes the page reachable from a phone on the same network: central listens on every
interface and the demo prints the URL with this machine's LAN address (the interface of its
default route, or the address given: ``--lan 192.168.1.23``).

Work orders (issue 14): once central serves, the demo posts a small plan through central's API
(``plantpulse.demo_plan``: a few orders of 2-4 operations; ``plantpulse.demo_planner`` posts them, as a
planner would) and keeps about
``OPEN_TARGET`` orders open by releasing one more when one finishes; the simulated operator
(``python -m simulators operator``, one more process) loads each operation's job on its machine
(those machines get ``auto_jobs: false`` in the plant file the demo writes), so the orders page, the
Gantt, the machine pages and the scan page show live data. A third key, a ``report`` key, is printed in the
scan page's URL. ``--free-ports`` runs every server on a free port (beside another demo, or in a
test); the banner says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
import unicodedata
from pathlib import Path
from typing import IO, Any

from plantpulse import demo_plan
from plantpulse.broker_auth import CENTRAL_USER
from plantpulse.demo_config import (
    API_PORT,
    BROKER_PORT,
    CONTROL_PORT,
    PLANT,
    REPO,
    DemoError,
    Ports,
    lan_address,
    mosquitto_binary,
    port_free,
    write_configs,
)
from plantpulse.demo_planner import PlanRefusedError, planner, seed_orders
from plantpulse.tasks import cancel_all

# the set-up's names are re-exported: the demo's tests and callers use them as ``demo.<name>``
__all__ = ["API_PORT", "BROKER_PORT", "CONTROL_PORT", "PLANT", "REPO", "VAR", "Demo", "DemoError", "Ports", "banner",
           "lan_address", "main", "pages", "run"]

VAR = REPO / "var" / "demo"
COLOURS = {"mosquitto": 90, "sim": 36, "edge-modbus": 33, "edge-opcua": 35, "central": 32, "operator": 34,
           "planner": 94}


class Demo:
    def __init__(self, log: IO[str]) -> None:
        self.log = log
        self.procs: list[tuple[str, asyncio.subprocess.Process]] = []
        self.pumps: list[asyncio.Task[None]] = []
        self.colour = sys.stdout.isatty()

    def say(self, name: str, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.log.write(f"{stamp} [{name}] {line}\n")
        self.log.flush()
        prefix = f"[{name}]"
        if self.colour:
            prefix = f"\033[{COLOURS.get(name, 0)}m{prefix}\033[0m"
        print(f"{prefix} {line}", flush=True)

    async def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, start_new_session=True,
        )
        self.procs.append((name, proc))
        self.pumps.append(asyncio.create_task(self._pump(name, proc), name=f"log-{name}"))

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self.say(name, line.decode(errors="replace").rstrip())
        code = await proc.wait()
        self.say("demo", f"{name} exited with code {code}")

    async def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.returncode is None:
                self.say("demo", f"stopping {name}")
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    self.say("demo", f"{name} did not stop in 15 s: killing it")
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        for pump in self.pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(pump, 2)

    def died(self) -> str | None:
        return next((name for name, proc in self.procs if proc.returncode is not None), None)


async def _wait_file(demo: Demo, path: Path, what: str, seconds: float = 90.0) -> dict[str, Any]:
    """The ready file a process writes once it serves (its readiness, not a guess)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):  # noqa: ASYNC240 - a stat per 0.1 s, nothing to offload
        if (dead := demo.died()) is not None:
            raise DemoError(f"{dead} stopped while waiting for {what}: see the lines above")
        if time.monotonic() > deadline:
            raise DemoError(f"{what} not ready after {seconds:.0f} s: see the lines above")
        await asyncio.sleep(0.1)
    data: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text))
    return data


def pages(url: str, *, read_key: str, report_key: str | None) -> list[tuple[str, str]]:
    """The pages worth opening, with the key each needs in its address (docs/pages.md)."""
    cards = ",".join(demo_plan.order_id(n) for n in range(1, demo_plan.SEED_ORDERS + 1))
    return [
        ("live status page 实时状态页面", f"{url}/?key={read_key}"),
        ("orders 工单进度", f"{url}/orders?key={read_key}"),
        ("schedule (Gantt) 排产甘特图", f"{url}/schedule?key={read_key}"),
        ("a machine 设备详情 (OEE)", f"{url}/machines/cnc-01?key={read_key}"),
        *([("scan to report 扫码报工", f"{url}/scan?key={report_key}")] if report_key else []),
        ("job cards 工序卡 (QR)", f"{url}/cards?orders={cards}&key={read_key}"),
    ]


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (a CJK character takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, width - columns)


def banner(url: str, *, write_key: str, read_key: str, open_mode: bool, lan_url: str | None,
           report_key: str | None = None, control_url: str = f"http://127.0.0.1:{CONTROL_PORT}",
           broker_port: int = BROKER_PORT) -> list[str]:
    """What the demo prints once everything runs: where to look, with which keys."""
    return [
        "", "plantpulse demo is running.  演示已启动。",
        *(f"  {_pad(name, 31)}{address}" for name, address in pages(url, read_key=read_key, report_key=report_key)),
        *([f"  on a phone 手机 (same LAN)      {lan_url}/?key={read_key}"] if lan_url else []),
        *([f"  scan on a phone 手机扫码报工     {lan_url}/scan?key={report_key}"] if lan_url and report_key else []),
        f"  API                            {url}/api/v1/orders?key={read_key}   (docs: {url}/docs)",
        f"  simulated plant control        {control_url}/api/machines",
        f"  {_pad('work orders 工单', 31)}a demo plan of {demo_plan.SEED_ORDERS} orders; a new one whenever "
        f"fewer than {demo_plan.OPEN_TARGET} are open",
        f"  {_pad('simulated operator 模拟操作工', 31)}loads each operation's job on "
        + ", ".join(sorted(demo_plan.OPERATED)),
        f"  MQTT broker                    127.0.0.1:{broker_port}  " + (
            "OPEN: anonymous clients, unsigned commands (--open)" if open_mode else
            "passwords + per-gateway ACL, signed commands"),
        *([] if open_mode else [
            f"  MQTT logins, ACL, keys         {VAR / 'auth'}",
            f"  watch the traffic              mosquitto_sub -p {broker_port} -u {CENTRAL_USER} "
            f"-P \"$(cat {VAR / 'auth/central/mqtt.pw'})\" -t 'plantpulse/v1/#' -v",
        ]),
        f"  {_pad('read key 读取密钥 (pages, API)', 31)}{read_key}",
        *([f"  {_pad('report key 报工密钥 (scan)', 31)}{report_key}"] if report_key else []),
        f"  {_pad('write key 写入密钥 (acknowledge, plan)', 31)}{write_key}",
        f"  break a machine 注入故障:  curl -X POST {control_url}/api/machines/cnc-01/fault "
        "-H 'content-type: application/json' -d '{\"code\": 101}'",
        f"  logs 日志: {VAR / 'demo.log'}      Ctrl-C stops everything 按 Ctrl-C 停止", "",
    ]


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.chmod(0o600)
    tmp.replace(path)


async def run(stop: asyncio.Event, *, open_mode: bool = False, lan: str | None = None,
              free_ports: bool | Ports = False) -> int:
    """Run the demo until ``stop``; ``lan``: the LAN address to print (central then listens on all).

    Once everything runs, ``var/demo/demo.json`` (owner-only) says the URLs and keys.
    """
    api_host = "0.0.0.0" if lan else "127.0.0.1"  # noqa: S104 - only with --lan
    ports = free_ports if isinstance(free_ports, Ports) else Ports.free() if free_ports else Ports()
    for port, what, host in ((ports.broker, "the demo's MQTT broker", "127.0.0.1"),
                             (ports.api, "central's page and API", api_host),
                             (ports.control, "the simulators' control API", "127.0.0.1")):
        if not port_free(port, host):
            raise DemoError(f"port {port} ({what}) is in use: stop the program using it (another demo?) and retry, "
                            "or run with --free-ports")
    shutil.rmtree(VAR, ignore_errors=True)  # every demo starts from a clean plant and empty stores
    VAR.mkdir(parents=True)
    key = secrets.token_urlsafe(16)
    read_key = secrets.token_urlsafe(16)
    report_key = secrets.token_urlsafe(16)
    files = write_configs(VAR, open_mode, lan=lan is not None, ports=ports)
    py = sys.executable
    with (VAR / "demo.log").open("w", encoding="utf-8") as log:
        demo = Demo(log)
        tasks: list[asyncio.Task[None]] = []
        try:
            await demo.start("mosquitto", [mosquitto_binary(), "-c", str(files["mosquitto"])])
            await demo.start("sim", [py, "-m", "simulators", "--plant", str(files["plant"]),
                                     "--state-dir", str(VAR / "simulators"), "--ready-file", str(VAR / "sim.json")])
            sim = await _wait_file(demo, VAR / "sim.json", "the simulated plant")
            for proto in ("modbus", "opcua"):
                await demo.start(f"edge-{proto}", [py, "-m", "edge", "run", "--config", str(files[f"edge-{proto}"])])
            await demo.start("central", [py, "-m", "central", "run", "--config", str(files["central"]),
                                         "--ready-file", str(VAR / "central.json")],
                             env={"PLANTPULSE_DEMO_KEY": key, "PLANTPULSE_DEMO_READ_KEY": read_key,
                                  "PLANTPULSE_DEMO_REPORT_KEY": report_key})
            central = await _wait_file(demo, VAR / "central.json", "central")
            url = central["url"]
            try:
                await seed_orders(demo.say, url, key, time.time())
            except PlanRefusedError as exc:
                raise DemoError(str(exc)) from None
            tasks.append(asyncio.create_task(planner(demo.say, url, key, demo_plan.SEED_ORDERS + 1), name="planner"))
            await demo.start("operator", [py, "-m", "simulators", "operator", "--central", url,
                                          "--control", sim["control_url"],
                                          "--machines", ",".join(sorted(demo_plan.OPERATED))],
                             env={"PLANTPULSE_KEY": read_key})
            lan_url = f"http://{lan}:{url.rsplit(':', 1)[1]}" if lan else None
            for line in banner(url, write_key=key, read_key=read_key, open_mode=open_mode, lan_url=lan_url,
                               report_key=report_key, control_url=sim["control_url"], broker_port=ports.broker):
                demo.say("demo", line)
            _write_private(VAR / "demo.json", {
                "url": url, "control_url": sim["control_url"], "broker_port": ports.broker, "read_key": read_key,
                "write_key": key, "report_key": report_key,
                "pages": dict(pages(url, read_key=read_key, report_key=report_key))})
            while not stop.is_set():
                if (dead := demo.died()) is not None:
                    raise DemoError(f"{dead} stopped unexpectedly: see the lines above; stopping the demo")
                if (failed := next((t for t in tasks if t.done()), None)) is not None:
                    raise DemoError(f"the demo's {failed.get_name()} stopped: {failed.exception()!r}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            return 0
        finally:
            await cancel_all(tasks)
            await demo.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plantpulse.demo", description="run the plantpulse demo")
    parser.add_argument("--open", action="store_true",
                        help="an anonymous broker and unsigned commands (to poke at the traffic; never on a plant LAN)")
    parser.add_argument("--lan", nargs="?", const="auto", metavar="ADDRESS",
                        help="let phones on the same LAN open the page: central listens on every interface and the "
                             "demo prints the URL with this LAN address (default: the default route's)")
    parser.add_argument("--free-ports", action="store_true",
                        help="run every server on a free port (beside another demo, or when 8080/8081 are taken); "
                             "the banner prints the URLs")
    args = parser.parse_args(argv)

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            lan = (lan_address() if args.lan == "auto" else args.lan) if args.lan else None
            return await run(stop, open_mode=args.open, lan=lan, free_ports=args.free_ports)
        except DemoError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1

    code = asyncio.run(go())
    print("demo stopped. 演示已停止。")
    return code


if __name__ == "__main__":
    sys.exit(main())
