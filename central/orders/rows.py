"""``GET /api/v1/orders/{id}`` rendered incrementally: each operation's row is kept as JSON and redone only
when what it shows changed (issue 13, "Benchmarks": p99 under 50 ms also right after a change).

Why: rendering an order of 10,000 operations from scratch (``render.order_public``: progress, one
validated pydantic row per operation, serialization) takes about a second, and a live order changes
with every ingest round that counts for it and every projector pass, so a poller paid that second
again and again. Now a row is kept per operation in two parts:

* **its plan and progress part** (``seq`` .. ``running_on`` and ``shortage``), rendered by the same
  ``render.operation_public`` as the full answer, and redone only when its inputs differ: the
  operation record of the plan (immutable: identity, then equality), its effective planned quantity
  (capped by an upstream operation done short), its good and scrap (book counts and reports), and the
  machines running it. A count on one operation redoes its row (and, on an operation done short,
  the rows whose cap it moves);
* **its projected part** (``projected_start``, ``projected_finish``, ``bound_by``), from the
  projector's current result. A pass moves nearly every operation's times (they start from "now"),
  so they are all written again when the projection is another one, column-wise and cheaply: every
  row's times in one ``to_json`` call (pydantic-core's own float format, the one ``model_dump_json``
  writes), the labels from a table.

Finding what changed takes little Python per row: inputs are compared only where they can differ
(the plan's operations only when the plan is another object, by identity first; quantities only when
the plan changed or an operation done counted; good and scrap of the operations that have parts, found
by one comprehension over the order's operations; the machines running), and the answer is put
together by slice assignments and one ``bytes.join``. The order-level fields (status, percent, finished, projected
finish, risk and why) are rendered at every assembly by ``render.order_head`` (one small model);
percent and finished are summed again only after a row changed, with the same arithmetic, in the same
order, as ``order_progress``. No per-row pydantic validation on the path of a pass or of a count
elsewhere than on the counted operation.

**Time.** No field of this answer is computed from the request's "now": the rows show no ETA or
remaining time (``order_progress`` uses "now" only for those), ``rate_per_hour`` comes from the ideal
cycle time, and everything that moves with time (projected times, the order's projected finish,
at risk, overdue, why) is the projector's, made at its pass. So rows need no time bucket: a pass
brings another projection, from which every row's projected part is written again (the test renders
the same answer with the clock a month on); ``answers.MAX_AGE`` still bounds a kept answer's age.

Rows are kept for the most recently asked orders, up to ``ROWS_KEPT`` rows in all (the order just
asked is always kept). The test ``tests/central/orders/test_order_rows.py`` compares the answer byte
for byte with ``order_public(...).model_dump_json()`` after counts, passes and plan changes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pydantic_core import to_json

from central.orders.book import OrderBook
from central.orders.projector import Projector
from central.orders.render import operation_public, order_head
from central.progress.assignment import Tally
from central.progress.orders import Operation, OpKey, OpStatus, Plan, WorkOrder
from central.progress.outlook import Binding, Projection
from central.progress.progress import Rate, effective_quantities, operation_progress

ROWS_KEPT = 50_000
_MARK = b',"projected_start":null,"projected_finish":null,"bound_by":null,'
_OPEN = b'"operations":null}'
_START, _FINISH, _BOUND = b',"projected_start":', b',"projected_finish":', b',"bound_by":'
_LABELS = {b: to_json(b.value) for b in Binding}


@dataclass(slots=True, eq=False)
class _Kept:
    """One order's rows in routing order (columns), and what they were rendered from."""

    seqs: tuple[int, ...]  # the routing
    keys: list[OpKey]
    index: dict[OpKey, int]
    plan: int  # the plan's generation (OrderRows holds the latest plan only: none is kept alive here)
    ops: list[Operation]
    counted: dict[OpKey, tuple[int, int]]  # good, scrap of the operations with parts
    quantities: dict[OpKey, int]
    running: dict[OpKey, tuple[str, ...]]
    heads: list[bytes]  # '{"seq":...,"running_on":[...],"projected_start":'
    tails: list[bytes]  # ',"shortage":...},'
    percent: float = 0.0
    finished: int = 0
    projection: int = -1  # the projection's generation its projected parts come from
    starts: list[bytes] = field(default_factory=list)
    finishes: list[bytes] = field(default_factory=list)
    labels: list[bytes] = field(default_factory=list)


class OrderRows:
    """The kept rows per order; ``render`` gives the whole answer as JSON bytes."""

    def __init__(self, *, kept: int = ROWS_KEPT) -> None:
        self.kept = kept
        self._orders: OrderedDict[str, _Kept] = OrderedDict()
        self._count = 0
        self.rendered = 0  # rows whose plan and progress part was rendered (tests, the benchmark)
        self.placed = 0  # rows whose projected part was written
        self._plan: Plan | None = None  # the latest plan and projection seen, and their generations
        self._projection: Projection | None = None
        self._generations = [0, 0]

    def render(self, book: OrderBook, projector: Projector, order_id: str) -> bytes:
        """The order with its operations, the content of ``order_public(..., operations=True)``
        (``NotFoundError`` if unknown)."""
        plan, projection = book.plan, projector.projection
        if plan is not self._plan:
            self._plan, self._generations[0] = plan, self._generations[0] + 1
        if projection is not self._projection:
            self._projection, self._generations[1] = projection, self._generations[1] + 1
        order = plan.order(order_id)
        kept = self._orders.pop(order_id, None)
        if kept is not None:
            self._count -= len(kept.keys)
        keys = kept.keys if kept is not None and kept.seqs == order.seqs else order.op_keys()
        tallies, reported = book.tallies, book.reported
        parts = {k: book.parts(k) for k in keys if k in tallies or k in reported}
        counted = {k: (t.good, t.scrap) for k, t in parts.items()}
        running = {k: tuple(m) for k, m in book.running().items() if k[0] == order_id}
        if kept is None or kept.keys is not keys:
            kept = self._all(plan, order, keys, parts, counted, running)
        else:
            self._update(kept, plan, order, parts, counted, running)
        if kept.projection != self._generations[1]:
            self._place(kept, projection)
        self._keep(order_id, kept)
        head = order_head(projector, order, percent=round(kept.percent, 2), finished=kept.finished,
                          operations=None).model_dump_json().encode()
        if not head.endswith(_OPEN):
            raise AssertionError("OrderPublic no longer ends with its operations: update rows.py")
        n = len(keys)
        pieces = [b""] * (7 * n + 2)
        pieces[0] = head[:-len(b"null}")] + b"["
        pieces[1:7 * n + 1:7] = kept.heads
        pieces[2:7 * n + 1:7] = kept.starts
        pieces[3:7 * n + 1:7] = [_FINISH] * n
        pieces[4:7 * n + 1:7] = kept.finishes
        pieces[5:7 * n + 1:7] = [_BOUND] * n
        pieces[6:7 * n + 1:7] = kept.labels
        pieces[7:7 * n + 1:7] = kept.tails
        if n:
            pieces[7 * n] = pieces[7 * n][:-1]  # no comma after the last row
        pieces[-1] = b"]}"
        return b"".join(pieces)

    def _all(self, plan: Plan, order: WorkOrder, keys: list[OpKey], parts: dict[OpKey, Tally],
             counted: dict[OpKey, tuple[int, int]], running: dict[OpKey, tuple[str, ...]]) -> _Kept:
        """Every row rendered (the order asked first, or its routing changed)."""
        ops = [plan.operations[k] for k in keys]
        kept = _Kept(order.seqs, keys, {k: i for i, k in enumerate(keys)}, self._generations[0], ops, counted,
                     effective_quantities(plan, order, parts), running, [b""] * len(keys), [b""] * len(keys))
        for i in range(len(keys)):
            self._row(plan, kept, i, parts.get(keys[i]))
        _totals(kept)
        return kept

    def _update(self, kept: _Kept, plan: Plan, order: WorkOrder, parts: dict[OpKey, Tally],
                counted: dict[OpKey, tuple[int, int]], running: dict[OpKey, tuple[str, ...]]) -> None:
        """Render again the rows whose operation, quantity, parts or machines changed."""
        index, keys = kept.index, kept.keys
        dirty: set[int] = set()
        replanned = kept.plan != self._generations[0]
        if replanned:
            ops = [plan.operations[k] for k in keys]
            dirty.update(i for i, (a, b) in enumerate(zip(ops, kept.ops, strict=True)) if a is not b and a != b)
            kept.plan, kept.ops = self._generations[0], ops
        recounted = [k for k in counted.keys() | kept.counted.keys() if counted.get(k) != kept.counted.get(k)]
        dirty.update(index[k] for k in recounted)
        kept.counted = counted
        # a quantity depends on the plan and the good parts of the operations done before it
        if replanned or any(kept.ops[index[k]].status is OpStatus.DONE for k in recounted):
            quantities = effective_quantities(plan, order, parts)
            if quantities != kept.quantities:
                dirty.update(index[k] for k in keys if quantities[k] != kept.quantities[k])
            kept.quantities = quantities
        dirty.update(index[k] for k in running.keys() | kept.running.keys() if running.get(k) != kept.running.get(k))
        kept.running = running
        for i in dirty:
            self._row(plan, kept, i, parts.get(keys[i]))
        if dirty or replanned:
            _totals(kept)

    def _row(self, plan: Plan, kept: _Kept, i: int, tally: Tally | None) -> None:
        """Render row ``i``'s plan and progress part (as ``order_public`` does: the ideal rate, no "now" shown)."""
        key, op = kept.keys[i], kept.ops[i]
        quantity = kept.quantities[key]
        progress = operation_progress(plan, key, quantity, tally, Rate(op.ideal_cycle_time), 0.0)
        body = operation_public(op, progress, quantity, list(kept.running.get(key, ())),
                                None).model_dump_json().encode()
        at = body.rindex(_MARK)  # strings are escaped: the mark cannot occur inside a value
        kept.heads[i] = body[:at] + _START
        kept.tails[i] = b"," + body[at + len(_MARK):] + b","
        self.rendered += 1

    def _place(self, kept: _Kept, projection: Projection | None) -> None:
        """Write every row's projected part from ``projection`` (a float field writes an int as a float)."""
        kept.projection = self._generations[1]
        placed = projection.ops if projection is not None else {}
        found = list(map(placed.get, kept.keys))
        self.placed += len(found)
        if not found:
            kept.starts = kept.finishes = kept.labels = []
            return
        written = to_json([[None if p is None else float(p.start) for p in found],
                           [None if p is None else float(p.finish) for p in found]], inf_nan_mode="null")
        starts, finishes = written[2:-2].split(b"],[")  # JSON numbers hold no comma or bracket
        kept.starts, kept.finishes = starts.split(b","), finishes.split(b",")
        kept.labels = [b"null" if p is None else _LABELS[p.binding] for p in found]

    def _keep(self, order_id: str, kept: _Kept) -> None:
        self._orders[order_id] = kept
        self._count += len(kept.keys)
        while self._count > self.kept and len(self._orders) > 1:
            _, dropped = self._orders.popitem(last=False)
            self._count -= len(dropped.keys)


def _totals(kept: _Kept) -> None:
    """Percent and finished of the order, summed as ``order_progress`` sums them (the same floats)."""
    done_work = total_work = 0.0
    quantities, counted = kept.quantities, kept.counted
    for key, op in zip(kept.keys, kept.ops, strict=True):
        quantity, ict = quantities[key], op.ideal_cycle_time
        good = counted[key][0] if key in counted else 0
        total_work += quantity * ict
        done_work += max(0, min(good, quantity)) * ict
    kept.percent = 100.0 * done_work / total_work if total_work > 0 else 100.0
    kept.finished = 0
    for key, op in zip(reversed(kept.keys), reversed(kept.ops), strict=True):
        if op.status is not OpStatus.CANCELLED:
            kept.finished = counted[key][0] if key in counted else 0
            break
