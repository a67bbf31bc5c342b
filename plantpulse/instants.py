"""Points in time as people and programs write them: Unix seconds or ISO 8601 with a time zone."""

from __future__ import annotations

from datetime import datetime


def parse_instant(text: str, name: str) -> float:
    """Unix seconds of ``text``; ValueError naming ``name`` and the accepted forms otherwise.

    A time without a zone is refused rather than guessed: a plant's local time and the server's
    differ often enough to shift a downtime window by hours.
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{name}={text!r} is not a time: give Unix seconds (1795000000) or ISO 8601 (2026-11-25T08:00:00+08:00)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name}={text!r} has no time zone: add one, e.g. +08:00 or Z")
    return parsed.timestamp()
