"""What the outbox hands out and reports, and how an event is encoded on disk (pure).

An event is stored as its wire JSON *with its seq*, so the publisher builds an ``EventBatch``
by joining payloads without re-serialising. The JSON is encoded in two steps because the seq
is only known when the group commit assigns it: ``encode_body`` (at emit time, in the
emitter's task) dumps everything but ``seq`` and ``kind``; ``with_seq`` (in the commit) splices
them in front, which costs one bytes formatting instead of a second pydantic dump.
Default-valued fields are left out (they mean the same on the wire) to keep a week of
backlog small; ``kind``, the union's discriminator, is always written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import TypeAdapter

from plantpulse.protocol.models import DroppedRange, Event

_WIRE = TypeAdapter(Event)

ROW_OVERHEAD = 40
"""Bytes a stored event costs beyond its payload and machine id (seq, times, cell and page
overhead); measured by ``bench/outbox.py`` as file size per event minus payload (docs/outbox.md)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A committed event as the publisher sends it: ``payload`` is its wire JSON with ``seq``."""

    seq: int
    ts: float
    machine_id: str
    kind: str
    payload: bytes

    def event(self) -> Event:
        """The payload parsed back into its protocol model (tests, replay diagnostics)."""
        parsed: Event = _WIRE.validate_json(self.payload)
        return parsed


@dataclass(frozen=True)
class OutboxStats:
    """A snapshot of the outbox for health messages, the birth message and /metrics."""

    epoch: str
    events: int  # held (unconfirmed) events
    bytes: int  # their estimated size on disk (payload + machine id + ROW_OVERHEAD each)
    oldest_seq: int | None  # lowest seq held
    oldest_ts: float | None  # edge time of that event
    oldest_age: float | None  # seconds from oldest_ts to the outbox clock's now
    latest_seq: int  # highest seq ever assigned (0: none yet)
    confirmed_seq: int  # every seq <= this one is settled by the consumer
    coalesced_total: int  # events merged into others since the database was created
    dropped_total: int  # events dropped since the database was created
    dropped: list[DroppedRange] = field(default_factory=list)  # dropped ranges not yet settled


def encode_body(event: Event) -> bytes:
    """The event's wire JSON without ``seq`` and ``kind``: ``{"machine_id": ...}``."""
    return event.model_dump_json(exclude_defaults=True, exclude={"seq", "kind"}).encode()


def with_seq(seq: int, kind: str, body: bytes) -> bytes:
    """Splice ``seq`` and ``kind`` into a body from ``encode_body``: the stored payload."""
    return b'{"seq":%d,"kind":"%s",%s' % (seq, kind.encode(), body[1:])


def encode(seq: int, event: Event) -> bytes:
    """The stored payload of ``event`` with ``seq`` (used for merged events)."""
    return with_seq(seq, event.kind, encode_body(event))


def decode(payload: bytes) -> Event:
    parsed: Event = _WIRE.validate_json(payload)
    return parsed


def row_bytes(payload_len: int, machine_id: str) -> int:
    """The size a held event counts against ``max_bytes`` (the same formula as in SQL)."""
    return payload_len + len(machine_id) + ROW_OVERHEAD
