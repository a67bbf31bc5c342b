"""OPC UA data-change notifications to whole machine readings (pure: no session, no clock).

A subscription reports each variable on its own, but the tracker needs a machine's values
together: a fault is the state *and* its fault code. ``ChangeSplitter`` keeps every machine's
latest values and cuts the stream of changes into *moments*: changes are taken in the order
the PLC made them, collected until a variable changes a second time, and each moment becomes
one ``Reading``. So a fault shorter than the publishing interval, delivered as
``State 1->3->1`` and ``FaultCode 0->777->0`` in one batch (queue size > 1), becomes the two
readings fault(777) and running, instead of being merged away.

"The order the PLC made them": a server groups a batch by monitored item, not by time. With
source (or server) timestamps the changes are sorted by them; without (some servers, and the
simulators, send none), the k-th change of every variable in a batch is taken to belong with
the k-th change of the others, which is right for values that change together.

A Bad status (e.g. ``BadNoCommunication`` from a gateway whose device is gone) puts the machine
aside until a good value arrives again; then its values may be stale, so the collector is asked
to re-read the whole machine (``Resync``) before readings flow again. A re-read that still finds
a Bad value puts it aside again (``set_bad``): the next good value asks for another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from edge.collectors.base import CONVERT, READING_FIELD, Value
from edge.readings import Reading

_NS = re.compile(r"^(?:ns=(\d+);|nsu=([^;]+);)?(.+)$")


def split_node_id(text: str, default_uri: str | None) -> tuple[int | str, str]:
    """``'nsu=urn:x;s=A'`` -> ``('urn:x', 's=A')``; ``'ns=3;i=5'`` -> ``(3, 'i=5')``.

    Without a prefix the machine's ``namespace_uri`` is the namespace. A URI is resolved to
    its index on every connect (a server may renumber namespaces when it restarts).
    """
    match = _NS.match(text)
    if match is None:  # the config already checked the syntax
        raise ValueError(f"not a node id: {text!r}")
    index, uri, rest = match.groups()
    if index is not None:
        return int(index), rest
    if uri is not None:
        return uri, rest
    if default_uri is None:
        raise ValueError(f"node id {text!r} has no namespace and the machine has no namespace_uri")
    return default_uri, rest


class Change(NamedTuple):
    """One notification: a machine's tag got a value, or a Bad status (a tuple: made by the thousand)."""

    machine_id: str
    tag: str
    value: Value | None
    good: bool = True
    status: str = ""
    source_ts: datetime | None = None


@dataclass(frozen=True)
class Moment:
    machine_id: str
    reading: Reading


@dataclass(frozen=True)
class Bad:
    machine_id: str
    reason: str


@dataclass(frozen=True)
class Resync:
    machine_id: str


Outcome = Moment | Bad | Resync


@dataclass
class _Machine:
    values: dict[str, Value | None]
    fields: dict[str, Any] = field(default_factory=dict)  # the same values as Reading fields, converted once
    pending: set[str] = field(default_factory=set)
    bad: str | None = None
    resyncing: bool = False
    seen: dict[str, int] = field(default_factory=dict)  # notifications per tag, for the counter check
    flushed_at: float = -math.inf  # when the machine's last moment was handed over


_COUNTERS = frozenset({"good_count", "scrap_count", "job_good_count", "job_scrap_count"})  # move with every part


class ChangeSplitter:
    """Every machine's latest values; turns batches of changes into readings (module docstring).

    With ``coalesce`` > 0, a moment in which only part counters changed is held back until
    ``coalesce`` seconds after that machine's previous reading, newer counter values replacing
    older ones (the counters are absolute, nothing is lost): a machine making five parts a second
    costs the tracker one reading a second. Any other change goes through at once, carrying the
    newest counters; ``due`` hands over what has waited long enough, ``flush_all`` everything.
    """

    def __init__(self, tags: Mapping[str, Sequence[str]], coalesce: float = 0.0) -> None:
        self._machines = {mid: _Machine({name: None for name in names}) for mid, names in tags.items()}
        self.coalesce = coalesce

    def feed(self, changes: Iterable[Change], now: float = 0.0) -> list[Outcome]:
        """Apply one batch (or several, in arrival order); return what the tracker should see."""
        out: list[Outcome] = []
        touched: list[str] = []
        for change in _in_time_order(changes):
            m = self._machines[change.machine_id]
            m.seen[change.tag] = m.seen.get(change.tag, 0) + 1
            if not change.good:
                if m.bad is None:
                    self._flush(change.machine_id, m, out, now)
                    m.bad = f"{change.tag}: {change.status or 'Bad status'}"
                    out.append(Bad(change.machine_id, m.bad))
                continue
            if m.bad is not None:
                m.bad, m.resyncing = None, True
                m.pending.clear()
                out.append(Resync(change.machine_id))
            if change.tag in m.pending and not (change.tag in _COUNTERS and m.pending <= _COUNTERS):
                self._flush(change.machine_id, m, out, now)
            m.values[change.tag] = change.value
            m.fields[READING_FIELD[change.tag]] = CONVERT[change.tag](change.value)
            m.pending.add(change.tag)
            touched.append(change.machine_id)
        for machine_id in dict.fromkeys(touched):
            m = self._machines[machine_id]
            if not (m.pending <= _COUNTERS and now - m.flushed_at < self.coalesce):
                self._flush(machine_id, m, out, now)
        return out

    def due(self, now: float) -> list[Outcome]:
        """The held-back counter moments whose machine's last reading is ``coalesce`` seconds old."""
        out: list[Outcome] = []
        for machine_id, m in self._machines.items():
            if m.pending and now - m.flushed_at >= self.coalesce:
                self._flush(machine_id, m, out, now)
        return out

    def flush_all(self, now: float) -> list[Outcome]:
        """Every held-back moment, e.g. when the session ends."""
        out: list[Outcome] = []
        for machine_id, m in self._machines.items():
            self._flush(machine_id, m, out, now)
        return out

    def holding(self) -> bool:
        return any(m.pending for m in self._machines.values())

    def _flush(self, machine_id: str, m: _Machine, out: list[Outcome], now: float) -> None:
        if m.pending and not m.resyncing and m.bad is None:
            out.append(Moment(machine_id, Reading(**m.fields)))
            m.flushed_at = now
        m.pending.clear()

    def set_all(self, machine_id: str, values: dict[str, Value | None]) -> Reading:
        """A full read of the machine (at connect, after a Resync): the reading it gives."""
        m = self._machines[machine_id]
        m.values.update(values)
        m.fields = {READING_FIELD[tag]: CONVERT[tag](value) for tag, value in m.values.items()}
        m.pending.clear()
        m.bad, m.resyncing = None, False
        return Reading(**m.fields)

    def set_bad(self, machine_id: str, reason: str) -> None:
        """A full read of the machine found a Bad value: aside again until a good value arrives.

        A server shows a device back one variable at a time, so the first good value may be notified
        (and trigger the re-read) while others are still Bad; the next good value must trigger
        another re-read, or the machine would stay aside until the session ends.
        """
        m = self._machines[machine_id]
        m.bad, m.resyncing = reason, False
        m.pending.clear()

    def value(self, machine_id: str, tag: str) -> Value | None:
        return self._machines[machine_id].values.get(tag)

    def seen(self, machine_id: str, tag: str) -> int:
        return self._machines[machine_id].seen.get(tag, 0)

    def is_bad(self, machine_id: str) -> bool:
        m = self._machines[machine_id]
        return m.bad is not None or m.resyncing


def _in_time_order(changes: Iterable[Change]) -> list[Change]:
    """By timestamp, then by rank within the variable (k-th change of each), then by arrival."""
    rank: dict[tuple[str, str], int] = {}
    keyed: list[tuple[float, int, int, Change]] = []
    ordered = True  # no timestamps and no variable twice: arrival order is the order (the common case)
    for i, change in enumerate(changes):
        key = (change.machine_id, change.tag)
        k = rank.get(key, 0)
        rank[key] = k + 1
        ts = change.source_ts.timestamp() if change.source_ts is not None else 0.0
        ordered = ordered and k == 0 and ts == 0.0
        keyed.append((ts, k, i, change))
    if not ordered:
        keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]
