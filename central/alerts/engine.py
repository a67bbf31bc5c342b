"""Alerts inside ingest rounds: rules and lifecycle (central/alerts) wired to live state and the store.

The engine runs *inside* a round, before its commit: the alert changes, their notification
records and one delivery row per notification and receiver go into the round's transaction
(a transactional outbox), so a crash never loses a notification and never sends one for a
change that was not committed. The sender (central/alerts/sender.py) delivers the rows later.

People's actions (acknowledge, resolve) run through the same lifecycle and are committed in a
transaction of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from central.alerts.alert import Alert
from central.alerts.conditions import ORDER_RULES, AlertKey, Evaluation, combine
from central.alerts.config import AlertsConfig
from central.alerts.lifecycle import Reconciled, acknowledge, reconcile, resolve
from central.alerts.rules import AlertRules, GapFacts, GatewayFacts, MachineFacts, gap_subject
from central.alerts.targets import WebhookTarget, wants
from central.ingest.applier import Round
from central.ingest.live import LiveState
from central.progress.machines import Catalog
from central.store.base import Store
from central.store.records import Delivery, Transaction
from plantpulse.protocol.models import MachineState

log = logging.getLogger(__name__)

MQTT_TARGET = "mqtt"


class UnknownAlertError(KeyError):
    """No alert with that id."""


@dataclass
class _Tracking:
    stopped_since: dict[str, float] = field(default_factory=dict)  # machine -> when it stopped running
    dropped: dict[str, int] = field(default_factory=dict)  # gateway -> dropped counter last seen
    dropped_rose_at: dict[str, float] = field(default_factory=dict)
    gaps: dict[str, GapFacts] = field(default_factory=dict)  # recent gaps and gaps with an alert
    # machine -> its status comes from historic events (a backlog), until a live event or its
    # gateway caught up: alerts from it are recorded but page nobody
    historic: dict[str, bool] = field(default_factory=dict)


class AlertEngine:
    def __init__(
        self, cfg: AlertsConfig, catalog: Catalog, webhooks: list[WebhookTarget], store: Store,
        *, clock: Callable[[], float], scope: Callable[[Alert], bool] | None = None,
        machine_scope: Callable[[str], bool] | None = None,
    ) -> None:
        """``scope`` and ``machine_scope``: an ingest worker's alerts are those of its gateways and their
        machines (the live view holds the others' machines too, as last committed)."""
        self.cfg = cfg
        self.scope = scope
        self.machine_scope = machine_scope
        self.rules = AlertRules(cfg, catalog)
        self.webhooks = webhooks
        self.store = store
        self.clock = clock
        self.active: dict[AlertKey, Alert] = {}
        self.track = _Tracking()
        self.changed: list[Alert] = []  # alerts changed in the last round (for the live stream)

    async def reload(self) -> None:
        """Back to what the store holds: a round failed before its commit, its alert changes never happened.

        Timers of the rules (since when a machine stopped, recent gaps) start again from the
        next round, as after a restart.
        """
        self.active = {}
        self.track = _Tracking()
        self.changed = []
        await self.load()

    async def refresh(self) -> None:
        """Re-read the active alerts (someone acknowledged or resolved one in another process), keeping the
        rules' timers: unlike ``reload``, nothing in memory ran ahead of the store."""
        self.active = {}
        await self.load()

    async def load(self) -> None:
        for alert in await self.store.active_alerts():
            if self.scope is not None and not self.scope(alert):
                continue
            self.active[alert.key] = alert
            if alert.historic and alert.live_at is None and alert.rule.subject_kind.value == "machine":
                self.track.historic[alert.subject] = True  # still history until live facts come

    # ----------------------------------------------------------------- inside a round
    def on_round(self, rnd: Round, live: LiveState, now: float, *, complete: bool) -> None:
        """Evaluate what the round touched (or everything, on the periodic tick) and reconcile."""
        self.changed = []
        historic = self._update_historic(rnd, live)
        for mid in rnd.machines:
            self._track_stop(live, mid)
        for edge_id in rnd.gateways:
            self._track_dropped(live, edge_id, now)
        for gap in rnd.gaps:
            facts = GapFacts.from_gap(gap, now)
            self.track.gaps[facts.gap_id] = facts
        self._forget_old_gaps(now)
        self._replay_steps(rnd, live, now)
        if complete:
            evaluation = self.rules.everything(
                now,
                [self._machine_facts(live, mid, historic) for mid in live.statuses
                 if self.machine_scope is None or self.machine_scope(mid)],
                [self._gateway_facts(live, gid) for gid in live.gateways],
                list(self.track.gaps.values()),
            )
        else:
            parts: list[Evaluation] = [
                self.rules.machine(self._machine_facts(live, mid, historic), now) for mid in sorted(rnd.machines)
            ]
            parts += [self.rules.gateway(self._gateway_facts(live, gid), now) for gid in sorted(rnd.gateways)]
            if rnd.gaps:
                fresh = [self.track.gaps[gap_subject(g)] for g in rnd.gaps if gap_subject(g) in self.track.gaps]
                parts.append(self.rules.gaps(fresh, now))
            if not parts:
                return
            evaluation = combine(parts)
        self._record(reconcile(self._plant_alerts(), evaluation, now, escalation=self.cfg.escalation), rnd.tx, live)

    def _plant_alerts(self) -> list[Alert]:
        """Active alerts of the machine, gateway and gap rules: the order rules are the projector's to judge
        (a complete evaluation here would resolve them)."""
        return [a for a in self.active.values() if a.rule not in ORDER_RULES]

    def order_round(self, evaluation: Evaluation, now: float, tx: Transaction, live: LiveState) -> None:
        """Reconcile the order rules' evaluation (central/orders/projector.py) into ``tx``."""
        self.changed = []
        orders = [a for a in self.active.values() if a.rule in ORDER_RULES]
        self._record(reconcile(orders, evaluation, now, escalation=self.cfg.escalation), tx, live)

    def _replay_steps(self, rnd: Round, live: LiveState, now: float) -> None:
        """Walk the round's state changes in order, each at its own time, before judging the present.

        During a catch-up one round holds minutes of a machine's history: a fault that started and
        ended inside it must still open (and resolve) its alert, recorded as historic when old.
        A machine's last change in the round is judged with the present, below.
        """
        last = {mid: i for i, (mid, *_) in enumerate(rnd.steps)}
        for i, (mid, status, at, historic) in enumerate(rnd.steps):
            if i == last[mid]:
                continue
            when = min(at, now)
            facts = MachineFacts(status, self.track.stopped_since.get(mid), historic)
            evaluation = self.rules.machine(facts, when)
            self._record(reconcile(self._plant_alerts(), evaluation, when, escalation=self.cfg.escalation),
                         rnd.tx, live)

    def _record(self, result: Reconciled, tx: Transaction, live: LiveState) -> None:
        for change in result.changes:
            alert = change.alert
            if alert.active:
                self.active[alert.key] = alert
            elif self.active.get(alert.key) is not None and self.active[alert.key].id == alert.id:
                del self.active[alert.key]
            tx.alerts[alert.id] = alert
            self.changed.append(alert)
        for n in result.notifications:
            tx.notifications.append(n)
            site = self._site(live, n.rule.subject_kind.value, n.subject)
            tx.deliveries.append(Delivery(n.id, MQTT_TARGET, site, next_at=n.at))
            for target in self.webhooks:
                if wants(target, n):
                    tx.deliveries.append(Delivery(n.id, target.name, site, next_at=n.at))

    # ----------------------------------------------------------------- people
    async def act(self, alert_id: str, action: str, *, by: str, note: str | None, live: LiveState) -> Alert:
        """Acknowledge or resolve; raises UnknownAlertError, or AlertError with the reason it cannot."""
        alert = next((a for a in self.active.values() if a.id == alert_id), None)
        if alert is None:
            alert = await self.store.alert(alert_id)
        if alert is None:
            raise UnknownAlertError(alert_id)
        now = self.clock()
        result = acknowledge(alert, by=by, note=note, now=now) if action == "ack" else resolve(
            alert, by=by, note=note, now=now
        )
        tx = Transaction()
        self._record(result, tx, live)
        await self.store.commit(tx)
        return tx.alerts.get(alert.id, alert)

    # ----------------------------------------------------------------- facts
    def _update_historic(self, rnd: Round, live: LiveState) -> dict[str, bool]:
        """Per machine: does its status come from historic events only (a backlog being applied)?

        A round whose events for a machine are all historic makes it historic; a live event, or
        its gateway having caught up (nothing held, every announced seq applied), makes it live:
        a fault still standing after the backlog is a fault now, and pages.
        """
        seen: dict[str, bool] = {}
        for item in rnd.applied:
            mid = item.applied.event.machine_id
            seen[mid] = seen.get(mid, True) and item.historic
        self.track.historic.update(seen)
        for mid in [m for m, old in self.track.historic.items() if old and m not in seen]:
            if self._caught_up(live, live.machine_gateway.get(mid)):
                self.track.historic[mid] = False
        return self.track.historic

    @staticmethod
    def _caught_up(live: LiveState, edge_id: str | None) -> bool:
        gw = live.gateways.get(edge_id) if edge_id else None
        seq = live.sequencers.get(edge_id) if edge_id else None
        if gw is None or seq is None or not gw.online:
            return False
        return seq.progress().caught_up(gw.latest_seq)

    def _track_stop(self, live: LiveState, mid: str) -> None:
        st = live.statuses.get(mid)
        if st is None or st.state is None:
            return
        if st.state is MachineState.RUNNING:
            self.track.stopped_since.pop(mid, None)
        elif mid not in self.track.stopped_since and st.since is not None:
            self.track.stopped_since[mid] = st.since

    def _track_dropped(self, live: LiveState, edge_id: str, now: float) -> None:
        gw = live.gateways.get(edge_id)
        if gw is None:
            return
        before = self.track.dropped.get(edge_id)
        if before is not None and gw.dropped_total > before:
            self.track.dropped_rose_at[edge_id] = now
        self.track.dropped[edge_id] = gw.dropped_total

    def _forget_old_gaps(self, now: float) -> None:
        hold = self.rules.gateway_limits.gap_hold
        with_alert = {a.subject for a in self.active.values()}
        for gid in [g for g, f in self.track.gaps.items() if now - f.recorded_at > hold and g not in with_alert]:
            del self.track.gaps[gid]

    def _machine_facts(self, live: LiveState, mid: str, historic: dict[str, bool]) -> MachineFacts:
        return MachineFacts(live.statuses[mid], self.track.stopped_since.get(mid), historic.get(mid, False))

    def _gateway_facts(self, live: LiveState, edge_id: str) -> GatewayFacts:
        gw = live.gateways[edge_id]
        return GatewayFacts(
            edge_id, gw.online, gw.changed_at, gw.skew, gw.dropped_total, self.track.dropped_rose_at.get(edge_id),
            tuple(live.machines_of(edge_id)),
        )

    def _site(self, live: LiveState, kind: str, subject: str) -> str | None:
        if kind == "machine":
            edge = live.machine_gateway.get(subject)
        elif kind == "gateway":
            edge = subject
        elif kind in ("order", "operation", "shift"):
            return None  # an order belongs to no gateway: every site's receivers hear of it
        else:
            edge = subject.split(":", 1)[0]
        gw = live.gateways.get(edge) if edge else None
        return gw.site if gw else None
