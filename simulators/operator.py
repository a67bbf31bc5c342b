"""A simulated operator: works through each machine's dispatch list the way a person at the machine would.

For the demo and the end-to-end tests of issue 13. The simulated machines run with ``auto_jobs:
false``: after a job they stand idle until someone loads the next one. This operator watches
them through the simulator's control API and central's dispatch lists; when a machine has finished
its job (idle, nothing left to make), it takes the first open operation of that machine's list
that the machine has not run yet, waits until the order's previous operation has delivered its
parts (a person cannot machine parts that have not arrived), and loads its job number, quantity
and setup time (``POST /api/machines/{id}/job``). The machine then reports the job number and
central starts the operation from it, as in a real plant.

Decisions are pure (``next_switch``: values in, a ``Switch`` or None out); ``Operator`` does the
polling. Limits, on purpose: an operation without a numeric job number (0..65535) cannot be
keyed into the simulated PLC and is skipped (logged once); two operations in a row with the
same job number on one machine look like one job to the machine.

Run it: ``python -m simulators operator --central http://127.0.0.1:8080 --control
http://127.0.0.1:8081`` with the read key in ``PLANTPULSE_KEY`` or a file (``--key-file``; docker
compose's demo profile, docs/deployment.md) (docs/simulators.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from plantpulse.healthcheck import touch

log = logging.getLogger("simulators.operator")

OpKey = tuple[str, int]
OPEN = frozenset({"planned", "running", "paused"})


@dataclass(frozen=True, slots=True)
class QueuedOp:
    """An operation in a machine's dispatch list, as far as the operator cares."""

    order_id: str
    seq: int
    status: str
    job: str | None
    quantity: int
    setup_time: float  # central's seconds (wall clock)

    @property
    def key(self) -> OpKey:
        return (self.order_id, self.seq)

    @property
    def job_number(self) -> int | None:
        """The job as the PLC's 16-bit register takes it; None if it cannot be keyed in."""
        if self.job is None or not self.job.isdigit() or int(self.job) > 65535:
            return None
        return int(self.job)


@dataclass(frozen=True, slots=True)
class SimMachine:
    id: str
    state: str
    job: int
    job_remaining: int
    powered: bool = True


@dataclass(frozen=True, slots=True)
class Switch:
    """Load ``job`` (``quantity`` good parts, ``setup`` plant seconds) on ``machine`` for operation ``key``."""

    machine: str
    key: OpKey
    job: int
    quantity: int
    setup: float


def next_switch(
    machine: SimMachine, queue: Sequence[QueuedOp], *, handed: Iterable[OpKey], ready: Mapping[OpKey, bool],
    speed: float,
) -> Switch | None:
    """What the operator does at ``machine`` now: load the next operation's job, or nothing.

    Only a machine that finished its job (idle, nothing left, powered) gets a new one. The next
    operation is the first open one in ``queue`` not ``handed`` to a machine before and not the job
    the machine just finished; if it is not ``ready`` (its predecessor has not delivered) the
    operator waits rather than skipping ahead, as the dispatch list says. ``speed``: the
    simulator's time factor (its setup times are plant seconds).
    """
    if machine.state != "idle" or machine.job_remaining > 0 or not machine.powered:
        return None
    done = set(handed)
    for op in queue:
        number = op.job_number
        if op.status not in OPEN or op.key in done or number is None:
            continue
        if number == machine.job and op.status != "planned":
            continue  # the job the machine has just finished: central has not seen its last part yet
        if not ready.get(op.key, True):
            return None
        return Switch(machine.id, op.key, number, op.quantity, op.setup_time * speed)
    return None


def queue_from_json(body: Any) -> list[QueuedOp]:
    """The dispatch list answer of central (``GET /api/v1/machines/{id}/dispatch``) as ``QueuedOp``s."""
    rows = body.get("operations", []) if isinstance(body, dict) else body
    out = []
    for row in rows:
        job = row.get("job")
        left = max(1, int(row.get("quantity", 0)) - int(row.get("good") or 0))  # parts still to make
        out.append(QueuedOp(str(row["order_id"]), int(row["seq"]), str(row.get("status", "planned")),
                            str(job) if job is not None else None, left, float(row.get("setup_time") or 0.0)))
    return out


def predecessor_ready(order: Mapping[str, Any], seq: int) -> bool:
    """Whether the operation before ``seq`` in ``order`` (central's order JSON) has delivered its parts:
    done, or at least its transfer quantity (default: all) of good parts made."""
    ops = sorted(order.get("operations", []), key=lambda o: int(o["seq"]))
    seqs = [int(o["seq"]) for o in ops]
    if seq not in seqs or seqs.index(seq) == 0:
        return True
    me, before = ops[seqs.index(seq)], ops[seqs.index(seq) - 1]
    if before.get("status") in ("done", "cancelled"):
        return True
    needed = me.get("transfer_quantity") or before.get("quantity") or 0
    return int(before.get("good") or 0) >= int(needed)


@dataclass
class Operator:
    """Polls the simulator and central every ``interval`` seconds and loads jobs (``next_switch``)."""

    central: str
    control: str
    key: str | None = None
    machines: frozenset[str] | None = None  # None: every machine of the simulated plant
    interval: float = 0.5
    think: float = 0.0  # seconds a machine stands idle after its job before the next one is loaded
    alive_file: Path | None = None  # touched after every look that reached both APIs (a health check)
    handed: dict[str, list[OpKey]] = field(default_factory=dict)
    switches: list[Switch] = field(default_factory=list)
    _skipped: set[OpKey] = field(default_factory=set)

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        async with httpx.AsyncClient(base_url=self.central, headers=headers, timeout=10) as api, \
                httpx.AsyncClient(base_url=self.control, timeout=10) as sim:
            failing = False
            while True:
                try:
                    await self.step(api, sim)
                    touch(self.alive_file)
                    if failing:
                        log.info("operator: central and the simulators answer again")
                    failing = False
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    if not failing:  # once per episode (e.g. while central starts), not twice a second
                        log.warning("operator: %s (trying again every %g s)", exc, self.interval)
                    failing = True
                await asyncio.sleep(self.interval)

    async def step(self, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> list[Switch]:
        """One look around the plant; returns the jobs loaded."""
        plant = (await sim.get("/api/machines")).raise_for_status().json()
        speed = float(plant.get("speed", 1.0))
        loaded = []
        for m in plant["machines"]:
            if self.machines is not None and m["id"] not in self.machines:
                continue
            machine = SimMachine(m["id"], m["state"], int(m["job"]), int(m["job_remaining"]), bool(m["powered"]))
            if machine.state != "idle" or machine.job_remaining > 0:
                continue
            idle_for = float(plant.get("server_time", 0.0)) - float(m.get("state_since") or 0.0)
            if idle_for < self.think:
                continue  # a person takes a moment; the gateway sees the machine stop before the next job
            answer = await api.get(f"/api/v1/machines/{machine.id}/dispatch")
            if answer.status_code == 404:
                continue
            queue = queue_from_json(answer.raise_for_status().json())
            self._log_skipped(queue)
            handed = [k for keys in self.handed.values() for k in keys]
            ready: dict[OpKey, bool] = {}
            candidate = next_switch(machine, queue, handed=handed, ready={}, speed=speed)
            if candidate is None:
                continue
            order = (await api.get(f"/api/v1/orders/{candidate.key[0]}")).raise_for_status().json()
            ready[candidate.key] = predecessor_ready(order, candidate.key[1])
            switch = next_switch(machine, queue, handed=handed, ready=ready, speed=speed)
            if switch is None:
                continue
            setup = next((float(o.get("setup_time") or 0.0) for o in order.get("operations", [])
                          if int(o["seq"]) == switch.key[1]), None)
            if setup is not None:  # the dispatch list does not carry it: the order does
                switch = replace(switch, setup=setup * speed)
            await self._load(sim, switch)
            loaded.append(switch)
        return loaded

    async def _load(self, sim: httpx.AsyncClient, switch: Switch) -> None:
        body = {"number": switch.job, "quantity": switch.quantity, "setup_time": switch.setup}
        (await sim.post(f"/api/machines/{switch.machine}/job", json=body)).raise_for_status()
        self.handed.setdefault(switch.machine, []).append(switch.key)
        self.switches.append(switch)
        log.info("operator: %s -> job %d for %s op %d (%d parts, setup %.0f plant s)", switch.machine, switch.job,
                 switch.key[0], switch.key[1], switch.quantity, switch.setup)

    def _log_skipped(self, queue: Sequence[QueuedOp]) -> None:
        for op in queue:
            if op.job_number is None and op.status in OPEN and op.key not in self._skipped:
                self._skipped.add(op.key)
                log.warning("operator: %s op %d has no numeric job number (%r): the simulated PLC cannot run it; "
                            "start it with the API or a scan", op.order_id, op.seq, op.job)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulators operator",
                                description="A simulated operator loading each machine's next job from central's "
                                            "dispatch lists (machines with auto_jobs: false).")
    p.add_argument("--central", required=True, help="central's URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--control", required=True, help="the simulator's control API, e.g. http://127.0.0.1:8081")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--key-env", default="PLANTPULSE_KEY",
                     help="environment variable holding a read key for central (default: %(default)s)")
    key.add_argument("--key-file", type=Path, help="file whose first line is a read key for central (instead)")
    p.add_argument("--machines", help="comma-separated machine ids (default: every machine of the plant)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between looks (default: %(default)s)")
    p.add_argument("--think", type=float, default=0.0,
                   help="seconds a finished machine stands idle before the next job is loaded (default: %(default)s)")
    p.add_argument("--alive-file", type=Path,
                   help="touched after every look that reached the simulator and central (health check)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    return p


def _key(args: argparse.Namespace) -> str | None:
    """The read key from ``--key-file`` or the ``--key-env`` variable; ValueError when the file has none."""
    if args.key_file is None:
        return os.environ.get(args.key_env) or None
    try:
        key = next(iter(args.key_file.read_text(encoding="utf-8").splitlines()), "").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the key from {args.key_file}: {exc.strerror}") from None
    if not key:
        raise ValueError(f"{args.key_file} holds no key (its first line is empty)")
    return key


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators operator``: run the simulated operator until interrupted."""
    args = _parser().parse_args(argv)
    if args.interval <= 0 or args.think < 0:
        print("error: --interval must be greater than 0 and --think at least 0", file=sys.stderr)
        return 2
    try:
        key = _key(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    machines = frozenset(m.strip() for m in args.machines.split(",") if m.strip()) if args.machines else None
    operator = Operator(args.central.rstrip("/"), args.control.rstrip("/"), key, machines, args.interval,
                        think=args.think, alive_file=args.alive_file)

    def stop(*_: object) -> None:  # SIGTERM (make demo, systemd, docker stop) ends it like Ctrl-C: exit 0
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        asyncio.run(operator.run())
    except KeyboardInterrupt:
        return 0
    return 0
