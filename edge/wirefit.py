"""Readings made to fit the wire's bounds before they become events (docs/protocol.md, "Bounds").

The gateway builds its events with the protocol's own models, so anything outside the bounds would
be refused at construction, after the PLC was read and before the outbox commit: collection would
stop on a PLC's odd value. Instead the values are made to fit here, and the event says so:

* a text (job or program number, a raw state string) longer than 256 characters is cut to 256 and
  the event is flagged ``truncated`` (a PLC string register block or an OPC UA string can be long);
* a fault code read as an unsigned 64-bit word at or above 2^63 is taken as the signed word it also
  is (two's complement): the same 64 bits, within SQLite's and JSON's range;
* a raw integer state outside 64 bits is kept as a float (it is for diagnosis only).

Pure; returns the reading itself when nothing needed fitting (the common case costs a few checks).
"""

from __future__ import annotations

from dataclasses import replace

from edge.readings import Reading
from plantpulse.protocol.models import INT64_MAX, INT64_MIN, MAX_TEXT


def fit_text(text: str | None) -> tuple[str | None, bool]:
    if text is None or len(text) <= MAX_TEXT:
        return text, False
    return text[:MAX_TEXT], True


def fit_int64(value: int) -> int:
    """An integer outside the signed 64-bit range, read as a 64-bit word (two's complement)."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    word = value & 0xFFFF_FFFF_FFFF_FFFF
    return word - (1 << 64) if word > INT64_MAX else word


def fit_reading(reading: Reading) -> tuple[Reading, bool]:
    """The reading within the wire's bounds, and whether a text was cut (the events say ``truncated``)."""
    job, cut_job = fit_text(reading.job)
    raw = reading.state
    cut_raw = False
    if isinstance(raw, str):
        raw, cut_raw = fit_text(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool) and not INT64_MIN <= raw <= INT64_MAX:
        raw = float(raw)
    fault = reading.fault_code
    if fault is not None:
        fault = fit_int64(fault)
    if job is reading.job and raw is reading.state and fault == reading.fault_code:
        return reading, False
    return replace(reading, job=job, state=raw, fault_code=fault), cut_job or cut_raw
