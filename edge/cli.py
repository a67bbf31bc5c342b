"""``python -m edge``: the edge gateway's command line.

``check`` validates the configuration, reads every tag once and prints a table (exit 0 when
every tag was read, 1 when some failed); ``run`` runs the gateway. A configuration problem is
printed as the field-by-field message of ``ConfigError`` with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
import sys
from pathlib import Path

from edge.buffer.errors import OutboxError
from edge.check import check, format_table
from edge.config import EdgeConfig, load_edge_config
from edge.gateway import Gateway
from plantpulse.configfile import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description="plantpulse edge gateway")
    parser.add_argument("command", choices=["check", "run"], help="check a config against the PLCs, or run")
    parser.add_argument("--config", required=True, help="gateway configuration file (YAML)")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default: %(default)s)")
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # pymodbus logs every failed request and asyncua every broken publish during an outage; the
    # collectors log once when a machine goes away and once when it comes back instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = load_edge_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        return _check(cfg)
    return _run(cfg, Path(args.config))


def _run(cfg: EdgeConfig, path: Path) -> int:
    """Collect and forward until SIGTERM/SIGINT, then flush and exit 0 (systemd-friendly)."""
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a service says when it starts, reconnects, stops
    config_hash = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(cfg, config_hash=config_hash).run(stop)

    try:
        asyncio.run(go())
    except OutboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _check(cfg: EdgeConfig) -> int:
    try:
        rows = asyncio.run(check(cfg))
    except KeyboardInterrupt:
        return 130
    print(format_table(rows))
    return 1 if any(r.error for r in rows) else 0
