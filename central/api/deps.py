"""Dependencies of the routes (``Annotated`` types), FastAPI-template style."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from central.runtime import Central
from plantpulse.instants import parse_instant

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
        return parse_instant(text, name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


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


# --------------------------------------------------------------------------- API keys
def _presented(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or request.query_params.get("key") or None


def _role(request: Request, central: Central) -> tuple[str, str] | None:
    """(key name, role) of the presented key; None without a key. An unknown key is a 401."""
    key = _presented(request)
    if key is None:
        return None
    found = central.api_keys.get(hashlib.sha256(key.encode()).hexdigest())
    if found is None:
        raise HTTPException(401, "unknown API key (send it as 'Authorization: Bearer <key>')")
    return found


def reader(request: Request, central: CentralDep) -> str:
    who = _role(request, central)
    if who is not None:
        return who[0]
    if central.cfg.api.open_reads:
        return "anonymous"
    raise HTTPException(401, "an API key is needed to read (Authorization: Bearer <key>), or set api.open_reads")


def writer(request: Request, central: CentralDep) -> str:
    who = _role(request, central)
    if who is None:
        raise HTTPException(401, "this needs an API key with the write role (Authorization: Bearer <key>)")
    if who[1] != "write":
        may = "read and report" if who[1] == "report" else "read"
        raise HTTPException(403, f"the key '{who[0]}' may only {may}; this needs a write key")
    return who[0]


def reporter(request: Request, central: CentralDep) -> str:
    """Scan to report (issue 13): a ``report`` key (scanners, phones at the machines) or a write key."""
    who = _role(request, central)
    if who is None:
        raise HTTPException(401, "this needs an API key with the report or write role (Authorization: Bearer <key>)")
    if who[1] not in ("write", "report"):
        raise HTTPException(403, f"the key '{who[0]}' may only read; reporting needs a report or write key")
    return who[0]


Writer = Annotated[str, Depends(writer)]
Reporter = Annotated[str, Depends(reporter)]
