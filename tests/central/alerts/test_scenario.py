"""A night and a morning on line A, rules and lifecycle together, the way the ingest and its tick call them."""

from __future__ import annotations

from central.alerts.alert import AlertStatus, TransitionKind
from central.alerts.conditions import Rule, combine
from central.alerts.config import EscalationConfig
from central.alerts.lifecycle import acknowledge
from central.alerts.rules import GatewayFacts, MachineFacts
from tests.central.alerts.plant import FAULT, IDLE, RUN, Store, at, rules, status

K = TransitionKind


def test_a_night_and_a_morning() -> None:
    r = rules()
    store = Store(EscalationConfig(after=900, max_level=2))
    gw_online = GatewayFacts("gw-1", online=True, changed_at=at("mon", "00:00"), skew=0.3, machines=("cnc-01",))

    def tick(now: float, cnc: MachineFacts, gateway: GatewayFacts = gw_online, historic: bool = False) -> None:
        store.tick(r.everything(now, [cnc], [gateway], []), now, historic)

    # Monday 02:00, outside shift hours: idle since Sunday evening opens nothing
    idle_night = MachineFacts(status("cnc-01", IDLE, at("sun", "20:00")))
    tick(at("mon", "02:00"), idle_night)
    assert store.alerts == {}
    # 02:30: a fault opens at once, at night too; 03:00 it is reset and the alert resolves on its own
    tick(at("mon", "02:30"), MachineFacts(status("cnc-01", FAULT, at("mon", "02:30"), fault_code=101)))
    fault = store.one(Rule.FAULT)
    assert fault.message.en == "CNC 1 (cnc-01) fault 101: spindle overload"
    idle_early = MachineFacts(status("cnc-01", IDLE, at("mon", "03:00")), stopped_since=at("mon", "02:30"))
    tick(at("mon", "03:00"), idle_early)
    assert store.alerts[fault.id].status is AlertStatus.RESOLVED
    # the shift starts at 08:00; ten minutes of shift time later the long stop opens
    tick(at("mon", "08:09"), idle_early)
    assert [a.rule for a in store.active()] == []
    tick(at("mon", "08:10"), idle_early)
    stop = store.one(Rule.LONG_STOP)
    assert stop.since == at("mon", "02:30")
    # nobody reacts for fifteen minutes: level 1; then the maintenance lead takes it
    tick(at("mon", "08:25"), idle_early)
    assert store.one(Rule.LONG_STOP).level == 1
    store.apply(acknowledge(store.one(Rule.LONG_STOP), by="张工", note="等物料", now=at("mon", "08:27")))
    # it runs again at 08:40 and makes a part at 08:41; no part for 3 min after that: a stall
    running = MachineFacts(status("cnc-01", RUN, at("mon", "08:40"), last_part_at=at("mon", "08:41")))
    tick(at("mon", "08:43", 59), running)
    assert store.alerts[stop.id].status is AlertStatus.RESOLVED
    tick(at("mon", "08:44"), running)
    assert store.one(Rule.STALL).since == at("mon", "08:41")
    # the gateway drops off at 09:00: after the grace, an alert; the stall is unknown meanwhile
    gone = GatewayFacts("gw-1", online=False, changed_at=at("mon", "09:00"), skew=0.3, machines=("cnc-01",))
    stale = MachineFacts(status("cnc-01", RUN, at("mon", "08:40"), last_part_at=at("mon", "08:41"),
                                gateway_online=False))
    tick(at("mon", "09:00", 29), stale, gone)
    tick(at("mon", "09:00", 30), stale, gone)
    assert store.one(Rule.GATEWAY_OFFLINE, "gw-1").status is AlertStatus.OPEN
    stall = store.one(Rule.STALL)  # not resolved by stale facts; still escalating: nobody took it on
    assert (stall.status, stall.level) == (AlertStatus.OPEN, 1)
    # 09:10 it is back; its backlog (historic) shows a fault at 09:05 and running again at 09:06
    back = GatewayFacts("gw-1", online=True, changed_at=at("mon", "09:10"), skew=0.3, machines=("cnc-01",))
    backlog_fault = MachineFacts(status("cnc-01", FAULT, at("mon", "09:05"), fault_code=101), historic=True)
    now = at("mon", "09:10")
    store.tick(combine([r.machine(backlog_fault, now), r.gateway(back, now)]), now)
    assert store.one(Rule.FAULT).historic
    backlog_run = MachineFacts(status("cnc-01", RUN, at("mon", "09:06"), last_part_at=at("mon", "09:09")),
                               historic=True)
    store.tick(r.machine(backlog_run, now + 1), now + 1)

    assert store.kinds == [
        ("cnc-01", K.OPENED),  # fault at 02:30
        ("cnc-01", K.RESOLVED),  # reset at 03:00
        ("cnc-01", K.OPENED),  # long stop at 08:10
        ("cnc-01", K.ESCALATED),  # 08:25
        ("cnc-01", K.ACKNOWLEDGED),  # 08:27
        ("cnc-01", K.RESOLVED),  # running at 08:40
        ("cnc-01", K.OPENED),  # stall at 08:44
        ("cnc-01", K.ESCALATED),  # the stall, 15 min later (09:00:29)
        ("gw-1", K.OPENED),  # gateway offline at 09:00:30
        ("gw-1", K.RESOLVED),  # back at 09:10
        ("cnc-01", K.RESOLVED),  # the stall: the backlog says it was no longer running
    ]  # the historic fault at 09:05 opened and resolved without paging anyone
    historic = [a for a in store.alerts.values() if a.historic]
    assert [(a.rule, a.status) for a in historic] == [(Rule.FAULT, AlertStatus.RESOLVED)]
    assert len(store.sent) == len(set(store.sent)) == 11
