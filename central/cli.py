"""``python -m central``: run the central service (``run``), and its tools (``new-key``, ``backfill``, ``backup``,
``import-orders``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from central.api.app import create_app
from central.config import CentralConfig, load_central_config
from central.imports.client import import_file
from central.influx.errors import InfluxWriteError
from central.influx.feed import run_backfill
from central.progress.machines import Catalog
from central.runtime import Central, Role
from central.store.backup import BackupError, backup
from central.store.base import StoreError
from central.store.open import open_store
from plantpulse.configfile import ConfigError
from plantpulse.instants import parse_instant
from plantpulse.progress import Progress
from plantpulse.sdnotify import Notifier


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m central", description="plantpulse central service")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="ingest events and serve the API and pages")
    run.add_argument("--config", required=True, type=Path, help="central configuration file (YAML)")
    run.add_argument("--ready-file", type=Path, help="write {\"url\": ...} here (JSON) once the API serves")
    run.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    for name, text in (("ingest", "an ingest worker: applies the gateways it holds the lease of (PostgreSQL)"),
                       ("api", "an API replica: serves the API and pages from the PostgreSQL store")):
        role = sub.add_parser(name, help=text)
        role.add_argument("--config", required=True, type=Path, help="central configuration file (YAML)")
        role.add_argument("--ready-file", type=Path, help="write {\"url\": ...} here (JSON) once the API serves")
        role.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    sub.add_parser("new-key", help="print a new random API key and the sha256 line for the configuration")
    fill = sub.add_parser("backfill", help="rewrite a window of InfluxDB time series from the store")
    fill.add_argument("--config", required=True, type=Path, help="central configuration file (YAML)")
    fill.add_argument("--start", required=True, help="Unix seconds or ISO 8601 with time zone")
    fill.add_argument("--end", required=True, help="Unix seconds or ISO 8601 with time zone")
    fill.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    copy = sub.add_parser("backup", help="copy the SQLite store while central runs (online backup, checked)")
    copy.add_argument("--config", required=True, type=Path, help="central configuration file (YAML)")
    copy.add_argument("--to", required=True, type=Path, help="backup file, or a folder for a time-stamped name")
    copy.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    imp = sub.add_parser("import-orders", help="send a planner's spreadsheet (CSV or XLSX) to a running central")
    imp.add_argument("file", type=Path, help="the file, in the template of docs/api.md (examples/orders-import.csv)")
    imp.add_argument("--url", help="central's URL, e.g. http://127.0.0.1:8080 (default: from --config)")
    imp.add_argument("--config", type=Path, help="central configuration file, for the API's address")
    imp.add_argument("--key-env", default="PLANTPULSE_KEY",
                     help="environment variable holding a write key (default: %(default)s)")
    imp.add_argument("--dry-run", action="store_true", help="check the file and show what would change; change nothing")
    return p


def _import_orders(args: argparse.Namespace) -> int:
    url = args.url
    if url is None:
        if args.config is None:
            print("error: give --url or --config (to find central's API)", file=sys.stderr)
            return 2
        try:
            api = load_central_config(args.config).api
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        url = f"http://{'127.0.0.1' if api.host == '0.0.0.0' else api.host}:{api.port}"  # noqa: S104 - a client
    return import_file(args.file, url, os.environ.get(args.key_env) or None, dry_run=args.dry_run)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "new-key":
        key = secrets.token_urlsafe(24)
        print(f"key (give it to the user, it is not stored anywhere): {key}")
        print(f"configuration: - {{name: <who>, role: write, sha256: {hashlib.sha256(key.encode()).hexdigest()}}}")
        return 0
    if args.command == "import-orders":
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return _import_orders(args)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("paho").setLevel(logging.WARNING)
    try:
        cfg = load_central_config(args.config)
        if args.command in ("run", "ingest"):
            cfg.mqtt.password()  # a missing secret is a start-up error, not a reconnect loop
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "backup":
        if cfg.store.kind != "sqlite":
            print("error: central backup copies the SQLite store; back up PostgreSQL with pg_dump or its "
                  "continuous archiving (docs/scaling.md)", file=sys.stderr)
            return 2
        try:
            done = backup(cfg.store.path, args.to)
        except BackupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"backup: {done.path} ({done.size:,} bytes, schema version {done.schema_version}, "
              f"{done.seconds:.1f} s), checked")
        return 0
    if args.command == "backfill":
        try:
            start, end = parse_instant(args.start, "--start"), parse_instant(args.end, "--end")
            written = asyncio.run(_backfill(cfg, start, end))
        except (ValueError, InfluxWriteError, StoreError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"backfill: {written} points written")
        return 0
    try:
        return asyncio.run(serve(cfg, args.ready_file, role=args.command))
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _backfill(cfg: CentralConfig, start: float, end: float) -> int:
    if cfg.influx is None:
        raise ValueError("there is no 'influx:' section in the configuration: nothing to backfill into")
    store = await open_store(cfg.store, cfg.site)
    bar = Progress("backfill", 1)

    def show(chunks: int, steps: int, points: int) -> None:
        bar.total = steps
        bar.update(chunks, f"{points:,} points read ({'states' if 2 * chunks <= steps else 'counts'})")

    try:
        written = await run_backfill(store, cfg.influx, Catalog(cfg.plant), start, end, progress=show)
    finally:
        await store.close()
    bar.finish(f"{written:,} points written")
    return written


class _Server(uvicorn.Server):
    """uvicorn, telling us once it accepts requests (the ready file is never early)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT are ``serve``'s: uvicorn's own handling raises the signal again once the
        server has stopped, which killed central before it stopped its tasks and closed its store."""
        yield


async def _feed_watchdog(notifier: Notifier, central: Central, server: uvicorn.Server, interval: float) -> None:
    """WATCHDOG=1 once the API serves, while the event loop turns and no background task has failed."""
    while central.failed is None:
        if server.started:
            notifier.watchdog()
        await asyncio.sleep(interval)


async def serve(cfg: CentralConfig, ready_file: Path | None, notifier: Notifier | None = None,
                role: Role = "run") -> int:
    """Serve until stopped; under systemd (``Type=notify``) READY=1 once the API accepts requests."""
    notifier = Notifier() if notifier is None else notifier
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # small answers wait for delayed ACKs (about 40 ms per request on keep-alive connections)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((cfg.api.host, cfg.api.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"API: cannot listen on {cfg.api.host}:{cfg.api.port} ({exc.strerror}); "
                      "change api.port or stop the other program") from None
    host, port = sock.getsockname()[:2]
    scheme = "https" if cfg.api.tls_cert is not None else "http"
    url = f"{scheme}://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"  # noqa: S104 - display only

    def announce() -> None:
        print(f"plantpulse central: API {url}/api/v1/machines  page {url}/  docs {url}/docs", flush=True)
        notifier.ready(f"API {url}")
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            worker = central.ownership.owner if central.ownership is not None else None
            tmp.write_text(json.dumps({"url": url, **({"worker": worker} if worker else {})}))
            tmp.replace(ready_file)

    try:
        async with Central.running(cfg, role=role) as central:
            tls = cfg.api
            config = uvicorn.Config(create_app(central), log_level="warning", timeout_graceful_shutdown=2,
                                    lifespan="off", ssl_certfile=tls.tls_cert, ssl_keyfile=tls.tls_key)
            server = _Server(config, announce)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, setattr, server, "should_exit", True)
            serving = asyncio.create_task(server.serve(sockets=[sock]), name="http")
            failed = asyncio.create_task(central.wait_failed(), name="failed")
            interval = notifier.watchdog_interval()
            watchdog = (asyncio.create_task(_feed_watchdog(notifier, central, server, interval), name="watchdog")
                        if interval is not None else None)
            await asyncio.wait([serving, failed], return_when=asyncio.FIRST_COMPLETED)
            notifier.stopping()
            server.should_exit = True  # a failed task ends the server; a stopped server ends central
            failed.cancel()
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.wait([watchdog])
            await serving
    finally:
        sock.close()
    if central.failed is not None or not server.started:
        return 1
    return 0
