"""The shift summary task: at each shift's end, build the summary, keep it, and send it once (issue 13).

Every ``interval`` seconds it asks ``windows.ended`` which shift windows ended since it last looked
(after a restart: since the last summary kept, at most a week back; on a new store: from now, so
a first start does not send a week of history). For each window not in the store yet it builds
the summary (``progress.summary.shift_summary`` over the book, the projector's findings, downtime
with the stop reasons people gave, OEE per line) and commits, in one transaction, the summary row
and its notification with a delivery per receiver (the alert outbox: MQTT and the webhooks whose
``shift_summaries`` is on). The summary's id is the window's, the notification's id derives from
it: a crash between commit and send resends the same message once, a restart never builds a
second one. The sender delivers it like an alert's (retries, backoff, robots' rate).

It also withdraws repair ETAs whose machine runs again (an ETA is for one repair) and loads the
ETAs in force into the projector at start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from central.alerts.alert import AlertStatus, TransitionKind
from central.alerts.conditions import Rule, Severity
from central.alerts.engine import MQTT_TARGET
from central.alerts.notifications import Notification
from central.alerts.targets import wants
from central.orders.oee_window import Sources, machine_figures, machine_ids
from central.progress.downtime import DowntimeReport
from central.progress.oee import Oee, combine
from central.progress.orders import OrderStatus, Plan
from central.progress.stops import StopCause
from central.progress.summary import ShiftWindow, downtime_causes, shift_summary
from central.store.extra_records import ExtraWrites, RepairEta, SummaryRow
from central.store.records import Delivery, Transaction
from central.summaries.texts import summary_texts
from central.summaries.windows import ended

if TYPE_CHECKING:
    from central.alerts.sender import Sender
    from central.config import CentralConfig
    from central.orders.book import OrderBook
    from central.orders.projector import Projector


class Central(Sources, Protocol):
    """What the summaries read and write of central (``central.runtime.Central``), named here so that this
    module does not import the runtime that starts it."""

    @property
    def orders(self) -> OrderBook: ...
    @property
    def projector(self) -> Projector: ...
    @property
    def sender(self) -> Sender: ...
    @property
    def cfg(self) -> CentralConfig: ...

log = logging.getLogger(__name__)


def completed_at(central: Central) -> dict[str, float]:
    """Order id -> when its last operation completed (the completion seen, else its last segment's end)."""
    plan: Plan = central.orders.plan
    ends: dict[tuple[str, int], float] = {}
    for timeline in central.orders.book.values():
        for seg in timeline:
            if seg.end is not None:
                ends[seg.key] = max(seg.end, ends.get(seg.key, seg.end))
    out = {}
    for order in plan.orders.values():
        if order.status is not OrderStatus.DONE:
            continue
        times = [c.at for k, c in central.orders.completed.items() if k[0] == order.id]
        times += [ends[k] for k in order.op_keys() if k in ends]
        if times:
            out[order.id] = max(times)
    return out


def causes(reports: list[DowntimeReport], explained: dict[str, dict[StopCause, float]], top: int = 5
           ) -> list[dict[str, Any]]:
    """Top downtime causes with the idle time people explained moved to their reasons."""
    rows = downtime_causes(reports, top=100)
    by: dict[str, dict[str, Any]] = {r["cause"]: dict(r, machines=list(r["machines"])) for r in rows}
    for machine_id, given in explained.items():
        for cause, seconds in given.items():
            idle = by.get("idle")
            moved = min(seconds, idle["seconds"]) if idle is not None else 0.0
            if moved <= 0:
                continue
            assert idle is not None
            idle["seconds"] = round(idle["seconds"] - moved, 1)
            row = by.setdefault(cause.value, {"cause": cause.value, "seconds": 0.0, "machines": []})
            row["seconds"] = round(row["seconds"] + moved, 1)
            if machine_id not in row["machines"]:
                row["machines"] = sorted([*row["machines"], machine_id])
    ranked = sorted((r for r in by.values() if r["seconds"] > 0), key=lambda r: (-r["seconds"], r["cause"]))
    return ranked[:top]


async def build(central: Central, window: ShiftWindow) -> dict[str, Any]:
    """The summary of ``window`` (a line's machines and orders, or the whole plant)."""
    ids = [m for m in machine_ids(central) if window.line is None or central.catalog.machine(m).line == window.line]
    reports: list[DowntimeReport] = []
    explained: dict[str, dict[StopCause, float]] = {}
    lines: dict[str, list[Oee]] = {}
    for m in ids:
        fig = await machine_figures(central, m, window.start, min(window.end, central.clock()))
        reports.append(fig.report)
        explained[m] = fig.explained
        lines.setdefault(central.catalog.machine(m).line or "-", []).append(fig.oee)
    plan: Plan = central.orders.plan
    if window.line is not None:
        mine = set(ids)
        centres = {central.catalog.machine(m).work_centre for m in ids} - {None}
        keep = {o.order_id for o in plan.operations.values() if o.machine in mine or o.work_centre in centres}
        plan = Plan({k: v for k, v in plan.orders.items() if k in keep}, plan.operations, plan.dispatch)
    findings = [f for f in central.projector.findings.values() if f.subject in plan.orders]
    summary = shift_summary(window, plan, completed_at=completed_at(central), findings=findings, downtime=reports,
                            oee_by_line={li: combine(rs, subject=li) for li, rs in lines.items()})
    summary["downtime"] = causes(reports, explained)
    return summary


def notification(summary_id: str, summary: dict[str, Any], central: Central, at: float) -> Notification:
    texts = summary_texts(summary, central.sender.tz)
    return Notification(
        id=f"summary:{summary_id}.0-opened", alert_id=f"summary:{summary_id}", kind=TransitionKind.OPENED, at=at,
        rule=Rule.SHIFT_SUMMARY, subject=summary_id, severity=Severity.INFO, status=AlertStatus.RESOLVED, level=0,
        message=texts, details={}, since=None, opened_at=at)


class SummaryTask:
    def __init__(self, central: Central, *, interval: float = 10.0) -> None:
        self.central = central
        self.interval = interval
        self.sent = 0
        self._since: float | None = None

    async def load(self) -> None:
        """The repair ETAs in force, for the projector; where the last summary ended."""
        c = self.central
        for eta in await c.store.repair_etas():
            if eta.until is not None:
                c.projector.repair_eta[eta.machine_id] = eta
        last = await c.store.shift_summaries(limit=1)
        self._since = last[0].end if last else c.clock()

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.interval)

    async def step(self) -> int:
        """Send what is due; withdraw repair ETAs of machines that run again. Returns summaries sent."""
        c = self.central
        now = c.clock()
        if self._since is None:
            await self.load()
        assert self._since is not None
        sent = 0
        for due in ended(c.cfg.plant, self._since, now):
            if await c.store.shift_summary(due.id) is not None:
                continue
            summary = await build(c, due.window)
            n = notification(due.id, summary, c, now)
            tx = Transaction(extras=ExtraWrites(summaries=[SummaryRow(
                due.id, due.window.line, due.window.name, due.window.start, due.window.end, now, summary)]))
            tx.notifications.append(n)
            tx.deliveries.append(Delivery(n.id, MQTT_TARGET, None, next_at=now))
            for target in c.cfg.notify.webhooks:
                if wants(target, n):
                    tx.deliveries.append(Delivery(n.id, target.name, None, next_at=now))
            await c.store.commit(tx)
            sent += 1
            log.info("shift summary %s sent to %d receivers", due.id, len(tx.deliveries))
        self._since = now
        self.sent += sent
        if sent:
            c.sender.wake()
        await self._withdraw_stale_etas(now)
        return sent

    async def _withdraw_stale_etas(self, now: float) -> None:
        c = self.central
        for machine_id, eta in list(c.projector.repair_eta.items()):
            status = c.live.statuses.get(machine_id)
            if status is None or status.state is None or status.state.value != "running":
                continue
            del c.projector.repair_eta[machine_id]
            await c.store.commit(Transaction(extras=ExtraWrites(repairs=[RepairEta(
                machine_id, None, "plantpulse", now, f"withdrawn: running again (ETA was {eta.until:.0f})")])))
