"""The projector: projected schedule, progress and delay alerts of every order, outside the ingest (issue 13).

A background task re-projects at most every ``orders.projection_interval`` seconds (default 5) after
ingest changed a machine or a count, at once after a person's order change, and at least every
``IDLE_EVERY`` seconds anyway (a confirmation time runs out, a due time passes). It never runs in
an ingest round: ingest keeps its speed however large the plan.

Each pass takes a snapshot of the book and the machines' live state, projects in a worker thread
(``projection.project``: shift calendars, setups, precedence, each machine's availability over the last
``orders.availability_hours``, machines down until their repair ETA, else their MTTR, else
``orders.default_repair``), evaluates the delay rules
(``delay.evaluate``: confirmation time, hysteresis, the cause) and reconciles their findings with
the order alerts in one transaction of their own (alert changes, notifications and deliveries:
the same outbox as every alert). Orders made late by one cause on one machine that open together
share one notification. Findings of an order with an operation on a machine whose gateway's backlog is
being applied are historic: recorded, paging nobody (other orders page as usual). The summaries per
order and machine then go to the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from central.alerts.alert import TransitionKind
from central.alerts.conditions import Rule, Texts
from central.alerts.engine import AlertEngine
from central.ingest.live import LiveState
from central.orders.book import BookChanged, OrderBook
from central.orders.config import OrdersConfig
from central.orders.summary import Summary, finite
from central.progress.assignment import Tally
from central.progress.delay import DelayResult, OrderFinding, OrderRule, RiskState, evaluate, to_evaluation
from central.progress.downtime import downtime
from central.progress.machines import Catalog
from central.progress.orders import OpKey, Plan
from central.progress.outlook import MachineOutlook, Projection, down_until
from central.progress.progress import Rate, availability, order_progress, rate
from central.progress.projection import project
from central.progress.reliability import reliability
from central.progress.shifts import Calendar
from central.progress.timetable import Overtime
from central.store.base import Store
from central.store.extra_records import RepairEta
from central.store.records import Transaction
from plantpulse.protocol.models import MachineState

log = logging.getLogger(__name__)

RULES: Mapping[OrderRule, Rule] = {OrderRule.AT_RISK: Rule.ORDER_AT_RISK, OrderRule.OVERDUE: Rule.ORDER_OVERDUE,
                                   OrderRule.MATERIAL: Rule.MATERIAL_SHORTAGE}
IDLE_EVERY = 30.0  # seconds: re-evaluated at least this often (confirmation times, due times pass)
MTTR_WINDOW = 30 * 86_400.0  # mean repair time measured over this look-back
MTTR_REFRESH = 600.0
BUSY_CHECK = 1.0  # seconds between looks at whether ingest still runs flat out, while a pass waits for it
MEASURE_PER_PASS = 10  # machines whose availability one pass may measure (each reads hours of history)


@dataclass
class Snapshot:
    """What one pass projects from: taken in the event loop, then read by the worker thread only."""

    now: float
    plan: Plan
    parts: dict[OpKey, Tally]
    running: dict[OpKey, list[str]]
    outlooks: dict[str, MachineOutlook]
    states: dict[str, RiskState]
    historic: frozenset[str]  # machines whose status comes from a backlog being applied
    calendars: dict[str, Calendar] = field(default_factory=dict)


class Projector:
    def __init__(self, book: OrderBook, live: LiveState, catalog: Catalog, cfg: OrdersConfig, alerts: AlertEngine,
                 store: Store, *, clock: Callable[[], float],
                 publish: Callable[[list[Summary], set[str], Transaction], None] | None = None,
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.book, self.live, self.catalog, self.cfg = book, live, catalog, cfg
        self.busy = busy  # ingest runs flat out: passes keep to ``projection_interval_busy``
        self.alerts, self.store, self.clock = alerts, store, clock
        self.publish = publish  # the stream and the sender, told after a pass (changed orders, machines, alerts)
        self.projection: Projection | None = None
        self.outlooks: dict[str, MachineOutlook] = {}
        self.summaries: dict[str, Summary] = {}
        self.findings: dict[str, OrderFinding] = {}  # order id (or "order/seq" for material) -> finding
        self.states: dict[str, RiskState] = {}
        self.repair_eta: dict[str, RepairEta] = {}  # machine -> repair ETA entered by maintenance
        self.mttr: dict[str, tuple[float, float | None]] = {}  # machine -> (measured at, MTTR)
        self.shares: dict[str, tuple[float, float]] = {}  # machine -> (measured at, availability)
        self._calendars: dict[tuple[int, tuple[tuple[float, float], ...]], Calendar] = {}
        self.machine_ops: dict[str, tuple[Any, ...]] = {}  # machine -> what its tile shows of its operation
        self.passes = 0
        self.held_back = 0  # looks at a due pass that found ingest flat out and waited (a second each)
        self.last_seconds = 0.0
        self._dirty = True
        self._urgent = asyncio.Event()  # a person's change: no pacing
        self._kick = asyncio.Event()  # something changed: a pass within the interval
        self._done = asyncio.Event()
        self._started = self._finished = 0  # passes begun and ended (failed ones included)
        book.listeners.append(self.on_book)

    # ----------------------------------------------------------------- triggers
    def on_book(self, changed: BookChanged) -> None:
        self._dirty = True
        self._kick.set()
        if changed.by_people:
            self._urgent.set()

    def on_round(self, rnd: Any) -> None:
        """An ingest round committed: machines or counts changed, re-project at the next pace."""
        if rnd.machines or rnd.tx.counts:
            self._dirty = True
            self._kick.set()

    async def settled(self) -> None:
        """Wait for the next pass to end (tests, and writes that answer with the new projection); bound it
        with ``asyncio.timeout`` where it matters."""
        need = self._started + 1  # a pass already running may have taken its snapshot before the caller's write
        self._urgent.set()
        self._kick.set()
        while self._finished < need:
            self._done.clear()
            await self._done.wait()

    async def load(self) -> None:
        """Risk memory after a restart: an active at-risk alert means raised."""
        for alert in self.alerts.active.values():
            if alert.rule is Rule.ORDER_AT_RISK:
                self.states[alert.subject] = RiskState(alert.since, raised=True)

    async def run(self) -> None:
        """Pass after pass: woken by a change (``_kick``), paced to one per interval unless ``_urgent``.

        The first pass comes one interval after the start (or at a person's change), not at once: a
        central restarting into a backlog is flat out by then and holds it back like any other (``_pace``)."""
        last = time.monotonic()
        self._kick.set()
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # coincides with the event (a shutdown right after a write would then wait forever)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, last + IDLE_EVERY - time.monotonic())):
                    await self._kick.wait()
            self._kick.clear()
            await self._pace(last)
            self._urgent.clear()
            last = time.monotonic()
            self._dirty = False
            self._started += 1
            try:
                await self.project_now()
            except Exception:
                log.exception("a projection pass failed (the next one tries again)")
                self._dirty = True
                self._kick.set()
            self._finished = self._started
            self._done.set()

    async def _pace(self, last: float) -> None:
        """Wait until the pass is due: ``projection_interval`` after the last one, or, while ingest runs
        flat out, up to ``projection_interval_busy``: a pass over thousands of operations takes CPU (and the
        GIL) from ingest exactly when a backlog is draining, and its findings then age in seconds anyway.
        A person's change (``_urgent``) never waits."""
        while not self._urgent.is_set():
            now = time.monotonic()
            due = last + self.cfg.projection_interval
            if now >= due:
                if not self.busy() or now >= last + self.cfg.projection_interval_busy:
                    return
                self.held_back += 1
                due = min(now + BUSY_CHECK, last + self.cfg.projection_interval_busy)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due - now):
                    await self._urgent.wait()

    # ----------------------------------------------------------------- one pass
    async def project_now(self) -> None:
        started = time.monotonic()
        snap = await self._snapshot()
        projection, result, summaries = await asyncio.to_thread(self._compute, snap, dict(self.summaries))
        tx = Transaction()
        self.alerts.order_round(to_evaluation(result, RULES), snap.now, tx, self.live)
        _group(tx)
        if not tx.empty():
            try:
                await self.store.commit(tx)
            except Exception:
                await self.alerts.reload()  # its in-memory alerts ran ahead of the failed commit
                raise
            for alert in tx.alerts.values():  # committed: also if an ingest round's reload ran meanwhile
                if alert.active:
                    self.alerts.active[alert.key] = alert
        self.projection, self.states, self.outlooks = projection, dict(result.states), snap.outlooks
        changed = [s for oid, s in summaries.items() if not s.same(self.summaries.get(oid))]
        self.summaries = summaries
        self.findings = {f.subject: f for f in result.findings}
        machines = self._machine_changes()
        self.passes += 1
        self.last_seconds = time.monotonic() - started
        if self.publish is not None:
            self.publish(changed, machines, tx)

    async def _snapshot(self) -> Snapshot:
        now = self.clock()
        book = self.book
        outlooks: dict[str, MachineOutlook] = {}
        machines = set(self.catalog.configured_ids()) | set(book.book) | {
            q for q in book.plan.dispatch if not q.startswith("wc:")}
        running = book.running()
        on_machine = {m: k for k, ms in running.items() for m in ms}
        budget = [MEASURE_PER_PASS]
        for machine_id in machines:
            info = self.catalog.machine(machine_id)
            st = self.live.statuses.get(machine_id)
            state = st.state if st is not None else None
            mean = await self._mttr(machine_id, now) if state is MachineState.FAULT else None
            eta = self.repair_eta.get(machine_id)
            down = down_until(state, st.since if st else None, now, eta=eta.until if eta else None,
                              eta_at=eta.at if eta else None, mean=mean, default=self.cfg.default_repair)
            setup_left = None
            key = on_machine.get(machine_id)
            if st is not None and state is MachineState.SETUP and key is not None and st.since is not None:
                setup_left = max(0.0, book.plan.operations[key].setup_time - (now - st.since))
            busy = machine_id in book.plan.dispatch or (info.work_centre is not None
                                                         and "wc:" + info.work_centre in book.plan.dispatch)
            share = await self._availability(machine_id, now, budget) if busy else 1.0
            outlooks[machine_id] = MachineOutlook(machine_id, self.calendar(machine_id), share,
                                                  info.work_centre, down, setup_left)
        historic = frozenset(m for m, old in self.alerts.track.historic.items() if old)
        return Snapshot(now, book.plan, book.all_parts(), running, outlooks, dict(self.states), historic)

    def calendar(self, machine_id: str) -> Calendar:
        """The machine's shift calendar with the configured overtime (``orders.overtime``): one object per
        line and overtime set, so the projection compiles each once."""
        base = self.catalog.calendar(machine_id)
        line = self.catalog.machine(machine_id).line
        spans = tuple((o.start, o.end) for o in self.cfg.overtime
                      if machine_id in o.machines or (line is not None and line in o.lines))
        if not spans:
            return base
        key = (id(base), spans)
        found = self._calendars.get(key)
        if found is None:
            found = self._calendars[key] = Overtime(base, spans)
        return found

    async def _availability(self, machine_id: str, now: float, budget: list[int]) -> float:
        """The machine's running share of its planned time over ``orders.availability_hours`` (1.0 with less
        than an hour of evidence), refreshed every ``MTTR_REFRESH`` seconds: the projection's long-run rate.

        At most ``budget[0]`` machines are measured per pass (it reads their history on the event loop
        ingest runs on); the others keep their last figure (1.0 before the first) until a later pass."""
        known = self.shares.get(machine_id)
        if known is not None and now - known[0] < MTTR_REFRESH:
            return known[1]
        if budget[0] <= 0:
            return known[1] if known is not None else 1.0
        budget[0] -= 1
        info = self.catalog.machine(machine_id)
        window = self.cfg.availability_hours * 3600.0
        intervals = await self.store.intervals(machine_id, now - window, now)
        report = downtime(intervals, now - window, now, calendar=self.catalog.calendar(machine_id),
                          micro_stop_threshold=info.micro_stop_threshold, machine_id=machine_id)
        share = availability(report)
        self.shares[machine_id] = (now, share)
        return share

    async def _mttr(self, machine_id: str, now: float) -> float | None:
        known = self.mttr.get(machine_id)
        if known is not None and now - known[0] < MTTR_REFRESH:
            return known[1]
        info = self.catalog.machine(machine_id)
        intervals = await self.store.intervals(machine_id, now - MTTR_WINDOW, now)
        report = downtime(intervals, now - MTTR_WINDOW, now, calendar=self.catalog.calendar(machine_id),
                          micro_stop_threshold=info.micro_stop_threshold, machine_id=machine_id)
        mean = reliability(report).mttr
        self.mttr[machine_id] = (now, mean)
        return mean

    def _compute(self, snap: Snapshot, before: dict[str, Summary]
                 ) -> tuple[Projection, DelayResult, dict[str, Summary]]:
        """The CPU part of a pass (in a worker thread, so the API and ingest stay responsive): projection,
        delay rules and the summaries, on the snapshot only."""
        cycles = {key: rate(snap.plan.operations[key].ideal_cycle_time, tally).running_seconds_per_good
                  for key, tally in snap.parts.items() if key in snap.plan.operations and tally.total > 0}
        projection = project(snap.plan, snap.outlooks, snap.now, tallies=snap.parts, cycle_times=cycles,
                             running=snap.running, horizon=self.cfg.horizon_days * 86_400.0)

        def calendar_of(order_id: str) -> Calendar:
            order = snap.plan.orders[order_id]
            last = snap.plan.operations[(order_id, order.seqs[-1])]
            machine = last.machine or next((m for m, o in snap.outlooks.items() if o.work_centre == last.work_centre),
                                           None)
            return snap.outlooks[machine].calendar if machine in snap.outlooks else self.catalog.calendar("")

        result = evaluate(snap.plan, projection, snap.states, snap.now, config=self.cfg.delay(),
                          historic_machines=snap.historic, calendar_of=calendar_of)
        return projection, result, self._summaries(snap, projection, result, before)

    @staticmethod
    def _summaries(snap: Snapshot, projection: Projection, result: DelayResult,
                   before: dict[str, Summary]) -> dict[str, Summary]:
        findings = {f.subject: f for f in result.findings if f.rule is not OrderRule.MATERIAL}
        finishes = {k: finite(p.finish) for k, p in projection.ops.items()}
        rates: dict[OpKey, Rate] = {}
        out: dict[str, Summary] = {}
        for oid, order in snap.plan.orders.items():
            old = before.get(oid)
            if old is not None and order.status.value != "open" and old.status == order.status.value:
                out[oid] = old  # a finished or cancelled order's figures stay as they were (a done plan is large)
                continue
            progress = order_progress(snap.plan, oid, snap.parts, rates, snap.now, finishes=finishes)
            finding = findings.get(oid)
            eta = finite(projection.orders.get(oid)) if order.status.value == "open" else None
            out[oid] = Summary(oid, order.status.value, progress.percent, progress.finished, eta,
                               finding is not None and finding.rule is OrderRule.AT_RISK,
                               finding is not None and finding.rule is OrderRule.OVERDUE, finding)
        return out

    # ----------------------------------------------------------------- machine tiles
    def operation_view(self, machine_id: str) -> dict[str, Any] | None:
        """``{order_id, seq, name, percent, eta, at_risk}`` of what runs on the machine (the status board)."""
        key = self.book.running_on(machine_id)
        op = self.book.plan.operations.get(key) if key is not None else None
        if key is None or op is None:
            return None
        parts = self.book.parts(key)
        p = self.projection.ops.get(key) if self.projection is not None else None
        summary = self.summaries.get(key[0])
        return {"order_id": key[0], "seq": key[1], "name": op.name, "status": op.status.value,
                "percent": round(100.0 * parts.good / op.quantity, 1) if op.quantity else 0.0,
                "good": parts.good, "quantity": op.quantity, "eta": finite(p.finish) if p is not None else None,
                "at_risk": bool(summary and (summary.at_risk or summary.overdue))}

    def _machine_changes(self) -> set[str]:
        changed: set[str] = set()
        machines = set(self.book.book) | set(self.machine_ops)
        for machine_id in machines:
            view = self.operation_view(machine_id)
            sig = tuple(sorted(view.items())) if view is not None else ()
            if self.machine_ops.get(machine_id) != sig:
                self.machine_ops[machine_id] = sig
                changed.add(machine_id)
        return changed


def _group(tx: Transaction) -> None:
    """Orders that open at risk (or overdue) together for one cause on one machine: one notification.

    The first order's notification carries the group (every order named in its message and
    ``details.orders``); the others' alerts are recorded as usual and send nothing of their own.
    """
    groups: dict[tuple[str, object, object], list[int]] = {}
    for i, n in enumerate(tx.notifications):
        if n.kind is TransitionKind.OPENED and n.rule in (Rule.ORDER_AT_RISK, Rule.ORDER_OVERDUE):
            groups.setdefault((n.rule.value, n.details.get("cause"), n.details.get("machine")), []).append(i)
    drop: set[str] = set()
    for indices in groups.values():
        if len(indices) < 2:
            continue
        first = tx.notifications[indices[0]]
        orders = sorted(tx.notifications[i].subject for i in indices)
        listed = ", ".join(orders)
        cause = first.details.get("cause")
        machine = first.details.get("machine")
        where_zh = f"，设备 {machine}" if machine else ""
        where_en = f" on {machine}" if machine else ""
        late = "有延期风险" if first.rule is Rule.ORDER_AT_RISK else "已逾期"
        message = Texts(f"{len(orders)} 个工单{late}（同一原因 {cause}{where_zh}）：{listed}",
                        f"{len(orders)} orders {'at risk' if first.rule is Rule.ORDER_AT_RISK else 'overdue'} "
                        f"for one cause ({cause}{where_en}): {listed}")
        tx.notifications[indices[0]] = replace(first, message=message,
                                               details={**first.details, "orders": listed, "grouped": len(orders)})
        drop |= {tx.notifications[i].id for i in indices[1:]}
    if drop:
        tx.notifications = [n for n in tx.notifications if n.id not in drop]
        tx.deliveries = [d for d in tx.deliveries if d.notification_id not in drop]
