"""What the alert rules say about the plant: conditions, keyed by (rule, subject), and evaluations.

A *condition* is one thing that is true now ("machine cnc-01 is in fault 101"); an *alert* is
what people see and act on (``lifecycle.py``). Rules produce conditions, the lifecycle turns
them into alerts. Keeping the two apart lets the rules stay stateless: they never need to know
which alerts are open.

An ``Evaluation`` also says which keys it *judged*. A key it judged without a condition is
false (its alert resolves); a key it could not judge (``unknown``: the facts are stale, e.g.
the machine's gateway is offline) or chose not to judge (``off_shift``: a shift-following rule
outside shift hours) leaves its alert untouched. That is how a long stop stays open overnight
without re-paging in the morning, and how a gateway outage does not resolve (or invent) a stall.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Lang = Literal["zh", "en"]
Detail = str | int | float | bool | None


class SubjectKind(enum.StrEnum):
    MACHINE = "machine"
    GATEWAY = "gateway"
    GAP = "gap"
    ORDER = "order"  # a work order id
    OPERATION = "operation"  # "<order id>/<seq>"
    SHIFT = "shift"  # "<line or plant>/<shift>/<start>": a shift summary (central/summaries/)


class Rule(enum.StrEnum):
    """Every alert rule (docs/alerts.md describes each one)."""

    FAULT = "fault"
    LONG_STOP = "long_stop"
    STALL = "stall"
    GATEWAY_OFFLINE = "gateway_offline"
    DATA_GAP = "data_gap"
    EVENTS_DROPPED = "events_dropped"
    CLOCK_SKEW = "clock_skew"
    ORDER_AT_RISK = "order_at_risk"  # work orders (issue 13): central/progress/delay.py, central/orders/
    ORDER_OVERDUE = "order_overdue"
    MATERIAL_SHORTAGE = "material_shortage"
    SHIFT_SUMMARY = "shift_summary"  # not an alert: the summary at a shift's end, sent through the same outbox

    @property
    def subject_kind(self) -> SubjectKind:
        return _SUBJECT_KIND[self]

    @property
    def follows_shifts(self) -> bool:
        """True for the rules judged only inside shift hours (long stop, stall)."""
        return self in (Rule.LONG_STOP, Rule.STALL)


_SUBJECT_KIND = {
    Rule.FAULT: SubjectKind.MACHINE,
    Rule.LONG_STOP: SubjectKind.MACHINE,
    Rule.STALL: SubjectKind.MACHINE,
    Rule.GATEWAY_OFFLINE: SubjectKind.GATEWAY,
    Rule.DATA_GAP: SubjectKind.GAP,
    Rule.EVENTS_DROPPED: SubjectKind.GATEWAY,
    Rule.CLOCK_SKEW: SubjectKind.GATEWAY,
    Rule.ORDER_AT_RISK: SubjectKind.ORDER,
    Rule.ORDER_OVERDUE: SubjectKind.ORDER,
    Rule.MATERIAL_SHORTAGE: SubjectKind.OPERATION,
    Rule.SHIFT_SUMMARY: SubjectKind.SHIFT,
}
MACHINE_RULES = tuple(r for r in Rule if r.subject_kind is SubjectKind.MACHINE)
GATEWAY_RULES = tuple(r for r in Rule if r.subject_kind is SubjectKind.GATEWAY)
ORDER_RULES = (Rule.ORDER_AT_RISK, Rule.ORDER_OVERDUE, Rule.MATERIAL_SHORTAGE)
"""Judged by the order projector (central/orders/), never by the ingest's machine and gateway rules."""


class Severity(enum.StrEnum):
    """How urgent an alert is; ordered (``rank``) so targets and escalation can filter by it."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Texts:
    """One text in simplified Chinese and in English."""

    zh: str
    en: str

    def get(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


class AlertKey(NamedTuple):
    """At most one open alert exists per key."""

    rule: Rule
    subject: str  # a machine id, a gateway id or a data gap id (see ``rule.subject_kind``)


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's finding: true now for ``subject``.

    ``episode`` tells occurrences of the same key apart while the condition holds: a machine
    that goes from fault 101 straight to fault 205 is a new fault, so the open alert is
    resolved as superseded and a new one opens. ``since`` is when the condition started, on
    central's time axis, when the facts say so. ``historic``: derived from facts older than the
    ingest's historic age (such an alert is recorded but pages nobody).
    """

    rule: Rule
    subject: str
    severity: Severity
    message: Texts
    since: float | None = None
    episode: str | None = None
    details: Mapping[str, Detail] = field(default_factory=dict)
    historic: bool = False

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.rule, self.subject)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Conditions found true, and which keys were judged at all.

    ``scope`` lists the keys this evaluation speaks about; ``None`` means it is complete: every
    key not found true, not ``unknown`` and not ``off_shift`` is false, also for subjects that
    no longer exist (a machine removed from the plant resolves its alerts).
    """

    conditions: tuple[Condition, ...] = ()
    scope: frozenset[AlertKey] | None = frozenset()
    unknown: frozenset[AlertKey] = frozenset()
    off_shift: frozenset[AlertKey] = frozenset()

    def covers(self, key: AlertKey) -> bool:
        """The evaluation speaks about ``key`` (its alert may escalate)."""
        return (self.scope is None or key in self.scope) and key not in self.off_shift

    def judges(self, key: AlertKey) -> bool:
        """The evaluation tells whether ``key`` is true (a missing condition then means false)."""
        return self.covers(key) and key not in self.unknown


def combine(evaluations: Iterable[Evaluation], *, complete: bool = False) -> Evaluation:
    """Merge evaluations of different subjects; ``complete``: together they describe everything."""
    conditions: list[Condition] = []
    scope: set[AlertKey] = set()
    unknown: set[AlertKey] = set()
    off_shift: set[AlertKey] = set()
    for ev in evaluations:
        conditions.extend(ev.conditions)
        if ev.scope is None and not complete:
            raise ValueError("a complete evaluation cannot be merged into a partial one: pass complete=True")
        scope.update(ev.scope or ())
        unknown.update(ev.unknown)
        off_shift.update(ev.off_shift)
    return Evaluation(
        tuple(conditions), None if complete else frozenset(scope), frozenset(unknown), frozenset(off_shift)
    )
