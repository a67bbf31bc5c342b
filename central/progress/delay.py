"""Delay alert rules: orders at risk, overdue, short of material, each with the reason why (issue 13).

Pure functions of the plan, a projection, the rule's small memory (``RiskState`` per order) and
``now``. They produce findings shaped like ``central.alerts.conditions.Condition`` so that the existing
lifecycle (``reconcile``: open, refresh, resolve, escalate, historic) carries them;
``to_evaluation`` builds the ``Evaluation`` once ``Rule`` has members for them (the lead adds
``order_at_risk``, ``order_overdue``, ``material_shortage``; ``central/alerts`` is not changed here).

**At risk without storms.** With ``threshold = due - margin``:

* raised when the projected finish has stayed past the threshold for ``confirm`` seconds (default
  5 min) of evaluations: a projection that pokes over for one round (a short stop) pages nobody;
  "past" means past by more than ``uncertainty`` (10%) of how far ahead the finish lies: a projection
  a day ahead that is 20 minutes over is noise (nights, a repair estimate, a rate), the same 20
  minutes two hours ahead is a warning;
* resolved only when the projected finish is back below ``threshold - hysteresis``, so a finish
  hovering around the threshold does not open and close an alert every round;
* replaced by ``order overdue`` once the due time has passed with the order unfinished.

**Why.** ``explain`` walks the order's critical path backwards through the projection: from its
last operation, along what bound each start (the operation ahead on the machine, the
predecessor in the order, a repair, material), adding up the time each cause cost: a machine down
(``fault``: its wait for the repair), ``slow_rate`` (production time beyond the ideal cycle time),
``rush_order_ahead`` (time rush orders held the machine), ``material`` (waiting for arrival). The
largest names the cause, its operation and machine; with none of them, ``shift_end`` if the path
runs over a shift's end, else ``load`` (the queued work alone exceeds the time to the due date).
``group`` puts orders made late by the same cause on the same machine into one notification.

**History.** ``historic_machines`` (machines whose backlog is being applied) marks the findings of
the orders with an open operation on them historic: the lifecycle records them and pages nobody, and
live facts later confirm what still stands. An order that was finished by the time its backlog arrives
is done: nothing is raised for it at all.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from central.alerts.conditions import AlertKey, Condition, Detail, Evaluation, Rule, Severity, Texts
from central.progress.orders import OpKey, OrderStatus, Plan, WorkOrder
from central.progress.projection import Binding, DownCause, Projection
from central.progress.shifts import Calendar

INF = math.inf


class OrderRule(enum.StrEnum):
    AT_RISK = "order_at_risk"
    OVERDUE = "order_overdue"
    MATERIAL = "material_shortage"


class Cause(enum.StrEnum):
    FAULT = "fault"  # a machine down (fault; maintenance and offline say so in ``down``)
    SLOW_RATE = "slow_rate"
    RUSH_AHEAD = "rush_order_ahead"
    MATERIAL = "material"
    SHIFT_END = "shift_end"
    LOAD = "load"


CAUSE_TEXTS = {
    Cause.FAULT: Texts("设备停机", "machine down"),
    Cause.SLOW_RATE: Texts("速度偏慢", "slow rate"),
    Cause.RUSH_AHEAD: Texts("插单在前", "rush order ahead"),
    Cause.MATERIAL: Texts("缺料", "material shortage"),
    Cause.SHIFT_END: Texts("班次结束", "shift end"),
    Cause.LOAD: Texts("排产负荷过满", "queue too full"),
}
MIN_LOSS = 60.0  # seconds: a cause that cost less than a minute names nothing


@dataclass(frozen=True, slots=True)
class DelayConfig:
    margin: float = 3600.0  # at risk when projected past due minus this
    confirm: float = 300.0  # ... for this long
    hysteresis: float = 900.0  # resolved below due - margin - hysteresis
    uncertainty: float = 0.3  # a projection h seconds ahead is trusted to +- this x h (raised past that)
    at_risk: Severity = Severity.WARNING
    overdue: Severity = Severity.CRITICAL
    material: Severity = Severity.WARNING


@dataclass(frozen=True, slots=True)
class RiskState:
    """The at-risk rule's memory for one order (JSON-able; keep it with the order, or rebuild it
    from the active alerts after a restart: ``raised`` = an at-risk alert is active)."""

    pending_since: float | None = None  # projected past the threshold since (not yet confirmed)
    raised: bool = False


@dataclass(frozen=True, slots=True)
class Why:
    cause: Cause
    operation: OpKey | None
    machine: str | None
    lost: float  # seconds the cause cost on the critical path
    losses: Mapping[Cause, float] = field(default_factory=dict)
    down: DownCause | None = None  # for ``fault``: fault, maintenance or offline
    rush_order: str | None = None  # for ``rush_order_ahead``


@dataclass(frozen=True, slots=True)
class OrderFinding:
    """A ``Condition`` for an order rule (see ``to_evaluation``)."""

    rule: OrderRule
    subject: str
    severity: Severity
    message: Texts
    since: float | None
    details: Mapping[str, Detail]
    why: Why | None = None
    historic: bool = False


@dataclass(frozen=True, slots=True)
class DelayResult:
    findings: tuple[OrderFinding, ...]
    states: Mapping[str, RiskState]  # the new memory, per open order
    judged: frozenset[tuple[OrderRule, str]]  # keys this evaluation speaks about (false unless found)


def explain(plan: Plan, projection: Projection, order_id: str) -> Why:
    """Why the order finishes when it does (see the module docstring)."""
    ops = projection.ops
    mine = [k for k in plan.order(order_id).op_keys() if k in ops]
    losses = dict.fromkeys(Cause, 0.0)
    blame: dict[Cause, tuple[OpKey, str | None, float]] = {}
    down: DownCause | None = None
    rush: str | None = None

    def charge(cause: Cause, key: OpKey, machine: str | None, seconds: float) -> None:
        if seconds <= 0 or (seconds == INF and cause is Cause.SLOW_RATE):
            return
        losses[cause] += seconds
        if cause not in blame or seconds > blame[cause][2]:
            blame[cause] = (key, machine, seconds)

    key: OpKey | None = max(mine, key=lambda k: ops[k].finish) if mine else None
    last = key
    seen: set[OpKey] = set()
    while key is not None and key in ops and key not in seen:
        seen.add(key)
        p = ops[key]
        machine = p.machines[0] if p.machines else None
        if p.finish < INF:
            charge(Cause.SLOW_RATE, key, machine, p.work - p.ideal_work)
            losses[Cause.SHIFT_END] += p.gap
        if p.binding is Binding.REPAIR:
            charge(Cause.FAULT, key, machine, p.wait)
            down = down or p.down
            break
        if p.binding is Binding.MATERIAL:
            charge(Cause.MATERIAL, key, machine, p.wait)
            break
        if p.binding is Binding.PREDECESSOR:
            key = _predecessor(plan, key)
        elif p.binding is Binding.MACHINE and p.ahead is not None:
            ahead = ops.get(p.ahead)
            other = plan.orders.get(p.ahead[0])
            if ahead is not None and other is not None and other.rush and other.id != order_id:
                charge(Cause.RUSH_AHEAD, p.ahead, machine, min(ahead.finish, p.start) - ahead.start)
                rush = rush or other.id
            key = p.ahead
        else:
            break
    named = [c for c in (Cause.FAULT, Cause.MATERIAL, Cause.RUSH_AHEAD, Cause.SLOW_RATE) if losses[c] >= MIN_LOSS]
    if named:
        cause = max(named, key=lambda c: losses[c])
        op, machine, _ = blame[cause]
        return Why(cause, op, machine, losses[cause], losses, down if cause is Cause.FAULT else None,
                   rush if cause is Cause.RUSH_AHEAD else None)
    cause = Cause.SHIFT_END if losses[Cause.SHIFT_END] > 0 else Cause.LOAD
    machine = ops[last].machines[0] if last is not None and ops[last].machines else None
    return Why(cause, last, machine, losses[cause], losses)


def _predecessor(plan: Plan, key: OpKey) -> OpKey | None:
    pred = plan.predecessor(key)
    return pred.key if pred is not None else None


def evaluate(
    plan: Plan, projection: Projection, states: Mapping[str, RiskState], now: float, *,
    config: DelayConfig = DelayConfig(),  # a frozen default: shared safely
    calendar_of: Callable[[str], Calendar] | None = None, historic_machines: AbstractSet[str] = frozenset(),
) -> DelayResult:
    """Every order's at-risk, overdue and material findings at ``now`` and the rule's new memory.

    ``historic_machines``: machines whose status comes from a backlog being applied: an order with an open
    operation projected on one of them rests on history still arriving, and its findings are historic
    (recorded, paging nobody); other orders page as usual.

    ``calendar_of(order_id)``: the calendar the order finishes on (its last operation's line); with it,
    lateness and how far ahead are measured in planned time (see ``step_risk``).
    """
    findings: list[OrderFinding] = []
    judged: set[tuple[OrderRule, str]] = set()
    new_states: dict[str, RiskState] = {}
    for order in plan.orders.values():
        judged.add((OrderRule.AT_RISK, order.id))
        judged.add((OrderRule.OVERDUE, order.id))
        for key in order.op_keys():
            judged.add((OrderRule.MATERIAL, _op_subject(key)))
        if order.status is not OrderStatus.OPEN:
            continue
        finish = projection.orders.get(order.id)
        if finish is None:  # nothing left to project (all done, status not updated yet)
            continue
        order_historic = bool(historic_machines) and _on_history(order, projection, historic_machines)
        base: dict[str, Detail] = {"order": order.id, "due": order.due, "projected_finish": _finite(finish),
                                   "customer": order.customer, "product": order.product}
        if now >= order.due:
            why = explain(plan, projection, order.id)
            findings.append(_finding(OrderRule.OVERDUE, order.id, config.overdue, order.due, base, why,
                                     order_historic))
            continue
        calendar = calendar_of(order.id) if calendar_of is not None else None
        state = step_risk(states.get(order.id, RiskState()), finish, order.due, now, config,
                          planned=_planned_seconds(calendar) if calendar is not None else None)
        new_states[order.id] = state
        if state.raised:
            why = explain(plan, projection, order.id)
            findings.append(_finding(OrderRule.AT_RISK, order.id, config.at_risk, state.pending_since, base, why,
                                     order_historic))
        for key in order.op_keys():
            p = projection.ops.get(key)
            op = plan.operations[key]
            if p is not None and op.shortage is not None and p.binding is Binding.MATERIAL:
                findings.append(_material(key, p.start, op.shortage.expected, order.due, finish, config,
                                          order_historic))
    return DelayResult(tuple(findings), new_states, frozenset(judged))


def step_risk(state: RiskState, finish: float, due: float, now: float, config: DelayConfig,
              planned: Callable[[float, float], float] | None = None) -> RiskState:
    """One evaluation of the at-risk rule for one order: the confirmation and hysteresis memory.

    With ``planned(a, b)`` (planned production seconds in ``[a, b)``), how late and how far ahead are
    measured in planned time: a finish projected a few minutes past the evening shift's end lands on
    the next morning, hours late on the clock but minutes late in work, and the band must see minutes.
    Public so that a baseline (another ETA through the same rule) can be compared with it.
    """
    threshold = due - config.margin
    if state.raised:
        if finish <= threshold - config.hysteresis:
            return RiskState()
        return state
    # a finish far ahead is uncertain in proportion to how far: raise only once it is late by more
    # than that band (it shrinks as the finish nears, so a truly late order is still warned in time)
    if planned is not None and finish != INF:
        late, ahead = planned(threshold, finish), planned(now, finish)
    else:
        late, ahead = finish - threshold, max(0.0, finish - now)
    if finish <= threshold or late <= config.uncertainty * ahead:
        return RiskState()
    since = state.pending_since if state.pending_since is not None else now
    return RiskState(since, now - since >= config.confirm)


def _planned_seconds(calendar: Calendar) -> Callable[[float, float], float]:
    def planned(a: float, b: float) -> float:
        return sum(hi - lo for lo, hi in calendar.planned(a, b)) if b > a else 0.0
    return planned


def _finite(t: float) -> float | None:
    return None if t == INF else t


def _on_history(order: WorkOrder, projection: Projection, machines: AbstractSet[str]) -> bool:
    for key in order.op_keys():
        p = projection.ops.get(key)
        if p is not None and any(m in machines for m in p.machines):
            return True
    return False


def _op_subject(key: OpKey) -> str:
    return f"{key[0]}/{key[1]}"


def _finding(rule: OrderRule, order_id: str, severity: Severity, since: float | None, base: Mapping[str, Detail],
             why: Why, historic: bool) -> OrderFinding:
    cause = CAUSE_TEXTS[why.cause]
    where_zh = where_en = ""
    if why.operation is not None:
        where_zh = f"，工序 {why.operation[1]}（{why.operation[0]}）" + (f"，设备 {why.machine}" if why.machine else "")
        where_en = f", operation {why.operation[1]} of {why.operation[0]}" + (
            f" on {why.machine}" if why.machine else "")
    finish = base.get("projected_finish")
    if rule is OrderRule.OVERDUE:
        message = Texts(f"工单 {order_id} 已逾期未完成：原因 {cause.zh}{where_zh}",
                        f"order {order_id} is overdue: {cause.en}{where_en}")
    else:
        message = Texts(f"工单 {order_id} 有延期风险（预计完工晚于交期前的余量）：原因 {cause.zh}{where_zh}",
                        f"order {order_id} at risk of being late (projected finish past due minus margin): "
                        f"{cause.en}{where_en}")
    details: dict[str, Detail] = {
        **base, "cause": why.cause.value, "operation": why.operation[1] if why.operation else None,
        "operation_order": why.operation[0] if why.operation else None, "machine": why.machine,
        "lost_seconds": round(why.lost, 1) if why.lost < INF else None,
        "down": why.down.value if why.down else None, "rush_order": why.rush_order, "projected_finish": finish,
    }
    return OrderFinding(rule, order_id, severity, message, since, details, why, historic)


def _material(key: OpKey, start: float, expected: float | None, due: float, finish: float, config: DelayConfig,
              historic: bool) -> OrderFinding:
    late = finish > due - config.margin
    message = Texts(
        f"工单 {key[0]} 工序 {key[1]} 缺料，需等待到料" + ("，将导致延期" if late else ""),
        f"order {key[0]} operation {key[1]} waits for material" + (" and will be late" if late else ""),
    )
    details: dict[str, Detail] = {"order": key[0], "operation": key[1], "expected": expected,
                                  "projected_start": _finite(start), "delays_order": late}
    return OrderFinding(OrderRule.MATERIAL, _op_subject(key), config.material, message, None, details, None, historic)


@dataclass(frozen=True, slots=True)
class Group:
    """Orders made late by one cause on one machine: one notification instead of one per order."""

    rule: OrderRule
    cause: Cause
    machine: str | None
    orders: tuple[str, ...]


def group(findings: Iterable[OrderFinding]) -> list[Group]:
    """At-risk and overdue findings grouped by (rule, cause, machine), orders sorted, biggest group first."""
    groups: dict[tuple[OrderRule, Cause, str | None], list[str]] = {}
    for f in findings:
        if f.why is None:
            continue
        groups.setdefault((f.rule, f.why.cause, f.why.machine), []).append(f.subject)
    out = [Group(rule, cause, machine, tuple(sorted(orders))) for (rule, cause, machine), orders in groups.items()]
    return sorted(out, key=lambda g: (-len(g.orders), g.rule, g.cause, g.machine or ""))


def to_evaluation(result: DelayResult, rules: Mapping[OrderRule, Rule]) -> Evaluation:
    """The findings as an ``Evaluation`` for ``lifecycle.reconcile``, with ``rules`` naming the ``Rule``
    member of each order rule (judged keys without a finding resolve their alerts)."""
    conditions = tuple(
        Condition(rules[f.rule], f.subject, f.severity, f.message, since=f.since, details=f.details,
                  historic=f.historic)
        for f in result.findings
    )
    scope = frozenset(AlertKey(rules[rule], subject) for rule, subject in result.judged)
    return Evaluation(conditions, scope)
