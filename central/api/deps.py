"""Dependencies of the routes (``Annotated`` types), FastAPI-template style."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from central.runtime import Central

MAX_WINDOW = 400 * 86_400.0
DEFAULT_WINDOW = 86_400.0


def get_central(request: Request) -> Central:
    central: Central = request.app.state.central
    return central


CentralDep = Annotated[Central, Depends(get_central)]


def _instant(text: str | None, name: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            400,
            f"{name}={text!r} is not a time: give Unix seconds (1795000000) or ISO 8601 (2026-11-25T08:00:00+08:00)",
        ) from None
    if parsed.tzinfo is None:
        raise HTTPException(400, f"{name}={text!r} has no time zone: add one, e.g. +08:00 or Z")
    return parsed.timestamp()


def window(
    start: Annotated[str | None, Query(description="Unix seconds or ISO 8601 with zone; default: end - 24 h")] = None,
    end: Annotated[str | None, Query(description="Unix seconds or ISO 8601 with zone; default: now")] = None,
) -> tuple[float, float]:
    hi = _instant(end, "end")
    hi = time.time() if hi is None else hi
    lo = _instant(start, "start")
    lo = hi - DEFAULT_WINDOW if lo is None else lo
    if hi <= lo:
        raise HTTPException(400, f"the window is empty: end ({hi}) must be after start ({lo})")
    if hi - lo > MAX_WINDOW:
        raise HTTPException(400, f"the window is {hi - lo:.0f} s long; at most {MAX_WINDOW:.0f} s (400 days)")
    return lo, hi


Window = Annotated[tuple[float, float], Depends(window)]
