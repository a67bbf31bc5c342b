"""Central scaled out: ingest events/s with 1, 2 and 4 workers on PostgreSQL, CPU per event, and failover.

``python -m bench cluster`` (or ``python -m bench.cluster [--gateways N] [--events N] [--quick]``) runs a
private mosquitto and, in one run, each configuration against the same backlog: ``--gateways``
synthetic gateways (``bench/_fleet.py``: each a real outbox and the real forwarder) holding
``--events`` events each, sent as soon as they connect, until every one is confirmed:

* baselines: a raw paho subscriber draining the same events one per message (the per-event drain)
  and in the gateways' 500-event messages;
* ``python -m central run`` on SQLite (one process: the embedded default);
* ``python -m central ingest`` on PostgreSQL with 1, 2 and 4 workers (leases taken before the
  gateways connect, so the figure is the steady state, not the start).

For each: events/s from the gateways' first connection to the last confirmation; CPU seconds per
event of the workers (``/proc/<pid>/stat``) and of PostgreSQL's backends for the database
(``pg_stat_activity`` pids, same machine). Then failover: 3 workers at the default lease (15 s),
live traffic, one worker killed with SIGKILL, then one frozen with SIGSTOP (its sessions stay: the lease
decides) and thawed: seconds until every gateway each owned has events applied again by another worker,
events lost and applied twice (from the store against what the gateways sent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import yaml

from bench._fleet import SITE
from bench._mqtt import publish_all, raw_drain, register_session
from bench._procs import Stack, exit_on_sigterm, machine, row
from bench.ingest import backlog_messages, single_event_drain
from central.store.postgres import PostgresStore
from tests.fixtures.mosquitto import BrokerOptions, Mosquitto

SERVER = os.environ.get("PLANTPULSE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self.p = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def kill9(self) -> None:
        self.p.kill()
        self.p.wait()


def wait(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


class Db:
    """A database of its own on the PostgreSQL server, migrated, dropped at the end."""

    def __init__(self) -> None:
        self.name = f"plantpulse_bench_{uuid.uuid4().hex[:10]}"
        self.dsn = SERVER.rsplit("/", 1)[0] + "/" + self.name

    def __enter__(self) -> Db:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))
        asyncio.run(self._migrate())
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, sql: str) -> None:
        con = await asyncpg.connect(SERVER)
        try:
            await con.execute(sql)
        finally:
            await con.close()

    async def _migrate(self) -> None:
        await (await PostgresStore.open(self.dsn, "fleet", pool_size=1)).close()

    def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def go() -> list[asyncpg.Record]:
            con = await asyncpg.connect(self.dsn)
            try:
                return await con.fetch(sql, *args)
            finally:
                await con.close()
        return asyncio.run(go())

    def backend_pids(self) -> list[int]:
        return [r[0] for r in self.query("SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                                         "AND pid != pg_backend_pid()", self.name)]


class Bench:
    def __init__(self, root: Path, broker: Mosquitto, gateways: int, events: int) -> None:
        self.root, self.broker, self.gateways, self.events = root, broker, gateways, events
        self.runs = 0

    def central(self, folder: Path, command: str, store: dict[str, Any], lease: float = 15.0) -> Proc:
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"site": SITE,
               "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "keepalive": 5, "reconnect_max": 1},
               "store": store, "api": {"port": 0}, "cluster": {"lease_seconds": lease},
               "ingest": {"ack_interval": 0.1, "client_id": f"bench-{folder.name}"}}
        (folder / "central.yaml").write_text(yaml.safe_dump(cfg))
        return Proc([sys.executable, "-m", "central", command, "--config", str(folder / "central.yaml"),
                     "--ready-file", str(folder / "ready.json"), "--log-level", "WARNING"], folder / "central.log")

    def fleet(self, folder: Path, *, backlog: int, rate: float = 1.0, live: float = 0.0) -> tuple[Proc, Path]:
        report = folder / "fleet.json"
        return Proc([sys.executable, "-m", "bench._fleet", "--port", str(self.broker.port), "--dir", str(folder),
                     "--report", str(report), "--gateways", str(self.gateways), "--backlog", str(backlog),
                     "--rate", str(rate), "--live", str(live), "--resend-after", "2"],
                    folder / "fleet.log"), report

    def throughput(self, workers: int, db: Db | None) -> dict[str, float]:
        """One configuration: events/s until every event is confirmed, CPU per event of each part."""
        self.runs += 1
        run = self.root / f"run{self.runs}"
        total = self.gateways * self.events
        procs: list[Proc] = []
        try:
            if db is None:
                procs.append(self.central(run / "central", "run", {"path": str(run / "central.sqlite")}))
            else:
                db.query("INSERT INTO gateway_leases (site, edge_id, owner, token, expires_at) "
                         "SELECT 'fleet', 'gw' || lpad(i::text, 3, '0'), NULL, 0, 0 "
                         "FROM generate_series(0, $1 - 1) AS i", self.gateways)
                dsn_file = run / "pg.dsn"
                run.mkdir(parents=True, exist_ok=True)
                dsn_file.write_text(db.dsn)
                procs += [self.central(run / f"w{i}", "ingest", {"kind": "postgresql", "dsn_file": str(dsn_file)})
                          for i in range(workers)]
            wait(lambda: all((Path(p.log.parent) / "ready.json").exists() for p in procs), 60, "central ready")
            if db is not None:
                share = -(-self.gateways // workers)

                def balanced() -> bool:
                    rows = db.query("SELECT owner, count(*) FROM gateway_leases GROUP BY owner")
                    held = {r[0]: r[1] for r in rows}
                    return None not in held and len(held) == workers and max(held.values()) <= share
                wait(balanced, 120, "every gateway owned, balanced over the workers")
                time.sleep(1.5)  # the owners subscribe between two rounds
            fleet, report = self.fleet(run / "fleet", backlog=self.events)
            procs.append(fleet)
            wait(lambda: read_json(report).get("gateways"), 120, "the fleet's backlog stored")
            pg_before = {pid: cpu_seconds(pid) for pid in db.backend_pids()} if db is not None else {}
            central_before = [cpu_seconds(p.p.pid) for p in procs[:-1]]
            result = wait(lambda: read_json(report) if read_json(report).get("confirmed_at") else None, 600,
                          "every event confirmed", interval=0.1)
            central_cpu = sum(cpu_seconds(p.p.pid) for p in procs[:-1]) - sum(central_before)
            pg_cpu = sum(cpu_seconds(pid) - pg_before.get(pid, 0.0) for pid in db.backend_pids()) if db else 0.0
            seconds = float(result["confirmed_at"])
            return {"rate": total / seconds, "cpu_us": central_cpu / total * 1e6 / max(1, workers),
                    "cpu_total_us": central_cpu / total * 1e6, "pg_us": pg_cpu / total * 1e6, "seconds": seconds}
        finally:
            for p in reversed(procs):
                p.stop()

    def failover(self, db: Db, lease: float, live: float) -> dict[str, float]:
        """3 workers, live traffic; one killed (SIGKILL), then one frozen (SIGSTOP) and thawed later: seconds
        until each one's gateways are applied again by another worker; at the end lost, twice, gaps."""
        run = self.root / "failover"
        run.mkdir(parents=True, exist_ok=True)
        dsn_file = run / "pg.dsn"
        dsn_file.write_text(db.dsn)
        store = {"kind": "postgresql", "dsn_file": str(dsn_file)}
        workers = [self.central(run / f"w{i}", "ingest", store, lease) for i in range(3)]
        fleet, report = self.fleet(run / "fleet", backlog=200, rate=20.0 * self.gateways, live=live)
        procs = [*workers, fleet]
        try:
            wait(lambda: all((run / f"w{i}" / "ready.json").exists() for i in range(3)), 60, "workers ready")
            ids = [read_json(run / f"w{i}" / "ready.json")["worker"] for i in range(3)]

            def owned() -> dict[str, str]:
                return {r[0]: r[1] for r in db.query("SELECT edge_id, owner FROM gateway_leases WHERE owner IS "
                                                     "NOT NULL AND expires_at > extract(epoch from now())")}
            wait(lambda: len(owned()) == self.gateways and set(owned().values()) == set(ids), 90,
                 "every worker owning gateways")
            time.sleep(3.0)  # traffic flowing

            def applied(edges: list[str]) -> dict[str, int]:
                return {r[0]: max(b for _, b in json.loads(r[1])) for r in db.query(
                    "SELECT edge_id, settled FROM epochs WHERE current = 1 AND edge_id = ANY($1::text[])", edges)}

            def taken_over(victim: str, stop: Callable[[], None]) -> tuple[float, int]:
                """Seconds from stopping ``victim`` until another worker owns each of its gateways and has
                applied everything the gateway had emitted when ``victim`` stopped."""
                edges = sorted(e for e, w in owned().items() if w == victim)
                started = time.monotonic()
                stop()
                emitted = {e: g["latest_seq"] for e, g in read_json(report)["gateways"].items() if e in edges}

                def resumed() -> bool:
                    now, owners = applied(edges), owned()
                    return len(now) == len(edges) and all(n >= emitted[e] and owners.get(e) not in (None, victim)
                                                          for e, n in now.items())
                wait(resumed, 180, f"the gateways of {victim} taken over and caught up", interval=0.1)
                return time.monotonic() - started, len(edges)

            killed, n_killed = taken_over(ids[0], workers[0].kill9)
            frozen, n_frozen = taken_over(ids[1], lambda: os.kill(workers[1].p.pid, signal.SIGSTOP))
            os.kill(workers[1].p.pid, signal.SIGCONT)  # thawed: its late rounds must be fenced, not applied
            final = wait(lambda: read_json(report) if read_json(report).get("confirmed") else None, 300,
                         "every event confirmed", interval=0.2)
            sent = sum(final["good"].values())
            stored = int(db.query("SELECT coalesce(sum(good), 0) FROM counts")[0][0])
            totals = sum(json.loads(r[0])["good_total"] for r in db.query("SELECT data FROM machine_status"))
            holes = sum(1 for e, g in final["gateways"].items() if json.loads(db.query(
                "SELECT settled FROM epochs WHERE edge_id = $1 AND epoch = $2", e, g["epoch"])[0][0])
                != [[1, g["latest_seq"]]])
            return {"killed": killed, "n_killed": n_killed, "frozen": frozen, "n_frozen": n_frozen,
                    "lost": sent - stored, "twice": totals - stored, "holes": holes}
        finally:
            for p in reversed(procs):
                p.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=20, help="gateways in the fleet (default 20)")
    parser.add_argument("--events", type=int, default=5000, help="backlog events per gateway (default 5000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure, median shown (default 1)")
    parser.add_argument("--lease", type=float, default=15.0, help="lease seconds in the failover run (default 15)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--failover-only", action="store_true", help="only the failover run")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    gateways, events, repeat = (8, 500, 1) if args.quick else (args.gateways, args.events, args.repeat)
    total = gateways * events
    print(f"cluster benchmark on {machine()}; {gateways} gateways x {events:,} events = {total:,} per run, "
          f"median of {repeat}")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, Stack() as stack:
        root = Path(tmp)
        # anonymous: the fleet's synthetic gateways connect without logins (as in the other ingest benchmarks)
        broker = stack.started(Mosquitto(root / "broker", BrokerOptions(anonymous=True, max_queued_messages=10**6)))
        broker.start()
        bench = Bench(root, broker, gateways, events)
        raw: list[float] = []
        single: list[float] = []
        for run in range(0 if args.failover_only else repeat):
            _, messages = backlog_messages(f"raw{run}", total)
            register_session(broker.port, f"bench-raw-{run}")
            publish_all(broker.port, messages)
            raw.append(total / raw_drain(broker.port, f"bench-raw-{run}", len(messages) - 1))
            single.append(total / single_event_drain(broker.port, f"bench-single-{run}", messages))
        figures: dict[str, list[dict[str, float]]] = {}
        for _ in range(0 if args.failover_only else repeat):
            figures.setdefault("sqlite", []).append(bench.throughput(1, None))
            for n in (1, 2, 4):
                with Db() as db:
                    figures.setdefault(f"pg{n}", []).append(bench.throughput(n, db))
        base = median(single) if single else 0.0
        widths = (58, 10, 8, 16, 12)
        print(row(["events/s until every event is confirmed", "events/s", "x drain", "central CPU/event",
                   "PG CPU/event"], widths))
        if base:
            print(row(["raw paho drain, one event per message (baseline)", f"{base:,.0f}", "1.00", "", ""], widths))
            print(row(["raw paho drain, 500 events per message", f"{median(raw):,.0f}",
                       f"{median(raw) / base:.2f}", "", ""], widths))
        names = {} if args.failover_only else {
                 "sqlite": "central run, SQLite, 1 process", "pg1": "central ingest, PostgreSQL, 1 worker",
                 "pg2": "central ingest, PostgreSQL, 2 workers", "pg4": "central ingest, PostgreSQL, 4 workers"}
        for key, label in names.items():
            rate = median(f["rate"] for f in figures[key])
            cpu = median(f["cpu_total_us"] for f in figures[key])  # all workers together: the cost of an event
            pg = median(f["pg_us"] for f in figures[key])
            print(row([label, f"{rate:,.0f}", f"{rate / base:.2f}", f"{cpu:.0f} us",
                       f"{pg:.0f} us" if key != "sqlite" else "-"], widths))
        with Db() as db:
            fo = bench.failover(db, args.lease, live=60.0 if not args.quick else 45.0)
        print()
        print(f"failover (3 workers, lease {args.lease:g} s, live traffic): a worker killed with SIGKILL, its "
              f"{fo['n_killed']:.0f} gateways taken over and caught up by another after {fo['killed']:.1f} s; "
              f"a worker frozen with SIGSTOP (its database sessions stay), its {fo['n_frozen']:.0f} after "
              f"{fo['frozen']:.1f} s (target < 20 s); then thawed. Events lost {fo['lost']:.0f}, "
              f"applied twice {fo['twice']:.0f}, gateways with a gap {fo['holes']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
