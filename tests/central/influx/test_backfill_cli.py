"""``central backfill`` as a command: a store's window into a real VictoriaMetrics, with its progress shown
as a bar on a terminal and as plain lines in a log."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import yaml

from central.progress.counts import CountRecord
from central.progress.timeline import StateInterval
from central.store.config import StoreConfig
from central.store.open import open_store
from central.store.records import CountRow, Transaction
from plantpulse.protocol.models import MachineState
from tests.fixtures.ids import EPOCH1
from tests.fixtures.procs import REPO
from tests.fixtures.victoria import VictoriaMetrics

T = float(int(time.time()) // 3600 * 3600 - 8 * 3600)  # VictoriaMetrics refuses samples in the future
HOURS = 6


async def _fill(path: Path) -> int:
    """Six hours of one machine: a state change and a count every 10 minutes; returns the points."""
    store = await open_store(StoreConfig(path=path), "s")
    try:
        tx = Transaction()
        for i in range(HOURS * 6):
            at = T + i * 600
            state = MachineState.RUNNING if i % 2 == 0 else MachineState.IDLE
            tx.intervals.append(StateInterval("m1", state, at, at + 600, None, "J1", None, False))
            tx.counts.append(CountRow("gw1", EPOCH1, i + 1, CountRecord("m1", at, at + 600, 5, 1, "J1")))
        await store.commit(tx)
    finally:
        await store.close()
    return 2 * HOURS * 6


def _config(tmp_path: Path, victoria: VictoriaMetrics) -> Path:
    cfg = {"site": "s", "store": {"path": str(tmp_path / "central.sqlite")},
           "influx": {"url": victoria.url, "org": "plant", "bucket": "plantpulse", "batch_size": 10,
                      "retry_buffer": 100}}
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _backfill(config: Path, **io: object) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "central", "backfill", "--config", str(config),
            "--start", str(int(T)), "--end", str(int(T + HOURS * 3600 + 1))]
    return subprocess.run(argv, cwd=REPO, timeout=120, check=False, **io)  # type: ignore[call-overload,no-any-return]


def test_backfill_logs_plain_progress_lines_when_not_on_a_terminal(tmp_path: Path, victoria: VictoriaMetrics) -> None:
    points = asyncio.run(_fill(tmp_path / "central.sqlite"))
    done = _backfill(_config(tmp_path, victoria), capture_output=True)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert f"backfill: {points} points written" in done.stdout.decode()
    lines = [line for line in err.splitlines() if "plantpulse.progress" in line]
    assert lines and "\r" not in err
    assert lines[-1].endswith(f"backfill: 100.0%, {points:,} points written, " + lines[-1].split(", ")[-1])
    written = sum(len(s["values"]) for s in victoria.export() if s["metric"]["__name__"] == "machine_count_good")
    assert written == HOURS * 6


def test_backfill_draws_a_bar_on_a_terminal(tmp_path: Path, victoria: VictoriaMetrics) -> None:
    asyncio.run(_fill(tmp_path / "central.sqlite"))
    main, child = pty.openpty()
    try:
        done = _backfill(_config(tmp_path, victoria), stdout=subprocess.DEVNULL, stderr=child)
        os.close(child)
        child = -1
        out = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the terminal's other end is closed and everything was read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)
    text = out.decode()
    assert done.returncode == 0, text
    assert "\r[" in text and "] backfill: 100.0%" in text and "#" * 28 in text
