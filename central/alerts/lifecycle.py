"""The alert lifecycle as pure functions: reconcile rules' findings with open alerts, and people's actions.

``reconcile`` is called by the ingest after every applied change (with the evaluation of the
subject it touched) and by a periodic tick (with a complete evaluation). It returns the alert
changes to write and the notification records to write *in the same transaction*
(transactional outbox). Rules, per key (rule, subject):

* a condition with no active alert opens one (at most one active alert per key);
* a judged key without a condition resolves its alert on its own (``cleared``);
* a condition whose ``episode`` differs from its alert's resolves that alert as ``superseded``
  and opens a new one; a condition that clears and comes back opens a new alert too;
* an open, live alert not acknowledged for ``escalation.after`` seconds rises to level 1, then
  one level per ``escalation.every`` seconds up to ``max_level`` (one level per period at most,
  also after central was down for hours);
* alerts opened from historic facts are recorded with ``historic=True`` and page nobody, neither
  when they open nor later; if live facts confirm the condition, the alert is ``confirmed`` and
  pages from then on.

O(a + c) for a alerts and c conditions (plus sorting the keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from central.alerts.alert import (
    Alert,
    AlertError,
    AlertStatus,
    Resolution,
    Transition,
    TransitionError,
    TransitionKind,
    opened,
    step,
)
from central.alerts.conditions import AlertKey, Condition, Evaluation
from central.alerts.config import EscalationConfig
from central.alerts.notifications import Notification, notification_for

NOTE_LIMIT = 1000  # characters
DEFAULT_ESCALATION = EscalationConfig()


@dataclass(frozen=True, slots=True)
class AlertChange:
    """Write ``alert`` (insert when ``created``); ``transitions`` are the steps this change appended."""

    alert: Alert
    created: bool
    transitions: tuple[Transition, ...]


class Reconciled(NamedTuple):
    changes: list[AlertChange]
    notifications: list[Notification]


class _Out:
    """Collects each alert's new state and transitions, and the notification records."""

    def __init__(self) -> None:
        self.changes: list[AlertChange] = []
        self.notifications: list[Notification] = []

    def record(self, before: Alert | None, after: Alert) -> None:
        known = len(before.history) if before is not None else 0
        if before is not None and before == after:
            return
        self.changes.append(AlertChange(after, before is None, after.history[known:]))
        for index in range(known, len(after.history)):
            if after.history[index].notified:
                self.notifications.append(notification_for(after, index))

    def result(self) -> Reconciled:
        return Reconciled(self.changes, self.notifications)


def reconcile(
    alerts: Iterable[Alert],
    evaluation: Evaluation | Iterable[Condition],
    now: float,
    historic: bool = False,
    *,
    escalation: EscalationConfig = DEFAULT_ESCALATION,
) -> Reconciled:
    """Bring the active ``alerts`` in line with ``evaluation`` at ``now``.

    ``alerts``: the active alerts (at least those of the keys the evaluation covers; inactive
    ones are ignored). A plain iterable of conditions is a complete evaluation. ``historic``:
    every condition counts as historic (the ingest applied a historic fact).
    """
    if not isinstance(evaluation, Evaluation):
        evaluation = Evaluation(tuple(evaluation), None)
    current: dict[AlertKey, Alert] = {}
    for given in alerts:
        if not given.active:
            continue
        other = current.setdefault(given.key, given)
        if other is not given:
            raise ValueError(
                f"two active alerts for {given.rule} {given.subject}: {other.id} and {given.id}; "
                "pass each alert once (the store must keep at most one active alert per rule and subject)"
            )
    found: dict[AlertKey, Condition] = {}
    for finding in evaluation.conditions:
        if found.setdefault(finding.key, finding) is not finding:
            raise ValueError(f"two conditions for {finding.rule} {finding.subject}: a rule must yield one per key")
    out = _Out()
    for key in sorted(current.keys() | found.keys()):
        alert, condition = current.get(key), found.get(key)
        if condition is None:
            if alert is None:
                continue
            if evaluation.judges(key):
                out.record(alert, _cleared(alert, now, Resolution.CLEARED))
            elif evaluation.covers(key):
                out.record(alert, _escalated(alert, now, escalation))
            continue
        is_historic = historic or condition.historic
        if alert is None:
            out.record(None, opened(condition, now, historic=is_historic))
        elif condition.episode != alert.episode:
            out.record(alert, _cleared(alert, now, Resolution.SUPERSEDED))
            out.record(None, opened(condition, now, historic=is_historic))
        elif alert.status is not AlertStatus.RESOLVED:  # resolved by hand: quiet until it clears
            out.record(alert, _escalated(_refreshed(alert, condition, now, is_historic), now, escalation))
    return out.result()


def _cleared(alert: Alert, now: float, resolution: Resolution) -> Alert:
    """The condition no longer holds (or was superseded): resolve, or end a hand-resolved alert's hold."""
    if alert.status is AlertStatus.RESOLVED:
        return step(alert, Transition(TransitionKind.CLEARED, now), condition_active=False)
    transition = Transition(TransitionKind.RESOLVED, now, resolution=resolution, notified=not alert.historic)
    return step(
        alert, transition, status=AlertStatus.RESOLVED, resolved_at=now, resolution=resolution,
        condition_active=False,
    )


def _refreshed(alert: Alert, condition: Condition, now: float, historic: bool) -> Alert:
    """The same occurrence still holds: confirm a historic alert by live facts, refresh what it says."""
    if alert.historic and not historic:
        alert = step(alert, Transition(TransitionKind.CONFIRMED, now, notified=True), historic=False, live_at=now)
    details = dict(condition.details)
    if (alert.message, alert.details, alert.severity) != (condition.message, details, condition.severity):
        alert = replace(alert, message=condition.message, details=details, severity=condition.severity)
    return alert


def escalation_due(alert: Alert, now: float, policy: EscalationConfig) -> bool:
    """Whether an open, live, unacknowledged alert should rise one level at ``now``."""
    if alert.status is not AlertStatus.OPEN or alert.live_at is None or alert.level >= policy.max_level:
        return False
    if alert.severity.rank < policy.min_severity.rank:
        return False
    if alert.level == 0 or alert.escalated_at is None:
        return now - alert.live_at >= policy.after
    return now - alert.escalated_at >= policy.period


def _escalated(alert: Alert, now: float, policy: EscalationConfig) -> Alert:
    if not escalation_due(alert, now, policy):
        return alert
    level = alert.level + 1
    return step(alert, Transition(TransitionKind.ESCALATED, now, level=level, notified=True), level=level,
                escalated_at=now)


# --------------------------------------------------------------------------- people's actions
def acknowledge(alert: Alert, *, by: str, note: str | None = None, now: float) -> Reconciled:
    """Someone takes the alert on: escalation stops; it still resolves when its condition clears."""
    by, note = _actor(by), _note(note)
    if alert.status is not AlertStatus.OPEN:
        raise TransitionError(f"alert {alert.id} is {_status_text(alert)}: only an open alert can be acknowledged")
    transition = Transition(TransitionKind.ACKNOWLEDGED, now, actor=by, note=note, notified=not alert.historic)
    after = step(
        alert, transition, status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by, ack_note=note
    )
    out = _Out()
    out.record(alert, after)
    return out.result()


def resolve(alert: Alert, *, by: str, note: str | None = None, now: float) -> Reconciled:
    """Someone resolves the alert by hand; while its condition holds it keeps its key (no new page)."""
    by, note = _actor(by), _note(note)
    if alert.status is AlertStatus.RESOLVED:
        raise TransitionError(f"alert {alert.id} is {_status_text(alert)}: there is nothing to resolve")
    transition = Transition(
        TransitionKind.RESOLVED, now, actor=by, note=note, resolution=Resolution.MANUAL, notified=not alert.historic
    )
    after = step(
        alert, transition, status=AlertStatus.RESOLVED, resolved_at=now, resolved_by=by, resolve_note=note,
        resolution=Resolution.MANUAL, condition_active=True,
    )
    out = _Out()
    out.record(alert, after)
    return out.result()


def _actor(by: str) -> str:
    name = by.strip()
    if not name or len(name) > 100:
        raise AlertError("say who acts: a non-empty name of at most 100 characters (e.g. the key's user name)")
    return name


def _note(note: str | None) -> str | None:
    if note is None or not note.strip():
        return None
    if len(note) > NOTE_LIMIT:
        raise AlertError(f"the note has {len(note)} characters: keep it to at most {NOTE_LIMIT}")
    return note.strip()


def _status_text(alert: Alert) -> str:
    if alert.status is AlertStatus.ACKNOWLEDGED:
        return f"already acknowledged by {alert.acknowledged_by}"
    if alert.status is AlertStatus.RESOLVED:
        who = f"by {alert.resolved_by}" if alert.resolved_by else f"on its own ({alert.resolution})"
        return f"already resolved {who}"
    return "open"

