"""``python -m simulators``: run a simulated plant of Modbus and OPC UA PLCs with a control API."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from plantpulse.configfile import ConfigError
from simulators.config import PlantConfig, load_plant, with_manual_jobs
from simulators.control import create_app
from simulators.plant import Plant

log = logging.getLogger("simulators")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators",
        description="Run a simulated plant: real Modbus TCP and OPC UA servers with a control API.",
    )
    p.add_argument("--plant", required=True, type=Path, help="plant file (YAML), e.g. simulators/plants/demo.yaml")
    p.add_argument("--control-port", type=int, help="HTTP control API port (overrides the plant file; 0 = free)")
    p.add_argument("--speed", type=float, help="time factor (overrides the plant file)")
    p.add_argument("--host", help="address the PLC endpoints and the control API listen on (overrides the file)")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path("var/simulators"),
        help="ground truth and certificates (default: %(default)s)",
    )
    p.add_argument("--manual-jobs", metavar="IDS",
                   help="comma-separated machine ids that wait idle after each job for POST /api/machines/{id}/job "
                        "(auto_jobs: false), e.g. the machines the simulated operator drives")
    p.add_argument("--ready-file", type=Path, help="write the control URL and endpoints here (JSON) once serving")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        cfg = load_plant(args.plant)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.manual_jobs:
        try:
            cfg = with_manual_jobs(cfg, [m.strip() for m in args.manual_jobs.split(",") if m.strip()])
        except ValueError as exc:
            print(f"error: --manual-jobs: {exc}", file=sys.stderr)
            return 2
    if args.speed is not None:
        if args.speed <= 0:
            print("error: --speed must be greater than 0", file=sys.stderr)
            return 2
        cfg = cfg.model_copy(update={"speed": args.speed})
    if args.host is not None:
        cfg = cfg.model_copy(update={"host": args.host})
    if args.control_port is not None:
        cfg = cfg.model_copy(update={"control_port": args.control_port})
    try:
        return asyncio.run(serve(cfg, args.state_dir, args.ready_file))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def _control_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # small answers wait for delayed ACKs (about 40 ms per request on keep-alive connections)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"control API: cannot listen on {host}:{port} ({exc.strerror}; port already in use?)") from None
    return sock


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, telling us once it accepts requests (so the ready file is never early)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._on_started()


async def serve(cfg: PlantConfig, state_dir: Path, ready_file: Path | None) -> int:
    sock = _control_socket(cfg.host, cfg.control_port)
    plant = Plant(cfg, state_dir)
    try:
        await plant.start()
    except BaseException:
        sock.close()
        raise
    control_url = f"http://{cfg.host}:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        create_app(plant), log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )

    def announce() -> None:
        machines = [plant.describe(mid) for mid in plant.models]
        print(f"plantpulse simulators: plant '{cfg.name}', {len(machines)} machines, speed x{cfg.speed:g}")
        for m in machines:
            print(f"  {m['id']:<12} {m['protocol']:<7} {m['endpoint']}")
        print(f"  control API   {control_url}/api/machines   (docs: {control_url}/docs)", flush=True)
        if ready_file is not None:
            ready = {"control_url": control_url, "machines": machines}
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(ready))
            tmp.replace(ready_file)

    server = _AnnouncingServer(config, announce)
    try:
        await server.serve(sockets=[sock])
    finally:
        await plant.stop()
        sock.close()
    return 0
