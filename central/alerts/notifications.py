"""Notification records: what the transactional outbox holds, one per transition that pages people.

The caller writes the alert change and its notification records in one transaction, then sends
them (webhooks, MQTT) and deletes or marks each after its receiver accepted it. A crash between
commit and send only means a resend, and a resend carries the same id: the id is derived from
the alert id and the transition's place in the alert's history (``<alert id>.<index>-<kind>``),
so a receiver can recognise it.

A record is a snapshot of the alert as the transition left it: the sender formats it for each
target (``notify_format.py``) without reading the alert again, so a later change of the alert
never alters what an earlier notification says. ``to_json`` / ``from_json`` store it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from central.alerts.alert import NOTIFYING, Alert, AlertStatus, Resolution, TransitionKind
from central.alerts.conditions import Detail, Rule, Severity, SubjectKind, Texts


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    alert_id: str
    kind: TransitionKind
    at: float
    rule: Rule
    subject: str
    severity: Severity
    status: AlertStatus
    level: int
    message: Texts
    details: dict[str, Detail]
    since: float | None
    opened_at: float
    actor: str | None = None
    note: str | None = None
    resolution: Resolution | None = None

    @property
    def subject_kind(self) -> SubjectKind:
        return self.rule.subject_kind


def notification_id(alert_id: str, index: int, kind: TransitionKind) -> str:
    return f"{alert_id}.{index}-{kind.value}"


def notification_for(alert: Alert, index: int = -1) -> Notification:
    """The record for the transition at ``index`` of the alert's history (default: the latest)."""
    position = index if index >= 0 else len(alert.history) + index
    transition = alert.history[position]
    if transition.kind not in NOTIFYING:
        raise ValueError(f"a {transition.kind} transition notifies nobody")
    return Notification(
        id=notification_id(alert.id, position, transition.kind), alert_id=alert.id, kind=transition.kind,
        at=transition.at, rule=alert.rule, subject=alert.subject, severity=alert.severity, status=alert.status,
        level=alert.level, message=alert.message, details=dict(alert.details), since=alert.since,
        opened_at=alert.opened_at, actor=transition.actor, note=transition.note, resolution=transition.resolution,
    )


_ADAPTER: TypeAdapter[Notification] = TypeAdapter(Notification)


def to_json(notification: Notification) -> dict[str, Any]:
    """A JSON-ready dict (for the outbox table); ``from_json`` reads it back unchanged."""
    data: dict[str, Any] = _ADAPTER.dump_python(notification, mode="json")
    return data


def from_json(data: object) -> Notification:
    return _ADAPTER.validate_python(data)
