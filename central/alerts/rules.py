"""The alert rules: pure functions of the current facts and ``now`` (docs/alerts.md, "Rules").

Each function looks at one subject (a machine, a gateway, the recorded data gaps) and returns an
``Evaluation``: the conditions true now and the keys it judged. The ingest calls the one for the
subject an applied change touched; a periodic tick calls ``AlertRules.everything`` so that
time-based conditions (long stop, stall, offline grace, hold windows) start and end on time.

Shift-following rules (long stop, stall) count *planned* time only (shift hours minus breaks,
days off excluded, from the line's calendar), so a machine that stops after the last shift
opens nothing overnight, and one that stops ten minutes before the end of the shift opens its
long stop twenty minutes into the next one (with a 30-minute threshold). Outside shift hours
they judge nothing (``off_shift``): an alert already open stays as it is and does not escalate.

While a machine's gateway is offline, its status is only the last thing we heard: long stop and
stall are then ``unknown`` (the gateway-offline alert tells people; the backlog tells later
what the machine did). A fault stays judged: the last word from the machine was a fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from central.alerts.conditions import (
    GATEWAY_RULES,
    MACHINE_RULES,
    AlertKey,
    Condition,
    Detail,
    Evaluation,
    Rule,
    Texts,
    combine,
)
from central.alerts.config import AlertsConfig, GatewayThresholds, MachineThresholds
from central.alerts.texts import STATE_NAMES, durations, reason_text, seconds_text
from central.progress.machines import Catalog, FaultText, MachineInfo
from central.progress.shifts import Calendar
from central.progress.status import MachineStatus
from plantpulse.protocol.models import MachineState
from plantpulse.protocol.sequencer import Gap

DAY = 86_400.0
LOOKBACK = 31 * DAY
"""Planned time is counted back at most a month: a stop without a threshold's worth of shift
time in a month (a calendar of days off) is not a long stop until its line works again."""

_MAX_LISTED = 10  # machines named in a gateway-offline message


@dataclass(frozen=True, slots=True)
class MachineFacts:
    """A machine's status plus what the status cannot say itself.

    ``stopped_since``: when the machine last stopped running, if the caller tracks it (a fault
    then idle is one stop; without it the stop counts from the current state's start).
    ``historic``: the status comes from facts older than the ingest's historic age.
    """

    status: MachineStatus
    stopped_since: float | None = None
    historic: bool = False


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    """What central knows about one gateway (all times on central's axis)."""

    gateway_id: str
    online: bool | None  # None: neither a birth nor a Last Will seen yet
    changed_at: float | None = None  # when ``online`` last changed
    skew: float | None = None  # edge clock minus central clock, seconds (from its health messages)
    dropped_total: int = 0  # the gateway's dropped-events counter
    dropped_rose_at: float | None = None  # when central last saw that counter rise
    machines: tuple[str, ...] = ()
    historic: bool = False


@dataclass(frozen=True, slots=True)
class GapFacts:
    """A data gap the ingest recorded (``protocol.sequencer.Gap`` plus its id and receipt time)."""

    gap_id: str
    edge_id: str
    epoch: str
    first: int
    last: int
    reason: str
    recorded_at: float
    count: int | None = None
    start_ts: float | None = None
    end_ts: float | None = None
    historic: bool = False

    @classmethod
    def from_gap(
        cls, gap: Gap, recorded_at: float, *, gap_id: str | None = None, historic: bool = False
    ) -> GapFacts:
        return cls(
            gap_id or gap_subject(gap), gap.edge_id, gap.epoch, gap.first, gap.last, gap.reason, recorded_at,
            gap.count, gap.start_ts, gap.end_ts, historic,
        )


def gap_subject(gap: Gap) -> str:
    """A stable id for a gap (the same range of the same epoch is the same gap)."""
    return f"{gap.edge_id}:{gap.epoch}:{gap.first}-{gap.last}"


def planned_at_least(calendar: Calendar, start: float, end: float, amount: float) -> bool:
    """Whether ``[start, end)`` holds at least ``amount`` seconds of planned time.

    Walks back from ``end`` a day at a time and stops as soon as the amount is reached, so a
    machine idle for a week costs about as much as one idle for an hour.
    """
    if end - start < amount:
        return False
    total, hi, floor = 0.0, end, max(start, end - LOOKBACK)
    while hi > floor:
        lo = max(floor, hi - DAY)
        total += sum(e - s for s, e in calendar.planned(lo, hi))
        if total >= amount:
            return True
        hi = lo
    return amount <= 0


class PlannedWindow:
    """Planned time up to ``now`` on one calendar: the last day's spans computed once, for every machine
    of the line (a tick asks the same question of many machines sharing a calendar)."""

    def __init__(self, calendar: Calendar, now: float) -> None:
        self.calendar = calendar
        self.now = now
        self.planned_now = calendar.is_planned(now)
        self._recent = calendar.planned(now - DAY, now)

    def at_least(self, start: float, amount: float) -> bool:
        """Whether ``[start, now)`` holds at least ``amount`` seconds of planned time."""
        if self.now - start < amount:
            return False
        total = sum(e - max(s, start) for s, e in self._recent if e > start)
        if total >= amount:
            return True
        edge = self.now - DAY
        return start < edge and planned_at_least(self.calendar, start, edge, amount - total)


# --------------------------------------------------------------------------- machines
def machine_evaluation(
    facts: MachineFacts, info: MachineInfo, calendar: Calendar, limits: MachineThresholds, now: float,
    *, window: PlannedWindow | None = None,
) -> Evaluation:
    """Fault, long stop and stall for one machine (``window``: its calendar's, when the caller shares one).

    A shift rule whose state cannot make it true (a running machine has no long stop) is false
    at any hour; one that could be true is judged inside shift hours only.
    """
    status = facts.status
    keys = {rule: AlertKey(rule, status.machine_id) for rule in MACHINE_RULES}
    scope = frozenset(keys.values())
    if status.state is None:  # nothing heard since central started: judge nothing
        return Evaluation((), scope, unknown=scope)
    base = _machine_details(status, info)
    found: list[Condition] = []
    if Rule.FAULT not in limits.disabled and status.state is MachineState.FAULT:
        found.append(_fault(status, info, limits, base, facts.historic))
    possible = set()
    if Rule.LONG_STOP not in limits.disabled and status.state in limits.long_stop_states:
        possible.add(Rule.LONG_STOP)
    if Rule.STALL not in limits.disabled and status.state is MachineState.RUNNING and info.ideal_cycle_time:
        possible.add(Rule.STALL)
    shift_keys = frozenset(keys[r] for r in (Rule.LONG_STOP, Rule.STALL) if r not in limits.disabled)
    if status.gateway_online is False or status.since is None:  # stale facts: a stop or stall is unknown
        return Evaluation(tuple(found), scope, unknown=shift_keys)
    if not possible:
        return Evaluation(tuple(found), scope)
    if window is None or window.calendar is not calendar or window.now != now:
        window = PlannedWindow(calendar, now)
    if not window.planned_now:
        return Evaluation(tuple(found), scope, off_shift=frozenset(keys[r] for r in possible))
    if Rule.LONG_STOP in possible:
        found.extend(_long_stop(facts, info, window, limits, base))
    if Rule.STALL in possible:
        found.extend(_stall(facts, info, window, limits, base))
    return Evaluation(tuple(found), scope)


def _machine_details(status: MachineStatus, info: MachineInfo) -> dict[str, Detail]:
    return {
        "machine": status.machine_id, "name": info.name, "line": info.line,
        "state": status.state.value if status.state else None, "job": status.job,
    }


def _label(info: MachineInfo) -> str:
    return info.id if info.name == info.id else f"{info.name} ({info.id})"


def _fault(
    status: MachineStatus, info: MachineInfo, limits: MachineThresholds, base: dict[str, Detail], historic: bool
) -> Condition:
    name, code = _label(info), status.fault_code
    text: FaultText | None = status.fault_text or info.fault_text(code)
    if code is None:
        message = Texts(f"{name} 故障（无故障代码）", f"{name} in fault (no fault code)")
    elif text is None:
        message = Texts(
            f"{name} 故障 {code}（故障字典中没有此代码）", f"{name} fault {code} (not in the fault dictionary)"
        )
    else:
        message = Texts(f"{name} 故障 {code}：{text.zh}", f"{name} fault {code}: {text.en}")
    details = {
        **base, "fault_code": code, "fault_zh": text.zh if text else None, "fault_en": text.en if text else None,
    }
    return Condition(
        Rule.FAULT, status.machine_id, limits.severity[Rule.FAULT], message, since=status.since,
        episode=str(code), details=details, historic=historic,
    )


def _long_stop(
    facts: MachineFacts, info: MachineInfo, window: PlannedWindow, limits: MachineThresholds,
    base: dict[str, Detail],
) -> list[Condition]:
    status = facts.status
    if status.state not in limits.long_stop_states or status.since is None:
        return []
    start = status.since
    if facts.stopped_since is not None and facts.stopped_since < start:
        start = facts.stopped_since
    if not window.at_least(start, limits.long_stop_after):
        return []
    assert status.state is not None  # narrowed by the membership test above
    state, limit = STATE_NAMES[status.state], durations(limits.long_stop_after)
    message = Texts(
        f"{_label(info)} 停机（{state.zh}），班次内已超过 {limit.zh}",
        f"{_label(info)} stopped ({state.en}) for more than {limit.en} of shift time",
    )
    details = {**base, "threshold": limits.long_stop_after, "stopped_since": start}
    return [
        Condition(Rule.LONG_STOP, status.machine_id, limits.severity[Rule.LONG_STOP], message, since=start,
                  details=details, historic=facts.historic)
    ]


def _stall(
    facts: MachineFacts, info: MachineInfo, window: PlannedWindow, limits: MachineThresholds,
    base: dict[str, Detail],
) -> list[Condition]:
    status, cycle = facts.status, info.ideal_cycle_time
    if status.state is not MachineState.RUNNING or status.since is None or cycle is None:
        return []
    limit = max(limits.stall_factor * cycle, limits.stall_min)
    reference = max(status.since, status.last_part_at or status.since)
    if not window.at_least(reference, limit):
        return []
    span, k, ict = durations(limit), seconds_text(limits.stall_factor), seconds_text(cycle)
    message = Texts(
        f"{_label(info)} 运行中，但超过 {span.zh} 无产出（{k} × 节拍 {ict} 秒）",
        f"{_label(info)} running but no part for more than {span.en} ({k} x cycle time {ict} s)",
    )
    details = {**base, "threshold": limit, "last_part_at": status.last_part_at, "ideal_cycle_time": cycle}
    return [
        Condition(Rule.STALL, status.machine_id, limits.severity[Rule.STALL], message, since=reference,
                  details=details, historic=facts.historic)
    ]


# --------------------------------------------------------------------------- gateways and gaps
def gateway_evaluation(gw: GatewayFacts, limits: GatewayThresholds, now: float) -> Evaluation:
    """Gateway offline (beyond the grace), events dropped (counter rose lately), clock skew."""
    keys = {rule: AlertKey(rule, gw.gateway_id) for rule in GATEWAY_RULES}
    unknown: set[AlertKey] = set()
    found: list[Condition] = []
    base: dict[str, Detail] = {"gateway": gw.gateway_id}

    def add(rule: Rule, message: Texts, since: float | None, **details: Detail) -> None:
        found.append(Condition(rule, gw.gateway_id, limits.severity[rule], message, since=since,
                               details={**base, **details}, historic=gw.historic))

    if Rule.GATEWAY_OFFLINE not in limits.disabled:
        if gw.online is None or (gw.online is False and gw.changed_at is None):
            unknown.add(keys[Rule.GATEWAY_OFFLINE])
        elif gw.online is False and gw.changed_at is not None and now - gw.changed_at >= limits.offline_grace:
            listed = ", ".join(gw.machines[:_MAX_LISTED]) + ("…" if len(gw.machines) > _MAX_LISTED else "")
            message = Texts(
                f"网关 {gw.gateway_id} 离线" + (f"，以下设备的实时状态未知：{listed}" if listed else ""),
                f"gateway {gw.gateway_id} is offline" + (f"; live status unknown for {listed}" if listed else ""),
            )
            add(Rule.GATEWAY_OFFLINE, message, gw.changed_at, machines=", ".join(gw.machines))
    rose = gw.dropped_rose_at
    if Rule.EVENTS_DROPPED not in limits.disabled and rose is not None and now - rose < limits.dropped_hold:
        message = Texts(
            f"网关 {gw.gateway_id} 丢弃了事件（累计 {gw.dropped_total} 个），请检查其缓冲区和磁盘空间",
            f"gateway {gw.gateway_id} dropped events ({gw.dropped_total} in total): check its buffer and disk space",
        )
        add(Rule.EVENTS_DROPPED, message, None, dropped_total=gw.dropped_total, dropped_rose_at=rose)
    if Rule.CLOCK_SKEW not in limits.disabled:
        if gw.skew is None or gw.online is False:  # no fresh measurement
            unknown.add(keys[Rule.CLOCK_SKEW])
        elif abs(gw.skew) > limits.skew_bound:
            off, bound = seconds_text(round(abs(gw.skew))), seconds_text(limits.skew_bound)
            zh_way, en_way = ("快", "ahead") if gw.skew > 0 else ("慢", "behind")
            message = Texts(
                f"网关 {gw.gateway_id} 的时钟{zh_way} {off} 秒（上限 {bound} 秒），请检查其时间同步（NTP）",
                f"gateway {gw.gateway_id} clock is {off} s {en_way} (bound {bound} s): check its time sync (NTP)",
            )
            add(Rule.CLOCK_SKEW, message, None, skew=round(gw.skew, 1), bound=limits.skew_bound)
    return Evaluation(tuple(found), frozenset(keys.values()), frozenset(unknown))


def gap_evaluation(gaps: Iterable[GapFacts], limits: GatewayThresholds, now: float) -> Evaluation:
    """One data-gap condition per gap recorded less than ``gap_hold`` seconds ago."""
    found: list[Condition] = []
    scope: set[AlertKey] = set()
    for gap in gaps:
        scope.add(AlertKey(Rule.DATA_GAP, gap.gap_id))
        if Rule.DATA_GAP in limits.disabled or now - gap.recorded_at >= limits.gap_hold:
            continue
        count = gap.count if gap.count is not None else gap.last - gap.first + 1
        seqs, why = f"{gap.first}–{gap.last}", reason_text(gap.reason)
        message = Texts(
            f"网关 {gap.edge_id} 的 {count} 个事件缺失（序号 {seqs}，{why.zh}），该时段的历史不确定",
            f"gateway {gap.edge_id} lost {count} events (seq {seqs}, {why.en}); history in that span is uncertain",
        )
        details: dict[str, Detail] = {
            "gateway": gap.edge_id, "epoch": gap.epoch, "first": gap.first, "last": gap.last, "count": count,
            "reason": gap.reason, "start_ts": gap.start_ts, "end_ts": gap.end_ts,
        }
        since = gap.start_ts if gap.start_ts is not None else gap.recorded_at
        found.append(Condition(Rule.DATA_GAP, gap.gap_id, limits.severity[Rule.DATA_GAP], message, since=since,
                               details=details, historic=gap.historic))
    return Evaluation(tuple(found), frozenset(scope))


# --------------------------------------------------------------------------- the plant
class AlertRules:
    """Every rule with the plant's thresholds and catalog (immutable after construction)."""

    def __init__(self, config: AlertsConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.gateway_limits = config.gateway_thresholds()
        self._limits: Mapping[str, MachineThresholds] = {
            mid: config.machine_thresholds(mid, catalog.machine(mid).line) for mid in catalog.configured_ids()
        }

    def machine_limits(self, machine_id: str) -> MachineThresholds:
        found = self._limits.get(machine_id)
        if found is not None:
            return found
        return self.config.machine_thresholds(machine_id, self.catalog.machine(machine_id).line)

    def machine(self, facts: MachineFacts, now: float, *, window: PlannedWindow | None = None) -> Evaluation:
        mid = facts.status.machine_id
        return machine_evaluation(
            facts, self.catalog.machine(mid), self.catalog.calendar(mid), self.machine_limits(mid), now,
            window=window,
        )

    def gateway(self, facts: GatewayFacts, now: float) -> Evaluation:
        return gateway_evaluation(facts, self.gateway_limits, now)

    def gaps(self, gaps: Iterable[GapFacts], now: float) -> Evaluation:
        return gap_evaluation(gaps, self.gateway_limits, now)

    def everything(
        self, now: float, machines: Iterable[MachineFacts], gateways: Iterable[GatewayFacts],
        gaps: Iterable[GapFacts],
    ) -> Evaluation:
        """A complete evaluation (the periodic tick): alerts of subjects not given here resolve.

        Pass every machine and gateway central knows, and at least the gaps recorded within
        ``gap_hold`` plus those with an active alert.
        """
        windows: dict[int, PlannedWindow] = {}  # per calendar: the machines of a line share it
        parts = []
        for m in machines:
            calendar = self.catalog.calendar(m.status.machine_id)
            window = windows.get(id(calendar))
            if window is None:
                window = windows[id(calendar)] = PlannedWindow(calendar, now)
            parts.append(self.machine(m, now, window=window))
        parts += [self.gateway(g, now) for g in gateways]
        parts.append(self.gaps(gaps, now))
        return combine(parts, complete=True)
