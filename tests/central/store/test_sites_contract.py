"""Two plants in one database never merge (issue 15: the site in every key), on every store implementation.

Two stores of two sites share one database and write the very same keys -- gateway ``gw1`` with the same
epoch and seqs, machine ``m1``, order ``SO-1``, the same alert, notification, report and stop-reason ids --
with different values. Each store must read back exactly what its own site wrote, every replayed key of the
other site must still be written (not taken for a duplicate), and one site's retention, delivery updates and
order changes must leave the other's rows alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from central.alerts.conditions import Condition, Rule, Severity, Texts
from central.alerts.lifecycle import reconcile
from central.progress.assignment import StartCause, assign
from central.progress.orders import Plan
from central.progress.reports import Report, ReportIn
from central.progress.status import MachineStatus
from central.progress.stops import StopCause, StopReasonIn, accept_stop
from central.store.base import Retention, Store
from central.store.extra_records import ExtraWrites, RepairEta, SummaryRow
from central.store.order_records import OrderWrites
from central.store.records import Delivery, Transaction
from tests.central.store.test_contract import DAY, Opener, T, a_plan, a_round, count, opener  # noqa: F401
from tests.fixtures.ids import EPOCH1


def everything(good: int) -> Transaction:
    """One commit touching every table, its values marked by ``good`` (each site writes its own)."""
    tx = a_round()
    tx.counts = [replace(c, record=replace(c.record, good=good)) for c in tx.counts]
    tx.statuses["m1"] = MachineStatus("m1", good_total=good)
    fault = Condition(Rule.FAULT, "m1", Severity.CRITICAL, Texts(f"故障 {good}", f"fault {good}"), since=T,
                      episode="7")
    result = reconcile([], [fault], T)
    (change,) = result.changes
    tx.alerts = {change.alert.id: change.alert}
    tx.notifications = list(result.notifications)
    tx.deliveries = [Delivery(n.id, "robot", next_at=T) for n in result.notifications]
    plan, audit = a_plan()
    key = ("SO-1", 10)
    w = OrderWrites(reports=[Report(ReportIn(client_id="c-1", operator=f"op{good}", order_id="SO-1", seq=10,
                                             good=good), T + 5, correction=True)])
    w.plan(Plan(), plan)
    w.audit.append(replace(audit, by=f"planner{good}"))
    w.segments("m1", T + 10, assign({}, "m1", key, T + 10, StartCause.JOB).book["m1"])
    tx.orders = w
    tx.counts.append(replace(count(7, T + 20, good), op=key))
    body = StopReasonIn(client_id="s-1", operator=f"op{good}", machine="m1", reason=StopCause.MATERIAL, start=T,
                        end=T + 60)
    tx.extras = ExtraWrites(stops=[accept_stop(None, body, at=T + 1)[0]],
                            summaries=[SummaryRow("plant/day/1", None, "day", T, T + 8, T + 9, {"n": good})],
                            repairs=[RepairEta("m1", T + 600 * good, f"maint{good}", T)])
    return tx


async def reads(store: Store) -> dict[str, Any]:
    """Every read the store offers, as comparable values."""
    loaded = await store.load()
    orders = await store.load_orders()
    return {
        "statuses": loaded.statuses, "epochs": loaded.epochs, "gateways": loaded.gateways,
        "dead": loaded.dead_letters, "gaps": loaded.gaps,
        "counts": await store.counts(None, 0, T + DAY), "m1": await store.counts("m1", 0, T + DAY),
        "intervals": await store.intervals("m1", 0, T + DAY), "between": await store.intervals_between(0, T + DAY),
        "from": await store.intervals_from("m1", 0), "gap_rows": await store.gaps("gw1"),
        "letters": [(d.topic, d.reason) for d in await store.dead_letters()],
        "active": [a.message for a in await store.active_alerts()], "alerts": [a.id for a in await store.alerts()],
        "alert": [await store.alert(a.id) for a in await store.alerts()],
        "next": await store.next_delivery_at("robot"), "deliveries": await store.delivery_counts(),
        "sent": await store.sent_since("robot", 0),
        "plan": orders.plan, "book": orders.book, "tallies": orders.tallies, "reports": orders.reports,
        "unassigned": orders.unassigned,
        "audit": [(a.by, a.action) for a in await store.audit_trail()],
        "attributed": await store.attributed_counts("m1", 0), "unassigned_counts": await store.unassigned_counts(
            None, 0, T + DAY), "op": await store.op_counts(("SO-1", 10)),
        "report_rows": await store.reports_between(0, T + DAY),
        "stop": await store.stop_reason("s-1"), "stops": await store.stop_reasons(None, 0, T + DAY),
        "summary": await store.shift_summary("plant/day/1"), "summaries": await store.shift_summaries(),
        "repairs": await store.repair_etas(),
    }


async def test_two_sites_writing_the_same_keys_in_one_database_never_merge(opener: Opener) -> None:  # noqa: F811
    a, b = await opener("suzhou-1"), await opener("ningbo-2")
    await a.commit(everything(1))
    only_a = await reads(a)
    assert only_a["m1"] and only_a["plan"].orders and only_a["stop"] is not None and only_a["repairs"]
    assert all(c.good == 1 for c in only_a["counts"]) and only_a["statuses"]["m1"].good_total == 1
    assert await reads(b) == await reads(await opener("empty"))  # nothing of suzhou-1's is ningbo-2's

    await b.commit(everything(2))  # the same gateway, epoch and seqs, order, ids: all new for ningbo-2
    assert await reads(a) == only_a
    got_b = await reads(b)
    assert [c.good for c in got_b["m1"]] == [2, 2, 2, 2]
    assert got_b["statuses"]["m1"].good_total == 2 and got_b["reports"]["c-1"].content.operator == "op2"
    assert got_b["stop"].content.operator == "op2" and got_b["summary"].data == {"n": 2}
    assert [r.by for r in got_b["repairs"]] == ["maint2"] and got_b["audit"] == [("planner2", "create")]
    assert got_b["active"][0].en == "fault 2" and got_b["tallies"][("SO-1", 10)].good == 2

    # one site's sender, retention and order changes leave the other site's rows alone
    (due, _), = await b.due_deliveries(T + 1, "robot")
    await b.update_deliveries([replace(due, status="sent", attempts=1, sent_at=T + 2)])
    await b.purge(T + 1000 * DAY, Retention(events_days=1, dead_letters_days=1, history_days=1))
    gone = OrderWrites()
    gone.dispatch["m1"] = ()
    gone.segments("m1", 0, ())
    await b.commit(Transaction(orders=gone))
    assert await reads(a) == only_a
    after_b = await reads(b)
    assert after_b["counts"] == [] and after_b["deliveries"] == {"sent": 1} and after_b["book"] == {}
    assert (await a.due_deliveries(T + 1, "robot"))[0][0].notification_id == due.notification_id  # a's own, pending
    assert EPOCH1 in {e.epoch for e in after_b["epochs"]}
