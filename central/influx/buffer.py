"""The bounded retry buffer between central's ingest and InfluxDB. Pure, no I/O, no clock.

Points wait here until a write succeeds. While InfluxDB is down the buffer fills up to its
capacity; past it the oldest waiting point makes room for the newest (the recent past is what a
dashboard shows; the store can rewrite the rest with a backfill) and every such drop is counted.
The batch being written ("in flight") stays outside the waiting queue: after a failed write it
goes back to the front, in its original order, so nothing is reordered or lost by a retry.
The capacity counts waiting and in-flight points together, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class PointBuffer(Generic[T]):
    """A FIFO of at most ``capacity`` items (waiting + in flight) that drops its oldest waiting item."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._waiting: deque[T] = deque()
        self._in_flight: list[T] = []
        self.dropped = 0  # points discarded for lack of room, rejected by the server, or left at stop

    def __len__(self) -> int:
        return len(self._waiting) + len(self._in_flight)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def add(self, item: T) -> bool:
        """Queue ``item``; returns True when a point had to be dropped to make room."""
        dropped = False
        if len(self) >= self.capacity:
            if self._waiting:
                self._waiting.popleft()
            else:  # all room taken by the batch in flight (capacity <= batch size): nothing older waits
                self.dropped += 1
                return True
            self.dropped += 1
            dropped = True
        self._waiting.append(item)
        return dropped

    def take(self, limit: int) -> list[T]:
        """Move up to ``limit`` of the oldest waiting items in flight and return them."""
        if self._in_flight:
            raise RuntimeError("a batch is already in flight: call done(), give_back() or reject() first")
        count = min(limit, len(self._waiting))
        self._in_flight = [self._waiting.popleft() for _ in range(count)]
        return list(self._in_flight)

    def done(self) -> int:
        """The batch in flight was written: forget it. Returns its size."""
        count = len(self._in_flight)
        self._in_flight = []
        return count

    def give_back(self) -> None:
        """The write failed: the batch goes back to the front, oldest first, as it was."""
        self._waiting.extendleft(reversed(self._in_flight))
        self._in_flight = []

    def reject(self) -> int:
        """The server refused the batch for good (bad data): drop and count it. Returns its size."""
        count = len(self._in_flight)
        self._in_flight = []
        self.dropped += count
        return count

    def discard_all(self) -> int:
        """Drop and count everything (waiting and in flight), e.g. what is left when the writer stops."""
        count = len(self)
        self._waiting.clear()
        self._in_flight = []
        self.dropped += count
        return count
