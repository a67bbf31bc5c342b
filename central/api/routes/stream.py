"""``/api/v1/stream``: Server-Sent Events of machine and gateway changes (the hub: central/api/hub.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from central.api.deps import CentralDep

router = APIRouter(prefix="/api/v1", tags=["stream"])
PING_SECONDS = 10


@router.get("/stream", summary="Live changes (text/event-stream)", response_class=EventSourceResponse)
async def stream(request: Request, central: CentralDep) -> EventSourceResponse:
    """Events: ``snapshot`` (everything, on connect), ``machine``, ``gateway``, ``gap``, ``alert``, ``order``
    (a work order's progress, projected finish or risk changed: docs/progress.md), and ``ping`` every 10 s
    (so a client can tell a dead connection: no event for 25 s).

    Every data object carries ``server_time`` (Unix seconds). A client reconnecting gets a new
    snapshot, so it never needs to replay what it missed.
    """
    hub = central.hub

    async def events() -> AsyncIterator[dict[str, str]]:
        client = hub.connect()
        try:
            yield {"event": "snapshot", "data": json.dumps(hub.snapshot(), ensure_ascii=False)}
            while not client.closed:
                for name, data in await client.next():
                    yield {"event": name, "data": json.dumps(data, ensure_ascii=False)}
        finally:
            hub.disconnect(client)

    def ping() -> ServerSentEvent:
        # a visible event (not an SSE comment): a page can tell a silently dead connection by its absence
        return ServerSentEvent(event="ping", data=json.dumps({"server_time": central.clock()}))

    return EventSourceResponse(events(), ping=PING_SECONDS, ping_message_factory=ping)
