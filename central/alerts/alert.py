"""An alert and its history: the record people see, acknowledge and resolve (docs/alerts.md, "Lifecycle").

::

                 acknowledge (who, note)            condition clears / resolve by hand
      open  ─────────────────────────────▶  acknowledged  ─────────────────────────▶  resolved
        │  ▲ escalated (level +1 per period,                                            ▲
        │  │ while unacknowledged, up to a max)                                         │
        └──┴──────────── condition clears / resolve by hand / superseded ───────────────┘

Every step is a ``Transition`` appended to the alert's ``history`` (time, actor, note), so the
history is complete by construction. An alert resolved by hand while its condition still holds
keeps ``condition_active``: it stays *active* (it holds its key) until the condition clears, so
the same occurrence never opens a second alert and pages people again.

Errors (both ``ValueError`` so an API maps them to one response)::

    AlertError              a request the alert cannot take (bad actor, note too long)
     └── TransitionError  the alert is not in a state that allows it (already resolved ...)
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, replace

from central.alerts.conditions import AlertKey, Condition, Detail, Rule, Severity, Texts


class AlertError(ValueError):
    """An acknowledge or resolve request the alert cannot take; the message says why."""


class TransitionError(AlertError):
    """The alert's status does not allow the requested step (e.g. acknowledging a resolved alert)."""


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class TransitionKind(enum.StrEnum):
    OPENED = "opened"
    CONFIRMED = "confirmed"  # a historic alert's condition was confirmed by live facts: it pages now
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLEARED = "cleared"  # the condition of an alert resolved by hand has cleared (no page)


NOTIFYING = frozenset(
    {TransitionKind.OPENED, TransitionKind.CONFIRMED, TransitionKind.ESCALATED, TransitionKind.ACKNOWLEDGED,
     TransitionKind.RESOLVED}
)


class Resolution(enum.StrEnum):
    CLEARED = "cleared"  # the condition is no longer true
    MANUAL = "manual"  # a person resolved it
    SUPERSEDED = "superseded"  # a new occurrence of the same key replaced it (e.g. another fault code)


SYSTEM = None
"""The actor of automatic transitions."""


@dataclass(frozen=True, slots=True)
class Transition:
    kind: TransitionKind
    at: float
    actor: str | None = SYSTEM
    note: str | None = None
    level: int | None = None  # the new level, for ``escalated``
    resolution: Resolution | None = None  # for ``resolved``
    notified: bool = False  # a notification record was written with it


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence of a condition, from the moment it opened to the moment it resolved.

    ``historic``: opened from facts older than the ingest's historic age; it pages nobody
    (until live facts confirm it, which sets ``live_at``). ``live_at`` is when it started
    paging: escalation counts from there. Times are Unix seconds on central's axis.
    """

    id: str
    rule: Rule
    subject: str
    severity: Severity
    message: Texts
    details: dict[str, Detail]
    since: float | None
    episode: str | None
    opened_at: float
    historic: bool = False
    live_at: float | None = None
    status: AlertStatus = AlertStatus.OPEN
    level: int = 0
    escalated_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    ack_note: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolve_note: str | None = None
    resolution: Resolution | None = None
    condition_active: bool = True
    history: tuple[Transition, ...] = field(default_factory=tuple)

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.rule, self.subject)

    @property
    def active(self) -> bool:
        """Holds its key: not resolved, or resolved by hand while the condition still holds.

        The store passes every active alert to ``reconcile`` (``status != 'resolved' OR
        condition_active``).
        """
        return self.status is not AlertStatus.RESOLVED or self.condition_active


def alert_id(condition: Condition, opened_at: float) -> str:
    """A deterministic id: the same condition opened at the same instant gets the same id."""
    text = "|".join(
        (condition.rule.value, condition.subject, str(condition.episode), repr(condition.since), repr(opened_at))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def opened(condition: Condition, now: float, *, historic: bool) -> Alert:
    alert = Alert(
        id=alert_id(condition, now), rule=condition.rule, subject=condition.subject, severity=condition.severity,
        message=condition.message, details=dict(condition.details), since=condition.since,
        episode=condition.episode, opened_at=now, historic=historic, live_at=None if historic else now,
    )
    return step(alert, Transition(TransitionKind.OPENED, now, notified=not historic))


def step(alert: Alert, transition: Transition, **changes: object) -> Alert:
    """The alert after ``transition`` (appended to its history) and the field ``changes``."""
    return replace(alert, history=(*alert.history, transition), **changes)  # type: ignore[arg-type]  # field names checked by dataclasses.replace at run time
