"""``CountEvent.job_from`` (issue 11): optional, omitted when absent, bounded; older messages stay valid."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.buffer.records import decode, encode
from plantpulse.protocol.models import CountEvent, EventBatch

OLD = (b'{"v": 1, "edge_id": "g", "epoch": "00000000-0000-4000-8000-000000000001", "sent_at": 3.0, '
       b'"events": [{"kind": "count", "seq": 1, "machine_id": "m", "start": 1.0, "ts": 2.0, "good": 2, '
       b'"scrap": 0, "job": "1605"}]}')


def test_a_message_from_before_the_field_is_still_valid() -> None:
    (event,) = EventBatch.model_validate_json(OLD).events
    assert isinstance(event, CountEvent) and event.job == "1605" and event.job_from is None


def test_the_gateway_sends_job_from_only_when_the_parts_span_a_job_change() -> None:
    plain = CountEvent(machine_id="m", start=1.0, ts=2.0, good=1, scrap=0, job="1606")
    spanning = plain.model_copy(update={"job_from": "1605"})
    assert b"job_from" not in encode(1, plain)
    assert decode(encode(2, spanning)) == spanning.model_copy(update={"seq": 2})


def test_job_from_is_bounded_like_every_text_on_the_wire() -> None:
    CountEvent(machine_id="m", start=1.0, ts=2.0, good=1, scrap=0, job="J", job_from="x" * 256)
    with pytest.raises(ValidationError):
        CountEvent(machine_id="m", start=1.0, ts=2.0, good=1, scrap=0, job="J", job_from="x" * 257)
