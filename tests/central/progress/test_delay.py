"""Delay alerts: at risk before the due time (with confirmation and hysteresis), overdue, material, and why."""

from __future__ import annotations

from central.alerts.alert import AlertStatus
from central.alerts.conditions import Rule
from central.alerts.lifecycle import reconcile
from central.progress.changes import cancel_order, create_order, set_shortage, set_status
from central.progress.delay import (
    Cause,
    DelayConfig,
    OrderRule,
    RiskState,
    evaluate,
    explain,
    group,
    step_risk,
    to_evaluation,
)
from central.progress.orders import OpStatus, Shortage
from central.progress.projection import DownCause, MachineOutlook, down_until, project
from plantpulse.protocol.models import MachineState
from tests.central.progress.orderkit import H, order_in, plan_of

CONFIG = DelayConfig(margin=3600.0, confirm=300.0, hysteresis=900.0, uncertainty=0.0)  # the rule's logic alone
# Stand-ins until ``Rule`` has the order rules (the lead adds them with central/alerts): the lifecycle
# only needs distinct keys.
RULES = {OrderRule.AT_RISK: Rule.LONG_STOP, OrderRule.OVERDUE: Rule.STALL, OrderRule.MATERIAL: Rule.DATA_GAP}


def test_a_rush_order_makes_another_late_at_risk_raised_before_due_then_resolved_by_cancelling_it() -> None:
    """A: 10 x 360 s on m1, due at 3 h (threshold 2 h). Rush R (10 x 540 s) goes ahead of it: A now ends at
    1.5 h + 1 h = 2.5 h, past the threshold. Raised after 5 min of confirmation (long before the due
    time), cause rush order ahead. Cancelling R brings A back to 1 h + now: resolved."""
    plan = plan_of(order_in("A", 3 * H, {"machine": "m1", "cycle": 360}))
    first = evaluate(plan, project(plan, {}, 0.0), {}, 0.0, config=CONFIG)
    assert first.findings == () and first.states == {"A": RiskState()}
    plan = create_order(plan, order_in("R", 10 * H, {"machine": "m1", "cycle": 540}), by="boss", now=60.0,
                        rush=True).plan
    assert plan.dispatch["m1"] == (("R", 10), ("A", 10))
    states = first.states
    alerts: list = []  # type: ignore[type-arg]
    raised_at = None
    for now in (60.0, 200.0, 360.0, 600.0):
        result = evaluate(plan, project(plan, {}, now), states, now, config=CONFIG)
        states = result.states
        changes = reconcile(alerts, to_evaluation(result, RULES), now)
        alerts = [c.alert for c in changes.changes] or alerts
        if result.findings and raised_at is None:
            raised_at = now
    assert raised_at == 360.0  # pending since 60, confirmed 300 s later
    assert raised_at < 3 * H
    assert states["A"] == RiskState(60.0, True)
    finding = evaluate(plan, project(plan, {}, 600.0), states, 600.0, config=CONFIG).findings[0]
    assert finding.why is not None
    assert (finding.why.cause, finding.why.operation, finding.why.machine, finding.why.rush_order) == (
        Cause.RUSH_AHEAD, ("R", 10), "m1", "R")
    assert finding.details["cause"] == "rush_order_ahead" and "R" in finding.message.en
    assert alerts and alerts[0].status is AlertStatus.OPEN and alerts[0].subject == "A"

    plan = cancel_order(plan, "R", by="boss", now=900.0).plan
    result = evaluate(plan, project(plan, {}, 900.0), states, 900.0, config=CONFIG)
    assert result.findings == () and result.states["A"] == RiskState()
    changes = reconcile(alerts, to_evaluation(result, RULES), 900.0)
    assert [c.alert.status for c in changes.changes] == [AlertStatus.RESOLVED]


def test_hysteresis_keeps_a_hovering_projection_from_flapping() -> None:
    plan = plan_of(order_in("A", 3 * H, {"machine": "m1", "cycle": 360}))  # finishes at now + 1 h
    raised = {"A": RiskState(0.0, True)}
    # threshold 2 h; finish at 1.8 h (now = 0.8 h) is below it but not below 2 h - 15 min: stays raised
    assert evaluate(plan, project(plan, {}, 0.8 * H), raised, 0.8 * H, config=CONFIG).states["A"].raised
    # at now = 0.7 h the finish (1.7 h) is below 1.75 h: resolved
    assert not evaluate(plan, project(plan, {}, 0.7 * H), raised, 0.7 * H, config=CONFIG).states["A"].raised
    # a single round past the threshold is only pending
    late = plan_of(order_in("A", 1.5 * H, {"machine": "m1", "cycle": 360}))
    once = evaluate(late, project(late, {}, 0.0), {}, 0.0, config=CONFIG)
    assert once.states["A"] == RiskState(0.0, False) and once.findings == ()
    back = plan_of(order_in("A", 9 * H, {"machine": "m1", "cycle": 360}))
    assert evaluate(back, project(back, {}, 100.0), once.states, 100.0, config=CONFIG).states["A"] == RiskState()


def test_a_fault_names_the_machine_and_the_operation_and_groups_orders() -> None:
    """m1 down for 4 h (MTTR) holds A's turning; B queued behind A on m1 is late for the same cause."""
    plan = plan_of(order_in("A", 4 * H, {"machine": "m1", "cycle": 60}, {"machine": "m2", "cycle": 60}),
                   order_in("B", 4 * H, {"machine": "m1", "cycle": 60}))
    now = 1000.0
    down = MachineOutlook("m1", down=down_until(MachineState.FAULT, now, now, mean=4 * H))
    projection = project(plan, {"m1": down}, now)
    why = explain(plan, projection, "A")
    assert (why.cause, why.operation, why.machine, why.down) == (Cause.FAULT, ("A", 10), "m1", DownCause.FAULT)
    assert why.lost == 4 * H
    states = {"A": RiskState(0.0, False), "B": RiskState(0.0, False)}
    result = evaluate(plan, projection, states, now, config=CONFIG)
    assert {f.subject for f in result.findings} == {"A", "B"}
    groups = group(result.findings)
    assert len(groups) == 1 and groups[0].orders == ("A", "B") and groups[0].cause is Cause.FAULT
    assert groups[0].machine == "m1"


def test_slow_rate_shift_end_and_load() -> None:
    plan = plan_of(order_in("A", 3 * H, {"machine": "m1", "cycle": 360}))
    slow = project(plan, {}, 0.0, cycle_times={("A", 10): 720.0})
    assert explain(plan, slow, "A").cause is Cause.SLOW_RATE
    assert explain(plan, project(plan, {}, 0.0), "A").cause is Cause.LOAD


def test_material_shortage_that_delays_an_operation_is_an_alert_and_the_cause() -> None:
    plan = plan_of(order_in("A", 5 * H, {"machine": "m1", "cycle": 60}, {"machine": "m2", "cycle": 60}))
    plan = set_shortage(plan, ("A", 20), Shortage(4.5 * H, "castings"), by="store", now=0.0).plan
    result = evaluate(plan, project(plan, {}, 0.0), {"A": RiskState(-600.0, False)}, 0.0, config=CONFIG)
    by_rule = {f.rule: f for f in result.findings}
    assert by_rule[OrderRule.MATERIAL].subject == "A/20" and by_rule[OrderRule.MATERIAL].details["delays_order"]
    assert by_rule[OrderRule.AT_RISK].why is not None and by_rule[OrderRule.AT_RISK].why.cause is Cause.MATERIAL


def test_overdue_and_history() -> None:
    plan = plan_of(order_in("A", 1 * H, {"machine": "m1", "cycle": 360}))
    now = 1.5 * H
    result = evaluate(plan, project(plan, {}, now), {}, now, config=CONFIG, historic_machines=frozenset({"m1"}))
    (finding,) = result.findings
    assert finding.rule is OrderRule.OVERDUE and finding.since == 1 * H and finding.historic
    opened = reconcile([], to_evaluation(result, RULES), now)
    assert opened.notifications == []  # historic: recorded, pages nobody
    done = set_status(plan, ("A", 10), OpStatus.DONE)  # the backlog shows it finished: nothing at all
    assert evaluate(done, project(done, {}, now), {}, now, config=CONFIG).findings == ()


def test_only_orders_on_a_machine_whose_backlog_is_applied_are_historic() -> None:
    """One gateway catching up must not silence the whole plant's delay alerts: an order with an open
    operation on a machine whose status comes from history is historic; the others page."""
    plan = plan_of(order_in("A", 1 * H, {"machine": "m1", "cycle": 360}),
                   order_in("B", 1 * H, {"machine": "m2", "cycle": 360}))
    now = 1.5 * H
    result = evaluate(plan, project(plan, {}, now), {}, now, config=CONFIG, historic_machines=frozenset({"m1"}))
    assert {f.subject: f.historic for f in result.findings} == {"A": True, "B": False}
    assert [n.subject for n in reconcile([], to_evaluation(result, RULES), now).notifications] == ["B"]


def test_a_projection_far_ahead_is_trusted_only_to_its_uncertainty_band() -> None:
    """Late by 20 minutes of work: noise when the finish is 10 h of work ahead (30% band: 3 h), a
    warning when it is 1 h ahead (band 18 min); measured in planned time, so a finish pushed over a
    night counts the minutes of work, not the hours of night."""
    config = DelayConfig(margin=0.0, confirm=0.0, hysteresis=0.0, uncertainty=0.3)
    flat = lambda a, b: max(0.0, b - a)  # noqa: E731 - planned around the clock
    due = 100 * H
    assert not step_risk(RiskState(), due + 1200, due, due - 10 * H, config, planned=flat).raised
    assert step_risk(RiskState(), due + 1200, due, due + 1200 - H, config, planned=flat).raised

    def nights(a: float, b: float) -> float:  # work only 06:00-22:00 of each day of H-seconds hours
        return sum(1.0 for t in range(int(a), int(b), 60) if 6 <= (t // H) % 24 < 22) * 60
    day = 24 * H
    evening_due = day + 21.5 * H
    next_morning = 2 * day + 6 * H + 600  # 40 planned minutes after 21:30 (30 before 22:00, 10 after 06:00)
    assert nights(evening_due, next_morning) == 2400
    assert not step_risk(RiskState(), next_morning, evening_due, day + 9 * H, config, planned=nights).raised


def test_a_repair_overrunning_its_mean_warns_while_the_order_can_still_be_helped() -> None:
    """A: 10 x 60 s on m1, due at 4800 s (threshold 3900 with a 15-min margin); m1 in fault since 0, MTTR 40 min.
    At 2700 (45 min spent) the repair is assumed to need half its mean more: back at 3900, A ends at 4500, 600 s
    past the threshold, more than the band (0.3 x 1800 s ahead = 540): pending. At 3000 back at 4200, A ends at
    4800: raised, 30 min before due. "MTTR less spent" (5 min floor) said 3600 then 3900: on time both rounds."""
    config = DelayConfig(margin=900.0, confirm=300.0, hysteresis=900.0, uncertainty=0.3)
    plan = plan_of(order_in("A", 4800.0, {"machine": "m1", "cycle": 60}))
    states: dict[str, RiskState] = {}
    for now, finish, raised in ((2700.0, 4500.0, False), (3000.0, 4800.0, True)):
        down = MachineOutlook("m1", down=down_until(MachineState.FAULT, 0.0, now, mean=2400.0))
        projection = project(plan, {"m1": down}, now)
        assert projection.orders["A"] == finish
        result = evaluate(plan, projection, states, now, config=config)
        states = dict(result.states)
        assert states["A"] == RiskState(2700.0, raised)
    assert [f.why.cause for f in result.findings if f.why is not None] == [Cause.FAULT]
