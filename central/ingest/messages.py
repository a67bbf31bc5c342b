"""What arrives from the broker, validated: one typed message or a dead letter with its reason.

Validation is the protocol's pydantic models; on top, a payload whose ``edge_id`` differs from
its topic's is refused (a gateway may only speak for itself). Nothing here raises: a bad
message becomes a ``DeadLetter`` that is stored and counted, and ingest goes on. An events
message is read event by event (``plantpulse/protocol/batch.py``): its invalid events are refused one by
one and the rest is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from central.store.records import DeadLetter
from plantpulse.protocol import topics
from plantpulse.protocol.batch import RefusedEvent, describe, read_batch
from plantpulse.protocol.models import EventBatch, Health, Snapshot, Status

MAX_REASON = 2_000


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as the MQTT thread handed it over."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float
    generation: int = 0  # the MQTT connection it came on (its mid is only valid there)


@dataclass(frozen=True, slots=True)
class Parsed:
    site: str
    edge_id: str
    message: EventBatch | Status | Health | Snapshot
    received_at: float
    topic: str
    payload: bytes
    refused: list[RefusedEvent] = field(default_factory=list)  # events of the batch that are invalid


def parse(msg: Incoming) -> Parsed | DeadLetter:
    where = topics.parse(msg.topic)
    if where is None:
        return _dead(msg, "not a plantpulse v1 gateway topic (plantpulse/v1/<site>/<edge_id>/<channel>)")
    model: type[EventBatch] | type[Status] | type[Health] | type[Snapshot]
    if where.channel == "events":
        model = EventBatch
    elif where.channel == "status":
        model = Status
    elif where.channel == "health":
        model = Health
    elif where.channel == "snapshot":
        model = Snapshot
    else:
        return _dead(msg, f"unknown channel {where.channel!r} (events, status, health, snapshot)")
    refused: list[RefusedEvent] = []
    try:
        if model is EventBatch:
            read = read_batch(msg.payload)
            message: EventBatch | Status | Health | Snapshot = read.batch
            refused = read.refused
        else:
            message = model.model_validate_json(msg.payload)
    except ValidationError as exc:
        return _dead(msg, f"invalid {where.channel} message: {describe(exc)}")
    if message.edge_id != where.edge_id:
        return _dead(msg, f"edge_id {message.edge_id!r} in the payload does not match the topic's {where.edge_id!r}")
    return Parsed(where.site, where.edge_id, message, msg.received_at, msg.topic, msg.payload, refused)


def _dead(msg: Incoming, reason: str) -> DeadLetter:
    return DeadLetter(msg.received_at, msg.topic, msg.payload, reason[:MAX_REASON])
