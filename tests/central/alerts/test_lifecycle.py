"""The alert lifecycle on hand-made timelines: open, auto-resolve, escalate, acknowledge, resolve, historic."""

from __future__ import annotations

import pytest

from central.alerts.alert import Alert, AlertError, AlertStatus, Resolution, TransitionError, TransitionKind
from central.alerts.conditions import AlertKey, Condition, Evaluation, Rule, Severity, Texts
from central.alerts.config import EscalationConfig
from central.alerts.lifecycle import acknowledge, escalation_due, reconcile, resolve
from central.alerts.notifications import from_json, to_json
from tests.central.alerts.plant import Store

T = 1_800_000_000.0
ESC = EscalationConfig(after=900, every=1800, max_level=2)
K = TransitionKind


def fault(code: int = 101, subject: str = "cnc-01", **kw: object) -> Condition:
    return Condition(
        Rule.FAULT, subject, Severity.CRITICAL, Texts(f"故障 {code}", f"fault {code}"), since=T - 5,
        episode=str(code), details={"fault_code": code}, **kw,  # type: ignore[arg-type]
    )


def stop(subject: str = "cnc-01", severity: Severity = Severity.WARNING) -> Condition:
    return Condition(Rule.LONG_STOP, subject, severity, Texts("停机", "stopped"), since=T - 600)


class Plant(Store):
    def __init__(self) -> None:
        super().__init__(ESC)


def test_one_alert_per_condition_and_nothing_new_while_it_holds() -> None:
    plant = Plant()
    result = plant.tick([fault(), stop("press-01")], T)
    assert [c.created for c in result.changes] == [True, True]
    assert plant.kinds == [("cnc-01", K.OPENED), ("press-01", K.OPENED)]
    for later in (T + 1, T + 60, T + 899):
        assert plant.tick([fault(), stop("press-01")], later) == ([], [])
    alert = plant.one()
    assert (alert.status, alert.since, alert.opened_at, alert.live_at) == (AlertStatus.OPEN, T - 5, T, T)
    assert alert.message == Texts("故障 101", "fault 101") and alert.details == {"fault_code": 101}


def test_a_condition_that_clears_resolves_on_its_own_and_a_return_opens_a_new_alert() -> None:
    plant = Plant()
    plant.tick([fault()], T)
    first = plant.one()
    result = plant.tick([], T + 120)
    (change,) = result.changes
    assert change.alert.status is AlertStatus.RESOLVED and change.alert.resolution is Resolution.CLEARED
    assert change.alert.resolved_at == T + 120 and change.alert.resolved_by is None and not change.alert.active
    assert [t.kind for t in change.transitions] == [K.RESOLVED]
    assert [n.kind for n in result.notifications] == [K.RESOLVED]
    plant.tick([fault()], T + 300)
    second = plant.one()
    assert second.id != first.id and second.opened_at == T + 300
    assert plant.kinds == [("cnc-01", K.OPENED), ("cnc-01", K.RESOLVED), ("cnc-01", K.OPENED)]


def test_a_new_fault_code_supersedes_the_open_fault() -> None:
    plant = Plant()
    plant.tick([fault(101)], T)
    old = plant.one()
    plant.tick([fault(205)], T + 30)
    new = plant.one()
    assert new.id != old.id and new.episode == "205"
    assert plant.alerts[old.id].resolution is Resolution.SUPERSEDED
    assert plant.kinds[1:] == [("cnc-01", K.RESOLVED), ("cnc-01", K.OPENED)]


def test_facts_that_change_without_a_new_occurrence_refresh_the_alert_quietly() -> None:
    plant = Plant()
    plant.tick([stop()], T)
    idle_to_setup = Condition(Rule.LONG_STOP, "cnc-01", Severity.WARNING, Texts("停机（调机）", "stopped (setup)"))
    result = plant.tick([idle_to_setup], T + 10)
    (change,) = result.changes
    assert change.transitions == () and result.notifications == []
    assert plant.one(Rule.LONG_STOP).message.en == "stopped (setup)"


def test_escalation_once_per_period_up_to_the_maximum() -> None:
    plant = Plant()
    plant.tick([fault()], T)
    assert plant.tick([fault()], T + 899).changes == []
    result = plant.tick([fault()], T + 900)
    assert [(n.kind, n.level) for n in result.notifications] == [(K.ESCALATED, 1)]
    assert plant.tick([fault()], T + 900 + 1799).changes == []
    result = plant.tick([fault()], T + 900 + 1800)
    assert [(n.kind, n.level) for n in result.notifications] == [(K.ESCALATED, 2)]
    assert plant.tick([fault()], T + 86_400).changes == []  # max_level 2
    alert = plant.one()
    assert alert.level == 2 and alert.escalated_at == T + 2700
    assert [(t.kind, t.at, t.level) for t in alert.history] == [
        (K.OPENED, T, None), (K.ESCALATED, T + 900, 1), (K.ESCALATED, T + 2700, 2)
    ]


def test_after_a_long_outage_escalation_rises_one_level_per_period_not_all_at_once() -> None:
    plant = Plant()
    plant.tick([fault()], T)
    result = plant.tick([fault()], T + 10 * 3600)  # central was down for ten hours
    assert [n.level for n in result.notifications] == [1]
    assert plant.tick([fault()], T + 10 * 3600 + 60).notifications == []
    assert [n.level for n in plant.tick([fault()], T + 10 * 3600 + 1800).notifications] == [2]


def test_acknowledged_and_info_alerts_do_not_escalate() -> None:
    plant = Plant()
    plant.tick([fault(), stop("press-01", Severity.INFO)], T)
    plant.apply(acknowledge(plant.one(), by="张工", note="在路上", now=T + 60))
    assert plant.tick([fault(), stop("press-01", Severity.INFO)], T + 86_400).changes == []
    assert not escalation_due(plant.one(), T + 86_400, ESC)


def test_off_shift_keys_neither_resolve_nor_escalate_unknown_keys_still_escalate() -> None:
    plant = Plant()
    plant.tick([stop(), stop("press-01")], T)
    night = Evaluation(
        (), None, unknown=frozenset({AlertKey(Rule.LONG_STOP, "press-01")}),
        off_shift=frozenset({AlertKey(Rule.LONG_STOP, "cnc-01")}),
    )
    result = plant.tick(night, T + 3600)
    assert [(n.subject, n.kind) for n in result.notifications] == [("press-01", K.ESCALATED)]
    assert plant.one(Rule.LONG_STOP, "cnc-01").status is AlertStatus.OPEN


def test_a_partial_evaluation_leaves_other_keys_alone() -> None:
    plant = Plant()
    plant.tick([fault(), fault(subject="cnc-02")], T)
    only_cnc_01 = Evaluation((), frozenset({AlertKey(Rule.FAULT, "cnc-01")}))
    result = plant.tick(only_cnc_01, T + 5)
    assert [(c.alert.subject, c.alert.status) for c in result.changes] == [("cnc-01", AlertStatus.RESOLVED)]
    assert plant.one(Rule.FAULT, "cnc-02").status is AlertStatus.OPEN


# --------------------------------------------------------------------------- historic
def test_historic_alerts_are_recorded_but_page_nobody() -> None:
    plant = Plant()
    result = plant.tick([fault()], T, historic=True)
    (change,) = result.changes
    assert result.notifications == [] and change.alert.historic and change.alert.live_at is None
    assert change.alert.history[0].notified is False
    unknown = Evaluation((), None, unknown=frozenset({AlertKey(Rule.FAULT, "cnc-01")}))
    assert plant.tick(unknown, T + 86_400).changes == []  # no escalation of a historic alert
    plant.apply(acknowledge(plant.one(), by="张工", now=T + 100))  # acting on it pages nobody either
    result = plant.tick([], T + 200, historic=True)
    assert result.notifications == [] and result.changes[0].alert.status is AlertStatus.RESOLVED
    assert plant.sent == []
    per_condition = plant.tick([fault(historic=True)], T + 300)
    assert per_condition.notifications == [] and per_condition.changes[0].alert.historic


def test_a_historic_alert_confirmed_by_live_facts_pages_from_then_on() -> None:
    plant = Plant()
    plant.tick([fault()], T, historic=True)
    result = plant.tick([fault()], T + 50)
    assert [n.kind for n in result.notifications] == [K.CONFIRMED]
    alert = plant.one()
    assert not alert.historic and alert.live_at == T + 50
    assert plant.tick([fault()], T + 50 + 899).changes == []  # escalation counts from confirmation
    assert [n.kind for n in plant.tick([fault()], T + 50 + 900).notifications] == [K.ESCALATED]


# --------------------------------------------------------------------------- people
def test_acknowledge_records_who_and_why_and_notifies() -> None:
    plant = Plant()
    plant.tick([fault()], T)
    result = plant.apply(acknowledge(plant.one(), by=" 张工 ", note=" 换主轴轴承，预计 30 分钟 ", now=T + 60))
    alert = plant.one()
    assert (alert.status, alert.acknowledged_by, alert.ack_note, alert.acknowledged_at) == (
        AlertStatus.ACKNOWLEDGED, "张工", "换主轴轴承，预计 30 分钟", T + 60
    )
    (n,) = result.notifications
    assert (n.kind, n.actor, n.note) == (K.ACKNOWLEDGED, "张工", "换主轴轴承，预计 30 分钟")
    assert n.status is AlertStatus.ACKNOWLEDGED
    with pytest.raises(TransitionError, match="already acknowledged by 张工"):
        acknowledge(alert, by="李工", now=T + 61)
    result = plant.tick([], T + 1800)  # the fault clears: resolved on its own, with a notification
    assert [n.kind for n in result.notifications] == [K.RESOLVED]
    assert [t.kind for t in plant.alerts[alert.id].history] == [K.OPENED, K.ACKNOWLEDGED, K.RESOLVED]


def test_requests_that_cannot_be_taken_say_why() -> None:
    plant = Plant()
    plant.tick([fault()], T)
    alert = plant.one()
    with pytest.raises(AlertError, match="say who acts"):
        acknowledge(alert, by="  ", now=T)
    with pytest.raises(AlertError, match="at most 1000"):
        acknowledge(alert, by="张工", note="x" * 1001, now=T)
    plant.tick([], T + 10)
    with pytest.raises(TransitionError, match="already resolved on its own"):
        resolve(plant.alerts[alert.id], by="张工", now=T + 20)
    with pytest.raises(TransitionError, match="only an open alert"):
        acknowledge(plant.alerts[alert.id], by="张工", now=T + 20)


def test_resolved_by_hand_while_true_holds_its_key_until_the_condition_clears() -> None:
    plant = Plant()
    plant.tick([stop()], T)
    alert = plant.one(Rule.LONG_STOP)
    result = plant.apply(resolve(alert, by="班长", note="无工单，计划停机", now=T + 60))
    (n,) = result.notifications
    assert (n.kind, n.resolution, n.actor) == (K.RESOLVED, Resolution.MANUAL, "班长")
    held = plant.one(Rule.LONG_STOP)
    assert held.status is AlertStatus.RESOLVED and held.active and held.resolved_by == "班长"
    for later in (T + 61, T + 7200):  # still stopped: no new alert, no page, no escalation
        assert plant.tick([stop()], later) == ([], [])
    result = plant.tick([], T + 7300)  # it ran again: the hold ends quietly
    assert result.notifications == [] and [t.kind for t in result.changes[0].transitions] == [K.CLEARED]
    assert not plant.alerts[alert.id].active
    plant.tick([stop()], T + 9000)  # a new stop is a new alert
    assert plant.one(Rule.LONG_STOP).id != alert.id


def test_two_active_alerts_for_one_key_are_refused() -> None:
    plant = Plant()
    plant.tick([fault()], T)
    alert = plant.one()
    twin = Alert(**{**{f: getattr(alert, f) for f in alert.__dataclass_fields__}, "id": "twin"})
    with pytest.raises(ValueError, match="two active alerts for fault cnc-01"):
        reconcile([alert, twin], [fault()], T + 1)
    with pytest.raises(ValueError, match="two conditions for fault cnc-01"):
        reconcile([], [fault(), fault()], T)


# --------------------------------------------------------------------------- notification ids
def test_notification_ids_are_stable_and_derived_from_the_alert_and_transition() -> None:
    def run() -> list[str]:
        plant = Plant()
        plant.tick([fault()], T)
        plant.tick([fault()], T + 900)
        plant.apply(acknowledge(plant.one(), by="张工", now=T + 1000))
        plant.tick([], T + 2000)
        return plant.sent

    first, again = run(), run()
    assert first == again  # a resend after a crash carries the same ids
    alert_id = first[0].split(".")[0]
    assert first == [f"{alert_id}.0-opened", f"{alert_id}.1-escalated", f"{alert_id}.2-acknowledged",
                     f"{alert_id}.3-resolved"]
    assert len(set(first)) == 4


def test_notification_records_survive_the_outbox_unchanged() -> None:
    plant = Plant()
    (n,) = plant.tick([fault()], T).notifications
    data = to_json(n)
    assert data["id"] == n.id and data["kind"] == "opened" and data["message"] == {"zh": "故障 101", "en": "fault 101"}
    assert from_json(data) == n
