"""``GET /api/v1/orders/{id}`` answers kept as JSON until their order, its counts or the projection change.

Why: an order of 10,000 operations takes about a second to render from scratch, while the page and an
ERP poll it every few seconds and it changes only when a count, a report, a person or a projection
pass touches it (issue 13, "Benchmarks": p99 under 50 ms). Each answer is stamped with the
order's change count (from the book's listeners: ingest rounds, people's changes, reports), the
projector's pass number and the plan's identity; a stamp that differs, or an answer older than
``MAX_AGE`` (a safety net: no field is computed from the request's time, see ``rows.py``), is
assembled again from the rows kept per operation (``rows.OrderRows``: only the rows whose inputs
changed are rendered again). At most ``SIZE`` answers are kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from central.orders.book import BookChanged, OrderBook
from central.orders.projector import Projector
from central.orders.rows import OrderRows

MAX_AGE = 30.0
SIZE = 256


class OrderAnswers:
    def __init__(self, book: OrderBook, projector: Projector, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.book, self.projector, self.clock = book, projector, clock
        self.versions: dict[str, int] = {}
        self._kept: OrderedDict[str, tuple[tuple[int, int, int], float, bytes]] = OrderedDict()
        self.rows = OrderRows()
        self.hits = self.misses = 0
        book.listeners.append(self._changed)

    def _changed(self, changed: BookChanged) -> None:
        for order_id in changed.orders:
            self.versions[order_id] = self.versions.get(order_id, 0) + 1

    def order_json(self, order_id: str) -> bytes:
        """The order with its operations as JSON (``orders.NotFoundError`` if unknown)."""
        stamp = (self.versions.get(order_id, 0), self.projector.passes, id(self.book.plan))
        now = self.clock()
        kept = self._kept.get(order_id)
        if kept is not None and kept[0] == stamp and now - kept[1] < MAX_AGE:
            self.hits += 1
            self._kept.move_to_end(order_id)
            return kept[2]
        self.misses += 1
        body = self.rows.render(self.book, self.projector, order_id)
        self._kept[order_id] = (stamp, now, body)
        self._kept.move_to_end(order_id)
        while len(self._kept) > SIZE:
            self._kept.popitem(last=False)
        return body
