"""Stored payloads are the wire JSON with the seq: a batch is built by joining them."""

from __future__ import annotations

import json

from edge.buffer.records import decode, encode, encode_body, with_seq
from plantpulse.protocol.models import CountEvent, EventBatch, MachineState, StateEvent
from tests.edge.buffer.helpers import T0, count, state


def test_payload_round_trips_with_its_seq_and_leaves_defaults_out() -> None:
    c = count("cnc-01", 3, 7, scrap=1)
    payload = with_seq(42, c.kind, encode_body(c))
    assert decode(payload) == c.model_copy(update={"seq": 42})
    assert b"absorbed" not in payload and b"reset" not in payload
    s = StateEvent(machine_id="cnc-01", ts=T0, state=MachineState.FAULT, fault_code=101, raw=3, reason=None)
    assert decode(encode(7, s)) == s.model_copy(update={"seq": 7})


def test_joined_payloads_make_a_valid_event_batch() -> None:
    payloads = [encode(1, state("m", 1)), encode(2, count("m", 2)), encode(9, count("m", 3).model_copy(
        update={"absorbed": [10, 11]}))]
    epoch = b"00000000-0000-4000-8000-000000000001"
    text = b'{"v":1,"edge_id":"e1","epoch":"%s","sent_at":%f,"events":[%s]}' % (epoch, T0, b",".join(payloads))
    batch = EventBatch.model_validate_json(text)
    assert [e.seq for e in batch.events] == [1, 2, 9]
    assert isinstance(batch.events[2], CountEvent) and batch.events[2].absorbed == [10, 11]
    assert json.loads(payloads[0])["kind"] == "state"
