"""The store interface: what ingest, alerts, the sender and the API need of central's record.

Everything in central types against ``Store``; ``central/store/sqlite.py`` is the embedded default
and a PostgreSQL store joins it behind the same protocol. The contract every implementation must
pass is ``tests/central/store/test_contract.py``.

Writes: ``commit`` writes one ingest round (or one person's action) atomically and durably, with
the settled seq ranges of the gateways it touched, so that an acknowledgement sent after it can
never be taken back; ``update_deliveries`` records what the notification sender did; ``purge``
applies the retention periods. Everything else reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from central.alerts.alert import Alert
from central.alerts.notifications import Notification
from central.progress.counts import CountRecord
from central.progress.orders import Audit, OpKey
from central.progress.reports import Report
from central.progress.status import MachineStatus
from central.progress.stops import StopReason
from central.progress.timeline import StateInterval
from central.store.extra_records import RepairEta, SummaryRow
from central.store.order_records import AttributedCount, LoadedOrders
from central.store.records import DeadLetter, Delivery, EpochRow, GapRow, GatewayRow, Transaction


class StoreError(Exception):
    """The store cannot be used (newer schema, unreadable file): the message says what to do."""


class StoreUnusableError(StoreError):
    """The store stopped working while central ran (file deleted, replaced, read-only, refusing writes)."""


class FencedError(StoreError):
    """An ingest worker's lease of a gateway was taken over: the round was not committed (nothing applied)."""

    def __init__(self, edge_ids: list[str]) -> None:
        super().__init__(f"lost the lease of {', '.join(edge_ids)}: another worker owns it now; round not committed")
        self.edge_ids = edge_ids


@dataclass
class Loaded:
    """What central restores at start (and after a failed round): the live state as last committed."""

    statuses: dict[str, MachineStatus]
    epochs: list[EpochRow]
    gateways: dict[str, GatewayRow]
    dead_letters: int
    gaps: int


@dataclass(frozen=True)
class Retention:
    events_days: float = 14.0
    dead_letters_days: float = 30.0
    history_days: float = 400.0


class Store(Protocol):
    # ----------------------------------------------------------------- lifecycle and health
    async def close(self) -> None: ...

    def problem(self) -> str | None:
        """Why the store can no longer be trusted (deleted, read-only...), or None; cheap, called every second."""

    # ----------------------------------------------------------------- writes
    async def commit(self, tx: Transaction) -> None: ...

    async def update_deliveries(self, done: list[Delivery]) -> None: ...

    async def purge(self, now: float, retention: Retention) -> dict[str, int]: ...

    # ----------------------------------------------------------------- ingest and history
    async def load(self) -> Loaded: ...

    async def intervals(self, machine_id: str, start: float, end: float) -> list[StateInterval]: ...

    async def intervals_between(self, start: float, end: float) -> list[StateInterval]: ...

    async def intervals_from(self, machine_id: str, at: float, limit: int = 4) -> list[StateInterval]: ...

    async def counts(self, machine_id: str | None, start: float, end: float) -> list[CountRecord]: ...

    async def gaps(self, edge_id: str | None = None, limit: int = 100, offset: int = 0) -> list[GapRow]: ...

    async def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]: ...

    # ----------------------------------------------------------------- alerts and their notifications
    async def active_alerts(self) -> list[Alert]: ...

    async def alerts(self, *, status: str | None = None, rule: str | None = None, subject: str | None = None,
                     since: float | None = None, limit: int = 100, offset: int = 0) -> list[Alert]: ...

    async def alert(self, alert_id: str) -> Alert | None: ...

    async def due_deliveries(self, now: float, target: str,
                             limit: int = 50) -> list[tuple[Delivery, Notification]]:
        """Up to ``limit`` of ``target``'s pending deliveries due at ``now``, most urgent first (the
        notification's ``priority``, central/alerts/ratelimit.py), oldest first within a priority: a sender
        held to a rate limit asks for as many as it may send and the rest wait where they are."""

    async def next_delivery_at(self, target: str) -> float | None: ...

    async def sent_since(self, target: str, since: float) -> list[float]:
        """When ``target``'s deliveries sent at or after ``since`` were sent, oldest first: a restarted sender
        starts its rate window from them (central/alerts/ratelimit.py)."""

    async def delivery_counts(self) -> dict[str, int]: ...

    # ----------------------------------------------------------------- work orders (issue 13)
    async def load_orders(self) -> LoadedOrders:
        """Orders, operations, dispatch lists, assignment timelines, per-operation count tallies, reports,
        and the counts no operation ran for since the first order (per machine)."""

    async def audit_trail(self, *, order_id: str | None = None, since: float | None = None,
                          until: float | None = None, limit: int = 100, offset: int = 0) -> list[Audit]:
        """Who changed what: newest first."""

    async def attributed_counts(self, machine_id: str, since: float, until: float | None = None
                                ) -> list[AttributedCount]:
        """A machine's counts at or after ``since`` (and before ``until``) with their operation, by time."""

    async def unassigned_counts(self, machine_id: str | None, start: float, end: float,
                                limit: int = 1000) -> list[AttributedCount]: ...

    async def op_counts(self, key: OpKey) -> list[CountRecord]: ...

    async def reports_between(self, start: float, end: float, order_id: str | None = None) -> list[Report]: ...

    # ----------------------------------------------------------------- stop reasons, shift summaries (issue 13)
    async def stop_reason(self, client_id: str) -> StopReason | None: ...

    async def stop_reasons(self, machine_id: str | None, start: float, end: float) -> list[StopReason]:
        """Reasons that may cover ``[start, end)`` (open-ended ones included), by start."""

    async def shift_summary(self, summary_id: str) -> SummaryRow | None: ...

    async def shift_summaries(self, *, line: str | None = None, since: float | None = None,
                              until: float | None = None, limit: int = 50) -> list[SummaryRow]:
        """Summaries sent, newest shift end first."""

    async def repair_etas(self) -> list[RepairEta]:
        """The repair ETAs maintenance entered that are in force."""
