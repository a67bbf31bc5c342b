"""Runs a chaos plan against real processes and gathers what the checks need (the I/O half).

A private mosquitto (with persistence) -> the simulated plant (``python -m simulators``) -> two
``python -m edge run`` gateways -> ``python -m central run``, every one its own process, started
by the test fixtures and stopped by their own pid whatever happens. The run:

1. the plant is paused while the gateways take their first reads (they count from there), then
   production resumes: the start of the compared window;
2. the plan's actions run at their second (each in a worker thread, so starting central does not
   delay a fault); an action that lasts ends by itself (the broker, gateway or central comes back,
   the PLC becomes reachable, the fault clears);
3. then everything is made whole (broker, gateways and central up, every PLC reachable and
   powered), the gateways reconnect, and the plant is paused: the end of the window;
4. the run waits until each gateway's outbox is confirmed by central after its counts were due,
   reads the ground truth, central's timelines and alerts, stops central and reads its store.

Every action's effect is in the ground truth (the simulators record what they did); the log here
only says when the script asked for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.checks import AlertRow, CountRow, MachineRun, Part, Span, Verdict, check_machine, check_seqs
from tests.chaos.plan import RESTART_DOWN, Action, Intensity, MachineSpec, Plan, make_plan, plant_yaml
from tests.fixtures.mosquitto import BrokerOptions, Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.services import CentralProcess, EdgeProcess, modbus_machine, opcua_machine
from tests.fixtures.waiting import wait_until

COUNT_INTERVAL = 1.0
MODBUS_POLL = 0.2
UA_PUBLISHING, UA_SAMPLING = 0.2, 0.05
SITE = "chaos"
PLAUSIBLE_PRESET = 50  # a preset this little above the counter is indistinguishable from production


@dataclass
class Outcome:
    """What a run produced: the checks' verdicts and the figures of the run."""

    plan: Plan
    verdicts: list[Verdict]
    seq_failures: list[str]
    window: tuple[float, float]
    wall_seconds: float
    log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # actions the script could not do

    @property
    def ok(self) -> bool:
        return not self.seq_failures and all(v.ok for v in self.verdicts)

    def failures(self) -> list[str]:
        out = list(self.seq_failures)
        for v in self.verdicts:
            out += [f"{v.machine_id}: {f}" for f in v.failures]
        return out


def edge_entry(plant: SimulatedPlant, spec: MachineSpec) -> dict[str, Any]:
    """How a gateway reads one machine (docs/edge.md), with the optional counter tags the spec says."""
    min_cycle = round(spec.wall_cycle * 0.5, 3)
    if spec.protocol == "modbus":
        entry = modbus_machine(plant, spec.id, poll=MODBUS_POLL, timeout=0.3, min_cycle_time=min_cycle,
                               retry_max=1.0)
        if spec.job_counters:
            entry["tags"].update(job_good_count={"address": 10}, job_scrap_count={"address": 11})
    else:
        entry = opcua_machine(plant, spec.id, min_cycle_time=min_cycle, publishing_interval=UA_PUBLISHING,
                              sampling_interval=UA_SAMPLING, keepalive_interval=0.5, timeout=1.0, retry_max=1.0)
        for tag in ("good_count", "scrap_count"):
            entry["tags"][tag] = {"node": entry["tags"][tag], "bits": spec.bits}
        if spec.job_counters:
            entry["tags"].update(job_good_count=f"s={spec.id}.JobGoodCount",
                                 job_scrap_count=f"s={spec.id}.JobScrapCount")
    if not spec.power_on:
        del entry["tags"]["power_on_count"]
    return entry


def poll_of(spec: MachineSpec) -> float:
    return MODBUS_POLL if spec.protocol == "modbus" else UA_PUBLISHING + UA_SAMPLING


_P99 = re.compile(r'^plantpulse_edge_poll_latency_p99_ms\{[^}]*machine_id="([^"]+)"[^}]*\}\s+(\S+)', re.M)


class Chaos:
    """The processes of one run and the script acting on them."""

    def __init__(self, plan: Plan, root: Path, say: Callable[[str], None] = print) -> None:
        self.plan, self.root, self.say = plan, root, say
        self.broker = Mosquitto(root / "broker", BrokerOptions(persistence=True, max_queued_messages=1_000_000))
        ports = {m.port_group: free_port() for m in plan.machines if m.port_group}
        self.plant = SimulatedPlant(root / "plant", plant_yaml(plan, ports))
        self.central: CentralProcess | None = None
        self.gateways: dict[str, EdgeProcess] = {}
        self.metrics: dict[str, int] = {}
        self.p99: dict[str, float] = {}
        self.log: list[str] = []
        self.errors: list[str] = []
        self.locks: dict[str, threading.Lock] = {}
        self.t0 = 0.0

    # ----------------------------------------------------------------- processes
    def start(self) -> None:
        self.broker.start()
        self.plant.start(timeout=120)
        self.central = CentralProcess(self.root / "central", self.broker, site=SITE,
                                      ingest={"ack_interval": 0.3}).start(timeout=60)
        self.plant.pause()
        for gw in self.plan.gateways:
            self.metrics[gw] = free_port()
            self.gateways[gw] = EdgeProcess(
                self.root / gw, self.broker, edge_id=gw, site=SITE, count_interval=COUNT_INTERVAL,
                forward={"resend_after": 3.0}, health={"interval": 1.0, "metrics_port": self.metrics[gw]},
                machines=[edge_entry(self.plant, m) for m in self.plan.of_gateway(gw)],
            ).start()
        wait_until(self._all_read, 90, interval=0.25, what="every machine's first state in central")
        self.t0 = self.plant.resume()

    def _all_read(self) -> bool:
        assert self.central is not None
        try:
            machines = {m["id"]: m for m in self.central.get("/api/v1/machines")["machines"]}
        except (AssertionError, httpx.HTTPError):
            return False
        return all(machines.get(m.id, {}).get("state") not in (None, "offline") for m in self.plan.machines)

    def stop(self) -> None:
        for gw in self.gateways.values():
            with contextlib.suppress(Exception):
                gw.stop()
        if self.central is not None:
            with contextlib.suppress(Exception):
                self.central.stop()
        with contextlib.suppress(Exception):
            self.plant.stop()
        with contextlib.suppress(Exception):
            self.broker.stop()

    # ----------------------------------------------------------------- the script
    def execute(self) -> None:
        """Run every action at its second; each in a worker, one at a time per target."""
        jobs: list[tuple[float, Action, bool]] = []
        for a in self.plan.actions:
            jobs.append((a.at, a, False))
            if a.duration and a.kind not in ("power_cycle", "restart"):
                jobs.append((a.at + a.duration, a, True))
        jobs.sort(key=lambda j: j[0])
        futures: list[Future[None]] = []
        next_scrape = 0.0
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="chaos") as pool:
            for at, action, end in jobs:
                while (wait := self.t0 + at - time.time()) > 0:
                    if time.monotonic() >= next_scrape:
                        self._scrape()
                        next_scrape = time.monotonic() + 5.0
                    time.sleep(min(wait, 0.5))
                futures.append(pool.submit(self._do, action, end))
            for future in futures:
                future.result()
        self._scrape()

    def _do(self, action: Action, end: bool) -> None:
        lock = self.locks.setdefault(action.target, threading.Lock())
        with lock:
            label = f"{'end ' if end else ''}{action.describe()}"
            self.log.append(f"{time.time() - self.t0:7.2f} {label}")
            try:
                self._act(action, end)
            except Exception as exc:  # an action the plant refuses (409) is logged; the run goes on
                self.errors.append(f"{label}: {exc}")

    def _act(self, a: Action, end: bool) -> None:
        mid = a.target
        if a.kind == "broker_stop":
            if end:
                self.broker.start()
            else:
                self.broker.stop()
                if a.params.get("delete_persistence"):
                    for db in self.broker.folder.glob("mosquitto.db*"):
                        db.unlink()
        elif a.kind == "gateway_kill":
            gw = self.gateways[a.target]
            if end:
                gw.start()
            else:
                gw.kill9()
        elif a.kind == "central_kill":
            assert self.central is not None
            if end:
                self.central.start(timeout=60)
            else:
                self.central.kill9()
        elif a.kind == "fault":
            if not end:
                self.plant.act(mid, "fault", {"code": a.params["code"], "duration": a.duration})
        elif a.kind == "unreachable":
            if end:
                self.plant.act(mid, "reachable")
            else:
                self.plant.act(mid, "unreachable", {"mode": a.params["mode"]})
        elif a.kind == "power_cycle":
            self.plant.act(mid, "power-cycle", {"off_seconds": a.duration})
        elif a.kind == "restart":
            self.plant.act(mid, "restart", {"down_seconds": a.duration})
        elif a.kind == "preset":
            self.plant.act(mid, "counter", self._distinct(mid, a.params))
        elif a.kind == "job":
            self.plant.act(mid, "job", a.params)
        else:
            raise ValueError(f"unknown action {a.kind}")

    def _distinct(self, mid: str, preset: dict[str, int]) -> dict[str, int]:
        """The preset, moved where no reader could take it for production (docs/edge.md, rule 1).

        A preset a few parts above the counter's value is production to anyone reading the counter;
        such a preset is moved 1000 below (the truth records the preset that was really made).
        """
        m = self.plant.machine(mid)
        modulus = 1 << int(m["counter_bits"])
        out = dict(preset)
        for name, value in preset.items():
            if (value - int(m[f"{name}_counter"])) % modulus <= PLAUSIBLE_PRESET:
                out[name] = (value - 1000) % modulus
        return out

    def _scrape(self) -> None:
        """Keep the highest poll p99 each gateway reported (a killed gateway starts its window again)."""
        for port in self.metrics.values():
            with contextlib.suppress(httpx.HTTPError):
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2.0).text
                for mid, value in _P99.findall(text):
                    if value != "NaN":
                        self.p99[mid] = max(self.p99.get(mid, 0.0), float(value) / 1000.0)

    # ----------------------------------------------------------------- the end
    def make_whole(self) -> float:
        """Everything up and reachable, every machine read again; then pause the plant (the window's end)."""
        assert self.central is not None
        if not self.broker.running:
            self.broker.start()
        if not self.central.process.running():
            self.central.start(timeout=60)
        for gw in self.gateways.values():
            if not gw.process.running():
                gw.start()
        for m in self.plan.machines:
            self.plant.act(m.id, "reachable")
        wait_until(lambda: all(self.plant.machine(m.id)["powered"] for m in self.plan.machines), 30,
                   interval=0.2, what="every PLC powered")
        wait_until(self._all_read, 90, interval=0.25, what="every machine read again after the chaos")
        self._scrape()
        return self.plant.pause()

    def settle(self, end: float) -> None:
        """Wait until central confirmed everything each gateway sent after its last counts were due."""
        assert self.central is not None
        central = self.central
        due = end + 2 * COUNT_INTERVAL + 2.0

        def confirmed(gw: str) -> bool:
            g = central.gateway(gw)
            return (g["online"] and g["health_at"] is not None and g["health_at"] > due
                    and g["buffer_events"] == 0 and g["applied_seq"] == g["latest_seq"])

        wait_until(lambda: all(confirmed(gw) for gw in self.gateways), 120, interval=0.5,
                   what="every gateway's events confirmed by central")

    def gather(self, end: float) -> tuple[list[MachineRun], list[str]]:
        """Read the truth, central's timelines and alerts, stop central, read its store; keep it all in
        ``gathered.json`` beside the store (``recheck`` runs the checks again from the folder)."""
        assert self.central is not None
        plan = {"seed": self.plan.seed, "machines": len(self.plan.machines), "duration": self.plan.duration,
                "intensity": dataclasses.asdict(self.plan.intensity)}
        fetched: dict[str, Any] = {"plan": plan, "t0": self.t0, "end": end, "p99": self.p99, "machines": {}}
        for spec in self.plan.machines:
            timeline = self.central.get(f"/api/v1/machines/{spec.id}/timeline", start=self.t0 - 60, end=end)
            fetched["machines"][spec.id] = {
                "truth": self.plant.truth(spec.id), "timeline": timeline["intervals"],
                "alerts": self.central.get("/api/v1/alerts", rule="fault", subject=spec.id, limit=1000)["alerts"],
            }
        (self.root / "gathered.json").write_text(json.dumps(fetched))
        self.central.stop()
        return recheck(self.plan, self.root)


def kept_plan(root: Path) -> Plan:
    """The plan of a finished run whose folder was kept."""
    p = json.loads((root / "gathered.json").read_text())["plan"]
    return make_plan(p["seed"], p["machines"], p["duration"], Intensity(**p["intensity"]))


def recheck(plan: Plan, root: Path) -> tuple[list[MachineRun], list[str]]:
    """The checks' inputs from a finished run's folder (``gathered.json`` and central's store)."""
    fetched = json.loads((root / "gathered.json").read_text())
    counts, seqs, gaps = read_store(root / "central" / "central.sqlite")
    t0, end = fetched["t0"], fetched["end"]
    runs: list[MachineRun] = []
    for spec in plan.machines:
        got = fetched["machines"][spec.id]
        truth = got["truth"]
        runs.append(MachineRun(
            machine_id=spec.id, window=(t0, end),
            parts=[Part(p["ts"], p["good"], str(p["job"])) for p in truth["parts"]],
            truth=[Span(i["start"], i["end"], i["state"], i["fault_code"]) for i in truth["intervals"]],
            unreachable=unreachable(truth["comm"], end), counts=counts.get(spec.id, []),
            central=[Span(i["start"], i["end"], i["state"], i.get("fault_code")) for i in got["timeline"]],
            alerts=[AlertRow(a["id"], a["since"], a["episode"]) for a in got["alerts"]],
            poll=poll_of(spec), poll_p99=fetched["p99"].get(spec.id, 0.0),
        ))
    return runs, check_seqs(seqs, gaps)


def unreachable(comm: list[dict[str, Any]], end: float) -> list[tuple[float, float]]:
    """When nobody could read the PLC, from the truth's reachability changes (a restart: ``RESTART_DOWN``)."""
    out: list[tuple[float, float]] = []
    since: float | None = None
    for c in comm:
        if c["status"] == "restart":
            out.append((c["ts"], c["ts"] + RESTART_DOWN + 0.2))
        elif c["status"] == "reachable":
            if since is not None:
                out.append((since, c["ts"]))
            since = None
        elif since is None:
            since = c["ts"]
    if since is not None:
        out.append((since, end))
    return out


def read_store(path: Path) -> tuple[dict[str, list[CountRow]], list[tuple[str, str, int]], list[str]]:
    """Count rows per machine, every applied (gateway, epoch, seq), and the data gaps, from central's store."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts: dict[str, list[CountRow]] = {}
        seqs: list[tuple[str, str, int]] = []
        for (edge, epoch, seq, mid, job, job_from, start, at, good, scrap, reset, lost, rebased,
             implausible) in db.execute(
                "SELECT edge_id, epoch, seq, machine_id, job, job_from, start, at, good, scrap, reset,"
                " possibly_lost, rebased, implausible FROM counts"):
            counts.setdefault(mid, []).append(CountRow(edge, epoch, seq, start, at, good, scrap, job, job_from,
                                                       bool(reset), bool(lost), bool(rebased), bool(implausible)))
            seqs.append((edge, epoch, seq))
        gaps = [f"{e} {ep[:8]} {a}-{b} {reason}" for e, ep, a, b, reason in
                db.execute("SELECT edge_id, epoch, first, last, reason FROM gaps")]
        return counts, seqs, gaps
    finally:
        db.close()


def run_chaos(plan: Plan, root: Path, say: Callable[[str], None] = print) -> Outcome:
    """The whole run; every process is stopped at the end, also on failure."""
    started = time.monotonic()
    chaos = Chaos(plan, root, say)
    try:
        chaos.start()
        say(f"chaos seed {plan.seed}: {len(plan.machines)} machines, {len(plan.actions)} actions over "
            f"{plan.duration:g} s; every process up, production resumed")
        chaos.execute()
        end = chaos.make_whole()
        say(f"script done at t+{end - chaos.t0:.1f} s; plant paused, settling")
        chaos.settle(end)
        runs, seq_failures = chaos.gather(end)
    except BaseException:
        say(f"chaos run failed; the processes' logs are in {root}")
        raise
    finally:
        chaos.stop()
    verdicts = [check_machine(r) for r in runs]
    return Outcome(plan, verdicts, seq_failures, (chaos.t0, end), time.monotonic() - started, chaos.log,
                   chaos.errors)
