"""The clock-skew rule: where an edge-stamped event lands on central's time axis (docs/central.md).

Intervals, downtime and counts are built from **edge time** (when the gateway observed a
change), not from when central happened to receive it: a gateway that was offline for an hour
delivers its backlog late, and the backlog must still tell what the machines did and when.
Edge clocks can be wrong, though, so every edge time goes through one rule before use:

1. **Skew correction.** ``skew`` is the gateway's measured clock offset (edge clock minus
   central clock, from its health messages). When ``|skew| > skew_bound`` the edge clock is
   considered wrong and ``skew`` is subtracted; below the bound the measurement is mostly
   network and scheduling jitter, and correcting by it would only add noise.
2. **No future.** A corrected time later than ``received_at + future_tolerance`` cannot be
   right (central cannot receive an event before it happened): it is clamped to
   ``received_at`` and flagged.
3. **No negative intervals** (applied by the timeline, which knows the open interval): an
   event older than the machine's open interval start is clamped to that start and flagged.

Pure: time is always an argument; O(1) per call.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Clamp(enum.StrEnum):
    """Why an event's time was moved by the rule (the interval it builds is then uncertain)."""

    FUTURE = "future"  # stamped after central received it (beyond the tolerance)
    BEFORE_OPEN = "before_open"  # older than the start of the machine's open interval


class ClockRule(BaseModel):
    """The bounds of the clock-skew rule (a ``clock:`` section in central's configuration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skew_bound: float = Field(
        2.0,
        ge=0,
        description="seconds, e.g. 2.0: a gateway clock off by more than this (either way) is corrected",
    )
    future_tolerance: float = Field(
        5.0,
        ge=0,
        description="seconds, e.g. 5.0, at least skew_bound: how far after its receipt an event may be "
        "stamped before its time is clamped to the receipt",
    )

    @model_validator(mode="after")
    def _tolerance_covers_bound(self) -> ClockRule:
        if self.future_tolerance < self.skew_bound:
            raise ValueError(
                f"future_tolerance ({self.future_tolerance}) must be at least skew_bound ({self.skew_bound}): "
                "an uncorrected clock may legitimately run skew_bound seconds ahead"
            )
        return self


DEFAULT_RULE = ClockRule()


def corrected(ts: float, skew: float | None, rule: ClockRule = DEFAULT_RULE) -> float:
    """Edge time ``ts`` corrected by the gateway's skew when it exceeds the bound (rule step 1)."""
    if skew is not None and abs(skew) > rule.skew_bound:
        return ts - skew
    return ts


def to_central(
    ts: float, *, received_at: float, skew: float | None, rule: ClockRule = DEFAULT_RULE
) -> tuple[float, Clamp | None]:
    """Steps 1 and 2 of the rule: the event's time on central's axis and whether it was clamped."""
    at = corrected(ts, skew, rule)
    if at > received_at + rule.future_tolerance:
        return received_at, Clamp.FUTURE
    return at, None
