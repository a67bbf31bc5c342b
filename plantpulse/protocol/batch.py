"""An events message read event by event: one bad event never costs its neighbours.

``EventBatch.model_validate_json`` is all or nothing, which is right for a producer and wrong for
a consumer: a gateway's batch of 500 events with one out-of-bounds value would otherwise be
dead-lettered whole, asked for again, and dead-lettered again forever. A consumer reads the
envelope strictly and then each event on its own (docs/protocol.md, "Refused events"):

* a valid event is applied as usual;
* an invalid event whose ``seq`` is itself valid is **refused**: dead-lettered once and settled as
  a gap with reason ``rejected`` (confirmed to the gateway like a dropped range, so it is never
  sent again);
* an event without a usable seq, or with a seq that does not increase, cannot be settled: it is
  dead-lettered and its seq (if any) stays missing, as if the gateway had never sent it.

The valid path costs one strict parse, as before; only a batch that fails it is read event by event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from plantpulse.protocol.models import MAX_EVENTS, MAX_SAFE_INT, EdgeId, Epoch, Event, EventBatch, Timestamp

_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


class _Envelope(BaseModel):
    """``EventBatch`` with its events left unread."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    edge_id: EdgeId
    epoch: Epoch
    sent_at: Timestamp
    events: list[JsonValue] = Field(..., min_length=1, max_length=MAX_EVENTS)


@dataclass(frozen=True)
class RefusedEvent:
    """An event of a valid envelope that is not valid itself."""

    seq: int | None  # the event's seq when it can be settled as ``rejected``; None when it cannot
    event: JsonValue  # as received
    reason: str


@dataclass(frozen=True)
class ReadBatch:
    batch: EventBatch  # the valid events (possibly none), in ascending seq order
    refused: list[RefusedEvent] = field(default_factory=list)


def read_batch(payload: bytes | str) -> ReadBatch:
    """Read an events message; raises ``ValidationError`` only when the envelope itself is invalid."""
    try:
        return ReadBatch(EventBatch.model_validate_json(payload))
    except ValidationError:
        pass
    envelope = _Envelope.model_validate_json(payload)  # raises: the message as a whole is unusable
    valid: list[Any] = []
    refused: list[RefusedEvent] = []
    previous = 0
    for raw in envelope.events:
        seq = _seq_of(raw)
        try:
            event = _EVENT.validate_python(raw)
        except ValidationError as exc:
            usable = seq is not None and seq > previous
            refused.append(RefusedEvent(seq if usable else None, raw, describe(exc)))
            if usable and seq is not None:
                previous = seq
            continue
        if event.seq is None or event.seq <= previous:
            refused.append(RefusedEvent(None, raw, f"seq {event.seq} missing or not increasing (after {previous})"))
            continue
        previous = event.seq
        valid.append(event)
    batch = EventBatch.model_construct(v=1, edge_id=envelope.edge_id, epoch=envelope.epoch,
                                       sent_at=envelope.sent_at, events=valid)
    return ReadBatch(batch, refused)


def _seq_of(raw: JsonValue) -> int | None:
    """The event's seq if it is a valid seq, whatever else is wrong with the event."""
    if not isinstance(raw, dict):
        return None
    seq = raw.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= MAX_SAFE_INT:
        return seq
    return None


def describe(exc: ValidationError, most: int = 5) -> str:
    """A validation error in one line: ``field.path: message; ...`` (the first few)."""
    parts = []
    for err in exc.errors(include_url=False)[:most]:
        loc = ".".join(str(x) for x in err["loc"]) or "(message)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - most
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def event_json(raw: JsonValue, limit: int = 65_536) -> bytes:
    """A refused event as bytes for its dead letter (bounded: the message's size is the broker's)."""
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode()[:limit]
