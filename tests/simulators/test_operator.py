"""The simulated operator's decisions (pure): which job to load, when, and when to wait."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from simulators.operator import (
    QueuedOp,
    SimMachine,
    Switch,
    _key,
    _parser,
    next_switch,
    predecessor_ready,
    queue_from_json,
)
from tests.fixtures.procs import REPO, free_port, python_module
from tests.fixtures.waiting import wait_until

IDLE = SimMachine("cnc-01", "idle", 0, 0)
Q = [QueuedOp("A", 10, "planned", "1001", 20, 60.0), QueuedOp("B", 10, "planned", "1002", 5, 0.0)]


def test_an_idle_machine_gets_the_first_operation_with_setup_in_plant_seconds() -> None:
    assert next_switch(IDLE, Q, handed=[], ready={}, speed=10) == Switch("cnc-01", ("A", 10), 1001, 20, 600.0)


def test_a_busy_or_unpowered_machine_gets_nothing() -> None:
    for m in (SimMachine("cnc-01", "running", 1001, 3), SimMachine("cnc-01", "setup", 1001, 20),
              SimMachine("cnc-01", "idle", 1001, 4), SimMachine("cnc-01", "idle", 0, 0, powered=False)):
        assert next_switch(m, Q, handed=[], ready={}, speed=1) is None


def test_after_a_job_the_next_operation_even_before_central_saw_the_last_part() -> None:
    finished = SimMachine("cnc-01", "idle", 1001, 0)
    running = [QueuedOp("A", 10, "running", "1001", 20, 60.0), *Q[1:]]
    assert next_switch(finished, running, handed=[("A", 10)], ready={}, speed=1) == Switch(
        "cnc-01", ("B", 10), 1002, 5, 0.0)
    # even after a restart of the operator (nothing handed): the finished job is not loaded again
    assert next_switch(finished, running, handed=[], ready={}, speed=1).key == ("B", 10)  # type: ignore[union-attr]


def test_the_operator_waits_for_the_predecessor_and_skips_what_it_cannot_key_in() -> None:
    assert next_switch(IDLE, Q, handed=[], ready={("A", 10): False}, speed=1) is None
    odd = [QueuedOp("C", 10, "planned", "X-7", 3, 0.0), QueuedOp("C", 20, "done", "7", 3, 0.0), *Q]
    assert next_switch(IDLE, odd, handed=[], ready={}, speed=1).key == ("A", 10)  # type: ignore[union-attr]


def test_predecessor_ready_by_status_or_transfer_quantity() -> None:
    order = {"operations": [{"seq": 20, "status": "planned", "transfer_quantity": 5},
                            {"seq": 10, "status": "running", "good": 4, "quantity": 10}]}
    assert predecessor_ready(order, 10) and not predecessor_ready(order, 20)
    order["operations"][1]["good"] = 5
    assert predecessor_ready(order, 20)
    order["operations"][0]["transfer_quantity"] = None
    assert not predecessor_ready(order, 20)
    order["operations"][1]["status"] = "done"
    assert predecessor_ready(order, 20)


def test_queue_from_json() -> None:
    body = {"machine": "cnc-01", "operations": [{"order_id": "A", "seq": 10, "status": "running", "job": 1001,
                                                 "quantity": 20, "setup_time": 60}]}
    assert queue_from_json(body) == [QueuedOp("A", 10, "running", "1001", 20, 60.0)]


def test_sigterm_ends_the_operator_process_cleanly(tmp_path: Path) -> None:
    """make demo, systemd and docker stop it with SIGTERM: it exits 0, as with Ctrl-C (a real process)."""
    log = tmp_path / "operator.log"
    argv = python_module("simulators", "operator", "--central", f"http://127.0.0.1:{free_port()}",
                         "--control", f"http://127.0.0.1:{free_port()}", "--interval", "0.1")
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:  # running: it says that nothing answers and that it tries again
            wait_until(lambda: "trying again" in log.read_text() or proc.poll() is not None, 30,
                       what="the operator running")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_key_file_gives_the_read_key_and_an_empty_one_is_a_clear_error(tmp_path: Path) -> None:
    """docker compose hands the operator its key as a file (--key-file), never in the environment."""
    key = tmp_path / "api.key"
    key.write_text("k-123\n")
    args = _parser().parse_args(["--central", "http://c", "--control", "http://s", "--key-file", str(key)])
    assert _key(args) == "k-123"
    key.write_text("\n")
    with pytest.raises(ValueError, match="holds no key"):
        _key(args)
    done = subprocess.run(python_module("simulators", "operator", "--central", "http://c", "--control", "http://s",
                                        "--key-file", str(tmp_path / "missing.key")),
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot read the key from" in done.stderr
