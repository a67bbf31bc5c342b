"""Every alert rule on hand-made timelines (pure: time passed in, no sleeping)."""

from __future__ import annotations

from central.alerts.conditions import AlertKey, Evaluation, Rule, Severity
from central.alerts.config import AlertsConfig
from central.alerts.rules import (
    GapFacts,
    GatewayFacts,
    MachineFacts,
    PlannedWindow,
    gap_evaluation,
    gap_subject,
    planned_at_least,
)
from central.progress.shifts import AlwaysPlanned
from plantpulse.protocol.sequencer import Gap
from tests.central.alerts.plant import FAULT, IDLE, MAINT, OFFLINE, RUN, SETUP, at, catalog, rules, status

R = rules()


def found(ev: Evaluation) -> dict[Rule, str]:
    """Rule -> English message of every condition found."""
    return {c.rule: c.message.en for c in ev.conditions}


def key(rule: Rule, subject: str = "cnc-01") -> AlertKey:
    return AlertKey(rule, subject)


# --------------------------------------------------------------------------- fault
def test_a_fault_fires_at_once_with_its_code_and_dictionary_text_in_zh_and_en() -> None:
    start = at("mon", "09:00")
    ev = R.machine(MachineFacts(status("cnc-01", FAULT, start, fault_code=101)), start)
    (cond,) = ev.conditions
    assert cond.key == key(Rule.FAULT) and cond.severity is Severity.CRITICAL
    assert cond.message.zh == "CNC 1 (cnc-01) 故障 101：主轴过载"
    assert cond.message.en == "CNC 1 (cnc-01) fault 101: spindle overload"
    assert cond.since == start and cond.episode == "101"
    assert cond.details["fault_code"] == 101 and cond.details["fault_zh"] == "主轴过载"
    assert cond.details["job"] == "J-1001" and cond.details["line"] == "line-a"


def test_a_fault_fires_outside_shift_hours_too() -> None:
    night = at("sat", "03:00")
    ev = R.machine(MachineFacts(status("cnc-01", FAULT, night, fault_code=101)), night + 1)
    assert set(found(ev)) == {Rule.FAULT}
    assert ev.off_shift == set() and ev.judges(key(Rule.LONG_STOP))  # a fault is not a stop (own rule)


def test_at_night_shift_rules_that_could_be_true_wait_and_those_that_cannot_are_false() -> None:
    night = at("mon", "22:00")
    idle = R.machine(MachineFacts(status("cnc-01", IDLE, at("mon", "16:00"))), night)
    assert idle.conditions == () and idle.off_shift == {key(Rule.LONG_STOP)} and idle.judges(key(Rule.STALL))
    running = R.machine(MachineFacts(status("cnc-01", RUN, at("mon", "21:00"))), night)
    assert running.off_shift == {key(Rule.STALL)} and running.judges(key(Rule.LONG_STOP))  # the stop is over


def test_a_fault_code_missing_from_the_dictionary_or_no_code_at_all() -> None:
    t = at("mon", "09:00")
    ev = R.machine(MachineFacts(status("cnc-01", FAULT, t, fault_code=777)), t)
    assert found(ev)[Rule.FAULT] == "CNC 1 (cnc-01) fault 777 (not in the fault dictionary)"
    ev = R.machine(MachineFacts(status("press-01", FAULT, t)), t)
    assert found(ev)[Rule.FAULT] == "press-01 in fault (no fault code)"
    assert ev.conditions[0].message.zh == "press-01 故障（无故障代码）"


# --------------------------------------------------------------------------- long stop
def test_long_stop_fires_after_ten_minutes_of_shift_time() -> None:
    stop = at("mon", "09:00")
    facts = MachineFacts(status("cnc-01", IDLE, stop))
    assert found(R.machine(facts, stop + 599)) == {}
    ev = R.machine(facts, stop + 600)
    (cond,) = ev.conditions
    assert cond.key == key(Rule.LONG_STOP) and cond.since == stop and cond.severity is Severity.WARNING
    assert cond.message.en == "CNC 1 (cnc-01) stopped (idle) for more than 10 min of shift time"
    assert cond.message.zh == "CNC 1 (cnc-01) 停机（待机），班次内已超过 10 分钟"


def test_a_stop_after_the_shift_opens_nothing_overnight_and_counts_from_the_next_shift() -> None:
    stop = at("mon", "18:00")
    facts = MachineFacts(status("cnc-01", IDLE, stop))
    for moment in (at("mon", "23:00"), at("tue", "07:59")):
        ev = R.machine(facts, moment)
        assert ev.conditions == () and key(Rule.LONG_STOP) in ev.off_shift
    ev = R.machine(facts, at("tue", "08:09"))
    assert ev.conditions == () and ev.judges(key(Rule.LONG_STOP))  # judged: not long enough yet
    assert set(found(R.machine(facts, at("tue", "08:10")))) == {Rule.LONG_STOP}


def test_a_stop_just_before_the_end_of_a_shift_continues_in_the_next_one() -> None:
    facts = MachineFacts(status("cnc-01", IDLE, at("fri", "16:55")))  # 5 min on Friday
    assert found(R.machine(facts, at("mon", "08:04", 59, week=1))) == {}  # the weekend is not shift time
    assert set(found(R.machine(facts, at("mon", "08:05", week=1)))) == {Rule.LONG_STOP}


def test_lunch_is_not_shift_time() -> None:
    facts = MachineFacts(status("cnc-01", IDLE, at("mon", "11:55")))
    assert key(Rule.LONG_STOP) in R.machine(facts, at("mon", "12:30")).off_shift
    assert found(R.machine(facts, at("mon", "13:04", 59))) == {}
    assert set(found(R.machine(facts, at("mon", "13:05")))) == {Rule.LONG_STOP}


def test_which_states_are_a_stop() -> None:
    t, later = at("mon", "09:00"), at("mon", "11:00")
    for state in (IDLE, SETUP, OFFLINE):
        assert Rule.LONG_STOP in found(R.machine(MachineFacts(status("cnc-01", state, t)), later))
    for state in (RUN, MAINT, FAULT):  # a fault has its own rule; maintenance is planned work
        assert Rule.LONG_STOP not in found(R.machine(MachineFacts(status("cnc-01", state, t)), later))
    with_fault = rules("machines_default: {long_stop_states: [idle, fault]}")
    ev = with_fault.machine(MachineFacts(status("cnc-01", FAULT, t, fault_code=101)), later)
    assert set(found(ev)) == {Rule.FAULT, Rule.LONG_STOP}


def test_stopped_since_counts_a_fault_then_idle_as_one_stop() -> None:
    fault_at, idle_at = at("mon", "09:00"), at("mon", "09:08")
    alone = MachineFacts(status("cnc-01", IDLE, idle_at))
    joined = MachineFacts(status("cnc-01", IDLE, idle_at), stopped_since=fault_at)
    now = at("mon", "09:10")
    assert found(R.machine(alone, now)) == {}
    (cond,) = R.machine(joined, now).conditions
    assert cond.rule is Rule.LONG_STOP and cond.since == fault_at


# --------------------------------------------------------------------------- stall
def test_stall_fires_after_k_times_the_ideal_cycle_time_without_a_part() -> None:
    start, part = at("mon", "09:00"), at("mon", "09:10")
    facts = MachineFacts(status("cnc-01", RUN, start, last_part_at=part))  # 60 s cycle, k = 3
    assert found(R.machine(facts, part + 179)) == {}
    (cond,) = R.machine(facts, part + 180).conditions
    assert cond.key == key(Rule.STALL) and cond.since == part
    assert cond.message.en == "CNC 1 (cnc-01) running but no part for more than 3 min (3 x cycle time 60 s)"
    fresh = MachineFacts(status("cnc-01", RUN, start, last_part_at=part + 170))
    assert found(R.machine(fresh, part + 180)) == {}  # a part came: no stall


def test_stall_counts_from_the_start_of_running_when_the_last_part_is_older() -> None:
    start = at("mon", "09:00")
    facts = MachineFacts(status("cnc-01", RUN, start, last_part_at=at("mon", "08:30")))
    assert found(R.machine(facts, start + 179)) == {}
    assert set(found(R.machine(facts, start + 180))) == {Rule.STALL}


def test_short_cycles_stall_no_sooner_than_stall_min_and_no_cycle_time_means_no_stall() -> None:
    start = at("sat", "03:00")  # robot-01 has no line: planned around the clock
    facts = MachineFacts(status("robot-01", RUN, start))  # 10 s cycle: 3 x 10 < 120 s minimum
    assert found(R.machine(facts, start + 119)) == {}
    assert set(found(R.machine(facts, start + 120))) == {Rule.STALL}
    no_cycle = MachineFacts(status("press-01", RUN, at("mon", "09:00")))
    assert found(R.machine(no_cycle, at("mon", "11:00"))) == {}


def test_stall_follows_shifts() -> None:
    facts = MachineFacts(status("cnc-01", RUN, at("mon", "16:58")))
    ev = R.machine(facts, at("mon", "17:30"))
    assert ev.conditions == () and key(Rule.STALL) in ev.off_shift
    assert found(R.machine(facts, at("tue", "08:00", 59))) == {}  # 2 min on Monday + 59 s
    assert set(found(R.machine(facts, at("tue", "08:01")))) == {Rule.STALL}


# --------------------------------------------------------------------------- stale or missing facts
def test_while_the_gateway_is_offline_long_stop_and_stall_are_unknown_but_a_fault_is_not() -> None:
    t = at("mon", "09:00")
    ev = R.machine(MachineFacts(status("cnc-01", IDLE, t, gateway_online=False)), t + 3600)
    assert ev.conditions == () and ev.unknown == {key(Rule.LONG_STOP), key(Rule.STALL)}
    assert ev.judges(key(Rule.FAULT))
    ev = R.machine(MachineFacts(status("cnc-01", FAULT, t, fault_code=101, gateway_online=False)), t)
    assert set(found(ev)) == {Rule.FAULT}


def test_a_machine_never_heard_of_is_judged_on_nothing() -> None:
    ev = R.machine(MachineFacts(status("cnc-01", None, None)), at("mon", "09:00"))
    assert ev.conditions == () and ev.unknown == ev.scope


def test_a_disabled_rule_is_judged_false() -> None:
    quiet = rules("machines: {cnc-01: {disabled: [long_stop, fault]}}")
    t = at("mon", "09:00")
    ev = quiet.machine(MachineFacts(status("cnc-01", FAULT, t, fault_code=101)), t + 3600)
    assert ev.conditions == () and ev.judges(key(Rule.FAULT)) and ev.judges(key(Rule.LONG_STOP))


# --------------------------------------------------------------------------- thresholds per machine or line
def test_thresholds_per_line_and_per_machine() -> None:
    r = rules("""
machines_default: {long_stop_after: 1200}
lines: {line-a: {long_stop_after: 300, severity: {long_stop: critical}}}
machines: {cnc-01: {long_stop_after: 900}}
""")
    t = at("mon", "09:00")
    press = MachineFacts(status("press-01", IDLE, t))  # line-a: 5 min
    assert found(r.machine(press, t + 299)) == {}
    (cond,) = r.machine(press, t + 300).conditions
    assert cond.severity is Severity.CRITICAL  # the line's severity
    cnc = MachineFacts(status("cnc-01", IDLE, t))  # its own 15 min beat the line's
    assert found(r.machine(cnc, t + 899)) == {} and found(r.machine(cnc, t + 900))
    robot = MachineFacts(status("robot-01", IDLE, t))  # no line: the plant's 20 min
    assert found(r.machine(robot, t + 1199)) == {} and found(r.machine(robot, t + 1200))
    stranger = MachineFacts(status("mystery-9", IDLE, t))  # seen in events only: plant defaults
    assert found(r.machine(stranger, t + 1200))


# --------------------------------------------------------------------------- gateways
def gw(**kw: object) -> GatewayFacts:
    base: dict[str, object] = {"gateway_id": "gw-1", "online": True, "changed_at": 0.0, "skew": 0.2}
    return GatewayFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_gateway_offline_beyond_a_short_grace_at_any_hour() -> None:
    t = at("sun", "03:00")
    offline = gw(online=False, changed_at=t, machines=("cnc-01", "press-01"))
    assert Rule.GATEWAY_OFFLINE not in found(R.gateway(offline, t + 29))
    ev = R.gateway(offline, t + 30)
    cond = next(c for c in ev.conditions if c.rule is Rule.GATEWAY_OFFLINE)
    assert cond.subject == "gw-1" and cond.since == t
    assert cond.message.en == "gateway gw-1 is offline; live status unknown for cnc-01, press-01"
    assert cond.message.zh == "网关 gw-1 离线，以下设备的实时状态未知：cnc-01, press-01"
    assert found(R.gateway(gw(online=True, changed_at=t + 40), t + 41)) == {}
    never = R.gateway(gw(online=None, changed_at=None, skew=None), t)
    assert never.unknown == {key(Rule.GATEWAY_OFFLINE, "gw-1"), key(Rule.CLOCK_SKEW, "gw-1")}


def test_events_dropped_while_the_counter_rose_within_the_hold() -> None:
    t = at("sun", "03:00")
    facts = gw(dropped_total=130, dropped_rose_at=t)
    (cond,) = R.gateway(facts, t + 1799).conditions
    assert cond.rule is Rule.EVENTS_DROPPED and cond.details["dropped_total"] == 130
    assert cond.message.en == "gateway gw-1 dropped events (130 in total): check its buffer and disk space"
    assert found(R.gateway(facts, t + 1800)) == {}
    assert found(R.gateway(gw(dropped_total=0), t)) == {}


def test_clock_skew_beyond_the_bound_either_way() -> None:
    t = at("sun", "03:00")
    (ahead,) = R.gateway(gw(skew=12.4), t).conditions
    assert ahead.message.en == "gateway gw-1 clock is 12 s ahead (bound 10 s): check its time sync (NTP)"
    assert ahead.severity is Severity.INFO
    (behind,) = R.gateway(gw(skew=-75.0), t).conditions
    assert "75 s behind" in behind.message.en and "慢 75 秒" in behind.message.zh
    assert found(R.gateway(gw(skew=9.9), t)) == {}
    assert key(Rule.CLOCK_SKEW, "gw-1") in R.gateway(gw(online=False, changed_at=t, skew=99.0), t).unknown


# --------------------------------------------------------------------------- data gaps
def test_a_data_gap_is_true_for_the_hold_after_it_was_recorded() -> None:
    t = at("sun", "03:00")
    gap = Gap("gw-1", "e" * 8, 500, 619, "buffer_full", start_ts=t - 100, end_ts=t - 50, count=120)
    facts = GapFacts.from_gap(gap, recorded_at=t)
    assert facts.gap_id == gap_subject(gap) == "gw-1:eeeeeeee:500-619"
    (cond,) = R.gaps([facts], t + 1799).conditions
    assert cond.key == key(Rule.DATA_GAP, "gw-1:eeeeeeee:500-619") and cond.since == t - 100
    assert cond.message.en == (
        "gateway gw-1 lost 120 events (seq 500–619, buffer full); history in that span is uncertain"
    )
    assert "缓冲区满" in cond.message.zh
    later = R.gaps([facts], t + 1800)
    assert later.conditions == () and later.judges(cond.key)
    no_count = GapFacts.from_gap(Gap("gw-1", "e", 7, 9, "unavailable"), recorded_at=t)
    (cond,) = gap_evaluation([no_count], AlertsConfig().gateway_thresholds(), t).conditions
    assert "lost 3 events (seq 7–9, no longer held by the gateway)" in cond.message.en


def test_everything_is_a_complete_evaluation() -> None:
    t = at("mon", "09:00")
    ev = R.everything(t + 700, [MachineFacts(status("cnc-01", IDLE, t))], [gw()], [])
    assert ev.scope is None and set(found(ev)) == {Rule.LONG_STOP}
    assert ev.judges(key(Rule.FAULT, "gone-machine"))  # not given: judged false


def test_planned_time_walks_back_only_as_far_as_needed() -> None:
    always = AlwaysPlanned()
    assert planned_at_least(always, 0.0, 600.0, 600.0) and not planned_at_least(always, 0.0, 599.0, 600.0)
    cal = catalog().calendar("cnc-01")
    year_long = at("mon", "09:00") - 365 * 86400.0  # idle for a year: the month look-back decides
    assert planned_at_least(cal, year_long, at("mon", "09:00"), 600.0)
    assert not planned_at_least(cal, at("sat", "08:00"), at("sun", "20:00"), 60.0)  # a weekend: no shift time



def test_the_shared_window_answers_like_the_walk_back() -> None:
    cal = catalog().calendar("cnc-01")
    for now in (at("tue", "09:00"), at("mon", "08:05", week=1), at("sat", "12:00"), at("wed", "12:30")):
        window = PlannedWindow(cal, now)
        for hours_back in (0.05, 0.5, 3, 20, 30, 60, 100, 800):
            for amount in (60.0, 600.0, 3600.0, 8 * 3600.0, 30 * 3600.0):
                start = now - hours_back * 3600
                assert window.at_least(start, amount) == planned_at_least(cal, start, now, amount), (
                    now, hours_back, amount,
                )
