"""``/api/v1/orders``, dispatch lists and the schedule: work orders (issue 13; docs/progress.md, "Work orders").

Reads need a read key (as every data route), writes a write key; the key's name is the actor in
the audit trail. A change the plan cannot take answers 400 (invalid for this plan), 404 (no such
order or operation) or 409 (it contradicts the plan's state: the id exists, the operation is
done ...), each with a message that says what to do; never 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from central.api.deps import CentralDep, Window, Writer, _instant
from central.api.schemas import Problem
from central.orders.render import dispatch_list, order_public, schedule
from central.orders.views import (
    CancelIn,
    DispatchList,
    MaterialIn,
    MoveIn,
    OperationAccepted,
    OrderCreate,
    OrderList,
    OrderPatch,
    OrderPublic,
    Schedule,
    StartIn,
    UnassignedCount,
    UnassignedList,
)
from central.progress.orders import ORDER_ID, ConflictError, NotFoundError, OrderError
from central.runtime import Central

router = APIRouter(prefix="/api/v1", tags=["orders"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the change is not valid for this plan (the message says why)"},
    404: {"model": Problem, "description": "no such order or operation"},
    409: {"model": Problem, "description": "it contradicts the plan's state (e.g. the order id exists)"},
}
SETTLE = 2.0  # seconds a write waits for the projection that includes it
MAX_SCHEDULE = 60 * 86_400.0
MAX_UNASSIGNED = 10_000


@contextlib.contextmanager
def _plan_errors() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except OrderError as exc:
        raise HTTPException(400, str(exc)) from None


async def _settled(central: Central) -> None:
    """Wait briefly for the projection pass that includes a write (the answer then has its projection)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE):
            await central.projector.settled()


def _one(central: Central, order_id: str) -> OrderPublic:
    with _plan_errors():
        return order_public(central.orders, central.projector, order_id, operations=True)


@router.post("/orders", status_code=201, response_model=OrderPublic, responses=ERRORS,
             summary="Create a work order with its operations (rush: insert it ahead of the queues)")
async def create_order(body: OrderCreate, central: CentralDep, who: Writer) -> OrderPublic:
    positions = body.insert.positions if body.insert is not None else None
    with _plan_errors():
        await central.orders.create(body.order(), by=who, rush=body.rush or body.insert is not None,
                                    positions=positions)
    await _settled(central)
    return _one(central, body.id)


@router.get("/orders", response_model=OrderList, summary="Work orders, filtered; most urgent due time first")
async def list_orders(
    central: CentralDep,
    status: Annotated[Literal["open", "done", "cancelled", "all"], Query(description="default: open")] = "open",
    due_from: Annotated[str | None, Query(description="due at or after: Unix seconds or ISO 8601")] = None,
    due_to: Annotated[str | None, Query(description="due before: Unix seconds or ISO 8601")] = None,
    at_risk: Annotated[bool | None, Query(description="true: only at risk or overdue; false: only the others")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> OrderList:
    lo, hi = _instant(due_from, "due_from"), _instant(due_to, "due_to")
    chosen = []
    for order in sorted(central.orders.plan.orders.values(), key=lambda o: (o.due, o.id)):
        if status != "all" and order.status.value != status:
            continue
        if (lo is not None and order.due < lo) or (hi is not None and order.due >= hi):
            continue
        if at_risk is not None:
            s = central.projector.summaries.get(order.id)
            if bool(s and (s.at_risk or s.overdue)) != at_risk:
                continue
        chosen.append(order.id)
    page = chosen[offset:offset + limit]
    projection = central.projector.projection
    return OrderList(server_time=central.clock(), projected_at=projection.now if projection else None,
                     orders=[order_public(central.orders, central.projector, oid, operations=False) for oid in page])


@router.get("/orders/{order_id}", response_model=OrderPublic, responses=ERRORS,
            summary="One order: status, percent, projected finish, why at risk, each operation's progress")
async def get_order(order_id: str, central: CentralDep) -> Response:
    with _plan_errors():  # kept as JSON until the order or the projection changes (central/orders/answers.py)
        return Response(central.order_answers.order_json(order_id), media_type="application/json")


@router.patch("/orders/{order_id}", response_model=OrderPublic, responses=ERRORS,
              summary="Change quantity, due time, priority or notes")
async def patch_order(order_id: str, body: OrderPatch, central: CentralDep, who: Writer) -> OrderPublic:
    with _plan_errors():
        await central.orders.change(order_id, body, by=who)
    await _settled(central)
    return _one(central, order_id)


@router.post("/orders/{order_id}/cancel", response_model=OrderPublic, responses=ERRORS,
             summary="Cancel an order: its open operations leave the dispatch lists")
async def cancel_order(order_id: str, central: CentralDep, who: Writer, body: CancelIn | None = None) -> OrderPublic:
    with _plan_errors():
        await central.orders.cancel(order_id, by=who, reason=body.reason if body else None)
    await _settled(central)
    return _one(central, order_id)


def _key(order_id: str, seq: int) -> tuple[str, int]:
    if not re.match(ORDER_ID, order_id):
        raise HTTPException(404, f"no order {order_id!r}")
    if not 1 <= seq <= 1_000_000:
        raise HTTPException(404, f"no operation {seq} in order {order_id!r}")
    return (order_id, seq)


async def _op_answer(central: Central, key: tuple[str, int]) -> OperationAccepted:
    await _settled(central)
    op = central.orders.plan.operations[key]
    running = central.orders.running()
    machines = running.get(key)
    return OperationAccepted(order_id=key[0], seq=key[1], status=op.status.value,
                             machine=machines[0] if machines else op.machine)


@router.post("/orders/{order_id}/operations/{seq}/start", response_model=OperationAccepted, responses=ERRORS,
             summary="Start (or resume) an operation now on its machine (a work-centre operation: name the machine)")
async def start_operation(order_id: str, seq: int, central: CentralDep, who: Writer,
                          body: StartIn | None = None) -> OperationAccepted:
    key = _key(order_id, seq)
    with _plan_errors():
        await central.orders.start(key, by=who, machine=body.machine if body else None)
    return await _op_answer(central, key)


@router.post("/orders/{order_id}/operations/{seq}/pause", response_model=OperationAccepted, responses=ERRORS,
             summary="Pause a running operation (counts after it are unassigned until something starts)")
async def pause_operation(order_id: str, seq: int, central: CentralDep, who: Writer) -> OperationAccepted:
    key = _key(order_id, seq)
    with _plan_errors():
        await central.orders.pause(key, by=who)
    return await _op_answer(central, key)


@router.post("/orders/{order_id}/operations/{seq}/finish", response_model=OperationAccepted, responses=ERRORS,
             summary="Finish an operation now (short of its quantity: later operations are capped)")
async def finish_operation(order_id: str, seq: int, central: CentralDep, who: Writer) -> OperationAccepted:
    key = _key(order_id, seq)
    with _plan_errors():
        await central.orders.finish(key, by=who)
    return await _op_answer(central, key)


@router.post("/orders/{order_id}/operations/{seq}/move", response_model=OperationAccepted, responses=ERRORS,
             summary="Move a queued operation to another machine, work centre or position")
async def move_operation(order_id: str, seq: int, body: MoveIn, central: CentralDep, who: Writer) -> OperationAccepted:
    key = _key(order_id, seq)
    with _plan_errors():
        await central.orders.move(key, by=who, machine=body.machine, work_centre=body.work_centre,
                                  position=body.position)
    return await _op_answer(central, key)


@router.post("/orders/{order_id}/operations/{seq}/material", response_model=OperationAccepted, responses=ERRORS,
             summary="Mark an operation short of material until an expected arrival (or clear it)")
async def material(order_id: str, seq: int, body: MaterialIn, central: CentralDep, who: Writer) -> OperationAccepted:
    key = _key(order_id, seq)
    with _plan_errors():
        await central.orders.material(key, body, by=who)
    return await _op_answer(central, key)


@router.get("/machines/{machine_id}/dispatch", response_model=DispatchList,
            summary="A machine's dispatch list (its own, then its work centre's), with projected times")
async def machine_dispatch(machine_id: str, central: CentralDep) -> DispatchList:
    known = (machine_id in central.live.statuses or machine_id in central.orders.plan.dispatch
             or machine_id in central.orders.book)
    if not known:
        raise HTTPException(404, f"no machine '{machine_id}' (GET /api/v1/machines lists them)")
    return dispatch_list(central.orders, central.projector, machine_id)


@router.get("/machines/{machine_id}/unassigned", response_model=UnassignedList,
            summary="Count events of a machine with no operation running at their time, in a window")
async def machine_unassigned(machine_id: str, central: CentralDep, win: Window) -> UnassignedList:
    start, end = win
    rows = await central.store.unassigned_counts(machine_id, start, end, limit=MAX_UNASSIGNED)
    events = [UnassignedCount(at=c.record.at, start=c.record.start, good=c.record.good, scrap=c.record.scrap,
                              job=c.record.job, edge_id=c.edge_id, epoch=c.epoch, seq=c.seq) for c in rows]
    return UnassignedList(machine_id=machine_id, start=start, end=end, good=sum(e.good for e in events),
                          scrap=sum(e.scrap for e in events), events=events)


@router.get("/schedule", response_model=Schedule,
            summary="Projected schedule per machine (Gantt data): operations, setups, repairs, off-shift time, dues")
async def get_schedule(
    central: CentralDep,
    start: Annotated[str | None, Query(description="Unix seconds or ISO 8601; default: now")] = None,
    end: Annotated[str | None, Query(description="Unix seconds or ISO 8601; default: start + 7 days")] = None,
    machine: Annotated[list[str] | None, Query(description="only these machines (repeat the parameter)")] = None,
) -> Schedule:
    lo = _instant(start, "start")
    lo = central.clock() if lo is None else lo
    hi = _instant(end, "end")
    hi = lo + 7 * 86_400.0 if hi is None else hi
    if hi <= lo:
        raise HTTPException(400, f"the window is empty: end ({hi}) must be after start ({lo})")
    if hi - lo > MAX_SCHEDULE:
        raise HTTPException(400, f"the window is {hi - lo:.0f} s long; at most {MAX_SCHEDULE:.0f} s (60 days)")
    return schedule(central.orders, central.projector, lo, hi, machine)
