"""Orders, dispatch lists and the Gantt schedule as API answers, from the book and the latest projection.

The book is always current (a change is in it once committed); the projection is the latest
pass's (``projected_at``), a few seconds old at most, so a freshly created order may show no
projected finish until the next pass (the API waits briefly for it after a write).
"""

from __future__ import annotations

from central.orders.book import OrderBook
from central.orders.projector import Projector
from central.orders.summary import finite
from central.orders.views import (
    DispatchEntry,
    DispatchList,
    GanttBlock,
    GanttRow,
    OperationPublic,
    OrderPublic,
    Schedule,
    WhyPublic,
)
from central.progress.delay import CAUSE_TEXTS
from central.progress.orders import Operation, OpKey, WorkOrder
from central.progress.outlook import OpProjection
from central.progress.progress import OperationProgress, effective_quantities, order_progress
from central.progress.shifts import Calendar

MAX_BLOCKS = 5000


def order_public(book: OrderBook, projector: Projector, order_id: str, *, operations: bool) -> OrderPublic:
    """One order (``operations``: with each operation's progress and projected times). NotFoundError if unknown.

    ``GET /api/v1/orders/{id}`` answers the same content incrementally (``central/orders/rows.py``)."""
    plan = book.plan
    order = plan.order(order_id)
    projection = projector.projection
    ops = None
    parts = {k: book.parts(k) for k in order.op_keys()}
    finishes: dict[OpKey, float | None] = {}
    if projection is not None:
        finishes = {k: finite(projection.ops[k].finish) for k in order.op_keys() if k in projection.ops}
    progress = order_progress(plan, order_id, parts, {}, projector.clock(), finishes=finishes)
    if operations:
        quantities = effective_quantities(plan, order, parts)
        running = book.running()
        ops = [operation_public(plan.operations[p.key], p, quantities[p.key], running.get(p.key, []),
                                projection.ops.get(p.key) if projection is not None else None)
               for p in progress.operations]
    return order_head(projector, order, percent=round(progress.percent, 2), finished=progress.finished,
                      operations=ops)


def operation_public(op: Operation, p: OperationProgress, quantity: int, running_on: list[str],
                     proj: OpProjection | None) -> OperationPublic:
    """One operation's row: its plan record, progress (``p``, of ``quantity``) and projected times."""
    return OperationPublic(
        seq=op.seq, name=op.name, machine=op.machine, work_centre=op.work_centre, job=op.job,
        status=op.status.value, quantity=quantity, good=p.good, scrap=p.scrap, over=p.over,
        percent=round(p.percent, 2), rate_per_hour=round(p.rate_per_hour, 3),
        ideal_cycle_time=op.ideal_cycle_time, setup_time=op.setup_time, running_on=running_on,
        projected_start=finite(proj.start) if proj else None,
        projected_finish=finite(proj.finish) if proj else None,
        bound_by=proj.binding.value if proj else None,
        shortage={"expected": op.shortage.expected, "note": op.shortage.note} if op.shortage else None,
    )


def order_head(projector: Projector, order: WorkOrder, *, percent: float, finished: int,
               operations: list[OperationPublic] | None) -> OrderPublic:
    """The order-level fields (its risk and projected finish from the projector's summary) around ``operations``."""
    summary = projector.summaries.get(order.id)
    finding = summary.finding if summary is not None else None
    why = None
    if finding is not None and finding.why is not None:
        w = finding.why
        why = WhyPublic(cause=w.cause.value, order_id=w.operation[0] if w.operation else None,
                        seq=w.operation[1] if w.operation else None, machine=w.machine,
                        lost_seconds=finite(w.lost), down=w.down.value if w.down else None, rush_order=w.rush_order,
                        text_zh=finding.message.zh, text_en=finding.message.en)
    eta = summary.eta if summary is not None and order.status.value == "open" else None
    return OrderPublic(
        id=order.id, product=order.product, customer=order.customer, quantity=order.quantity, due=order.due,
        priority=order.priority, notes=order.notes, rush=order.rush, status=order.status.value,
        percent=percent, finished=finished, projected_finish=eta,
        at_risk=bool(summary and summary.at_risk), overdue=bool(summary and summary.overdue), why=why,
        created_at=order.created_at, operations=operations,
    )


def dispatch_list(book: OrderBook, projector: Projector, machine_id: str) -> DispatchList:
    """The machine's queue (its own list, then its work centre's), in dispatch order."""
    plan = book.plan
    centre = book.catalog.machine(machine_id).work_centre
    keys: list[OpKey] = list(plan.dispatch.get(machine_id, ()))
    if centre is not None:
        keys += plan.dispatch.get("wc:" + centre, ())
    projection = projector.projection
    entries = []
    for i, key in enumerate(keys):
        op, order = plan.operations[key], plan.orders[key[0]]
        proj = projection.ops.get(key) if projection is not None else None
        summary = projector.summaries.get(key[0])
        entries.append(DispatchEntry(
            position=i, order_id=key[0], seq=key[1], name=op.name, status=op.status.value, job=op.job,
            quantity=op.quantity, good=book.parts(key).good, due=order.due, rush=order.rush,
            at_risk=bool(summary and (summary.at_risk or summary.overdue)),
            projected_start=finite(proj.start) if proj else None,
            projected_finish=finite(proj.finish) if proj else None,
            shortage={"expected": op.shortage.expected, "note": op.shortage.note} if op.shortage else None,
        ))
    running = book.running_on(machine_id)
    unmatched = book.unmatched.get(machine_id)
    unassigned = book.unassigned.get(machine_id)
    return DispatchList(
        machine_id=machine_id, server_time=projector.clock(), running=[f"{running[0]}/{running[1]}"] if running else [],
        unmatched_job=unmatched.job if unmatched is not None else None,
        unassigned_good=unassigned.good if unassigned else 0, unassigned_scrap=unassigned.scrap if unassigned else 0,
        work_centre=centre, operations=entries,
    )


def schedule(book: OrderBook, projector: Projector, start: float, end: float,
             machines: list[str] | None = None) -> Schedule:
    """Gantt rows per machine in ``[start, end)``: operations and their setups, repair blocks, off-shift time."""
    projection = projector.projection
    rows: dict[str, list[GanttBlock]] = {}
    wanted = set(machines) if machines else None
    names = set(projector.outlooks) | {q for q in book.plan.dispatch if not q.startswith("wc:")}
    for machine_id in sorted(names):
        if wanted is None or machine_id in wanted:
            rows[machine_id] = []
    count = 0
    if projection is not None:
        for key, p in projection.ops.items():
            if p.finish <= start or p.start >= end or p.start == float("inf"):
                continue
            op = book.plan.operations.get(key)
            summary = projector.summaries.get(key[0])
            risky = bool(summary and (summary.at_risk or summary.overdue))
            due = book.plan.orders[key[0]].due if key[0] in book.plan.orders else None
            label = f"{key[0]}/{key[1]} {op.name}" if op is not None else f"{key[0]}/{key[1]}"
            for machine_id in p.machines:
                if machine_id not in rows or count >= MAX_BLOCKS:
                    continue
                setup_end = min(p.finish, p.start + p.setup) if p.setup > 0 else p.start
                if setup_end > p.start:
                    rows[machine_id].append(GanttBlock(kind="setup", start=p.start, end=setup_end, order_id=key[0],
                                                       seq=key[1], label=label, at_risk=risky, due=due))
                rows[machine_id].append(GanttBlock(kind="operation", start=setup_end, end=finite(p.finish),
                                                   order_id=key[0], seq=key[1], label=label, at_risk=risky, due=due))
                count += 2
    for machine_id, blocks in rows.items():
        outlook = projector.outlooks.get(machine_id)
        if outlook is not None and outlook.down is not None:
            blocks.append(GanttBlock(kind="down", start=projection.now if projection else start,
                                     end=outlook.down[0], label=outlook.down[1].value))
        if outlook is not None:
            blocks.extend(_off_shift(outlook.calendar, start, end))
        blocks.sort(key=lambda b: (b.start, b.kind))
    dues: list[dict[str, object]] = [
        {"order_id": o.id, "due": o.due, "at_risk": bool((s := projector.summaries.get(o.id)) and s.at_risk)}
        for o in book.plan.orders.values() if o.status.value == "open" and start <= o.due < end]
    deadlocks = [" <-> ".join(d.queues) for d in projection.deadlocks] if projection is not None else []
    return Schedule(server_time=projector.clock(), start=start, end=end,
                    projected_at=projection.now if projection else None,
                    rows=[GanttRow(machine_id=m, blocks=b) for m, b in rows.items()],
                    due=sorted(dues, key=lambda d: (d["due"], d["order_id"])), deadlocks=deadlocks)


def _off_shift(calendar: Calendar, start: float, end: float) -> list[GanttBlock]:
    """The unplanned spans (outside shifts, breaks, days off) of ``[start, end)``."""
    out: list[GanttBlock] = []
    at = start
    for lo, hi in calendar.planned(start, end):
        if lo > at:
            out.append(GanttBlock(kind="off", start=at, end=lo))
        at = max(at, hi)
        if len(out) > MAX_BLOCKS // 10:
            break
    if at < end and len(out) <= MAX_BLOCKS // 10:
        out.append(GanttBlock(kind="off", start=at, end=end))
    return out


CAUSES = {c.value: {"zh": t.zh, "en": t.en} for c, t in CAUSE_TEXTS.items()}
